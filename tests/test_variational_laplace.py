"""Variational Laplace and hierarchical EM against closed forms and brute force.

Sources: the free energy and M-step of spm_nlsi_GN (Friston et al. 2007,
NeuroImage 34:220-234); hierarchical linear models and EM (Friston 2005, Phil.
Trans. R. Soc. B 360:815-836; Friston et al. 2002, NeuroImage 16:465-483). For
linear-Gaussian models the Laplace posterior and bound are exact.
"""

from __future__ import annotations

import numpy as np
import pytest
from scipy.optimize import minimize, minimize_scalar

from predcode.exceptions import ValidationError
from predcode.models import variational_laplace as vl


@pytest.fixture
def linear():
    rng = np.random.default_rng(0)
    n, p = 30, 3
    X = rng.standard_normal((n, p))
    y = X @ np.array([1.0, -2.0, 0.5]) + 0.5 * rng.standard_normal(n)
    return X, y


def _precision_form(y, X, pE, pC, Ce):
    """Posterior in precision form (independent of the covariance form)."""
    P = X.T @ np.linalg.solve(Ce, X) + np.linalg.inv(pC)
    C = np.linalg.inv(P)
    return C @ (X.T @ np.linalg.solve(Ce, y) + np.linalg.solve(pC, pE)), C


def test_linear_gaussian_posterior_forms_agree(linear):
    X, y = linear
    pE, pC, Ce = np.array([0.5, 0, 0]), np.diag([4.0, 1.0, 2.0]), 0.3 * np.eye(30)
    m, C, logev = vl.linear_gaussian_posterior(y, X, pE, pC, Ce)
    m2, C2 = _precision_form(y, X, pE, pC, Ce)
    np.testing.assert_allclose(m, m2, atol=1e-10)
    np.testing.assert_allclose(C, C2, atol=1e-12)
    from scipy.stats import multivariate_normal
    assert logev == pytest.approx(
        multivariate_normal(X @ pE, X @ pC @ X.T + Ce).logpdf(y), abs=1e-9)


def test_vl_linear_known_precision_is_exact(linear):
    """Fixed precision: Ep, Cp = closed form and F = ln p(y) (to 1e-8)."""
    X, y = linear
    pE, pC = np.zeros(3), 4.0 * np.eye(3)
    m, C, logev = vl.linear_gaussian_posterior(y, X, pE, pC, 0.25 * np.eye(30))
    r = vl.variational_laplace(y, lambda t: X @ t, pE, pC, hE=np.log(4.0),
                               learn_precision=False, tol=1e-12)
    assert r.converged
    np.testing.assert_allclose(r.Ep, m, atol=1e-7)
    np.testing.assert_allclose(r.Cp, C, atol=1e-10)
    assert r.F == pytest.approx(logev, abs=1e-8)
    assert np.all(np.diff(r.F_history) > 0)


def test_vl_two_precision_components(linear):
    """Pi = e^h1 Q1 + e^h2 Q2 with fixed h: the closed form with Ce = Pi^{-1}."""
    X, y = linear
    Q1 = np.diag(np.r_[np.ones(15), np.zeros(15)])
    Q2 = np.eye(30) - Q1
    h = np.array([1.0, 2.5])
    Ce = np.linalg.inv(np.exp(h[0]) * Q1 + np.exp(h[1]) * Q2)
    m, C, logev = vl.linear_gaussian_posterior(y, X, np.zeros(3), np.eye(3), Ce)
    r = vl.variational_laplace(y, lambda t: X @ t, np.zeros(3), np.eye(3), Q=[Q1, Q2], hE=h,
                               hC=np.eye(2), learn_precision=False, tol=1e-12)
    np.testing.assert_allclose(r.Ep, m, atol=1e-7)
    assert r.F == pytest.approx(logev, abs=1e-8)


def test_vl_precision_is_map_of_marginal_likelihood(linear):
    """Learned h maximises ln p(y|h) + ln N(h; hE, hC); F is its Laplace approximation."""
    X, y = linear
    pE, pC, hE, hC = np.zeros(3), 4.0 * np.eye(3), 0.0, 2.0

    def log_post(h):
        ev = vl.linear_gaussian_posterior(y, X, pE, pC, np.exp(-h) * np.eye(30))[2]
        return ev - 0.5 * (h - hE) ** 2 / hC - 0.5 * np.log(2 * np.pi * hC)

    r = vl.variational_laplace(y, lambda t: X @ t, pE, pC, hE=hE, hC=hC, tol=1e-10)
    best = minimize_scalar(lambda h: -log_post(h), bounds=(-5, 8), method="bounded",
                           options={"xatol": 1e-10})
    assert r.Eh[0] == pytest.approx(best.x, abs=1e-4)
    hs = np.linspace(best.x - 4, best.x + 4, 4001)
    lp = np.array([log_post(h) for h in hs])
    log_marginal = lp.max() + np.log(np.sum(np.exp(lp - lp.max())) * (hs[1] - hs[0]))
    # F is the Laplace approximation of ln p(y) over h, with the expected (Fisher)
    # curvature n/2 + 1/hC: exact to rounding; and within 0.1 nats of the exact integral
    assert r.Ch[0, 0] == pytest.approx(1 / (30 / 2 + 1 / hC), rel=1e-8)
    assert r.F == pytest.approx(log_post(r.Eh[0]) + 0.5 * np.log(2 * np.pi * r.Ch[0, 0]),
                                abs=1e-8)
    assert r.F == pytest.approx(log_marginal, abs=0.1)


def test_numerical_jacobian_matches_analytic():
    x = np.linspace(0, 3, 20)
    def g(t):
        return np.exp(t[0]) * np.exp(-np.exp(t[1]) * x)
    def J(t):
        f = g(t)
        return np.column_stack([f, -np.exp(t[1]) * x * f])
    for t in (np.array([0.3, -0.2]), np.array([1.2, 0.5])):
        np.testing.assert_allclose(vl.numerical_jacobian(g, t), J(t), rtol=1e-8, atol=1e-10)


def test_vl_nonlinear_recovers_parameters_and_curvature():
    """Exponential decay, small noise: Ep near the truth; Cp = (J'PiJ + pC^-1)^-1 at Ep."""
    x = np.linspace(0, 3, 40)
    def g(t):
        return np.exp(t[0]) * np.exp(-np.exp(t[1]) * x)
    truth = np.array([np.log(2.5), np.log(0.8)])
    y = g(truth) + 0.02 * np.random.default_rng(3).standard_normal(x.size)
    r = vl.variational_laplace(y, g, np.zeros(2), np.eye(2), hE=0.0, hC=16.0, tol=1e-8)
    assert r.converged
    np.testing.assert_allclose(r.Ep, truth, atol=0.03)
    assert np.exp(-r.Eh[0] / 2) == pytest.approx(0.02, rel=0.3)  # noise s.d.
    J = vl.numerical_jacobian(g, r.Ep)
    np.testing.assert_allclose(r.Cp, np.linalg.inv(np.exp(r.Eh[0]) * J.T @ J + np.eye(2)),
                               rtol=1e-3)
    # with an analytic Jacobian the same answer
    def jac(t):
        f = g(t)
        return np.column_stack([f, -np.exp(t[1]) * x * f])
    r2 = vl.variational_laplace(y, g, np.zeros(2), np.eye(2), hE=0.0, hC=16.0, tol=1e-8,
                                jacobian=jac)
    np.testing.assert_allclose(r2.Ep, r.Ep, atol=1e-5)
    assert r2.F == pytest.approx(r.F, abs=1e-4)


def test_model_comparison_prefers_true_model():
    from predcode.reproduce.friston2005_vl import compare_models

    for truth in ("exponential", "quadratic"):
        c = compare_models(truth, seed=7)
        assert c["best"] == truth, {k: v["F"] for k, v in c["models"].items()}


@pytest.fixture
def hier():
    rng = np.random.default_rng(1)
    n, p1, p2 = 60, 8, 2
    X1, X2 = rng.standard_normal((n, p1)), rng.standard_normal((p1, p2))
    t1 = X2 @ rng.standard_normal(p2) + 0.7 * rng.standard_normal(p1)
    y = X1 @ t1 + 0.3 * rng.standard_normal(n)
    return y, X1, X2


def test_hierarchical_known_precision_equals_joint_gaussian(hier):
    """E-step (precision form) = covariance-form conditioning of the joint Gaussian."""
    y, X1, X2 = hier
    lam = np.array([2.0, 0.5])
    eta2, C2 = np.array([0.3, -0.2]), np.diag([2.0, 0.5])
    r = vl.hierarchical_em(y, [X1, X2], eta=eta2, C=C2, lam0=lam, learn_precision=False)
    p1 = X1.shape[1]
    # joint prior of (theta1, theta2) and y
    S11 = X2 @ C2 @ X2.T + np.exp(-lam[1]) * np.eye(p1)
    S = np.block([[S11, X2 @ C2], [C2 @ X2.T, C2]])
    m = np.concatenate([X2 @ eta2, eta2])
    A = np.hstack([X1, np.zeros((X1.shape[0], 2))])
    Syy = A @ S @ A.T + np.exp(-lam[0]) * np.eye(len(y))
    K = S @ A.T @ np.linalg.inv(Syy)
    mean = m + K @ (y - A @ m)
    cov = S - K @ A @ S
    np.testing.assert_allclose(np.concatenate(r["theta"]), mean, atol=1e-9)
    np.testing.assert_allclose(r["cov"], cov, atol=1e-9)
    assert r["F"] == pytest.approx(
        vl.hierarchical_log_evidence(y, [X1, X2], lam, eta=eta2, C=C2), abs=1e-9)


def test_hierarchical_em_finds_ml_precisions(hier):
    """EM's log-precisions = brute-force argmax of ln p(y|lambda); F increases."""
    y, X1, X2 = hier
    r = vl.hierarchical_em(y, [X1, X2])
    assert r["converged"]
    opt = minimize(lambda lam: -vl.hierarchical_log_evidence(y, [X1, X2], lam), np.zeros(2),
                   method="Nelder-Mead", options={"xatol": 1e-9, "fatol": 1e-12,
                                                  "maxiter": 4000})
    np.testing.assert_allclose(r["lam"], opt.x, atol=1e-4)
    assert r["F"] == pytest.approx(-opt.fun, abs=1e-7)
    assert np.diff(r["F_history"]).min() > -1e-9


def test_three_level_em_matches_brute_force():
    """Three levels: EM's lambda = Nelder-Mead argmax of ln p(y|lambda) (marginal moments);
    one level with fixed precision = the closed-form linear-Gaussian posterior."""
    rng = np.random.default_rng(4)
    X1, X2, X3 = (rng.standard_normal(s) for s in ((80, 10), (10, 4), (4, 2)))
    t3 = rng.standard_normal(2)
    t2 = X3 @ t3 + 0.5 * rng.standard_normal(4)
    t1 = X2 @ t2 + 0.8 * rng.standard_normal(10)
    y = X1 @ t1 + 0.3 * rng.standard_normal(80)
    r = vl.hierarchical_em(y, [X1, X2, X3])
    assert r["converged"] and [t.size for t in r["theta"]] == [10, 4, 2]
    opt = minimize(lambda lam: -vl.hierarchical_log_evidence(y, [X1, X2, X3], lam), np.zeros(3),
                   method="Nelder-Mead", options={"xatol": 1e-9, "fatol": 1e-12,
                                                  "maxiter": 8000})
    assert r["F"] == pytest.approx(-opt.fun, abs=1e-6)
    np.testing.assert_allclose(r["lam"], opt.x, atol=1e-3)
    one = vl.hierarchical_em(y, [X1], eta=np.zeros(10), C=2 * np.eye(10), lam0=[1.5],
                             learn_precision=False)
    m, C, logev = vl.linear_gaussian_posterior(y, X1, np.zeros(10), 2 * np.eye(10),
                                               np.exp(-1.5) * np.eye(80))
    np.testing.assert_allclose(one["theta"][0], m, atol=1e-9)
    assert one["F"] == pytest.approx(logev, abs=1e-9)


def test_bad_inputs(linear):
    X, y = linear
    def g(t):
        return X @ t
    with pytest.raises(ValidationError, match="positive definite"):
        vl.variational_laplace(y, g, np.zeros(3), np.diag([1.0, -1.0, 1.0]))
    with pytest.raises(ValidationError, match="symmetric"):
        vl.variational_laplace(y, g, np.zeros(3), np.array([[1, 0.5, 0], [0, 1, 0], [0, 0, 1.]]))
    with pytest.raises(ValidationError, match=r"pC: expected shape \(3, 3\)"):
        vl.variational_laplace(y, g, np.zeros(3), np.eye(2))
    y_bad = y.copy()
    y_bad[3] = np.nan
    with pytest.raises(ValidationError, match="NaN"):
        vl.variational_laplace(y_bad, g, np.zeros(3), np.eye(3))
    with pytest.raises(ValidationError, match="returned shape"):
        vl.variational_laplace(y, lambda t: (X @ t)[:-1], np.zeros(3), np.eye(3))
    with pytest.raises(ValidationError, match="hC: must be positive definite"):
        vl.variational_laplace(y, g, np.zeros(3), np.eye(3), hC=-1.0)
    with pytest.raises(ValidationError, match=r"Q\[1\]: a precision component must be"):
        vl.variational_laplace(y, g, np.zeros(3), np.eye(3), Q=[np.eye(30), -np.eye(30)])
    with pytest.raises(ValidationError, match="sum to a positive-definite"):
        vl.variational_laplace(y, g, np.zeros(3), np.eye(3),
                               Q=[np.diag(np.r_[np.ones(29), 0.0])])
    with pytest.raises(ValidationError, match="hE: expected shape"):
        vl.variational_laplace(y, g, np.zeros(3), np.eye(3), hE=np.zeros(2))
    with pytest.raises(ValidationError, match=r"designs\[0\]: expected shape"):
        vl.hierarchical_em(y, [X[:-1], np.ones((3, 1))])
    with pytest.raises(ValidationError, match=r"designs\[1\]: expected shape \(3, n\)"):
        vl.hierarchical_em(y, [X, np.ones((4, 1))])
    with pytest.raises(ValidationError, match="list of design matrices"):
        vl.hierarchical_em(y, X)
    with pytest.raises(ValidationError, match="lam0"):
        vl.hierarchical_em(y, [X], lam0=[0.0, 0.0])
    with pytest.raises(ValidationError, match="Ce: must be positive definite"):
        vl.linear_gaussian_posterior(y, X, np.zeros(3), np.eye(3), np.zeros((30, 30)))


def test_precision_gradient_is_derivative_of_log_evidence(linear):
    """Linear model at the posterior mean: dF/dh = d ln p(y|h)/dh (finite differences)."""
    X, y = linear
    pC = 4.0 * np.eye(3)
    Q = [np.diag(np.r_[np.ones(10), np.zeros(20)]), np.diag(np.r_[np.zeros(10), np.ones(20)])]
    h = np.array([0.7, 1.9])

    def logev(hh):
        Ce = np.linalg.inv(np.exp(hh[0]) * Q[0] + np.exp(hh[1]) * Q[1])
        return vl.linear_gaussian_posterior(y, X, np.zeros(3), pC, Ce)

    mean = logev(h)[0]
    dFdh, dFdhh = vl.precision_gradient(h, Q, X, y - X @ mean, np.linalg.inv(pC))
    step = 1e-5
    fd = [(logev(h + step * np.eye(2)[i])[2] - logev(h - step * np.eye(2)[i])[2]) / (2 * step)
          for i in range(2)]
    np.testing.assert_allclose(dFdh, fd, rtol=1e-6, atol=1e-7)
    # expected curvature: -tr(P_i S P_j S)/2 = -n_i/2 for disjoint components
    np.testing.assert_allclose(dFdhh, -np.diag([5.0, 10.0]), atol=1e-12)


def test_vl_mean_is_mode_of_log_joint():
    """Nonlinear model, fixed precision: Ep is the MAP (scipy), to well within its s.d.

    Steps are accepted when the Laplace F rises, and F also depends on theta through
    ln|Cp(J(theta))|, which the Gauss-Newton gradient ignores (as in spm_nlsi_GN); so
    Ep may stop a hair from the log-joint mode: allowed 2 % of a posterior s.d.
    """
    x = np.linspace(0, 3, 40)

    def g(t):
        return np.exp(t[0]) * np.exp(-np.exp(t[1]) * x)

    y = g(np.array([0.9, -0.2])) + 0.1 * np.random.default_rng(5).standard_normal(x.size)
    h = np.log(100.0)
    r = vl.variational_laplace(y, g, np.zeros(2), np.eye(2), hE=h, learn_precision=False,
                               tol=1e-10)

    def neg_log_joint(t):
        e = y - g(t)
        return 0.5 * np.exp(h) * e @ e + 0.5 * t @ t

    mode = minimize(neg_log_joint, r.Ep + 0.05, method="BFGS", options={"gtol": 1e-10}).x
    sd = np.sqrt(np.diag(r.Cp))
    assert np.all(np.abs(r.Ep - mode) < 0.02 * sd), (r.Ep - mode) / sd


def test_spm_default_hyperpriors(linear):
    """Without hE/hC, the prior on h is SPM12's: mean 4 - ln var(y), variance e^-4."""
    X, y = linear
    r = vl.variational_laplace(y, lambda t: X @ t, np.zeros(3), 4 * np.eye(3))
    hE = 4 - np.log(np.var(y))
    ml = -np.log(np.mean((y - X @ np.linalg.lstsq(X, y, rcond=None)[0]) ** 2))
    # the tight prior keeps Eh between its mean and the ML value, much nearer the prior
    lo, hi = sorted([hE, ml])
    assert lo <= r.Eh[0] <= hi
    assert abs(r.Eh[0] - hE) < abs(r.Eh[0] - ml)
    assert r.converged


def test_vl_reverts_from_a_step_where_g_overflows():
    """A step into a region where g is not finite is undone with a smaller step (as SPM does);
    a model that is never finite raises DivergenceError naming g."""
    from predcode.exceptions import DivergenceError

    x = np.linspace(0, 3, 30)
    n_bad = [0]

    def g(t):
        if t[0] > 3.0:  # pretend the simulator breaks down here
            n_bad[0] += 1
            return np.full_like(x, np.nan)
        return np.exp(t[0]) * np.exp(-np.exp(t[1]) * x)

    y = g(np.array([2.9, 0.0])) + 0.05 * np.random.default_rng(2).standard_normal(x.size)
    n_bad[0] = 0
    r = vl.variational_laplace(y, g, np.array([1.0, 2.0]), np.eye(2) * 4.0, hE=np.log(400.0),
                               hC=1.0)
    assert n_bad[0] > 0                       # the breakdown region was hit ...
    assert r.Ep[0] <= 3.0 and np.isfinite(r.F)  # ... and the estimate stayed out of it
    assert np.all(np.isfinite(g(r.Ep)))
    assert np.all(np.diff(r.F_history[2:]) > 0)
    with pytest.raises(DivergenceError, match="g: returned NaN"):
        vl.variational_laplace(y, lambda t: np.full(30, np.nan), np.zeros(2), np.eye(2))
