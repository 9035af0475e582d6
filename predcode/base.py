"""The model protocol shared by every predcode family.

A model is a small class in the scikit-learn style:

* ``__init__`` stores keyword parameters only; ``fit`` validates them;
* ``fit(X, ...)`` and ``partial_fit(X, ...)`` return ``self``; learned state
  ends in ``_``; ``history_`` maps a metric name to its per-epoch values;
* ``infer(X)`` returns latents (settled states, recognition pass, encoder output);
* ``energy(X, ...)`` returns a per-sample energy, free energy or loss: the
  common yardstick across families;
* ``save(path)`` / ``load(path)`` use ``.npz`` with ``allow_pickle=False``:
  parameters as JSON, learned arrays by name, the predcode version, an atomic
  write (temporary file + rename) and shapes checked on load.

Subclasses provide ``_state()`` (name → host array of learned state) and
``_expected_shapes()`` (name → shape implied by the parameters).
"""

from __future__ import annotations

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
from .backend import to_device, to_numpy
from .exceptions import NotFittedError, ValidationError

__all__ = ["Model", "load_model"]

_FORMAT = "predcode-model/1"
_MODEL_CLASSES: dict[str, type] = {}


class Model:
    """Base of all predcode models: parameters, fitted checks, save and load."""

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

    def get_params(self) -> dict[str, Any]:
        """Constructor parameters as a dict."""
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
        ``partial_fit`` leaves the weights and history it started from.
        """
        saved = {a: copy.deepcopy(self.__dict__[a]) for a in self._LEARNED if a in self.__dict__}
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

    def _state(self) -> dict[str, np.ndarray]:  # pragma: no cover - abstract
        raise NotImplementedError

    def _expected_shapes(self) -> dict[str, tuple[int, ...]]:  # pragma: no cover - abstract
        raise NotImplementedError

    def _set_state(self, state: dict[str, np.ndarray]) -> None:  # pragma: no cover
        raise NotImplementedError

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
