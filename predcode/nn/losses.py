r"""Losses with their gradients: mean-squared, cosine, VICReg and SIGReg.

Each function returns ``(value, grad)`` (or a tuple of gradients), the
gradient being :math:`\partial \text{value}/\partial \text{input}` of the scalar
value; all are checked against finite differences in ``tests/test_nn_blocks.py``.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..backend import array_namespace
from ..exceptions import ValidationError
from ..kernels import get_kernel
from ..validation import check_int, check_param, check_random_state

__all__ = ["mse", "cosine", "vicreg", "sigreg", "epps_pulley_grid"]


def _same_shape(a: Any, b: Any, owner: str) -> None:
    if a.shape != b.shape:
        raise ValidationError(f"{owner}: prediction and target must have the same shape, got "
                              f"{tuple(a.shape)} and {tuple(b.shape)}.")


def mse(pred: Any, target: Any) -> tuple[float, Any]:
    r"""Mean over rows of the squared error :math:`\tfrac1N\sum_n \lVert p_n - y_n\rVert^2`.

    The sum runs over the last axis; the mean over all leading axes. Gradient
    :math:`2 (p - y)/N` with respect to ``pred`` (``target`` is treated as fixed).
    """
    _same_shape(pred, target, "mse")
    n = pred.size // pred.shape[-1] if pred.ndim else 1
    d = pred - target
    return float((d * d).sum()) / n, (2.0 / n) * d


def cosine(pred: Any, target: Any, eps: float = 1e-8) -> tuple[float, Any]:
    r"""Mean cosine distance :math:`\tfrac1N\sum_n \big(1 - \frac{p_n\cdot y_n}{\lVert p_n\rVert
    \lVert y_n\rVert}\big)` over rows (last axis = features).

    Gradient w.r.t. :math:`p_n`: :math:`-\frac1N\big(\frac{\hat y_n}{\lVert p_n\rVert}
    - \cos_n \frac{p_n}{\lVert p_n\rVert^2}\big)`.
    """
    _same_shape(pred, target, "cosine")
    xp = array_namespace(pred, target)
    n = pred.size // pred.shape[-1]
    pn = xp.sqrt((pred * pred).sum(axis=-1, keepdims=True)) + eps
    yn = xp.sqrt((target * target).sum(axis=-1, keepdims=True)) + eps
    cos = (pred * target).sum(axis=-1, keepdims=True) / (pn * yn)
    grad = -(target / (yn * pn) - cos * pred / (pn * pn)) / n
    return float(n - cos.sum()) / n, grad


def vicreg(za: Any, zb: Any, *, sim_weight: float = 25.0, var_weight: float = 25.0,
           cov_weight: float = 1.0, gamma: float = 1.0, eps: float = 1e-4,
           ) -> tuple[float, Any, Any, dict[str, float]]:
    r"""VICReg loss of two batches of embeddings (Bardes, Ponce & LeCun 2022).

    .. math::

        \ell = \lambda\, s(Z_a, Z_b) + \mu\,[v(Z_a) + v(Z_b)] + \nu\,[c(Z_a) + c(Z_b)],

    invariance :math:`s = \tfrac{1}{ND}\sum_{n,j}(z_{a,nj} - z_{b,nj})^2` (the mean
    squared error of the paper's code); variance hinge
    :math:`v(Z) = \tfrac1D\sum_j \max(0, \gamma - \sqrt{\operatorname{Var} z_j + \epsilon})`;
    covariance :math:`c(Z) = \tfrac1D\sum_{i\ne j} C_{ij}^2` with :math:`C` the
    (N−1)-normalised covariance. Defaults :math:`\lambda=\mu=25,\ \nu=1,\ \gamma=1`
    are the paper's.

    Returns
    -------
    value, grad_a, grad_b, parts
        The loss, its gradients w.r.t. ``za`` and ``zb`` (N, D), and the three terms.
    """
    _same_shape(za, zb, "vicreg")
    if za.ndim != 2 or za.shape[0] < 2:
        raise ValidationError(f"vicreg: expected embeddings of shape (N >= 2, D), got "
                              f"{tuple(za.shape)}.")
    xp = array_namespace(za, zb)
    N, D = za.shape
    d = za - zb
    inv = float((d * d).mean())
    ga = sim_weight * 2.0 * d / (N * D)
    gb = -ga
    parts = {"invariance": inv, "variance": 0.0, "covariance": 0.0}
    total = sim_weight * inv
    out = []
    for z, g in ((za, ga), (zb, gb)):
        zc = z - z.mean(axis=0, keepdims=True)
        var = (zc * zc).sum(axis=0) / (N - 1)
        std = xp.sqrt(var + eps)
        hinge = xp.maximum(gamma - std, 0.0)
        v = float(hinge.mean())
        # d v / d z_nj = -(1/D)[hinge>0] * zc_nj / ((N-1) std_j)
        gv = -(hinge > 0).astype(z.dtype) * zc / ((N - 1) * std * D)
        C = zc.T @ zc / (N - 1)
        off = C - xp.diag(xp.diag(C))
        c = float((off * off).sum()) / D
        # d c / d z = (4/D) zc off / (N-1)  (C symmetric; centring is absorbed: sum_n zc = 0)
        gc = 4.0 * zc @ off / ((N - 1) * D)
        total += var_weight * v + cov_weight * c
        parts["variance"] += v
        parts["covariance"] += c
        out.append(g + var_weight * gv + cov_weight * gc)
    return total, out[0], out[1], parts


def epps_pulley_grid(n_knots: int = 17, t_max: float = 3.0, xp: Any = np) -> tuple[Any, Any]:
    r"""Quadrature nodes and weights of the Epps–Pulley integral.

    The integral :math:`\int_{-\infty}^{\infty} |\phi_N(t) - e^{-t^2/2}|^2 e^{-t^2/2}\,dt`
    has an even integrand, so it is twice the integral over :math:`[0, t_\max]`,
    computed with the trapezoidal rule on ``n_knots`` nodes (LeJEPA's defaults:
    17 knots; the window :math:`e^{-t^2/2}` is negligible beyond :math:`t = 3`...5).
    The returned weights include the factor 2 and the Gaussian window.
    """
    t = np.linspace(0.0, t_max, n_knots)
    h = t[1] - t[0]
    trap = np.full(n_knots, h)
    trap[0] = trap[-1] = h / 2
    w = 2.0 * trap * np.exp(-0.5 * t * t)
    return xp.asarray(t), xp.asarray(w)


def sigreg(z: Any, *, n_directions: int = 64, n_knots: int = 17, t_max: float = 3.0,
           random_state: Any = None, backend: str = "numpy") -> tuple[float, Any]:
    r"""SIGReg: sketched isotropic Gaussian regularisation (LeJEPA; LeWorldModel).

    For :math:`M` random unit directions :math:`a_m` (drawn afresh from
    ``random_state`` at each call, as in LeJEPA), the projections
    :math:`x_{nm} = a_m^\top z_n` of the embeddings :math:`Z` (N, D) are tested
    against :math:`\mathcal N(0, 1)` with the Epps–Pulley statistic
    (kernel ``epps_pulley``)

    .. math::

        T_m = N \int |\hat\phi_m(t) - e^{-t^2/2}|^2\, e^{-t^2/2}\, dt,\qquad
        \hat\phi_m(t) = \tfrac1N \textstyle\sum_n e^{i t x_{nm}},

    and :math:`\mathrm{SIGReg}(Z) = \tfrac1M\sum_m T_m`. By the Cramér–Wold
    theorem all 1-D projections being standard normal means :math:`Z` is
    :math:`\mathcal N(0, I)`; it is small (O(1): the statistic is :math:`N`
    times a squared distance that shrinks as :math:`1/N`) for Gaussian samples
    and large (O(N)) for collapsed ones.

    Returns
    -------
    value : float
    grad : array (N, D)
        :math:`\partial\,\mathrm{SIGReg}/\partial Z`.
    """
    if z.ndim != 2 or z.shape[0] < 2:
        raise ValidationError(f"sigreg: expected embeddings of shape (N >= 2, D), got "
                              f"{tuple(z.shape)}.")
    check_int(n_directions, "n_directions", "sigreg")
    check_int(n_knots, "n_knots", "sigreg", low=2)
    check_param(t_max, "t_max", "sigreg", low=0.0)
    xp = array_namespace(z)
    rng = check_random_state(random_state, owner="sigreg")
    A = rng.standard_normal((z.shape[1], n_directions))
    A /= np.linalg.norm(A, axis=0, keepdims=True)
    A = xp.asarray(A.astype(z.dtype))
    t, w = epps_pulley_grid(n_knots, t_max, xp)
    t, w = t.astype(z.dtype), w.astype(z.dtype)
    x = z @ A
    stat, gx = get_kernel("epps_pulley", backend)(x, t, w)
    M = n_directions
    return float(stat.sum()) / M, (gx @ A.T) / M


