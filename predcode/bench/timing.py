"""Timing shared by the bench cases: warm-up apart from the steady state.

Every case is called ``warmup`` times untimed-for-the-median (the first call
includes numba compilation or CuPy's kernel cache; its time is reported as
``warmup_s``, the compile/warm-up cost a user pays once), then timed until
``repeats`` calls and ``min_time`` seconds have passed. The statistics are the
median, the inter-quartile range, the extremes and the count.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import numpy as np

from ..backend import synchronize

__all__ = ["stats", "time_case"]


def stats(times: list[float]) -> dict[str, Any]:
    """Median, IQR, min, max and count of ``times`` (seconds)."""
    q = np.quantile(times, [0.25, 0.5, 0.75])
    return {"median_s": float(q[1]), "iqr_s": float(q[2] - q[0]), "min_s": float(min(times)),
            "max_s": float(max(times)), "n": len(times)}


def time_case(fn: Callable[[], Any], backend: str, repeats: int, min_time: float, *,
              warmup: int = 1, max_n: int = 1000) -> dict[str, Any]:
    """Steady-state statistics of ``fn()`` plus ``warmup_s`` (list: each warm-up call's time)."""
    warm: list[float] = []
    for _ in range(max(int(warmup), 1)):
        t0 = time.perf_counter()
        fn()
        synchronize(backend)
        warm.append(time.perf_counter() - t0)
    times: list[float] = []
    start = time.perf_counter()
    while len(times) < repeats or (time.perf_counter() - start < min_time and len(times) < max_n):
        t0 = time.perf_counter()
        fn()
        synchronize(backend)
        times.append(time.perf_counter() - t0)
    return {**stats(times), "warmup_s": warm}
