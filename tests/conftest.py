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


def check_param_gradients(entries, total, *, seed: int, abs_tol: float, per_param: int = 2,
                          eps: float = 1e-6, rel: float = 1e-5) -> None:
    """Hand-written parameter gradients against central differences.

    ``entries`` are ``(name, layer, key)`` triples (``predcode.nn.named_params``);
    ``total()`` zeroes the gradients, runs the forward and backward pass and
    returns the scalar objective. ``per_param`` entries of each parameter,
    drawn with ``seed``, must match :math:`(f(p+\\epsilon) - f(p-\\epsilon))/2\\epsilon`.
    """
    total()
    grads = {(id(layer), key): layer.grads[key].copy() for _, layer, key in entries}
    pick = np.random.default_rng(seed)
    for name, layer, key in entries:
        p = layer.params[key]
        for _ in range(per_param):
            i = tuple(int(pick.integers(s)) for s in p.shape)
            old = p[i]
            p[i] = old + eps
            fp = total()
            p[i] = old - eps
            fm = total()
            p[i] = old
            assert grads[(id(layer), key)][i] == pytest.approx(
                (fp - fm) / (2 * eps), rel=rel, abs=abs_tol), (name, i)


def saved_entries(path) -> dict:
    """Every entry of a saved ``.npz`` model file, loaded without pickle."""
    with np.load(path, allow_pickle=False) as f:
        return {k: f[k] for k in f.files}


def rewrite_saved(path, **changes) -> None:
    """Edit a saved model file in place: each entry set to its new value, or removed
    when the value is ``None`` (to simulate damaged or hand-edited files)."""
    arrays = saved_entries(path)
    for key, value in changes.items():
        if value is None:
            del arrays[key]
        else:
            arrays[key] = value
    np.savez(path, **arrays)
