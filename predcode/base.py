"""The model protocol every predcode family implements.

A model is a small class in the scikit-learn style; every learned model of the
lineage (PCN, MLP, RaoBallard, HelmholtzMachine, IJEPA, the world models, DEM,
the active-inference Agent) subclasses :class:`Model`:

* ``__init__`` stores keyword parameters only; ``fit`` validates them;
  ``get_params``/``set_params`` round-trip them;
* ``fit(X, ...)`` learns from scratch for ``epochs`` passes and
  ``partial_fit(X, ...)`` makes exactly one pass from the current state (the
  first call initialises); both return ``self``, both are all-or-nothing (a
  failure restores the state they started from), both run the one training
  loop :func:`predcode.training.run_epochs` (progress bar, history,
  divergence check);
* learned state ends in ``_``; ``history_`` maps a metric to its per-epoch
  values and always holds ``energy`` and ``wall_time_s``;
* ``infer(X)`` returns latents (settled states, recognition pass, encoder output);
* ``energy(X, ...)`` returns one value per sample (per trajectory for the world
  models, whose samples are trajectories), on the data's device, in the unit
  named by the class attribute ``ENERGY_UNIT``: the common yardstick;
* ``score(X, ...)`` returns one float, larger is better;
* ``save(path)`` / ``load(path)`` use ``.npz`` with ``allow_pickle=False``;
  ``pickle`` and ``copy.deepcopy`` work too (runtime handles such as the array
  namespace and the kernels are rebuilt, not copied).

The backend is set up in one place, :meth:`Model._setup_runtime`, from the data:
``backend="auto"`` means cupy for cupy arrays, else numba (else numpy).

Subclasses provide ``_init_fit`` (validate, set up the runtime from the data,
initialise parameters; return the training data), ``_fit_data`` (the training
data for a fitted model), ``_epoch`` (one pass; return the metrics), and
``_state``/``_expected_shapes``/``_set_state`` for persistence.
"""

from __future__ import annotations

import abc
import contextlib
import copy
import inspect
import json
import os
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from ._version import __version__
from .backend import get_namespace, resolve_backend, to_device, to_numpy
from .exceptions import NotFittedError, ValidationError
from .kernels import get_kernels
from .training import run_epochs

__all__ = ["Model", "load_model"]

_FORMAT = "predcode-model/1"
_MODEL_CLASSES: dict[str, type] = {}


class Model(abc.ABC):
    """Base of all predcode models: the protocol, the training entry points, persistence."""

    #: Unit of :meth:`energy` (one value per sample), e.g. ``"nats"`` or ``"bits"``.
    ENERGY_UNIT: str = ""
    #: Names of the kernels the family looks up (in :mod:`predcode.kernels`).
    _KERNELS: tuple[str, ...] = ()
    #: Attributes rebuilt rather than copied (pickle, deepcopy, load).
    _RUNTIME: tuple[str, ...] = ("_xp", "_k")
    #: The parameter a diverging training run names (its step size).
    _DIVERGENCE_PARAM: str = "lr"
    #: The parameter holding the number of passes ``fit`` makes.
    _EPOCHS_PARAM: str = "epochs"

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        _MODEL_CLASSES[cls.__name__] = cls

    # -- parameters ---------------------------------------------------------
    @classmethod
    def _param_names(cls) -> list[str]:
        sig = inspect.signature(cls.__init__)
        return [
            p.name
            for p in sig.parameters.values()
            if p.name != "self" and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)
        ]

    def get_params(self, deep: bool = True) -> dict[str, Any]:
        """Constructor parameters as a dict (``deep`` is accepted for scikit-learn)."""
        return {name: getattr(self, name) for name in self._param_names()}

    def set_params(self, **params: Any) -> Model:
        """Set constructor parameters; unknown names raise."""
        valid = self._param_names()
        for key, value in params.items():
            if key not in valid:
                raise ValidationError(
                    f"{type(self).__name__}.set_params: unknown parameter {key!r}; "
                    f"valid parameters are {valid}."
                )
            setattr(self, key, value)
        return self

    def __repr__(self) -> str:
        sig = inspect.signature(type(self).__init__)
        parts = []
        for name, value in self.get_params().items():
            default = sig.parameters[name].default
            if default is inspect.Parameter.empty or not _same(value, default):
                parts.append(f"{name}={value!r}")
        return f"{type(self).__name__}({', '.join(parts)})"

    # -- the protocol ---------------------------------------------------------
    def fit(self, X: Any, y: Any = None, **fit_params: Any) -> Model:
        """Learn from scratch: ``epochs`` passes over ``X`` (and targets ``y``).

        If fitting fails (bad input, divergence) the model is left unfitted:
        no half-written state.
        """
        self._forget()
        with self._all_or_nothing():
            data = self._init_fit(X, y, **fit_params)
            self.history_ = {}
            self._train(data, getattr(self, self._EPOCHS_PARAM))
        return self

    def partial_fit(self, X: Any, y: Any = None, **fit_params: Any) -> Model:
        """Exactly one pass over ``X`` from the current state (the first call initialises).

        Two calls make the same two passes as ``fit`` with two epochs (same
        ``random_state``). If the pass fails, state and history are restored.
        """
        if not self._is_fitted():
            self._forget()
            with self._all_or_nothing():
                data = self._init_fit(X, y, **fit_params)
                self.history_ = {}
                self._train(data, 1)
            return self
        self._ensure_runtime()
        data = self._fit_data(X, y, **fit_params)
        with self._all_or_nothing():
            self._train(data, 1)
        return self

    def _train(self, data: Any, n_epochs: int) -> None:
        run_epochs(self, lambda i, n: self._epoch(data, i, n), n_epochs)

    @abc.abstractmethod
    def _init_fit(self, X: Any, y: Any = None, **fit_params: Any) -> Any:
        """Validate parameters and data, set up the runtime, initialise; return the data."""

    @abc.abstractmethod
    def _fit_data(self, X: Any, y: Any = None, **fit_params: Any) -> Any:
        """Validate data for a further pass of a fitted model; return it."""

    @abc.abstractmethod
    def _epoch(self, data: Any, epoch: int, n_epochs: int) -> dict[str, float]:
        """One pass over ``data``; return host floats, ``energy`` among them."""

    @abc.abstractmethod
    def infer(self, X: Any, *args: Any, **kwargs: Any) -> Any:
        """Latents of ``X``: settled states, recognition pass or encoder output."""

    @abc.abstractmethod
    def energy(self, X: Any, *args: Any, **kwargs: Any) -> Any:
        """One energy per sample, on the data's device, in :attr:`ENERGY_UNIT`."""

    @abc.abstractmethod
    def score(self, X: Any, *args: Any, **kwargs: Any) -> float:
        """One number, larger is better."""

    # -- runtime: backend, namespace, kernels ---------------------------------------
    def _setup_runtime(self, *arrays: Any) -> None:
        """Resolve the backend from the data and look up the family's kernels (one place)."""
        self.backend_ = resolve_backend(self.backend, *arrays, owner=type(self).__name__)
        self._xp = get_namespace(self.backend_)
        self._k = get_kernels(self._KERNELS, self.backend_)
        self._on_runtime()

    def _on_runtime(self) -> None:
        """Hook after the runtime is (re)built: buffers, caches (default: nothing)."""
        return None

    def _ensure_runtime(self) -> None:
        """Rebuild the runtime of a loaded, unpickled or copied model."""
        if "_xp" in self.__dict__:
            return
        backend = self.__dict__.get("backend_")
        if backend is None:
            self._setup_runtime()
        else:
            self.backend_ = backend
            self._xp = get_namespace(backend)
            self._k = get_kernels(self._KERNELS, backend)
            self._on_runtime()
        self._to_runtime_device()

    def _to_runtime_device(self) -> None:
        """Hook: move the learned arrays to ``self._xp`` after a load (default: nothing)."""
        return None

    def __getstate__(self) -> dict[str, Any]:
        return {k: v for k, v in self.__dict__.items() if k not in self._RUNTIME}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        if "backend_" in state:
            self._ensure_runtime()

    # -- fitted state ---------------------------------------------------------
    #: Names of the learned attributes (subclasses list theirs).
    _LEARNED: tuple[str, ...] = ()

    def _forget(self) -> None:
        """Drop all learned state: the model becomes unfitted."""
        for attr in self._LEARNED:
            if attr in self.__dict__:
                delattr(self, attr)

    @contextlib.contextmanager
    def _all_or_nothing(self):
        """Restore the learned state as it was if the body raises: nothing half-written.

        ``fit`` forgets first, so a failed fit leaves the model unfitted; a failed
        ``partial_fit`` leaves the weights, history and random stream it started from.
        """
        keep = (*self._LEARNED, "_rng")
        saved = {a: copy.deepcopy(self.__dict__[a]) for a in keep if a in self.__dict__}
        try:
            yield
        except BaseException:
            self._forget()
            self.__dict__.update(saved)
            raise

    def _is_fitted(self) -> bool:
        return hasattr(self, "n_features_in_")

    def _check_fitted(self, method: str) -> None:
        if not self._is_fitted():
            raise NotFittedError(
                f"{type(self).__name__}.{method}: the model is not fitted yet; call "
                f"fit(X, ...) or load a saved model first."
            )

    @abc.abstractmethod
    def _state(self) -> dict[str, np.ndarray]:
        """Learned arrays by name (host or device)."""

    @abc.abstractmethod
    def _expected_shapes(self) -> dict[str, tuple[int, ...]]:
        """Shapes of the saved arrays implied by the parameters."""

    @abc.abstractmethod
    def _set_state(self, state: dict[str, np.ndarray]) -> None:
        """Restore learned state from host arrays (``load``)."""

    # -- persistence ----------------------------------------------------------
    def save(self, path: str | os.PathLike) -> Path:
        """Save parameters, learned arrays and history to ``path`` (``.npz``).

        The write is atomic: a temporary file in the same folder is renamed over
        ``path`` only once complete, so a crash never leaves half a file.

        Returns
        -------
        pathlib.Path
            The path written (``.npz`` is appended if missing).
        """
        self._check_fitted("save")
        path = Path(path)
        if path.suffix != ".npz":
            path = path.with_name(path.name + ".npz")
        params = {k: _jsonable(v) for k, v in self.get_params().items()}
        if isinstance(self.get_params().get("random_state"), np.random.Generator):
            params["random_state"] = None  # a Generator cannot be stored as JSON
        try:
            params_json = json.dumps(params)
        except TypeError as exc:
            raise ValidationError(
                f"{type(self).__name__}.save: parameters must be JSON-serialisable ({exc})."
            ) from exc
        arrays: dict[str, np.ndarray] = {
            "__format__": np.array(_FORMAT),
            "__class__": np.array(type(self).__name__),
            "__version__": np.array(__version__),
            "__params__": np.array(params_json),
            "__history__": np.array(json.dumps(getattr(self, "history_", {}))),
        }
        for name, value in self._state().items():
            arrays[f"state/{name}"] = to_numpy(value)
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
        try:
            with os.fdopen(fd, "wb") as fh:
                np.savez(fh, **arrays)
            os.replace(tmp, path)
        except BaseException:
            if os.path.exists(tmp):
                os.unlink(tmp)
            raise
        return path

    @classmethod
    def load(cls, path: str | os.PathLike) -> Model:
        """Load a model saved with :meth:`save`.

        Raises
        ------
        ValidationError
            If the file is not a predcode model, holds another class, or its
            arrays do not have the shapes its parameters imply.
        """
        return load_model(path, expected=cls)


def load_model(path: str | os.PathLike, expected: type | None = None) -> Model:
    """Load any predcode model saved with :meth:`Model.save`."""
    path = Path(path)
    if not path.exists():
        raise ValidationError(f"load: no such file {str(path)!r}.")
    try:
        data = np.load(path, allow_pickle=False)
    except Exception as exc:
        raise ValidationError(f"load: {str(path)!r} is not a readable .npz file ({exc}).") from exc
    with data:
        if "__format__" not in data.files or str(data["__format__"]) != _FORMAT:
            raise ValidationError(f"load: {str(path)!r} is not a predcode model file.")
        name = str(data["__class__"])
        if name not in _MODEL_CLASSES:
            raise ValidationError(f"load: {str(path)!r} holds unknown model class {name!r}.")
        klass = _MODEL_CLASSES[name]
        if expected is not None and expected is not Model and not issubclass(klass, expected):
            raise ValidationError(
                f"load: {str(path)!r} holds a {name}, not a {expected.__name__}; "
                f"use {name}.load or predcode.load_model."
            )
        params = json.loads(str(data["__params__"]))
        for key, value in list(params.items()):
            if isinstance(value, list):
                params[key] = tuple(value)
        model = klass(**params)
        state = {k[len("state/"):]: data[k] for k in data.files if k.startswith("state/")}
        model.saved_version_ = str(data["__version__"])
        model.history_ = json.loads(str(data["__history__"]))
    want = model._expected_shapes()
    missing = sorted(set(want) - set(state))
    if missing:
        raise ValidationError(f"load: {str(path)!r} lacks arrays {missing}.")
    for key, shape in want.items():
        if tuple(state[key].shape) != tuple(shape):
            raise ValidationError(
                f"load: array {key!r} in {str(path)!r} has shape {tuple(state[key].shape)}, "
                f"but the saved parameters imply {tuple(shape)}; the file is corrupt or edited."
            )
        if not np.all(np.isfinite(state[key])) and state[key].dtype.kind == "f":
            raise ValidationError(f"load: array {key!r} in {str(path)!r} has NaN or inf.")
    model._set_state({k: to_device(v, "numpy") for k, v in state.items()})
    model._ensure_runtime()
    return model


def _jsonable(value: Any) -> Any:
    """Plain-Python form of a parameter: numpy scalars, dtypes and arrays included."""
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.dtype):
        return value.name
    if isinstance(value, type) and issubclass(value, np.generic):
        return np.dtype(value).name
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, np.random.Generator):
        return None
    return value


def _same(a: Any, b: Any) -> bool:
    try:
        return bool(a == b)
    except Exception:
        return a is b
