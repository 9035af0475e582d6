r"""Reference (array-API) kernels of the JEPA / latent-world-model family.

``im2col(x, k, stride, padding) -> cols``
    Unfold an image batch ``x`` of shape (N, C, H, W) into the patch matrix of a
    ``k``×``k`` convolution: ``cols`` has shape (N, C, k, k, Ho, Wo) with
    ``cols[n, c, a, b, i, j] = xpad[n, c, i s + a, j s + b]`` (``xpad``: ``x``
    zero-padded by ``padding`` on each side, ``s = stride``,
    ``Ho = (H + 2p - k) // s + 1``). Channels-first: the output pixels are the
    contiguous axis, so unfolding copies whole image rows, and the convolution is one
    GEMM per image, :math:`Y_n = W P_n` with ``W`` (C_out, C k²), whose result is
    already in (N, C_out, Ho, Wo) order.

``col2im(cols, shape, k, stride, padding) -> x``
    The adjoint of ``im2col``: scatter-add the patch matrix back onto an
    image of ``shape`` (N, C, H, W). Used for the input gradient of a convolution.

``gelu(x) -> (y, dydx)``
    GELU in its tanh form (Hendrycks & Gimpel 2016),
    :math:`y = \tfrac12 x (1 + \tanh u)`, :math:`u = \sqrt{2/\pi}(x + 0.044715 x^3)`,
    and its derivative, in one pass.

``epps_pulley(x, t, w) -> (stat, grad)``
    The Epps–Pulley statistic of each column of ``x`` (N, M) (N samples of M
    one-dimensional projections) against a standard normal (LeJEPA, Balestriero &
    LeCun 2025, SIGReg):

    .. math::

        T_m = N \sum_k w_k \Big[\big(\tfrac1N\textstyle\sum_n \cos t_k x_{nm}
              - e^{-t_k^2/2}\big)^2 + \big(\tfrac1N\textstyle\sum_n \sin t_k x_{nm}\big)^2\Big],

    with quadrature nodes ``t`` (K,) and weights ``w`` (K,) that already include
    the Gaussian window. Returns ``stat`` (M,) and ``grad`` (N, M) =
    :math:`\partial T_m / \partial x_{nm}`.

``mlp_rollout(z0, A, W1, b1, W2, b2, W3, b3) -> Z``
    Roll a residual MLP dynamics model forward for a batch of action sequences
    (the CEM rollouts): :math:`z_{h+1} = z_h + W_3^\top \mathrm{gelu}(W_2^\top
    \mathrm{gelu}(W_1^\top [z_h, a_h] + b_1) + b_2) + b_3` for ``z0`` (S, d) and
    ``A`` (S, H, d_a); weights stored (n_in, n_out) as in
    :class:`~predcode.nn.Linear`. Returns ``Z`` (S, H, d) = :math:`z_1..z_H`.
"""

from __future__ import annotations

import math
from typing import Any

from ..backend import array_namespace
from .common import conv_out_size
from .registry import register_kernel

B = "numpy"
_GELU_C = math.sqrt(2.0 / math.pi)


@register_kernel("im2col", B)
def im2col(x: Any, k: int, stride: int, padding: int) -> Any:
    """Patch matrix (N, C, k, k, Ho, Wo) of a k×k convolution (see module doc)."""
    xp = array_namespace(x)
    N, C, H, W = x.shape
    Ho, Wo = conv_out_size(H, k, stride, padding), conv_out_size(W, k, stride, padding)
    if padding:
        xpad = xp.zeros((N, C, H + 2 * padding, W + 2 * padding), dtype=x.dtype)
        xpad[:, :, padding:padding + H, padding:padding + W] = x
    else:
        xpad = x
    cols = xp.empty((N, C, k, k, Ho, Wo), dtype=x.dtype)
    for a in range(k):
        for b in range(k):
            cols[:, :, a, b] = xpad[:, :, a:a + stride * (Ho - 1) + 1:stride,
                                    b:b + stride * (Wo - 1) + 1:stride]
    return cols


@register_kernel("col2im", B)
def col2im(cols: Any, shape: tuple, k: int, stride: int, padding: int) -> Any:
    """Scatter-add ``cols`` (N, C, k, k, Ho, Wo) onto an image of ``shape`` (adjoint of im2col)."""
    xp = array_namespace(cols)
    N, C, H, W = shape
    Ho, Wo = cols.shape[4], cols.shape[5]
    xpad = xp.zeros((N, C, H + 2 * padding, W + 2 * padding), dtype=cols.dtype)
    for a in range(k):
        for b in range(k):
            xpad[:, :, a:a + stride * (Ho - 1) + 1:stride,
                 b:b + stride * (Wo - 1) + 1:stride] += cols[:, :, a, b]
    return xpad[:, :, padding:padding + H, padding:padding + W]


@register_kernel("gelu", B)
def gelu(x: Any) -> tuple[Any, Any]:
    """GELU (tanh form) and its derivative."""
    xp = array_namespace(x)
    u = _GELU_C * (x + 0.044715 * x ** 3)
    th = xp.tanh(u)
    y = 0.5 * x * (1.0 + th)
    dy = 0.5 * (1.0 + th) + 0.5 * x * (1.0 - th * th) * _GELU_C * (1.0 + 3 * 0.044715 * x * x)
    return y, dy


@register_kernel("epps_pulley", B)
def epps_pulley(x: Any, t: Any, w: Any) -> tuple[Any, Any]:
    """Epps–Pulley statistic per column of ``x`` and its gradient (see module doc)."""
    xp = array_namespace(x)
    N = x.shape[0]
    tx = x[:, :, None] * t[None, None, :]  # (N, M, K)
    c, s = xp.cos(tx), xp.sin(tx)
    C = c.mean(axis=0) - xp.exp(-0.5 * t * t)[None, :]  # (M, K)
    S = s.mean(axis=0)
    stat = N * ((C * C + S * S) * w[None, :]).sum(axis=1)
    grad = (2.0 * (w * t)[None, None, :] * (S[None] * c - C[None] * s)).sum(axis=2)
    return stat, grad


@register_kernel("mlp_rollout", B)
def mlp_rollout(z0: Any, A: Any, W1: Any, b1: Any, W2: Any, b2: Any, W3: Any,
                     b3: Any) -> Any:
    """Batched residual-MLP rollout (see module doc)."""
    xp = array_namespace(z0, A)
    d = z0.shape[1]
    z = z0
    out = xp.empty((A.shape[0], A.shape[1], d), dtype=z0.dtype)
    for h in range(A.shape[1]):
        u = z @ W1[:d] + A[:, h] @ W1[d:] + b1
        u = gelu(u)[0] @ W2 + b2
        z = z + gelu(u)[0] @ W3 + b3
        out[:, h] = z
    return out
