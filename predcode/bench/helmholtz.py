"""Benchmark of the Helmholtz machine: online wake-sleep patterns per second.

The case of Hinton, Dayan, Frey & Neal (1995): a 16-8-1 machine learning 4×4 bars
online (``batch_size=1``: one wake and one sleep phase per pattern), the run
:mod:`predcode.reproduce.hinton1995` makes 2×10⁶ times per seed. The compiled
backend runs a whole pass in one fused kernel (``hm_online``). Two baselines:
:func:`numpy_wake_sleep`, the plain numpy loop over patterns one writes without
predcode (about twenty small array operations per phase), and predcode's own
reference backend (``backend="numpy"``). The ratio to the plain loop is the
entry that shows a regression: the target is :data:`TARGET_SPEEDUP` (issue 15:
at least 20× the numpy loop).

Only the ``partial_fit`` passes are timed (the bars are drawn beforehand); the
first pass (numba compilation) is reported as ``warmup_s``.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..backend import blas_threads, resolve_backend
from ..datasets import make_bars
from ..machine import machine_info
from ..models.helmholtz import HelmholtzMachine
from ..validation import check_int, check_param
from .timing import time_case

__all__ = ["TARGET_SPEEDUP", "bench_helmholtz", "numpy_wake_sleep"]

#: The compiled online pass must stay at least this many times faster than the numpy loop.
TARGET_SPEEDUP = 20.0


def numpy_wake_sleep(X: np.ndarray, sizes=(16, 8, 1), lr: float = 0.2,
                     random_state: int = 0) -> list[np.ndarray]:
    r"""Online wake-sleep (Hinton et al. 1995) for a 3-layer machine as a plain numpy loop.

    Wake, for each pattern :math:`d`: :math:`y \sim \sigma(R_1 d + r_1)`,
    :math:`z \sim \sigma(R_2 y + r_2)`, then the delta rule on the generative side,
    :math:`b \mathrel{+}= \varepsilon (z - \sigma(b))`, :math:`G_2 \mathrel{+}=
    \varepsilon (y - \sigma(G_2 z + g_2)) z^\top`, :math:`G_1 \mathrel{+}= \varepsilon
    (d - \sigma(G_1 y + g_1)) y^\top`; sleep: a dream :math:`z, y, d` from the
    generative model and the delta rule on the recognition side. Returns the weights.
    """
    rng = np.random.default_rng(random_state)
    n0, n1, n2 = sizes
    G1, g1 = np.zeros((n0, n1)), np.zeros(n0)
    G2, g2 = np.zeros((n1, n2)), np.zeros(n1)
    b = np.zeros(n2)
    R1, r1 = 0.1 * rng.standard_normal((n1, n0)), np.zeros(n1)
    R2, r2 = 0.1 * rng.standard_normal((n2, n1)), np.zeros(n2)

    def sig(a):
        return 1.0 / (1.0 + np.exp(-a))

    for d in X:
        y = (rng.random(n1) < sig(R1 @ d + r1)).astype(float)  # wake
        z = (rng.random(n2) < sig(R2 @ y + r2)).astype(float)
        b += lr * (z - sig(b))
        e2 = y - sig(G2 @ z + g2)
        G2 += lr * np.outer(e2, z)
        g2 += lr * e2
        e1 = d - sig(G1 @ y + g1)
        G1 += lr * np.outer(e1, y)
        g1 += lr * e1
        z = (rng.random(n2) < sig(b)).astype(float)  # sleep
        y = (rng.random(n1) < sig(G2 @ z + g2)).astype(float)
        d_ = (rng.random(n0) < sig(G1 @ y + g1)).astype(float)
        q1 = y - sig(R1 @ d_ + r1)
        R1 += lr * np.outer(q1, d_)
        r1 += lr * q1
        q2 = z - sig(R2 @ y + r2)
        R2 += lr * np.outer(q2, y)
        r2 += lr * q2
    return [G1, g1, G2, g2, b, R1, r1, R2, r2]


def _rate(backend: str, n: int, repeats: int, min_time: float, seed: int) -> dict[str, Any]:
    X = make_bars(n, random_state=seed)
    hm = HelmholtzMachine((16, 8, 1), lr=0.2, batch_size=1, epochs=1, backend=backend,
                          random_state=seed)
    st = time_case(lambda: hm.partial_fit(X), backend, repeats, min_time)
    return {**st, "patterns": n, "patterns_per_s": n / st["median_s"]}


def bench_helmholtz(*, patterns: int = 20_000, reference_patterns: int = 1_000,
                    backend: str = "numba", repeats: int = 3, min_time: float = 0.5,
                    seed: int = 0) -> dict[str, Any]:
    """Time online wake-sleep on 4×4 bars: ``backend`` against the numpy loop.

    Parameters
    ----------
    patterns : int
        Patterns per timed pass of the compiled backend.
    reference_patterns : int
        Patterns per timed pass of the two numpy baselines (they are 20-40× slower:
        fewer keep the bench short; rates, not times, are compared).
    backend : {"numba", "cupy", "numpy", "auto"}
        The backend measured against ``"numpy"``.
    repeats, min_time : int, float
        At least ``repeats`` timed passes and ``min_time`` seconds per backend.
    seed : int
        Seeds the bars and the machines' initial weights and samples.

    Returns
    -------
    dict
        ``cases`` (``backend``, ``"numpy_loop"`` and ``"numpy_backend"``: median, IQR,
        warm-up time, patterns/s), ``speedup`` (patterns/s over the numpy loop's),
        ``speedup_vs_numpy_backend``, ``target`` and ``holds``; ``config``, ``machine``.
    """
    owner = "bench_helmholtz"
    patterns = check_int(patterns, "patterns", owner)
    reference_patterns = check_int(reference_patterns, "reference_patterns", owner)
    repeats = check_int(repeats, "repeats", owner)
    check_param(min_time, "min_time", owner, low=0.0, low_inclusive=True)
    backend = resolve_backend(backend, owner=owner)
    Xl = make_bars(reference_patterns, random_state=seed).astype(np.float64)
    with blas_threads():
        fast = _rate(backend, patterns, repeats, min_time, seed)
        ref = _rate("numpy", reference_patterns, repeats, min_time, seed)
        loop = time_case(lambda: numpy_wake_sleep(Xl, random_state=seed), "numpy", repeats,
                         min_time)
    loop = {**loop, "patterns": reference_patterns,
            "patterns_per_s": reference_patterns / loop["median_s"]}
    speedup = fast["patterns_per_s"] / loop["patterns_per_s"]
    return {"config": {"sizes": [16, 8, 1], "batch_size": 1, "backend": backend,
                       "patterns": patterns, "reference_patterns": reference_patterns,
                       "seed": seed},
            "cases": {backend: fast, "numpy_loop": loop, "numpy_backend": ref},
            "speedup": speedup,
            "speedup_vs_numpy_backend": fast["patterns_per_s"] / ref["patterns_per_s"],
            "target": TARGET_SPEEDUP, "holds": bool(speedup >= TARGET_SPEEDUP),
            "machine": machine_info()}
