"""predcode's generalized filtering (:class:`predcode.LAP`) against SPM12's ``spm_LAP`` on
``DEM_demo_convolution_LAP``.

Fixture ``tests/fixtures/spm/lap_convolution`` (made by ``make_lap_convolution.m``): the
demo's linear convolution model (2 hidden states, 1 cause, 4 responses, 32 bins) with
four parameters estimated from a zero prior mean (prior variance 32), the Gaussian-bump
cause as the prior expectation of the cause (precision 1), V = e^8, W = e^6; SPM's data
and outputs (states, cause, parameters, F per iteration, free action). The demo's
precisions are fixed (it sets V and W, no hE/gE), so the fixture adds a case ``hyp``:
the same inversion with the log-precisions of the data and state noise learned
(V = W = I, hE = gE = 4, hC = gC = 1), which checks spm_LAP's hyperparameter path
(per-bin qH.p, qH.h, qH.g, qH.C).

Tolerances are relative (max-abs error over the array / max-abs of SPM's array). SPM's
own sensitivity is measured by rerunning the same calls with ``spm_expm`` shadowed by
Octave's ``expm`` (``oute``, ``hype`` in the fixture); predcode's differences are of
that size (the values are in the assert comments and docs/spm/lap.rst).
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from predcode.models.hdm_zoo import CONV_LAP_FREE, convolution_lap_model
from predcode.models.lap import LAP

#: Full runs: measured at most 3.2e-11 (the parameters' covariance; F 5e-14, states 4e-13,
#: log-precisions 1.4e-13); SPM's own sensitivity (spm_expm -> expm) is at most 6.6e-12.
TOL_FULL = 1e-9

FIX = (Path(__file__).parent / "fixtures" / "spm" / "lap_convolution"
       / "lap_convolution.npz")


def _fix():
    return dict(np.load(FIX))


def _rel(a, b):
    a, b = np.asarray(a, float), np.asarray(b, float)
    return float(np.max(np.abs(a - b)) / np.max(np.abs(b)))


def _lap(n_iter, hyper=False):
    f = _fix()
    if hyper:
        hdm = convolution_lap_model(f["pE"].ravel(), f["Uc"].ravel(), hv=4.0, hw=4.0)
        m = LAP(hdm, n_iter=n_iter, learn_theta=list(CONV_LAP_FREE),
                learn_h=[("v", 0), ("x", 0)])
    else:
        hdm = convolution_lap_model(f["pE"].ravel(), f["Uc"].ravel())
        m = LAP(hdm, n_iter=n_iter, learn_theta=list(CONV_LAP_FREE))
    return m.fit(f["Y"].T), f


def test_first_iterations_match_spm_lap_on_the_convolution_demo():
    """Two iterations of the demo's dual estimation: F per iteration, the averaged
    parameters and the states of SPM's calls with nN = 1, 2 (the fixture did not exist
    before, and predcode had no model of this set-up)."""
    m, f = _lap(1)
    assert _rel(m.history_["F"], f["it__F1"].ravel()) < 1e-10, (m.history_["F"], f["it__F1"])
    assert _rel(m.theta_, f["it__P1"].ravel()) < 1e-10, _rel(m.theta_, f["it__P1"].ravel())
    assert _rel(m.x_, f["it__x1"].T) < 1e-10, _rel(m.x_, f["it__x1"].T)
    m.partial_fit(f["Y"].T)
    assert _rel(m.history_["F"], f["it__F2"].ravel()) < 1e-10, (m.history_["F"], f["it__F2"])
    assert _rel(m.theta_, f["it__P2"].ravel()) < 1e-10, _rel(m.theta_, f["it__P2"].ravel())
    assert _rel(m.x_, f["it__x2"].T) < 1e-10, _rel(m.x_, f["it__x2"].T)


def test_first_iterations_match_spm_lap_with_learned_precisions():
    """The hyperparameter case, two iterations: F and the Bayesian averages of the two
    log-precisions (qH.h, qH.g) and the parameters of SPM's calls with nN = 1, 2."""
    m, f = _lap(1, hyper=True)
    assert _rel(m.history_["F"], f["hit__F1"].ravel()) < 1e-10, (m.history_["F"], f["hit__F1"])
    assert _rel(m.h_, f["hit__h1"].ravel()) < 1e-10, (m.h_, f["hit__h1"].ravel())
    assert _rel(m.theta_, f["hit__P1"].ravel()) < 1e-10, _rel(m.theta_, f["hit__P1"].ravel())
    m.partial_fit(f["Y"].T)
    assert _rel(m.history_["F"], f["hit__F2"].ravel()) < 1e-10, (m.history_["F"], f["hit__F2"])
    assert _rel(m.h_, f["hit__h2"].ravel()) < 1e-10, (m.h_, f["hit__h2"].ravel())
    assert _rel(m.theta_, f["hit__P2"].ravel()) < 1e-10, _rel(m.theta_, f["hit__P2"].ravel())


def _check_full(m, o):
    F = np.array(m.history_["F"])
    n_run = int(np.sum(np.array(m.history_["stopped"]) == 0))
    assert n_run == o["F"].size, (n_run, o["F"].size)
    out = {
        "F": _rel(F[:n_run], o["F"].ravel()),
        "S": _rel(np.array(m.history_["S"])[:n_run], o["S"].ravel()),
        "qP_P": _rel(m.theta_, o["qP_P"].ravel()),
        "qP_C": _rel(m.Sigma_theta_, o["qP_C"]),
        "qU_x": _rel(m.x_, o["qU_x"].T),
        "qU_v": _rel(m.v_, o["qU_v"].T),
        "qU_z": _rel(m.z_, o["qU_z"].T),
        "qU_w": _rel(m.w_, o["qU_w"].T),
        "S1": _rel(m.Sx_[0], o["S1"]),
        "C1": _rel(m.Sv_[0], o["C1"]),
    }
    return out


@pytest.mark.slow
def test_dual_estimation_matches_spm_lap_on_the_convolution_demo():
    """The demo's spm_LAP run to convergence: F per iteration, free action, parameters
    and their covariance, states, cause, prediction errors and first-bin covariances."""
    m, f = _lap(32)
    o = {k[5:]: v for k, v in f.items() if k.startswith("out__")}
    err = _check_full(m, o)
    assert max(err.values()) < TOL_FULL, err


@pytest.mark.slow
def test_learned_precisions_match_spm_lap_to_convergence():
    """The hyperparameter case to convergence: as above, plus the log-precisions' path
    over bins (qH.p), their Bayesian averages (qH.h, qH.g) and covariance (qH.C)."""
    m, f = _lap(32, hyper=True)
    o = {k[5:]: v for k, v in f.items() if k.startswith("hyp__")}
    err = _check_full(m, o)
    err["qH_p"] = _rel(m.h_t_.T, o["qH_p"])
    err["qH_hg"] = _rel(m.h_, np.concatenate([o["qH_h"].ravel(), o["qH_g"].ravel()]))
    err["qH_C"] = _rel(m.Sigma_h_, o["qH_C"])
    assert max(err.values()) < TOL_FULL, err
