"""Buckley et al. (2017) thermostat: gradients, fixed point and the action result.

Source: Buckley, Kim, McGregor & Seth (2017) J. Math. Psychol. 81:55-79, section 7
and appendix (T0 = 100, T_des = 4, variances 0.1, k = 0.1, k_a = 0.01, x(0) = 2,
dt = 0.005, 100 time units, action from t = 25).
"""

from __future__ import annotations

import numpy as np
import pytest

from predcode.exceptions import DivergenceError, ValidationError
from predcode.models import thermostat as th


def test_temperature_gradient_matches_finite_differences():
    x = np.linspace(-3, 5, 17)
    h = 1e-6
    fd = (th.temperature(x + h)[0] - th.temperature(x - h)[0]) / (2 * h)
    np.testing.assert_allclose(th.temperature(x)[1], fd, rtol=1e-6, atol=1e-6)
    assert th.temperature(2.0)[0] == pytest.approx(20.0)


def _grad(fun, z, h=1e-6):
    z = np.asarray(z, float)
    g = np.empty_like(z)
    for i in range(z.size):
        dz = np.zeros_like(z)
        dz[i] = h
        g[i] = (fun(z + dz) - fun(z - dz)) / (2 * h)
    return g


def test_perception_and_action_updates_are_free_energy_gradients():
    """One Euler step: mu~ += dt (D mu~ - k dF/dmu~), a += -dt k_a dF/da (finite differences)."""
    sim = th.simulate(T_end=0.01, dt=0.005, action_onset=0.0, noise_sd=0.0, x0=1.3)
    # step 1 -> 2 uses the state at step 1 and rho at step 1
    rho0, rho1 = sim["rho0"][1], sim["rho1"][1]
    m = np.array([sim["mu"][1], sim["mu1"][1], sim["mu2"][1]])
    dF = _grad(lambda z: th.free_energy(rho0, rho1, *z), m, h=1e-3)  # F is quadratic
    D = np.array([m[1], m[2], 0.0])
    expected = m + 0.005 * (D - 0.1 * dF)
    got = np.array([sim["mu"][2], sim["mu1"][2], sim["mu2"][2]])
    np.testing.assert_allclose(got, expected, rtol=1e-7, atol=1e-9)
    # action: rho1 = T_x(x) * a, so dF/da = dF/drho1 * T_x
    Tx = th.temperature(sim["x"][2])[1]
    dFdrho1 = _grad(lambda r: th.free_energy(rho0, r[0], *m), np.array([rho1]), h=1e-3)[0]
    assert sim["a"][2] - sim["a"][1] == pytest.approx(-0.005 * 0.01 * Tx * dFdrho1, rel=1e-6)


def test_belief_fixed_point_is_stationary_and_precision_weighted():
    fp = th.belief_fixed_point(20.0)
    dF = _grad(lambda z: th.free_energy(20.0, 0.0, *z), fp)
    rate = np.array([fp[1], fp[2], 0.0]) - 0.1 * dF
    np.testing.assert_allclose(rate, 0.0, atol=1e-7)
    assert fp[0] == pytest.approx(12.0, abs=1e-10)  # (20/0.1 + 4/0.1) / (2/0.1)
    # unequal precisions: between rho and T_des, nearer the more precise one
    fp2 = th.belief_fixed_point(20.0, Sigma_z0=0.05, k=10.0)
    assert 12.0 < fp2[0] < 20.0


def test_without_action_belief_settles_at_fixed_point():
    sim = th.simulate(action=False, T_end=30.0, noise_sd=0.0)
    assert np.all(sim["a"] == 0) and np.all(sim["x"] == 2.0)
    fp = th.belief_fixed_point(20.0)
    np.testing.assert_allclose([sim["mu"][-1], sim["mu1"][-1], sim["mu2"][-1]], fp, atol=1e-6)
    assert 4.0 < sim["mu"][-1] < 20.0


def test_action_reaches_desired_temperature_and_free_energy_falls():
    """Paper's run (seed 6 noise): sensed T -> 4 and F from ~500 to < 1."""
    sim = th.simulate()
    t = sim["t"]
    assert t[-1] == pytest.approx(100.0)
    assert np.all(sim["a"][t <= 25] == 0)
    last = t > 80
    assert sim["rho0"][last].mean() == pytest.approx(4.0, abs=0.2)
    assert sim["T"][-1] == pytest.approx(4.0, abs=0.2)
    before = (t > 20) & (t <= 25)
    assert sim["F"][before].mean() > 400
    assert sim["F"][last].mean() < 1.0


@pytest.mark.parametrize("kw, exc, match", [
    ({"dt": 0.0}, ValidationError, "dt: must be > 0"),
    ({"Sigma_z0": -0.1}, ValidationError, "Sigma_z0: must be > 0"),
    ({"k_a": float("nan")}, ValidationError, "k_a: must be finite"),
    ({"action": 1}, ValidationError, "action: expected a bool"),
    ({"k": 1000.0, "T_end": 5.0}, DivergenceError, "smaller dt"),
])
def test_bad_inputs(kw, exc, match):
    with pytest.raises(exc, match=match):
        th.simulate(**kw)
