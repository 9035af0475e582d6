"""CuPy (GPU) versions of the Helmholtz-machine kernels.

Same signatures as :mod:`predcode.kernels.helmholtz_reference`: cuBLAS for the
matrix products, one fused ``ElementwiseKernel`` for the sigmoid, sampling,
delta and log-probability; the log-probability comes back as a 0-d cupy array
(no host sync).
"""

from __future__ import annotations

from typing import Any

import cupy as cp

from .registry import register_kernel

B = "cupy"

_sample = cp.ElementwiseKernel(
    "T a, T b, T u",
    "T prob, T out",
    "T p = (T)1 / ((T)1 + exp(-(a + b))); prob = p; out = u < p ? (T)1 : (T)0;",
    "predcode_hm_sample",
)

_delta = cp.ElementwiseKernel(
    "T a, T b, T t",
    "T d, T logp",
    r"""
    T x = a + b;
    T p = (T)1 / ((T)1 + exp(-x));
    T sp = (x > (T)0 ? x : (T)0) + log1p(exp(-fabs(x)));
    logp = t * x - sp;
    d = t - p;
    """,
    "predcode_hm_delta",
)


@register_kernel("hm_sample", B)
def hm_sample(inputs: Any, W: Any, b: Any, u: Any, prob: Any, out: Any) -> None:
    """CuPy version of :func:`predcode.kernels.helmholtz_reference.hm_sample`."""
    a = inputs @ W.T
    _sample(a, b, u, prob, out)


@register_kernel("hm_delta", B)
def hm_delta(W: Any, b: Any, inputs: Any, target: Any, lr: float):
    """CuPy version of :func:`predcode.kernels.helmholtz_reference.hm_delta`."""
    scale = lr / inputs.shape[0]
    a = inputs @ W.T
    d = cp.empty_like(a)
    logp = cp.empty_like(a)
    _delta(a, b, target, d, logp)
    W += scale * (d.T @ inputs)
    b += scale * d.sum(axis=0)
    return logp.sum()


@register_kernel("hm_online", B)
def hm_online(sizes: Any, G: Any, R: Any, c: Any, r: Any, X: Any, U: Any,
              lr_g: Any, lr_r: Any):
    """CuPy version of :func:`predcode.kernels.helmholtz_reference.hm_online`.

    Online learning is sequential (each image's step needs the previous
    step's weights), so there is nothing to parallelise across images: this
    runs the reference algorithm on the device arrays, one image at a time.
    It is correct but slow; use mini-batches (``batch_size > 1``) on a GPU.
    """
    from .helmholtz_reference import hm_online as ref

    return ref(sizes, G, R, c, r, X, U, lr_g, lr_r)
