r"""Differentiable building blocks with hand-written backward passes.

Each layer is a small object with

* ``params`` / ``grads``: dicts of arrays with the same keys (empty for
  activations);
* ``forward(x)``: returns the output and caches what ``backward`` needs;
* ``backward(g)``: takes :math:`\partial L/\partial y` and returns
  :math:`\partial L/\partial x`, *adding* the parameter gradients into ``grads``
  (call :func:`zero_grad` between steps).

A layer caches one forward pass: to use a network on two inputs in one step,
concatenate them along the batch axis. There is no general autodiff: every
backward pass is written out below and checked against finite differences
(``tests/test_nn_blocks.py``).

Layers hold arrays of one namespace ``xp`` (numpy or cupy) and look up their
hot loops (``im2col``/``col2im``/``gelu``) as kernels of the
concrete ``backend``.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from typing import Any

import numpy as np

from ..backend import get_namespace
from ..exceptions import ValidationError
from ..kernels import get_kernel
from ..kernels.common import conv_out_size
from ..validation import check_choice, check_int

__all__ = [
    "Layer",
    "Linear",
    "ReLU",
    "GELU",
    "Tanh",
    "LayerNorm",
    "Conv2d",
    "Flatten",
    "Sequential",
    "named_params",
    "zero_grad",
    "copy_params",
]


class Layer:
    """Base of the building blocks: no parameters, identity backward."""

    backend = "numpy"

    def __init__(self) -> None:
        self.params: dict[str, Any] = {}
        self.grads: dict[str, Any] = {}

    @property
    def xp(self):
        return get_namespace(self.backend)

    def forward(self, x: Any) -> Any:  # pragma: no cover - abstract
        raise NotImplementedError

    def backward(self, g: Any) -> Any:  # pragma: no cover - abstract
        raise NotImplementedError

    def __call__(self, x: Any) -> Any:
        return self.forward(x)

    def _check_cached(self, name: str) -> None:
        if not hasattr(self, "_cache"):
            raise ValidationError(
                f"{type(self).__name__}.backward: call forward first ({name} needs its input)."
            )


def _init_params(layer: Layer, backend: str, rng: np.random.Generator | None,
                 dtype: Any, **shapes_std: tuple[tuple[int, ...], float]) -> None:
    """Draw parameters with numpy's Generator, then move them (same numbers on every backend)."""
    layer.backend = backend
    xp = get_namespace(backend)
    rng = np.random.default_rng(0) if rng is None else rng
    for name, (shape, std) in shapes_std.items():
        host = rng.standard_normal(shape) * std if std > 0 else np.zeros(shape)
        if std < 0:  # marker for ones (LayerNorm gain)
            host = np.ones(shape)
        layer.params[name] = xp.asarray(host.astype(dtype))
        layer.grads[name] = xp.zeros(shape, dtype=dtype)


class Linear(Layer):
    r"""Affine map :math:`y = x W + b` on the last axis.

    Backward: :math:`\partial L/\partial W = x^\top g`, :math:`\partial L/\partial b
    = \sum g`, :math:`\partial L/\partial x = g W^\top` (leading axes are flattened
    into the batch). Weights are drawn :math:`\mathcal N(0, 1/n_\text{in})`.
    """

    def __init__(self, n_in: int, n_out: int, *, backend: str = "numpy",
                 rng: np.random.Generator | None = None, dtype: Any = "float64",
                 bias: bool = True):
        super().__init__()
        self.n_in = check_int(n_in, "n_in", "Linear")
        self.n_out = check_int(n_out, "n_out", "Linear")
        shapes = {"W": ((n_in, n_out), 1.0 / math.sqrt(n_in))}
        if bias:
            shapes["b"] = ((n_out,), 0.0)
        _init_params(self, backend, rng, dtype, **shapes)

    def forward(self, x: Any) -> Any:
        if x.shape[-1] != self.n_in:
            raise ValidationError(
                f"Linear.forward: expected input with last axis {self.n_in}, got shape "
                f"{tuple(x.shape)}.")
        self._cache = x
        y = x @ self.params["W"]
        if "b" in self.params:
            y = y + self.params["b"]
        return y

    def backward(self, g: Any) -> Any:
        self._check_cached("x")
        x = self._cache
        x2, g2 = x.reshape(-1, self.n_in), g.reshape(-1, self.n_out)
        self.grads["W"] += x2.T @ g2
        if "b" in self.params:
            self.grads["b"] += g2.sum(axis=0)
        return g @ self.params["W"].T


class ReLU(Layer):
    r""":math:`y = \max(x, 0)`; :math:`\partial y/\partial x = [x > 0]`."""

    def forward(self, x: Any) -> Any:
        self._cache = x > 0
        return x * self._cache

    def backward(self, g: Any) -> Any:
        self._check_cached("x")
        return g * self._cache


class Tanh(Layer):
    r""":math:`y = \tanh x`; :math:`\partial y/\partial x = 1 - y^2`."""

    def forward(self, x: Any) -> Any:
        y = self.xp.tanh(x)
        self._cache = y
        return y

    def backward(self, g: Any) -> Any:
        self._check_cached("x")
        return g * (1.0 - self._cache * self._cache)


class GELU(Layer):
    r"""GELU in the tanh form of Hendrycks & Gimpel (2016) (kernel ``gelu``).

    :math:`y = \tfrac12 x\,(1 + \tanh u)`, :math:`u = \sqrt{2/\pi}\,(x + 0.044715 x^3)`;
    the tanh form (as in GPT-2/BERT) instead of the exact :math:`x\Phi(x)` keeps
    it free of ``erf``, which cupy and numpy expose differently.
    """

    def __init__(self, *, backend: str = "numpy"):
        super().__init__()
        self.backend = backend

    def forward(self, x: Any) -> Any:
        y, dy = get_kernel("gelu", self.backend)(x)
        self._cache = dy
        return y

    def backward(self, g: Any) -> Any:
        self._check_cached("x")
        return g * self._cache


class LayerNorm(Layer):
    r"""Layer normalisation over the last axis (Ba et al. 2016).

    :math:`\hat x = (x - \mu)/\sqrt{\sigma^2 + \epsilon}`, :math:`y = \gamma \hat x + \beta`.
    Backward, with :math:`\hat g = g \gamma` and :math:`d` features:
    :math:`\partial L/\partial x = \frac{1}{\sqrt{\sigma^2+\epsilon}}\big(\hat g -
    \overline{\hat g} - \hat x\,\overline{\hat g \hat x}\big)` (bars: means over
    the last axis).
    """

    def __init__(self, d: int, *, eps: float = 1e-5, backend: str = "numpy",
                 dtype: Any = "float64", affine: bool = True):
        super().__init__()
        self.d = check_int(d, "d", "LayerNorm")
        self.eps = float(eps)
        self.backend = backend
        if affine:
            _init_params(self, backend, None, dtype, gamma=((d,), -1.0), beta=((d,), 0.0))

    def forward(self, x: Any) -> Any:
        if x.shape[-1] != self.d:
            raise ValidationError(
                f"LayerNorm.forward: expected last axis {self.d}, got shape {tuple(x.shape)}.")
        xp = self.xp
        mu = x.mean(axis=-1, keepdims=True)
        xc = x - mu
        inv = 1.0 / xp.sqrt((xc * xc).mean(axis=-1, keepdims=True) + self.eps)
        xhat = xc * inv
        self._cache = (xhat, inv)
        if self.params:
            return xhat * self.params["gamma"] + self.params["beta"]
        return xhat

    def backward(self, g: Any) -> Any:
        self._check_cached("x")
        xhat, inv = self._cache
        if self.params:
            lead = tuple(range(g.ndim - 1))
            self.grads["gamma"] += (g * xhat).sum(axis=lead)
            self.grads["beta"] += g.sum(axis=lead)
            g = g * self.params["gamma"]
        return inv * (g - g.mean(axis=-1, keepdims=True)
                      - xhat * (g * xhat).mean(axis=-1, keepdims=True))


#: Stride-1 convolutions with at least this many input channels take the wide-grid path;
#: with fewer, its k² GEMMs have too short an inner dimension (C) and one patch-matrix
#: GEMM (inner dimension C k²) is faster (3 -> 16 channels, 128 16x16 images: 7.3 ms
#: wide against 1.26 ms with the patch matrix, measured).
_WIDE_MIN_CHANNELS = 8


class Conv2d(Layer):
    r"""2-D convolution (cross-correlation) on (N, C, H, W) images via im2col.

    :math:`y_{n,o,i,j} = b_o + \sum_{c,a,b} W_{o,c,a,b}\, x^\text{pad}_{n,c,is+a,js+b}`.
    The channels-first patch matrices :math:`P_n` (C k², Ho Wo) (kernel ``im2col``)
    turn it into one GEMM per image, :math:`Y_n = W P_n` (already in (C_out, Ho, Wo)
    order: no transpose); backward: :math:`\partial L/\partial W = \sum_n G_n P_n^\top`,
    :math:`\partial L/\partial P_n = W^\top G_n`, folded back onto the image by the
    adjoint ``col2im``.

    Stride 1 with ``c_in >= 8`` skips the patch matrix (implicit GEMM on a "wide"
    grid): with the padded image flattened per channel, row width
    :math:`W_p = W + 2p`, tap :math:`(a, b)` is the contiguous window starting at
    :math:`a W_p + b`, so
    :math:`Y^\text{wide}_n = \sum_{a,b} W_{:,:,a,b}\, X^\text{pad}_n[:, aW_p+b :][:, :H_o W_p]`
    (k² batched GEMMs on strided views, no k²-times larger copy), and the
    :math:`W_p - W_o` wrap-around columns of each output row are dropped. Backward runs
    the same windows: :math:`\partial L/\partial W_{:,:,a,b} = \sum_n G^\text{wide}_n
    X^{\text{pad}\top}_{n,ab}` (zeros in the dropped columns) and the input gradient
    is the windows' scatter-add of :math:`W_{:,:,a,b}^\top G^\text{wide}_n`.
    """

    def __init__(self, c_in: int, c_out: int, k: int = 3, *, stride: int = 1, padding: int = 0,
                 backend: str = "numpy", rng: np.random.Generator | None = None,
                 dtype: Any = "float64"):
        super().__init__()
        o = "Conv2d"
        self.c_in, self.c_out = check_int(c_in, "c_in", o), check_int(c_out, "c_out", o)
        self.k, self.stride = check_int(k, "k", o), check_int(stride, "stride", o)
        self.padding = check_int(padding, "padding", o, low=0)
        _init_params(self, backend, rng, dtype,
                     W=((c_out, c_in, k, k), 1.0 / math.sqrt(c_in * k * k)), b=((c_out,), 0.0))

    def out_shape(self, H: int, W: int) -> tuple[int, int]:
        """Output (height, width) for an input of (H, W)."""
        return (conv_out_size(H, self.k, self.stride, self.padding),
                conv_out_size(W, self.k, self.stride, self.padding))

    def forward(self, x: Any) -> Any:
        if x.ndim != 4 or x.shape[1] != self.c_in:
            raise ValidationError(
                f"Conv2d.forward: expected input of shape (N, {self.c_in}, H, W), got "
                f"{tuple(x.shape)}.")
        Ho, Wo = self.out_shape(x.shape[2], x.shape[3])
        if Ho < 1 or Wo < 1:
            raise ValidationError(
                f"Conv2d.forward: a {x.shape[2]}x{x.shape[3]} image is smaller than the "
                f"{self.k}x{self.k} kernel (padding {self.padding}); pad it or use a smaller k.")
        if self.stride == 1 and self.c_in >= _WIDE_MIN_CHANNELS:
            return self._forward_wide(x, Ho, Wo)
        cols = get_kernel("im2col", self.backend)(x, self.k, self.stride, self.padding)
        P = cols.reshape(x.shape[0], self.c_in * self.k * self.k, Ho * Wo)
        self._cache = (P, x.shape, Ho, Wo)
        y = self.xp.matmul(self.params["W"].reshape(self.c_out, -1), P)
        y += self.params["b"][:, None]
        return y.reshape(x.shape[0], self.c_out, Ho, Wo)

    def _forward_wide(self, x: Any, Ho: int, Wo: int) -> Any:
        """Stride-1 forward as k² batched GEMMs on windows of the flattened padded image."""
        xp, p, k = self.xp, self.padding, self.k
        N, C, H, W = x.shape
        Wp = W + 2 * p
        L = Ho * Wp
        # one spare row: the last tap's window runs k - 1 entries past the padded image
        xpad = xp.zeros((N, C, H + 2 * p + 1, Wp), dtype=x.dtype)
        xpad[:, :, p:p + H, p:p + W] = x
        xf = xpad.reshape(N, C, -1)
        Wt = xp.ascontiguousarray(self.params["W"].transpose(2, 3, 0, 1))  # (k, k, O, C)
        y = xp.empty((N, self.c_out, L), dtype=x.dtype)
        t = xp.empty_like(y)
        for a in range(k):
            for b in range(k):
                off = a * Wp + b
                xp.matmul(Wt[a, b], xf[:, :, off:off + L], out=y if a == b == 0 else t)
                if a or b:
                    y += t
        y += self.params["b"][:, None]
        self._cache = ("wide", xf, x.shape, Ho, Wo)
        return xp.ascontiguousarray(y.reshape(N, self.c_out, Ho, Wp)[:, :, :, :Wo])

    def _backward_wide(self, g: Any) -> Any:
        xp, p, k = self.xp, self.padding, self.k
        _, xf, shape, Ho, Wo = self._cache
        N, C, H, W = shape
        Wp = W + 2 * p
        L = Ho * Wp
        Gw = xp.zeros((N, self.c_out, Ho, Wp), dtype=g.dtype)  # zero on the junk columns
        Gw[:, :, :, :Wo] = g
        self.grads["b"] += Gw.sum(axis=(0, 2, 3))
        Gw = Gw.reshape(N, self.c_out, L)
        Gt = xp.ascontiguousarray(Gw.transpose(0, 2, 1))  # (N, L, O): BLAS's fast case
        Wt = xp.ascontiguousarray(self.params["W"].transpose(2, 3, 1, 0))  # (k, k, C, O)
        dxf = xp.zeros_like(xf)
        t = xp.empty((N, C, L), dtype=g.dtype)
        for a in range(k):
            for b in range(k):
                off = a * Wp + b
                self.grads["W"][:, :, a, b] += xp.matmul(xf[:, :, off:off + L], Gt).sum(axis=0).T
                xp.matmul(Wt[a, b], Gw, out=t)
                dxf[:, :, off:off + L] += t
        return dxf.reshape(N, C, H + 2 * p + 1, Wp)[:, :, p:p + H, p:p + W]

    def backward(self, g: Any) -> Any:
        self._check_cached("x")
        if isinstance(self._cache[0], str):  # ("wide", ...): the stride-1 path
            return self._backward_wide(g)
        P, shape, Ho, Wo = self._cache
        xp = self.xp
        G = xp.ascontiguousarray(g).reshape(shape[0], self.c_out, Ho * Wo)
        Wm = self.params["W"].reshape(self.c_out, -1)
        # sum_n P_n G_n^T with G_n^T contiguous: BLAS's fast case (the transposed-operand
        # batch G_n P_n^T ran 4-6x slower here)
        dWt = xp.matmul(P, xp.ascontiguousarray(G.transpose(0, 2, 1))).sum(axis=0)
        self.grads["W"] += dWt.T.reshape(self.params["W"].shape)
        self.grads["b"] += G.sum(axis=(0, 2))
        dcols = xp.matmul(Wm.T, G).reshape(shape[0], self.c_in, self.k, self.k, Ho, Wo)
        return get_kernel("col2im", self.backend)(dcols, shape, self.k, self.stride,
                                                       self.padding)


class Flatten(Layer):
    """Flatten all but the first axis (and undo it in backward)."""

    def forward(self, x: Any) -> Any:
        self._cache = x.shape
        return x.reshape(x.shape[0], -1)

    def backward(self, g: Any) -> Any:
        self._check_cached("x")
        return g.reshape(self._cache)


class Sequential(Layer):
    """Layers applied in order; backward runs them in reverse."""

    def __init__(self, *layers: Layer):
        super().__init__()
        if not layers:
            raise ValidationError("Sequential: expected at least one layer.")
        for i, layer in enumerate(layers):
            if not isinstance(layer, Layer):
                raise ValidationError(
                    f"Sequential: item {i} is a {type(layer).__name__}, not a Layer.")
        self.layers = list(layers)
        self.backend = layers[0].backend

    def forward(self, x: Any) -> Any:
        for layer in self.layers:
            x = layer.forward(x)
        return x

    def backward(self, g: Any) -> Any:
        for layer in reversed(self.layers):
            g = layer.backward(g)
        return g


def named_params(module: Layer, prefix: str = "") -> Iterator[tuple[str, Layer, str]]:
    """Yield ``(full_name, layer, key)`` for every parameter of ``module``."""
    if hasattr(module, "layers"):  # Sequential, or any composite listing its sub-layers
        for i, layer in enumerate(module.layers):
            yield from named_params(layer, f"{prefix}{i}.")
        return
    for key in module.params:
        yield f"{prefix}{key}", module, key


def zero_grad(module: Layer) -> None:
    """Set every parameter gradient of ``module`` to zero."""
    for _, layer, key in named_params(module):
        layer.grads[key][...] = 0


def copy_params(src: Layer, dst: Layer) -> None:
    """Copy the parameter values of ``src`` into ``dst`` (same architecture)."""
    for (name, ls, ks), (_, ld, kd) in zip(named_params(src), named_params(dst), strict=True):
        if ls.params[ks].shape != ld.params[kd].shape:
            raise ValidationError(f"copy_params: {name} has shape {ls.params[ks].shape} in the "
                                  f"source, {ld.params[kd].shape} in the destination.")
        ld.params[kd][...] = ls.params[ks]


def check_backend_name(backend: str, owner: str) -> str:
    """A concrete backend name for layers."""
    return check_choice(backend, "backend", ("numpy", "numba", "cupy"), owner)
