"""predcode.backend: backend resolution, array namespaces, device moves, kernels, BLAS threads."""

from __future__ import annotations

import importlib.util
import inspect
import logging
import re
import subprocess
import sys
import types

import numpy as np
import pytest

import predcode
from predcode import backend as B
from predcode.exceptions import BackendError, ValidationError
from predcode.kernels import registry as R

HAS_CUPY = importlib.util.find_spec("cupy") is not None
HAS_NUMBA = importlib.util.find_spec("numba") is not None
no_cupy = pytest.mark.skipif(HAS_CUPY, reason="CuPy is importable here")


class FakeCupyArray:
    """Stands in for a cupy array: only its type's module matters to predcode."""

    def __init__(self, data=None):
        self.data = np.asarray(data if data is not None else [1.0, 2.0])

    def get(self):
        return self.data.copy()


FakeCupyArray.__module__ = "cupy._core.core"


# ---------------------------------------------------------------------------
# resolve_backend / available_backends
# ---------------------------------------------------------------------------
@pytest.mark.skipif(not HAS_NUMBA, reason="numba not installed")
def test_auto_prefers_numba():
    assert B.resolve_backend("auto") == "numba"
    assert B.resolve_backend("auto", np.zeros(3), None) == "numba"
    assert predcode.resolve_backend is B.resolve_backend


@pytest.mark.parametrize("name", ["numpy", "numba"])
def test_concrete_backends_resolve_to_themselves(name):
    assert B.resolve_backend(name) == name


def test_auto_falls_back_to_numpy_and_logs(monkeypatch, caplog):
    reason = "numba is not importable (simulated for test_auto_falls_back)"

    def fake_status(name):
        if name == "numba":
            return False, reason
        return True, "ok"

    monkeypatch.setattr(B, "backend_status", fake_status)
    B._warn_fallback_once.cache_clear()
    with caplog.at_level(logging.WARNING, logger="predcode"):
        assert B.resolve_backend("auto") == "numpy"
    assert any("falls back to numpy" in r.getMessage() and reason in r.getMessage()
               for r in caplog.records)
    # an explicit request for the missing backend is an error that says why
    with pytest.raises(BackendError, match=r"^PCN\.backend='numba' is not available: numba is "
                                           r"not importable"):
        B.resolve_backend("numba", owner="PCN")


@pytest.mark.parametrize("name", ["tpu", "NUMPY", "", None, "gpu"])
def test_unknown_backend_lists_valid_names(name):
    with pytest.raises(ValidationError,
                       match=rf"^MLP\.backend: unknown backend {re.escape(repr(name))}; choose "
                             r"one of 'auto', 'numpy', 'numba', 'cupy'\.$"):
        B.resolve_backend(name, owner="MLP")
    with pytest.raises(ValidationError, match=r"^backend: unknown backend"):
        B.resolve_backend(name)


@no_cupy
def test_cupy_unavailable_says_how_to_install():
    with pytest.raises(BackendError,
                       match=r"^backend='cupy' is not available: CuPy is not importable.*"
                             r"pip install predcode\[gpu\]"):
        B.resolve_backend("cupy")


@no_cupy
def test_auto_with_cupy_data_selects_cupy():
    # cupy data make "auto" choose cupy; without CuPy that is a clear error, not numpy
    with pytest.raises(BackendError, match=r"backend='cupy' is not available.*pip install"):
        B.resolve_backend("auto", np.zeros(2), FakeCupyArray())


def test_available_backends():
    status = predcode.available_backends()
    assert set(status) == {"numpy", "numba", "cupy"}
    for name, value in status.items():
        assert isinstance(value, tuple) and len(value) == 2, name
        ok, why = value
        assert isinstance(ok, bool) and isinstance(why, str) and why, name
    assert status["numpy"] == (True, f"numpy {np.__version__}")
    if HAS_NUMBA:
        import numba

        assert status["numba"] == (True, f"numba {numba.__version__}")
    if not HAS_CUPY:
        ok, why = status["cupy"]
        assert ok is False
        assert "pip install" in why


def test_backend_status_unknown():
    with pytest.raises(ValidationError, match=r"unknown backend 'tpu'"):
        B.backend_status("tpu")


def test_get_namespace():
    assert B.get_namespace("numpy") is np
    assert B.get_namespace("numba") is np
    with pytest.raises(ValidationError, match=r"^backend: expected 'numpy', 'numba' or 'cupy', "
                                              r"got 'auto'"):
        B.get_namespace("auto")


# ---------------------------------------------------------------------------
# array_namespace / to_device / to_numpy
# ---------------------------------------------------------------------------
def test_array_namespace_numpy():
    assert B.array_namespace(np.zeros(3)) is np
    assert B.array_namespace(np.zeros(3), np.ones((2, 2)), None) is np
    assert B.array_namespace([1.0, 2.0]) is np
    assert B.array_namespace(np.float64(1.0)) is np
    assert B.array_namespace() is np


def test_array_namespace_mixed_devices_raises():
    with pytest.raises(BackendError,
                       match=r"arrays live on different devices \(some cupy, some numpy\); move "
                             r"them explicitly with predcode\.to_device"):
        B.array_namespace(np.zeros(3), FakeCupyArray())
    with pytest.raises(BackendError, match=r"different devices"):
        B.array_namespace(FakeCupyArray(), None, np.ones(2))


def test_array_namespace_cupy_only(monkeypatch):
    fake_cupy = types.ModuleType("cupy")
    monkeypatch.setitem(sys.modules, "cupy", fake_cupy)
    assert B.array_namespace(FakeCupyArray(), FakeCupyArray()) is fake_cupy


@pytest.mark.parametrize("device", ["numpy", "numba", "cpu", "host"])
def test_to_device_host(device):
    x = np.arange(6.0).reshape(2, 3)
    out = predcode.to_device(x, device)
    assert isinstance(out, np.ndarray)
    np.testing.assert_array_equal(out, x)
    lst = predcode.to_device([[1, 2], [3, 4]], device)
    assert isinstance(lst, np.ndarray) and lst.shape == (2, 2)


def test_to_device_unknown():
    with pytest.raises(ValidationError, match=r"^device: expected 'numpy' \(host\) or 'cupy' "
                                              r"\(GPU\), got 'tpu'"):
        predcode.to_device(np.zeros(2), "tpu")


@no_cupy
@pytest.mark.parametrize("device", ["cupy", "gpu", "cuda"])
def test_to_device_gpu_without_cupy(device):
    with pytest.raises(BackendError, match=r"^cannot move data to the GPU: .*pip install"):
        predcode.to_device(np.zeros(2), device)


def test_to_numpy():
    x = np.arange(3.0)
    assert predcode.to_numpy(x) is x
    fake = FakeCupyArray([4.0, 5.0])
    out = predcode.to_numpy(fake)  # cupy arrays are copied to the host with .get()
    assert isinstance(out, np.ndarray)
    np.testing.assert_array_equal(out, [4.0, 5.0])
    np.testing.assert_array_equal(predcode.to_device(fake, "numpy"), [4.0, 5.0])


# ---------------------------------------------------------------------------
# kernels
# ---------------------------------------------------------------------------
PC_KERNELS = sorted(n for n, f in R.KERNELS.items() if f == "pc" and n.startswith("pc_"))


@pytest.mark.parametrize("name", sorted(R.KERNELS))
def test_get_kernel_every_kernel(name):
    ref = predcode.get_kernel(name, "numpy")
    assert callable(ref)
    family = R.KERNELS[name]
    assert ref.__module__ == f"predcode.kernels.{R.FAMILIES[family]['numpy']}"
    if HAS_NUMBA and R.FAMILIES[family]["numba"] is not None:
        fast = predcode.get_kernel(name, "numba")
        assert callable(fast)
        assert fast is not ref
        assert fast.__module__ == f"predcode.kernels.{R.FAMILIES[family]['numba']}"
        # one signature per kernel across backends
        assert list(inspect.signature(fast).parameters) == list(inspect.signature(ref).parameters)
    # look-up is stable
    assert predcode.get_kernel(name, "numpy") is ref


@pytest.mark.parametrize("backend", ["numpy", "numba"])
def test_every_module_registers_exactly_its_family(backend):
    """The explicit registry and the modules agree: no kernel is missing or stray."""
    for family, modules in R.FAMILIES.items():
        if modules[backend] is None or (backend == "numba" and not HAS_NUMBA):
            continue
        importlib.import_module(f"predcode.kernels.{modules[backend]}")
        got = {n for (n, b), f in R._REGISTRY.items()
               if b == backend and f.__module__ == f"predcode.kernels.{modules[backend]}"}
        assert got == {n for n, fam in R.KERNELS.items() if fam == family}, family


def test_get_kernel_imports_only_its_family():
    """Looking up one PC kernel imports the PC reference module and no other kernel module."""
    code = (
        "import sys, predcode\n"
        "predcode.get_kernel('pc_error', 'numpy')\n"
        "print(sorted(m for m in sys.modules if m.startswith('predcode.kernels.')))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout.strip()
    assert out == str(["predcode.kernels.common", "predcode.kernels.pc_reference",
                       "predcode.kernels.registry"])


@pytest.mark.parametrize("backend", ["numpy", "numba"])
def test_get_kernel_unknown_name(backend):
    with pytest.raises(ValidationError,
                       match=r"^get_kernel: unknown kernel 'pc_nope'; known kernels: "
                             r"\[.*'pc_error'.*\]"):
        predcode.get_kernel("pc_nope", backend)


@pytest.mark.parametrize("backend", ["auto", "tpu"])
def test_get_kernel_unknown_backend(backend):
    with pytest.raises(ValidationError,
                       match=rf"^get_kernel: backend must be one of .*got '{backend}'"):
        predcode.get_kernel("pc_error", backend)


@no_cupy
def test_get_kernel_cupy_without_cupy():
    with pytest.raises(BackendError, match=r"backend='cupy' is not available.*pip install"):
        predcode.get_kernel("pc_error", "cupy")


def test_register_kernel(monkeypatch):
    monkeypatch.setattr(R, "_REGISTRY", dict(R._REGISTRY))
    monkeypatch.setitem(R.KERNELS, "test_double", "pc")

    @R.register_kernel("test_double", "numpy")
    def double(x):
        return 2 * x

    assert R.get_kernel("test_double", "numpy") is double
    if HAS_NUMBA:
        with pytest.raises(ValidationError, match=r"kernel 'test_double' has no 'numba' version"):
            R.get_kernel("test_double", "numba")


def test_take_host_indices():
    X = np.arange(12.0).reshape(6, 2)
    idx = np.array([4, 0, 2])
    np.testing.assert_array_equal(B.take(X, idx), X[idx])
    assert not B.is_cupy(X)


@pytest.mark.skipif(not HAS_NUMBA, reason="numba not installed")
@pytest.mark.parametrize("activation", ["linear", "tanh", "sigmoid", "relu"])
def test_numba_kernels_match_reference(activation):
    n, n_in, n_out = 6, 4, 3

    def run(backend):
        k = {name: predcode.get_kernel(name, backend) for name in PC_KERNELS}
        r = np.random.default_rng(1)
        x = r.standard_normal((n, n_in))
        x[0, 0] = 0.0  # relu's kink
        fx, dfx = np.empty_like(x), np.empty_like(x)
        k["pc_activate"](x, fx, dfx, activation)
        W = r.standard_normal((n_out, n_in))
        b = r.standard_normal(n_out)
        z = np.empty((n, n_out))
        k["pc_predict"](W, fx, z)
        x_up = r.standard_normal((n, n_out))
        eps = np.empty((n, n_out))
        E = k["pc_error"](x_up, z, b, 1.5, eps)
        bu = np.empty((n, n_in))
        k["pc_feedback"](W, eps, bu)
        k["pc_hebbian"](W, b, eps, fx, 0.1)
        return dict(fx=fx, dfx=dfx, z=z, eps=eps, E=np.asarray(float(E)), bu=bu, W=W, b=b)

    ref, fast = run("numpy"), run("numba")
    for key in ref:
        np.testing.assert_allclose(fast[key], ref[key], rtol=1e-12, atol=1e-12, err_msg=key)


# ---------------------------------------------------------------------------
# BLAS threads
# ---------------------------------------------------------------------------
@pytest.fixture
def restore_blas_threads():
    saved = B._BLAS_THREADS[0]
    yield
    B._BLAS_THREADS[0] = saved


@pytest.mark.parametrize("bad", [0, -1, "2", 2.0, True])
def test_set_blas_threads_rejects(bad, restore_blas_threads):
    before = B._BLAS_THREADS[0]
    with pytest.raises(ValidationError,
                       match=r"^set_blas_threads: expected a positive int or None, got "):
        predcode.set_blas_threads(bad)
    assert B._BLAS_THREADS[0] == before


def test_set_blas_threads_accepts(restore_blas_threads):
    predcode.set_blas_threads(3)
    assert B._BLAS_THREADS[0] == 3
    predcode.set_blas_threads(None)
    assert B._BLAS_THREADS[0] is None


def _blas_threads_now():
    from threadpoolctl import threadpool_info

    return [p["num_threads"] for p in threadpool_info() if p["user_api"] == "blas"]


def test_blas_threads_context(restore_blas_threads):
    if not _blas_threads_now():
        pytest.skip("threadpoolctl sees no BLAS library")
    outside = _blas_threads_now()
    with predcode.blas_threads(1):
        assert _blas_threads_now() and all(n == 1 for n in _blas_threads_now())
    assert _blas_threads_now() == outside

    predcode.set_blas_threads(1)
    with predcode.blas_threads():  # the configured count
        assert all(n == 1 for n in _blas_threads_now())
    assert _blas_threads_now() == outside

    predcode.set_blas_threads(None)
    with predcode.blas_threads():  # leave BLAS alone
        assert _blas_threads_now() == outside


def test_blas_threads_nested_same_limit_does_not_reenter(restore_blas_threads, monkeypatch):
    """Issue 15 item 5: a per-step ``blas_threads()`` inside a fit's costs no threadpoolctl call."""
    if not _blas_threads_now():
        pytest.skip("threadpoolctl sees no BLAS library")
    outside = _blas_threads_now()
    calls = []
    ctl = B._blas_controller()
    real = type(ctl).limit

    def counting(self, *a, **k):
        calls.append(k.get("limits", a[0] if a else None))
        return real(self, *a, **k)

    monkeypatch.setattr(type(ctl), "limit", counting)
    with predcode.blas_threads(1):
        for _ in range(5):
            with predcode.blas_threads(1):
                assert all(n == 1 for n in _blas_threads_now())
        with predcode.blas_threads(2):  # a different limit is applied, then undone
            assert all(n == 2 for n in _blas_threads_now())
        assert all(n == 1 for n in _blas_threads_now())
    assert calls == [1, 2]
    assert _blas_threads_now() == outside
    assert B._BLAS_STATE["active"] is None


def test_synchronize_host_is_noop():
    assert B.synchronize("numpy") is None
    assert B.synchronize("numba") is None


def test_backends_constant():
    assert B.BACKENDS == ("auto", "numpy", "numba", "cupy")
