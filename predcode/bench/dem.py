r"""Benchmark of DEM on linear convolution models: time against embedding order and state size.

Each case inverts a linear state-space model with ``n_x`` hidden states, one cause
and ``n_y = max(4, n_x)`` outputs (``n_x = 2`` is SPM's convolution demo) on ``N``
time bins for ``n_iter`` DEM iterations (states only, no learning), and also times
generalized filtering (one online pass). The generalized state has
:math:`n (n_x + 1)` entries and the error :math:`n (n_y + 1 + n_x)`, so one D-step
bin costs :math:`O(n^3 (n_x + n_y)^3)` (the matrix exponential and inverse).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..backend import resolve_backend
from ..machine import machine_info
from ..models.dem import DEM, generalized_filter, simulate
from ..models.generalized import HDM, Level
from ..validation import check_int
from .timing import time_case

__all__ = ["bench_dem", "linear_model"]


def linear_model(n_x: int, n: int, random_state: int = 0) -> HDM:
    """A stable random linear convolution model with ``n_x`` states (analytic Jacobians)."""
    rng = np.random.default_rng(random_state)
    if n_x == 2:
        A = np.array([[-1.0, 4.0], [-2.0, -1.0]]) / 4
    else:
        A = rng.standard_normal((n_x, n_x)) / np.sqrt(n_x) - 1.2 * np.eye(n_x)
        A /= 4
    B = np.zeros(n_x)
    B[0] = 1.0
    n_y = max(4, n_x)
    C = rng.standard_normal((n_y, n_x)) / (4 * np.sqrt(n_x))
    lv = Level(
        g=lambda x, v, th: C @ x,
        f=lambda x, v, th: A @ x + B * v[0],
        n_out=n_y,
        n_x=n_x,
        n_v=1,
        hv=8.0,
        hw=8.0,
        gx=lambda x, v, th: C,
        gv=lambda x, v, th: np.zeros((n_y, 1)),
        fx=lambda x, v, th: A,
        fv=lambda x, v, th: B[:, None],
    )
    return HDM([lv], n=n, s=0.5)


def _median_time(fn, repeats: int) -> dict[str, Any]:
    return time_case(fn, "numpy", repeats, 0.0, max_n=repeats)


def bench_dem(
    orders: tuple[int, ...] = (2, 4, 6, 8),
    state_sizes: tuple[int, ...] = (2, 4, 8, 16),
    N: int = 32,
    n_iter: int = 4,
    backend: str = "numba",
    repeats: int = 3,
    seed: int = 0,
) -> dict[str, Any]:
    """Time DEM (``n_iter`` iterations of ``scheme="predcode"``) and generalized filtering
    on ``N`` bins.

    Returns
    -------
    dict
        ``"by_order"`` (``n_x = 2``, each order) and ``"by_state_size"`` (``n = 6``,
        each ``n_x``): DEM and filtering medians, seconds per bin, sizes; ``config``
        and ``machine``. ``seed`` seeds the random models and their data.
    """
    N = check_int(N, "N", "bench_dem")
    n_iter = check_int(n_iter, "n_iter", "bench_dem")
    repeats = check_int(repeats, "repeats", "bench_dem")
    backend = resolve_backend(backend, owner="bench_dem")
    t = np.arange(N)
    U = np.exp(-((t - 12.0) ** 2) / 8)[:, None]

    def case(n_x: int, n: int) -> dict[str, Any]:
        m = linear_model(n_x, n, random_state=seed)
        Y = simulate(m, U, random_state=seed)["Y"]
        # predcode's variant (its numba kernel, n_iter full passes with tol=0): SPM's scheme
        # stops after one iteration when nothing is learned; `predcode bench spm` times it
        kw = dict(backend=backend, scheme="predcode")
        # the first call of each (numba compilation) is reported as warmup_s
        dem = _median_time(lambda: DEM(m, n_iter=n_iter, tol=0, **kw).fit(Y), repeats)
        gf = _median_time(lambda: generalized_filter(m, Y, backend=backend), repeats)
        return {
            "n": n,
            "n_x": n_x,
            "n_u": n * (n_x + 1),
            "dem": dem,
            "filter": gf,
            "dem_s_per_bin_iter": dem["median_s"] / (N * n_iter),
        }

    by_order = [case(2, n) for n in orders]
    by_size = [case(nx, 6) for nx in state_sizes]
    return {
        "config": {"N": N, "n_iter": n_iter, "backend": backend, "repeats": repeats, "seed": seed},
        "by_order": by_order,
        "by_state_size": by_size,
        "machine": machine_info(),
    }
