"""numba (CPU) versions of the active-inference kernels (signatures of ``aif_reference``)."""

from __future__ import annotations

import math
from typing import Any

import numba
import numpy as np

from .common import LOG_FLOOR, PYMDP_EPS
from .numba_cache import configure as _configure_cache
from .registry import register_kernel

_configure_cache()  # numba's cache: per user, never inside the package

B = "numba"
_JIT = {"error_model": "numpy", "cache": True, "nogil": True}
#: From this many states on, transition messages use BLAS (grouped by action)
#: instead of the fused loop (measured on a 2-core Xeon: the loop wins below 16).
_BLAS_FROM = 16


@numba.njit(inline="always", error_model="numpy")
def _softmax_inplace(x):  # pragma: no cover - compiled
    """``x <- exp(x - max x) / sum`` on a 1-D row (the belief step's and q(pi)'s)."""
    mx = -np.inf
    for i in range(x.shape[0]):
        if x[i] > mx:
            mx = x[i]
    tot = 0.0
    for i in range(x.shape[0]):
        e = math.exp(x[i] - mx)
        x[i] = e
        tot += e
    for i in range(x.shape[0]):
        x[i] /= tot


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
        for k in range(K):
            out[r, k] = lnq[r, k] + (v[r, k] - m) / tau
        _softmax_inplace(out[r])


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


# fdlibm's __ieee754_log, branch-free so that LLVM vectorises it (numba's math.log is a
# scalar libm call; this loop is ~3x faster and within 1 ulp of it on normal positive x)
_LN2_HI = 6.93147180369123816490e-01
_LN2_LO = 1.90821492927058770002e-10
_LG = (6.666666666666735130e-01, 3.999999999940941908e-01, 2.857142874366239149e-01,
       2.222219843214978396e-01, 1.818357216161805012e-01, 1.531383769920937332e-01,
       1.479819860511658591e-01)


@numba.njit(**_JIT)
def _vlog(x, out, n):  # pragma: no cover - compiled
    """``out[:n] = log(x[:n])`` for float64 ``x`` with normal positive entries."""
    lg1, lg2, lg3, lg4, lg5, lg6, lg7 = _LG
    xb = x.view(np.int64)
    for i in range(n):
        b = xb[i]
        e = float((b >> 52) - 1023)
        m = 1.0 + float(b & 0xFFFFFFFFFFFFF) * 2.220446049250313e-16
        big = m > 1.4142135623730951
        m = 0.5 * m if big else m
        e = e + 1.0 if big else e
        f = m - 1.0
        s = f / (2.0 + f)
        z = s * s
        w = z * z
        r = z * (lg1 + w * (lg3 + w * (lg5 + w * lg7))) + w * (lg2 + w * (lg4 + w * lg6))
        hfsq = 0.5 * f * f
        out[i] = e * _LN2_HI - ((hfsq - (s * (hfsq + r) + e * _LN2_LO)) - f)


@numba.njit(**_JIT)
def _pymdp_step(orow, u, t, lnA, AB, HB, C, BT, Bb, lnD, V, lnE, gamma, info, num_iter,
                qs, G, q_pi):  # pragma: no cover - compiled
    N, T, M = orow.shape
    S = lnD.shape[0]
    O = AB.shape[2]
    P = V.shape[0]
    U = BT.shape[0]
    n = t + 1
    L = T - 1 - t
    dt = qs.dtype
    eps = PYMDP_EPS
    # the policies' shared prefixes (agent-independent): rep[l, p] is the first policy whose
    # moves t..t+l equal p's, so a prefix is rolled out once; the last move is per policy
    rep = np.empty((max(L - 1, 1), P), dtype=np.int64)
    first = np.empty(P * U, dtype=np.int64)
    for lev in range(L - 1):
        first[:] = -1
        for p in range(P):
            key = (rep[lev - 1, p] if lev > 0 else 0) * U + V[p, t + lev]
            if first[key] < 0:
                first[key] = p
            rep[lev, p] = first[key]
    # the likelihood factor of q_j, exp(l_j - max) (with D^w at j = 0): the sweeps then need
    # no logarithm: exp(l + w ln f + ln(g) / 2) = e * f^w * sqrt(g), f and g floored at eps
    ex = np.empty((n, S), dtype=dt)
    f = np.empty(S, dtype=dt)
    g = np.empty(S, dtype=dt)
    q = np.empty((n, S), dtype=dt)
    qn = np.empty((n, S), dtype=dt)
    roll = np.empty((2, P, S), dtype=dt)
    # one level's predicted outcomes of every policy rolled out (float64 rows, logs at once)
    qo = np.empty((P, O), dtype=np.float64)
    xo = np.empty(P * O, dtype=np.float64)
    lo = np.empty(P * O, dtype=np.float64)
    amb = np.empty(P, dtype=np.float64)
    idx = np.empty(P, dtype=np.int64)
    gl = np.empty(P, dtype=dt)
    w0 = 0.5 if n > 1 else 1.0
    for k in range(N):
        # infer_states: Jacobi sweeps of marginal message passing over the window 0..t
        for j in range(n):
            for i in range(S):
                x = lnD[i] * w0 if j == 0 else 0.0
                for m in range(M):
                    x += lnA[orow[k, j, m], i]
                f[i] = x
            mx = f[0]
            for i in range(1, S):
                if f[i] > mx:
                    mx = f[i]
            for i in range(S):
                ex[j, i] = math.exp(f[i] - mx)
        tot = 0.0
        for i in range(S):
            tot += ex[0, i]
        for j in range(n):
            for i in range(S):
                q[j, i] = ex[0, i] / tot if n == 1 else 1.0 / S
        for _ in range(num_iter if n > 1 else 0):
            for j in range(n):
                if j > 0:  # forward message B_{u_{j-1}} q_{j-1}
                    a = u[k, j - 1]
                    for i in range(S):
                        f[i] = 0.0
                    for jj in range(S):
                        c = q[j - 1, jj]
                        for i in range(S):
                            f[i] += c * BT[a, jj, i]
                    for i in range(S):
                        f[i] = max(f[i], eps)
                if j < n - 1:  # backward message q_{j+1} B~_{u_j}
                    a = u[k, j]
                    for i in range(S):
                        g[i] = 0.0
                    for ii in range(S):
                        c = q[j + 1, ii]
                        for i in range(S):
                            g[i] += c * Bb[a, ii, i]
                if j == 0:
                    for i in range(S):
                        qn[j, i] = ex[j, i] * math.sqrt(max(g[i], eps))
                elif j < n - 1:
                    for i in range(S):
                        qn[j, i] = ex[j, i] * math.sqrt(f[i] * max(g[i], eps))
                else:
                    for i in range(S):
                        qn[j, i] = ex[j, i] * f[i]
                tot = 0.0
                for i in range(S):
                    tot += qn[j, i]
                for i in range(S):
                    qn[j, i] /= tot
            q, qn = qn, q
        for j in range(n):
            for i in range(S):
                qs[k, j, i] = q[j, i]
        # infer_policies: roll each policy's remaining moves out from q_t
        for p in range(P):
            G[k, p] = 0.0
        for lev in range(L):
            last = lev == L - 1
            cur = roll[lev % 2]
            prev = roll[(lev + 1) % 2]
            cnt = 0
            for p in range(P):
                if not last and rep[lev, p] != p:
                    continue
                a = V[p, t + lev]
                src = q[t] if lev == 0 else prev[rep[lev - 1, p]]
                # o = A B_a src and s . H_A = (B_a^T H_A) . src, from the parent state
                row = qo[cnt]
                for o in range(O):
                    row[o] = 0.0
                am = 0.0
                for jj in range(S):
                    c = src[jj]
                    am += c * HB[a, jj]
                    for o in range(O):
                        row[o] += c * AB[a, jj, o]
                amb[cnt] = am
                for o in range(O):
                    xo[cnt * O + o] = max(row[o], eps)
                idx[cnt] = p
                cnt += 1
                if not last:  # the state after this move, for the next one
                    for i in range(S):
                        cur[p, i] = 0.0
                    for jj in range(S):
                        c = src[jj]
                        for i in range(S):
                            cur[p, i] += c * BT[a, jj, i]
            _vlog(xo, lo, cnt * O)
            for r in range(cnt):
                row = qo[r]
                ent = 0.0
                util = 0.0
                for o in range(O):
                    x = row[o]
                    if x > 0:
                        ent -= x * lo[r * O + o]
                    util += x * C[o]
                gl[idx[r]] = info * (ent - amb[r]) + util
            for p in range(P):
                G[k, p] += gl[p] if last else gl[rep[lev, p]]
        # q(pi) = softmax(gamma * (-G) + ln E)
        for p in range(P):
            q_pi[k, p] = gamma * G[k, p] + lnE[p]
        _softmax_inplace(q_pi[k])


@register_kernel("aif_pymdp_step", B)
def aif_pymdp_step(orow: Any, u: Any, t: int, lnA: Any, AB: Any, HB: Any, C: Any, BT: Any,
                   Bb: Any, lnD: Any, V: Any, lnE: Any, gamma: float, info: float,
                   num_iter: int) -> tuple[Any, Any, Any]:
    """One step of pymdp's ``infer_states`` + ``infer_policies`` for all agents, agents x
    policies in one compiled loop (prefixes shared by policies rolled out once).

    The arrays must be C-contiguous, the float ones in one dtype (``run_trials`` prepares
    them once per run); nothing is copied here.
    """
    N = orow.shape[0]
    S = lnD.shape[0]
    P = V.shape[0]
    dt = lnA.dtype
    qs = np.empty((N, t + 1, S), dtype=dt)
    G = np.empty((N, P), dtype=dt)
    q_pi = np.empty((N, P), dtype=dt)
    _pymdp_step(orow, u, int(t), lnA, AB, HB, C, BT, Bb, lnD, V, lnE, float(gamma), float(info),
                int(num_iter), qs, G, q_pi)
    return qs, G, q_pi
