"""CuPy (GPU) versions of the JEPA kernels (signatures of ``nn_reference``).

im2col is a gather (one thread per patch-matrix entry) and col2im a gather
over the patch entries that touch each pixel (no atomics); GELU is one fused
elementwise kernel; the Epps–Pulley statistic is the reference's array code run
on device arrays.
"""

from __future__ import annotations

import math
from typing import Any

import cupy as cp

from .common import conv_out_size
from .nn_reference import epps_pulley as _epps_pulley_array
from .registry import register_kernel

B = "cupy"

_im2col = cp.ElementwiseKernel(
    "raw T x, int32 C, int32 H, int32 W, int32 Ho, int32 Wo, int32 k, int32 s, int32 p",
    "T col",
    """
    int jj = i % Wo; int r = i / Wo;
    int ii = r % Ho; r /= Ho;
    int b = r % k; r /= k;
    int a = r % k; r /= k;
    int c = r % C; int n = r / C;
    int y = ii * s + a - p; int z = jj * s + b - p;
    col = (y >= 0 && y < H && z >= 0 && z < W) ? x[((n * C + c) * H + y) * W + z] : (T)0;
    """,
    "predcode_im2col",
)
_col2im = cp.ElementwiseKernel(
    "raw T cols, int32 C, int32 H, int32 W, int32 Ho, int32 Wo, int32 k, int32 s, int32 p",
    "T x",
    """
    int z = i % W; int r = i / W;
    int y = r % H; r /= H;
    int c = r % C; int n = r / C;
    T acc = 0;
    for (int a = 0; a < k; ++a) {
        int yy = y + p - a;
        if (yy < 0 || yy % s != 0) continue;
        int ii = yy / s; if (ii >= Ho) continue;
        for (int b = 0; b < k; ++b) {
            int zz = z + p - b;
            if (zz < 0 || zz % s != 0) continue;
            int jj = zz / s; if (jj >= Wo) continue;
            acc += cols[((((n * C + c) * k + a) * k + b) * Ho + ii) * Wo + jj];
        }
    }
    x = acc;
    """,
    "predcode_col2im",
)
_gelu = cp.ElementwiseKernel(
    "T v, T cc", "T y, T dy",
    """
    T th = tanh(cc * (v + (T)0.044715 * v * v * v));
    y = (T)0.5 * v * ((T)1 + th);
    dy = (T)0.5 * ((T)1 + th)
         + (T)0.5 * v * ((T)1 - th * th) * cc * ((T)1 + (T)0.134145 * v * v);
    """,
    "predcode_gelu",
)


@register_kernel("im2col", B)
def im2col(x: Any, k: int, stride: int, padding: int) -> Any:
    """Patch matrix of a k×k convolution (GPU gather)."""
    x = cp.ascontiguousarray(x)
    N, C, H, W = x.shape
    Ho, Wo = conv_out_size(H, k, stride, padding), conv_out_size(W, k, stride, padding)
    cols = cp.empty((N, C, k, k, Ho, Wo), dtype=x.dtype)
    _im2col(x, C, H, W, Ho, Wo, k, stride, padding, cols)
    return cols


@register_kernel("col2im", B)
def col2im(cols: Any, shape: tuple, k: int, stride: int, padding: int) -> Any:
    """Adjoint of im2col (GPU gather, no atomics)."""
    N, C, H, W = shape
    x = cp.empty(tuple(shape), dtype=cols.dtype)
    _col2im(cp.ascontiguousarray(cols), C, H, W, cols.shape[4], cols.shape[5], k, stride,
            padding, x)
    return x


@register_kernel("gelu", B)
def gelu(x: Any) -> tuple[Any, Any]:
    """GELU (tanh form) and its derivative (one fused kernel)."""
    return _gelu(x, x.dtype.type(math.sqrt(2.0 / math.pi)))


@register_kernel("epps_pulley", B)
def epps_pulley(x: Any, t: Any, w: Any) -> tuple[Any, Any]:
    """Epps–Pulley statistic per column and its gradient.

    The reference is already array code of elementwise maps and reductions
    over the batch axis; on device arrays it runs on the GPU as it stands.
    """
    return _epps_pulley_array(x, t, w)


_gelu_bias = cp.ElementwiseKernel(
    "T u, raw T b, int32 n, T c", "T y",
    """
    T v = u + b[i % n];
    y = (T)0.5 * v * ((T)1 + tanh(c * (v + (T)0.044715 * v * v * v)));
    """,
    "predcode_gelu_bias")


@register_kernel("mlp_rollout", B)
def mlp_rollout(z0: Any, A: Any, W1: Any, b1: Any, W2: Any, b2: Any, W3: Any,
                b3: Any) -> Any:
    """Batched residual-MLP rollout: per horizon step three cuBLAS GEMMs over all
    samples, bias + GELU one fused forward-only kernel (no derivative computed)."""
    d = z0.shape[1]
    z = cp.ascontiguousarray(z0)
    out = cp.empty((A.shape[0], A.shape[1], d), dtype=z0.dtype)
    c = z0.dtype.type(math.sqrt(2.0 / math.pi))
    W1z, W1a = W1[:d], W1[d:]
    n1, n2 = W1.shape[1], W2.shape[1]
    for h in range(A.shape[1]):
        u = _gelu_bias(z @ W1z + A[:, h] @ W1a, b1, n1, c)
        u = _gelu_bias(u @ W2, b2, n2, c)
        z = z + u @ W3 + b3
        out[:, h] = z
    return out
