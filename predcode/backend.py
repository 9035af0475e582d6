"""Backends: array namespaces and device moves.

predcode runs one code path per model against an *array namespace* ``xp``
(:mod:`numpy` or :mod:`cupy`). Hot loops call *kernels* looked up by name and
backend in :mod:`predcode.kernels`; each kernel exists in three versions with one
signature:

``"numpy"``
    the reference, plain ``xp`` array code (it also runs on cupy arrays);
``"numba"``
    fused, compiled CPU loops (numpy arrays);
``"cupy"``
    fused CUDA elementwise/reduction kernels (cupy arrays).

``backend="auto"`` picks ``"cupy"`` when the data are cupy arrays, else
``"numba"`` when numba imports, else ``"numpy"`` (the fallback is logged once).
Arrays never change device silently: use :func:`to_device`.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import os
from typing import Any

import numpy as np

from .exceptions import BackendError, ValidationError

__all__ = [
    "BACKENDS",
    "backend_status",
    "available_backends",
    "resolve_backend",
    "get_namespace",
    "array_namespace",
    "to_device",
    "to_numpy",
    "is_cupy",
    "take",
    "synchronize",
    "blas_threads",
    "set_blas_threads",
]

logger = logging.getLogger("predcode")

#: Backend names every model accepts.
BACKENDS = ("auto", "numpy", "numba", "cupy")
_CONCRETE = ("numpy", "numba", "cupy")
_GPU_INSTALL = (
    "install CuPy for your CUDA version, e.g. `pip install predcode[gpu]` "
    "(cupy-cuda12x) or `pip install cupy-cuda11x`, on a machine with an NVIDIA GPU"
)


@functools.cache
def backend_status(name: str) -> tuple[bool, str]:
    """Probe one backend once; return ``(works, reason)``.

    The reason names the version when it works, and what is missing (and how to
    install it) when it does not.
    """
    if name == "numpy":
        return True, f"numpy {np.__version__}"
    if name == "numba":
        try:
            import numba
        except Exception as exc:  # ImportError, or a broken llvmlite
            return False, f"numba is not importable ({exc}); install it with `pip install numba`"
        return True, f"numba {numba.__version__}"
    if name == "cupy":
        try:
            import cupy
        except Exception as exc:
            return False, f"CuPy is not importable ({type(exc).__name__}: {exc}); {_GPU_INSTALL}"
        try:
            n = cupy.cuda.runtime.getDeviceCount()
        except Exception as exc:
            return False, f"CuPy {cupy.__version__} found no usable CUDA device ({exc})"
        if n < 1:
            return False, f"CuPy {cupy.__version__} found no CUDA device"
        try:
            props = cupy.cuda.runtime.getDeviceProperties(0)
            gpu = props["name"].decode() if isinstance(props["name"], bytes) else props["name"]
        except Exception:
            gpu = "GPU 0"
        return True, f"cupy {cupy.__version__} on {gpu}"
    raise ValidationError(f"backend: unknown backend {name!r}; choose one of {BACKENDS}.")


def available_backends() -> dict[str, tuple[bool, str]]:
    """Status of every concrete backend: ``{name: (works, reason)}``."""
    return {name: backend_status(name) for name in _CONCRETE}


def is_cupy(x: Any) -> bool:
    """True when ``x`` is a CuPy array (or any object from the cupy package)."""
    return type(x).__module__.startswith("cupy")


def take(X: Any, idx: Any) -> Any:
    """Rows ``X[idx]`` for host indices ``idx`` (a numpy int array), on ``X``'s device.

    The one place where host indices meet device data: on the GPU the (small)
    index array is sent to the device, the data never leave it.
    """
    if is_cupy(X) and not is_cupy(idx):
        import cupy

        idx = cupy.asarray(idx)
    return X[idx]


def array_namespace(*arrays: Any):
    """Array namespace (``numpy`` or ``cupy``) of ``arrays``; mixing raises."""
    kinds = {is_cupy(a) for a in arrays if a is not None}
    if len(kinds) > 1:
        raise BackendError(
            "arrays live on different devices (some cupy, some numpy); move them "
            "explicitly with predcode.to_device(x, 'cupy') or predcode.to_device(x, 'numpy')."
        )
    if kinds == {True}:
        import cupy

        return cupy
    return np


@functools.cache
def _warn_fallback_once(msg: str) -> None:
    logger.warning(msg)


def resolve_backend(backend: str, *arrays: Any, owner: str | None = None) -> str:
    """Resolve a backend name to a concrete, working one.

    Parameters
    ----------
    backend : {"auto", "numpy", "numba", "cupy"}
        Requested backend.
    *arrays : array
        Data the computation will see; with ``"auto"``, cupy arrays select cupy.
    owner : str, optional
        Name used in error messages (e.g. ``"PCN"``).

    Returns
    -------
    str
        ``"numpy"``, ``"numba"`` or ``"cupy"``.

    Raises
    ------
    ValidationError
        Unknown backend name.
    BackendError
        The backend is not usable here (the message says why and how to fix it).
    """
    where = f"{owner}.backend" if owner else "backend"
    if backend not in BACKENDS:
        raise ValidationError(
            f"{where}: unknown backend {backend!r}; choose one of "
            + ", ".join(repr(b) for b in BACKENDS)
            + "."
        )
    if backend == "auto":
        if any(is_cupy(a) for a in arrays if a is not None):
            backend = "cupy"
        else:
            ok, why = backend_status("numba")
            if ok:
                return "numba"
            _warn_fallback_once(f"predcode: backend='auto' falls back to numpy: {why}")
            return "numpy"
    ok, why = backend_status(backend)
    if not ok:
        raise BackendError(f"{where}={backend!r} is not available: {why}.")
    return backend


def get_namespace(backend: str):
    """Array namespace for a concrete backend (numpy for numpy/numba, cupy for cupy)."""
    if backend == "cupy":
        ok, why = backend_status("cupy")
        if not ok:
            raise BackendError(f"backend='cupy' is not available: {why}.")
        import cupy

        return cupy
    if backend in ("numpy", "numba"):
        return np
    raise ValidationError(f"backend: expected 'numpy', 'numba' or 'cupy', got {backend!r}.")


def to_device(x: Any, device: str):
    """Move an array to a device on request.

    Parameters
    ----------
    x : array
        numpy or cupy array (or array-like, for host targets).
    device : {"numpy", "cpu", "host", "cupy", "gpu", "cuda", "numba"}
        ``"numba"`` means host memory, like ``"numpy"``.

    Returns
    -------
    array
        A numpy or cupy array.
    """
    if device in ("numpy", "numba", "cpu", "host"):
        return to_numpy(x)
    if device in ("cupy", "gpu", "cuda"):
        ok, why = backend_status("cupy")
        if not ok:
            raise BackendError(f"cannot move data to the GPU: {why}.")
        import cupy

        return cupy.asarray(x)
    raise ValidationError(
        f"device: expected 'numpy' (host) or 'cupy' (GPU), got {device!r}."
    )


def to_numpy(x: Any) -> np.ndarray:
    """Return a host (numpy) copy or view of ``x``."""
    if is_cupy(x):
        return x.get()
    return np.asarray(x)


def synchronize(backend: str) -> None:
    """Wait for queued device work (no-op on host backends); use before stopping a clock."""
    if backend == "cupy":
        import cupy

        cupy.cuda.get_current_stream().synchronize()


_BLAS_THREADS = [int(os.environ.get("PREDCODE_BLAS_THREADS", "1"))]


def set_blas_threads(n: int | None) -> None:
    """Set how many BLAS threads model calls use (``None``: leave BLAS alone).

    The default is 1 (or the ``PREDCODE_BLAS_THREADS`` environment variable).
    Predictive-coding loops issue many small matrix products; on a 2-core
    machine two-thread OpenBLAS made a 64-128-128-10 network 110 times slower
    than one thread (measured), because the threads spin against each other and
    against numpy's and scipy's second OpenBLAS copy.
    """
    if n is not None and (not isinstance(n, int) or isinstance(n, bool) or n < 1):
        raise ValidationError(f"set_blas_threads: expected a positive int or None, got {n!r}.")
    _BLAS_THREADS[0] = n


_BLAS_STATE: dict[str, Any] = {"controller": None, "modules": -1, "active": None}


def _blas_controller() -> Any:
    """threadpoolctl's controller, scanned once and again only after new imports.

    Building a controller rescans every loaded shared library (0.8-1.4 ms here),
    which is what ``threadpool_limits`` does on each entry; a new import is the
    only way a new BLAS or OpenMP library appears, so the scan is redone when the
    number of imported modules has changed.
    """
    import sys

    if _BLAS_STATE["controller"] is None or _BLAS_STATE["modules"] != len(sys.modules):
        from threadpoolctl import ThreadpoolController

        _BLAS_STATE["controller"] = ThreadpoolController()
        _BLAS_STATE["modules"] = len(sys.modules)
    return _BLAS_STATE["controller"]


@contextlib.contextmanager
def blas_threads(n: int | None = None):
    """Context limiting BLAS (and OpenMP) threads to ``n`` (default: the configured count).

    Entering it inside a context that already set the same limit costs nothing
    (no threadpoolctl call), so a ``fit`` or a bench case sets the limit once and
    the per-step calls nested in it do not re-enter threadpoolctl.
    """
    n = _BLAS_THREADS[0] if n is None else n
    if n is None or _BLAS_STATE["active"] == n:
        yield
        return
    outer = _BLAS_STATE["active"]
    with _blas_controller().limit(limits=n):
        _BLAS_STATE["active"] = n
        try:
            yield
        finally:
            _BLAS_STATE["active"] = outer
