"""numba (CPU) versions of the predictive-coding kernels.

Same signatures as :mod:`predcode.kernels.pc_reference`. The elementwise work of a
settling step (error, Euler update, ``f`` and ``f'``, energy) is fused into one
pass over memory; matrix products stay in BLAS (numpy's ``matmul`` with ``out=``
and an in-place ``gemm`` for the Hebbian update), which is faster than numba's
own ``np.dot`` on the machines we measured.

Compilation notes (what makes these loops vectorise):

* ``error_model="numpy"``: no ZeroDivisionError branch on ``p / q``;
* ``fastmath`` *without* ``nnan``/``ninf``, so NaN still propagates and
  divergence stays detectable;
* float32 ``tanh`` is a [13/6] rational approximation (max abs error 3e-7,
  clamped at |x| = 7.9, where float32 tanh is exactly +-1); float64 uses libm.
"""

from __future__ import annotations

import math
from typing import Any

import numba
import numpy as np
from numba import types
from numba.extending import overload
from scipy.linalg import blas

from ..activations import ACTIVATION_CODES
from .numba_cache import configure as _configure_cache
from .registry import register_kernel

_configure_cache()  # numba's cache: per user, never inside the package

B = "numba"
_FASTMATH = {"reassoc", "contract", "arcp", "nsz"}
_JIT = {"fastmath": _FASTMATH, "error_model": "numpy", "cache": True, "nogil": True}


def _tanh(x):  # pragma: no cover - replaced by the overload inside numba
    return math.tanh(x)


@overload(_tanh, inline="always", fastmath=_FASTMATH)
def _tanh_impl(x):
    if isinstance(x, types.Float) and x.bitwidth == 32:

        def tanh32(x):
            c = np.float32(7.90531110763549805)
            x = min(max(x, -c), c)
            x2 = x * x
            p = np.float32(-2.76076847742355e-16)
            p = p * x2 + np.float32(2.00018790482477e-13)
            p = p * x2 + np.float32(-8.60467152213735e-11)
            p = p * x2 + np.float32(5.12229709037114e-08)
            p = p * x2 + np.float32(1.48572235717979e-05)
            p = p * x2 + np.float32(6.37261928875436e-04)
            p = p * x2 + np.float32(4.89352455891786e-03)
            p = p * x
            q = np.float32(1.19825839466702e-06)
            q = q * x2 + np.float32(1.18534705686654e-04)
            q = q * x2 + np.float32(2.26843463243900e-03)
            q = q * x2 + np.float32(4.89352518554385e-03)
            return p / q

        return tanh32
    return lambda x: math.tanh(x)


def _make_kernels(act: int):
    """Compile the fused loops for one activation code (a compile-time constant).

    One specialisation per activation keeps the inner loops branch-free, so LLVM
    vectorises them; constants are typed from the arrays' dtype so float32 stays
    float32 (a float64 literal would promote the whole loop).
    """
    jit = numba.njit(**_JIT)
    inline = numba.njit(inline="always", fastmath=_FASTMATH, error_model="numpy")

    @inline
    def f_df(v, one, half):
        if act == 1:  # tanh
            t = _tanh(v)
            return t, one - t * t
        if act == 2:  # sigmoid through tanh: no overflow
            s = (one + _tanh(v * half)) * half
            return s, s * (one - s)
        if act == 3:  # relu (derivative 0 at 0)
            return max(v, one - one), one if v > 0 else one - one
        return v, one  # linear

    @jit
    def activate(x, fx, dfx):
        n, m = x.shape
        one = x.dtype.type(1.0)
        half = x.dtype.type(0.5)
        for i in range(n):
            for j in range(m):
                f, d = f_df(x[i, j], one, half)
                fx[i, j] = f
                dfx[i, j] = d

    @jit
    def settle(x, z, b, bu, fx, dfx, eps, gamma, precision, refresh):
        n, m = x.shape
        one = x.dtype.type(1.0)
        half = x.dtype.type(0.5)
        g = x.dtype.type(gamma)
        pi = x.dtype.type(precision)
        acc = x.dtype.type(0.0)
        for i in range(n):
            if refresh:
                for j in range(m):
                    e = x[i, j] - z[i, j] - b[j]
                    ep = pi * e
                    eps[i, j] = ep
                    acc += e * e
                    v = x[i, j] + g * (dfx[i, j] * bu[i, j] - ep)
                    x[i, j] = v
                    f, d = f_df(v, one, half)
                    fx[i, j] = f
                    dfx[i, j] = d
            else:
                for j in range(m):
                    e = x[i, j] - z[i, j] - b[j]
                    ep = pi * e
                    eps[i, j] = ep
                    acc += e * e
                    x[i, j] += g * (dfx[i, j] * bu[i, j] - ep)
        return half * pi * acc

    return activate, settle


_KERNELS = {code: _make_kernels(code) for code in ACTIVATION_CODES.values()}


@numba.njit(**_JIT)
def _error(x, z, b, precision, eps):
    n, m = x.shape
    pi = x.dtype.type(precision)
    acc = x.dtype.type(0.0)
    for i in range(n):
        for j in range(m):
            e = x[i, j] - z[i, j] - b[j]
            eps[i, j] = pi * e
            acc += e * e
    return x.dtype.type(0.5) * pi * acc


@numba.njit(**_JIT)
def _rb_cause_step(r, bu, r_td, eps_td, k1, tau_td, alpha, sparse):
    n, m = r.shape
    one = r.dtype.type(1.0)
    two = r.dtype.type(2.0)
    k = r.dtype.type(k1)
    tau = r.dtype.type(tau_td)
    a = r.dtype.type(alpha)
    half_a = r.dtype.type(0.5 * alpha)
    acc = r.dtype.type(0.0)
    for i in range(n):
        if sparse:
            for j in range(m):
                v = r[i, j]
                e = v - r_td[i, j]
                ep = tau * e
                eps_td[i, j] = ep
                v2 = v * v
                acc += ep * e + a * np.log1p(v2)
                r[i, j] = v + k * (bu[i, j] - ep - half_a * two * v / (one + v2))
        else:
            for j in range(m):
                v = r[i, j]
                e = v - r_td[i, j]
                ep = tau * e
                eps_td[i, j] = ep
                acc += ep * e + a * v * v
                r[i, j] = v + k * (bu[i, j] - ep - half_a * two * v)
    return acc


@numba.njit(**_JIT)
def _bias_update(b, eps, scale):
    n, m = eps.shape
    s = b.dtype.type(scale)
    for i in range(n):
        for j in range(m):
            b[j] += s * eps[i, j]


@register_kernel("pc_activate", B)
def pc_activate(x: Any, fx: Any, dfx: Any, activation: str) -> None:
    """numba version of :func:`predcode.kernels.pc_reference.pc_activate`."""
    _KERNELS[ACTIVATION_CODES[activation]][0](x, fx, dfx)


@register_kernel("pc_predict", B)
def pc_predict(W: Any, fx_prev: Any, out: Any) -> None:
    """BLAS GEMM, as :func:`predcode.kernels.pc_reference.pc_predict`."""
    np.matmul(fx_prev, W.T, out=out)


@register_kernel("pc_feedback", B)
def pc_feedback(W: Any, eps: Any, out: Any) -> None:
    """BLAS GEMM, as :func:`predcode.kernels.pc_reference.pc_feedback`."""
    np.matmul(eps, W, out=out)


@register_kernel("pc_error", B)
def pc_error(x: Any, z: Any, b: Any, precision: float, eps: Any):
    """numba version of :func:`predcode.kernels.pc_reference.pc_error`."""
    return _error(x, z, b, precision, eps)


@register_kernel("pc_settle_step", B)
def pc_settle_step(x, z, b, bu, fx, dfx, eps, gamma, precision, activation, refresh):
    """numba version of :func:`predcode.kernels.pc_reference.pc_settle_step`."""
    settle = _KERNELS[ACTIVATION_CODES[activation]][1]
    return settle(x, z, b, bu, fx, dfx, eps, gamma, precision, bool(refresh))


@register_kernel("pc_hebbian", B)
def pc_hebbian(W: Any, b: Any, eps: Any, fx_prev: Any, lr: float) -> None:
    """In-place GEMM (beta = 1) for ``W``, fused loop for ``b``.

    ``W`` is C-contiguous (n_l, n_{l-1}), i.e. Fortran ``W^T``; BLAS computes
    ``W^T += (lr/n) fx_prev^T eps`` on it without a temporary.
    """
    n = eps.shape[0]
    scale = lr / n
    if W.flags.c_contiguous and fx_prev.flags.c_contiguous and eps.flags.c_contiguous:
        gemm = blas.get_blas_funcs("gemm", (W,))
        gemm(scale, fx_prev.T, eps.T, beta=1.0, c=W.T, trans_b=True, overwrite_c=True)
    else:
        W += scale * (eps.T @ fx_prev)
    _bias_update(b, eps, scale)


@register_kernel("rb_cause_step", B)
def rb_cause_step(r, bu, r_td, eps_td, k1, tau_td, alpha, sparse):
    """numba version of :func:`predcode.kernels.pc_reference.rb_cause_step` (2-D arrays)."""
    return _rb_cause_step(r, bu, r_td, eps_td, k1, tau_td, alpha, bool(sparse))
