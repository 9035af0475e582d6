"""CuPy (GPU) versions of the active-inference kernels (signatures of ``aif_reference``).

The batched contractions are cuBLAS/cuTENSOR ``einsum``; the elementwise
log/softmax work is fused into ``ElementwiseKernel``/``ReductionKernel`` calls.
``aif_pymdp_step`` is one ``RawKernel`` launch per time step (one block per agent); its
CUDA source is also built as C++ and checked against the reference on the CPU
(``tests/test_aif_pymdp_scheme.py``), since the test machines have no GPU.
"""

from __future__ import annotations

from typing import Any

import cupy as cp
import numpy as np

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


# --------------------------------------------------------------------------- aif_pymdp_step
# One block per agent: its threads share the states in the message passing (a block-wide
# sum normalises each q_j) and the policies in the roll-out (each thread rolls its
# policies out alone; a block-wide max and sum make q(pi)). ``real`` is double or float.
_PYMDP_SRC = r"""
#define RED 256
// block-wide max / sum of every thread's v (all threads call it, all get the result)
__device__ double block_max(double* red, double v, const int tid, const int nt)
{
    red[tid] = v;
    __syncthreads();
    for (int h = nt / 2; h > 0; h >>= 1) {
        if (tid < h && red[tid + h] > red[tid]) red[tid] = red[tid + h];
        __syncthreads();
    }
    v = red[0];
    __syncthreads();
    return v;
}
__device__ double block_sum(double* red, double v, const int tid, const int nt)
{
    red[tid] = v;
    __syncthreads();
    for (int h = nt / 2; h > 0; h >>= 1) {
        if (tid < h) red[tid] += red[tid + h];
        __syncthreads();
    }
    v = red[0];
    __syncthreads();
    return v;
}
extern "C" __global__ void predcode_aif_pymdp_step_REAL(
    const long long* orow, const long long* u, const int t, const int T, const int M,
    const int S, const int O, const int P,
    const real* lnA, const real* AB, const real* HB, const real* C, const real* BT,
    const real* Bb, const real* lnD, const long long* V, const real* lnE,
    const double gamma, const double info, const int num_iter,
    real* ex, real* qa, real* qb, real* roll, real* qs, real* G, real* q_pi)
{
    __shared__ double red[RED];
    const double eps = 2.220446049250313e-16;
    const int k = blockIdx.x, tid = threadIdx.x, nt = blockDim.x;
    const int n = t + 1, L = T - 1 - t;
    const long long* ok = orow + (long long)k * T * M;
    const long long* uk = u + (long long)k * (T - 1);
    real* e = ex + (long long)k * n * S;
    real* q = qa + (long long)k * n * S;
    real* qn = qb + (long long)k * n * S;
    const double w0 = n > 1 ? 0.5 : 1.0;
    // e_j = exp(l_j - max l_j) (with D^w0 at j = 0)
    for (int j = 0; j < n; ++j) {
        double mx = -1e300;
        for (int i = tid; i < S; i += nt) {
            double x = j == 0 ? w0 * (double)lnD[i] : 0.0;
            for (int m = 0; m < M; ++m) x += (double)lnA[ok[j * M + m] * S + i];
            e[j * S + i] = (real)x;
            mx = x > mx ? x : mx;
        }
        mx = block_max(red, mx, tid, nt);
        for (int i = tid; i < S; i += nt) e[j * S + i] = (real)exp((double)e[j * S + i] - mx);
    }
    __syncthreads();
    for (int j = 0; j < n; ++j)
        for (int i = tid; i < S; i += nt) q[j * S + i] = (real)(1.0 / S);
    if (n == 1) {  // no messages: q_0 = softmax(l_0 + ln D)
        for (int i = tid; i < S; i += nt) qn[i] = e[i];
    }
    __syncthreads();
    const int sweeps = n > 1 ? num_iter : 1;
    for (int it = 0; it < sweeps; ++it) {
        for (int j = 0; j < n && n > 1; ++j) {
            for (int i = tid; i < S; i += nt) {
                double f = 1.0, g = 1.0;
                if (j > 0) {
                    const real* Bf = BT + (long long)uk[j - 1] * S * S;
                    f = 0.0;
                    for (int jj = 0; jj < S; ++jj)
                        f += (double)q[(j - 1) * S + jj] * Bf[jj * S + i];
                    f = f > eps ? f : eps;
                }
                if (j < n - 1) {
                    const real* Bk = Bb + (long long)uk[j] * S * S;
                    g = 0.0;
                    for (int ii = 0; ii < S; ++ii)
                        g += (double)q[(j + 1) * S + ii] * Bk[ii * S + i];
                    g = g > eps ? g : eps;
                }
                double x = (double)e[j * S + i];
                if (j == 0) x *= sqrt(g);
                else if (j < n - 1) x *= sqrt(f * g);
                else x *= f;
                qn[j * S + i] = (real)x;
            }
        }
        __syncthreads();
        for (int j = 0; j < n; ++j) {  // normalise each q_j
            double s = 0.0;
            for (int i = tid; i < S; i += nt) s += (double)qn[j * S + i];
            s = block_sum(red, s, tid, nt);
            for (int i = tid; i < S; i += nt) qn[j * S + i] = (real)((double)qn[j * S + i] / s);
        }
        __syncthreads();
        real* sw = q; q = qn; qn = sw;
    }
    real* qk = qs + (long long)k * n * S;
    for (int j = 0; j < n; ++j)
        for (int i = tid; i < S; i += nt) qk[j * S + i] = q[j * S + i];
    // infer_policies: thread tid rolls out policies tid, tid + nt, ...
    const real* q0 = q + (long long)t * S;
    double mx = -1e300;
    for (int p = tid; p < P; p += nt) {
        real* r0 = roll + ((long long)k * P + p) * 2 * S;
        real* r1 = r0 + S;
        double neg = 0.0;
        for (int lev = 0; lev < L; ++lev) {
            const real* src = lev == 0 ? q0 : (lev % 2 ? r0 : r1);
            real* cur = lev % 2 ? r1 : r0;
            const long long a = V[(long long)p * (T - 1) + t + lev];
            const real* ABa = AB + a * S * O;
            const real* HBa = HB + a * S;
            double amb = 0.0, ent = 0.0, util = 0.0;
            for (int jj = 0; jj < S; ++jj) amb += (double)src[jj] * HBa[jj];
            for (int o = 0; o < O; ++o) {
                double x = 0.0;
                for (int jj = 0; jj < S; ++jj) x += (double)src[jj] * ABa[jj * O + o];
                if (x > 0) ent -= x * log(x > eps ? x : eps);
                util += x * C[o];
            }
            neg += info * (ent - amb) + util;
            if (lev < L - 1) {
                const real* Bf = BT + a * S * S;
                for (int i = 0; i < S; ++i) {
                    double x = 0.0;
                    for (int jj = 0; jj < S; ++jj) x += (double)src[jj] * Bf[jj * S + i];
                    cur[i] = (real)x;
                }
            }
        }
        G[(long long)k * P + p] = (real)neg;
        const double z = gamma * neg + (double)lnE[p];
        q_pi[(long long)k * P + p] = (real)z;
        mx = z > mx ? z : mx;
    }
    mx = block_max(red, mx, tid, nt);
    double s = 0.0;
    for (int p = tid; p < P; p += nt) {
        const double x = exp((double)q_pi[(long long)k * P + p] - mx);
        q_pi[(long long)k * P + p] = (real)x;
        s += x;
    }
    s = block_sum(red, s, tid, nt);
    for (int p = tid; p < P; p += nt)
        q_pi[(long long)k * P + p] = (real)((double)q_pi[(long long)k * P + p] / s);
}
"""
_PYMDP_THREADS = 128  # a power of two, at most RED
_pymdp_kernels: dict[str, Any] = {}


def _pymdp_kernel(dtype: Any) -> Any:
    name = "double" if dtype == cp.float64 else "float"
    if name not in _pymdp_kernels:
        src = f"typedef {name} real;\n" + _PYMDP_SRC.replace("_REAL", "_" + name)
        _pymdp_kernels[name] = cp.RawKernel(src, "predcode_aif_pymdp_step_" + name)
    return _pymdp_kernels[name]


@register_kernel("aif_pymdp_step", B)
def aif_pymdp_step(orow: Any, u: Any, t: int, lnA: Any, AB: Any, HB: Any, C: Any, BT: Any,
                   Bb: Any, lnD: Any, V: Any, lnE: Any, gamma: float, info: float,
                   num_iter: int) -> tuple[Any, Any, Any]:
    """One step of pymdp's ``infer_states`` + ``infer_policies`` for all agents: one
    ``RawKernel`` launch, one block per agent (C-contiguous arrays, one float dtype)."""
    N, T, M = orow.shape
    S, O, P = lnD.shape[0], AB.shape[2], V.shape[0]
    n = int(t) + 1
    dt = lnA.dtype
    qs = cp.empty((N, n, S), dtype=dt)
    G = cp.empty((N, P), dtype=dt)
    q_pi = cp.empty((N, P), dtype=dt)
    ex, qa, qb = (cp.empty((N, n, S), dtype=dt) for _ in range(3))
    roll = cp.empty((N, P, 2, S), dtype=dt)
    _pymdp_kernel(dt)(
        (N,), (_PYMDP_THREADS,),
        (orow, u, np.int32(t), np.int32(T), np.int32(M), np.int32(S), np.int32(O),
         np.int32(P), lnA, AB, HB, C, BT, Bb, lnD, V, lnE, np.float64(gamma),
         np.float64(info), np.int32(num_iter), ex, qa, qb, roll, qs, G, q_pi))
    return qs, G, q_pi
