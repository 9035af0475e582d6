"""Bogacz (2017) tutorial: exercises 1, 2, 3 and 5 against their analytic answers.

Source of every number: Bogacz, R. (2017) J. Math. Psychol. 76:198-211. Exercise
setting u = 2, Sigma_u = 1, v_p = 3, Sigma_p = 1, g(v) = v^2; the posterior mode
is the real root of 2 phi^3 = 3 phi + 3 (phi* ~ 1.5675).
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from predcode.exceptions import DivergenceError, ValidationError
from predcode.models import static_free_energy as sfe
from predcode.models.static_free_energy import _trial_end


def _cubic_root() -> float:
    r = np.roots([2.0, 0.0, -3.0, -3.0])
    return float(r[np.abs(r.imag) < 1e-12].real[0])


def test_posterior_mode_is_root_of_cubic():
    """Exercise 1: the exact mode solves 2 phi^3 = 3 phi + 3, phi* = 1.5675 (4 d.p.)."""
    phi = sfe.posterior_mode()
    assert phi == pytest.approx(_cubic_root(), abs=1e-10)
    assert round(phi, 4) == 1.5675


def test_exact_posterior_is_bayes_rule():
    """The grid posterior equals prior x likelihood / p(u), p(u) by scipy quadrature."""
    from scipy.integrate import quad

    v, post = sfe.exact_posterior()
    assert v[0] == pytest.approx(0.01) and v[-1] == pytest.approx(5.0) and v.size == 500
    def joint(x):
        return sfe.gauss(x, 3.0, 1.0) * sfe.gauss(2.0, x**2, 1.0)
    p_u = quad(joint, 0.01, 5.0)[0]
    np.testing.assert_allclose(post, joint(v) / p_u, rtol=1e-4)
    assert v[np.argmax(post)] == pytest.approx(1.57)


def test_free_energy_is_log_joint():
    v = np.linspace(-1, 4, 11)
    np.testing.assert_allclose(
        np.exp(sfe.free_energy(v)), sfe.gauss(v, 3.0, 1.0) * sfe.gauss(2.0, v**2, 1.0),
        rtol=1e-12)


@given(phi=st.floats(-3, 3), u=st.floats(-2, 5), v_p=st.floats(-2, 4),
       Sp=st.floats(0.2, 3), Su=st.floats(0.2, 3))
def test_gradient_matches_finite_differences(phi, u, v_p, Sp, Su):
    h = 1e-6
    up, down = sfe.free_energy(phi + h, u, v_p, Sp, Su), sfe.free_energy(phi - h, u, v_p, Sp, Su)
    fd = (up - down) / (2 * h)
    an = sfe.free_energy_gradient(phi, u, v_p, Sp, Su)
    assert an == pytest.approx(fd, rel=1e-5, abs=1e-5)


def test_custom_g_gradient_and_mode():
    """A linear g gives the closed-form Gaussian posterior mean."""
    g, gp = (lambda v: 2 * v), (lambda v: 2 + 0 * v)
    phi = sfe.posterior_mode(1.0, 0.5, 2.0, 0.5, g=g, g_prime=gp)
    # posterior precision 1/2 + 4/0.5 = 8.5; mean (0.5/2 + 2*1/0.5)/8.5
    assert phi == pytest.approx((0.25 + 4.0) / 8.5, abs=1e-10)


def test_exercise2_gradient_ascent_reaches_mode():
    """Exercise 2: Euler dt = 0.01 for 5 time units from v_p reaches phi*; F rises."""
    r = sfe.gradient_ascent(dt=0.01, T=5)
    assert r["t"][-1] == pytest.approx(5.0) and r["phi"][0] == 3.0
    assert r["phi"][-1] == pytest.approx(_cubic_root(), abs=1e-4)
    assert np.diff(r["F"]).min() > -1e-12


def test_exercise3_network_fixed_point():
    """Exercise 3: the network settles at phi*, eps_p = (phi*-v_p)/Sigma_p,
    eps_u = (u-phi*^2)/Sigma_u (Bogacz 2017)."""
    net = sfe.prediction_error_network(T=5)
    assert net["phi"][-1] == pytest.approx(1.5675, abs=0.03)  # close to 1.6 by t = 5
    long = sfe.prediction_error_network(T=30)
    fp = sfe.network_fixed_point()
    phi = _cubic_root()
    assert fp["eps_p"] == pytest.approx(phi - 3.0, abs=1e-10)
    assert fp["eps_u"] == pytest.approx(2.0 - phi**2, abs=1e-10)
    for key in ("phi", "eps_p", "eps_u"):
        assert long[key][-1] == pytest.approx(fp[key], abs=1e-5)


def test_variance_trial_closed_form_equals_loop():
    for phi, Sigma in ((7.0, 1.0), (3.2, 2.5), (5.5, 0.4)):
        tr = sfe.variance_trial(phi, 5.0, Sigma, dt=0.01, T=20)
        eps, e = _trial_end(phi - 5.0, Sigma, 0.01, 2000)
        assert eps == pytest.approx(tr["eps"][-1], abs=1e-10)
        assert e == pytest.approx(tr["e"][-1], abs=1e-10)
        # fixed point: eps = (phi - g)/Sigma, e = phi - g (Bogacz 2017, exercise 5)
        assert tr["e"][-1] == pytest.approx(phi - 5.0, abs=1e-3)
        assert tr["eps"][-1] == pytest.approx((phi - 5.0) / Sigma, abs=1e-3)


def test_exercise5_sigma_learned_towards_true_variance():
    """Exercise 5: from Sigma = 1, alpha = 0.01, phi ~ N(5, 2): Sigma -> 2."""
    r = sfe.learn_variance(n_trials=1000, random_state=0)
    assert r["Sigma"][0] == 1.0 and r["Sigma"].size == 1001
    assert 1.6 < r["Sigma"][500:].mean() < 2.4
    long = sfe.learn_variance(n_trials=5000, random_state=1)
    assert long["Sigma"][2000:].mean() == pytest.approx(2.0, abs=0.1)


@pytest.mark.parametrize("kw, match", [
    ({"Sigma_p": 0.0}, "Sigma_p: must be > 0"),
    ({"Sigma_u": -1.0}, "Sigma_u: must be > 0"),
    ({"u": float("nan")}, "u: must be finite"),
])
def test_bad_inputs_raise(kw, match):
    args = {**sfe.EXERCISE, **kw}
    with pytest.raises(ValidationError, match=match):
        sfe.prediction_error_network(args["u"], args["v_p"], args["Sigma_p"], args["Sigma_u"])


def test_bad_g_and_grid():
    with pytest.raises(ValidationError, match="g_prime"):
        sfe.free_energy(1.0, g_prime=lambda v: v)
    with pytest.raises(ValidationError, match="callables"):
        sfe.free_energy(1.0, g="square", g_prime=None)
    with pytest.raises(ValidationError, match="increasing"):
        sfe.exact_posterior(v=[1.0, 0.5, 2.0])
    with pytest.raises(ValidationError, match="n_trials"):
        sfe.learn_variance(n_trials=0)


def test_divergence_is_reported():
    with pytest.raises(DivergenceError, match="smaller dt"):
        sfe.gradient_ascent(dt=1.0, T=50)
    with pytest.raises(DivergenceError, match="smaller alpha"):
        sfe.learn_variance(alpha=5.0, n_trials=50)


def test_sigma_rule_is_free_energy_gradient():
    """At the trial's fixed point, eps*e - 1 = 2 Sigma dF/dSigma with
    F = -(ln Sigma + (phi-g)^2/Sigma)/2 (Bogacz 2017, exercise 5), by finite differences."""
    for phi, Sigma in ((7.0, 1.0), (4.1, 2.2)):
        tr = sfe.variance_trial(phi, 5.0, Sigma, T=30)
        def F(S, d=phi - 5.0):
            return -0.5 * (np.log(S) + d**2 / S)
        dF = (F(Sigma + 1e-6) - F(Sigma - 1e-6)) / 2e-6
        assert tr["eps"][-1] * tr["e"][-1] - 1 == pytest.approx(2 * Sigma * dF, abs=1e-4)
