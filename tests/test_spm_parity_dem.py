"""predcode's SPM DEM scheme (``predcode.models.dem_spm.spm_dem``) against SPM12's ``spm_DEM``.

Fixtures (tests/fixtures/spm/dem_*/, made by running SPM12 under GNU Octave 7.3, see the
README there) hold SPM's inputs (data, prior causes) and outputs. SPM's own sensitivity
was measured by rerunning SPM with ``spm_expm`` replaced by Octave's ``expm``
(``out_expm__*``): convolution moves 1e-13 (relative, states), Lorenz 1.7e-8 (states) and
0.28 in F (of 9.5e7), DEM_demo_DEM 8e-9 (states) and 0.0037 in F. Tolerances below are
set from those.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from predcode.models.dem_spm import spm_dem, spm_dx, spm_inv, spm_logdet
from predcode.models.hdm_zoo import dem_demo_model, lorenz_model, spm_convolution_model

FIX = Path(__file__).parent / "fixtures" / "spm"


def _load(case: str) -> dict:
    z = np.load(FIX / case / f"{case}.npz")
    return {k: z[k] for k in z.files}


def _rel(a, b) -> float:
    return float(np.max(np.abs(np.asarray(a) - np.asarray(b))) / np.max(np.abs(b)))


def _cov(z, key):
    return np.moveaxis(z[key], -1, 0)


def test_convolution_matches_spm_dem():
    """DEM_demo_convolution, D-step only: states, causes, covariances, errors, F."""
    z = _load("dem_convolution")
    m = spm_convolution_model()
    r = spm_dem(m, z["inputs__Y"].T, z["inputs__U"].T)
    tol = 1e-9  # SPM's own sensitivity: 1e-13
    for ours, key in (("x", "x"), ("v", "v"), ("z", "z"), ("w", "w"), ("y_hat", "v1")):
        e = _rel(r[ours], z[f"out__{key}"].T)
        assert e < tol, f"{ours}: max relative error {e:.3g} >= {tol} against spm_DEM"
    for ours, key in (("S", "out__S"), ("C", "out__C")):
        e = _rel(r[ours], _cov(z, key))
        assert e < tol, f"{ours}: max relative error {e:.3g} >= {tol} against spm_DEM"
    e = _rel(r["F"], z["out__F"].ravel())
    assert e < 1e-10, f"F: relative error {e:.3g} >= 1e-10 against spm_DEM"


def test_lorenz_from_a_wrong_start_matches_spm_dem():
    """DEM_demo_Lorenz from x = (1, 1, 16): states and F (masked at precision >= e^16)."""
    z = _load("dem_lorenz")
    m = lorenz_model(n=int(z["inputs__n"].item()) + 1, d=int(z["inputs__d"].item()) + 1)
    r = spm_dem(m, z["inputs__Y"].T, z["inputs__U"].T, x0=z["inputs__x0"].ravel())
    sens = _rel(z["out_expm__x"], z["out__x"])
    e = _rel(r["x"], z["out__x"].T)
    assert e < 1e-7, f"x: max relative error {e:.3g} >= 1e-7 (SPM's own: {sens:.2g})"
    e = _rel(r["C"], _cov(z, "out__C"))
    assert e < 1e-7, f"C: max relative error {e:.3g} >= 1e-7"
    # F sums errors of precision up to e^16 (only >= e^16 is masked), so it is very
    # sensitive to the states: SPM's own moves 0.28 (3e-9) with expm, ours is 2.0 off
    e = _rel(r["F"], z["out__F"].ravel())
    assert e < 5e-8, f"F: relative error {e:.3g} >= 5e-8 (SPM's own moves 3e-9)"


def test_dem_demo_dem_matches_spm_dem():
    """DEM_demo_DEM: D, E and M steps; parameters, log-precisions, states, F per iteration."""
    z = _load("dem_DEM")
    m, kw = dem_demo_model()
    r = spm_dem(m, z["inputs__Y"].T, z["inputs__U"].T, **kw)
    ip = np.array([1, 4])  # SPM's free parameters (0-based in spm_vec(pE))
    e = _rel(r["theta"][kw["learn_theta"]], z["out__qP"].ravel()[ip])
    assert e < 1e-6, f"theta: relative error {e:.3g} >= 1e-6 against spm_DEM"
    e = _rel(r["h"], np.r_[z["out__qh"].ravel(), z["out__qg"].ravel()])
    assert e < 1e-6, f"h: relative error {e:.3g} >= 1e-6 against spm_DEM"
    e = _rel(r["x"], z["out__x"].T)
    assert e < 1e-9, f"x: relative error {e:.3g} >= 1e-9 (SPM's own: 8e-9)"
    F = z["out__F"].ravel()
    assert r["F"].shape == F.shape, f"iterations: {r['F'].size} against SPM's {F.size}"
    # SPM's own sensitivity: 4e-6 (F moves 0.0037 with expm)
    e = float(np.max(np.abs(r["F"] - F) / np.abs(F)))
    assert e < 1e-9, f"F per iteration: relative error {e:.3g} >= 1e-9 against spm_DEM"
    A = z["out__A"].ravel()
    e = float(np.max(np.abs(r["A"] - A) / np.abs(A)))
    assert e < 1e-9, f"free action per iteration: relative error {e:.3g} >= 1e-9"
    e = _rel(r["Sigma_h"][1, 1], z["out__qHC"][1, 1])
    assert e < 1e-6, f"Sigma_h: relative error {e:.3g} >= 1e-6"


def test_spm_logdet_and_inv_follow_spm():
    """spm_logdet drops non-positive diagonal entries; spm_inv regularises by scale."""
    assert spm_logdet(np.diag([-3.0, -1e13])) == 0.0
    assert spm_logdet(np.diag([2.0, 0.0, 3.0])) == pytest.approx(np.log(6.0))
    A = np.array([[2.0, 1.0], [1.0, 2.0]])
    assert spm_logdet(A) == pytest.approx(np.log(3.0))
    # semi-definite: SPM tolerates it (sum over singular values in (1e-16, 1e16))
    assert np.isfinite(spm_logdet(np.ones((2, 2))))
    Z = spm_inv(np.zeros((2, 2)))
    assert Z[0, 0] == pytest.approx(np.exp(32))
    dx = spm_dx(-np.eye(2), np.ones(2), 1.0)
    np.testing.assert_allclose(dx, (1 - np.exp(-1)) * np.ones(2), rtol=1e-12)


def test_dem_estimator_default_is_spm_dem_on_convolution():
    """``DEM(...).fit`` with the default ``scheme="spm"`` gives spm_DEM's numbers
    (DEM_demo_convolution, D-step only); ``score`` on the same data is SPM's F."""
    from predcode import DEM

    z = _load("dem_convolution")
    d = DEM(spm_convolution_model()).fit(z["inputs__Y"].T)
    assert d.scheme == "spm"
    for ours, key in ((d.x_, "x"), (d.v_, "v")):
        e = _rel(ours, z[f"out__{key}"].T)
        assert e < 1e-9, f"DEM {key}: max relative error {e:.3g} >= 1e-9 against spm_DEM"
    F = z["out__F"].ravel()[-1]
    e = abs(d.F_ - F) / abs(F)
    assert e < 1e-10, f"DEM F: relative error {e:.3g} >= 1e-10 against spm_DEM"
    e = abs(d.score(z["inputs__Y"].T) - F) / abs(F)
    assert e < 1e-10, f"DEM score: relative error {e:.3g} >= 1e-10 against spm_DEM's F"
    e = _rel(d.Su_[:, :2], np.diagonal(_cov(z, "out__S"), axis1=1, axis2=2))
    assert e < 1e-9, f"DEM Su_ (states): max relative error {e:.3g} >= 1e-9"
    # the per-bin prediction errors, the predicted response and the full covariance
    m = d.model
    n, ny, nx, nv = m.n, m.ny, m.nx, m.nv
    ne = ny + nv
    for ours, key in ((d.E_[:, :ny], "z"), (d.E_[:, n * ne : n * ne + nx], "w"),
                      (d.y_hat_, "v1")):
        e = _rel(ours, z[f"out__{key}"].T)
        assert e < 1e-9, f"DEM {key}: max relative error {e:.3g} >= 1e-9 against spm_DEM"
    assert d.E_.shape == (z["inputs__Y"].shape[1], n * (ne + nx))
    for ours, key in ((d.Sigma_u_[:, :nx, :nx], "out__S"),
                      (d.Sigma_u_[:, n * nx : n * nx + nv, n * nx : n * nx + nv], "out__C")):
        e = _rel(ours, _cov(z, key))
        assert e < 1e-9, f"DEM Sigma_u_ ({key}): max relative error {e:.3g} >= 1e-9"
    np.testing.assert_array_equal(np.diagonal(d.Sigma_u_, axis1=1, axis2=2), d.Su_)


def test_dem_estimator_default_is_spm_dem_on_dem_demo_dem(tmp_path):
    """DEM_demo_DEM through the estimator (``dem_demo_params``): parameters, h, states and
    F per iteration equal spm_DEM's; the fit survives save/load with its scheme."""
    from predcode import DEM
    from predcode.models.hdm_zoo import dem_demo_params

    z = _load("dem_DEM")
    hdm, kw = dem_demo_model()
    Y = z["inputs__Y"].T
    d = DEM(hdm, **dem_demo_params()).fit(Y)
    free = kw["learn_theta"]
    e = _rel(d.theta_[free], z["out__qP"].ravel()[[1, 4]])
    assert e < 1e-6, f"DEM theta: relative error {e:.3g} >= 1e-6 against spm_DEM"
    ih = [hdm.h_blocks.index(("v", 0)), hdm.h_blocks.index(("x", 0))]
    e = _rel(d.h_[ih], np.r_[z["out__qh"].ravel(), z["out__qg"].ravel()])
    assert e < 1e-6, f"DEM h: relative error {e:.3g} >= 1e-6 against spm_DEM"
    e = _rel(d.x_, z["out__x"].T)
    assert e < 1e-9, f"DEM x: relative error {e:.3g} >= 1e-9 (SPM's own: 8e-9)"
    F = z["out__F"].ravel()
    ours = np.array(d.history_["F"])
    assert ours.shape == F.shape, f"iterations: {ours.size} against SPM's {F.size}"
    e = float(np.max(np.abs(ours - F) / np.abs(F)))
    assert e < 1e-9, f"DEM F per iteration: relative error {e:.3g} >= 1e-9 against spm_DEM"
    A = z["out__A"].ravel()
    e = float(np.max(np.abs(np.array(d.history_["A"]) - A) / np.abs(A)))
    assert e < 1e-9, f"DEM free action per iteration: relative error {e:.3g} >= 1e-9"
    back = DEM.load(d.save(tmp_path / "dem_demo_dem"))
    assert back.scheme == "spm"
    np.testing.assert_array_equal(back.infer(Y), d.infer(Y))
    np.testing.assert_array_equal(back.Sigma_h_, d.Sigma_h_)
    for key in ("Sigma_u_", "E_", "y_hat_"):
        np.testing.assert_array_equal(getattr(back, key), getattr(d, key))
