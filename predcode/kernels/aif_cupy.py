"""CuPy (GPU) versions of the active-inference kernels (signatures of ``aif_reference``).

The batched contractions are cuBLAS/cuTENSOR ``einsum``; the elementwise
log/softmax work is fused into ``ElementwiseKernel``/``ReductionKernel`` calls.
"""

from __future__ import annotations

from typing import Any

import cupy as cp

from .common import LOG_FLOOR
from .registry import register_kernel

B = "cupy"

_risk_terms = cp.ElementwiseKernel(
    "T qo, T lnc, T floor", "T risk, T util",
    "risk = qo * (log(qo + floor) - lnc); util = qo * lnc;",
    "predcode_aif_risk_terms",
)
_shift = cp.ElementwiseKernel(
    "T lnq, T v, T vbar, T tau", "T x",
    "x = lnq + (v - vbar) / tau;",
    "predcode_aif_shift",
)


@register_kernel("aif_efe", B)
def aif_efe(qs: Any, A: Any, lnC: Any, H: Any, W: Any) -> Any:
    """Risk, ambiguity, novelty and utility per agent and policy (GPU)."""
    qo = cp.einsum("nos,nps->npo", A, qs)
    risk, util = _risk_terms(qo, lnC[:, None, :], qs.dtype.type(LOG_FLOOR))
    out = cp.empty(qs.shape[:2] + (4,), dtype=qs.dtype)
    out[..., 0] = risk.sum(axis=-1)
    out[..., 1] = cp.einsum("ns,nps->np", H, qs)
    out[..., 2] = cp.einsum("npo,npo->np", qo, cp.einsum("nos,nps->npo", W, qs))
    out[..., 3] = util.sum(axis=-1)
    return out


@register_kernel("aif_belief_step", B)
def aif_belief_step(lnq: Any, v: Any, tau: float) -> Any:
    """``softmax(lnq + (v - mean v) / tau)`` over the last axis (GPU)."""
    vbar = v.mean(axis=-1, keepdims=True)
    x = _shift(lnq, v, vbar, lnq.dtype.type(tau))
    x -= x.max(axis=-1, keepdims=True)
    cp.exp(x, out=x)
    x /= x.sum(axis=-1, keepdims=True)
    return x


@register_kernel("aif_propagate", B)
def aif_propagate(Bm: Any, q: Any, u: Any) -> Any:
    """``B[n, :, :, u[p]] @ q[n, p]`` for every agent and policy (batched cuBLAS)."""
    Bu = cp.moveaxis(Bm, 3, 1)[:, cp.asarray(u)]  # (N, P, S, S)
    return cp.matmul(Bu, q[..., None])[..., 0]
