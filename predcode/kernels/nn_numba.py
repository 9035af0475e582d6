r"""numba (CPU) versions of the JEPA kernels (signatures of ``nn_reference``).

``epps_pulley`` on a uniform grid starting at 0 (the one
:func:`~predcode.nn.epps_pulley_grid` makes) computes one cosine and one sine per
projection and gets :math:`\cos k h x`, :math:`\sin k h x` by angle addition: 2
instead of 2K transcendental calls.
"""

from __future__ import annotations

import math
from typing import Any

import numba
import numpy as np

from .common import conv_out_size
from .numba_cache import configure as _configure_cache
from .registry import register_kernel

_configure_cache()  # numba's cache: per user, never inside the package

B = "numba"
_JIT = {"error_model": "numpy", "cache": True, "nogil": True, "fastmath": False}
_GELU_C = math.sqrt(2.0 / math.pi)


@numba.njit(**_JIT)
def _im2col(x, k, stride, padding, cols):  # pragma: no cover - compiled
    N, C, H, W = x.shape
    Ho, Wo = cols.shape[1], cols.shape[2]
    for n in range(N):
        for i in range(Ho):
            for j in range(Wo):
                for c in range(C):
                    for a in range(k):
                        r = i * stride + a - padding
                        for b in range(k):
                            q = j * stride + b - padding
                            if 0 <= r < H and 0 <= q < W:
                                cols[n, i, j, c, a, b] = x[n, c, r, q]
                            else:
                                cols[n, i, j, c, a, b] = 0.0


@numba.njit(**_JIT)
def _col2im(cols, k, stride, padding, x):  # pragma: no cover - compiled
    N, C, H, W = x.shape
    Ho, Wo = cols.shape[1], cols.shape[2]
    for n in range(N):
        for i in range(Ho):
            for j in range(Wo):
                for c in range(C):
                    for a in range(k):
                        r = i * stride + a - padding
                        if r < 0 or r >= H:
                            continue
                        for b in range(k):
                            q = j * stride + b - padding
                            if 0 <= q < W:
                                x[n, c, r, q] += cols[n, i, j, c, a, b]


@numba.njit(**_JIT)
def _gelu(x, y, dy):  # pragma: no cover - compiled
    for i in range(x.size):
        v = x[i]
        th = math.tanh(_GELU_C * (v + 0.044715 * v * v * v))
        y[i] = 0.5 * v * (1.0 + th)
        dy[i] = 0.5 * (1.0 + th) + 0.5 * v * (1.0 - th * th) * _GELU_C * (
            1.0 + 3 * 0.044715 * v * v)


@numba.njit(**_JIT)
def _epps_pulley(x, t, w, uniform, stat, grad):  # pragma: no cover - compiled
    N, M = x.shape
    K = t.shape[0]
    h = t[1] - t[0] if K > 1 else 0.0
    cb = np.empty((N, K))
    sb = np.empty((N, K))
    Cm = np.empty(K)
    Sm = np.empty(K)
    for m in range(M):
        for kk in range(K):
            Cm[kk] = 0.0
            Sm[kk] = 0.0
        for n in range(N):
            if uniform:
                # t_k = k h: cos/sin of k*theta by the angle-addition recurrence
                c1 = math.cos(h * x[n, m])
                s1 = math.sin(h * x[n, m])
                c, s = 1.0, 0.0
                for kk in range(K):
                    cb[n, kk] = c
                    sb[n, kk] = s
                    c, s = c * c1 - s * s1, s * c1 + c * s1
            else:
                for kk in range(K):
                    v = t[kk] * x[n, m]
                    cb[n, kk] = math.cos(v)
                    sb[n, kk] = math.sin(v)
            for kk in range(K):
                Cm[kk] += cb[n, kk]
                Sm[kk] += sb[n, kk]
        tot = 0.0
        for kk in range(K):
            Cm[kk] = Cm[kk] / N - math.exp(-0.5 * t[kk] * t[kk])
            Sm[kk] /= N
            tot += w[kk] * (Cm[kk] * Cm[kk] + Sm[kk] * Sm[kk])
        stat[m] = N * tot
        for n in range(N):
            g = 0.0
            for kk in range(K):
                g += 2.0 * w[kk] * t[kk] * (Sm[kk] * cb[n, kk] - Cm[kk] * sb[n, kk])
            grad[n, m] = g


@numba.njit(**_JIT)
def _gelu1(v):  # pragma: no cover - compiled
    return 0.5 * v * (1.0 + math.tanh(_GELU_C * (v + 0.044715 * v * v * v)))


@numba.njit(**_JIT)
def _mlp_rollout(z0, A, W1, b1, W2, b2, W3, b3, out):  # pragma: no cover - compiled
    # row-major weights (n_in, n_out): the inner loops run along contiguous rows
    S, H, da = A.shape
    d = z0.shape[1]
    n1 = W1.shape[1]
    n2 = W2.shape[1]
    z = np.empty(d)
    u1 = np.empty(n1)
    u2 = np.empty(n2)
    for s in range(S):
        for i in range(d):
            z[i] = z0[s, i]
        for h in range(H):
            for j in range(n1):
                u1[j] = b1[j]
            for i in range(d):
                zi = z[i]
                for j in range(n1):
                    u1[j] += zi * W1[i, j]
            for i in range(da):
                ai = A[s, h, i]
                for j in range(n1):
                    u1[j] += ai * W1[d + i, j]
            for j in range(n1):
                u1[j] = _gelu1(u1[j])
            for j in range(n2):
                u2[j] = b2[j]
            for i in range(n1):
                ui = u1[i]
                for j in range(n2):
                    u2[j] += ui * W2[i, j]
            for j in range(n2):
                u2[j] = _gelu1(u2[j])
            for j in range(d):
                z[j] += b3[j]
            for i in range(n2):
                ui = u2[i]
                for j in range(d):
                    z[j] += ui * W3[i, j]
            for j in range(d):
                out[s, h, j] = z[j]


@register_kernel("mlp_rollout", B)
def mlp_rollout(z0: Any, A: Any, W1: Any, b1: Any, W2: Any, b2: Any, W3: Any,
                     b3: Any) -> Any:
    """Batched residual-MLP rollout, one compiled loop over samples and steps."""
    dt = z0.dtype
    c = [np.ascontiguousarray(a, dtype=dt) for a in (z0, A, W1, b1, W2, b2, W3, b3)]
    out = np.empty((A.shape[0], A.shape[1], z0.shape[1]), dtype=dt)
    _mlp_rollout(*c, out)
    return out


@register_kernel("im2col", B)
def im2col(x: Any, k: int, stride: int, padding: int) -> Any:
    """Patch matrix of a k×k convolution (compiled loops)."""
    x = np.ascontiguousarray(x)
    N, C, H, W = x.shape
    Ho, Wo = conv_out_size(H, k, stride, padding), conv_out_size(W, k, stride, padding)
    cols = np.empty((N, Ho, Wo, C, k, k), dtype=x.dtype)
    _im2col(x, int(k), int(stride), int(padding), cols)
    return cols


@register_kernel("col2im", B)
def col2im(cols: Any, shape: tuple, k: int, stride: int, padding: int) -> Any:
    """Adjoint of im2col (compiled loops)."""
    x = np.zeros(tuple(shape), dtype=cols.dtype)
    _col2im(np.ascontiguousarray(cols), int(k), int(stride), int(padding), x)
    return x


@register_kernel("gelu", B)
def gelu(x: Any) -> tuple[Any, Any]:
    """GELU (tanh form) and its derivative (compiled loop)."""
    xc = np.ascontiguousarray(x)
    y = np.empty_like(xc)
    dy = np.empty_like(xc)
    _gelu(xc.reshape(-1), y.reshape(-1), dy.reshape(-1))
    return y, dy


@register_kernel("epps_pulley", B)
def epps_pulley(x: Any, t: Any, w: Any) -> tuple[Any, Any]:
    """Epps–Pulley statistic per column and its gradient (compiled loops)."""
    x = np.ascontiguousarray(x)
    t = np.ascontiguousarray(t, dtype=np.float64)
    uniform = bool(len(t) > 1 and t[0] == 0.0 and np.allclose(np.diff(t), t[1] - t[0],
                                                               rtol=1e-12, atol=0.0))
    stat = np.empty(x.shape[1], dtype=x.dtype)
    grad = np.empty_like(x)
    _epps_pulley(x, t, np.ascontiguousarray(w, dtype=np.float64), uniform, stat, grad)
    return stat, grad
