"""Every kernel against its reference, on every installed backend.

The reference (plain array code) is the oracle; numba and CuPy versions must
agree within dtype-aware tolerances (float64 1e-10, float32 1e-4, relative to
the scale of the values).
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from predcode.activations import ACTIVATIONS
from predcode.backend import to_numpy
from predcode.kernels import KERNELS, get_kernel
from predcode.kernels import pc_reference as ref

from .conftest import tolerance

PC_KERNELS = sorted(n for n, f in KERNELS.items() if f == "pc" and n.startswith("pc_"))

DTYPES = (np.float32, np.float64)
shapes = st.tuples(st.integers(1, 17), st.integers(1, 33))


def _arrays(xp, rng, dtype, n, m, k=6):
    return [xp.asarray(rng.standard_normal((n, m)).astype(dtype)) for _ in range(k)]


def _close(a, b, dtype, scale=1.0):
    a, b = to_numpy(a), to_numpy(b)
    tol = tolerance(dtype) * max(1.0, scale)
    np.testing.assert_allclose(a, b, rtol=tol, atol=tol)


def test_every_backend_has_every_kernel(backend):
    for name in PC_KERNELS:
        assert callable(get_kernel(name, backend))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("activation", ACTIVATIONS)
@settings(max_examples=15, deadline=None)
@given(shape=shapes, seed=st.integers(0, 2**31 - 1))
def test_activate_matches_reference(fast_backend, xp, dtype, activation, shape, seed):
    rng = np.random.default_rng(seed)
    (x,) = _arrays(xp, rng, dtype, *shape, k=1)
    x = 4 * x  # reach tanh's saturation and the relu kink
    out = [xp.empty_like(x) for _ in range(4)]
    ref.pc_activate(x, out[0], out[1], activation)
    get_kernel("pc_activate", fast_backend)(x, out[2], out[3], activation)
    _close(out[2], out[0], dtype)
    _close(out[3], out[1], dtype)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("refresh", [True, False])
@pytest.mark.parametrize("activation", ACTIVATIONS)
@settings(max_examples=10, deadline=None)
@given(shape=shapes, seed=st.integers(0, 2**31 - 1),
       gamma=st.floats(0.01, 1.0), precision=st.floats(0.1, 10.0))
def test_settle_step_matches_reference(
    fast_backend, xp, dtype, activation, refresh, shape, seed, gamma, precision
):
    rng = np.random.default_rng(seed)
    base = _arrays(xp, rng, dtype, *shape)
    b = xp.asarray(rng.standard_normal(shape[1]).astype(dtype))
    a_ref = [v.copy() for v in base]
    a_new = [v.copy() for v in base]
    e_ref = ref.pc_settle_step(a_ref[0], a_ref[1], b, a_ref[2], a_ref[3], a_ref[4], a_ref[5],
                               gamma, precision, activation, refresh)
    e_new = get_kernel("pc_settle_step", fast_backend)(
        a_new[0], a_new[1], b, a_new[2], a_new[3], a_new[4], a_new[5],
        gamma, precision, activation, refresh)
    for got, want in zip(a_new, a_ref, strict=True):
        _close(got, want, dtype, scale=precision)
    _close(e_new, e_ref, dtype, scale=float(to_numpy(e_ref)))
    # the unchanged inputs really are unchanged (z, bu)
    _close(a_new[1], base[1], dtype)
    _close(a_new[2], base[2], dtype)


@pytest.mark.parametrize("dtype", DTYPES)
@settings(max_examples=15, deadline=None)
@given(shape=shapes, seed=st.integers(0, 2**31 - 1), precision=st.floats(0.1, 10.0))
def test_error_matches_reference(fast_backend, xp, dtype, shape, seed, precision):
    rng = np.random.default_rng(seed)
    x, z, e1, e2 = _arrays(xp, rng, dtype, *shape, k=4)
    b = xp.asarray(rng.standard_normal(shape[1]).astype(dtype))
    E_ref = ref.pc_error(x, z, b, precision, e1)
    E_new = get_kernel("pc_error", fast_backend)(x, z, b, precision, e2)
    _close(e2, e1, dtype, scale=precision)
    _close(E_new, E_ref, dtype, scale=float(to_numpy(E_ref)))
    # the energy is what the docstring says: pi/2 * sum (x - z - b)^2
    e = to_numpy(x) - to_numpy(z) - to_numpy(b)
    want = 0.5 * precision * float((e.astype(np.float64) ** 2).sum())
    assert abs(float(to_numpy(E_new)) - want) <= 10 * tolerance(dtype) * max(1.0, want)


@pytest.mark.parametrize("dtype", DTYPES)
@settings(max_examples=15, deadline=None)
@given(n=st.integers(1, 17), n_in=st.integers(1, 33), n_out=st.integers(1, 33),
       seed=st.integers(0, 2**31 - 1), lr=st.floats(1e-3, 1.0))
def test_matrix_kernels_match_reference(fast_backend, xp, dtype, n, n_in, n_out, seed, lr):
    rng = np.random.default_rng(seed)
    W = xp.asarray(rng.standard_normal((n_out, n_in)).astype(dtype))
    b = xp.asarray(rng.standard_normal(n_out).astype(dtype))
    fx = xp.asarray(rng.standard_normal((n, n_in)).astype(dtype))
    eps = xp.asarray(rng.standard_normal((n, n_out)).astype(dtype))
    scale = float(np.sqrt(max(n_in, n_out, n)))
    for name, args_ref, args_new in [
        ("pc_predict", (W, fx, xp.empty((n, n_out), dtype)), (W, fx, xp.empty((n, n_out), dtype))),
        ("pc_feedback", (W, eps, xp.empty((n, n_in), dtype)), (W, eps, xp.empty((n, n_in), dtype))),
    ]:
        getattr(ref, name)(*args_ref)
        get_kernel(name, fast_backend)(*args_new)
        _close(args_new[2], args_ref[2], dtype, scale=scale)
    W1, b1, W2, b2 = W.copy(), b.copy(), W.copy(), b.copy()
    ref.pc_hebbian(W1, b1, eps, fx, lr)
    get_kernel("pc_hebbian", fast_backend)(W2, b2, eps, fx, lr)
    _close(W2, W1, dtype, scale=scale)
    _close(b2, b1, dtype, scale=scale)
    # and the reference is the analytic delta rule
    want = to_numpy(W) + lr / n * to_numpy(eps).T @ to_numpy(fx)
    _close(W1, want, dtype, scale=scale)


def test_hebbian_on_non_contiguous_input(fast_backend, xp):
    """The in-place BLAS path falls back correctly for strided views."""
    rng = np.random.default_rng(0)
    W = xp.asarray(rng.standard_normal((4, 6)))
    b = xp.zeros(4)
    big = xp.asarray(rng.standard_normal((5, 12)))
    fx = big[:, ::2]  # non-contiguous
    eps = xp.asarray(rng.standard_normal((5, 4)))
    W1, b1 = W.copy(), b.copy()
    get_kernel("pc_hebbian", fast_backend)(W1, b1, eps, fx, 0.5)
    want = to_numpy(W) + 0.5 / 5 * to_numpy(eps).T @ to_numpy(fx)
    np.testing.assert_allclose(to_numpy(W1), want, rtol=1e-12, atol=1e-12)


def test_float32_tanh_accuracy():
    """The numba float32 tanh (rational approximation) is within 1e-6 of libm everywhere."""
    x = np.linspace(-20, 20, 400_001).astype(np.float32).reshape(1, -1)
    fx, dfx = np.empty_like(x), np.empty_like(x)
    get_kernel("pc_activate", "numba")(x, fx, dfx, "tanh")
    exact = np.tanh(x.astype(np.float64))
    assert np.abs(fx - exact).max() < 1e-6
    assert np.abs(dfx - (1 - exact**2)).max() < 2e-6


def test_nan_propagates_through_fused_kernels(fast_backend, xp):
    """fastmath must not drop NaN: divergence detection relies on it."""
    x = xp.ones((2, 3))
    x[0, 1] = float("nan")
    z = xp.zeros((2, 3))
    b = xp.zeros(3)
    out = [xp.zeros((2, 3)) for _ in range(4)]
    E = get_kernel("pc_settle_step", fast_backend)(x, z, b, out[0], out[1], out[2], out[3],
                                              0.1, 1.0, "tanh", True)
    assert not np.isfinite(float(to_numpy(E)))
