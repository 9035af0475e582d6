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

from ..backend import register_kernel

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
