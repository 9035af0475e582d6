"""numba (CPU) versions of the active-inference kernels (signatures of ``aif_reference``)."""

from __future__ import annotations

import math
from typing import Any

import numba
import numpy as np

from .common import LOG_FLOOR
from .numba_cache import configure as _configure_cache
from .registry import register_kernel

_configure_cache()  # numba's cache: per user, never inside the package

B = "numba"
_JIT = {"error_model": "numpy", "cache": True, "nogil": True}
#: From this many states on, transition messages use BLAS (grouped by action)
#: instead of the fused loop (measured on a 2-core Xeon: the loop wins below 16).
_BLAS_FROM = 16


@numba.njit(**_JIT)
def _efe(qs, A, lnC, H, W, out):  # pragma: no cover - compiled
    N, P, S = qs.shape
    O = A.shape[1]
    qo = np.empty(O, dtype=qs.dtype)
    for n in range(N):
        for p in range(P):
            amb = 0.0
            for s in range(S):
                amb += H[n, s] * qs[n, p, s]
            risk = 0.0
            nov = 0.0
            util = 0.0
            for o in range(O):
                acc = 0.0
                wacc = 0.0
                for s in range(S):
                    acc += A[n, o, s] * qs[n, p, s]
                    wacc += W[n, o, s] * qs[n, p, s]
                qo[o] = acc
                risk += acc * (math.log(acc + LOG_FLOOR) - lnC[n, o])
                nov += acc * wacc
                util += acc * lnC[n, o]
            out[n, p, 0] = risk
            out[n, p, 1] = amb
            out[n, p, 2] = nov
            out[n, p, 3] = util


@numba.njit(**_JIT)
def _belief_step(lnq, v, tau, out):  # pragma: no cover - compiled
    R, K = lnq.shape
    for r in range(R):
        m = 0.0
        for k in range(K):
            m += v[r, k]
        m /= K
        mx = -np.inf
        for k in range(K):
            x = lnq[r, k] + (v[r, k] - m) / tau
            out[r, k] = x
            if x > mx:
                mx = x
        tot = 0.0
        for k in range(K):
            e = math.exp(out[r, k] - mx)
            out[r, k] = e
            tot += e
        for k in range(K):
            out[r, k] /= tot


@numba.njit(**_JIT)
def _propagate(Bm, q, u, out):  # pragma: no cover - compiled
    N, P, S = q.shape
    for n in range(N):
        for p in range(P):
            a = u[p]
            for i in range(S):
                acc = 0.0
                for j in range(S):
                    acc += Bm[n, i, j, a] * q[n, p, j]
                out[n, p, i] = acc


@register_kernel("aif_propagate", B)
def aif_propagate(Bm: Any, q: Any, u: Any) -> Any:
    """``B[n, :, :, u[p]] @ q[n, p]`` for every agent and policy (compiled loops)."""
    q = np.ascontiguousarray(q)
    u = np.ascontiguousarray(u, np.int64)
    out = np.empty_like(q)
    if q.shape[2] < _BLAS_FROM:
        _propagate(np.ascontiguousarray(Bm, dtype=q.dtype), q, u, out)
        return out
    # large state spaces: one batched BLAS product per action, over the policies taking it
    for a in np.unique(u):
        idx = np.flatnonzero(u == a)
        Bt = np.swapaxes(Bm[..., a], 1, 2).astype(q.dtype, copy=False)
        out[:, idx] = np.matmul(q[:, idx], Bt)
    return out


@register_kernel("aif_efe", B)
def aif_efe(qs: Any, A: Any, lnC: Any, H: Any, W: Any) -> Any:
    """Risk, ambiguity, novelty and utility per agent and policy (compiled loops)."""
    qs = np.ascontiguousarray(qs)
    out = np.empty(qs.shape[:2] + (4,), dtype=qs.dtype)
    _efe(qs, np.ascontiguousarray(A, dtype=qs.dtype), np.ascontiguousarray(lnC, dtype=qs.dtype),
         np.ascontiguousarray(H, dtype=qs.dtype), np.ascontiguousarray(W, dtype=qs.dtype), out)
    return out


@register_kernel("aif_belief_step", B)
def aif_belief_step(lnq: Any, v: Any, tau: float) -> Any:
    """``softmax(lnq + (v - mean v) / tau)`` over the last axis (compiled loops)."""
    shape = lnq.shape
    lnq2 = np.ascontiguousarray(lnq).reshape(-1, shape[-1])
    v2 = np.ascontiguousarray(v, dtype=lnq2.dtype).reshape(-1, shape[-1])
    out = np.empty_like(lnq2)
    _belief_step(lnq2, v2, float(tau), out)
    return out.reshape(shape)
