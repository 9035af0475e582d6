"""Small helpers shared by the reproductions' figures (matplotlib imported lazily).

The rules every saved figure follows are checked by ``tests/test_figures.py``:
labelled axes, a title, colour bars on images, legends that match the lines,
integer ticks on counts, spread across seeds, nothing clipped.
"""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = ["pyplot", "wilson_interval", "proportion_yerr", "integer_ticks", "WEIGHT_TILE"]

#: gid of an image that is one tile of weights scaled on its own (no colour bar; the
#: figure states the scale in words containing "scaled").
WEIGHT_TILE = "weight-tile"


def pyplot() -> Any:
    """``matplotlib.pyplot`` on the non-interactive Agg backend."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def wilson_interval(p: Any, n: Any, z: float = 1.96) -> tuple[np.ndarray, np.ndarray]:
    """Wilson score interval of a proportion ``p`` observed in ``n`` trials (95 % by default).

    Parameters
    ----------
    p : array_like
        Observed proportions in [0, 1].
    n : array_like
        Number of trials behind each proportion (> 0).
    z : float
        Normal quantile of the interval (1.96: 95 %).

    Returns
    -------
    lo, hi : ndarray
        The interval's bounds; unlike ``p ± z·sqrt(p(1-p)/n)`` it is not empty at 0 or 1.
    """
    p = np.asarray(p, dtype=float)
    n = np.asarray(n, dtype=float)
    z2 = z * z
    centre = (p + z2 / (2 * n)) / (1 + z2 / n)
    half = z * np.sqrt(p * (1 - p) / n + z2 / (4 * n * n)) / (1 + z2 / n)
    return np.clip(centre - half, 0.0, 1.0), np.clip(centre + half, 0.0, 1.0)


def proportion_yerr(p: Any, n: Any, z: float = 1.96) -> np.ndarray:
    """The Wilson interval of :func:`wilson_interval` as ``errorbar``'s ``(2, k)`` offsets."""
    p = np.asarray(p, dtype=float)
    lo, hi = wilson_interval(p, n, z)
    return np.vstack([np.maximum(p - lo, 0.0), np.maximum(hi - p, 0.0)])


def integer_ticks(axis: Any) -> None:
    """Put the major ticks of a matplotlib ``axis`` (``ax.xaxis``) on integers only."""
    from matplotlib.ticker import MaxNLocator

    axis.set_major_locator(MaxNLocator(integer=True))
