"""Building blocks of the JEPA family: every backward pass against finite differences.

For a layer ``y = f(x; θ)`` and a random upstream gradient ``G``, the scalar
``L = Σ G·y`` has ``∂L/∂x = backward(G)``; central differences of ``L`` (step 1e-6,
float64) must agree to 1e-6 relative. Shapes are drawn by hypothesis. Losses are
checked the same way on their scalar value. Kernels (numba, cupy) are checked
against the reference (float64 1e-10).
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from predcode.exceptions import ValidationError
from predcode.kernels import get_kernel
from predcode.nn import (
    GELU,
    AdamW,
    Conv2d,
    Flatten,
    LayerNorm,
    Linear,
    ReLU,
    Sequential,
    Tanh,
    cosine,
    mse,
    named_params,
    sigreg,
    vicreg,
    warmup_cosine,
    zero_grad,
)
from tests.conftest import tolerance

H = 1e-6
RTOL = 1e-6


def _fd(f, x, h=H):
    """Central-difference gradient of the scalar ``f`` at ``x`` (changed in place, restored)."""
    g = np.zeros_like(x)
    it = np.nditer(x, flags=["multi_index"])
    for _ in it:
        i = it.multi_index
        old = x[i]
        x[i] = old + h
        fp = f()
        x[i] = old - h
        fm = f()
        x[i] = old
        g[i] = (fp - fm) / (2 * h)
    return g


def _close(a, b, rtol=RTOL):
    scale = max(np.abs(a).max(), np.abs(b).max(), 1e-3)
    np.testing.assert_allclose(a, b, atol=rtol * scale, rtol=0)


def check_layer(layer, x, rng):
    """Input and parameter gradients of ``layer`` at ``x`` equal finite differences."""
    y = layer.forward(x)
    G = rng.standard_normal(y.shape)
    zero_grad(layer)
    gx = layer.backward(G)

    def L():
        return float((G * layer.forward(x)).sum())

    _close(gx, _fd(L, x))
    for name, lay, key in named_params(layer):
        analytic = lay.grads[key].copy()
        _close(analytic, _fd(L, lay.params[key]), RTOL), name


shape_nd = st.tuples(st.integers(1, 4), st.integers(1, 6))


@settings(max_examples=12)
@given(shape=shape_nd, n_out=st.integers(1, 5), seed=st.integers(0, 10_000))
def test_linear_fd(shape, n_out, seed):
    rng = np.random.default_rng(seed)
    layer = Linear(shape[1], n_out, rng=rng)
    layer.params["b"][:] = rng.standard_normal(n_out)
    check_layer(layer, rng.standard_normal(shape), rng)


@settings(max_examples=12)
@given(shape=st.tuples(st.integers(1, 3), st.integers(1, 3), st.integers(1, 5)),
       kind=st.sampled_from(["relu", "gelu", "tanh"]), seed=st.integers(0, 10_000),
       backend=st.sampled_from(["numpy", "numba"]))
def test_activations_fd(shape, kind, seed, backend):
    rng = np.random.default_rng(seed)
    layer = {"relu": ReLU(), "gelu": GELU(backend=backend), "tanh": Tanh()}[kind]
    x = rng.standard_normal(shape)
    if kind == "relu":  # keep away from the kink, where the derivative jumps
        x = np.where(np.abs(x) < 1e-3, 0.5, x)
    check_layer(layer, x, rng)


def test_gelu_values():
    """GELU(tanh form) at 1 equals 0.5 (1 + tanh(sqrt(2/pi) 1.044715)) ≈ 0.8412 (HG 2016)."""
    y, _ = get_kernel("gelu", "numpy")(np.array([0.0, 1.0, -30.0, 30.0]))
    np.testing.assert_allclose(y, [0.0, 0.8411919906, 0.0, 30.0], atol=1e-9)


@settings(max_examples=12)
@given(shape=st.tuples(st.integers(1, 3), st.integers(2, 7)), seed=st.integers(0, 10_000))
def test_layernorm_fd(shape, seed):
    rng = np.random.default_rng(seed)
    layer = LayerNorm(shape[1])
    layer.params["gamma"][:] = rng.standard_normal(shape[1])
    layer.params["beta"][:] = rng.standard_normal(shape[1])
    check_layer(layer, rng.standard_normal(shape), rng)


@settings(max_examples=10)
@given(n=st.integers(1, 2), c_in=st.integers(1, 3), c_out=st.integers(1, 3),
       hw=st.tuples(st.integers(3, 6), st.integers(3, 6)), k=st.integers(1, 3),
       stride=st.integers(1, 2), padding=st.integers(0, 1), seed=st.integers(0, 10_000),
       backend=st.sampled_from(["numpy", "numba"]))
def test_conv2d_fd(n, c_in, c_out, hw, k, stride, padding, seed, backend):
    rng = np.random.default_rng(seed)
    layer = Conv2d(c_in, c_out, k, stride=stride, padding=padding, rng=rng, backend=backend)
    layer.params["b"][:] = rng.standard_normal(c_out)
    check_layer(layer, rng.standard_normal((n, c_in) + hw), rng)


def test_conv2d_matches_direct_sum():
    """im2col convolution equals the defining sum, written out with loops."""
    rng = np.random.default_rng(1)
    x = rng.standard_normal((2, 2, 5, 6))
    conv = Conv2d(2, 3, 3, stride=2, padding=1, rng=rng)
    W, b = conv.params["W"], conv.params["b"]
    y = conv.forward(x)
    xp = np.pad(x, ((0, 0), (0, 0), (1, 1), (1, 1)))
    ref = np.zeros_like(y)
    for n in range(2):
        for o in range(3):
            for i in range(y.shape[2]):
                for j in range(y.shape[3]):
                    ref[n, o, i, j] = b[o] + (W[o] * xp[n, :, 2 * i:2 * i + 3,
                                                        2 * j:2 * j + 3]).sum()
    np.testing.assert_allclose(y, ref, atol=1e-12)


@pytest.mark.parametrize("k,padding,hw", [(3, 1, (5, 6)), (1, 0, (4, 3)), (3, 0, (6, 5)),
                                           (5, 2, (5, 7)), (2, 1, (4, 4))])
@pytest.mark.parametrize("backend", ["numpy", "numba"])
def test_stride1_wide_grid_conv_equals_direct_sum_and_its_gradients(k, padding, hw, backend):
    """The stride-1 path (k² GEMMs on windows of the flattened padded image, no patch
    matrix) equals the defining sum, and its three gradients equal finite differences
    (float64, 1e-6) — odd and even k, with and without padding, non-square images."""
    rng = np.random.default_rng(2)
    x = rng.standard_normal((2, 8, *hw))
    conv = Conv2d(8, 4, k, padding=padding, rng=rng, backend=backend)
    conv.params["b"][:] = rng.standard_normal(4)
    W, b = conv.params["W"], conv.params["b"]
    y = conv.forward(x)
    assert conv._cache[0] == "wide"  # c_in >= 8: the wide-grid path
    xp = np.pad(x, ((0, 0), (0, 0), (padding, padding), (padding, padding)))
    ref = np.zeros_like(y)
    for n in range(2):
        for o in range(4):
            for i in range(y.shape[2]):
                for j in range(y.shape[3]):
                    ref[n, o, i, j] = b[o] + (W[o] * xp[n, :, i:i + k, j:j + k]).sum()
    np.testing.assert_allclose(y, ref, atol=1e-12)
    check_layer(conv, x, rng)


def test_sequential_fd():
    rng = np.random.default_rng(3)
    net = Sequential(Conv2d(1, 2, 3, padding=1, rng=rng), GELU(), Flatten(),
                     Linear(2 * 4 * 4, 5, rng=rng), LayerNorm(5), Tanh())
    check_layer(net, rng.standard_normal((2, 1, 4, 4)), rng)


# -- losses ------------------------------------------------------------------------


def _check_loss(fn, x, *args, **kw):
    val, g = fn(x, *args, **kw)[:2]
    _close(g, _fd(lambda: fn(x, *args, **kw)[0], x))
    return val


@settings(max_examples=10)
@given(shape=st.tuples(st.integers(1, 4), st.integers(2, 5)), seed=st.integers(0, 10_000))
def test_mse_and_cosine_fd(shape, seed):
    rng = np.random.default_rng(seed)
    p, y = rng.standard_normal(shape), rng.standard_normal(shape)
    assert _check_loss(mse, p, y) == pytest.approx(((p - y) ** 2).sum() / shape[0])
    val = _check_loss(cosine, p, y)
    cos = (p * y).sum(1) / np.linalg.norm(p, axis=1) / np.linalg.norm(y, axis=1)
    assert val == pytest.approx(np.mean(1 - cos), rel=1e-6)


@settings(max_examples=8)
@given(n=st.integers(3, 8), d=st.integers(2, 5), seed=st.integers(0, 10_000))
def test_vicreg_fd(n, d, seed):
    rng = np.random.default_rng(seed)
    za, zb = 0.5 * rng.standard_normal((n, d)), 0.5 * rng.standard_normal((n, d))
    val, ga, gb, _ = vicreg(za, zb)
    _close(ga, _fd(lambda: vicreg(za, zb)[0], za))
    _close(gb, _fd(lambda: vicreg(za, zb)[0], zb))


def test_vicreg_terms():
    """Variance hinge is 0 for unit-variance decorrelated features and γ for constants."""
    rng = np.random.default_rng(0)
    z = rng.standard_normal((4000, 3))
    _, _, _, parts = vicreg(z, z)
    assert parts["invariance"] == 0.0
    assert parts["variance"] < 0.05 and parts["covariance"] < 0.01
    _, _, _, parts = vicreg(np.ones((10, 3)), np.ones((10, 3)))
    assert parts["variance"] == pytest.approx(2 * (1 - np.sqrt(1e-4)))


@settings(max_examples=8)
@given(n=st.integers(3, 10), d=st.integers(1, 4), seed=st.integers(0, 10_000),
       backend=st.sampled_from(["numpy", "numba"]))
def test_sigreg_fd(n, d, seed, backend):
    rng = np.random.default_rng(seed)
    z = rng.standard_normal((n, d))
    _check_loss(sigreg, z, n_directions=5, random_state=seed, backend=backend)


def test_sigreg_gaussian_small_collapsed_large():
    """SIGReg ≈ its null mean (O(1)) on N(0, I) samples, O(N) on collapsed ones (LeJEPA §4).

    Under the null, N·∫|φ_N − φ|² w has mean ∫(1 − e^{−t²}) e^{−t²/2} dt ≈ 0.13 per
    direction (at t_max = 3); a collapsed batch (all rows equal) has
    N ∫ |e^{itc} − e^{−t²/2}|² w dt, growing linearly in N.
    """
    rng = np.random.default_rng(0)
    N, D = 512, 16
    gauss = sigreg(rng.standard_normal((N, D)), n_directions=64, random_state=0)[0]
    t = np.linspace(0, 3, 2001)
    null_mean = np.trapezoid(2 * (1 - np.exp(-t * t)) * np.exp(-t * t / 2), t)
    assert 0.3 * null_mean < gauss < 3 * null_mean
    collapsed = sigreg(np.ones((N, D)) * 0.3, n_directions=64, random_state=0)[0]
    assert collapsed > 100 * gauss
    shrunk = sigreg(0.1 * rng.standard_normal((N, D)), n_directions=64, random_state=0)[0]
    assert shrunk > 20 * gauss


def test_kernels_match_reference(fast_backend, xp):
    """im2col, col2im, GELU and Epps–Pulley (uniform and non-uniform grids) = reference."""
    rng = np.random.default_rng(0)
    x = rng.standard_normal((2, 3, 7, 6))
    ref = get_kernel("im2col", "numpy")(x, 3, 2, 1)
    got = get_kernel("im2col", fast_backend)(xp.asarray(x), 3, 2, 1)
    np.testing.assert_allclose(np.asarray(got.get() if hasattr(got, "get") else got), ref,
                               atol=1e-12)
    ref2 = get_kernel("col2im", "numpy")(ref, x.shape, 3, 2, 1)
    got2 = get_kernel("col2im", fast_backend)(xp.asarray(ref), x.shape, 3, 2, 1)
    got2 = got2.get() if hasattr(got2, "get") else got2
    np.testing.assert_allclose(got2, ref2, atol=1e-12)
    for name, args in (("gelu", (x,)),
                       ("epps_pulley", (x.reshape(-1, 6), np.linspace(0, 3, 9),
                                             np.linspace(1, 0.1, 9))),
                       ("epps_pulley", (x.reshape(-1, 6), np.array([0.1, 0.5, 2.0]),
                                             np.array([1.0, 0.5, 0.2])))):
        r = get_kernel(name, "numpy")(*args)
        g = get_kernel(name, fast_backend)(*[xp.asarray(a) for a in args])
        for a, b in zip(r, g, strict=True):
            b = b.get() if hasattr(b, "get") else b
            np.testing.assert_allclose(b, a, atol=tolerance(np.float64), rtol=1e-10)


def test_mlp_rollout_kernel_matches_reference(fast_backend, xp):
    rng = np.random.default_rng(0)
    d, da, h1, h2 = 5, 2, 7, 6
    args = [rng.standard_normal(s) for s in ((9, d), (9, 4, da), (d + da, h1), (h1,), (h1, h2),
                                              (h2,), (h2, d), (d,))]
    ref = get_kernel("mlp_rollout", "numpy")(*args)
    got = get_kernel("mlp_rollout", fast_backend)(*[xp.asarray(a) for a in args])
    got = got.get() if hasattr(got, "get") else got
    np.testing.assert_allclose(got, ref, atol=1e-10, rtol=1e-10)
    # one step by hand: z1 = z0 + W3' gelu(W2' gelu(W1' [z0, a0] + b1) + b2) + b3
    gelu = get_kernel("gelu", "numpy")
    z0, A, W1, b1, W2, b2, W3, b3 = args
    u = gelu(np.concatenate([z0, A[:, 0]], 1) @ W1 + b1)[0]
    np.testing.assert_allclose(ref[:, 0], z0 + gelu(u @ W2 + b2)[0] @ W3 + b3, atol=1e-12)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_batched_mlp_rollout_matches_per_sample_rollouts(fast_backend, xp, dtype):
    """Issue 15 item 8: the batched-GEMM CEM rollout (bench shapes: 128 candidates, H = 20,
    d = 8, 128 hidden) equals rolling each candidate out alone, in float32 and float64.

    float32 tolerance: 2e-5 of the trajectory's scale (the [13/6] rational tanh is
    within 3e-7, the GEMMs' summation order differs); float64: 1e-10.
    """
    rng = np.random.default_rng(1)
    S, H, d, da, n = 128, 20, 8, 2, 128
    args = [rng.standard_normal((S, d)), rng.uniform(-1, 1, (S, H, da)),
            rng.standard_normal((d + da, n)) / 3, 0.1 * rng.standard_normal(n),
            rng.standard_normal((n, n)) / 12, 0.1 * rng.standard_normal(n),
            rng.standard_normal((n, d)) / 12, 0.1 * rng.standard_normal(d)]
    args = [a.astype(dtype) for a in args]
    ref = get_kernel("mlp_rollout", "numpy")
    per_sample = np.concatenate([ref(args[0][s:s + 1], args[1][s:s + 1], *args[2:])
                                 for s in range(S)])
    got = get_kernel("mlp_rollout", fast_backend)(*[xp.asarray(a) for a in args])
    assert got.dtype == dtype and got.shape == (S, H, d)
    got = got.get() if hasattr(got, "get") else got
    scale = np.abs(per_sample).max()
    assert scale > 1.0  # the trajectories move: a constant rollout would not test much
    tol = 2e-5 * scale if dtype == np.float32 else 1e-10 * scale
    np.testing.assert_allclose(got, per_sample, atol=tol, rtol=0)
    # and the batched reference is the per-sample one (summation order only)
    np.testing.assert_allclose(ref(*args), per_sample, atol=tol, rtol=0)


def test_col2im_is_adjoint_of_im2col():
    """<im2col(x), C> = <x, col2im(C)> for random x, C: the conv's input gradient is exact."""
    rng = np.random.default_rng(0)
    x = rng.standard_normal((2, 2, 5, 5))
    C = rng.standard_normal(get_kernel("im2col", "numpy")(x, 3, 2, 1).shape)
    lhs = (get_kernel("im2col", "numpy")(x, 3, 2, 1) * C).sum()
    rhs = (x * get_kernel("col2im", "numpy")(C, x.shape, 3, 2, 1)).sum()
    assert lhs == pytest.approx(rhs, rel=1e-12)


# -- optimiser --------------------------------------------------------------------


def test_adamw_first_step_and_decay():
    """Adam's first step moves each weight by lr·sign(g) (bias-corrected), plus lr·λ·θ."""
    rng = np.random.default_rng(0)
    lin = Linear(3, 2, rng=rng)
    W0 = lin.params["W"].copy()
    lin.grads["W"][:] = rng.standard_normal((3, 2))
    g = lin.grads["W"].copy()
    opt = AdamW([lin], lr=0.01, weight_decay=0.1)
    opt.step()
    np.testing.assert_allclose(lin.params["W"], W0 - 0.01 * (np.sign(g) + 0.1 * W0), atol=1e-6)
    np.testing.assert_allclose(lin.params["b"], 0.0)  # zero grad, no decay on biases


def test_adamw_fits_least_squares():
    """AdamW (no decay) drives a linear regression to the least-squares solution."""
    rng = np.random.default_rng(0)
    X = rng.standard_normal((64, 4))
    Wtrue = rng.standard_normal((4, 2))
    Y = X @ Wtrue + 0.3
    lin = Linear(4, 2, rng=rng)
    opt = AdamW([lin], lr=0.05)
    for step in range(600):
        zero_grad(lin)
        _, g = mse(lin.forward(X), Y)
        lin.backward(g)
        opt.step(warmup_cosine(step, 600, base=0.05, warmup=20))
    np.testing.assert_allclose(lin.params["W"], Wtrue, atol=1e-3)
    np.testing.assert_allclose(lin.params["b"], 0.3, atol=1e-3)


def test_warmup_cosine_schedule():
    assert warmup_cosine(0, 100, base=1.0, warmup=10) == pytest.approx(0.1)
    assert warmup_cosine(9, 100, base=1.0, warmup=10) == pytest.approx(1.0)
    assert warmup_cosine(55, 100, base=1.0, warmup=10, final=0.2) == pytest.approx(0.6)
    assert warmup_cosine(100, 100, base=1.0, warmup=10) == pytest.approx(0.0)


def test_bad_inputs_raise():
    with pytest.raises(ValidationError, match="Linear.forward: expected input with last axis 3"):
        Linear(3, 2).forward(np.zeros((2, 4)))
    with pytest.raises(ValidationError, match=r"Conv2d.forward: expected input of shape"):
        Conv2d(2, 2).forward(np.zeros((1, 3, 5, 5)))
    with pytest.raises(ValidationError, match="smaller than"):
        Conv2d(1, 1, 5).forward(np.zeros((1, 1, 3, 3)))
    with pytest.raises(ValidationError, match="call forward first"):
        ReLU().backward(np.zeros(3))
    with pytest.raises(ValidationError, match="same shape"):
        mse(np.zeros((2, 3)), np.zeros((3, 2)))
    with pytest.raises(ValidationError, match="sigreg: expected embeddings"):
        sigreg(np.zeros(5))
    with pytest.raises(ValidationError, match="AdamW.lr"):
        AdamW([Linear(2, 2)], lr=-1.0)
    with pytest.raises(ValidationError, match="Sequential"):
        Sequential(Linear(2, 2), "relu")
