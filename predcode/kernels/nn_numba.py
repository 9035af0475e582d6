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

from .nn_reference import im2col as _im2col_reference
from .numba_cache import configure as _configure_cache
from .pc_numba import _FASTMATH, _tanh
from .registry import register_kernel

_configure_cache()  # numba's cache: per user, never inside the package

B = "numba"
_JIT = {"error_model": "numpy", "cache": True, "nogil": True, "fastmath": False}
# elementwise loops that must vectorise: fastmath without nnan/ninf (NaN still propagates)
_JIT_FAST = {"fastmath": _FASTMATH, "error_model": "numpy", "cache": True, "nogil": True}
_GELU_C = math.sqrt(2.0 / math.pi)


@numba.njit(**_JIT)
def _col2im(cols, k, stride, padding, x):  # pragma: no cover - compiled
    # accumulate each image plane on a zero-padded scratch plane (no bounds tests in the
    # inner loops), then crop it into x
    N, C, H, W = x.shape
    Ho, Wo = cols.shape[4], cols.shape[5]
    pad = np.empty((H + 2 * padding, W + 2 * padding), dtype=x.dtype)
    for n in range(N):
        for c in range(C):
            pad[:] = 0.0
            for a in range(k):
                for b in range(k):
                    for i in range(Ho):
                        for j in range(Wo):
                            pad[i * stride + a, j * stride + b] += cols[n, c, a, b, i, j]
            for r in range(H):
                for q in range(W):
                    x[n, c, r, q] = pad[r + padding, q + padding]


@numba.njit(**_JIT_FAST)
def _gelu(x, y, dy):  # pragma: no cover - compiled
    # constants typed from x: float32 stays float32 and takes the rational tanh
    one = x.dtype.type(1.0)
    half = x.dtype.type(0.5)
    c0 = x.dtype.type(_GELU_C)
    c1 = x.dtype.type(0.044715)
    c3 = x.dtype.type(3 * 0.044715)
    for i in range(x.size):
        v = x[i]
        th = _tanh(c0 * (v + c1 * v * v * v))
        y[i] = half * v * (one + th)
        dy[i] = half * (one + th) + half * v * (one - th * th) * c0 * (one + c3 * v * v)


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


@numba.njit(**_JIT_FAST)
def _gelu_rows(u, A, h, Wa, b):  # pragma: no cover - compiled
    # u <- GELU(u + A[:, h] @ Wa + b) in place; the action term (d_a tiny) is fused here.
    # Constants are typed from u, so float32 stays float32 (and _tanh is the rational one).
    one = u.dtype.type(1.0)
    half = u.dtype.type(0.5)
    c0 = u.dtype.type(_GELU_C)
    c1 = u.dtype.type(0.044715)
    S, n = u.shape
    da = Wa.shape[0]
    for s in range(S):
        row = u[s]
        for j in range(n):
            row[j] += b[j]
        for i in range(da):  # j innermost: contiguous, vectorised
            a = A[s, h, i]
            for j in range(n):
                row[j] += a * Wa[i, j]
        for j in range(n):
            v = row[j]
            row[j] = half * v * (one + _tanh(c0 * (v + c1 * v * v * v)))


@numba.njit(**_JIT_FAST)
def _residual_step(z, dz, b, out, h):  # pragma: no cover - compiled
    S, d = z.shape
    for s in range(S):
        for j in range(d):
            z[s, j] += dz[s, j] + b[j]
            out[s, h, j] = z[s, j]


@register_kernel("mlp_rollout", B)
def mlp_rollout(z0: Any, A: Any, W1: Any, b1: Any, W2: Any, b2: Any, W3: Any,
                b3: Any) -> Any:
    r"""Batched residual-MLP rollout: per horizon step, three BLAS GEMMs over all samples.

    :math:`z_{h+1} = z_h + W_3^\top g(W_2^\top g(W_{1z}^\top z_h + W_{1a}^\top a_h + b_1)
    + b_2) + b_3` for all ``S`` samples at once: the matrix products are numpy's
    ``matmul(out=)`` on preallocated buffers, the bias, the action term and the GELU
    one fused compiled pass (float32 GELU on the [13/6] rational tanh), in z0's dtype.
    """
    dt = z0.dtype
    d = z0.shape[1]
    W1 = np.asarray(W1, dtype=dt)
    W1z, W1a = np.ascontiguousarray(W1[:d]), np.ascontiguousarray(W1[d:])
    A, b1, W2, b2, W3, b3 = (np.ascontiguousarray(a, dtype=dt) for a in (A, b1, W2, b2, W3, b3))
    S, H = A.shape[0], A.shape[1]
    z = np.array(z0, dtype=dt, order="C")
    u1 = np.empty((S, W1.shape[1]), dtype=dt)
    u2 = np.empty((S, W2.shape[1]), dtype=dt)
    dz = np.empty((S, d), dtype=dt)
    none = np.empty((0, W2.shape[1]), dtype=dt)
    out = np.empty((S, H, d), dtype=dt)
    for h in range(H):
        np.matmul(z, W1z, out=u1)
        _gelu_rows(u1, A, h, W1a, b1)
        np.matmul(u1, W2, out=u2)
        _gelu_rows(u2, A, h, none, b2)
        np.matmul(u2, W3, out=dz)
        _residual_step(z, dz, b3, out, h)
    return out


@register_kernel("im2col", B)
def im2col(x: Any, k: int, stride: int, padding: int) -> Any:
    """Patch matrix of a k×k convolution: k² strided block copies of the padded image.

    The reference's array code: numpy's strided block copies (memory-bound, about
    8 GB/s here) beat compiled per-row loops (1.2 against 1.6 ms for a 64×16×16×16
    batch, measured), so the compiled backend runs them too.
    """
    return _im2col_reference(np.ascontiguousarray(x), k, stride, padding)


@register_kernel("col2im", B)
def col2im(cols: Any, shape: tuple, k: int, stride: int, padding: int) -> Any:
    """Adjoint of im2col (compiled loops)."""
    x = np.empty(tuple(shape), dtype=cols.dtype)
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
