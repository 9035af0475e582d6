"""Generalized coordinates: temporal precision, shift operator, embedding, errors, Jacobians.

Sources: Friston (2008) and Friston, Trujillo-Barreto & Daunizeau (2008); the
temporal covariance fixture for n = 3, s = 1/2 is SPM's ``spm_DEM_R`` value quoted in
the predcode issue 4 ([[1, 0, -2], [0, 2, 0], [-2, 0, 12]]).
"""

from __future__ import annotations

import numpy as np
import pytest
from scipy.linalg import expm

from predcode.exceptions import ValidationError
from predcode.kernels import get_kernel
from predcode.models.dem import GeneralizedErrors, ozaki_step
from predcode.models.generalized import (
    HDM,
    Level,
    embed,
    numerical_jacobian,
    shift_operator,
    temporal_covariance,
    temporal_precision,
)
from predcode.models.hdm_zoo import convolution_model, double_well_model, lorenz_model
from tests.conftest import _backend_params, tolerance


def test_temporal_covariance_fixture_exact():
    S = temporal_covariance(3, 0.5)
    np.testing.assert_array_equal(S, [[1, 0, -2], [0, 2, 0], [-2, 0, 12]])
    R = temporal_precision(3, 0.5)
    np.testing.assert_allclose(R @ S, np.eye(3), atol=1e-14)
    np.testing.assert_allclose(R, np.linalg.inv(np.array([[1, 0, -2], [0, 2, 0], [-2, 0, 12.0]])))


@pytest.mark.parametrize("s", [0.25, 0.5, 1.0, 2.0])
def test_temporal_covariance_matches_autocorrelation_derivatives(s):
    """S_ij = (-1)^i rho^(i+j)(0) for rho(h) = exp(-h^2/(4 s^2)), by finite differences."""
    rho = lambda h: np.exp(-(h**2) / (4 * s * s))  # noqa: E731
    d = 1e-3 * s
    d2 = (rho(d) - 2 * rho(0.0) + rho(-d)) / d**2
    d4 = (rho(2 * d) - 4 * rho(d) + 6 * rho(0.0) - 4 * rho(-d) + rho(-2 * d)) / d**4
    S = temporal_covariance(3, s)
    assert S[1, 1] == pytest.approx(-d2, rel=1e-5)
    assert S[0, 2] == pytest.approx(d2, rel=1e-5)
    assert S[2, 2] == pytest.approx(d4, rel=1e-3)
    assert np.linalg.eigvalsh(S).min() > 0


def test_shift_operator():
    u = np.arange(9.0)  # three orders of a 3-vector
    np.testing.assert_array_equal(shift_operator(3, 3) @ u, [3, 4, 5, 6, 7, 8, 0, 0, 0])


@pytest.mark.parametrize("t", [0, 3, 7, 11])
def test_embed_recovers_polynomial_derivatives(t):
    """A cubic is fitted exactly: y and its derivatives at bin t (zero beyond 3). The
    one-sided ("shift") window is exact at every bin; SPM's clamped one in the interior."""
    tt = np.arange(12.0)
    y = 0.5 + 0.2 * tt - 0.03 * tt**2 + 0.004 * tt**3
    dy = 0.2 - 0.06 * tt + 0.012 * tt**2
    ddy = -0.06 + 0.024 * tt
    want = [y[t], dy[t], ddy[t], 0.024, 0.0]
    np.testing.assert_allclose(embed(y[:, None], 5, t, boundary="shift"), want, atol=1e-9)
    if 2 <= t <= 9:
        np.testing.assert_allclose(embed(y[:, None], 5, t), want, atol=1e-9)


def test_embed_clamp_repeats_end_bins():
    """SPM's spm_DEM_embed: offsets -2..2 about t = 0, bins before the start replaced by
    the first bin, so the window holds (y0, y0, y0, y1, y2)."""
    y = np.array([1.0, 3.0, 2.0, 5.0, 4.0, 0.0])
    tau = np.arange(-2, 3)
    T = np.array([[tk**j / np.prod(np.arange(1, j + 1)) for j in range(5)] for tk in tau])
    want = np.linalg.solve(T, [1.0, 1.0, 1.0, 3.0, 2.0])
    np.testing.assert_allclose(embed(y[:, None], 5, 0), want, atol=1e-12)
    with pytest.raises(ValidationError, match="boundary"):
        embed(y[:, None], 3, 0, boundary="mirror")


def _embedded_noise_ratio(n, t, N, s, boundary):
    """E[z~' S(s)^-1 z~] / n at bin t for noise with autocorrelation exp(-h^2/(4s^2)):
    embed is linear, so z~ = E z with E from embedding unit vectors, and the expectation
    is tr(S^-1 E C E') / n exactly (1 = what the model's S(s) assumes)."""
    E = np.stack([embed(np.eye(N)[:, [k]], n, t, boundary=boundary) for k in range(N)], 1)
    lag = np.arange(N)
    C = np.exp(-((lag[:, None] - lag[None, :]) ** 2) / (4 * s * s))
    return float(np.trace(temporal_precision(n, s) @ E @ C @ E.T)) / n


def test_embedding_ends_do_not_amplify_noise():
    """The defect behind the low precision estimates and the error growth at high n:
    a one-sided Taylor window at the first bin amplifies smooth noise (s = 1/2) far beyond
    S(s): 74x nominal at n = 6 and 2400x at n = 8. SPM's clamped window stays at or below
    the interior level (0.42-0.52 at n = 6; values computed exactly)."""
    N, s = 32, 0.5
    assert _embedded_noise_ratio(6, 0, N, s, "shift") == pytest.approx(73.7, rel=0.01)
    assert _embedded_noise_ratio(8, 0, N, s, "shift") == pytest.approx(2389, rel=0.01)
    for n in (4, 6, 8):
        ends = [_embedded_noise_ratio(n, t, N, s, "clamp") for t in (0, 1, N - 1)]
        mid = _embedded_noise_ratio(n, N // 2, N, s, "clamp")
        assert 0.3 < min(ends) and max(ends) <= mid * 1.05, (n, ends, mid)
        # interior: a bin-spaced Taylor fit misses sub-bin roughness (genuine; ~0.5 of S(s))
        assert 0.45 < mid < 0.55


def test_smooth_noise_matches_temporal_covariance():
    """The simulator's noise has the autocorrelation exp(-h^2/(4 s^2)) that S(s) assumes.
    Sampled every dt = s/8 (so derivatives can be taken by central differences), the
    correlation matrix of (z, z', z'') matches that of S(3, s) = [[1, 0, -2], [0, 2, 0],
    [-2, 0, 12]] (s = 1/2) within 0.06 (finite-difference bias ~1 %, sampling ~2 %); at
    dt = 1 the variance is 1 and the lag-1 and lag-2 correlations are e^-1 and e^-4 within
    0.03. (SPM's spm_DEM_z samples the kernel only at the bins: lag-1 correlation 0.26.)"""
    from predcode.models.dem import _smooth_noise

    s, h = 0.5, 1 / 16
    z = _smooth_noise(40000, 2, s, h, np.random.default_rng(0))
    d1 = (z[2:] - z[:-2]) / (2 * h)
    d2 = (z[2:] - 2 * z[1:-1] + z[:-2]) / h**2
    S = temporal_covariance(3, s)
    sd = np.sqrt(np.diag(S))
    for j in range(2):
        X = np.stack([z[1:-1, j], d1[:, j], d2[:, j]])
        C = X @ X.T / X.shape[1]
        np.testing.assert_allclose(np.diag(C) / sd**2, 1.0, atol=0.06)
        np.testing.assert_allclose(C / np.outer(sd, sd), S / np.outer(sd, sd), atol=0.06)
    zb = _smooth_noise(40000, 1, s, 1.0, np.random.default_rng(1))[:, 0]
    assert np.var(zb) == pytest.approx(1.0, abs=0.03)
    for lag, rho in ((1, np.exp(-1)), (2, np.exp(-4))):
        assert np.mean(zb[lag:] * zb[:-lag]) == pytest.approx(rho, abs=0.03)


def test_ozaki_step_exact_for_linear_flow():
    """du/dt = J u + b integrated over dt equals the matrix-exponential solution."""
    rng = np.random.default_rng(0)
    J = rng.standard_normal((4, 4)) - 2 * np.eye(4)
    b, u0 = rng.standard_normal(4), rng.standard_normal(4)
    exact = expm(J * 0.7) @ u0 + np.linalg.solve(J, (expm(J * 0.7) - np.eye(4)) @ b)
    np.testing.assert_allclose(u0 + ozaki_step(J, J @ u0 + b, 0.7), exact, atol=1e-12)
    # singular J: pure drift
    np.testing.assert_allclose(ozaki_step(np.zeros((2, 2)), np.array([1.0, 2.0]), 0.5), [0.5, 1.0])


def _error_fd(ge, u, ytil, eta, theta):
    return numerical_jacobian(lambda a: ge.errors(a, ytil, eta, theta, jac=False)[0], u, h=1e-6)


@pytest.mark.parametrize("make", [convolution_model, lorenz_model, double_well_model])
def test_error_jacobian_matches_finite_differences(make):
    """de/du (analytic blocks, SPM local linearity) equals finite differences when the
    higher orders are zero (then the neglected second-derivative terms vanish)."""
    m = make()
    ge = GeneralizedErrors(m)
    rng = np.random.default_rng(1)
    u = np.zeros(ge.nu)
    u[: m.nx] = rng.standard_normal(m.nx) + (m.x_init() if m.nx else 0)
    nX = m.n * m.nx
    u[nX : nX + m.nv] = rng.standard_normal(m.nv)
    ytil = rng.standard_normal(m.n * m.ny)
    e, Eu = ge.errors(u, ytil, m.eta_at(0), m.theta)
    np.testing.assert_allclose(
        Eu, _error_fd(ge, u, ytil, m.eta_at(0), m.theta), atol=1e-5, rtol=1e-5
    )


@pytest.mark.parametrize("d", [None, 1, 3])
def test_error_jacobian_linear_model_everywhere(d):
    """For a linear model the generalized errors are affine in u: exact at any u, also
    with fewer orders for the causes (d < n: orders >= d of v held at zero)."""
    m = convolution_model()
    if d is not None:
        m = HDM(m.levels, theta=m.theta, n=m.n, d=d, s=m.s)
    ge = GeneralizedErrors(m)
    assert ge.nu == m.n * m.nx + (m.n if d is None else d) * m.nv
    rng = np.random.default_rng(2)
    u, ytil = rng.standard_normal(ge.nu), rng.standard_normal(m.n * m.ny)
    _, Eu = ge.errors(u, ytil, m.eta_at(0), m.theta)
    np.testing.assert_allclose(Eu, _error_fd(ge, u, ytil, m.eta_at(0), m.theta), atol=1e-7)


def test_analytic_and_numerical_level_jacobians_agree():
    ma, mn = convolution_model(analytic=True), convolution_model(analytic=False)
    x, v = np.array([0.3, -1.2]), np.array([0.7])
    a, b = ma.evaluate(x, v, ma.theta), mn.evaluate(x, v, mn.theta)
    for k in ("G", "F", "Gx", "Gv", "Fx", "Fv"):
        np.testing.assert_allclose(a[k], b[k], atol=1e-8)
    # Lorenz: numerical f_x against the hand-derived Jacobian
    ml = lorenz_model()
    x = np.array([1.0, -2.0, 25.0])
    th = ml.theta
    # rows of M(x) x / 32: (-t1 x1 + t1 x2, (t3 - x3) x1 - x2 - x1 x3, 2 x1 x2 + t2 x3)
    Fx = (
        np.array(
            [[-th[0], th[0], 0.0], [th[2] - 2 * x[2], -1.0, -2 * x[0]], [2 * x[1], 2 * x[0], th[1]]]
        )
        / 32
    )
    np.testing.assert_allclose(ml.evaluate(x, np.zeros(1), th)["Fx"], Fx, atol=1e-7)


def test_theta_jacobian_matches_hand_formula():
    """Order-0 data error y - C x: d e / d C_ij = -x_j on row i."""
    m = convolution_model()
    ge = GeneralizedErrors(m)
    rng = np.random.default_rng(3)
    u, ytil = rng.standard_normal(ge.nu), rng.standard_normal(m.n * m.ny)
    J = ge.theta_jacobian(u, ytil, m.eta_at(0), m.theta, np.arange(6, 14))
    x = u[:2]
    for i in range(4):
        for j in range(2):
            expect = np.zeros(4)
            expect[i] = -x[j]
            np.testing.assert_allclose(J[:4, 2 * i + j], expect, atol=1e-8)


def test_precision_components_sum_and_logdet():
    m = convolution_model()
    ge = GeneralizedErrors(m)
    h = np.array([1.0, -0.5, 2.0])
    P = ge.precision(h)
    assert np.allclose(P, P.T)
    assert ge.logdet_precision(h) == pytest.approx(np.linalg.slogdet(P)[1], rel=1e-9)


@pytest.mark.parametrize("dtype", ["float64"])
@pytest.mark.parametrize("fast_backend", _backend_params(("numba",)))  # DEM has no cupy version
def test_dem_accumulate_kernel_matches_reference(fast_backend, dtype):
    xp = np
    rng = np.random.default_rng(4)
    E = rng.standard_normal((7, 9))
    J = rng.standard_normal((7, 9, 5))
    A = rng.standard_normal((9, 9))
    P = A @ A.T + 9 * np.eye(9)
    ref = get_kernel("dem_accumulate", "numpy")(E, J, P)
    got = get_kernel("dem_accumulate", fast_backend)(xp.asarray(E), xp.asarray(J), xp.asarray(P))
    tol = tolerance(dtype)
    for r, g in zip(ref, got, strict=True):
        g = g.get() if hasattr(g, "get") else g
        np.testing.assert_allclose(np.asarray(g), np.asarray(r), rtol=tol, atol=tol)
    # and the reference against the plain per-bin sum
    g_ref = sum(J[t].T @ P @ E[t] for t in range(7))
    np.testing.assert_allclose(ref[0], g_ref, rtol=1e-12)


# ---------------------------------------------------------------- bad inputs
def _level(**kw):
    base = {"g": lambda x, v, th: x[:1], "f": lambda x, v, th: -x, "n_out": 1, "n_x": 2, "n_v": 1}
    base.update(kw)
    return Level(**base)


def test_non_positive_definite_precision_raises():
    with pytest.raises(ValidationError, match=r"levels\[0\]\.V.*not positive definite"):
        HDM([_level(V=[[-1.0]])])
    with pytest.raises(ValidationError, match=r"levels\[0\]\.W.*not positive definite"):
        HDM([_level(W=[[1.0, 2.0], [2.0, 1.0]])])


def test_mismatched_f_g_dimensions_raise():
    with pytest.raises(
        ValidationError, match=r"levels\[0\]\.g: returns shape \(2,\), but n_out = 1"
    ):
        HDM([_level(g=lambda x, v, th: x)])
    with pytest.raises(ValidationError, match=r"levels\[0\]\.f: returns shape \(1,\), but n_x = 2"):
        HDM([_level(f=lambda x, v, th: x[:1])])
    with pytest.raises(ValidationError, match=r"levels\[1\]\.n_out"):
        HDM([_level(), Level(g=lambda x, v, th: v, n_out=3, n_v=3)])
    with pytest.raises(ValidationError, match="needs a flow f"):
        HDM([_level(f=None)])


def test_cause_order_validated():
    m = convolution_model()
    with pytest.raises(ValidationError, match="HDM.d"):
        HDM(m.levels, theta=m.theta, n=4, d=5)
    with pytest.raises(ValidationError, match="HDM.boundary"):
        HDM(m.levels, theta=m.theta, n=4, boundary="wrap")


def test_nan_and_wrong_shaped_data_raise():
    m = HDM([_level()], n=3)
    Y = np.zeros((10, 1))
    Y[4] = np.nan
    with pytest.raises(ValidationError, match="NaN"):
        m.check_data(Y)
    with pytest.raises(ValidationError, match=r"expected shape \(n, 1\)"):
        m.check_data(np.zeros((10, 2)))
    with pytest.raises(ValidationError, match="at least n = 3"):
        m.check_data(np.zeros((2, 1)))
    with pytest.raises(ValidationError, match="n must be an int|expected an int"):
        temporal_covariance(0, 0.5)
    with pytest.raises(ValidationError):
        temporal_covariance(3, -1.0)
