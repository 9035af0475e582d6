r"""Static free energy in one dimension: the worked examples of Bogacz (2017).

An animal infers the size :math:`v` of a food item from a noisy light intensity
:math:`u`. Prior and likelihood are Gaussian (Bogacz 2017, section 2):

.. math::

   p(v) = f(v; v_p, \Sigma_p), \qquad p(u \mid v) = f(u; g(v), \Sigma_u),
   \qquad g(v) = v^2 .

Bogacz's free energy is the log joint at the belief :math:`\phi`:

.. math::

   F(\phi) = \ln p(\phi) + \ln p(u \mid \phi)
     = \tfrac12\Big(-\ln\Sigma_p - \frac{(\phi - v_p)^2}{\Sigma_p}
       - \ln\Sigma_u - \frac{(u - g(\phi))^2}{\Sigma_u}\Big) + C ,

and perception climbs it, :math:`\dot\phi = \partial F / \partial\phi =
\varepsilon_u g'(\phi) - \varepsilon_p` with the prediction errors
:math:`\varepsilon_p = (\phi - v_p)/\Sigma_p` and
:math:`\varepsilon_u = (u - g(\phi))/\Sigma_u`. In his prediction-error network
the errors are nodes with their own leaky dynamics:

.. math::

   \dot\varepsilon_p = \phi - v_p - \Sigma_p \varepsilon_p, \qquad
   \dot\varepsilon_u = u - g(\phi) - \Sigma_u \varepsilon_u .

Variance learning with an inhibitory interneuron :math:`e` (exercise 5):
:math:`\dot\varepsilon = \phi - g - e`, :math:`\dot e = \Sigma\varepsilon - e`,
whose fixed point is :math:`\varepsilon = (\phi - g)/\Sigma`, :math:`e = \phi - g`;
after each trial :math:`\Delta\Sigma = \alpha(\varepsilon e - 1)`, which moves
:math:`\Sigma` to the variance of :math:`\phi - g`.

Symbols follow the paper: ``v_p``, ``Sigma_p``, ``Sigma_u``, ``phi``, ``eps_p``,
``eps_u``, ``e``. Everything here is scalar and tiny, so plain numpy suffices.

References
----------
Bogacz, R. (2017). A tutorial on the free-energy framework for modelling
perception and learning. *Journal of Mathematical Psychology* 76, 198-211.
"""

from __future__ import annotations

import numbers
from collections.abc import Callable
from typing import Any

import numpy as np

from ..exceptions import DivergenceError, ValidationError
from ..validation import check_int, check_param, check_random_state

__all__ = [
    "EXERCISE",
    "gauss",
    "free_energy",
    "free_energy_gradient",
    "exact_posterior",
    "posterior_mode",
    "gradient_ascent",
    "prediction_error_network",
    "network_fixed_point",
    "variance_trial",
    "learn_variance",
]

#: The setting of Bogacz's exercises 1-3: u = 2, Sigma_u = 1, v_p = 3, Sigma_p = 1.
EXERCISE: dict[str, float] = {"u": 2.0, "Sigma_u": 1.0, "v_p": 3.0, "Sigma_p": 1.0}

_OWNER = "static_free_energy"


def _square(v):
    return v * v


def _square_prime(v):
    return 2.0 * v


def _pos(value: Any, name: str) -> float:
    return float(check_param(value, name, _OWNER, low=0.0))


def _real(value: Any, name: str) -> float:
    return float(check_param(value, name, _OWNER, kind=numbers.Real))


def _fn(g: Any, g_prime: Any) -> tuple[Callable, Callable]:
    if g is None:
        if g_prime is not None:
            raise ValidationError(f"{_OWNER}.g_prime: given without g; pass both or neither.")
        return _square, _square_prime
    if not callable(g) or not callable(g_prime):
        raise ValidationError(
            f"{_OWNER}.g: expected callables g and g_prime (its derivative), got "
            f"{type(g).__name__} and {type(g_prime).__name__}."
        )
    return g, g_prime


def gauss(x: Any, mean: float, variance: float) -> np.ndarray:
    r"""Normal density :math:`f(x; \mu, \Sigma)` with mean and *variance* (Bogacz's notation)."""
    variance = _pos(variance, "variance")
    x = np.asarray(x, dtype=float)
    return np.exp(-0.5 * (x - mean) ** 2 / variance) / np.sqrt(2 * np.pi * variance)


def free_energy(phi: Any, u: float = 2.0, v_p: float = 3.0, Sigma_p: float = 1.0,
                Sigma_u: float = 1.0, g: Callable | None = None,
                g_prime: Callable | None = None) -> np.ndarray:
    r"""Bogacz's :math:`F(\phi) = \ln p(\phi) + \ln p(u\mid\phi)` (normalising constant kept).

    With the constant :math:`-\ln 2\pi` included this is exactly the log joint
    density, so :math:`\exp F` normalised over :math:`\phi` is the posterior.
    """
    g, _ = _fn(g, g_prime)
    Sigma_p, Sigma_u = _pos(Sigma_p, "Sigma_p"), _pos(Sigma_u, "Sigma_u")
    phi = np.asarray(phi, dtype=float)
    return (-0.5 * (np.log(Sigma_p) + (phi - v_p) ** 2 / Sigma_p
                    + np.log(Sigma_u) + (u - g(phi)) ** 2 / Sigma_u) - np.log(2 * np.pi))


def free_energy_gradient(phi: Any, u: float = 2.0, v_p: float = 3.0, Sigma_p: float = 1.0,
                         Sigma_u: float = 1.0, g: Callable | None = None,
                         g_prime: Callable | None = None) -> np.ndarray:
    r"""Gradient of F (Bogacz 2017, exercise 2).

    :math:`\partial F/\partial\phi = (v_p - \phi)/\Sigma_p + (u - g(\phi))g'(\phi)/\Sigma_u`.
    """
    g, gp = _fn(g, g_prime)
    Sigma_p, Sigma_u = _pos(Sigma_p, "Sigma_p"), _pos(Sigma_u, "Sigma_u")
    phi = np.asarray(phi, dtype=float)
    return (v_p - phi) / Sigma_p + (u - g(phi)) * gp(phi) / Sigma_u


def exact_posterior(u: float = 2.0, v_p: float = 3.0, Sigma_p: float = 1.0, Sigma_u: float = 1.0,
                    *, v: Any = None, g: Callable | None = None,
                    g_prime: Callable | None = None) -> tuple[np.ndarray, np.ndarray]:
    r"""Posterior :math:`p(v\mid u) = p(v)p(u\mid v)/p(u)` on a grid (exercise 1).

    Parameters
    ----------
    u, v_p, Sigma_p, Sigma_u : float
        Observation, prior mean, prior variance, sensory variance.
    v : array_like, optional
        Grid of sizes; default Bogacz's 0.01, 0.02, ..., 5.
    g, g_prime : callable, optional
        Generative function and its derivative (default :math:`v^2`, :math:`2v`).

    Returns
    -------
    v, posterior : ndarray
        The grid and the density; :math:`p(u)` is the trapezoidal integral of the
        joint over the grid, so the density integrates to 1 on it.
    """
    u, v_p = _real(u, "u"), _real(v_p, "v_p")
    if v is None:
        v = np.arange(1, 501) * 0.01
    v = np.asarray(v, dtype=float)
    if v.ndim != 1 or v.size < 3 or not np.all(np.isfinite(v)) or np.any(np.diff(v) <= 0):
        raise ValidationError(
            f"{_OWNER}.exact_posterior.v: expected an increasing finite 1-D grid of at least "
            f"3 points, got shape {v.shape}."
        )
    joint = np.exp(free_energy(v, u, v_p, Sigma_p, Sigma_u, g, g_prime))
    p_u = float(np.sum((joint[1:] + joint[:-1]) * np.diff(v)) / 2)  # trapezoidal rule
    return v, joint / p_u


def posterior_mode(u: float = 2.0, v_p: float = 3.0, Sigma_p: float = 1.0,
                   Sigma_u: float = 1.0, *, g: Callable | None = None,
                   g_prime: Callable | None = None, bracket: tuple[float, float] = (0.0, 10.0)
                   ) -> float:
    r"""The most likely size :math:`\phi^*`, the root of :math:`\partial F/\partial\phi = 0`.

    For exercise 1 this is the real root of :math:`2\phi^3 = 3\phi + 3`
    (:math:`\phi^* \approx 1.5675`). Found by Brent's method on the largest-:math:`F`
    grid point's neighbourhood within ``bracket``.
    """
    from scipy.optimize import brentq

    grid = np.linspace(bracket[0], bracket[1], 2001)
    Fg = free_energy(grid, u, v_p, Sigma_p, Sigma_u, g, g_prime)
    i = int(np.argmax(Fg))
    lo, hi = grid[max(i - 1, 0)], grid[min(i + 1, grid.size - 1)]

    def d(x):
        return float(free_energy_gradient(x, u, v_p, Sigma_p, Sigma_u, g, g_prime))

    if d(lo) * d(hi) > 0:
        raise ValidationError(
            f"{_OWNER}.posterior_mode: no stationary point of F inside bracket={bracket}; "
            f"widen the bracket."
        )
    return float(brentq(d, lo, hi, xtol=1e-14))


def _steps(dt: Any, T: Any) -> int:
    dt, T = _pos(dt, "dt"), _pos(T, "T")
    n = int(round(T / dt))
    if n < 1:
        raise ValidationError(f"{_OWNER}.T: must be at least one step dt={dt}, got T={T}.")
    return n


def _finite(x: float, what: str, step: int, dt: float) -> None:
    if not np.isfinite(x) or abs(x) > 1e12:
        raise DivergenceError(
            f"{_OWNER}: {what} diverged at step {step} (value {x!r}); use a smaller dt than {dt}."
        )


def gradient_ascent(u: float = 2.0, v_p: float = 3.0, Sigma_p: float = 1.0,
                    Sigma_u: float = 1.0, *, phi0: float | None = None, dt: float = 0.01,
                    T: float = 5.0, g: Callable | None = None,
                    g_prime: Callable | None = None) -> dict[str, np.ndarray]:
    r"""Exercise 2: Euler integration of :math:`\dot\phi = \partial F/\partial\phi`.

    Starts at :math:`\phi = v_p` (Bogacz) unless ``phi0`` is given; ``dt = 0.01``
    and ``T = 5`` time units as in the paper.

    Returns
    -------
    dict
        ``"t"`` (n+1 times), ``"phi"`` (n+1 beliefs) and ``"F"`` (free energy along the way).
    """
    n = _steps(dt, T)
    phi = np.empty(n + 1)
    phi[0] = _real(v_p if phi0 is None else phi0, "phi0")
    for k in range(n):
        phi[k + 1] = phi[k] + dt * float(
            free_energy_gradient(phi[k], u, v_p, Sigma_p, Sigma_u, g, g_prime))
        _finite(phi[k + 1], "phi", k + 1, dt)
    return {"t": np.arange(n + 1) * dt, "phi": phi,
            "F": free_energy(phi, u, v_p, Sigma_p, Sigma_u, g, g_prime)}


def prediction_error_network(u: float = 2.0, v_p: float = 3.0, Sigma_p: float = 1.0,
                             Sigma_u: float = 1.0, *, phi0: float | None = None,
                             dt: float = 0.01, T: float = 5.0, g: Callable | None = None,
                             g_prime: Callable | None = None) -> dict[str, np.ndarray]:
    r"""Exercise 3: Bogacz's prediction-error network, Euler integrated.

    .. math::

       \dot\phi = \varepsilon_u g'(\phi) - \varepsilon_p, \quad
       \dot\varepsilon_p = \phi - v_p - \Sigma_p\varepsilon_p, \quad
       \dot\varepsilon_u = u - g(\phi) - \Sigma_u\varepsilon_u,

    from :math:`\phi = v_p`, :math:`\varepsilon_p = \varepsilon_u = 0`.

    Returns
    -------
    dict
        ``"t"``, ``"phi"``, ``"eps_p"``, ``"eps_u"`` (each n+1 values).
    """
    g, gp = _fn(g, g_prime)
    Sigma_p, Sigma_u = _pos(Sigma_p, "Sigma_p"), _pos(Sigma_u, "Sigma_u")
    u, v_p = _real(u, "u"), _real(v_p, "v_p")
    n = _steps(dt, T)
    phi, ep, eu = np.empty(n + 1), np.zeros(n + 1), np.zeros(n + 1)
    phi[0] = _real(v_p if phi0 is None else phi0, "phi0")
    for k in range(n):
        phi[k + 1] = phi[k] + dt * (eu[k] * gp(phi[k]) - ep[k])
        ep[k + 1] = ep[k] + dt * (phi[k] - v_p - Sigma_p * ep[k])
        eu[k + 1] = eu[k] + dt * (u - g(phi[k]) - Sigma_u * eu[k])
        _finite(phi[k + 1], "phi", k + 1, dt)
    return {"t": np.arange(n + 1) * dt, "phi": phi, "eps_p": ep, "eps_u": eu}


def network_fixed_point(u: float = 2.0, v_p: float = 3.0, Sigma_p: float = 1.0,
                        Sigma_u: float = 1.0, *, g: Callable | None = None,
                        g_prime: Callable | None = None) -> dict[str, float]:
    r"""The network's fixed point: :math:`\phi^*`, :math:`\varepsilon_p = (\phi^*-v_p)/\Sigma_p`,
    :math:`\varepsilon_u = (u - g(\phi^*))/\Sigma_u` (Bogacz 2017)."""
    gf, _ = _fn(g, g_prime)
    phi = posterior_mode(u, v_p, Sigma_p, Sigma_u, g=g, g_prime=g_prime)
    return {"phi": phi, "eps_p": (phi - v_p) / Sigma_p, "eps_u": (u - float(gf(phi))) / Sigma_u}


def variance_trial(phi: float, g: float, Sigma: float, *, dt: float = 0.01,
                   T: float = 20.0) -> dict[str, np.ndarray]:
    r"""One trial of the interneuron circuit (Bogacz 2017, exercise 5), Euler integrated.

    .. math:: \dot\varepsilon = \phi - g - e, \qquad \dot e = \Sigma\varepsilon - e,

    from :math:`\varepsilon = e = 0`.

    Returns
    -------
    dict
        ``"t"``, ``"eps"``, ``"e"`` (n+1 values each).
    """
    Sigma = _pos(Sigma, "Sigma")
    phi, g = _real(phi, "phi"), _real(g, "g")
    n = _steps(dt, T)
    eps, e = np.zeros(n + 1), np.zeros(n + 1)
    for k in range(n):
        eps[k + 1] = eps[k] + dt * (phi - g - e[k])
        e[k + 1] = e[k] + dt * (Sigma * eps[k] - e[k])
        _finite(eps[k + 1], "eps", k + 1, dt)
    return {"t": np.arange(n + 1) * dt, "eps": eps, "e": e}


def _trial_end(d: float, Sigma: float, dt: float, n: int) -> tuple[float, float]:
    """(eps, e) after n Euler steps from 0 of the linear circuit with drive d = phi - g.

    The Euler map is x -> M x + dt*b with M = I + dt*A, A = [[0, -1], [Sigma, -1]],
    b = (d, 0); from x0 = 0 the n-th iterate is (I - M)^{-1}(I - M^n) dt b, i.e.
    A^{-1}(M^n - I) b: the same numbers as :func:`variance_trial`, without the loop.
    """
    A = np.array([[0.0, -1.0], [Sigma, -1.0]])
    M = np.eye(2) + dt * A
    x = np.linalg.solve(A, (np.linalg.matrix_power(M, n) - np.eye(2)) @ np.array([d, 0.0]))
    return float(x[0]), float(x[1])


def learn_variance(*, mean: float = 5.0, variance: float = 2.0, g: float = 5.0,
                   Sigma0: float = 1.0, alpha: float = 0.01, n_trials: int = 1000,
                   dt: float = 0.01, T: float = 20.0, random_state: Any = 0
                   ) -> dict[str, np.ndarray]:
    r"""Exercise 5: learn the variance :math:`\Sigma` with the interneuron circuit.

    Each trial draws :math:`\phi \sim \mathcal N(\text{mean}, \text{variance})`, runs
    :func:`variance_trial` for ``T`` time units and then applies
    :math:`\Sigma \leftarrow \Sigma + \alpha(\varepsilon e - 1)` (Bogacz 2017).
    Defaults are Bogacz's: :math:`\phi \sim \mathcal N(5, 2)`, :math:`g = 5`,
    :math:`\Sigma_0 = 1`, :math:`\alpha = 0.01`, 1000 trials of 20 time units with
    ``dt = 0.01``. The end-of-trial state is the exact Euler iterate (closed form,
    identical to the step-by-step loop; see :func:`variance_trial`).

    Returns
    -------
    dict
        ``"Sigma"`` (n_trials+1 values, before the first and after each trial),
        ``"phi"`` (the samples), ``"eps"`` and ``"e"`` at the end of each trial.
    """
    variance = _pos(variance, "variance")
    Sigma = _pos(Sigma0, "Sigma0")
    alpha = _pos(alpha, "alpha")
    n_trials = check_int(n_trials, "n_trials", _OWNER)
    n = _steps(dt, T)
    rng = check_random_state(random_state, owner=_OWNER)
    phis = rng.normal(_real(mean, "mean"), np.sqrt(variance), size=n_trials)
    g = _real(g, "g")
    Sig = np.empty(n_trials + 1)
    Sig[0] = Sigma
    eps, e = np.empty(n_trials), np.empty(n_trials)
    for i, phi in enumerate(phis):
        eps[i], e[i] = _trial_end(phi - g, Sig[i], dt, n)
        Sig[i + 1] = Sig[i] + alpha * (eps[i] * e[i] - 1.0)
        if not np.isfinite(Sig[i + 1]) or Sig[i + 1] <= 0:
            raise DivergenceError(
                f"{_OWNER}.learn_variance: Sigma left the positive reals at trial {i + 1} "
                f"({Sig[i + 1]!r}); use a smaller alpha than {alpha}."
            )
    return {"Sigma": Sig, "phi": phis, "eps": eps, "e": e}
