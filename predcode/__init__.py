"""predcode: predictive-coding neuroscience on numpy, numba and CuPy.

The public API is curated here; see the documentation for the design.
"""

from ._version import __version__
from .backend import (
    available_backends,
    blas_threads,
    resolve_backend,
    set_blas_threads,
    to_device,
    to_numpy,
)
from .base import Model, load, load_model
from .exceptions import (
    BackendError,
    DivergenceError,
    NotFittedError,
    PredcodeError,
    ValidationError,
)
from .kernels import get_kernel
from .models import (
    DEM,
    HDM,
    IJEPA,
    LAP,
    MLP,
    PCN,
    Agent,
    GenerativeModel,
    HelmholtzMachine,
    LatentWorldModel,
    Level,
    PixelWorldModel,
    RaoBallard,
    extended_kalman_filter,
    generalized_filter,
    init_weights,
    make_model,
    run_trials,
    zoo_model,
)

__all__ = [
    "__version__",
    "PCN",
    "MLP",
    "init_weights",
    "RaoBallard",
    "DEM",
    "LAP",
    "HDM",
    "Level",
    "zoo_model",
    "generalized_filter",
    "extended_kalman_filter",
    "HelmholtzMachine",
    "IJEPA",
    "LatentWorldModel",
    "PixelWorldModel",
    "Agent",
    "GenerativeModel",
    "make_model",
    "run_trials",
    "Model",
    "load",
    "load_model",
    "available_backends",
    "resolve_backend",
    "get_kernel",
    "to_device",
    "to_numpy",
    "blas_threads",
    "set_blas_threads",
    "PredcodeError",
    "ValidationError",
    "BackendError",
    "NotFittedError",
    "DivergenceError",
]
