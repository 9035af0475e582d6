"""CuPy (GPU) versions of the predictive-coding kernels.

Same signatures as :mod:`predcode.kernels.pc_reference`. Elementwise work is fused
into one ``ElementwiseKernel`` per call; energies come back as 0-d cupy arrays,
so settling never synchronises with the host; matrix products are cuBLAS.
"""

from __future__ import annotations

from typing import Any

import cupy as cp

from ..activations import ACTIVATION_CODES
from .registry import register_kernel

B = "cupy"

_F_DF = r"""
    T f, d;
    if (act == 1) { f = tanh(v); d = (T)1 - f * f; }
    else if (act == 2) { f = ((T)1 + tanh(v * (T)0.5)) * (T)0.5; d = f * ((T)1 - f); }
    else if (act == 3) { f = v > (T)0 ? v : (T)0; d = v > (T)0 ? (T)1 : (T)0; }
    else { f = v; d = (T)1; }
"""

_activate = cp.ElementwiseKernel(
    "T v, int32 act",
    "T fx, T dfx",
    _F_DF + "fx = f; dfx = d;",
    "predcode_pc_activate",
)

_error = cp.ElementwiseKernel(
    "T x, T z, T b, T pi",
    "T eps",
    "eps = pi * (x - z - b);",
    "predcode_pc_error",
)

_settle = cp.ElementwiseKernel(
    "T z, T b, T bu, T pi, T g, int32 act, bool refresh",
    "T x, T fx, T dfx, T eps",
    r"""
    T ep = pi * (x - z - b);
    eps = ep;
    T v = x + g * (dfx * bu - ep);
    x = v;
    if (refresh) {
    """
    + _F_DF
    + r"""
        fx = f; dfx = d;
    }
    """,
    "predcode_pc_settle",
)

_sqsum = cp.ReductionKernel("T x", "T y", "x * x", "a + b", "y = a", "0", "predcode_sqsum")


@register_kernel("pc_activate", B)
def pc_activate(x: Any, fx: Any, dfx: Any, activation: str) -> None:
    """CuPy version of :func:`predcode.kernels.pc_reference.pc_activate`."""
    _activate(x, ACTIVATION_CODES[activation], fx, dfx)


@register_kernel("pc_predict", B)
def pc_predict(W: Any, fx_prev: Any, out: Any) -> None:
    """cuBLAS GEMM, as :func:`predcode.kernels.pc_reference.pc_predict`."""
    cp.matmul(fx_prev, W.T, out=out)


@register_kernel("pc_feedback", B)
def pc_feedback(W: Any, eps: Any, out: Any) -> None:
    """cuBLAS GEMM, as :func:`predcode.kernels.pc_reference.pc_feedback`."""
    cp.matmul(eps, W, out=out)


@register_kernel("pc_error", B)
def pc_error(x: Any, z: Any, b: Any, precision: float, eps: Any):
    """CuPy version of :func:`predcode.kernels.pc_reference.pc_error`."""
    pi = x.dtype.type(precision)
    _error(x, z, b, pi, eps)
    return (0.5 / pi) * _sqsum(eps)


@register_kernel("pc_settle_step", B)
def pc_settle_step(x, z, b, bu, fx, dfx, eps, gamma, precision, activation, refresh):
    """CuPy version of :func:`predcode.kernels.pc_reference.pc_settle_step`."""
    pi = x.dtype.type(precision)
    _settle(
        z, b, bu, pi, x.dtype.type(gamma), ACTIVATION_CODES[activation], bool(refresh),
        x, fx, dfx, eps,
    )
    return (0.5 / pi) * _sqsum(eps)


@register_kernel("pc_hebbian", B)
def pc_hebbian(W: Any, b: Any, eps: Any, fx_prev: Any, lr: float) -> None:
    """cuBLAS GEMM and a column sum, as :func:`predcode.kernels.pc_reference.pc_hebbian`."""
    scale = lr / eps.shape[0]
    W += scale * (eps.T @ fx_prev)
    b += scale * eps.sum(axis=0)


_rb_step = cp.ElementwiseKernel(
    "T bu, T r_td, T k1, T tau, T alpha, bool sparse",
    "T r, T eps_td, T terms",
    r"""
    T v = r;
    T e = v - r_td;
    T ep = tau * e;
    eps_td = ep;
    T v2 = v * v;
    T g = sparse ? log1p(v2) : v2;
    T gp = sparse ? (T)2 * v / ((T)1 + v2) : (T)2 * v;
    terms = ep * e + alpha * g;
    r = v + k1 * (bu - ep - (T)0.5 * alpha * gp);
    """,
    "predcode_rb_cause_step",
)


@register_kernel("rb_cause_step", B)
def rb_cause_step(r, bu, r_td, eps_td, k1, tau_td, alpha, sparse):
    """CuPy version of :func:`predcode.kernels.pc_reference.rb_cause_step`."""
    t = r.dtype.type
    terms = cp.empty_like(r)
    _rb_step(bu, r_td, t(k1), t(tau_td), t(alpha), bool(sparse), r, eps_td, terms)
    return terms.sum()
