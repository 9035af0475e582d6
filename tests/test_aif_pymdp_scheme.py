"""``run_trials(scheme="pymdp")`` and its fused kernel ``aif_pymdp_step`` (issue 15, item 3).

Oracles: the reference kernel (plain array code) for the numba and CuPy versions
(float64 1e-10, float32 1e-4, ``tests/conftest.py``'s ``tolerance``), and
:func:`predcode.models.pymdp_mdp.pymdp_replay_trials` -- pymdp 1.0.4's
``Agent(inference_algo="mmp")`` scheme, itself checked against pymdp in
``tests/test_pymdp_parity.py`` -- for the trajectories ``run_trials`` produces: replayed on
the outcomes and actions the agents met, it gives the same state posteriors, -G, q(pi)
and (deterministic selection) actions.

The CuPy version is one ``RawKernel``; without a GPU its CUDA source is also compiled as
C++ (``g++ -std=c++20``, threads and a barrier standing in for a block) and run against
the reference, so the source is checked here too.
"""

from __future__ import annotations

import ctypes
import shutil
import subprocess

import numpy as np
import pytest

from predcode.backend import to_numpy
from predcode.bench.aif import random_model
from predcode.envs import MDPProcess, tmaze
from predcode.exceptions import ValidationError
from predcode.kernels import get_kernel
from predcode.models.active_inference import make_model, pymdp_step_arrays, run_trials
from predcode.models.pymdp_mdp import pymdp_replay_trials

from .conftest import tolerance

KEYS = ("lnA", "AB", "HB", "C", "BT", "Bb", "lnD", "V", "lnE")
T, S, U, N = 4, 5, 3, 3


def _model(seed=3):
    """One factor (5 states, 3 actions), two modalities (4 and 3 outcomes), T = 4, nine
    policies with repeated moves and prefixes (the numba kernel shares prefixes); one
    likelihood column with zeros (pymdp's floors)."""
    rng = np.random.default_rng(seed)
    A = [rng.dirichlet(np.full(4, 0.5), size=S).T, rng.dirichlet(np.full(3, 0.5), size=S).T]
    A[0][:, 0] = (1.0, 0.0, 0.0, 0.0)
    B = rng.dirichlet(np.full(S, 0.3), size=(U, S)).transpose(2, 1, 0)
    V = rng.integers(0, U, size=(9, T - 1, 1))
    V[3] = V[1]
    V[5, :2] = V[2, :2]
    C = [rng.normal(size=4), rng.normal(size=3)]
    return make_model(A, [B], C, policies=V, T=T)


def _inputs(seed=4):
    rng = np.random.default_rng(seed)
    orow = np.stack([rng.integers(0, 4, (N, T)), 4 + rng.integers(0, 3, (N, T))], axis=2)
    return orow.astype(np.int64), rng.integers(0, U, (N, T - 1)).astype(np.int64)


def _close(got, want, dtype, what):
    tol = tolerance(dtype)
    got, want = np.asarray(got, np.float64), np.asarray(want, np.float64)
    err = float(np.max(np.abs(got - want) / (np.abs(want) + tol)))
    assert err < tol, f"{what}: relative error {err:.2e} >= {tol:g}"


# ----------------------------------------------------------------- kernel vs reference
@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_fast_kernel_matches_reference(fast_backend, xp, dtype):
    model = _model()
    ref = get_kernel("aif_pymdp_step", "numpy")
    fast = get_kernel("aif_pymdp_step", fast_backend)
    k64 = pymdp_step_arrays(model)
    k = pymdp_step_arrays(model, xp, dtype)
    orow, u = _inputs()
    for t in range(T):
        for info in (1.0, 0.0):
            want = ref(orow, u, t, *(k64[x] for x in KEYS), 0.7, info, 16)
            got = fast(xp.asarray(orow), xp.asarray(u), t, *(k[x] for x in KEYS), 0.7, info, 16)
            for name, g, w in zip(("qs", "neg_efe", "q_pi"), got, want, strict=True):
                assert g.shape == w.shape and g.dtype == np.dtype(dtype), name
                _close(to_numpy(g), w, dtype, f"{fast_backend} {name} t={t} info={info}")


def _emulated_cuda(real):
    """The CuPy kernel's CUDA source built as a C++ shared library (a block = threads)."""
    import importlib.util
    import pathlib
    import tempfile

    spec = importlib.util.find_spec("predcode.kernels.aif_cupy")
    text = pathlib.Path(spec.origin).read_text()
    body = text.split('_PYMDP_SRC = r"""')[1].split('"""')[0]
    head = ("#include <cmath>\n#include <thread>\n#include <barrier>\n#include <vector>\n"
            "using std::exp; using std::log; using std::sqrt;\n"
            "struct dim_ { int x; };\nstatic dim_ blockIdx, blockDim;\n"
            "static thread_local dim_ threadIdx;\nstatic std::barrier<>* bar;\n"
            "#define __global__\n#define __device__ static\n#define __shared__ static\n"
            "#define __syncthreads() bar->arrive_and_wait()\n"
            f"typedef {real} real;\n")
    name = f"predcode_aif_pymdp_step_{real}"
    drive = ("extern \"C\" void drive(int N, int nt, void** a, double gamma, double info, "
             "int t, int T, int M, int S, int O, int P, int num_iter) {\n"
             "  blockDim.x = nt;\n  for (int k = 0; k < N; ++k) {\n    blockIdx.x = k;\n"
             "    std::barrier<> b(nt); bar = &b;\n    std::vector<std::thread> th;\n"
             "    for (int i = 0; i < nt; ++i) th.emplace_back([&, i] { threadIdx.x = i;\n"
             f"      {name}((const long long*)a[0], (const long long*)a[1], t, T, M, S, O, P,"
             " (real*)a[2], (real*)a[3], (real*)a[4], (real*)a[5], (real*)a[6], (real*)a[7],"
             " (real*)a[8], (const long long*)a[9], (real*)a[10], gamma, info, num_iter,"
             " (real*)a[11], (real*)a[12], (real*)a[13], (real*)a[14], (real*)a[15],"
             " (real*)a[16], (real*)a[17]); });\n"
             "    for (auto& x : th) x.join();\n  }\n}\n")
    tmp = pathlib.Path(tempfile.mkdtemp())
    (tmp / "k.cpp").write_text(head + body.replace("_REAL", "_" + real) + drive)
    subprocess.run(["g++", "-std=c++20", "-O1", "-pthread", "-shared", "-fPIC", "-o",
                    str(tmp / "k.so"), str(tmp / "k.cpp")], check=True, capture_output=True)
    return ctypes.CDLL(str(tmp / "k.so"))


@pytest.mark.skipif(shutil.which("g++") is None, reason="no g++ to build the CUDA source")
@pytest.mark.parametrize("real,dtype", [("double", "float64"), ("float", "float32")])
def test_cupy_kernel_source_matches_reference_on_the_cpu(real, dtype):
    """Block-wide reductions and barriers included (1, 4 and 8 threads per block)."""
    try:
        lib = _emulated_cuda(real)
    except subprocess.CalledProcessError as err:  # e.g. a g++ without <barrier>
        pytest.skip(f"g++ could not build the emulation: {err.stderr[-200:]!r}")
    model = _model()
    ref = get_kernel("aif_pymdp_step", "numpy")
    k64 = pymdp_step_arrays(model)
    k = pymdp_step_arrays(model, np, dtype)
    orow, u = _inputs()
    P, O = model.n_policies, k["AB"].shape[2]
    for nt in (1, 4, 8):
        for t in range(T):
            want = ref(orow, u, t, *(k64[x] for x in KEYS), 0.7, 1.0, 16)
            n = t + 1
            work = [np.empty((N, n, S), dtype) for _ in range(3)] + [np.empty((N, P, 2, S), dtype)]
            out = [np.empty((N, n, S), dtype), np.empty((N, P), dtype), np.empty((N, P), dtype)]
            arrs = [orow, u] + [k[x] for x in KEYS] + work + out
            ptrs = (ctypes.c_void_p * len(arrs))(*[a.ctypes.data for a in arrs])
            lib.drive(N, nt, ptrs, ctypes.c_double(0.7), ctypes.c_double(1.0), t, T, 2, S, O,
                      P, 16)
            for name, g, w in zip(("qs", "neg_efe", "q_pi"), out, want, strict=True):
                _close(g, w, dtype, f"emulated cuda {name} t={t} threads={nt}")


# ----------------------------------------------------------------- run_trials vs pymdp
def _replay_matches(model, r, *, check_actions=True):
    n_trials, n_agents = r["obs"].shape[:2]
    for k in range(n_trials):
        ref = pymdp_replay_trials(model, r["obs"][k], r["actions"][k])
        for t in range(model.T):
            np.testing.assert_allclose(r["qs"][0, t][k], ref["qs"][0, t], rtol=0, atol=1e-9)
        np.testing.assert_allclose(r["q_pi"][k], ref["q_pi"], rtol=0, atol=1e-9)
        np.testing.assert_allclose(r["neg_efe"][k], ref["neg_efe"], rtol=1e-9, atol=1e-9)
        np.testing.assert_array_equal(r["G"][k], -r["neg_efe"][k])
        np.testing.assert_array_equal(r["X"][0][k], r["qs"][0, model.T - 1][k])
        if check_actions:
            np.testing.assert_array_equal(r["choices"][k], ref["action"])


def test_run_trials_is_pymdp_replay(backend):
    """Deterministic agents acting in the process: the replay of what they met gives their
    beliefs, -G, q(pi) and the actions they took (pymdp's argmax-policy selection)."""
    model = _model()
    r = run_trials(model, MDPProcess(model.A, model.B, model.D), n_agents=4, n_trials=2,
                   scheme="pymdp", action_mode="deterministic", backend=backend,
                   random_state=0)
    assert r["scheme"] == "pymdp" and r["backend"] == backend
    assert r["q_pi"].shape == (2, 4, T - 1, model.n_policies)
    np.testing.assert_array_equal(r["choices"], r["actions"])
    _replay_matches(model, r)


def test_stochastic_actions_are_seeded_and_follow_q_pi():
    model = _model()
    proc = MDPProcess(model.A, model.B, model.D)
    kw = dict(n_agents=6, n_trials=2, scheme="pymdp", action_mode="stochastic")
    r1 = run_trials(model, proc, backend="numpy", random_state=5, **kw)
    r2 = run_trials(model, proc, backend="numba", random_state=5, **kw)
    np.testing.assert_array_equal(r1["actions"], r2["actions"])
    np.testing.assert_array_equal(r1["obs"], r2["obs"])
    _replay_matches(model, r1, check_actions=False)
    # alpha -> infinity: sampling sigma(alpha ln q(pi)) picks the most probable policy
    sharp = run_trials(model, proc, backend="numba", random_state=5, alpha=1e6, **kw)
    _replay_matches(model, sharp)


def test_clamped_replay_records_the_agents_choices():
    model, _ = random_model(6, 20, random_state=2)
    rng = np.random.default_rng(1)
    o = rng.integers(0, 6, (5, 3, 1))
    u = rng.integers(0, 4, (5, 2, 1))
    r = run_trials(model, clamp=dict(o=o, u=u), scheme="pymdp", backend="numba")
    np.testing.assert_array_equal(r["obs"][0], o)
    np.testing.assert_array_equal(r["actions"][0], u)
    assert r["states"] is None
    ref = pymdp_replay_trials(model, o, u)
    np.testing.assert_array_equal(r["choices"][0], ref["action"])
    np.testing.assert_allclose(r["q_pi"][0], ref["q_pi"], rtol=0, atol=1e-9)


def test_float32_follows_float64():
    model, _ = random_model(6, 20, random_state=2)
    rng = np.random.default_rng(1)
    cl = dict(o=rng.integers(0, 6, (5, 3, 1)), u=rng.integers(0, 4, (5, 2, 1)))
    r64 = run_trials(model, clamp=cl, scheme="pymdp", backend="numba")
    r32 = run_trials(model, clamp=cl, scheme="pymdp", backend="numba", dtype="float32")
    assert r32["q_pi"].dtype == np.float32
    np.testing.assert_allclose(r32["q_pi"], r64["q_pi"], rtol=0, atol=1e-4)
    np.testing.assert_allclose(r32["neg_efe"], r64["neg_efe"], rtol=1e-4, atol=1e-4)


# ----------------------------------------------------------------- errors
def test_errors_name_the_parameter():
    model = _model()
    proc = MDPProcess(model.A, model.B, model.D)
    o = np.zeros((2, T, 2), dtype=int)
    u = np.zeros((2, T - 1, 1), dtype=int)
    m2, p2 = tmaze()
    cases = [
        (dict(model=m2, process=p2), r"^run_trials\.model: scheme='pymdp' runs models with one "
                                     r"hidden-state factor, got 2"),
        (dict(process=proc, clamp=dict(o=o, u=u)), r"^run_trials\.process: give a process or"),
        (dict(clamp=dict(o=o[:, :2], u=u)), r"^run_trials\.clamp\['o'\]: expected ints of shape"),
        (dict(clamp=dict(o=o, u=u[:, :1])), r"^run_trials\.clamp\['u'\]: expected ints of shape"),
        (dict(clamp=dict(o=o + 7, u=u)), r"^run_trials\.clamp\['o'\]\[\.\.\., 0\]"),
        (dict(clamp=dict(o=o, u=u + 3)), r"^run_trials\.clamp\['u'\]: actions must lie in 0\.\.2"),
        (dict(clamp=dict(o=o, u=u, s=o)), r"^run_trials\.clamp: scheme='pymdp' expects"),
        (dict(clamp=dict(o=o, u=u), n_agents=3), r"^run_trials\.n_agents: clamp holds 2"),
        (dict(clamp=dict(o=o, u=u), n_trials=2), r"^run_trials\.n_trials: clamp holds one"),
        (dict(process=None), r"^run_trials\.process: expected a generative process"),
        (dict(process=proc, beta=0.0), r"^run_trials\.beta"),
        (dict(process=proc, dtype="float16"), r"^run_trials\.dtype"),
        (dict(process=proc, action_mode="greedy"), r"^run_trials\.action_mode"),
    ]
    for kw, match in cases:
        kw = {"model": model, **kw}
        with pytest.raises(ValidationError, match=match):
            run_trials(kw.pop("model"), kw.pop("process", None), scheme="pymdp", **kw)
    with pytest.raises(ValidationError, match=r"^run_trials\.scheme"):
        run_trials(model, proc, scheme="PYMDP")


def test_numba_vectorised_log_is_within_an_ulp():
    pytest.importorskip("numba")
    from predcode.kernels.aif_numba import _vlog

    rng = np.random.default_rng(0)
    x = np.concatenate([rng.random(2000), 10.0 ** rng.uniform(-16, 0, 2000),
                        [2.220446049250313e-16, 0.5, 1.0, 2.0 ** 0.5, np.nextafter(2.0 ** 0.5, 0),
                         np.nextafter(1.0, 0), 3.0, 1e300]])
    out = np.empty_like(x)
    _vlog(x, out, x.size)
    np.testing.assert_allclose(out, np.log(x), rtol=3e-16, atol=1e-300)


def test_bench_aif_takes_the_scheme():
    from predcode.bench.aif import bench_aif

    r = bench_aif(states=(3,), policies=(4,), agents=2, repeats=1, min_time=0.0, scheme="pymdp")
    assert r["config"]["scheme"] == "pymdp" and r["cases"][0]["policies"] == 4
