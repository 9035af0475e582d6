r"""I-JEPA-style masked prediction in representation space (Assran et al. 2023).

A *context encoder* :math:`f_\theta` sees an image with most of it masked out
(the context block minus four target blocks, :func:`~predcode.datasets.multiblock_masks`);
a *predictor* :math:`g_\phi`, told only the positions :math:`j` of the target
patches, predicts their representations; the *targets* are the representations
:math:`\bar s_j` of the full image under a *target encoder*. The loss lives in
representation space, not pixel space:

.. math::

    \mathcal L = \frac{1}{\sum_{b,j} w_{bj}\,D} \sum_{b,j} w_{bj}
    \big\lVert g_\phi\big(f_\theta(x \odot m^\text{ctx}),\, \mathrm{pos}_j\big)
    - \bar s_j\big\rVert^2 ,

with :math:`w_{bj}` the number of target blocks of image :math:`b` holding patch
:math:`j`. What stops the trivial solution (constant representations)?
``collapse`` chooses:

``"ema"`` (I-JEPA)
    The target encoder is an exponential moving average of the context encoder,
    :math:`\bar\theta \leftarrow m\bar\theta + (1-m)\theta`, with the momentum
    :math:`m` rising linearly from 0.996 to 1 over training; targets are
    layer-normalised and receive no gradient (stop-gradient).
``"sigreg"`` (LeJEPA, Balestriero & LeCun 2025)
    One encoder for both branches, gradients through both (no EMA, no
    stop-gradient), and :math:`\lambda\,\mathrm{SIGReg}` on the target
    embeddings (:func:`~predcode.nn.sigreg`) pulls them towards
    :math:`\mathcal N(0, I)`.
``"vicreg"`` (Bardes et al. 2022)
    As ``"sigreg"`` with VICReg's variance hinge and covariance penalty instead
    (weights 1 and 0.04 relative to the prediction loss: the paper's 25 : 25 : 1).
``"none"``
    Shared encoder, no regulariser: the collapse baseline.

``predict="pixels"`` turns the same network into the pixel-space baseline: the
predictor outputs the pixels of each target patch (a masked auto-encoder with
an MLP decoder), no target encoder.

Simplifications (said plainly): no vision transformer. The encoders are small
convolutional networks on a patch grid (a 3×3 convolution, a strided
"patchify" convolution, a 1×1 projection to ``embed_dim``), so a patch's
representation sees its neighbours only, and masked-out patches are zeroed in
the input (with a mask channel) instead of being dropped as tokens;
``pos_embed=True`` adds fixed 2-D sin–cos positional embeddings to the patch
embeddings, as the ViT does (without them the encoder is
translation-equivariant and its mean-pooled output a bag of local features). The
predictor is an MLP: the masked context map is flattened into a global vector
:math:`c`, and each target position's prediction is
:math:`\mathrm{MLP}([c, \mathrm{pos}_j])` with fixed 2-D sin–cos positional
embeddings (I-JEPA's).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from ..backend import get_namespace, take, to_numpy
from ..base import Model
from ..datasets.masks import multiblock_masks
from ..exceptions import DivergenceError, ValidationError
from ..nn import (
    GELU,
    AdamW,
    Conv2d,
    Layer,
    LayerNorm,
    Linear,
    Sequential,
    copy_params,
    named_params,
    sigreg,
    vicreg,
    warmup_cosine,
    zero_grad,
)
from ..validation import (
    check_array,
    check_choice,
    check_dtype,
    check_int,
    check_pair,
    check_param,
    check_random_state,
)

__all__ = ["IJEPA", "sincos_2d", "ConvEncoder", "PositionalPredictor"]


def sincos_2d(grid: tuple[int, int], dim: int) -> np.ndarray:
    """Fixed 2-D sin–cos positional embeddings (P, dim): half the channels per axis."""
    gh, gw = grid
    if dim % 4:
        raise ValidationError(f"sincos_2d: dim must be a multiple of 4, got {dim}.")
    q = dim // 4
    freqs = 1.0 / 10000 ** (np.arange(q) / q)
    rows, cols = np.meshgrid(np.arange(gh), np.arange(gw), indexing="ij")
    parts = []
    for pos in (rows.ravel(), cols.ravel()):
        a = pos[:, None] * freqs[None, :]
        parts += [np.sin(a), np.cos(a)]
    return np.concatenate(parts, axis=1)


class AddPosition(Layer):
    """Add a fixed positional map (1, C, gh, gw) to (N, C, gh, gw); backward is the identity."""

    def __init__(self, pos: Any, *, backend: str):
        super().__init__()
        self.backend = backend
        self.pos = pos

    def forward(self, x: Any) -> Any:
        return x + self.pos

    def backward(self, g: Any) -> Any:
        return g


class ConvEncoder(Layer):
    """Pixels (N, c_in, H, W) → patch representations (N, P, D) (see module doc).

    ``depth`` 3×3 convolutions, the strided patchify convolution, then (with
    ``grid`` given) the fixed 2-D sin–cos embedding of each patch position added
    to its channels, as a ViT adds positional embeddings to its patch
    embeddings, and a 1×1 projection to ``embed_dim``.
    """

    def __init__(self, c_in: int, channels: int, embed_dim: int, patch: int, *,
                 backend: str, rng: np.random.Generator, dtype: Any, depth: int = 1,
                 grid: tuple[int, int] | None = None):
        super().__init__()
        self.backend = backend
        k = 2 * patch - 1
        kw = {"backend": backend, "rng": rng, "dtype": dtype}
        convs: list[Layer] = [Conv2d(c_in, channels, 3, padding=1, **kw), GELU(backend=backend)]
        for _ in range(depth - 1):  # each further 3x3 layer widens the receptive field by 2 px
            convs += [Conv2d(channels, channels, 3, padding=1, **kw), GELU(backend=backend)]
        convs.append(Conv2d(channels, channels, k, stride=patch, padding=patch - 1, **kw))
        if grid is not None:
            pos = sincos_2d(grid, channels).T.reshape(1, channels, *grid).astype(dtype)
            convs.append(AddPosition(get_namespace(backend).asarray(pos), backend=backend))
        self.net = Sequential(*convs, GELU(backend=backend), Conv2d(channels, embed_dim, 1, **kw))
        self.layers = [self.net]

    def forward(self, x: Any) -> Any:
        y = self.net.forward(x)
        self._cache = y.shape
        n, d = y.shape[0], y.shape[1]
        return y.reshape(n, d, -1).transpose(0, 2, 1)

    def backward(self, g: Any) -> Any:
        self._check_cached("x")
        n, d, gh, gw = self._cache
        return self.net.backward(self.xp.ascontiguousarray(g.transpose(0, 2, 1))
                                 .reshape(n, d, gh, gw))


class PositionalPredictor(Layer):
    r"""Predict a vector at every patch position from a masked context map.

    :math:`c = \mathrm{GELU}(W_1\,\mathrm{vec}(h \odot m) + b_1)`,
    :math:`\hat s_j = W_3\,\mathrm{GELU}(W_c c + W_p \mathrm{pos}_j + b_2) + b_3`.

    :math:`W_c c` is computed once per image and :math:`W_p \mathrm{pos}_j` once per
    position (the two halves of one linear layer on :math:`[c, \mathrm{pos}_j]`),
    so only the last layer runs per (image, position).
    """

    def __init__(self, n_pos: int, d_in: int, hidden: int, pos: np.ndarray, d_out: int, *,
                 backend: str, rng: np.random.Generator, dtype: Any, depth: int = 1):
        super().__init__()
        self.backend = backend
        kw = {"backend": backend, "rng": rng, "dtype": dtype}
        self.n_pos, self.d_in, self.hidden = n_pos, d_in, hidden
        self.pos = get_namespace(backend).asarray(pos.astype(dtype))
        self.lin1, self.act1 = Linear(n_pos * d_in, hidden, **kw), GELU(backend=backend)
        self.lin_c = Linear(hidden, hidden, **kw)
        self.lin_p = Linear(pos.shape[1], hidden, bias=False, **kw)
        self.act2, self.lin3 = GELU(backend=backend), Linear(hidden, d_out, **kw)
        self.layers = [self.lin1, self.lin_c, self.lin_p, self.lin3]
        # depth > 1: further hidden layers per (image, position) before the output
        self.extra = None
        if depth > 1:
            extra: list[Layer] = []
            for _ in range(depth - 1):
                extra += [Linear(hidden, hidden, **kw), GELU(backend=backend)]
            self.extra = Sequential(*extra)
            self.layers.append(self.extra)

    def forward(self, h: Any, m: Any) -> Any:  # type: ignore[override]
        n = h.shape[0]
        self._cache = m
        c = self.act1.forward(self.lin1.forward((h * m[:, :, None]).reshape(n, -1)))
        z = self.lin_c.forward(c)[:, None, :] + self.lin_p.forward(self.pos)[None]
        a = self.act2.forward(z)
        if self.extra is not None:
            a = self.extra.forward(a)
        return self.lin3.forward(a)

    def backward(self, g: Any) -> Any:
        self._check_cached("h")
        m = self._cache
        ga = self.lin3.backward(g)
        if self.extra is not None:
            ga = self.extra.backward(ga)
        gz = self.act2.backward(ga)
        self.lin_p.backward(gz.sum(axis=0))
        gc = self.lin_c.backward(gz.sum(axis=1))
        gu = self.lin1.backward(self.act1.backward(gc))
        return gu.reshape(m.shape[0], self.n_pos, self.d_in) * m[:, :, None]


_COLLAPSE = ("ema", "sigreg", "vicreg", "none")


class IJEPA(Model):
    r"""I-JEPA-style joint-embedding predictive architecture on small images.

    Parameters
    ----------
    image_shape : (int, int)
        Height and width of the images; ``X`` rows are images flattened row-major.
    patch : int
        Patch size in pixels (the grid is ``image_shape / patch``).
    channels, embed_dim : int
        Width of the convolutional encoder and dimension :math:`D` of a patch
        representation.
    depth : int
        Number of 3×3 convolutions before the patchify convolution (default 1;
        each one more widens a patch's receptive field by two pixels).
    pos_embed : bool
        Add fixed 2-D sin–cos positional embeddings (``channels`` wide) to the
        patch embeddings inside the encoders, as I-JEPA's ViT does; without them
        (default) the encoder is translation-equivariant and its mean-pooled
        output is a bag of local features.
    pred_hidden, pos_dim : int
        Predictor width and positional-embedding size (multiple of 4).
    pred_depth : int
        Hidden layers of the predictor after the (context, position) layer
        (default 1: one; each more adds a ``pred_hidden``-wide GELU layer).
    predict : {"latent", "pixels"}
        Predict target representations (JEPA) or target pixels (baseline).
    collapse : {"ema", "sigreg", "vicreg", "none"}
        Collapse prevention (see module doc); ignored for ``predict="pixels"``.
    reg_weight : float, optional
        :math:`\lambda` of SIGReg (default 0.1) or the scale of the VICReg terms
        (default 1, the paper's ratios).
    reg_on : {"patches", "pooled"}
        What the regulariser sees: every patch embedding (default) or one
        embedding per image, the mean over its patches (LeJEPA regularises the
        per-image embedding).
    ema : (float, float)
        EMA momentum at the start and the end of training (I-JEPA: 0.996, 1.0).
    n_targets, target_scale, target_aspect, context_scale
        Multi-block masking (I-JEPA: 4, (0.15, 0.2), (0.75, 1.5), (0.85, 1.0)).
    epochs, batch_size : int
    lr, warmup, weight_decay : float
        AdamW peak rate, warm-up as a fraction of all steps, decoupled decay.
    sigreg_directions : int
        Random directions per SIGReg evaluation.
    reg_samples : int
        The regulariser sees a random subset of this many patch embeddings per
        step (all of them when there are fewer).
    dtype, backend, random_state, verbose
        As for every predcode model.

    Attributes
    ----------
    encoder_, predictor_, target_encoder_ : Layer
        The learned networks (``target_encoder_`` is ``encoder_`` itself unless
        ``collapse="ema"``).
    history_ : dict of list
        Per epoch: ``"energy"`` (mean per-image prediction loss, :attr:`ENERGY_UNIT`),
        ``"loss"`` (mean batch prediction loss), ``"reg"`` (regulariser), ``"ema"``
        (momentum at the end of the epoch), ``"wall_time_s"``.
    n_features_in_ : int
        Pixels per image.

    Notes
    -----
    ``infer(X)`` is the encoder output (the target encoder's for
    ``predict="latent"``), ``energy(X)`` the per-image masked-prediction loss
    on ``X``'s device. ``backend="auto"`` is resolved from the data given to
    ``fit``: cupy arrays train on the GPU, host arrays with numba (if installed).
    """

    _LEARNED = ("encoder_", "predictor_", "target_encoder_", "history_", "n_features_in_",
                "optimizer_", "step_", "total_steps_")
    ENERGY_UNIT = ("mean squared prediction error per predicted dimension (squared "
                   "representation units for predict='latent', squared data units for 'pixels')")

    def __init__(self, image_shape=(8, 8), *, patch: int = 1, channels: int = 16,
                 embed_dim: int = 16, depth: int = 1, pos_embed: bool = False,
                 pred_hidden: int = 128, pred_depth: int = 1, pos_dim: int = 16,
                 predict: str = "latent", collapse: str = "ema", reg_weight: float | None = None,
                 reg_on: str = "patches",
                 ema=(0.996, 1.0), n_targets: int = 4, target_scale=(0.15, 0.2),
                 target_aspect=(0.75, 1.5), context_scale=(0.85, 1.0), epochs: int = 10,
                 batch_size: int = 64, lr: float = 2e-3, warmup: float = 0.1,
                 weight_decay: float = 0.04, sigreg_directions: int = 32,
                 reg_samples: int = 1024,
                 dtype: str = "float32", backend: str = "auto", random_state=None,
                 verbose: bool = False):
        self.image_shape = image_shape
        self.patch = patch
        self.channels = channels
        self.embed_dim = embed_dim
        self.depth = depth
        self.pos_embed = pos_embed
        self.pred_hidden = pred_hidden
        self.pred_depth = pred_depth
        self.pos_dim = pos_dim
        self.predict = predict
        self.collapse = collapse
        self.reg_weight = reg_weight
        self.reg_on = reg_on
        self.ema = ema
        self.n_targets = n_targets
        self.target_scale = target_scale
        self.target_aspect = target_aspect
        self.context_scale = context_scale
        self.epochs = epochs
        self.batch_size = batch_size
        self.lr = lr
        self.warmup = warmup
        self.weight_decay = weight_decay
        self.sigreg_directions = sigreg_directions
        self.reg_samples = reg_samples
        self.dtype = dtype
        self.backend = backend
        self.random_state = random_state
        self.verbose = verbose

    # -- set-up -------------------------------------------------------------------
    def _validate(self) -> None:
        o = "IJEPA"
        self.hw_ = check_pair(self.image_shape, "image_shape", o)
        p = check_int(self.patch, "patch", o)
        if self.hw_[0] % p or self.hw_[1] % p:
            raise ValidationError(f"IJEPA.patch: image_shape {self.hw_} must be divisible by the "
                                  f"patch size, got patch={p}.")
        self.grid_ = (self.hw_[0] // p, self.hw_[1] // p)
        for name in ("channels", "embed_dim", "depth", "pred_hidden", "pred_depth", "epochs",
                     "batch_size", "n_targets", "sigreg_directions"):
            check_int(getattr(self, name), name, o)
        check_int(self.pos_dim, "pos_dim", o, low=4)
        if not isinstance(self.pos_embed, (bool, np.bool_)):
            raise ValidationError(f"IJEPA.pos_embed: expected a bool, got {self.pos_embed!r}.")
        if self.pos_embed and self.channels % 4:
            raise ValidationError(f"IJEPA.channels: must be a multiple of 4 with pos_embed=True, "
                                  f"got {self.channels}.")
        check_int(self.reg_samples, "reg_samples", o, low=2)
        if self.pos_dim % 4:
            raise ValidationError(f"IJEPA.pos_dim: must be a multiple of 4, got {self.pos_dim}.")
        check_choice(self.predict, "predict", ("latent", "pixels"), o)
        check_choice(self.collapse, "collapse", _COLLAPSE, o)
        check_choice(self.reg_on, "reg_on", ("patches", "pooled"), o)
        if self.reg_weight is None:
            self.reg_weight_ = 1.0 if self.collapse == "vicreg" else 0.1
        else:
            self.reg_weight_ = check_param(self.reg_weight, "reg_weight", o, low=0.0,
                                           low_inclusive=True)
        check_param(self.lr, "lr", o, low=0.0)
        check_param(self.warmup, "warmup", o, low=0.0, high=1.0, low_inclusive=True)
        check_param(self.weight_decay, "weight_decay", o, low=0.0, low_inclusive=True)
        if len(self.ema) != 2 or not 0.0 <= self.ema[0] <= self.ema[1] <= 1.0:
            raise ValidationError(f"IJEPA.ema: expected (start, end) with 0 <= start <= end <= 1, "
                                  f"got {self.ema!r}.")
        self.dtype_ = check_dtype(self.dtype, owner=o)
        check_param(self.verbose, "verbose", o, kind=(bool, np.bool_))
        # masks are checked once here so that bad scales fail before training
        multiblock_masks(1, self.grid_, n_targets=self.n_targets, target_scale=self.target_scale,
                         target_aspect=self.target_aspect, context_scale=self.context_scale,
                         random_state=0)

    @property
    def uses_ema(self) -> bool:
        return self.predict == "latent" and self.collapse == "ema"

    def _build(self, rng: np.random.Generator, backend: str | None = None) -> None:
        backend = self.backend_ if backend is None else backend
        kw = {"backend": backend, "rng": rng, "dtype": self.dtype_}
        P = self.grid_[0] * self.grid_[1]
        out = self.embed_dim if self.predict == "latent" else self.patch ** 2
        enc_kw = {**kw, "depth": self.depth, "grid": self.grid_ if self.pos_embed else None}
        self.encoder_ = ConvEncoder(2, self.channels, self.embed_dim, self.patch, **enc_kw)
        self.predictor_ = PositionalPredictor(P, self.embed_dim, self.pred_hidden,
                                              sincos_2d(self.grid_, self.pos_dim), out,
                                              depth=self.pred_depth, **kw)
        if self.uses_ema:
            self.target_encoder_ = ConvEncoder(2, self.channels, self.embed_dim, self.patch,
                                               **enc_kw)
            copy_params(self.encoder_, self.target_encoder_)
        else:
            self.target_encoder_ = self.encoder_
        self._norm = LayerNorm(self.embed_dim, backend=backend, affine=False)

    # -- data -----------------------------------------------------------------------
    def _check_X(self, X: Any, method: str) -> Any:
        H, W = self.hw_
        X = check_array(X, "X", f"IJEPA.{method}", shape=(None, H * W), dtype=self.dtype_,
                        xp=self._xp, layout=f"(n, {H * W}) = (n, {H}*{W}) flattened images")
        return X.reshape(-1, 1, H, W)

    def _inputs(self, x: Any, pix_mask: Any) -> Any:
        """Encoder input: masked pixels and the mask as a second channel."""
        return self._xp.concatenate([x * pix_mask, self._xp.broadcast_to(pix_mask, x.shape)],
                                    axis=1)

    def _pixel_mask(self, m: Any) -> Any:
        """Patch mask (n, P) → pixel mask (n, 1, H, W)."""
        gh, gw = self.grid_
        p = self.patch
        m = m.reshape(-1, gh, 1, gw, 1)
        m = self._xp.broadcast_to(m, (m.shape[0], gh, p, gw, p))
        return m.reshape(-1, 1, gh * p, gw * p)

    def _patches(self, x: Any) -> Any:
        """Pixels (n, 1, H, W) → (n, P, patch²) in row-major patch order."""
        gh, gw = self.grid_
        p = self.patch
        return (x.reshape(-1, gh, p, gw, p).transpose(0, 1, 3, 2, 4)
                .reshape(-1, gh * gw, p * p))

    # -- one step ---------------------------------------------------------------------
    def _loss(self, x: Any, ctx: Any, tw: Any, learn: bool, rng=None):
        """Prediction loss (and, with ``learn``, gradients accumulated into the networks)."""
        xp = self._xp
        n = x.shape[0]
        ones = xp.ones((n, 1) + tuple(self.hw_), dtype=self.dtype_)
        ctx_in = self._inputs(x, self._pixel_mask(ctx))
        full_in = self._inputs(x, ones)
        shared = not self.uses_ema and self.predict == "latent"
        if shared:  # one pass over both branches: the layers cache one forward
            h = self.encoder_.forward(xp.concatenate([ctx_in, full_in]))
            h_ctx, h_tgt = h[:n], h[n:]
        else:
            h_ctx = self.encoder_.forward(ctx_in)
        pred = self.predictor_.forward(h_ctx, ctx)
        if self.predict == "pixels":
            target = self._patches(x)
        elif self.uses_ema:
            target = self._norm.forward(self.target_encoder_.forward(full_in))
        else:
            target = h_tgt
        D = pred.shape[-1]
        wsum = float(tw.sum()) * D
        diff = pred - target
        per_sample = (tw[:, :, None] * diff * diff).sum(axis=(1, 2)) / (tw.sum(axis=1) * D)
        loss = float((tw[:, :, None] * diff * diff).sum()) / wsum
        reg = 0.0
        if not learn:
            return loss, reg, per_sample
        gpred = (2.0 / wsum) * tw[:, :, None] * diff
        gh_ctx = self.predictor_.backward(gpred)
        if shared:
            gtgt = -gpred
            if self.collapse != "none" and self.reg_weight_ > 0:
                pooled = self.reg_on == "pooled"
                # LeJEPA regularises one embedding per image (the pooled one); "patches"
                # regularises every patch embedding
                z = h_tgt.mean(axis=1) if pooled else h_tgt.reshape(-1, self.embed_dim)
                rows = None
                if z.shape[0] > self.reg_samples:  # a random subset of the embeddings
                    rows = xp.asarray(np.sort(rng.choice(z.shape[0], self.reg_samples,
                                                         replace=False)))
                    z = z[rows]
                if self.collapse == "sigreg":
                    reg, gz = sigreg(z, n_directions=self.sigreg_directions, random_state=rng,
                                     backend=self.backend_)
                else:
                    reg, ga, gb, _ = vicreg(z, z, sim_weight=0.0, var_weight=1.0,
                                            cov_weight=0.04)
                    reg, gz = reg / 2, (ga + gb) / 2
                if rows is not None:
                    n_rows = h_tgt.shape[0] if pooled else h_tgt.shape[0] * h_tgt.shape[1]
                    gfull = xp.zeros((n_rows, self.embed_dim), dtype=gz.dtype)
                    gfull[rows] = gz
                    gz = gfull
                if pooled:  # d mean / d h_j = 1/P at every position
                    gz = xp.broadcast_to(gz[:, None, :] / h_tgt.shape[1], h_tgt.shape)
                gtgt = gtgt + self.reg_weight_ * gz.reshape(h_tgt.shape)
            self.encoder_.backward(xp.concatenate([gh_ctx, gtgt]))
        else:
            self.encoder_.backward(gh_ctx)
        return loss, reg, per_sample

    def _masks(self, n: int, rng: np.random.Generator) -> tuple[Any, Any]:
        ctx, tgt = multiblock_masks(n, self.grid_, n_targets=self.n_targets,
                                    target_scale=self.target_scale,
                                    target_aspect=self.target_aspect,
                                    context_scale=self.context_scale, random_state=rng)
        xp = self._xp
        return (xp.asarray(ctx.astype(self.dtype_)),
                xp.asarray(tgt.sum(axis=1).astype(self.dtype_)))

    def _ema_update(self, m: float) -> None:
        for (_, lo, ko), (_, lt, kt) in zip(named_params(self.encoder_),
                                            named_params(self.target_encoder_), strict=True):
            lt.params[kt] *= m
            lt.params[kt] += (1.0 - m) * lo.params[ko]

    def _momentum(self) -> float:
        m0, m1 = self.ema
        return m0 + (m1 - m0) * min(self.step_ / max(self.total_steps_, 1), 1.0)

    def _lr_now(self) -> float:
        """AdamW rate of the current step: warm-up + cosine over the schedule, then ``lr``."""
        if self.step_ < self.total_steps_:
            return warmup_cosine(self.step_, self.total_steps_, base=self.lr,
                                 warmup=int(self.warmup * self.total_steps_), final=0.0)
        return self.lr  # passes beyond the schedule (partial_fit): constant rate

    def _epoch(self, X: Any, epoch: int, n_epochs: int) -> dict[str, float]:
        rng = self._rng
        n = X.shape[0]
        order = rng.permutation(n)
        losses, regs, energies = [], [], []
        n_seen = 0
        for start in range(0, n, self.batch_size):
            idx = order[start:start + self.batch_size]
            if len(idx) < 2:
                continue
            x = take(X, idx)
            ctx, tw = self._masks(len(idx), rng)
            zero_grad(self.encoder_)
            zero_grad(self.predictor_)
            loss, reg, per_sample = self._loss(x, ctx, tw, learn=True, rng=rng)
            if not (math.isfinite(loss) and math.isfinite(reg)):
                raise DivergenceError(
                    f"IJEPA.lr={self.lr:g}: training diverged in epoch {epoch + 1} of "
                    f"{n_epochs} (the loss became {loss}, the regulariser {reg}, at step "
                    f"{self.step_}); use a smaller lr, e.g. lr={self.lr / 10:g}.")
            self.optimizer_.step(self._lr_now())
            if self.uses_ema:
                self._ema_update(self._momentum())
            self.step_ += 1
            losses.append(loss)
            regs.append(reg)
            energies.append(per_sample.sum())
            n_seen += len(idx)
        # one device->host transfer per epoch for the per-sample energies
        energy = float(sum(to_numpy(e) for e in energies)) / max(n_seen, 1)
        return {"energy": energy, "loss": float(np.mean(losses)), "reg": float(np.mean(regs)),
                "ema": self._momentum() if self.uses_ema else 0.0}

    # -- protocol ------------------------------------------------------------------------
    def fit(self, X: Any, y: Any = None) -> IJEPA:
        """Train from scratch for ``epochs`` passes over ``X`` (n, H·W); ``y`` is ignored.

        The learning-rate schedule (warm-up, cosine decay) and the EMA momentum
        schedule span ``epochs`` passes. ``backend="auto"`` is resolved from
        ``X`` (a cupy array trains on the GPU). If training fails (bad input,
        divergence) the model is left unfitted.
        """
        return super().fit(X, y)

    def partial_fit(self, X: Any, y: Any = None) -> IJEPA:
        """One pass over ``X``, the next pass of the ``epochs``-pass schedule.

        The first call initialises the model and its schedule (warm-up, cosine
        decay of the rate, EMA momentum from ``ema[0]`` to ``ema[1]``) over
        ``epochs`` passes; each call makes one of them, so ``epochs`` calls
        train exactly as ``fit``. Calls beyond the schedule (or after ``load``)
        train at the constant rate ``lr`` with the momentum at its end value
        (1 by default: the target encoder is then frozen).
        """
        return super().partial_fit(X, y)

    def _init_fit(self, X: Any, y: Any = None) -> Any:
        self._validate()
        self._setup_runtime(X)
        X = self._check_X(X, "fit")
        self._rng = check_random_state(self.random_state, owner="IJEPA")
        self._build(self._rng)
        self.optimizer_ = AdamW([self.encoder_, self.predictor_], lr=self.lr,
                                weight_decay=self.weight_decay)
        self.step_ = 0
        per_epoch = sum(1 for s in range(0, X.shape[0], self.batch_size)
                        if min(self.batch_size, X.shape[0] - s) >= 2)
        self.total_steps_ = max(per_epoch * self.epochs, 1)
        self.n_features_in_ = self.hw_[0] * self.hw_[1]
        return X

    def _fit_data(self, X: Any, y: Any = None) -> Any:
        return self._check_X(X, "partial_fit")

    def infer(self, X: Any, *, pool: str = "flatten", batch_size: int = 256) -> Any:
        """Representations of full images under the target encoder.

        ``pool="flatten"``: all patch representations, (n, P·D); ``"mean"``: their
        average, (n, D).
        """
        self._check_fitted("infer")
        check_choice(pool, "pool", ("flatten", "mean"), "IJEPA.infer")
        x = self._check_X(X, "infer")
        enc = self.target_encoder_ if self.predict == "latent" else self.encoder_
        out = []
        for s in range(0, x.shape[0], batch_size):
            xb = x[s:s + batch_size]
            ones = self._xp.ones_like(xb)
            h = enc.forward(self._inputs(xb, ones))
            out.append(h.mean(axis=1) if pool == "mean" else h.reshape(h.shape[0], -1))
        return self._xp.concatenate(out)

    def energy(self, X: Any, *, random_state: Any = 0) -> Any:
        """Per-sample masked-prediction loss, shape (n,), on ``X``'s device.

        Each image gets its own multi-block masks, drawn from ``random_state``
        (fixed by default, so the energy is a deterministic function of the
        model and ``X``); the value is the weighted squared error of the
        predicted target patches per predicted dimension (:attr:`ENERGY_UNIT`).
        """
        self._check_fitted("energy")
        x = self._check_X(X, "energy")
        ctx, tw = self._masks(x.shape[0], check_random_state(random_state))
        return self._loss(x, ctx, tw, learn=False)[2]

    def score(self, X: Any, y: Any = None, *, random_state: Any = 0) -> float:
        """Minus the mean :meth:`energy` (larger is better); ``y`` is ignored."""
        self._check_fitted("score")
        return -float(to_numpy(self.energy(X, random_state=random_state)).mean())

    # -- persistence ------------------------------------------------------------------------
    def _modules(self) -> dict[str, Layer]:
        mods = {"encoder": self.encoder_, "predictor": self.predictor_}
        if self.uses_ema:
            mods["target"] = self.target_encoder_
        return mods

    def _state(self) -> dict[str, np.ndarray]:
        return {f"{m}/{name}": to_numpy(layer.params[key])
                for m, mod in self._modules().items() for name, layer, key in named_params(mod)}

    def _expected_shapes(self) -> dict[str, tuple[int, ...]]:
        self._validate()
        self._build(np.random.default_rng(0), backend="numpy")
        return {k: v.shape for k, v in self._state().items()}

    def _set_state(self, state: dict[str, np.ndarray]) -> None:
        self._validate()
        self._setup_runtime()  # no data at load: "auto" resolves as for host arrays
        self._build(np.random.default_rng(0))
        for m, mod in self._modules().items():
            for name, layer, key in named_params(mod):
                layer.params[key][...] = self._xp.asarray(state[f"{m}/{name}"])
        self.n_features_in_ = self.hw_[0] * self.hw_[1]
        self._rng = check_random_state(self.random_state)
        self.optimizer_ = AdamW([self.encoder_, self.predictor_], lr=self.lr,
                                weight_decay=self.weight_decay)
        self.step_, self.total_steps_ = 0, 0
