"""Shared fixtures: the backend fixture runs a test on every installed backend."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, settings

from predcode.backend import available_backends

# The backend fixtures are immutable strings, so reusing them across hypothesis
# examples is safe.
settings.register_profile(
    "predcode", suppress_health_check=[HealthCheck.function_scoped_fixture], deadline=None
)
settings.load_profile("predcode")

_STATUS = available_backends()


def _backend_params(names=("numpy", "numba", "cupy")):
    params = []
    for name in names:
        ok, why = _STATUS[name]
        marks = [pytest.mark.gpu] if name == "cupy" else []
        if not ok:
            marks.append(pytest.mark.skip(reason=f"{name} unavailable: {why}"))
        params.append(pytest.param(name, marks=marks, id=name))
    return params


@pytest.fixture(params=_backend_params())
def backend(request) -> str:
    """Every concrete backend that works here (cupy only with a GPU, marked ``gpu``)."""
    return request.param


@pytest.fixture(params=_backend_params(("numba", "cupy")))
def fast_backend(request) -> str:
    """The compiled backends whose kernels are checked against the reference."""
    return request.param


@pytest.fixture
def xp(request):
    """The array namespace of the backend under test (``backend`` or ``fast_backend``)."""
    names = request.fixturenames
    backend = request.getfixturevalue("fast_backend" if "fast_backend" in names else "backend")
    if backend == "cupy":
        import cupy

        return cupy
    return np


def tolerance(dtype) -> float:
    """Agreement asked of a kernel and its reference: float64 1e-10, float32 1e-4."""
    return 1e-10 if np.dtype(dtype) == np.float64 else 1e-4
