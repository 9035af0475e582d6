r"""Reference predictive-coding kernels: plain array code, the oracle for all backends.

Notation (Whittington & Bogacz 2017, layers :math:`l = 0..L`, row-major batches):

.. math::

    \mu_l = f(x_{l-1}) W_l^\top + b_l, \qquad
    \varepsilon_l = \pi_l (x_l - \mu_l), \qquad
    F = \sum_l \tfrac{\pi_l}{2} \lVert x_l - \mu_l \rVert^2

    \dot x_l = -\varepsilon_l + f'(x_l) \odot \varepsilon_{l+1} W_{l+1}, \qquad
    \Delta W_l \propto \varepsilon_l^\top f(x_{l-1})

``z_l = f(x_{l-1}) W_l^T`` is the prediction without its bias. All kernels work
in place on preallocated buffers, so the numba and CuPy versions can fuse the
elementwise work and allocate nothing in the loop. Energies come back as a scalar
of the array namespace (a 0-d cupy array on the GPU, so no device sync).
"""

from __future__ import annotations

from typing import Any

from ..activations import apply as _apply
from ..activations import derivative as _derivative
from ..backend import array_namespace
from .registry import register_kernel

B = "numpy"


@register_kernel("pc_activate", B)
def pc_activate(x: Any, fx: Any, dfx: Any, activation: str) -> None:
    """Write ``fx = f(x)`` and ``dfx = f'(x)``."""
    xp = array_namespace(x)
    fx[...] = _apply(activation, x, xp)
    dfx[...] = _derivative(activation, x, fx, xp)


@register_kernel("pc_predict", B)
def pc_predict(W: Any, fx_prev: Any, out: Any) -> None:
    """Prediction without bias: ``out = fx_prev @ W.T`` (``W`` is (n_l, n_{l-1}))."""
    xp = array_namespace(W)
    xp.matmul(fx_prev, W.T, out=out)


@register_kernel("pc_feedback", B)
def pc_feedback(W: Any, eps: Any, out: Any) -> None:
    """Error fed back to the layer below: ``out = eps @ W`` (row form of W^T eps)."""
    xp = array_namespace(W)
    xp.matmul(eps, W, out=out)


@register_kernel("pc_error", B)
def pc_error(x: Any, z: Any, b: Any, precision: float, eps: Any):
    """Error of a clamped layer: ``eps = pi (x - z - b)``; returns its energy.

    Returns
    -------
    scalar
        ``pi/2 * sum((x - z - b)**2)`` over the whole batch.
    """
    xp = array_namespace(x)
    e = x - z - b
    eps[...] = precision * e
    return 0.5 * precision * xp.sum(e * e)


@register_kernel("pc_settle_step", B)
def pc_settle_step(
    x: Any,
    z: Any,
    b: Any,
    bu: Any,
    fx: Any,
    dfx: Any,
    eps: Any,
    gamma: float,
    precision: float,
    activation: str,
    refresh: bool,
):
    """One Euler step of a free layer's activity, fused with its error.

    ``e = x - z - b``; ``eps = pi e``; ``x += gamma (-eps + dfx * bu)`` where
    ``bu`` is the feedback ``eps_{l+1} W_{l+1}``; then, if ``refresh``,
    ``fx = f(x)``, ``dfx = f'(x)`` (``refresh=False`` keeps them fixed, the
    fixed-prediction assumption).

    Returns
    -------
    scalar
        The layer's energy ``pi/2 sum(e**2)`` *before* the update.
    """
    xp = array_namespace(x)
    e = x - z - b
    eps[...] = precision * e
    x += gamma * (dfx * bu - eps)
    if refresh:
        pc_activate(x, fx, dfx, activation)
    return 0.5 * precision * xp.sum(e * e)


@register_kernel("pc_hebbian", B)
def pc_hebbian(W: Any, b: Any, eps: Any, fx_prev: Any, lr: float) -> None:
    """Local Hebbian update averaged over the batch.

    ``W += lr/n eps^T fx_prev`` and ``b += lr/n sum_n eps`` (pre-synaptic
    activity times post-synaptic error; equals ``-lr dF/dW`` of the mean energy).
    """
    xp = array_namespace(W)
    n = eps.shape[0]
    W += (lr / n) * (eps.T @ fx_prev)
    b += (lr / n) * xp.sum(eps, axis=0)


def _prior(r: Any, xp: Any, sparse: bool):
    """Cause prior g(r) and its derivative g'(r): Gaussian r^2, or sparse log(1 + r^2)."""
    if sparse:
        return xp.log1p(r * r), 2.0 * r / (1.0 + r * r)
    return r * r, 2.0 * r


@register_kernel("rb_cause_step", B)
def rb_cause_step(
    r: Any, bu: Any, r_td: Any, eps_td: Any, k1: float, tau_td: float, alpha: float,
    sparse: bool,
):
    r"""One Euler step of Rao & Ballard causes, fused with their top-down error.

    ``e = r - r_td``; ``eps_td = tau_td e`` (the precision-weighted error sent up);
    ``r += k1 (bu - tau_td e - alpha/2 g'(r))`` where ``bu`` is the (already
    precision-weighted) bottom-up term :math:`U^\top (I - U r) / \sigma^2` and
    ``tau_td`` is :math:`1/\sigma_{td}^2` (0 at the top level).

    Returns
    -------
    scalar
        The causes' energy terms *before* the update,
        ``sum(tau_td e**2 + alpha g(r))`` (Rao & Ballard's E has no 1/2).
    """
    xp = array_namespace(r)
    e = r - r_td
    g, gp = _prior(r, xp, sparse)
    eps_td[...] = tau_td * e
    energy = xp.sum(tau_td * e * e + alpha * g)
    r += k1 * (bu - eps_td - 0.5 * alpha * gp)
    return energy
