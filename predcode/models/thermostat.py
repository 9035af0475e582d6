r"""The thermostat agent of Buckley, Kim, McGregor & Seth (2017), section 7.

**Generative process** (the world). An agent at position :math:`x` feels the
temperature :math:`T(x) = T_0/(x^2 + 1)` and its rate of change
:math:`T' = T_x\,\dot x` with :math:`T_x = -2T_0x/(x^2+1)^2`; action sets the
velocity, :math:`\dot x = a`. Sensations are noisy:
:math:`\rho_0 = T + z_0`, :math:`\rho_1 = T' + z_1`.

**Generative model** (the agent). Beliefs in generalised coordinates up to second
order, :math:`\tilde\mu = (\mu, \mu', \mu'')`; the agent expects the temperature to
relax to its desired value, :math:`f(\mu) = -\mu + T_{des}`. Its free energy
(Laplace-encoded, constants dropped; Buckley et al. section 7, with
:math:`\mu'' + \mu'` from differentiating :math:`f`) is

.. math::

   F = \tfrac12\Big[\frac{\varepsilon_{z,0}^2}{\Sigma_{z,0}}
       + \frac{\varepsilon_{z,1}^2}{\Sigma_{z,1}}
       + \frac{\varepsilon_{w,0}^2}{\Sigma_{w,0}} + \frac{\varepsilon_{w,1}^2}{\Sigma_{w,1}}\Big],

   \varepsilon_{z,0} = \rho_0 - \mu,\; \varepsilon_{z,1} = \rho_1 - \mu',\;
   \varepsilon_{w,0} = \mu' + \mu - T_{des},\; \varepsilon_{w,1} = \mu'' + \mu'.

Perception is a gradient descent in a moving frame,
:math:`\dot{\tilde\mu} = D\tilde\mu - k\,\partial F/\partial\tilde\mu`, and action a
gradient descent through the sensed rate of change,
:math:`\dot a = -k_a\,\partial F/\partial a = -k_a\,T_x\,\varepsilon_{z,1}/\Sigma_{z,1}`
(the agent knows :math:`\partial\rho_1/\partial a = T_x`).

Parameter values are the paper's: :math:`T_0 = 100`, :math:`T_{des} = 4`, all four
variances 0.1, :math:`k = 0.1`, :math:`k_a = 0.01`, :math:`x(0) = 2`, beliefs and
action from 0, sensory noise s.d. 0.1, ``dt = 0.005`` over 100 time units, action
switched on after 25. Euler integration with the beliefs and action updated from the
previous step's errors, as in the paper's appendix.

Without action the belief settles at the fixed point of the perception dynamics,
between the sensed and the desired temperature (:func:`belief_fixed_point`); with
action the agent moves until it senses :math:`T_{des}` and F falls to near zero.

References
----------
Buckley, C. L., Kim, C. S., McGregor, S., Seth, A. K. (2017). The free energy
principle for action and perception: a mathematical review. *Journal of
Mathematical Psychology* 81, 55-79.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..exceptions import DivergenceError, ValidationError
from ..validation import check_param, check_random_state

__all__ = ["PAPER", "temperature", "free_energy", "belief_fixed_point", "simulate"]

_OWNER = "thermostat"

#: Buckley et al. (2017) section 7 / appendix values.
PAPER: dict[str, float] = {
    "T0": 100.0, "T_des": 4.0, "Sigma_z0": 0.1, "Sigma_z1": 0.1, "Sigma_w0": 0.1,
    "Sigma_w1": 0.1, "k": 0.1, "k_a": 0.01, "x0": 2.0, "noise_sd": 0.1, "dt": 0.005,
    "T_end": 100.0, "action_onset": 25.0,
}


def temperature(x: Any, T0: float = 100.0) -> tuple[np.ndarray, np.ndarray]:
    r""":math:`T(x) = T_0/(x^2+1)` and its gradient :math:`T_x = -2T_0x/(x^2+1)^2`."""
    x = np.asarray(x, dtype=float)
    return T0 / (x * x + 1), -2 * T0 * x / (x * x + 1) ** 2


def free_energy(rho0: Any, rho1: Any, mu: Any, mu1: Any, mu2: Any, *, T_des: float = 4.0,
                Sigma_z0: float = 0.1, Sigma_z1: float = 0.1, Sigma_w0: float = 0.1,
                Sigma_w1: float = 0.1) -> np.ndarray:
    """The agent's free energy F (constants dropped; see the module docstring)."""
    ez0, ez1 = np.subtract(rho0, mu), np.subtract(rho1, mu1)
    ew0, ew1 = np.add(mu1, mu) - T_des, np.add(mu2, mu1)
    return 0.5 * (ez0**2 / Sigma_z0 + ez1**2 / Sigma_z1 + ew0**2 / Sigma_w0 + ew1**2 / Sigma_w1)


def belief_fixed_point(rho0: float, rho1: float = 0.0, *, T_des: float = 4.0,
                       Sigma_z0: float = 0.1, Sigma_z1: float = 0.1, Sigma_w0: float = 0.1,
                       Sigma_w1: float = 0.1, k: float = 0.1) -> np.ndarray:
    r"""Where perception settles for fixed sensations: the zero of
    :math:`D\tilde\mu - k\,\partial F/\partial\tilde\mu` (a linear system).

    As :math:`k` grows the motion term :math:`D\tilde\mu` matters less and
    :math:`\mu` tends to the precision-weighted average
    :math:`(\rho_0/\Sigma_{z,0} + T_{des}/\Sigma_{w,0})/(1/\Sigma_{z,0} + 1/\Sigma_{w,0})`.

    Returns
    -------
    ndarray
        :math:`(\mu, \mu', \mu'')` at the fixed point.
    """
    a, b, c, d = 1 / Sigma_z0, 1 / Sigma_z1, 1 / Sigma_w0, 1 / Sigma_w1
    # rows: d mu/dt, d mu'/dt, d mu''/dt = 0, written as A m = r
    A = np.array([
        [-k * (a + c), 1 - k * c, 0.0],
        [-k * c, -k * (b + c + d), 1 - k * d],
        [0.0, -k * d, -k * d],
    ])
    r = np.array([-k * (a * rho0 + c * T_des), -k * (b * rho1 + c * T_des), 0.0])
    return np.linalg.solve(A, r)


def simulate(*, action: bool = True, T_end: float = 100.0, dt: float = 0.005,
             action_onset: float = 25.0, T0: float = 100.0, T_des: float = 4.0,
             Sigma_z0: float = 0.1, Sigma_z1: float = 0.1, Sigma_w0: float = 0.1,
             Sigma_w1: float = 0.1, k: float = 0.1, k_a: float = 0.01, x0: float = 2.0,
             noise_sd: float = 0.1, random_state: Any = 6) -> dict[str, np.ndarray]:
    r"""Run the thermostat agent (Buckley et al. 2017, section 7; their appendix scheme).

    Parameters
    ----------
    action : bool
        Whether the agent acts (after ``action_onset``); ``False`` gives the
        perception-only run whose belief settles between sensed and desired temperature.
    T_end, dt, action_onset : float
        Duration, Euler step and the time action is switched on.
    T0, T_des : float
        Temperature at the origin and the desired temperature.
    Sigma_z0, Sigma_z1, Sigma_w0, Sigma_w1 : float
        Sensory and hidden-state variances of the agent's model.
    k, k_a : float
        Gradient-descent rates of perception and action.
    x0 : float
        Initial position.
    noise_sd : float
        Standard deviation of the sensory noise of the world (0 for a noiseless run).
    random_state : int, Generator or None
        Seed of the sensory noise.

    Returns
    -------
    dict
        Arrays over time ``"t"``: ``"x"``, ``"T"`` (true temperature), ``"rho0"``,
        ``"rho1"`` (sensations), ``"mu"``, ``"mu1"``, ``"mu2"`` (beliefs), ``"a"``
        (action) and ``"F"`` (free energy).
    """
    vals = {}
    for name, val in (("T_end", T_end), ("dt", dt), ("Sigma_z0", Sigma_z0),
                      ("Sigma_z1", Sigma_z1), ("Sigma_w0", Sigma_w0), ("Sigma_w1", Sigma_w1),
                      ("k", k), ("T0", T0)):
        vals[name] = float(check_param(val, name, _OWNER, low=0.0))
    for name, val in (("k_a", k_a), ("noise_sd", noise_sd), ("action_onset", action_onset)):
        vals[name] = float(check_param(val, name, _OWNER, low=0.0, low_inclusive=True))
    for name, val in (("T_des", T_des), ("x0", x0)):
        check_param(val, name, _OWNER)
    if not isinstance(action, bool):
        raise ValidationError(f"{_OWNER}.action: expected a bool, got {action!r}.")
    n = int(round(T_end / dt)) + 1
    if n < 2:
        raise ValidationError(f"{_OWNER}.T_end: must exceed dt={dt}, got {T_end}.")
    rng = check_random_state(random_state, owner=_OWNER)
    z0 = rng.standard_normal(n) * noise_sd
    z1 = rng.standard_normal(n) * noise_sd
    t = np.arange(n) * dt
    x, T, Tx = np.empty(n), np.empty(n), np.empty(n)
    rho0, rho1 = np.empty(n), np.empty(n)
    mu, mu1, mu2, a, F = (np.zeros(n) for _ in range(5))
    x[0] = x0
    T[0], Tx[0] = (float(v) for v in temperature(x0, T0))
    rho0[0], rho1[0] = 0.0, 0.0  # sensors start at 0 (paper)
    sw = dict(T_des=T_des, Sigma_z0=Sigma_z0, Sigma_z1=Sigma_z1, Sigma_w0=Sigma_w0,
              Sigma_w1=Sigma_w1)
    F[0] = free_energy(rho0[0], rho1[0], 0.0, 0.0, 0.0, **sw)
    with np.errstate(over="ignore", invalid="ignore"):
        for i in range(1, n):
            # world
            xdot = a[i - 1]
            x[i] = x[i - 1] + dt * xdot
            Ti, Txi = T0 / (x[i] ** 2 + 1), -2 * T0 * x[i] / (x[i] ** 2 + 1) ** 2
            T[i], Tx[i] = Ti, Txi
            rho0[i] = Ti + z0[i]
            rho1[i] = Txi * xdot + z1[i]
            # agent: errors from the previous step
            ez0 = rho0[i - 1] - mu[i - 1]
            ez1 = rho1[i - 1] - mu1[i - 1]
            ew0 = mu1[i - 1] + mu[i - 1] - T_des
            ew1 = mu2[i - 1] + mu1[i - 1]
            F[i] = 0.5 * (ez0**2 / Sigma_z0 + ez1**2 / Sigma_z1 + ew0**2 / Sigma_w0
                          + ew1**2 / Sigma_w1)
            mu[i] = mu[i - 1] + dt * (mu1[i - 1] - k * (-ez0 / Sigma_z0 + ew0 / Sigma_w0))
            mu1[i] = mu1[i - 1] + dt * (mu2[i - 1] - k * (-ez1 / Sigma_z1 + ew0 / Sigma_w0
                                                           + ew1 / Sigma_w1))
            mu2[i] = mu2[i - 1] + dt * (-k * ew1 / Sigma_w1)
            if action and t[i] > action_onset:
                a[i] = a[i - 1] + dt * (-k_a * Txi * ez1 / Sigma_z1)
            if not (np.isfinite(mu[i]) and np.isfinite(a[i]) and abs(x[i]) < 1e8):
                raise DivergenceError(
                    f"{_OWNER}.simulate: diverged at t={t[i]:.3f}; use a smaller dt than {dt} "
                    f"or smaller rates k={k}, k_a={k_a}."
                )
    return {"t": t, "x": x, "T": T, "rho0": rho0, "rho1": rho1, "mu": mu, "mu1": mu1,
            "mu2": mu2, "a": a, "F": F}
