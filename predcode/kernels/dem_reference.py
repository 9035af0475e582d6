r"""Reference DEM kernels: the oracle for the numba version (DEM runs on the host only).

The hot loop of dynamic expectation maximisation assembles, over time bins
:math:`t`, the precision-weighted generalized prediction errors and their
Gauss-Newton gradient and curvature with respect to some quantity :math:`q`
(the generalized states in the D-step, the parameters in the E-step):

.. math::

    g = \sum_t J_t^\top \tilde\Pi \tilde\varepsilon_t, \qquad
    H = \sum_t J_t^\top \tilde\Pi J_t, \qquad
    ss = \sum_t \tilde\varepsilon_t^\top \tilde\Pi \tilde\varepsilon_t,

with :math:`J_t = \partial\tilde\varepsilon_t / \partial q`. Then
:math:`\partial F/\partial q = -g` and :math:`\partial^2 F/\partial q^2 \approx -H`.
"""

from __future__ import annotations

from typing import Any

from ..backend import array_namespace
from .registry import register_kernel

B = "numpy"


@register_kernel("dem_accumulate", B)
def dem_accumulate(E: Any, J: Any, P: Any) -> tuple[Any, Any, Any]:
    """Sum over time of ``J^T P e``, ``J^T P J`` and ``e^T P e``.

    Parameters
    ----------
    E : array (N, ne)
        Generalized prediction errors per time bin.
    J : array (N, ne, nq)
        Their Jacobians with respect to ``q``.
    P : array (ne, ne)
        Generalized precision (symmetric).

    Returns
    -------
    g : array (nq,)
    H : array (nq, nq)
    ss : scalar
    """
    xp = array_namespace(E, J, P)
    PE = E @ P  # (N, ne), P symmetric
    PJ = xp.matmul(P, J)  # (N, ne, nq)
    g = xp.einsum("tkq,tk->q", J, PE)
    H = xp.einsum("tkq,tkr->qr", J, PJ)
    ss = xp.sum(PE * E)
    return g, H, ss
