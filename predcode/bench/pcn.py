r"""Benchmark of a PC-network training step against the same run's GEMM roofline.

One *step* = feed-forward initialisation + ``T`` inference steps + one weight
update, on one mini-batch (``PCN._train_batch``, the code ``fit`` runs). Its
matrix products are, with :math:`S_a = \sum_{l=1}^{L} n_{l-1} n_l` and
:math:`S_2 = \sum_{l=2}^{L} n_{l-1} n_l` (the clamped input layer's prediction
is computed once, in the feed-forward pass):

* feed-forward: :math:`2 B S_a` FLOPs;
* each inference step: predictions and feedback of layers 2..L, :math:`4 B S_2`;
* final error evaluation: :math:`2 B S_2`;
* Hebbian update: :math:`2 B S_a`.

The *roofline* is the time of exactly these matrix products (same shapes, same
count, same BLAS and threads) timed alone in the same run: what the step would
cost if everything but the GEMMs were free. ``fraction = t_gemm / t_step`` is
comparable across machines; absolute times are not. The square-GEMM peak of the
same run is reported for context.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from typing import Any

import numpy as np

from ..backend import blas_threads, get_namespace, resolve_backend, synchronize
from ..exceptions import ValidationError
from ..kernels import get_kernel
from ..machine import machine_info
from ..validation import check_dtype, check_param, check_sizes
from .timing import stats

__all__ = ["bench_pcn", "pcn_step_flops"]


def pcn_step_flops(sizes: tuple[int, ...], batch: int, T: int) -> int:
    """Matrix-product FLOPs of one discriminative PCN training step (see module doc)."""
    pairs = [a * b for a, b in zip(sizes[:-1], sizes[1:], strict=True)]
    s_all, s_2 = sum(pairs), sum(pairs[1:])
    return 2 * batch * (2 * s_all + (2 * T + 1) * s_2)


def _time(fn: Callable[[], Any], backend: str, repeats: int, min_time: float) -> list[float]:
    times: list[float] = []
    start = time.perf_counter()
    while len(times) < repeats or (time.perf_counter() - start < min_time and len(times) < 10_000):
        t0 = time.perf_counter()
        fn()
        synchronize(backend)
        times.append(time.perf_counter() - t0)
    return times


def _stats(times: list[float]) -> dict[str, float]:
    return {**stats(times), "mean_s": statistics.fmean(times)}


def _gemm_sequence(xp: Any, backend: str, sizes, batch: int, T: int, dtype) -> Callable:
    """The step's matrix products alone, on buffers of the same shapes."""
    rng = np.random.default_rng(0)
    W = [None] + [xp.asarray(rng.standard_normal((b, a)).astype(dtype) * 0.01)
                  for a, b in zip(sizes[:-1], sizes[1:], strict=True)]
    fx = [xp.asarray(rng.standard_normal((batch, n)).astype(dtype)) for n in sizes]
    out = [xp.empty((batch, n), dtype=dtype) for n in sizes]
    dW = [None] + [xp.empty_like(w) for w in W[1:]]
    predict, feedback = get_kernel("pc_predict", backend), get_kernel("pc_feedback", backend)
    L = len(sizes) - 1

    def run() -> None:
        for l in range(1, L + 1):
            predict(W[l], fx[l - 1], out[l])
        for _ in range(T):
            for l in range(2, L + 1):
                predict(W[l], fx[l - 1], out[l])
            for l in range(2, L + 1):
                feedback(W[l], fx[l], out[l - 1])
        for l in range(2, L + 1):
            predict(W[l], fx[l - 1], out[l])
        for l in range(1, L + 1):
            xp.matmul(fx[l].T, fx[l - 1], out=dW[l])

    return run


def _square_gemm_rate(xp: Any, backend: str, dtype, n: int = 1024) -> float:
    rng = np.random.default_rng(1)
    A = xp.asarray(rng.standard_normal((n, n)).astype(dtype))
    C = xp.empty_like(A)
    xp.matmul(A, A, out=C)
    times = _time(lambda: xp.matmul(A, A, out=C), backend, repeats=5, min_time=0.5)
    return 2 * n**3 / statistics.median(times) / 1e9


def bench_pcn(
    sizes=(784, 300, 300, 10),
    batch: int = 64,
    steps: int = 20,
    activation: str = "tanh",
    backend: str = "numba",
    dtype: str = "float32",
    threads: int | None = 1,
    repeats: int = 30,
    min_time: float = 2.0,
    warmup: int = 5,
    gamma: float = 0.1,
    lr: float = 1e-4,
    seed: int = 0,
    jobs: int = 1,
) -> dict[str, Any]:
    """Time PCN training steps and the same run's GEMM roofline.

    Parameters
    ----------
    sizes : sequence of int
        Layer widths, input first.
    batch : int
        Mini-batch size ``B``.
    steps : int
        Inference steps ``T`` per training step.
    activation : str
        Activation function.
    backend : {"numpy", "numba", "cupy", "auto"}
        Backend of the model and of the roofline GEMMs.
    dtype : {"float32", "float64"}
        Precision.
    threads : int or None
        BLAS threads (default 1: on a busy 2-core machine two-thread BLAS
        collapses). ``None`` leaves BLAS's own setting.
    repeats, min_time : int, float
        At least ``repeats`` timed steps and at least ``min_time`` seconds.
    warmup : int
        Untimed steps first (numba compilation, CuPy kernel cache).
    gamma, lr : float
        Inference and learning rates (the standard benchmark: 0.1 and 1e-4).
    seed : int
        Seed of the random batch and of the network's initial weights.
    jobs : int
        ``PCN(n_jobs=...)``: threads settling the batch's row blocks (each with
        ``threads`` BLAS threads). The roofline GEMMs run in one thread.

    Returns
    -------
    dict
        ``step`` and ``gemm`` timing statistics, FLOPs, GFLOP/s, the roofline
        fraction, steps per second, the square-GEMM peak and ``machine`` info.
    """
    from ..models.pcn import PCN

    sizes = check_sizes(tuple(sizes), owner="bench_pcn")
    for name, value in (("batch", batch), ("steps", steps), ("repeats", repeats),
                        ("warmup", warmup)):
        check_param(value, name, "bench_pcn", kind=int, low=0, low_inclusive=name == "warmup")
    check_param(jobs, "jobs", "bench_pcn", kind=int, low=1, low_inclusive=True)
    dt = check_dtype(dtype, owner="bench_pcn")
    if threads is not None:
        check_param(threads, "threads", "bench_pcn", kind=int, low=1, low_inclusive=True)
    backend = resolve_backend(backend, owner="bench_pcn")
    xp = get_namespace(backend)
    rng = np.random.default_rng(seed)
    X = xp.asarray(rng.uniform(0, 1, (batch, sizes[0])).astype(dt))
    labels = rng.integers(0, sizes[-1], batch)
    Y = np.zeros((batch, sizes[-1]), dtype=dt)
    Y[np.arange(batch), labels] = 1.0
    Y = xp.asarray(Y)
    net = PCN(sizes=sizes, activation=activation, T=steps, gamma=gamma, lr=lr, dtype=dt.name,
              backend=backend, batch_size=batch, epochs=1, random_state=seed, n_jobs=jobs)
    with blas_threads(threads):  # once for the case: no threadpoolctl call per step
        t0 = time.perf_counter()
        net.fit(X, Y)  # initialise, compile, allocate buffers
        synchronize(backend)
        fit_s = time.perf_counter() - t0
        warm = _time(lambda: net._train_batch(X, Y), backend, warmup, 0.0) if warmup else []
        gemm = _gemm_sequence(xp, backend, sizes, batch, steps, dt)
        for _ in range(warmup):
            gemm()
        # interleaved A B A B: the step and its roofline see the same machine state
        step_times, gemm_times = [], []
        start = time.perf_counter()
        while len(step_times) < repeats or (time.perf_counter() - start < 2 * min_time
                                            and len(step_times) < 10_000):
            step_times += _time(lambda: net._train_batch(X, Y), backend, 1, 0.0)
            gemm_times += _time(gemm, backend, 1, 0.0)
        peak = _square_gemm_rate(xp, backend, dt)
    if not np.isfinite(net.history_["energy"][-1]):
        raise ValidationError("bench_pcn: the benchmark network diverged; lower gamma.")
    flops = pcn_step_flops(sizes, batch, steps)
    step, gem = _stats(step_times), _stats(gemm_times)
    return {
        "case": "pcn",
        "config": {"sizes": list(sizes), "batch": batch, "steps": steps,
                   "activation": activation, "backend": backend, "dtype": dt.name,
                   "threads": threads, "jobs": jobs, "gamma": gamma, "lr": lr, "seed": seed,
                   "timing": "step and roofline GEMMs interleaved, one call each in turn"},
        "step": step,
        "warmup_s": {"first_fit": fit_s, "steps": warm},
        "gemm": gem,
        "flops_per_step": flops,
        "steps_per_s": 1.0 / step["median_s"],
        "achieved_gflops": flops / step["median_s"] / 1e9,
        "gemm_gflops": flops / gem["median_s"] / 1e9,
        "roofline_fraction": gem["median_s"] / step["median_s"],
        "square_gemm_peak_gflops": peak,
        "fraction_of_square_peak": flops / step["median_s"] / 1e9 / peak,
        "machine": machine_info(),
    }
