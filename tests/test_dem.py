"""DEM and generalized filtering: analytic solutions, free energy, reproductions.

Analytic references: for a static linear-Gaussian model y = G v + z, v ~ N(eta, P_v^-1),
the posterior is N((G'P_z G + P_v)^-1 (G'P_z y + P_v eta), (G'P_z G + P_v)^-1); in
generalized coordinates with constant data the order-0 block of the D-step's
conditional mean and covariance must equal it (S(s)_00 = 1). For a linear dynamic
model with constant data the D-step's flow Du + dF/du is affine, so its fixed point
is u* = (D - H)^-1 Eu' Pi e0 in closed form.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

from predcode.exceptions import BackendError, DivergenceError, ValidationError
from predcode.models.dem import (
    DEM,
    GeneralizedErrors,
    extended_kalman_filter,
    generalized_filter,
    simulate,
)
from predcode.models.generalized import HDM, Level, embed
from predcode.models.hdm_zoo import conv_cause, convolution_model, lorenz_model
from predcode.reproduce.dem2008 import demo_triple, run

G = np.array([[1.0, 0.5], [-0.3, 2.0], [0.7, 0.1]])
PZ = np.diag([4.0, 2.0, 1.0])
PV = np.array([[1.0, 0.2], [0.2, 0.5]])
ETA = np.array([0.3, -0.4])


def _static_model(n=3, s=0.5, theta_precision=1e8):
    lv = Level(
        g=lambda x, v, th: G @ v,
        n_out=3,
        n_x=0,
        n_v=2,
        V=PZ,
        gx=lambda x, v, th: np.zeros((3, 0)),
        gv=lambda x, v, th: G,
    )
    return HDM([lv], eta=ETA, eta_precision=PV, n=n, s=s, theta_precision=theta_precision)


@pytest.mark.parametrize("backend", ["numpy", "numba"])
def test_dstep_static_linear_gaussian_posterior_is_exact(backend):
    y = np.array([1.0, -0.5, 2.0])
    m = _static_model()
    d = DEM(m, n_iter=1, backend=backend).fit(np.tile(y, (40, 1)))
    Ppost = G.T @ PZ @ G + PV
    mean = np.linalg.solve(Ppost, G.T @ PZ @ y + PV @ ETA)
    np.testing.assert_allclose(d.v_[-1], mean, atol=1e-8)
    np.testing.assert_allclose(d.Su_[-1][:2], np.diag(np.linalg.inv(Ppost)), rtol=1e-8)


def test_dstep_linear_dynamic_fixed_point_closed_form():
    # n = 4, precisions e^2: the D-step Jacobian D - H has spectral abscissa -0.13
    # (measured), so 200 bins converge to 1e-10. (With n = 6 and e^8 it is +0.065:
    # an unstable mode, see docs/dem.rst.)
    m = convolution_model(n=4, hv=2.0, hw=2.0)
    ge = GeneralizedErrors(m)
    y = np.array([0.2, -0.1, 0.05, 0.3])
    Y = np.tile(y, (200, 1))
    d = DEM(m, n_iter=1, scheme="predcode").fit(Y)
    ytil = embed(Y, m.n, 100)
    e0, Eu = ge.errors(np.zeros(ge.nu), ytil, m.eta_at(0), m.theta)
    P = ge.precision(m.h_prior())
    H = Eu.T @ P @ Eu
    ustar = np.linalg.solve(ge.Du - H, Eu.T @ P @ e0)
    np.testing.assert_allclose(d.u_[-1], ustar, atol=1e-7)


def test_estep_static_parameter_closed_form():
    """y_t = theta + z: one Gauss-Newton step gives the exact conditional mean of theta."""
    lv = Level(g=lambda x, v, th: np.array([th[0]]), n_out=1, n_x=0, n_v=1, hv=1.0)
    m = HDM([lv], theta=[0.5], theta_precision=2.0, n=3, s=0.5)
    rng = np.random.default_rng(0)
    Y = 1.7 + 0.3 * rng.standard_normal((30, 1))
    d = DEM(m, n_iter=3, learn_theta=[0]).fit(Y)
    ge = GeneralizedErrors(m)
    R = ge.R * np.exp(1.0)
    Yt = np.array([embed(Y, 3, t) for t in range(30)])
    num = sum(R[0] @ Yt[t] for t in range(30)) + 2.0 * 0.5
    theta = num / (30 * R[0, 0] + 2.0)
    assert d.theta_[0] == pytest.approx(theta, rel=1e-8)
    assert d.Sigma_theta_[0, 0] == pytest.approx(1 / (30 * R[0, 0] + 2.0), rel=1e-8)


def test_generalized_filter_is_a_thin_call_of_lap():
    """generalized_filter runs SPM's spm_LAP (predcode.LAP): the same numbers as LAP."""
    from predcode.models.lap import LAP

    m = convolution_model()
    sim = simulate(m, conv_cause(32), random_state=3)
    lap = LAP(m, n_iter=1).fit(sim["Y"])
    gf = generalized_filter(m, sim["Y"])
    np.testing.assert_array_equal(gf["u"], lap.u_)
    np.testing.assert_array_equal(gf["F"], lap.F_t_)
    assert gf["h"].shape == (32, len(m.h_prior()))
    with pytest.warns(DeprecationWarning, match="h_variance = 1 / h_precision"):
        generalized_filter(m, sim["Y"], h_precision=0.5)
    with pytest.raises(ValidationError, match=r"^generalized_filter\.h_precision: deprecated"):
        generalized_filter(m, sim["Y"], h_precision=0.5, h_variance=2.0)


def test_generalized_filter_learns_parameter_online():
    """A static intercept: the online parameter moves from its prior mean 0 towards the
    data (1.5) at every bin of a pass, and further over iterations (F rises)."""
    lv = Level(g=lambda x, v, th: np.array([th[0]]), n_out=1, n_x=0, n_v=1, hv=2.0)
    m = HDM([lv], theta=[0.0], theta_precision=1.0, n=2, s=0.5)
    Y = np.full((24, 1), 1.5)
    out = generalized_filter(m, Y, learn_theta=[0])
    th = out["theta"][:, 0]
    assert th[0] == 0.0 and np.all(np.diff(th) > 0) and 0 < th[-1] < 1.5, th
    out8 = generalized_filter(m, Y, learn_theta=[0], n_iter=4)
    assert 1.0 < out8["theta"][-1, 0] < 1.5, out8["theta"][-1]
    assert np.all(np.diff(out8["model"].history_["F"]) > 0), out8["model"].history_["F"]


def test_convolution_cause_recovery_and_ekf():
    m = convolution_model()
    U = conv_cause(32)
    sim = simulate(m, U, random_state=0)
    d = DEM(m, n_iter=2).fit(sim["Y"])
    assert np.corrcoef(d.v_[:, 0], U[:, 0])[0, 1] > 0.8
    ek = extended_kalman_filter(m, sim["Y"])
    assert np.sqrt(np.mean((d.x_ - sim["x"]) ** 2)) < np.sqrt(np.mean((ek["x"] - sim["x"]) ** 2))


def test_triple_estimation_free_energy_rises_and_moves_to_truth():
    r = demo_triple(n_iter=6)
    F = np.array(r["F"])
    assert np.all(np.diff(F) > -1e-6), F
    err_prior = np.abs(np.array(r["theta_prior"]) - r["theta_true"])
    err_post = np.abs(np.array(r["theta"]) - r["theta_true"])
    assert np.all(err_post < err_prior)
    assert 4.0 < r["hv"] < 12.5 and 4.0 < r["hw"] < 12.5


def test_bad_options_raise_at_fit():
    """Parameters are stored by __init__ and validated by fit (one line each)."""
    m = convolution_model()
    Y = np.zeros((32, 4))
    for params, msg in (
        ({"learn_theta": [99]}, r"^DEM\.learn_theta: indices must lie in \[0, 14\)"),
        ({"learn_h": [("z", 3)]}, r"^DEM\.learn_h: unknown block"),
        ({"n_iter": 0}, r"^DEM\.n_iter: must be >= 1"),
        ({"h_precision": -1.0}, r"^DEM\.h_precision"),
    ):
        dem = DEM(m, **params)  # no error yet
        with pytest.raises(ValidationError, match=msg):
            dem.fit(Y)
        assert not dem._is_fitted()
    with pytest.raises(ValidationError, match=r"^DEM\.model: expected an HDM"):
        DEM(3.0).fit(Y)
    with pytest.raises(ValidationError, match=r"^zoo_model\.name: unknown model 'nope'"):
        DEM("nope").fit(Y)
    Y[3, 1] = np.nan
    with pytest.raises(ValidationError, match="NaN"):
        DEM(m).fit(Y)


def test_cupy_is_refused_in_one_line():
    """DEM has no device version (the registry says so): backend='cupy' is one clear line."""
    from predcode.kernels.registry import FAMILIES

    assert FAMILIES["dem"]["cupy"] is None
    with pytest.raises(BackendError, match=r"^DEM\.backend: DEM runs on the host only") as err:
        DEM(convolution_model(), backend="cupy").fit(np.zeros((32, 4)))
    assert "\n" not in str(err.value)
    with pytest.raises(BackendError, match=r"^generalized_filter\.backend: DEM runs on the host"):
        generalized_filter(convolution_model(), np.zeros((32, 4)), backend="cupy")


def test_zoo_model_by_name_equals_the_built_model():
    Y = simulate(convolution_model(n=3), conv_cause(16), random_state=1)["Y"]
    a = DEM(convolution_model(n=3), n_iter=2).fit(Y)
    b = DEM({"zoo": "convolution", "params": {"n": 3}}, n_iter=2).fit(Y)
    np.testing.assert_array_equal(a.u_, b.u_)
    assert a.history_["F"] == b.history_["F"]


def test_partial_fit_continues_the_scheme_like_fit():
    """Iterations are the epochs: fit(n_iter=3) equals fit(n_iter=1) + 2 partial_fit,
    also through save/load (the scheme's step control is saved with the posterior)."""
    r = demo_triple(n_iter=3)
    Y = r["sim"]["Y"]
    full = r["dem"]
    part = DEM(**{**full.get_params(), "n_iter": 1}).fit(Y)
    part.partial_fit(Y).partial_fit(Y)
    np.testing.assert_array_equal(part.theta_, full.theta_)
    np.testing.assert_array_equal(part.u_, full.u_)
    assert part.history_["F_all"] == full.history_["F_all"]


def _user_model():
    A = np.array([[-0.5]])
    lv = Level(g=lambda x, v, th: 2.0 * x, f=lambda x, v, th: A @ x + v, n_out=1, n_x=1,
               n_v=1, hv=4.0, hw=4.0)
    return HDM([lv], n=3, s=0.5)


def test_save_load_with_a_user_hdm(tmp_path):
    """User callables cannot go into .npz: everything else is saved, the HDM is given back."""
    import predcode

    m = _user_model()
    Y = simulate(m, conv_cause(20), random_state=0)["Y"]
    d = DEM(m, n_iter=2, learn_h=[("v", 0)]).fit(Y)
    path = d.save(tmp_path / "dem.npz")
    for load in (DEM.load, predcode.load_model):
        with pytest.raises(ValidationError, match=r"DEM\.load\(path, model=hdm\)") as err:
            load(path)
        assert "\n" not in str(err.value)
    back = DEM.load(path, model=m)
    np.testing.assert_array_equal(back.infer(Y), d.infer(Y))
    np.testing.assert_array_equal(back.energy(Y), d.energy(Y))
    np.testing.assert_array_equal(back.u_, d.u_)
    assert back.history_ == d.history_
    back.partial_fit(Y)
    d.partial_fit(Y)
    np.testing.assert_array_equal(back.h_, d.h_)
    with pytest.raises(ValidationError, match=r"^DEM\.load\.model: the HDM given has sizes"):
        DEM.load(path, model=convolution_model())


def test_changed_zoo_model_is_saved_as_a_user_model(tmp_path):
    m = lorenz_model(n=3)
    assert m.zoo_spec() == {"zoo": "lorenz", "params": {"x0": [0.9, 0.8, 30.0], "n": 3}}
    m.levels[0].x0 = np.array([2.0, 8.0, 22.0])
    assert m.zoo_spec() is None  # no longer the zoo's model
    Y = simulate(lorenz_model(n=3), np.zeros((16, 1)), random_state=0)["Y"]
    path = DEM(m, n_iter=1).fit(Y).save(tmp_path / "lorenz")
    with pytest.raises(ValidationError, match="user-built HDM"):
        DEM.load(path)
    back = DEM.load(path, model=m)
    np.testing.assert_array_equal(back.x_, DEM(m, n_iter=1).fit(Y).x_)


def test_energy_is_the_negative_log_evidence_of_a_static_linear_gaussian_bin():
    """n = 1: energy(Y) per bin is -ln N(y; G eta, P_z^-1 + G P_v^-1 G') (exact Laplace),
    and the history's energy is -F/N with the same constant."""
    y = np.array([1.0, -0.5, 2.0])
    Y = np.tile(y, (40, 1))
    d = DEM(_static_model(n=1), n_iter=1, scheme="predcode").fit(Y)
    C = np.linalg.inv(PZ) + G @ np.linalg.inv(PV) @ G.T
    r = y - G @ ETA
    nll = 0.5 * r @ np.linalg.solve(C, r) + 0.5 * np.linalg.slogdet(C)[1] + 1.5 * np.log(2 * np.pi)
    e = d.energy(Y)
    assert e.shape == (40,)
    assert e[-1] == pytest.approx(nll, abs=1e-8)
    assert d.history_["energy"][0] == pytest.approx(
        -d.F_ / 40 + 1.5 * np.log(2 * np.pi), rel=1e-12)
    assert d.score(Y) == pytest.approx(-float(np.sum(e)), rel=1e-12)
    np.testing.assert_allclose(d.infer(Y)[-1], d.v_[-1], atol=1e-12)


def test_runaway_log_precision_names_h_precision():
    """Noise-free data that the model explains exactly: with no prior on the
    log-precision (h_precision -> 0) the M-step drives it up without bound."""
    lv = Level(g=lambda x, v, th: np.zeros(1), n_out=1, n_x=0, n_v=1, hv=0.0)
    m = HDM([lv], n=2, s=0.5)
    Y = np.zeros((16, 1))
    with pytest.raises(DivergenceError, match=r"^DEM\.h_precision=1e-12: the log-precisions"):
        DEM(m, n_iter=40, learn_h=[("v", 0)], h_precision=1e-12, scheme="predcode").fit(Y)


#: The claims that do not hold, shown as NO (docs/dem.rst: DEM does not beat the EKF on
#: Lorenz; the triple estimation's posterior is overconfident, its sd 3-8 times below the
#: spread across seeds, a full-run claim); every other claim must hold.
KNOWN_FAILURES = {"DEM more accurate than EKF (Lorenz",
                  "triple estimation: the posterior sd matches the spread"}


def _failed(report):
    return [c for c in report["claims"] if not c["holds"]
            and not any(c["claim"].startswith(k) for k in KNOWN_FAILURES)]


def _known(report):
    return [c for c in report["claims"] if any(c["claim"].startswith(k) for k in KNOWN_FAILURES)]


def test_reproduction_quick(tmp_path):
    report = run(tmp_path, quick=True, verbose=False)
    assert not _failed(report), _failed(report)
    assert [c["holds"] for c in _known(report)] == [False]
    assert json.loads((tmp_path / "report.json").read_text())["claims"] == report["claims"]
    for f in report["figures"]:
        assert (tmp_path / f).stat().st_size > 1000
    md = (tmp_path / "report.md").read_text()
    assert md.count("| yes |") == len(report["claims"]) - 1 and md.count("| NO |") == 1


@pytest.mark.slow
def test_reproduction_full(tmp_path):
    report = run(tmp_path, quick=False, verbose=False)
    assert not _failed(report), _failed(report)
    assert [c["holds"] for c in _known(report)] == [False, False]


def test_cli_bench_dem_writes_json(tmp_path, capsys):
    from predcode.cli import main

    out = tmp_path / "dem.json"
    rc = main(
        [
            "bench",
            "dem",
            "--orders",
            "2,3",
            "--state-sizes",
            "2",
            "--bins",
            "8",
            "--iters",
            "1",
            "--repeats",
            "1",
            "--json",
            str(out),
        ]
    )
    assert rc == 0
    r = json.loads(out.read_text())
    assert [row["n"] for row in r["by_order"]] == [2, 3]
    assert r["by_state_size"][0]["n_u"] == 6 * 3
    assert r["machine"]["cpu"]
    assert "n=3 n_x=2" in capsys.readouterr().out
    with pytest.raises(SystemExit):
        main(["bench", "dem", "--orders", "0"])


def test_free_energy_equals_log_evidence_for_static_linear_gaussian():
    """n = 1, converged bin: F + (ny/2) ln 2 pi is the exact log evidence
    ln N(y; G eta, P_z^-1 + G P_v^-1 G') (the Laplace approximation is exact here)."""
    y = np.array([1.0, -0.5, 2.0])
    d = DEM(_static_model(n=1), n_iter=1, scheme="predcode").fit(np.tile(y, (40, 1)))
    C = np.linalg.inv(PZ) + G @ np.linalg.inv(PV) @ G.T
    r = y - G @ ETA
    logev = (
        -0.5 * r @ np.linalg.solve(C, r) - 0.5 * np.linalg.slogdet(C)[1] - 1.5 * np.log(2 * np.pi)
    )
    assert d.F_bins_[-1] - 1.5 * np.log(2 * np.pi) == pytest.approx(logev, abs=1e-8)


def test_state_gradient_and_curvature_match_finite_differences():
    """dF/du = -Eu' Pi e and d2F/du2 = -Eu' Pi Eu for F(u) = -e(u)' Pi e(u) / 2 (linear e)."""
    from predcode.kernels import get_kernel
    from predcode.models.generalized import numerical_jacobian

    m = convolution_model(n=3, hv=1.0, hw=0.5)
    ge = GeneralizedErrors(m)
    P = ge.precision(m.h_prior())
    rng = np.random.default_rng(5)
    u0, ytil = rng.standard_normal(ge.nu), rng.standard_normal(m.n * m.ny)

    def F(u):
        e = ge.errors(u, ytil, m.eta_at(0), m.theta, jac=False)[0]
        return np.array([-0.5 * e @ P @ e])

    e, Eu = ge.errors(u0, ytil, m.eta_at(0), m.theta)
    g, H, ss = get_kernel("dem_accumulate", "numpy")(e[None], Eu[None], P)
    np.testing.assert_allclose(-g, numerical_jacobian(F, u0, h=1e-5)[0], rtol=1e-6, atol=1e-7)
    hess = numerical_jacobian(lambda u: numerical_jacobian(F, u, h=1e-4)[0], u0, h=1e-4)
    np.testing.assert_allclose(-H, hess, rtol=1e-4, atol=1e-5)
    assert -0.5 * ss == pytest.approx(F(u0)[0])


def test_mstep_reaches_its_stationary_point():
    """After the M-step's Newton steps dF/dh = N/2 - exp(h) A/2 - p_h (h - h0) = 0."""
    m = convolution_model(hv=2.0)
    sim = simulate(convolution_model(), conv_cause(32), random_state=0)
    dem = DEM(m, n_iter=1, learn_h=[("v", 0)], n_m=30, scheme="predcode").fit(sim["Y"])
    ge = dem._ge
    Ytil = np.array([embed(sim["Y"], m.n, t) for t in range(32)])
    h = m.h_prior()
    d = dem._dstep(ge, Ytil, m.theta, h, ge.u_init(), None)
    dh = dem._scheme["dh"]  # the M-step the first iteration took
    hn = h + dh
    A = sum(
        d["E"][t] @ ge.Q[0] @ d["E"][t] + np.sum((d["Eu"][t] @ d["Su"][t] @ d["Eu"][t].T) * ge.Q[0])
        for t in range(32)
    )
    grad = 0.5 * 32 * ge.block_rows[0] - 0.5 * np.exp(hn[0]) * A - dem._hp() * (hn[0] - h[0])
    assert abs(grad) < 1e-8 * 32 * ge.block_rows[0]
    assert dh[1] == 0 and dh[2] == 0


def test_two_level_static_hierarchy_posterior_is_exact():
    """y = G1 v1 + z1, v1 = G2 v2 + z2, v2 ~ N(eta, P3^-1): the D-step on constant data
    reaches the joint Gaussian posterior of (v1, v2) (closed form by least squares)."""
    G1 = np.array([[1.0, 0.3], [-0.5, 1.0], [0.2, 0.4]])
    G2 = np.array([[0.8], [-1.1]])
    P1, P2, P3 = np.diag([3.0, 2.0, 1.0]), np.diag([1.5, 0.7]), np.array([[0.5]])
    eta = np.array([0.4])
    lv1 = Level(g=lambda x, v, th: G1 @ v, n_out=3, n_v=2, V=P1)
    lv2 = Level(g=lambda x, v, th: G2 @ v, n_out=2, n_v=1, V=P2)
    m = HDM([lv1, lv2], eta=eta, eta_precision=P3, n=2, s=0.5)
    y = np.array([0.9, -0.2, 0.5])
    d = DEM(m, n_iter=1, scheme="predcode").fit(np.tile(y, (60, 1)))
    # joint precision and mean of w = (v1, v2)
    A = np.block([[G1, np.zeros((3, 1))], [np.eye(2), -G2], [np.zeros((1, 2)), np.eye(1)]])
    W = np.block(
        [[P1, np.zeros((3, 3))], [np.zeros((2, 3)), P2, np.zeros((2, 1))], [np.zeros((1, 5)), P3]]
    )
    b = np.concatenate([y, np.zeros(2), eta])
    Ppost = A.T @ W @ A
    mean = np.linalg.solve(Ppost, A.T @ W @ b)
    np.testing.assert_allclose(d.v_[-1], mean, atol=1e-8)
    np.testing.assert_allclose(d.Su_[-1][:3], np.diag(np.linalg.inv(Ppost)), rtol=1e-8)


def test_simulate_causes_vary_within_bins():
    """dx/dt = -x + v with the ramp v(t) = t and x(0) = 0 has x(t) = t - 1 + e^-t. The
    simulator interpolates the causes between bins and integrates on a grid 8 times finer,
    so x lags the exact solution by at most about half a fine step (1/16); holding v
    constant over each bin (the earlier scheme) lagged by about 1/2."""
    lv = Level(
        g=lambda x, v, th: x.copy(),
        f=lambda x, v, th: -x + v,
        n_out=1,
        n_x=1,
        n_v=1,
    )
    m = HDM([lv], n=3, s=0.5)
    N = 12
    sim = simulate(m, np.arange(N, dtype=float)[:, None], noise=False)
    t = np.arange(N)
    np.testing.assert_allclose(sim["x"][:, 0], t - 1 + np.exp(-t), atol=0.07)
    assert np.max(np.abs(sim["x"][:, 0] - (t - 1 + np.exp(-t)))) > 0.03  # first order


@pytest.mark.parametrize("seed", [0, 1])
def test_mstep_on_pure_noise_embedding_ends(seed):
    """y = z with smooth noise of log-precision 8 (s = 1/2, n = 6, 64 bins). With SPM's
    clamped embedding the M-step lands at 8 + ln(1/0.52) = 8.65 (+-0.3 sampling): the
    interior embedded noise is 0.52 of what S(s) assumes (exact value, see
    test_embedding_ends_do_not_amplify_noise), a genuine property of a bin-spaced Taylor
    fit. The one-sided window of the ends pulled it below 7.5 (measured 7.0, 6.2)."""
    from predcode.models.dem import _smooth_noise

    z = _smooth_noise(64, 1, 0.5, 1.0, np.random.default_rng(seed)) * np.exp(-4)
    h = {}
    for b in ("clamp", "shift"):
        lv = Level(g=lambda x, v, th: np.zeros(1), n_out=1, n_x=0, n_v=1, hv=4.0)
        m = HDM([lv], n=6, s=0.5, boundary=b)
        h[b] = DEM(m, n_iter=4, learn_h=[("v", 0)], scheme="predcode").fit(z).h_[0]
    assert abs(h["clamp"] - (8 + np.log(1 / 0.52))) < 0.3
    assert h["shift"] < 7.5


def test_convolution_error_does_not_rise_with_order():
    """With clamped embedding ends the error at n = 8 stays within 15 % of n = 4 (it was
    5x larger with the one-sided window: 0.67 vs 0.13 cause RMSE)."""
    U = conv_cause(32)
    sim = simulate(convolution_model(), U, random_state=0)
    r = {}
    for n in (4, 8):
        d = DEM(convolution_model(n=n), n_iter=1).fit(sim["Y"])
        r[n] = (
            np.sqrt(np.mean((d.v_[:, 0] - U[:, 0]) ** 2)),
            np.sqrt(np.mean((d.x_ - sim["x"]) ** 2)),
        )
    assert r[8][0] < 1.15 * r[4][0] and r[8][1] < 1.15 * r[4][1], r


def test_spm_scheme_refuses_what_it_cannot_run_and_names_scheme():
    """scheme='spm' (the default) does not fall back to predcode's variant: each
    configuration SPM's scheme cannot run here raises one line naming ``scheme``."""
    Y = np.zeros((32, 4))
    conv = convolution_model(n=3)
    bad = [
        (dict(model=_static_model(n=1)), "n >= 2"),
        (dict(model=conv, n_d=2), "E.nD = 1"),
        (dict(model=conv, learn_h=[("eta", -1)]), "learn_h block"),
        (dict(model=HDM(conv.levels, theta=conv.theta, n=3, boundary="shift")), "clamped"),
        (dict(model=HDM(conv.levels, theta=conv.theta, n=3, dt=0.5)), "clamped"),
    ]
    for kw, what in bad:
        with pytest.raises(ValidationError, match=r"^DEM\.scheme: scheme='spm'.*" + what
                           + r".*scheme='predcode'") as err:
            DEM(**kw).fit(Y[:, : kw["model"].ny])
        assert "\n" not in str(err.value)
    with pytest.raises(ValidationError, match=r"^DEM\.scheme: expected 'spm'"):
        DEM(conv, scheme="SPM").fit(Y)
    with pytest.raises(ValidationError, match=r"^DEM\.floor_v: .*scheme='spm'"):
        DEM(conv, scheme="predcode", floor_v=np.eye(4)).fit(Y)
    with pytest.raises(ValidationError, match=r"^DEM\.h_precision: expected a positive"):
        DEM(conv, learn_h=[("v", 0)], h_precision=[1.0, 2.0]).fit(Y)


def test_scheme_is_saved_and_the_predcode_variant_stays_available(tmp_path):
    """``scheme`` round-trips through save/load, and the two schemes differ on the
    convolution model (predcode's keeps the top-order state error, SPM's zeroes it)."""
    m = convolution_model(n=3)
    Y = simulate(m, conv_cause(32), random_state=0)["Y"]
    p = DEM(m, n_iter=2, scheme="predcode").fit(Y)
    s = DEM(m, n_iter=2).fit(Y)
    assert DEM.load(p.save(tmp_path / "p")).scheme == "predcode"
    assert DEM.load(s.save(tmp_path / "s")).scheme == "spm"
    assert np.max(np.abs(p.x_ - s.x_)) > 1e-6
