"""Divergence detection shared by every model that settles by gradient descent.

Settling (Euler steps on an energy) never raises the energy at a stable step
size (descent lemma). :func:`first_divergent_step` flags a trajectory that does;
:func:`verified_smaller_step` finds a step that provably settles the same batch,
so the error message can suggest a value that works rather than a guess.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from ..backend import to_numpy
from ..exceptions import DivergenceError


def energies_to_host(energies: Sequence[Any]) -> np.ndarray:
    """Device scalars → one float64 host array (one sync)."""
    return np.array([float(to_numpy(e)) for e in energies])


def first_divergent_step(energies: Sequence[Any], dtype: Any, monotone: bool = True) -> int | None:
    """Index of the first flagged step, or None.

    Flagged: a non-finite energy; with ``monotone``, also an energy above twice
    its start, or an end state worse than the start beyond rounding (relative
    1e-4 in float32, 1e-9 in float64).
    """
    E = energies_to_host(energies)
    bad = ~np.isfinite(E)
    if monotone:
        start = E[0]
        rtol = 1e-4 if np.dtype(dtype) == np.float32 else 1e-9
        slack = rtol * max(abs(start), 1e-30)
        bad |= E > 2.0 * start + slack
        bad[-1] |= E[-1] > start + slack
    return int(np.argmax(bad)) if bad.any() else None


def verified_smaller_step(step: float, settles: Callable[[float], bool],
                          max_halvings: int = 30) -> float | None:
    """Largest ``step / 2**k`` (k = 1..max_halvings) for which ``settles(step)`` holds."""
    for k in range(1, max_halvings + 1):
        trial = step / 2**k
        if settles(trial):
            return trial
    return None


def raise_divergence(owner: str, name: str, step: float, t: int, T: int, energies: Sequence[Any],
                     stable: float | None) -> None:
    """Raise the :class:`DivergenceError` every settling model uses."""
    E = energies_to_host(energies)
    hint = (f"use a smaller step, e.g. {name}={stable / 2:.2g} (half the largest halving of "
            f"{name}, {stable:.2g}, that settles this batch)" if stable is not None else
            f"the batch does not settle even at {name}/2^30: check the data scale and the "
            "precisions")
    raise DivergenceError(
        f"{owner}.{name}={step:g}: settling diverged at inference step {t} of {T} "
        f"(energy went from {E[0]:.4g} to {E[t]:.4g}); {hint}."
    )
