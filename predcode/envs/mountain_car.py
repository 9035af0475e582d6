r"""Mountain-car physics: the generative process of Friston, Daunizeau & Kiebel (2009).

*Reinforcement learning or active inference?* PLoS ONE 4(7):e6421; SPM12
``spm_fx_mountaincar`` as used (halved) by ``ADEM_mountaincar_loss``.

With position :math:`x_1`, velocity :math:`x_2`, action :math:`a`, exogenous force
:math:`v` and time constant :math:`\eta = 8`,

.. math::

    \dot x = \tfrac{s}{4}\,[\,x_2,\; \tanh\!\big(\tfrac12(d\,a + a_0 + b^\top x
    + c^\top (x\otimes x))\big) + v - \partial_{x_1}H(x_1) - x_2/\eta\,],

with the gradient of the landscape :math:`\partial_{x_1}H = 2x_1 + 1` for
:math:`x_1 < 0` and :math:`(5x_1^2 + 1)^{-3/2} + (x_1/2)^4` otherwise, and
``scale`` :math:`s` (SPM's demo divides the flow by 2: ``scale = 1/2``).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..exceptions import ValidationError

__all__ = ["mountain_car_flow", "mountain_car_prior_flow", "landscape_gradient"]


def landscape_gradient(position: Any) -> np.ndarray:
    """Gradient :math:`\\partial H/\\partial x_1` of the mountain-car landscape (SPM's)."""
    p = np.asarray(position, dtype=float)
    return np.where(p < 0, 2 * p + 1, (5 * p * p + 1) ** -1.5 + (p / 2) ** 4)


def mountain_car_flow(
    x: Any, v: float = 0.0, a: float = 0.0, *, d: float = 1.0, a0: float = 0.0,
    b: Any = (0.0, 0.0), c: Any = (0.0, 0.0, 0.0, 0.0), scale: float = 0.5,
    eta: float = 8.0,
) -> np.ndarray:
    """Flow ``dx/dt`` of the mountain car at state ``x = [position, velocity]``.

    Parameters
    ----------
    x : array (2,)
        Position and velocity.
    v : float
        Exogenous force.
    a : float
        Action (SPM ``a``), entering through ``tanh((d a + a0 + b.x + c.(x kron x)) / 2)``.
    d, a0, b, c : float, float, array (2,), array (4,)
        SPM's ``P.d``, ``P.a``, ``P.b``, ``P.c``.
    scale : float
        Factor on the flow (the demo's ``/2``: 0.5).
    eta : float
        Friction time constant (SPM's global ``eta``, 8).
    """
    x = np.asarray(x, dtype=float).reshape(-1)
    if x.size != 2:
        raise ValidationError(
            f"mountain_car_flow.x: expected [position, velocity] (2 values), got {x.size}."
        )
    force = np.tanh((d * a + a0 + np.dot(b, x) + np.dot(c, np.kron(x, x))) / 2)
    acc = force + v - landscape_gradient(x[0]) - x[1] / eta
    return np.array([x[1], acc]) * (scale / 4)


def mountain_car_prior_flow(
    x: Any, v: float = 0.0, *, x_attract: float = -0.2, k: float = 0.6, p: float = 0.5,
    q: float = 32.0, scale: float = 0.5,
) -> np.ndarray:
    r"""The agent's prior beliefs about the flow (SPM ``spm_mc_fx``, halved as in the demo).

    Friston, Daunizeau & Kiebel (2009), eq. 12 and Fig. 4: away from the goal region
    :math:`|x_1 - 1| \le 1/4` the belief is a spring towards ``x_attract`` with negative
    damping (:math:`c = 1`); in the goal region the damping is :math:`p - q` (the car is
    believed to stop there):

    .. math::

        \dot x = \tfrac{s}{4}\,[\,x_2,\; -k(x_1 - x_a)\,c + x_2\,(p - q(1 - c))\,],
        \quad c = [\,|x_1 - 1| > 1/4\,].

    Parameters
    ----------
    x : array (2,)
        Position and velocity.
    v : float
        Cause (unused by this flow; SPM's signature).
    x_attract, k, p, q : float
        SPM's ``P.x``, ``P.k``, ``P.p``, ``P.q`` (``ADEM_mountaincar_loss``: -0.2, 0.6,
        1/2, 32).
    scale : float
        Factor on the flow (the demo's ``/2``).
    """
    x = np.asarray(x, dtype=float).reshape(-1)
    if x.size != 2:
        raise ValidationError(
            f"mountain_car_prior_flow.x: expected [position, velocity] (2 values), got {x.size}."
        )
    c = float(abs(x[0] - 1.0) > 0.25)
    damp = p - q * (1.0 - c)
    return np.array([x[1], -(x[0] - x_attract) * k * c + x[1] * damp]) * (scale / 4)
