r"""Hierarchical predictive coding of Rao & Ballard (1999).

Level 1 has ``n_modules`` modules; module :math:`m` sees an image patch
:math:`I_m` (``patch_shape``; neighbouring patches are ``offset`` pixels apart,
so the paper's three 16×16 patches cover a 16×26 region) and holds causes
:math:`r_m` that predict it through shared weights :math:`U`. Each higher level
has one module whose causes :math:`r^h` predict the concatenated causes of the
level below through :math:`U^h`, the top-down prediction
:math:`r^{td} = U^h r^h`. With :math:`f` linear (as in the paper's simulations)
the energy of one input is

.. math::

    E = \frac{1}{\sigma^2} \sum_m \lVert I_m - U r_m \rVert^2
      + \frac{1}{\sigma_{td}^2} \lVert r - r^{td} \rVert^2
      + \alpha\, g(r) + \alpha_h\, g(r^h) + \lambda (\lVert U \rVert^2 + \lVert U^h \rVert^2),

with the cause prior :math:`g(r) = \sum_i r_i^2` (Gaussian) or
:math:`\sum_i \log(1 + r_i^2)` (sparse, kurtotic). Inference is gradient descent
on :math:`E` (rate :math:`k_1`),

.. math::

    \dot r = \frac{k_1}{\sigma^2} U^\top (I - U r)
           + \frac{k_1}{\sigma_{td}^2} (r^{td} - r) - \frac{k_1 \alpha}{2} g'(r), \qquad
    \dot r^h = \frac{k_1}{\sigma_{td}^2} U^{h\top} (r - r^{td})
             - \frac{k_1 \alpha_h}{2} g'(r^h),

and learning is Hebbian on the settled causes (rate :math:`k_2`, divided by
``lr_decay`` every ``decay_every`` inputs),

.. math::

    \Delta U = \frac{k_2}{\sigma^2} (I - U r) r^\top - k_2 \lambda U, \qquad
    \Delta U^h = \frac{k_2}{\sigma_{td}^2} (r - r^{td}) r^{h\top} - k_2 \lambda U^h .

The level-1 *error-detecting* neurons carry :math:`r - r^{td}`: the quantity of
the end-stopping experiments. Removing feedback sets :math:`r^{td} = 0`.

Default values, as in the paper's Methods and its reimplementations:
:math:`\sigma^2 = 1`, :math:`\sigma_{td}^2 = 10`, :math:`\alpha = 1` (level 1)
and :math:`0.05` (level 2), :math:`\lambda = 0.02`, learning rate divided by
1.015 every 40 inputs.

Reference
---------
Rao, R. P. N. & Ballard, D. H. (1999). Predictive coding in the visual cortex:
a functional interpretation of some extra-classical receptive-field effects.
*Nature Neuroscience* 2(1), 79-87.
"""

from __future__ import annotations

import numbers
from typing import Any

import numpy as np

from ..backend import blas_threads, take, to_numpy
from ..base import Model
from ..exceptions import DivergenceError, ValidationError
from ..validation import (
    check_array,
    check_choice,
    check_dtype,
    check_pair,
    check_param,
    check_random_state,
)
from ._settling import first_divergent_step, raise_divergence, verified_smaller_step

__all__ = ["RaoBallard"]



def _per_level(value: Any, n_levels: int, name: str, low_inclusive: bool) -> tuple[float, ...]:
    """A scalar or one value per level → tuple of floats, validated."""
    values = value if isinstance(value, (tuple, list, np.ndarray)) else [value] * n_levels
    if len(values) != n_levels:
        raise ValidationError(
            f"RaoBallard.{name}: expected one value per level ({n_levels}), got {len(values)}."
        )
    for i, v in enumerate(values):
        check_param(v, f"{name}[{i}]", "RaoBallard", low=0.0, low_inclusive=low_inclusive)
    return tuple(float(v) for v in values)


class RaoBallard(Model):
    r"""Rao & Ballard (1999) hierarchical predictive coding of image regions.

    Parameters
    ----------
    n_modules : int
        Level-1 modules, side by side.
    patch_shape : tuple of int
        (height, width) of each module's patch.
    offset : int
        Horizontal distance between neighbouring patches (pixels).
    n_causes : sequence of int
        Causes per level-1 module, then per higher level: the paper's (32, 128).
    sigma2, sigma2_td : float
        Bottom-up (image) and top-down variances :math:`\sigma^2`,
        :math:`\sigma_{td}^2`.
    alpha : float, sequence of float or None
        Prior weight on the causes, per level. ``None``: the paper's 1 at level 1
        and 0.05 at every higher level.
    lam : float or sequence of float
        Weight prior :math:`\lambda`, per level (paper: 0.02).
    prior : {"sparse", "gaussian"}
        Cause prior :math:`g`: :math:`\log(1 + r^2)` or :math:`r^2`.
    k1 : float or "auto"
        Euler step of the settling (the paper's rate :math:`k_1` times the time
        step). ``"auto"`` (default) uses, per level, the largest step that is
        stable by construction, ``1 / L`` with ``L`` a bound on the energy's
        curvature, recomputed as the weights learn.
    k2 : float or sequence of float
        Initial learning rate, per level (a scalar serves every level). Level
        ``l >= 2`` learns from errors scaled by :math:`1/\sigma_{td}^2`, so a
        rate :math:`\sigma_{td}^2` times larger gives it the same speed as level 1.
    lr_decay, decay_every : float, int
        ``k2`` is divided by ``lr_decay`` every ``decay_every`` inputs (patches).
    T : int
        Settling steps per input.
    batch_size : int
        Patches settled together; their per-input Hebbian updates are summed
        into one update.
    epochs : int
        Passes over the patches in :meth:`fit`.
    init_scale : float
        Standard deviation of the initial weights.
    window_sigma : float, optional
        Width (pixels) of the Gaussian window that weights every module's patch
        (peak 1 at the patch centre), the paper's remedy for edge effects;
        ``None`` leaves patches unweighted.
    dtype, backend, random_state, check_divergence, verbose
        As for :class:`~predcode.models.pcn.PCN`.

    Attributes
    ----------
    U_ : list of arrays
        ``U_[0]`` is :math:`U` (n_pixels, n_causes[0]); ``U_[l]`` maps level
        ``l+1`` causes to the level-``l`` causes it predicts.
    history_ : dict
        Per epoch: ``"energy"`` (mean settled energy :math:`E` per region, in
        :attr:`ENERGY_UNIT`, without the weight prior), ``"k2"`` (level 1's
        learning rate at the end of the epoch) and ``"wall_time_s"``.
    backend_ : str
        The concrete backend in use.
    n_inputs_seen_ : int
        Patches learned from (drives the learning-rate schedule).
    """

    ENERGY_UNIT = ("2 x nats: the paper's E, twice the negative log joint density of the "
                   "patches and causes (Gaussian errors, cause prior exp(-alpha g / 2)), up "
                   "to a constant")
    _KERNELS = ("pc_predict", "pc_feedback", "pc_error", "pc_hebbian", "rb_cause_step")
    _RUNTIME = ("_xp", "_k", "_bias_buf", "_index_dev", "_window_dev")
    _DIVERGENCE_PARAM = "k2"
    #: saved arrays that are not floating point (see Model._STATE_KINDS)
    _STATE_KINDS = {"n_inputs_seen_": "iu"}

    def __init__(
        self,
        n_modules: int = 3,
        patch_shape=(16, 16),
        offset: int = 5,
        n_causes=(32, 128),
        *,
        sigma2: float = 1.0,
        sigma2_td: float = 10.0,
        alpha=None,
        lam=0.02,
        prior: str = "sparse",
        k1="auto",
        k2: float = 0.5,
        lr_decay: float = 1.015,
        decay_every: int = 40,
        T: int = 100,
        batch_size: int = 20,
        epochs: int = 1,
        init_scale: float = 0.1,
        window_sigma: float | None = None,
        dtype: str = "float32",
        backend: str = "auto",
        random_state=None,
        check_divergence: bool = True,
        verbose: bool = False,
    ):
        self.n_modules = n_modules
        self.patch_shape = patch_shape
        self.offset = offset
        self.n_causes = n_causes
        self.sigma2 = sigma2
        self.sigma2_td = sigma2_td
        self.alpha = alpha
        self.lam = lam
        self.prior = prior
        self.k1 = k1
        self.k2 = k2
        self.lr_decay = lr_decay
        self.decay_every = decay_every
        self.T = T
        self.batch_size = batch_size
        self.epochs = epochs
        self.init_scale = init_scale
        self.window_sigma = window_sigma
        self.dtype = dtype
        self.backend = backend
        self.random_state = random_state
        self.check_divergence = check_divergence
        self.verbose = verbose

    # -- geometry and validation ------------------------------------------------
    def _validate(self) -> None:
        o = "RaoBallard"
        check_param(self.n_modules, "n_modules", o, kind=numbers.Integral, low=1,
                    low_inclusive=True)
        ps = check_pair(self.patch_shape, "patch_shape", o)
        check_param(self.offset, "offset", o, kind=numbers.Integral, low=1, low_inclusive=True)
        nc = self.n_causes
        if (not isinstance(nc, (tuple, list)) or len(nc) < 1
                or not all(isinstance(v, numbers.Integral) and v >= 1 for v in nc)):
            raise ValidationError(
                f"RaoBallard.n_causes: expected positive ints per level such as (32, 128), "
                f"got {nc!r}."
            )
        self.n_levels_ = len(nc)
        check_param(self.sigma2, "sigma2", o, low=0.0)
        check_param(self.sigma2_td, "sigma2_td", o, low=0.0)
        alpha = self.alpha
        if alpha is None:
            alpha = (1.0,) + (0.05,) * (self.n_levels_ - 1)
        self.alpha_ = _per_level(alpha, self.n_levels_, "alpha", low_inclusive=True)
        self.lam_ = _per_level(self.lam, self.n_levels_, "lam", low_inclusive=True)
        check_choice(self.prior, "prior", ("sparse", "gaussian"), owner=o)
        if self.k1 != "auto":
            check_param(self.k1, "k1", o, low=0.0)
        self.k2_ = _per_level(self.k2, self.n_levels_, "k2", low_inclusive=False)
        check_param(self.lr_decay, "lr_decay", o, low=1.0, low_inclusive=True)
        check_param(self.decay_every, "decay_every", o, kind=numbers.Integral, low=1,
                    low_inclusive=True)
        check_param(self.T, "T", o, kind=numbers.Integral, low=1, low_inclusive=True)
        check_param(self.batch_size, "batch_size", o, kind=numbers.Integral, low=1,
                    low_inclusive=True)
        check_param(self.epochs, "epochs", o, kind=numbers.Integral, low=1, low_inclusive=True)
        check_param(self.init_scale, "init_scale", o, low=0.0)
        if self.window_sigma is not None:
            check_param(self.window_sigma, "window_sigma", o, low=0.0)
        check_param(self.check_divergence, "check_divergence", o, kind=bool)
        check_param(self.verbose, "verbose", o, kind=bool)
        self.dtype_ = check_dtype(self.dtype, owner=o)
        self._rng = check_random_state(self.random_state, owner=o)
        h, w = int(ps[0]), int(ps[1])
        self.region_shape_ = (h, w + (self.n_modules - 1) * self.offset)
        # pixel index of every module's patch in the flattened region: (M, h*w)
        rows = np.arange(h)[:, None] * self.region_shape_[1]
        self._index = np.stack([(rows + m * self.offset + np.arange(w)[None, :]).ravel()
                                for m in range(self.n_modules)])
        if self.window_sigma is None:
            self._window = None
        else:
            yy, xx = np.mgrid[0:h, 0:w]
            d2 = (yy - (h - 1) / 2) ** 2 + (xx - (w - 1) / 2) ** 2
            self._window = np.exp(-d2 / (2 * self.window_sigma**2)).ravel().astype(self.dtype_)

    @property
    def n_pixels(self) -> int:
        """Pixels per level-1 patch."""
        return int(self.patch_shape[0]) * int(self.patch_shape[1])

    def _dims(self) -> list[tuple[int, int]]:
        """Shape of each weight matrix ``U_[l]``: (predicted size, causes)."""
        nc = [int(v) for v in self.n_causes]
        dims = [(self.n_pixels, nc[0])]
        below = self.n_modules * nc[0]
        for k in nc[1:]:
            dims.append((below, k))
            below = k
        return dims

    def _on_runtime(self) -> None:
        """Buffers and the patch geometry on the backend's device (sent once, not per batch)."""
        xp = self._xp
        self._bias_buf = None
        self._index_dev = xp.asarray(self._index)
        self._window_dev = None if self._window is None else xp.asarray(self._window)

    def _to_runtime_device(self) -> None:
        """Weights onto the backend's device after ``load`` (which restores host arrays)."""
        self.U_ = [self._xp.asarray(u) for u in self.U_]

    def _check_X(self, X: Any) -> Any:
        """Regions as (n, height, width) or flattened (n, height*width) → (n, pixels)."""
        h, w = self.region_shape_
        xp = self._xp
        arr = X if not isinstance(X, (list, tuple)) else np.asarray(X)
        if getattr(arr, "ndim", None) == 3:
            if tuple(arr.shape[1:]) != (h, w):
                raise ValidationError(
                    f"RaoBallard.X: expected regions of shape (n, {h}, {w}) for "
                    f"{self.n_modules} modules of {tuple(self.patch_shape)} pixels offset by "
                    f"{self.offset}, got {tuple(arr.shape)}; sample them with "
                    f"PatchSampler(images, patch_shape=({h}, {w}))."
                )
            arr = arr.reshape(arr.shape[0], h * w)
        return check_array(arr, "X", "RaoBallard", shape=(None, h * w), dtype=self.dtype_, xp=xp,
                           layout=f"(n, {h * w}) = (n, {h}*{w}) flattened regions "
                                  f"(or (n, {h}, {w}))")

    def _patches(self, X: Any) -> Any:
        """(n, pixels of region) → (n * n_modules, pixels of a patch), module-major per sample."""
        P = X[:, self._index_dev].reshape(X.shape[0] * self.n_modules, self.n_pixels)
        if self._window_dev is not None:
            P *= self._window_dev
        return P

    # -- settling ---------------------------------------------------------------
    def _steps(self) -> list[float]:
        """Euler step of each level's causes.

        A float ``k1`` is used as given. ``k1="auto"`` takes ``1 / L_l`` with
        ``L_l = ||U_l||_2^2 / s_l + t_l + 2 alpha_l`` (``s_l`` the variance of what
        level ``l`` predicts, ``t_l = 1/sigma_td^2`` if the level has a parent):
        an upper bound on the curvature of E in those causes (the priors' second
        derivatives are at most 2 alpha), so the step is stable (< 2/L) at every
        point of learning, however large the weights grow.
        """
        if self.k1 != "auto":
            return [float(self.k1)] * self.n_levels_
        return [1.0 / c for c in self._curvatures()]

    def _curvatures(self) -> list[float]:
        """The curvature bounds ``L_l`` of :meth:`_steps`, per level (host floats)."""
        out = []
        for l, U in enumerate(self.U_):
            s = self.sigma2 if l == 0 else self.sigma2_td
            norm = float(np.linalg.norm(to_numpy(U), 2))
            curv = norm * norm / s + 2.0 * self.alpha_[l]  # (norm**2 raises past 1e154)
            if l + 1 < self.n_levels_:
                curv += 1.0 / self.sigma2_td
            out.append(curv)
        return out

    def _settle(self, X: Any, feedback: bool = True, scale: float = 1.0):
        """Settle a batch of regions; optionally apply one Hebbian update.

        Returns ``(causes, errors, energies)``: ``causes[l]`` per level (level 0
        as (n*M, K1)), ``errors[l]`` the precision-weighted top-down errors
        :math:`(r_l - r^{td}_l)/\\sigma_{td}^2` of each level (level 0's first is
        the image error :math:`(I - U r)/\\sigma^2`), and the ``T + 1`` energies.
        """
        xp, k = self._xp, self._k
        steps = [scale * v for v in self._steps()]
        dt = self.dtype_
        n = X.shape[0]
        M, L = self.n_modules, self.n_levels_ if feedback else 1
        dims = self._dims()
        tau, tau_td = 1.0 / self.sigma2, 1.0 / self.sigma2_td
        sparse = self.prior == "sparse"
        I = self._patches(X)
        rows = [n * M] + [n] * (L - 1)
        r = [xp.zeros((rows[l], dims[l][1]), dtype=dt) for l in range(L)]
        bu = [xp.zeros_like(v) for v in r]
        eps_td = [xp.zeros_like(v) for v in r]
        # top-down predictions r_td[l] of level l's causes (zero at the top / without feedback)
        r_td = [xp.zeros((rows[l], dims[l][1]), dtype=dt) for l in range(L)]
        I_hat = xp.zeros_like(I)
        eps_img = xp.zeros_like(I)
        zero_pix = xp.zeros(self.n_pixels, dtype=dt)
        energies = []
        for step in range(self.T + 1):
            last = step == self.T  # the last pass only evaluates
            k["pc_predict"](self.U_[0], r[0], I_hat)
            for l in range(1, L):  # r_td of level l-1 from level l, pre-update
                k["pc_predict"](self.U_[l], r[l], r_td[l - 1].reshape(rows[l], -1))
            E = 2.0 * k["pc_error"](I, I_hat, zero_pix, tau, eps_img)
            k["pc_feedback"](self.U_[0], eps_img, bu[0])
            for l in range(L):
                has_parent = l + 1 < L
                # a level below the model's top keeps its error neurons even when the
                # feedback is cut (then r_td = 0); the top level has none
                E = E + k["rb_cause_step"](
                    r[l], bu[l], r_td[l], eps_td[l], 0.0 if last else steps[l],
                    tau_td if l + 1 < self.n_levels_ else 0.0, self.alpha_[l], sparse)
                if has_parent:  # bottom-up drive of level l+1: U_{l+1}^T eps_td[l]
                    k["pc_feedback"](self.U_[l + 1], eps_td[l].reshape(rows[l + 1], -1),
                                     bu[l + 1])
            energies.append(E)
        return r, eps_td, eps_img, energies

    def _hebbian(self, r, eps_img, eps_td, decay, n) -> None:
        """Per-input Hebbian rule, summed over the batch.

        Each input contributes ``k2 (err r^T - lam U)``; a batch of ``n`` inputs
        applies their sum (the weight decay compounds as ``(1 - k2 lam)^n``), so
        ``k2`` and its schedule keep the paper's per-input meaning whatever the
        batch size.
        """
        k = self._k
        M = self.n_modules
        for l, U in enumerate(self.U_):
            lr = decay * self.k2_[l]
            U *= (1.0 - lr * self.lam_[l]) ** n
            dummy = self._dummy_bias(U.shape[0])
            if l == 0:  # eps_img = (I - U r)/sigma^2 over n*M rows; pc_hebbian averages rows
                k["pc_hebbian"](U, dummy, eps_img, r[0], lr * n * M)
            else:
                k["pc_hebbian"](U, dummy, eps_td[l - 1].reshape(n, -1), r[l], lr * n)

    def _dummy_bias(self, size: int) -> Any:
        if getattr(self, "_bias_buf", None) is None or self._bias_buf.shape[0] != size:
            self._bias_buf = self._xp.zeros(size, dtype=self.dtype_)
        return self._bias_buf

    def _run(self, X: Any, feedback: bool = True, learn_rate: float | None = None):
        """Settle (checking divergence first), then learn if ``learn_rate`` is given."""
        out = self._settle(X, feedback=feedback)
        if self.check_divergence:
            energies = out[3]
            t = first_divergent_step(energies, self.dtype_)
            if t is not None:
                self._raise_divergence(X, feedback, t, energies, learning=learn_rate is not None)
        if learn_rate is not None:
            r, eps_td, eps_img, _ = out
            self._hebbian(r, eps_img, eps_td, learn_rate, X.shape[0])  # schedule factor
        return out

    def _weights_finite(self) -> bool:
        xp = self._xp
        return all(bool(xp.isfinite(u).all()) for u in self.U_)

    def _raise_divergence(self, X: Any, feedback: bool, t: int, energies: list,
                          learning: bool) -> None:
        """Name ``k2`` when the weights learned under a step that settled, else ``k1``."""
        finite = self._weights_finite()

        def settles(trial: float) -> bool:
            res = self._settle(X, feedback=feedback, scale=trial)
            return first_divergent_step(res[3], self.dtype_) is None

        # k1="auto" is stable at any finite weights; a fixed k1 below 2/L at the initial
        # weights was stable there: either way, what changed is the weights (k2)
        k1_was_stable = self.k1 == "auto" or self.k1 < getattr(self, "_k1_stable_init", 0.0)
        if learning and self.n_inputs_seen_ > 0 and (k1_was_stable or not finite):
            scale = verified_smaller_step(1.0, settles) if finite else None
            k1 = self.k1 if self.k1 != "auto" else None
            alt = (f", or keep k2 and use k1={scale * k1 / 2:.2g}"
                   if scale is not None and k1 is not None else "")
            k2 = self._k2_value()
            raise DivergenceError(
                f"RaoBallard.k2={k2:g}: learning diverged (settling that worked on earlier "
                f"batches diverged at inference step {t} of {self.T} after "
                f"{self.n_inputs_seen_} inputs of weight updates); use a smaller k2, e.g. "
                f"k2={k2 / 10:g}{alt}."
            )
        scale = verified_smaller_step(1.0, settles)
        k1 = self.k1 if self.k1 != "auto" else self._steps()[0]
        raise_divergence("RaoBallard", "k1", k1, t, self.T, energies,
                         None if scale is None else scale * k1)

    # -- protocol ------------------------------------------------------------------
    _LEARNED = ("U_", "history_", "n_features_in_", "n_inputs_seen_")

    def _init_weights(self) -> None:
        xp = self._xp
        self.U_ = [xp.asarray((self.init_scale * self._rng.standard_normal(d)).astype(self.dtype_))
                   for d in self._dims()]
        self.n_inputs_seen_ = 0

    def _current_k2(self) -> float:
        """Decay factor of the schedule times ``k2`` of level 1 (levels scale alike)."""
        return self.k2_[0] * self._decay()

    def _decay(self) -> float:
        return 1.0 / self.lr_decay ** (self.n_inputs_seen_ // self.decay_every)

    def _epoch(self, X: Any, epoch: int, n_epochs: int) -> dict[str, float]:
        """One shuffled pass of settling and Hebbian learning, in batches."""
        n = X.shape[0]
        self._check_decay_step()
        order = self._rng.permutation(n)
        parts = []
        for start in range(0, n, self.batch_size):
            idx = order[start:start + self.batch_size]
            *_, energies = self._run(take(X, idx), learn_rate=self._decay())
            parts.append(energies[-1])
            self.n_inputs_seen_ += len(idx)
        # one device->host sync per pass
        total = float(sum(float(to_numpy(e)) for e in parts)) / n
        if not self._weights_finite():
            raise DivergenceError(
                f"RaoBallard.k2={self._k2_value():g}: learning diverged in epoch {epoch + 1} "
                f"of {n_epochs} (the weights became non-finite); use a smaller k2, e.g. "
                f"k2={self._k2_value() / 10:g}."
            )
        return {"energy": total, "k2": self._current_k2()}

    def _k2_value(self) -> float:
        return float(self.k2) if isinstance(self.k2, numbers.Real) else self.k2_[0]

    def _check_decay_step(self) -> None:
        """The weight prior's step: each input multiplies U by ``1 - k2 lam``; past
        ``k2 lam = 2`` that factor exceeds 1 in magnitude and the weights grow
        without bound (an explicit Euler step on the weight prior past its stable range)."""
        decay = self._decay()
        for l in range(self.n_levels_):
            step = decay * self.k2_[l] * self.lam_[l]
            if step >= 2.0:
                k2 = self._k2_value()
                raise DivergenceError(
                    f"RaoBallard.k2={k2:g}: learning diverges: level {l + 1}'s weight-decay "
                    f"step k2 * lam = {step:g} is >= 2, so every input multiplies the "
                    f"weights by |1 - k2 lam| = {abs(1 - step):g} > 1; use a smaller k2, "
                    f"e.g. k2={k2 * 1.9 / step:.3g}."
                )

    def _init_fit(self, X: Any, y: Any = None) -> Any:
        self._validate()
        self._setup_runtime(X)
        X = self._check_X(X)
        self._init_weights()
        # largest Euler step stable by construction at the initial weights (2 / L)
        self._k1_stable_init = min(2.0 / c for c in self._curvatures())
        self.n_features_in_ = X.shape[1]
        return X

    def _fit_data(self, X: Any, y: Any = None) -> Any:
        return self._check_X(X)

    def fit(self, X: Any, y: Any = None) -> RaoBallard:
        """Learn the weights from image regions.

        Parameters
        ----------
        X : array of shape (n, height, region_width) or (n, height * region_width)
            Preprocessed image regions (see :mod:`predcode.datasets.natural`).
        y : ignored
            Present for the protocol; the model is unsupervised.

        Returns
        -------
        RaoBallard
            ``self``; a failed fit leaves the model unfitted.

        Raises
        ------
        DivergenceError
            Naming ``k1`` when settling diverges at the weights it started
            from, ``k2`` when learning drives the weights where settling (or
            the epoch energy) diverges.
        """
        return super().fit(X, y)

    def partial_fit(self, X: Any, y: Any = None) -> RaoBallard:
        """One pass over ``X`` from the current weights (the schedule continues).

        The first call initialises (as ``fit`` with one epoch); if the pass
        fails, weights, history and random stream are restored.
        """
        return super().partial_fit(X, y)

    def _batched(self, X: Any, method: str, feedback: bool = True):
        self._check_fitted(method)
        self._ensure_runtime()
        X = self._check_X(X)
        for start in range(0, X.shape[0], self.batch_size):
            Xb = X[start:start + self.batch_size]
            with blas_threads():
                yield Xb.shape[0], self._run(Xb, feedback=feedback)

    def infer(self, X: Any, *, feedback: bool = True, return_all: bool = False) -> Any:
        """Settled causes.

        Returns
        -------
        array or list of arrays
            Level-1 causes, shape (n, n_modules * n_causes[0]); with
            ``return_all`` a list over levels (level 1 as (n, n_modules, n_causes[0])).
            ``feedback=False`` settles level 1 alone (no top-down prediction).
        """
        parts = []
        for n, (r, *_rest) in self._batched(X, "infer", feedback):
            parts.append([r[0].reshape(n, self.n_modules, -1).copy()] + [v.copy() for v in r[1:]])
        levels = [self._xp.concatenate([p[l] for p in parts]) for l in range(len(parts[0]))]
        if return_all:
            return levels
        return levels[0].reshape(levels[0].shape[0], -1)

    def errors(self, X: Any, *, feedback: bool = True) -> Any:
        r"""Level-1 prediction errors :math:`r - r^{td}` after settling, (n, n_modules, K1).

        These are the error-detecting neurons of the paper's end-stopping and
        surround-suppression experiments; without feedback :math:`r^{td} = 0`.
        """
        out = []
        for n, (r, eps_td, _eps_img, _E) in self._batched(X, "errors", feedback):
            if self.n_levels_ > 1:  # eps_td holds (r - r_td)/sigma_td^2 (r_td = 0 if cut)
                err = eps_td[0] * self.sigma2_td
            else:
                err = r[0].copy()
            out.append(err.reshape(n, self.n_modules, -1))
        return self._xp.concatenate(out)

    def energy(self, X: Any, *, feedback: bool = True) -> Any:
        """Per-region settled energy :math:`E` without the weight prior, shape (n,).

        In :attr:`ENERGY_UNIT`, on the device of ``X``.
        """
        out = []
        for n, (r, eps_td, eps_img, _E) in self._batched(X, "energy", feedback):
            xp = self._xp
            e = self.sigma2 * (eps_img * eps_img).reshape(n, -1).sum(axis=1)
            for l, v in enumerate(r):
                g = xp.log1p(v * v) if self.prior == "sparse" else v * v
                e = e + self.alpha_[l] * g.reshape(n, -1).sum(axis=1)
                if l + 1 < self.n_levels_:  # (1/sigma_td^2) ||r - r_td||^2
                    e = e + self.sigma2_td * (eps_td[l] * eps_td[l]).reshape(n, -1).sum(axis=1)
            out.append(e)
        return self._xp.concatenate(out)

    def score(self, X: Any, *, feedback: bool = True) -> float:
        """Minus the mean settled energy per region (larger is better)."""
        self._check_fitted("score")
        return -float(to_numpy(self.energy(X, feedback=feedback)).mean())

    def reconstruct(self, X: Any) -> Any:
        """Level-1 prediction :math:`U r` of every patch, (n, n_modules, n_pixels)."""
        out = []
        for n, (r, *_rest) in self._batched(X, "reconstruct"):
            out.append((r[0] @ self.U_[0].T).reshape(n, self.n_modules, -1))
        return self._xp.concatenate(out)

    def receptive_fields(self, level: int = 1) -> np.ndarray:
        """Receptive fields as host images.

        ``level=1``: the columns of :math:`U`, shape (n_causes[0], h, w).
        ``level=2``: each level-2 cause projected to the image through
        :math:`U` of every module, shape (n_causes[1], h, region_width).
        """
        self._check_fitted("receptive_fields")
        h, w = (int(v) for v in self.patch_shape)
        U = to_numpy(self.U_[0])
        if level == 1:
            return U.T.reshape(-1, h, w).copy()
        if level != 2 or self.n_levels_ < 2:
            raise ValidationError(
                f"RaoBallard.receptive_fields: level must be 1 or 2 (model has "
                f"{self.n_levels_} levels), got {level!r}."
            )
        Uh = to_numpy(self.U_[1])  # (M*K1, K2)
        K1 = U.shape[1]
        fields = np.zeros((Uh.shape[1], *self.region_shape_))
        for m in range(self.n_modules):
            patch = (U @ Uh[m * K1:(m + 1) * K1]).T.reshape(-1, h, w)
            fields[:, :, m * self.offset:m * self.offset + w] += patch
        return fields

    # -- persistence ------------------------------------------------------------------
    def _is_fitted(self) -> bool:
        return hasattr(self, "n_features_in_")

    def _state(self) -> dict[str, np.ndarray]:
        state = {f"U_{l}": to_numpy(u) for l, u in enumerate(self.U_)}
        state["n_inputs_seen_"] = np.array(self.n_inputs_seen_)
        return state

    def _expected_shapes(self) -> dict[str, tuple[int, ...]]:
        self._validate()
        shapes = {f"U_{l}": d for l, d in enumerate(self._dims())}
        shapes["n_inputs_seen_"] = ()
        return shapes

    def _set_state(self, state: dict[str, np.ndarray]) -> None:
        self._validate()
        self.U_ = [state[f"U_{l}"].astype(self.dtype_) for l in range(self.n_levels_)]
        self.n_inputs_seen_ = int(state["n_inputs_seen_"])
        self.n_features_in_ = self.region_shape_[0] * self.region_shape_[1]
