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
import time
import zipfile
import zlib
from pathlib import Path
from typing import Any

import numpy as np

from ._version import __version__
from .backend import get_namespace, resolve_backend, to_device, to_numpy
from .exceptions import NotFittedError, PredcodeError, ValidationError
from .kernels import get_kernels
from .training import nonfinite_arrays, run_epochs

__all__ = ["Model", "load", "load_model"]

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
    #: dtype kinds (numpy ``dtype.kind`` letters) of saved arrays that are not
    #: floating point; every other array named by :meth:`_expected_shapes` must be.
    _STATE_KINDS: dict[str, str] = {}

    def save(self, path: str | os.PathLike) -> Path:
        """Save parameters, learned arrays and history to ``path`` (``.npz``).

        The write is atomic: a temporary file in the same folder is renamed over
        ``path`` only once complete, so a crash never leaves half a file (and a
        temporary left by a killed save is removed by the next save to ``path``).
        The file gets the usual permissions (``0666`` less the umask; an existing
        file keeps its own).

        Returns
        -------
        pathlib.Path
            The path written: ``.npz`` is appended unless ``path`` already ends
            in it (in any case: ``"m.NPZ"`` stays ``"m.NPZ"``).

        Raises
        ------
        NotFittedError
            If the model is not fitted.
        ValidationError
            If the learned state holds NaN or inf (a diverged model is never
            saved), ``path`` is a directory, or the file cannot be written;
            nothing is written then.
        """
        self._check_fitted("save")
        owner = f"{type(self).__name__}.save"
        path = _target(path, owner)
        state = {name: to_numpy(value) for name, value in self._state().items()}
        bad = nonfinite_arrays(state)
        if bad:
            raise ValidationError(
                f"{owner}: the learned array(s) {bad} hold NaN or inf (training diverged), so "
                f"nothing was written to {str(path)!r}; refit with a smaller "
                f"{self._DIVERGENCE_PARAM}."
            )
        odd = [k for k, v in state.items() if v.dtype.kind not in "biufcUS"]
        if odd:  # an object array would need pickle, which load refuses
            raise ValidationError(
                f"{owner}: the learned array(s) {odd} are not numeric; {type(self).__name__} "
                "cannot be saved without pickle (use pickle.dump for such a model)."
            )
        params = {k: _jsonable(v) for k, v in self.get_params().items()}
        if isinstance(self.get_params().get("random_state"), np.random.Generator):
            params["random_state"] = None  # a Generator cannot be stored as JSON
        try:
            params_json = json.dumps(params)
        except TypeError as exc:
            raise ValidationError(
                f"{owner}: parameters must be JSON-serialisable ({exc})."
            ) from exc
        arrays: dict[str, np.ndarray] = {
            "__format__": np.array(f"{_FORMAT_NAME}/{_FORMAT_VERSION}"),
            "__class__": np.array(type(self).__name__),
            "__version__": np.array(__version__),
            "__params__": np.array(params_json),
            "__history__": np.array(json.dumps(getattr(self, "history_", {}))),
        }
        for name, value in state.items():
            arrays[f"state/{name}"] = value
        _atomic_savez(path, arrays, owner)
        return path

    @classmethod
    def load(cls, path: str | os.PathLike) -> Model:
        """Load a model saved with :meth:`save`.

        Raises
        ------
        ValidationError
            If the file is missing, damaged or edited (one line naming the file
            and what is wrong), holds another class, was written by a newer
            predcode, or its arrays do not have the shapes and types its
            parameters imply.
        """
        return load_model(path, expected=cls)


#: Saved files are ``.npz`` archives whose ``__format__`` entry reads
#: ``"predcode-model/<version>"``. Version 1 is the only one so far; a reader
#: accepts its own version and older ones, and refuses newer ones by name.
_FORMAT_NAME = "predcode-model"
_FORMAT_VERSION = 1
_TMP_SUFFIX = ".tmp"


def _target(path: str | os.PathLike, owner: str) -> Path:
    """The file ``save`` writes: ``.npz`` appended unless present (any case); not a folder."""
    given = Path(path)
    if given.is_dir():
        raise ValidationError(
            f"{owner}: {str(given)!r} is a directory; give a file path such as "
            f"{str(given / 'model.npz')!r}."
        )
    target = given if given.suffix.lower() == ".npz" else given.with_name(given.name + ".npz")
    if target.is_dir():
        raise ValidationError(
            f"{owner}: {str(target)!r} is a directory; give another file name."
        )
    return target


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _remove_stale_temporaries(path: Path) -> None:
    """Delete temporaries of earlier saves to ``path`` whose writing process is gone.

    A temporary is named ``.<name>.<pid>-<random>.tmp``; one whose process no
    longer runs (a save that was killed) is stale. Names without a pid (older
    predcode) count as stale after a minute.
    """
    prefix = f".{path.name}."
    try:
        entries = list(path.parent.iterdir())
    except OSError:
        return
    for entry in entries:
        name = entry.name
        if not (name.startswith(prefix) and name.endswith(_TMP_SUFFIX)):
            continue
        middle = name[len(prefix):-len(_TMP_SUFFIX)]
        pid_text, dash, _ = middle.partition("-")
        try:
            if "." in middle:  # a temporary of another target ("<name>.x.npz")
                continue
            if dash and pid_text.isdigit():
                if not _process_gone(int(pid_text)):
                    continue
            elif len(middle) != 8 or time.time() - entry.stat().st_mtime < 60.0:
                continue  # not mkstemp's 8 characters, or possibly still being written
            entry.unlink()
        except OSError:
            continue


def _process_gone(pid: int) -> bool:
    if pid == os.getpid():
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except (PermissionError, OSError):
        return False  # alive (another user's) or unknowable: keep the file
    return False


def _atomic_savez(path: Path, arrays: dict[str, np.ndarray], owner: str) -> None:
    """Write ``arrays`` to ``path`` through a temporary in the same folder, then rename."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ValidationError(
            f"{owner}: cannot create the folder {str(path.parent)!r} ({_one_line(exc)})."
        ) from exc
    _remove_stale_temporaries(path)
    try:
        mode = path.stat().st_mode & 0o7777 if path.exists() else 0o666 & ~_umask()
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.{os.getpid()}-", suffix=_TMP_SUFFIX,
                                   dir=path.parent)
    except OSError as exc:
        raise ValidationError(
            f"{owner}: cannot write to {str(path.parent)!r} ({_one_line(exc)})."
        ) from exc
    try:
        with os.fdopen(fd, "wb") as fh:
            np.savez(fh, **arrays)
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:  # disk full, interrupted: nothing is left behind
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def _one_line(exc: BaseException) -> str:
    """An exception's text on one line, without numpy's advice to unpickle."""
    text = " ".join(str(exc).split()) or type(exc).__name__
    if "allow_pickle" in text:
        return "it holds pickled Python objects, which predcode never writes"
    return text


def load(path: str | os.PathLike) -> Model:
    """Load any predcode model file: the class stored in the file is rebuilt.

    Parameters
    ----------
    path : str or path-like
        A ``.npz`` file written by :meth:`Model.save`.

    Returns
    -------
    Model
        The model, of the class named in the file (``PCN``, ``DEM``, ...).

    Raises
    ------
    ValidationError
        If the file is missing, damaged, edited or written by a newer predcode.
    """
    return load_model(path)


def load_model(path: str | os.PathLike, expected: type | None = None) -> Model:
    """Load any predcode model saved with :meth:`Model.save` (``expected``: its class)."""
    path = Path(path)
    where = repr(str(path))
    if path.is_dir():
        raise ValidationError(f"load: {where} is a directory, not a model file.")
    if not path.exists():
        raise ValidationError(f"load: no such file {where}.")
    entries = _read_npz(path, where)
    header = _read_header(entries, where)
    name = header["class"]
    if name not in _MODEL_CLASSES:
        raise ValidationError(f"load: {where} holds unknown model class {name!r}.")
    klass = _MODEL_CLASSES[name]
    if expected is not None and expected is not Model and not issubclass(klass, expected):
        raise ValidationError(
            f"load: {where} holds a {name}, not a {expected.__name__}; "
            f"use {name}.load or predcode.load."
        )
    params = header["params"]
    valid = klass._param_names()
    unknown = sorted(set(params) - set(valid))
    if unknown:
        raise ValidationError(
            f"load: {where} gives {name} unknown parameter(s) {unknown} (valid: {valid}); "
            f"the file was edited or written by another predcode ({header['version']})."
        )
    for key, value in list(params.items()):
        if isinstance(value, list):
            params[key] = tuple(value)
    state = {k[len("state/"):]: v for k, v in entries.items() if k.startswith("state/")}
    try:
        model = klass(**params)
        want = model._expected_shapes()
    except PredcodeError as exc:
        if str(exc).startswith(f"{name}.load"):  # the family's own load error (DEM's HDM)
            raise
        raise ValidationError(f"load: {where}: the saved parameters are invalid: {exc}") from exc
    except (TypeError, ValueError, KeyError) as exc:
        raise ValidationError(
            f"load: {where}: the saved parameters do not make a {name} ({_one_line(exc)}); "
            "the file is damaged or was edited."
        ) from exc
    model.saved_version_ = header["version"]
    model.history_ = header["history"]
    missing = sorted(set(want) - set(state))
    if missing:
        raise ValidationError(f"load: {where} lacks arrays {missing}.")
    for key, shape in want.items():
        arr = state[key]
        if tuple(arr.shape) != tuple(shape):
            raise ValidationError(
                f"load: array {key!r} in {where} has shape {tuple(arr.shape)}, "
                f"but the saved parameters imply {tuple(shape)}; the file is corrupt or edited."
            )
        kinds = klass._STATE_KINDS.get(key, "f")
        if arr.dtype.kind not in kinds:
            want_kind = "floating-point" if kinds == "f" else "integer" if kinds in (
                "iu", "biu") else f"dtype kind {kinds!r}"
            raise ValidationError(
                f"load: array {key!r} in {where} has dtype {arr.dtype}, but {name} stores "
                f"{want_kind} values there; the file is corrupt or edited."
            )
        if arr.dtype.kind == "f" and not np.all(np.isfinite(arr)):
            raise ValidationError(f"load: array {key!r} in {where} has NaN or inf.")
    try:
        model._set_state({k: to_device(v, "numpy") for k, v in state.items()})
        model._ensure_runtime()
    except PredcodeError as exc:
        raise ValidationError(f"load: {where}: {exc}") from exc
    except KeyError as exc:
        raise ValidationError(
            f"load: {where} lacks the array {exc.args[0]!r}; the file is corrupt or edited."
        ) from exc
    except (TypeError, ValueError, IndexError) as exc:
        raise ValidationError(
            f"load: {where}: its arrays do not fit a {name} ({_one_line(exc)}); the file is "
            "corrupt or edited."
        ) from exc
    return model


def _read_npz(path: Path, where: str) -> dict[str, np.ndarray]:
    """Every entry of the archive, read (and CRC-checked) now; errors become one line."""
    damaged = (f"load: {where} is damaged or not a predcode model file ({{}}); "
               "save the model again or restore the file.")
    try:
        data = np.load(path, allow_pickle=False)
    except ValueError as exc:
        if "pickle" in str(exc):  # numpy read it as a pickle: not an archive predcode wrote
            raise ValidationError(damaged.format("not a .npz archive")) from None
        raise ValidationError(damaged.format(_one_line(exc))) from exc
    except (OSError, EOFError, zipfile.BadZipFile, zlib.error) as exc:
        raise ValidationError(damaged.format(_one_line(exc))) from exc
    if not isinstance(data, np.lib.npyio.NpzFile):
        raise ValidationError(damaged.format("a single .npy array, not a .npz archive"))
    entries: dict[str, np.ndarray] = {}
    with data:
        for key in data.files:
            try:
                entries[key] = data[key]
            except ValueError as exc:
                if "allow_pickle" in str(exc) or "pickle" in str(exc):
                    raise ValidationError(
                        f"load: {where} holds the entry {key!r} as an object array (pickled "
                        "Python objects), which predcode never writes and will not unpickle; "
                        "the file is damaged, edited or not from predcode."
                    ) from None
                raise ValidationError(damaged.format(f"entry {key!r}: {_one_line(exc)}")) from exc
            except (OSError, EOFError, KeyError, zipfile.BadZipFile, zlib.error) as exc:
                raise ValidationError(damaged.format(f"entry {key!r}: {_one_line(exc)}")) from exc
    return entries


def _read_header(entries: dict[str, np.ndarray], where: str) -> dict[str, Any]:
    """Format version, class, predcode version, parameters and history of a model file."""
    edited = "the file is damaged or was edited"

    def text(key: str, required: bool = True) -> str | None:
        if key not in entries:
            if required:
                raise ValidationError(f"load: {where} lacks the entry {key!r}; {edited}.")
            return None
        arr = entries[key]
        if arr.shape != () or arr.dtype.kind not in "US":
            raise ValidationError(
                f"load: the entry {key!r} in {where} should be one string, got an array of "
                f"dtype {arr.dtype} and shape {arr.shape}; {edited}."
            )
        return str(arr)

    fmt = text("__format__", required=False)
    if fmt is None:
        if "__class__" not in entries or "__params__" not in entries:
            raise ValidationError(f"load: {where} is not a predcode model file.")
        version = 1  # no format entry: read as the first format
    else:
        head, _, number = fmt.partition("/")
        if head != _FORMAT_NAME or not number.isdigit():
            raise ValidationError(f"load: {where} is not a predcode model file.")
        version = int(number)
    saved_by = text("__version__", required=False) or "unknown"
    if version > _FORMAT_VERSION:
        raise ValidationError(
            f"load: {where} uses model format {version} (written by predcode {saved_by}), "
            f"newer than this predcode ({__version__}, which reads formats up to "
            f"{_FORMAT_VERSION}); upgrade predcode to load it."
        )
    out: dict[str, Any] = {"class": text("__class__"), "version": saved_by}
    for key, field in (("__params__", "params"), ("__history__", "history")):
        raw = text(key, required=key == "__params__")
        try:
            value = {} if raw is None else json.loads(raw)
        except json.JSONDecodeError as exc:
            raise ValidationError(
                f"load: the entry {key!r} in {where} is not valid JSON ({exc.msg} at "
                f"character {exc.pos}); {edited}."
            ) from None
        if not isinstance(value, dict):
            raise ValidationError(
                f"load: the entry {key!r} in {where} should be a JSON object, got "
                f"{type(value).__name__}; {edited}."
            )
        out[field] = value
    return out


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
