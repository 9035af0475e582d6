"""The kernel registry: which family holds a kernel, and which module holds a version.

Every kernel exists in three versions with one signature: ``"numpy"`` (the
reference, plain ``xp`` array code that also runs on cupy arrays), ``"numba"``
(compiled CPU loops) and ``"cupy"`` (fused CUDA kernels). The registry is
explicit: :data:`KERNELS` maps each kernel to its family and :data:`FAMILIES`
maps a family to its three modules, so looking up one kernel imports only that
family's module for that backend (a PCN on numba never imports the Helmholtz or
the CuPy kernels). A new family adds its three modules and its lines here.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Iterable

from ..backend import backend_status
from ..exceptions import BackendError, ValidationError

__all__ = ["FAMILIES", "KERNELS", "get_kernel", "get_kernels", "register_kernel", "kernel_module"]

_CONCRETE = ("numpy", "numba", "cupy")

#: family -> module (in :mod:`predcode.kernels`) of each backend's versions; ``None``
#: where a family has no version for that backend.
FAMILIES: dict[str, dict[str, str | None]] = {
    "pc": {"numpy": "pc_reference", "numba": "pc_numba", "cupy": "pc_cupy"},
    "nn": {"numpy": "nn_reference", "numba": "nn_numba", "cupy": "nn_cupy"},
    "helmholtz": {"numpy": "helmholtz_reference", "numba": "helmholtz_numba",
                  "cupy": "helmholtz_cupy"},
    "aif": {"numpy": "aif_reference", "numba": "aif_numba", "cupy": "aif_cupy"},
    # DEM runs on the host only (its matrices are a few dozen rows): no cupy version
    "dem": {"numpy": "dem_reference", "numba": "dem_numba", "cupy": None},
}

#: kernel name -> family.
KERNELS: dict[str, str] = {
    # predictive-coding networks (Whittington & Bogacz 2017) and Rao & Ballard (1999)
    "pc_activate": "pc",
    "pc_predict": "pc",
    "pc_feedback": "pc",
    "pc_error": "pc",
    "pc_settle_step": "pc",
    "pc_hebbian": "pc",
    "rb_cause_step": "pc",
    # generic neural-network blocks (JEPA encoders, world models)
    "im2col": "nn",
    "col2im": "nn",
    "gelu": "nn",
    "epps_pulley": "nn",
    "mlp_rollout": "nn",
    # Helmholtz machine (wake-sleep)
    "hm_sample": "helmholtz",
    "hm_delta": "helmholtz",
    "hm_online": "helmholtz",
    # discrete active inference
    "aif_belief_step": "aif",
    "aif_propagate": "aif",
    "aif_efe": "aif",
    "aif_pymdp_step": "aif",
    # dynamic expectation maximisation
    "dem_accumulate": "dem",
}

_REGISTRY: dict[tuple[str, str], Callable] = {}


def register_kernel(name: str, backend: str) -> Callable[[Callable], Callable]:
    """Decorator registering ``func`` as kernel ``name`` for ``backend``."""

    def deco(func: Callable) -> Callable:
        _REGISTRY[(name, backend)] = func
        return func

    return deco


def kernel_module(name: str, backend: str) -> str | None:
    """Dotted name of the module holding kernel ``name`` for ``backend`` (None: no version)."""
    family = KERNELS.get(name)
    if family is None:
        return None
    module = FAMILIES[family].get(backend)
    return None if module is None else f"predcode.kernels.{module}"


def get_kernel(name: str, backend: str) -> Callable:
    """Look up kernel ``name`` for a concrete backend, importing only its family's module.

    Raises
    ------
    ValidationError
        Unknown backend or kernel name, or no version of the kernel for ``backend``.
    BackendError
        The backend is not usable here (the message says how to install it).
    """
    if backend not in _CONCRETE:
        raise ValidationError(
            f"get_kernel: backend must be one of {_CONCRETE}, got {backend!r}; resolve "
            "'auto' first with predcode.resolve_backend."
        )
    if (name, backend) not in _REGISTRY:
        if name not in KERNELS:
            raise ValidationError(
                f"get_kernel: unknown kernel {name!r}; known kernels: {sorted(KERNELS)}."
            )
        ok, why = backend_status(backend)
        if not ok:
            raise BackendError(f"backend={backend!r} is not available: {why}.")
        module = kernel_module(name, backend)
        if module is not None:
            importlib.import_module(module)
    try:
        return _REGISTRY[(name, backend)]
    except KeyError:
        raise ValidationError(
            f"get_kernel: kernel {name!r} has no {backend!r} version; use backend='numpy' "
            "or 'numba'."
        ) from None


def get_kernels(names: Iterable[str], backend: str) -> dict[str, Callable]:
    """``{name: kernel}`` for several kernels of one backend."""
    return {name: get_kernel(name, backend) for name in names}
