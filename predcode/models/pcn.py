r"""Predictive-coding networks (Whittington & Bogacz 2017) and their backprop twin.

Layers :math:`l = 0, \dots, L` hold value nodes :math:`x_l` (rows are samples).
Each layer predicts the next through a nonlinearity :math:`f` and weights
:math:`W_l \in \mathbb{R}^{n_l \times n_{l-1}}`:

.. math::

    \mu_l = W_l f(x_{l-1}) + b_l, \qquad
    \varepsilon_l = \pi_l (x_l - \mu_l), \qquad
    F = \sum_l \frac{\pi_l}{2} \lVert x_l - \mu_l \rVert^2 ,

with precisions :math:`\pi_l = 1/\sigma_l^2`. Inference is gradient descent on
:math:`F` over the free activities (Euler steps of size :math:`\gamma`),

.. math::

    x_l \leftarrow x_l + \gamma \left( -\varepsilon_l
        + f'(x_l) \odot W_{l+1}^\top \varepsilon_{l+1} \right),

and learning is the local, Hebbian descent on :math:`F` at the settled state,

.. math::

    \Delta W_l = \eta\, \varepsilon_l f(x_{l-1})^\top = -\eta\, \partial F / \partial W_l,
    \qquad \Delta b_l = \eta\, \varepsilon_l .

**Modes.**

``"discriminative"`` (W&B 2017)
    :math:`x_0` is clamped to the input, :math:`x_L` to the target during
    learning; the hidden layers settle for ``T`` steps from the feed-forward pass.
``"generative"``
    the top layer :math:`x_0` holds latent causes with a Gaussian prior
    :math:`x_0 \sim \mathcal N(b_0, \pi_0^{-1})`; the data are clamped at the
    bottom :math:`x_L`; inference of the latents given an image is settling.

**Variants.**

``update="incremental"``
    incremental PC (Salvatori et al. 2024): weights take a step at every
    inference step, using the errors of that step.
``fixed_prediction=True``
    the fixed-prediction assumption (Millidge, Tschantz & Buckley 2022): the
    predictions :math:`\mu_l` and :math:`f'(x_l)` stay at their feed-forward
    values, so at equilibrium :math:`\varepsilon_l` equals backprop's
    :math:`-\partial \mathcal L / \partial \mu_l` exactly and the weight updates
    equal backprop's gradients.

References
----------
Whittington, J. C. R. & Bogacz, R. (2017). An approximation of the error
backpropagation algorithm in a predictive coding network with local Hebbian
synaptic plasticity. *Neural Computation* 29(5), 1229-1262.

Millidge, B., Tschantz, A. & Buckley, C. L. (2022). Predictive coding
approximates backprop along arbitrary computation graphs. *Neural Computation*
34(6), 1329-1368.

Salvatori, T., Song, Y., Yordanov, Y., Millidge, B., Sha, L., Emde, C., Xu, Z.,
Bogacz, R. & Lukasiewicz, T. (2024). A stable, fast, and fully automatic
learning algorithm for predictive coding networks. *ICLR 2024*.
"""

from __future__ import annotations

import contextlib
import math
import numbers
from typing import Any

import numpy as np

from .. import activations
from ..backend import array_namespace, blas_threads, take, to_numpy
from ..base import Model
from ..exceptions import DivergenceError, ValidationError
from ..validation import (
    check_array,
    check_choice,
    check_dtype,
    check_param,
    check_random_state,
    check_sizes,
)
from ._settling import first_divergent_step, raise_divergence, verified_smaller_step

__all__ = ["PCN", "MLP", "init_weights"]

def init_weights(
    sizes: tuple[int, ...], random_state: Any, dtype: Any = np.float64
) -> tuple[list, list]:
    """Glorot-uniform weights and zero biases, drawn with numpy's Generator.

    Every backend starts from these identical host arrays, so runs on numpy,
    numba and CuPy are comparable.

    Returns
    -------
    W, b : list of ndarray
        ``W[l]`` has shape ``(sizes[l], sizes[l-1])`` for ``l >= 1`` (``W[0]`` is
        None); ``b[l]`` has shape ``(sizes[l],)``.
    """
    rng = check_random_state(random_state)
    W: list = [None]
    b: list = [np.zeros(sizes[0], dtype=dtype)]
    for n_in, n_out in zip(sizes[:-1], sizes[1:], strict=True):
        limit = math.sqrt(6.0 / (n_in + n_out))
        W.append(rng.uniform(-limit, limit, size=(n_out, n_in)).astype(dtype))
        b.append(np.zeros(n_out, dtype=dtype))
    return W, b


class _Buffers:
    """Preallocated per-batch-size arrays: values, predictions, errors, f, f', feedback."""

    def __init__(self, xp: Any, sizes: tuple[int, ...], n: int, dtype: Any):
        def new():
            return [xp.zeros((n, s), dtype=dtype) for s in sizes]

        self.n = n
        self.x, self.z, self.eps, self.fx, self.dfx, self.bu = (new() for _ in range(6))

    def rows(self, sl: slice) -> _Buffers:
        """The same buffers restricted to rows ``sl`` (C-contiguous views, no copies)."""
        part = object.__new__(_Buffers)
        part.n = len(range(*sl.indices(self.n)))
        for name in ("x", "z", "eps", "fx", "dfx", "bu"):
            setattr(part, name, [a[sl] for a in getattr(self, name)])
        return part


def _is_one_hot(Y: np.ndarray) -> bool:
    """Whether every row of ``Y`` (2-D, at least two columns) is a single 1 among 0s."""
    return (Y.ndim == 2 and Y.shape[1] >= 2 and Y.shape[0] > 0
            and bool(np.all((Y == 0) | (Y == 1))) and bool(np.all(Y.sum(axis=1) == 1)))


class _LayeredNet(Model):
    """Shared machinery of layered networks: validation, weights, batches, history."""

    ENERGY_UNIT = "squared error / 2 (nats of a unit-variance Gaussian, up to a constant)"
    _KERNELS = ("pc_activate", "pc_predict", "pc_feedback", "pc_error", "pc_settle_step",
                "pc_hebbian")
    _RUNTIME = ("_xp", "_k", "_buffers", "_pool")

    # -- parameter checks -----------------------------------------------------
    def _validate_common(self) -> None:
        o = type(self).__name__
        self.sizes_ = check_sizes(self.sizes, owner=o)
        check_choice(self.activation, "activation", activations.ACTIVATIONS, owner=o)
        self.dtype_ = check_dtype(self.dtype, owner=o)
        check_param(self.lr, "lr", o, low=0.0)
        check_param(self.epochs, "epochs", o, kind=numbers.Integral, low=1, low_inclusive=True)
        check_param(
            self.batch_size, "batch_size", o, kind=numbers.Integral, low=1, low_inclusive=True
        )
        check_param(self.verbose, "verbose", o, kind=bool)
        check_choice(self.lr_schedule, "lr_schedule", ("constant", "cosine"), owner=o)
        self._rng = check_random_state(self.random_state, owner=o)
        self._lr_now = self.lr

    def _on_runtime(self) -> None:
        self._buffers: dict[int, _Buffers] = {}
        self._pool = None

    def _to_runtime_device(self) -> None:
        """Weights onto the backend's device after ``load`` (which restores host arrays)."""
        xp = self._xp
        self.W_ = [None] + [xp.asarray(w) for w in self.W_[1:]]
        self.b_ = [xp.asarray(b) for b in self.b_]

    def _buf(self, n: int) -> _Buffers:
        if n not in self._buffers:
            if len(self._buffers) > 2:
                self._buffers.clear()
            self._buffers[n] = _Buffers(self._xp, self.sizes_, n, self.dtype_)
        return self._buffers[n]

    # -- data ----------------------------------------------------------------
    def _check_X(self, X: Any, width: int, name: str = "X") -> Any:
        return check_array(
            X, name, type(self).__name__, shape=(None, width), dtype=self.dtype_, xp=self._xp
        )

    def _prepare(self, X: Any, y: Any, fitting: bool) -> tuple[Any, Any]:
        """Validate parameters (when fitting), the inputs and the targets."""
        if fitting:
            self._validate()
            self._setup_runtime(X)
        else:
            self._ensure_runtime()
        X = self._check_X(X, self._n_in())
        if y is None:
            self._check_supervision(False, fitting)
            return X, None
        self._check_supervision(True, fitting)
        Y = self._targets(y, fitting=fitting)
        if Y.shape[0] != X.shape[0]:
            raise ValidationError(
                f"{type(self).__name__}: X has {X.shape[0]} samples but y has {Y.shape[0]}; "
                "they must match."
            )
        return X, Y

    def _targets(self, y: Any, fitting: bool) -> Any:
        """Labels → one-hot targets (``classes_`` learned at fit), or 2-D targets as given.

        Fitting on one-hot targets (every row a single 1, zeros elsewhere) makes a
        classifier too: ``classes_`` is ``0 .. n_out - 1`` (the output units) and
        ``one_hot_`` is True, so :meth:`score` gives the accuracy for labels or
        one-hot targets alike.
        """
        o = type(self).__name__
        xp = self._xp
        n_out = self.sizes_[-1]
        y_arr = y if array_namespace(y) is not np else np.asarray(y)
        if y_arr.ndim == 1:
            self._check_labels(to_numpy(y_arr), "y")
            if fitting and not hasattr(self, "classes_"):
                classes = np.unique(to_numpy(y_arr))
                if classes.size > n_out:
                    raise ValidationError(
                        f"{o}.fit: y has {classes.size} classes but the output layer has "
                        f"{n_out} units; use sizes=(..., {classes.size})."
                    )
                self.classes_ = classes
            if not hasattr(self, "classes_"):
                raise ValidationError(
                    f"{o}: got labels y but the model was trained on real-valued targets; "
                    "pass y of shape (n_samples, n_outputs)."
                )
            host = to_numpy(y_arr)
            idx = np.searchsorted(self.classes_, host)
            idx = np.clip(idx, 0, self.classes_.size - 1)
            if not np.all(self.classes_[idx] == host):
                unknown = sorted(set(host.tolist()) - set(self.classes_.tolist()))[:5]
                raise ValidationError(f"{o}: y has labels {unknown} not seen during fit.")
            T = np.zeros((host.size, n_out), dtype=self.dtype_)
            T[np.arange(host.size), idx] = 1.0
            return xp.asarray(T) if xp is not np else T
        Y = check_array(y_arr, "y", o, shape=(None, n_out), dtype=self.dtype_, xp=xp)
        if fitting and not hasattr(self, "classes_") and _is_one_hot(to_numpy(Y)):
            self.classes_ = np.arange(n_out)
            self.one_hot_ = True
        return Y

    def _check_labels(self, labels: np.ndarray, name: str) -> None:
        """Class labels must be numbers or strings, and never NaN."""
        o = type(self).__name__
        if labels.dtype.kind not in "biufUS":
            raise ValidationError(
                f"{o}.{name}: expected class labels (numbers or strings), got dtype "
                f"{labels.dtype}."
            )
        if labels.dtype.kind == "f" and not np.isfinite(labels).all():
            n_bad = int((~np.isfinite(labels)).sum())
            raise ValidationError(
                f"{o}.{name}: contains {n_bad} NaN or infinite label(s); drop those samples "
                f"or give them a class."
            )

    def _score_labels(self, y: Any, n: int) -> np.ndarray:
        """Labels of ``y`` given as labels (n,) or one-hot targets (n, n_out), for score."""
        o = type(self).__name__
        n_out = self.sizes_[-1]
        host = to_numpy(y) if array_namespace(y) is not np else np.asarray(y)
        if host.ndim == 2 and host.shape[1] == n_out and _is_one_hot(host):
            idx = np.argmax(host, axis=1)
            if np.any(idx >= self.classes_.size):
                raise ValidationError(
                    f"{o}.score: y is one-hot over {n_out} units but the model has "
                    f"{self.classes_.size} classes; columns {self.classes_.size}.. are unused."
                )
            labels = self.classes_[idx]
        elif host.ndim == 1:
            self._check_labels(host, "y")
            labels = host
        else:
            raise ValidationError(
                f"{o}.score: y must be class labels of shape (n,) or one-hot targets of shape "
                f"(n, {n_out}) for a classifier, got shape {tuple(host.shape)}; for one-hot "
                "targets every row needs a single 1."
            )
        if labels.shape[0] != n:
            raise ValidationError(
                f"{o}.score: X has {n} samples but y has {labels.shape[0]}; they must match."
            )
        return labels

    def _init_weights(self) -> None:
        W, b = init_weights(self.sizes_, self._rng, self.dtype_)
        xp = self._xp
        self.W_ = [None] + [xp.asarray(w) for w in W[1:]]
        self.b_ = [xp.asarray(v) for v in b]

    # -- feed-forward pass -----------------------------------------------------
    def _forward(self, X: Any, buf: _Buffers) -> None:
        """Feed-forward sweep: ``x_l = mu_l`` for all layers above the clamped input."""
        k, act, L = self._k, self.activation, len(self.sizes_) - 1
        buf.x[0][...] = X
        k["pc_activate"](buf.x[0], buf.fx[0], buf.dfx[0], act)
        for l in range(1, L + 1):
            k["pc_predict"](self.W_[l], buf.fx[l - 1], buf.z[l])
            buf.x[l][...] = buf.z[l] + self.b_[l]
            k["pc_activate"](buf.x[l], buf.fx[l], buf.dfx[l], act)

    # -- fitting (all or nothing) ----------------------------------------------
    _LEARNED = ("classes_", "one_hot_", "n_features_in_", "W_", "b_", "history_")

    def fit(self, X: Any, y: Any = None, *, validation_data: Any = None) -> _LayeredNet:
        """Learn weights from scratch for ``epochs`` passes over mini-batches.

        Parameters
        ----------
        X : array of shape (n_samples, n_input)
            Inputs (discriminative) or data clamped at the bottom (generative PCN).
        y : array of shape (n_samples,) or (n_samples, n_output), optional
            Class labels (one-hot targets are made) or real-valued targets.
            Required for supervised models; not accepted by a generative PCN.
        validation_data : tuple (X_val, y_val), optional
            Scored after every epoch into ``history_["val_accuracy"]``.

        Returns
        -------
        self
            The fitted model. If fitting fails (bad input, divergence), the model
            is left unfitted: no half-written state.
        """
        return super().fit(X, y, validation_data=validation_data)

    def partial_fit(self, X: Any, y: Any = None) -> _LayeredNet:
        """One pass over ``X`` in mini-batches, starting from the current weights.

        The first call initialises the model (as ``fit`` with one epoch). If the
        pass fails, the weights and history are restored to what they were.
        """
        return super().partial_fit(X, y)

    def _init_fit(self, X: Any, y: Any = None, validation_data: Any = None) -> tuple:
        X, Y = self._prepare(X, y, fitting=True)
        self._init_weights()
        self.n_features_in_ = self._n_in()
        return X, Y, validation_data

    def _fit_data(self, X: Any, y: Any = None) -> tuple:
        X, Y = self._prepare(X, y, fitting=False)
        return X, Y, None

    def _epoch(self, data: tuple, epoch: int, n_epochs: int) -> dict[str, float]:
        X, y, validation_data = data
        n = X.shape[0]
        self._lr_now = self._scheduled_lr(epoch, n_epochs)
        energies = []
        for idx in self._batches(n, shuffle=True):
            energies.append(self._train_batch(take(X, idx), None if y is None else take(y, idx)))
        # one device->host sync per epoch
        row = {"energy": float(sum(to_numpy(v) for v in energies)) / n}
        if validation_data is not None and hasattr(self, "classes_"):
            row["val_accuracy"] = self.score(*validation_data)
        return row

    def _forward_all(self, X: Any, method: str) -> Any:
        """Feed-forward outputs of all of ``X`` in batches (``method`` names the caller)."""
        self._check_fitted(method)
        X, _ = self._prepare(X, None, fitting=False)
        outs = []
        for start in range(0, X.shape[0], self.batch_size):
            Xb = X[start:start + self.batch_size]
            buf = self._buf(Xb.shape[0])
            with blas_threads():
                self._forward(Xb, buf)
            outs.append(buf.x[-1].copy())
        return self._xp.concatenate(outs)

    # -- protocol helpers --------------------------------------------------------
    def _batches(self, n: int, shuffle: bool):
        order = self._rng.permutation(n) if shuffle else np.arange(n)
        for start in range(0, n, self.batch_size):
            yield order[start:start + self.batch_size]

    def _state(self) -> dict[str, np.ndarray]:
        state = {f"W_{l}": to_numpy(w) for l, w in enumerate(self.W_) if w is not None}
        state.update({f"b_{l}": to_numpy(v) for l, v in enumerate(self.b_)})
        if hasattr(self, "classes_"):
            state["classes_"] = np.asarray(self.classes_)
        if getattr(self, "one_hot_", False):
            state["one_hot_"] = np.asarray(True)
        return state

    def _expected_shapes(self) -> dict[str, tuple[int, ...]]:
        sizes = check_sizes(self.sizes, owner=type(self).__name__)
        shapes = {f"W_{l}": (sizes[l], sizes[l - 1]) for l in range(1, len(sizes))}
        shapes.update({f"b_{l}": (sizes[l],) for l in range(len(sizes))})
        return shapes

    def _set_state(self, state: dict[str, np.ndarray]) -> None:
        self._validate()
        L = len(self.sizes_) - 1
        self.W_ = [None] + [state[f"W_{l}"].astype(self.dtype_) for l in range(1, L + 1)]
        self.b_ = [state[f"b_{l}"].astype(self.dtype_) for l in range(L + 1)]
        if "classes_" in state:
            self.classes_ = state["classes_"]
        if "one_hot_" in state and bool(state["one_hot_"]):
            self.one_hot_ = True
        self.n_features_in_ = self._n_in()

    def _scheduled_lr(self, epoch: int, epochs: int) -> float:
        """``lr`` for this epoch: constant, or cosine decay ``lr (1 + cos(pi e/E)) / 2``."""
        if self.lr_schedule == "cosine" and epochs > 1:
            return self.lr * 0.5 * (1.0 + math.cos(math.pi * epoch / epochs))
        return self.lr

    def predict(self, X: Any) -> Any:
        """Class labels (if fitted on labels) or output values of the feed-forward pass
        (fitted on real-valued or one-hot targets)."""
        out = self._forward_all(X, "predict")
        if hasattr(self, "classes_") and not getattr(self, "one_hot_", False):
            # one output unit per class; spare units are unused
            k = self.classes_.size
            return self.classes_[to_numpy(self._xp.argmax(out[:, :k], axis=1))]
        return out

    def score(self, X: Any, y: Any = None) -> float:
        """Accuracy for a classifier; minus the mean :meth:`energy` otherwise.

        A classifier (fitted on labels or on one-hot targets) takes ``y`` as labels
        of shape (n,) or one-hot targets of shape (n, n_out), either way, and
        returns the fraction of samples whose largest output unit is the right
        class. A network fitted on real-valued targets, or a generative one,
        returns minus the mean :meth:`energy` (larger is better).
        """
        self._check_fitted("score")
        if y is not None and hasattr(self, "classes_"):
            out = self._forward_all(X, "score")
            labels = self._score_labels(y, out.shape[0])
            k = self.classes_.size
            pred = self.classes_[to_numpy(self._xp.argmax(out[:, :k], axis=1))]
            return float(np.mean(pred == labels))
        return -float(to_numpy(self.energy(X, y)).mean())


class PCN(_LayeredNet):
    r"""Predictive-coding network: discriminative or generative, standard or incremental.

    Parameters
    ----------
    sizes : sequence of int
        Layer widths from :math:`x_0` to :math:`x_L`. Discriminative: ``(n_input,
        ..., n_output)``. Generative: ``(n_latent, ..., n_pixels)``, the data sit
        at the bottom (last) layer.
    mode : {"discriminative", "generative"}
        Which layers are clamped (see the module docstring). A generative
        network starts its latents at the prior mean ``b_0 = 0``, where ReLU and
        its derivative vanish: use tanh, sigmoid or linear there (with ReLU only
        the biases would learn).
    activation : {"tanh", "relu", "sigmoid", "linear"}
        Nonlinearity :math:`f`, applied to a layer's value before it predicts
        the next one.
    T : int
        Inference steps per sample (Euler steps of the activities).
    gamma : float
        Inference step size :math:`\gamma` (activities).
    lr : float
        Learning rate :math:`\eta` (weights), on the batch-mean update. The
        output error is scaled by :math:`\pi_L`, so the effective rate at the
        output is :math:`\eta \pi_L` (compare it with the MLP's rate).
    lr_schedule : {"constant", "cosine"}
        Per-epoch learning rate: constant, or cosine decay from ``lr`` to 0.
    update : {"standard", "incremental"}
        ``"standard"``: one weight update after ``T`` inference steps.
        ``"incremental"``: a weight update at every inference step (iPC).
    fixed_prediction : bool
        Hold predictions and :math:`f'` at their feed-forward values.
    precisions : sequence of float, optional
        :math:`\pi_l` for layers ``0..L`` (default all 1). In discriminative
        mode :math:`\pi_0` is unused (the input is clamped).
    epochs : int
        Passes over the data in :meth:`fit`.
    batch_size : int
        Mini-batch size.
    dtype : {"float32", "float64"}
        Floating-point precision of all arrays.
    backend : {"auto", "numpy", "numba", "cupy"}
        Where and how to compute (see :mod:`predcode.backend`).
    random_state : int, numpy.random.Generator or None
        Seed of weight initialisation and shuffling.
    check_divergence : bool
        Raise :class:`~predcode.exceptions.DivergenceError` when settling
        diverges (energy non-finite or rising above twice its start).
    n_jobs : int
        CPU threads that settle a mini-batch (default 1). Settling is independent
        per sample given the weights, so with ``n_jobs > 1`` the batch's rows are
        split into ``n_jobs`` contiguous blocks settled at once in threads (the
        compiled kernels and BLAS release the GIL), each with one BLAS thread,
        into row views of the same buffers; the weight update then runs on the
        whole batch as before. The result equals ``n_jobs=1`` up to the summation
        order of the energy. Used by ``update="standard"`` on the host backends;
        ``update="incremental"`` (weights move within the settling) and CuPy run
        in one thread.
    verbose : bool
        Show a progress bar during :meth:`fit`.

    Attributes
    ----------
    W_, b_ : list of arrays
        Weights ``W_[l]`` (``(n_l, n_{l-1})``, ``W_[0]`` is None) and biases; in
        generative mode ``b_[0]`` is the prior mean of the latents.
    history_ : dict of list
        ``"energy"`` (mean settled energy per sample, per epoch) and, with
        validation data, ``"val_accuracy"``.
    classes_ : ndarray
        Class labels, when fitted on labels.
    backend_ : str
        The concrete backend in use.

    Examples
    --------
    >>> from predcode.datasets import load_digits_split
    >>> Xtr, ytr, Xte, yte = load_digits_split(random_state=0)
    >>> net = PCN(sizes=(64, 64, 10), epochs=2, random_state=0).fit(Xtr, ytr)
    >>> net.score(Xte, yte) > 0.5
    True
    """

    def __init__(
        self,
        sizes=(64, 64, 10),
        *,
        mode: str = "discriminative",
        activation: str = "tanh",
        T: int = 20,
        gamma: float = 0.1,
        lr: float = 0.05,
        lr_schedule: str = "constant",
        update: str = "standard",
        fixed_prediction: bool = False,
        precisions=None,
        epochs: int = 10,
        batch_size: int = 32,
        dtype: str = "float32",
        backend: str = "auto",
        random_state=None,
        check_divergence: bool = True,
        n_jobs: int = 1,
        verbose: bool = False,
    ):
        self.sizes = sizes
        self.mode = mode
        self.activation = activation
        self.T = T
        self.gamma = gamma
        self.lr = lr
        self.lr_schedule = lr_schedule
        self.update = update
        self.fixed_prediction = fixed_prediction
        self.precisions = precisions
        self.epochs = epochs
        self.batch_size = batch_size
        self.dtype = dtype
        self.backend = backend
        self.random_state = random_state
        self.check_divergence = check_divergence
        self.n_jobs = n_jobs
        self.verbose = verbose

    # -- validation ------------------------------------------------------------
    def _validate(self) -> None:
        o = "PCN"
        check_param(self.n_jobs, "n_jobs", o, kind=numbers.Integral, low=1, low_inclusive=True)
        self._validate_common()
        check_choice(self.mode, "mode", ("discriminative", "generative"), owner=o)
        check_choice(self.update, "update", ("standard", "incremental"), owner=o)
        check_param(self.T, "T", o, kind=numbers.Integral, low=1, low_inclusive=True)
        check_param(self.gamma, "gamma", o, low=0.0)
        check_param(self.fixed_prediction, "fixed_prediction", o, kind=bool)
        check_param(self.check_divergence, "check_divergence", o, kind=bool)
        if self.fixed_prediction and self.update == "incremental":
            raise ValidationError(
                "PCN.fixed_prediction=True cannot be combined with update='incremental': "
                "the predictions would be held fixed while the weights that make them "
                "change; use update='standard' with fixed_prediction=True."
            )
        n_layers = len(self.sizes_)
        if self.precisions is None:
            self.precisions_ = (1.0,) * n_layers
        else:
            if isinstance(self.precisions, (str, bytes)) or not hasattr(self.precisions, "__len__"):
                raise ValidationError(
                    f"PCN.precisions: expected a sequence of {n_layers} positive numbers, "
                    f"got {self.precisions!r}."
                )
            if len(self.precisions) != n_layers:
                raise ValidationError(
                    f"PCN.precisions: expected {n_layers} values (one per layer of sizes="
                    f"{self.sizes_}), got {len(self.precisions)}."
                )
            for i, p in enumerate(self.precisions):
                check_param(p, f"precisions[{i}]", o, low=0.0)
            self.precisions_ = tuple(float(p) for p in self.precisions)
        if self.fixed_prediction:
            pi_max = max(self.precisions_[l] for l in self._free_layers())
            if self.gamma * pi_max >= 2.0:
                raise ValidationError(
                    f"PCN.gamma={self.gamma:g}: with fixed predictions the error of layer l "
                    f"relaxes by a factor (1 - gamma pi_l) per step, which diverges for "
                    f"gamma pi_l >= 2 (largest hidden precision here {pi_max:g}); use "
                    f"gamma < {2.0 / pi_max:g} (gamma = 1/pi_l reaches the backprop errors in "
                    "L-1 steps)."
                )

    def _n_in(self) -> int:
        return self.sizes_[0] if self.mode == "discriminative" else self.sizes_[-1]

    # -- the settling loop -------------------------------------------------------
    def _free_layers(self) -> range:
        L = len(self.sizes_) - 1
        return range(1, L) if self.mode == "discriminative" else range(0, L)

    def _initial_state(self, X: Any, buf: _Buffers) -> None:
        """Feed-forward (discriminative) or top-down prior (generative) initialisation."""
        if self.mode == "discriminative":
            self._forward(X, buf)
            return
        k, act, L = self._k, self.activation, len(self.sizes_) - 1
        buf.z[0][...] = 0
        buf.x[0][...] = self.b_[0]
        k["pc_activate"](buf.x[0], buf.fx[0], buf.dfx[0], act)
        for l in range(1, L + 1):
            k["pc_predict"](self.W_[l], buf.fx[l - 1], buf.z[l])
            if l < L:
                buf.x[l][...] = buf.z[l] + self.b_[l]
                k["pc_activate"](buf.x[l], buf.fx[l], buf.dfx[l], act)
        buf.x[L][...] = X

    def _settle(self, buf: _Buffers, clamp_top: bool, learn: bool) -> list:
        """Run ``T`` inference steps on ``buf`` (already initialised); return energies.

        The returned list holds the total energy of the batch before each step
        and after the last (``T + 1`` values, device scalars). On exit ``buf.eps``
        holds the errors of the final state, ready for the Hebbian update.
        With ``learn`` and ``update="incremental"`` weights move every step.
        """
        k, act = self._k, self.activation
        L = len(self.sizes_) - 1
        pis, gamma = self.precisions_, self.gamma
        free = list(self._free_layers())
        if not clamp_top:  # discriminative inference without a target: output is free
            return self._settle_free_output(buf)
        incremental = learn and self.update == "incremental"
        refresh = not self.fixed_prediction
        # z_1 = W_1 f(x_0) is constant while the input is clamped and W_1 is fixed
        first_pred = 2 if (self.mode == "discriminative" and not incremental) else 1
        lr = self._lr_now
        energies = []
        for _ in range(self.T):
            if refresh:
                for l in range(first_pred, L + 1):
                    k["pc_predict"](self.W_[l], buf.fx[l - 1], buf.z[l])
            E = k["pc_error"](buf.x[L], buf.z[L], self.b_[L], pis[L], buf.eps[L])
            for l in reversed(free):
                k["pc_feedback"](self.W_[l + 1], buf.eps[l + 1], buf.bu[l])
                if incremental:  # gradient at the current state, before x_l moves
                    k["pc_hebbian"](self.W_[l + 1], self.b_[l + 1], buf.eps[l + 1],
                                    buf.fx[l], lr)
                E = E + k["pc_settle_step"](
                    buf.x[l], buf.z[l], self.b_[l], buf.bu[l], buf.fx[l], buf.dfx[l],
                    buf.eps[l], gamma, pis[l], act, refresh,
                )
            if incremental:
                self._hebbian_bottom(buf, lr)
            energies.append(E)
        energies.append(self._evaluate(buf, first_pred if refresh else L + 1))
        return energies

    def _settle_free_output(self, buf: _Buffers) -> list:
        # With x_0 clamped and x_L free, F has its minimum 0 at the feed-forward pass,
        # where the settling starts: nothing moves.
        xp = self._xp
        for l in range(len(self.sizes_)):
            buf.eps[l][...] = 0
        return [xp.zeros((), dtype=self.dtype_)] * (self.T + 1)

    def _evaluate(self, buf: _Buffers, first_pred: int) -> Any:
        """Errors and energy of the current state; predictions of layers >= first_pred
        are recomputed first."""
        k, L, pis = self._k, len(self.sizes_) - 1, self.precisions_
        free = list(self._free_layers())
        for l in range(first_pred, L + 1):
            k["pc_predict"](self.W_[l], buf.fx[l - 1], buf.z[l])
        E = k["pc_error"](buf.x[L], buf.z[L], self.b_[L], pis[L], buf.eps[L])
        for l in free:
            E = E + k["pc_error"](buf.x[l], buf.z[l], self.b_[l], pis[l], buf.eps[l])
        return E

    def _hebbian_bottom(self, buf: _Buffers, lr: float) -> None:
        """Update of the lowest free layer's incoming parameters."""
        if self.mode == "discriminative":
            self._k["pc_hebbian"](self.W_[1], self.b_[1], buf.eps[1], buf.fx[0], lr)
        else:  # prior mean of the latents: b_0 += lr mean(eps_0)
            n = buf.eps[0].shape[0]
            self.b_[0] += (lr / n) * buf.eps[0].sum(axis=0)

    def _hebbian_all(self, buf: _Buffers, lr: float) -> None:
        L = len(self.sizes_) - 1
        start = 2 if self.mode == "discriminative" else 1
        for l in range(start, L + 1):
            self._k["pc_hebbian"](self.W_[l], self.b_[l], buf.eps[l], buf.fx[l - 1], lr)
        self._hebbian_bottom(buf, lr)

    def _settle_batch(self, X: Any, Y: Any, learn: bool) -> tuple[_Buffers, list]:
        """Initialise the batch ``X`` (targets ``Y`` clamped if given) and settle it.

        With ``n_jobs > 1`` (see the class doc) row blocks settle in threads; the
        energies are the blocks' sums, step by step.
        """
        buf = self._buf(X.shape[0])
        clamp_top = self.mode == "generative" or Y is not None
        blocks = self._row_blocks(X.shape[0], learn)

        def settle(sl: slice) -> list:
            part = buf if len(blocks) == 1 else buf.rows(sl)
            self._initial_state(X[sl], part)
            if Y is not None:
                part.x[-1][...] = Y[sl]
            return self._settle(part, clamp_top=clamp_top, learn=learn)

        if len(blocks) == 1:
            return buf, settle(blocks[0])
        parts = list(self._thread_pool().map(settle, blocks))
        return buf, [sum(e[t] for e in parts) for t in range(len(parts[0]))]

    def _row_blocks(self, n: int, learn: bool) -> list[slice]:
        jobs = int(getattr(self, "n_jobs", 1))
        if (jobs == 1 or n < 2 * jobs or self.backend_ == "cupy"
                or (learn and self.update == "incremental")):
            return [slice(0, n)]
        edges = [round(i * n / jobs) for i in range(jobs + 1)]
        return [slice(a, b) for a, b in zip(edges[:-1], edges[1:], strict=True)]

    def _thread_pool(self):
        jobs = int(self.n_jobs)
        if self._pool is None or self._pool[0] != jobs:
            from concurrent.futures import ThreadPoolExecutor

            self._pool = (jobs, ThreadPoolExecutor(max_workers=jobs,
                                                   thread_name_prefix="predcode-pcn"))
        return self._pool[1]

    def _diverged(self, energies: list) -> int | None:
        # Fixed predictions are not descent on F (errors grow from 0 to the backprop
        # deltas): only finiteness is checked; their step is bounded in _validate.
        return first_divergent_step(energies, self.dtype_, monotone=not self.fixed_prediction)

    def _stable_gamma(self, X: Any, Y: Any) -> float | None:
        """Largest gamma / 2^k that settles this batch without diverging."""
        gamma = self.gamma

        def settles(trial: float) -> bool:
            self.gamma = trial
            try:
                return self._diverged(self._settle_batch(X, Y, learn=False)[1]) is None
            finally:
                self.gamma = gamma

        return verified_smaller_step(gamma, settles)

    def _train(self, data: Any, n_epochs: int) -> None:
        # The weights this call starts from: a batch that diverges while learning is
        # settled again with them, to tell a too-large lr from a too-large gamma.
        self._start_weights = ([w.copy() for w in self.W_[1:]], [b.copy() for b in self.b_])
        try:
            super()._train(data, n_epochs)
        finally:
            del self._start_weights

    @contextlib.contextmanager
    def _with_weights(self, weights: tuple[list, list]):
        """Temporarily settle with other weights (``(W_1..W_L, b_0..b_L)``)."""
        keep = self.W_, self.b_
        self.W_, self.b_ = [None, *weights[0]], list(weights[1])
        try:
            yield
        finally:
            self.W_, self.b_ = keep

    def _run(self, X: Any, Y: Any, learn: bool) -> tuple[_Buffers, list]:
        buf, energies = self._settle_batch(X, Y, learn=learn)
        if self.check_divergence:
            t = self._diverged(energies)
            if t is not None:
                start = getattr(self, "_start_weights", None) if learn else None
                if start is None:
                    raise_divergence("PCN", "gamma", self.gamma, t, self.T, energies,
                                     self._stable_gamma(X, Y))
                # Who is at fault: settle this batch again, without learning, with the
                # weights training started from. If it settles, the weight updates (lr)
                # broke it; if not, the inference step gamma is too large for it anyway.
                with self._with_weights(start):
                    t0 = self._diverged(energies0 := self._settle_batch(X, Y, learn=False)[1])
                    if t0 is not None:
                        raise_divergence("PCN", "gamma", self.gamma, t0, self.T, energies0,
                                         self._stable_gamma(X, Y))
                raise DivergenceError(
                    f"PCN.lr={self.lr:g}: learning diverged: after weight updates, settling "
                    f"at gamma={self.gamma:g} diverged at inference step {t} of {self.T}, "
                    f"though this batch settles at that gamma with the weights training "
                    f"started from; use a smaller lr, e.g. lr={self.lr / 10:g}."
                )
        return buf, energies

    def _train_batch(self, Xb: Any, Yb: Any) -> Any:
        buf, energies = self._run(Xb, Yb, learn=True)
        if self.update == "standard":
            self._hebbian_all(buf, self._lr_now)
        return energies[-1]

    # -- public protocol ------------------------------------------------------------
    def _check_supervision(self, has_y: bool, fitting: bool) -> None:
        if has_y and self.mode == "generative":
            raise ValidationError(
                "PCN: generative mode learns p(X) and takes no y; drop y, or use "
                "mode='discriminative' for supervised learning."
            )
        if fitting and not has_y and self.mode == "discriminative":
            raise ValidationError(
                "PCN.fit: discriminative mode needs targets y (labels or (n, n_out) "
                "array); for unsupervised learning use mode='generative'."
            )

    def _settled(self, X: Any, y: Any, method: str):
        """Yield ``(batch buffers, slice)`` of settled states for all of ``X``."""
        self._check_fitted(method)
        X, Y = self._prepare(X, y, fitting=False)
        for start in range(0, X.shape[0], self.batch_size):
            sl = slice(start, start + self.batch_size)
            with blas_threads():
                buf, _ = self._run(X[sl], None if Y is None else Y[sl], learn=False)
            yield buf, sl

    def infer(self, X: Any, y: Any = None, *, return_all: bool = False) -> Any:
        """Settled latent activities given ``X`` (and targets ``y`` if given).

        Returns
        -------
        array or list of arrays
            Generative mode: the latent causes :math:`x_0`, shape (n, sizes[0]).
            Discriminative: the last hidden layer :math:`x_{L-1}` (without ``y``
            this is the feed-forward pass, the minimum of F). With
            ``return_all=True``, the list of all layers ``x_0 .. x_L``.
        """
        parts = [[v.copy() for v in buf.x] for buf, _ in self._settled(X, y, "infer")]
        layers = [self._xp.concatenate([p[l] for p in parts]) for l in range(len(self.sizes_))]
        if return_all:
            return layers
        return layers[0] if self.mode == "generative" else layers[-2]

    def energy(self, X: Any, y: Any = None) -> Any:
        r"""Per-sample energy :math:`F` after settling, shape (n_samples,).

        Discriminative mode needs ``y`` (with the output free the minimum is 0).
        """
        if self.mode == "discriminative" and y is None:
            raise ValidationError(
                "PCN.energy: discriminative mode needs targets y; with the output free, "
                "the settled energy is 0 for every sample."
            )
        out = []
        for buf, _ in self._settled(X, y, "energy"):
            per = 0.0
            for l, pi in enumerate(self.precisions_):
                if self.mode == "discriminative" and l == 0:
                    continue
                per = per + (0.5 / pi) * (buf.eps[l] * buf.eps[l]).sum(axis=1)
            out.append(per)
        return self._xp.concatenate(out)

    def settle_trajectory(self, X: Any, y: Any = None) -> np.ndarray:
        """Total energy of the batch ``X`` at each of the ``T + 1`` inference states.

        Weights are not changed, and divergence is *not* raised: this is the
        tool to look at (and test) the settling, unstable step sizes included.
        """
        self._check_fitted("settle_trajectory")
        X, Y = self._prepare(X, y, fitting=False)
        with blas_threads():
            _, energies = self._settle_batch(X, Y, learn=False)
        return np.array([float(to_numpy(e)) for e in energies])

    def weight_updates(self, X: Any, y: Any = None) -> list:
        r"""The Hebbian updates :math:`\varepsilon_l f(x_{l-1})^\top / n` (per unit rate).

        Computed at the settled state of the batch ``X`` without changing the
        weights; equal to :math:`-\partial \bar F / \partial W_l` of the batch-mean
        energy. Element ``l`` is ``None`` for ``l = 0``.
        """
        self._check_fitted("weight_updates")
        X, Y = self._prepare(X, y, fitting=False)
        with blas_threads():
            buf, _ = self._run(X, Y, learn=False)
        n = X.shape[0]
        out: list = [None]
        for l in range(1, len(self.sizes_)):
            out.append((buf.eps[l].T @ buf.fx[l - 1]) / n)
        return out

    def forward(self, X: Any) -> Any:
        """Output of the feed-forward pass (discriminative) — the network's prediction."""
        if self.mode != "discriminative":
            raise ValidationError(
                "PCN.forward: only discriminative networks map inputs to outputs; "
                "for a generative one use infer (latents) or reconstruct (data)."
            )
        return self._forward_all(X, "forward")

    def reconstruct(self, X: Any) -> Any:
        """Generative mode: the prediction of the data from the settled latents."""
        if self.mode != "generative":
            raise ValidationError("PCN.reconstruct: only for mode='generative'.")
        outs = []
        for buf, _ in self._settled(X, None, "reconstruct"):
            outs.append(buf.z[-1] + self.b_[-1])
        return self._xp.concatenate(outs)

    def generate(self, n_samples: int, random_state: Any = None) -> Any:
        """Generative mode: ancestral means from latents drawn from the prior."""
        self._check_fitted("generate")
        if self.mode != "generative":
            raise ValidationError("PCN.generate: only for mode='generative'.")
        check_param(n_samples, "n_samples", "PCN.generate", kind=numbers.Integral, low=0)
        self._ensure_runtime()
        rng = check_random_state(random_state)
        sd = 1.0 / math.sqrt(self.precisions_[0])
        x0 = to_numpy(self.b_[0]) + sd * rng.standard_normal((n_samples, self.sizes_[0]))
        xp = self._xp
        h = xp.asarray(x0.astype(self.dtype_))
        for l in range(1, len(self.sizes_)):
            h = activations.apply(self.activation, h, xp) @ self.W_[l].T + self.b_[l]
        return h


class MLP(_LayeredNet):
    r"""Multilayer perceptron trained by backprop: the baseline of a discriminative PCN.

    Same architecture, initialisation (for the same ``random_state``), batches and
    learning rate as :class:`PCN`: :math:`h_0 = x`, :math:`h_l = W_l f(h_{l-1}) + b_l`,
    loss :math:`\mathcal L = \tfrac12 \lVert t - h_L \rVert^2` per sample. The
    backward pass is written by hand,

    .. math::

        \delta_L = t - h_L, \qquad
        \delta_l = f'(h_l) \odot W_{l+1}^\top \delta_{l+1}, \qquad
        \Delta W_l = \eta\, \delta_l f(h_{l-1})^\top = -\eta\, \partial \mathcal L/\partial W_l,

    and uses the same Hebbian kernel as the PCN for the update.

    Parameters
    ----------
    sizes, activation, lr, lr_schedule, epochs, batch_size, dtype, backend, random_state, verbose
        As for :class:`PCN`.
    """

    def __init__(
        self,
        sizes=(64, 64, 10),
        *,
        activation: str = "tanh",
        lr: float = 0.05,
        lr_schedule: str = "constant",
        epochs: int = 10,
        batch_size: int = 32,
        dtype: str = "float32",
        backend: str = "auto",
        random_state=None,
        verbose: bool = False,
    ):
        self.sizes = sizes
        self.activation = activation
        self.lr = lr
        self.lr_schedule = lr_schedule
        self.epochs = epochs
        self.batch_size = batch_size
        self.dtype = dtype
        self.backend = backend
        self.random_state = random_state
        self.verbose = verbose

    def _validate(self) -> None:
        self._validate_common()

    def _n_in(self) -> int:
        return self.sizes_[0]

    def _backward(self, Y: Any, buf: _Buffers) -> Any:
        """Write ``delta_l`` (= -dL/dh_l) into ``buf.eps``; return the batch loss."""
        L = len(self.sizes_) - 1
        buf.eps[L][...] = Y - buf.x[L]
        loss = 0.5 * (buf.eps[L] * buf.eps[L]).sum()
        for l in range(L - 1, 0, -1):
            self._k["pc_feedback"](self.W_[l + 1], buf.eps[l + 1], buf.bu[l])
            buf.eps[l][...] = buf.dfx[l] * buf.bu[l]
        return loss

    def _train_batch(self, Xb: Any, Yb: Any) -> Any:
        buf = self._buf(Xb.shape[0])
        self._forward(Xb, buf)
        loss = self._backward(Yb, buf)
        for l in range(1, len(self.sizes_)):
            self._k["pc_hebbian"](self.W_[l], self.b_[l], buf.eps[l], buf.fx[l - 1], self._lr_now)
        return loss

    def _check_supervision(self, has_y: bool, fitting: bool) -> None:
        if fitting and not has_y:
            raise ValidationError("MLP.fit: needs targets y (labels or (n, n_out) array).")

    def forward(self, X: Any) -> Any:
        """Network output :math:`h_L`."""
        return self._forward_all(X, "forward")

    def infer(self, X: Any, *, return_all: bool = False) -> Any:
        """Hidden representation :math:`h_{L-1}` (or all layers with ``return_all``)."""
        self._check_fitted("infer")
        X, _ = self._prepare(X, None, fitting=False)
        buf = self._buf(X.shape[0])
        with blas_threads():
            self._forward(X, buf)
        layers = [v.copy() for v in buf.x]
        return layers if return_all else layers[-2]

    def energy(self, X: Any, y: Any) -> Any:
        r"""Per-sample loss :math:`\tfrac12 \lVert t - h_L \rVert^2` (the PCN energy at
        the feed-forward state with the target clamped)."""
        out = self._forward_all(X, "energy")
        _, Y = self._prepare(X, y, fitting=False)
        return 0.5 * ((Y - out) ** 2).sum(axis=1)

    def gradients(self, X: Any, y: Any) -> list:
        r"""Backprop updates :math:`-\partial \bar{\mathcal L}/\partial W_l` (batch-mean loss)."""
        self._check_fitted("gradients")
        X, Y = self._prepare(X, y, fitting=False)
        buf = self._buf(X.shape[0])
        with blas_threads():
            self._forward(X, buf)
            self._backward(Y, buf)
        n = X.shape[0]
        return [None] + [(buf.eps[l].T @ buf.fx[l - 1]) / n for l in range(1, len(self.sizes_))]
