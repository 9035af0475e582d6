"""numba (CPU) versions of the Helmholtz-machine kernels.

Same signatures as :mod:`predcode.kernels.helmholtz_reference`. The matrix
products stay in BLAS (``matmul`` with ``out=`` and an in-place ``gemm`` for the
weight update); the sigmoid, sampling, delta, log-probability and bias update
are one fused loop each.
"""

from __future__ import annotations

import math
from typing import Any

import numba
import numpy as np
from scipy.linalg import blas

from .numba_cache import configure as _configure_cache
from .registry import register_kernel

_configure_cache()  # numba's cache: per user, never inside the package

B = "numba"
_JIT = {"error_model": "numpy", "cache": True, "nogil": True}


@numba.njit(**_JIT)
def _sample(a, b, u, prob, out):
    n, k = a.shape
    one = a.dtype.type(1.0)
    zero = a.dtype.type(0.0)
    for i in range(n):
        for j in range(k):
            p = one / (one + math.exp(-(a[i, j] + b[j])))
            prob[i, j] = p
            out[i, j] = one if u[i, j] < p else zero


@numba.njit(**_JIT)
def _delta(a, b, target, d, scale):
    """On entry ``a`` = inputs @ W.T; writes ``d = t - p``, updates b, returns sum log P."""
    n, k = a.shape
    one = a.dtype.type(1.0)
    s = b.dtype.type(scale)
    acc = 0.0
    for i in range(n):
        for j in range(k):
            x = a[i, j] + b[j]
            p = one / (one + math.exp(-x))
            sp = max(x, 0.0) + math.log1p(math.exp(-abs(x)))
            acc += target[i, j] * x - sp
            d[i, j] = target[i, j] - p
    for i in range(n):
        for j in range(k):
            b[j] += s * d[i, j]
    return acc


@register_kernel("hm_sample", B)
def hm_sample(inputs: Any, W: Any, b: Any, u: Any, prob: Any, out: Any) -> None:
    """numba version of :func:`predcode.kernels.helmholtz_reference.hm_sample`."""
    a = np.matmul(inputs, W.T)
    _sample(a, b, u, prob, out)


@register_kernel("hm_delta", B)
def hm_delta(W: Any, b: Any, inputs: Any, target: Any, lr: float):
    """numba version of :func:`predcode.kernels.helmholtz_reference.hm_delta`.

    ``W`` is C-contiguous (k, m), i.e. Fortran ``W^T``; BLAS computes
    ``W^T += (lr/n) inputs^T d`` on it in place.
    """
    n = inputs.shape[0]
    scale = lr / n
    a = np.matmul(inputs, W.T)
    d = np.empty_like(a)
    logp = _delta(a, b, target, d, scale)
    if W.flags.c_contiguous and inputs.flags.c_contiguous:
        gemm = blas.get_blas_funcs("gemm", (W,))
        gemm(scale, inputs.T, d.T, beta=1.0, c=W.T, trans_b=True, overwrite_c=True)
    else:
        W += scale * (d.T @ inputs)
    return logp


@numba.njit(**_JIT)
def _logb(t, a):
    """log P(t | logit a) of one binary unit (stable)."""
    return t * a - (max(a, 0.0) + math.log1p(math.exp(-abs(a))))


@numba.njit(**_JIT)
def _online(n, ow, ob, G, R, c, r, X, U, lr_g, lr_r):
    L = n.shape[0] - 1
    one = X.dtype.type(1.0)
    zero = X.dtype.type(0.0)
    s = np.empty(ob[L + 1], dtype=X.dtype)  # states of layers 0..L, concatenated
    d = np.empty(ob[L + 1], dtype=X.dtype)
    p = np.empty(ob[L + 1], dtype=X.dtype)  # probabilities / deltas, scratch
    wake = 0.0
    sleep = 0.0
    for i in range(X.shape[0]):
        k = 0
        for j in range(n[0]):
            s[j] = X[i, j]
        # wake: recognition sample bottom-up
        for l in range(1, L + 1):
            for j in range(n[l]):
                a = r[ob[l] + j]
                for m in range(n[l - 1]):
                    a += R[ow[l] + j * n[l - 1] + m] * s[ob[l - 1] + m]
                q = one / (one + math.exp(-a))
                v = one if U[i, k] < q else zero
                k += 1
                s[ob[l] + j] = v
                wake += _logb(v, a)
        # top biases
        for j in range(n[L]):
            a = c[ob[L] + j]
            wake -= _logb(s[ob[L] + j], a)
            c[ob[L] + j] += lr_g[L] * (s[ob[L] + j] - one / (one + math.exp(-a)))
        # generative delta rule, layer by layer
        for l in range(1, L + 1):
            for j in range(n[l - 1]):
                a = c[ob[l - 1] + j]
                for m in range(n[l]):
                    a += G[ow[l] + j * n[l] + m] * s[ob[l] + m]
                t = s[ob[l - 1] + j]
                wake -= _logb(t, a)
                p[j] = t - one / (one + math.exp(-a))
            e = lr_g[l - 1]
            for j in range(n[l - 1]):
                dj = e * p[j]
                for m in range(n[l]):
                    G[ow[l] + j * n[l] + m] += dj * s[ob[l] + m]
                c[ob[l - 1] + j] += dj
        # sleep: dream top-down with the updated generative weights
        for j in range(n[L]):
            q = one / (one + math.exp(-c[ob[L] + j]))
            d[ob[L] + j] = one if U[i, k] < q else zero
            k += 1
        for l in range(L, 0, -1):
            for j in range(n[l - 1]):
                a = c[ob[l - 1] + j]
                for m in range(n[l]):
                    a += G[ow[l] + j * n[l] + m] * d[ob[l] + m]
                q = one / (one + math.exp(-a))
                d[ob[l - 1] + j] = one if U[i, k] < q else zero
                k += 1
        # recognition delta rule
        for l in range(1, L + 1):
            for j in range(n[l]):
                a = r[ob[l] + j]
                for m in range(n[l - 1]):
                    a += R[ow[l] + j * n[l - 1] + m] * d[ob[l - 1] + m]
                t = d[ob[l] + j]
                sleep -= _logb(t, a)
                p[j] = t - one / (one + math.exp(-a))
            e = lr_r[l - 1]
            for j in range(n[l]):
                dj = e * p[j]
                for m in range(n[l - 1]):
                    R[ow[l] + j * n[l - 1] + m] += dj * d[ob[l - 1] + m]
                r[ob[l] + j] += dj
    return wake, sleep


@register_kernel("hm_online", B)
def hm_online(sizes: Any, G: Any, R: Any, c: Any, r: Any, X: Any, U: Any,
              lr_g: Any, lr_r: Any):
    """numba version of :func:`predcode.kernels.helmholtz_reference.hm_online` (one fused loop)."""
    n = np.asarray(sizes, dtype=np.int64)
    L = n.shape[0] - 1
    ow = np.zeros(L + 2, dtype=np.int64)
    ob = np.zeros(L + 2, dtype=np.int64)
    for l in range(1, L + 1):
        ow[l + 1] = ow[l] + n[l - 1] * n[l]
    for l in range(L + 1):
        ob[l + 1] = ob[l] + n[l]
    dt = X.dtype
    w, s = _online(n, ow, ob, G, R, c, r, X, U, np.asarray(lr_g, dtype=dt),
                   np.asarray(lr_r, dtype=dt))
    return float(w), float(s)
