"""predcode's generalized filtering (:class:`predcode.LAP`) against SPM12's ``spm_LAP``.

Fixture ``tests/fixtures/spm/lap_lorenz`` (made by ``make_lap_lorenz.m``): the set-up of
``DEM_demo_lorenz_LAP`` (dual estimation of the Lorenz states and parameters from a
wrong start), SPM's simulated data, and SPM's outputs: the conditional states, the
Bayesian-averaged parameters (after 1, 2 and 4 iterations and at convergence), F per
iteration and the free action. predcode runs on SPM's data.

Tolerances are relative (max-abs error over the array / max-abs of SPM's array). The
Lorenz system is chaotic and the parameter updates feed back through 15 online passes,
so round-off (SPM's forward-difference derivatives with step e^-8 against predcode's
analytic/central ones, ``spm_expm`` against scipy's ``expm``) grows over iterations. SPM's
own sensitivity, measured by shadowing ``spm_expm`` with Octave's ``expm``: F 1.9e-10,
parameters 2e-11, their covariance 3.7e-8, states 3e-9, prediction errors 2.5e-8, first
bin's state covariance 3.9e-4 -- the size of predcode's differences (docs/spm/lap.rst).
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from predcode.models.hdm_zoo import lorenz_lap_model
from predcode.models.lap import LAP

FIX = Path(__file__).parent / "fixtures" / "spm" / "lap_lorenz" / "lap_lorenz.npz"


def _fix():
    return dict(np.load(FIX))


def _rel(a, b):
    a, b = np.asarray(a, float), np.asarray(b, float)
    return float(np.max(np.abs(a - b)) / np.max(np.abs(b)))


def _lap(n_iter):
    f = _fix()
    m = LAP(lorenz_lap_model(f["pE"].ravel()), n_iter=n_iter, n_d=2, learn_theta=[0, 1, 2])
    return m.fit(f["Y"].T), f


def test_first_iterations_match_spm_lap():
    """Two iterations: F per iteration, states and averaged parameters of SPM's calls
    with nN = 1, 2 (fails before predcode had LAP: nothing did dual estimation)."""
    m, f = _lap(1)
    assert _rel(m.history_["F"], f["F"].ravel()[:1]) < 1e-8, (m.history_["F"], f["F"][0, :1])
    assert _rel(m.theta_, f["it__P1"].ravel()) < 1e-8, (m.theta_, f["it__P1"].ravel())
    assert _rel(m.x_, f["it__x1"].T) < 1e-6, _rel(m.x_, f["it__x1"].T)
    m.partial_fit(f["Y"].T)
    assert _rel(m.history_["F"], f["F"].ravel()[:2]) < 1e-7, (m.history_["F"], f["F"][0, :2])
    assert _rel(m.theta_, f["it__P2"].ravel()) < 1e-7, (m.theta_, f["it__P2"].ravel())


@pytest.mark.slow
def test_dual_estimation_matches_spm_lap_to_convergence():
    """The full run of DEM_demo_lorenz_LAP: SPM stops after 16 iterations (F per
    iteration), the parameters recovered from the wrong start, the states and the free
    action. Measured: F 2e-10, parameters 1e-10 (after 4 iterations 2e-11),
    their covariance 6e-8, states 3e-9, data prediction errors 2e-8, S 2e-9 (relative)."""
    m, f = _lap(32)
    F = np.array(m.history_["F"])
    n_run = int(np.sum(np.array(m.history_["stopped"]) == 0))
    assert n_run == f["F"].size, (n_run, f["F"].size)
    assert _rel(F[:n_run], f["F"].ravel()) < 1e-8, _rel(F[:n_run], f["F"].ravel())
    assert _rel(m.theta_, f["qP_P"].ravel()) < 1e-8, (m.theta_, f["qP_P"].ravel())
    assert _rel(m.Sigma_theta_, f["qP_C"]) < 1e-6, _rel(m.Sigma_theta_, f["qP_C"])
    assert _rel(m.x_, f["qU_x"].T) < 1e-7, _rel(m.x_, f["qU_x"].T)
    assert _rel(m.z_, f["qU_z"].T) < 1e-5, _rel(m.z_, f["qU_z"].T)
    # the first bin's state covariance is the inverse of a nearly singular curvature
    # (the states are barely observed yet): round-off moves it by 2.2e-4 relative
    assert _rel(m.Sx_[0], f["S1"]) < 1e-3, _rel(m.Sx_[0], f["S1"])
    S = np.array(m.history_["S"])[:n_run]
    assert _rel(S, f["S"].ravel()) < 1e-7, _rel(S, f["S"].ravel())
    # the parameters after 4 iterations, from SPM's call with nN = 4
    assert _rel(m.theta_path_[3], f["it__P4"].ravel()) < 1e-8, m.theta_path_[3]


def test_generalized_filter_keeps_the_lorenz_attractor():
    """``generalized_filter`` on DEM_demo_lorenz_LAP's dual-estimation set-up (parameters
    learned from the wrong start). Before it was a call of LAP, its recursive scheme lost
    the attractor here (state RMSE 7.9, 18.2, 14.1 against the true states' SD 6.2, 7.1,
    7.0; |x| up to 92). Now, with SPM's n_d = 2 it gives SPM's states after one spm_LAP
    iteration (measured 1.7e-9 relative), and with the default n_d = 1 it still tracks
    the true trajectory (RMSE 1.9, 2.0, 3.4)."""
    from predcode.models.dem import generalized_filter

    f = _fix()
    Y, xt = f["Y"].T, f["pU_x"].T
    m = lorenz_lap_model(f["pE"].ravel())
    gf = generalized_filter(m, Y, learn_theta=[0, 1, 2])
    rmse = np.sqrt(np.mean((gf["x"] - xt) ** 2, axis=0))
    assert np.all(rmse < 0.75 * xt.std(axis=0)), (rmse, xt.std(axis=0))
    gf2 = generalized_filter(m, Y, learn_theta=[0, 1, 2], n_d=2)
    assert _rel(gf2["x"], f["it__x1"].T) < 1e-6, _rel(gf2["x"], f["it__x1"].T)
