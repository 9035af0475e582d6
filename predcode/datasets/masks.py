r"""Multi-block masking of I-JEPA (Assran et al. 2023, §3 and the released configs).

On a grid of ``(gh, gw)`` patches, each image gets

* ``n_targets`` **target blocks** (default 4), rectangles covering a fraction
  ``target_scale`` = (0.15, 0.2) of the grid with aspect ratio (height/width) in
  ``target_aspect`` = (0.75, 1.5);
* one **context block** at scale ``context_scale`` = (0.85, 1.0) and aspect 1,
  from which every patch of a target block is removed, so context and targets
  never overlap.

As in I-JEPA's collator, the block *sizes* are drawn once per batch (so that
every image has the same number of target patches) and the *positions* per
image; a block of scale :math:`s` and aspect :math:`a` on :math:`P` patches has
height :math:`\operatorname{round}\sqrt{sPa}` and width
:math:`\operatorname{round}\sqrt{sP/a}` (clipped to the grid). A context left
with fewer than ``min_keep`` patches is redrawn (I-JEPA: ``min_keep = 4``).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from ..exceptions import ValidationError
from ..validation import check_int, check_pair, check_random_state

__all__ = ["block_size", "multiblock_masks"]


def _check_range(value: Any, name: str, low: float, high: float) -> tuple[float, float]:
    try:
        a, b = (float(v) for v in value)
    except (TypeError, ValueError):
        raise ValidationError(f"multiblock_masks.{name}: expected a (min, max) pair, got "
                              f"{value!r}.") from None
    if not (low < a <= b <= high):
        raise ValidationError(f"multiblock_masks.{name}: expected {low} < min <= max <= {high}, "
                              f"got {value!r}.")
    return a, b


def block_size(scale: float, aspect: float, grid: tuple[int, int]) -> tuple[int, int]:
    """(height, width) in patches of a block of area fraction ``scale`` and aspect ``aspect``."""
    gh, gw = grid
    P = gh * gw
    h = int(round(math.sqrt(scale * P * aspect)))
    w = int(round(math.sqrt(scale * P / aspect)))
    return min(max(h, 1), gh), min(max(w, 1), gw)


def multiblock_masks(
    batch: int,
    grid: tuple[int, int],
    *,
    n_targets: int = 4,
    target_scale: tuple[float, float] = (0.15, 0.2),
    target_aspect: tuple[float, float] = (0.75, 1.5),
    context_scale: tuple[float, float] = (0.85, 1.0),
    min_keep: int = 4,
    random_state: Any = None,
    max_tries: int = 50,
) -> tuple[np.ndarray, np.ndarray]:
    """Draw I-JEPA multi-block masks for a batch.

    Returns
    -------
    context : ndarray of bool, shape (batch, gh * gw)
        Context patches (row-major over the grid).
    targets : ndarray of bool, shape (batch, n_targets, gh * gw)
        The target blocks; every block of a batch has the same size.

    Raises
    ------
    ValidationError
        Bad parameters, or no context with ``min_keep`` patches after
        ``max_tries`` draws (the targets cover the grid: lower the scales).
    """
    o = "multiblock_masks"
    batch = check_int(batch, "batch", o)
    gh, gw = check_pair(grid, "grid", o)
    n_targets = check_int(n_targets, "n_targets", o)
    ts = _check_range(target_scale, "target_scale", 0.0, 1.0)
    ta = _check_range(target_aspect, "target_aspect", 0.0, np.inf)
    cs = _check_range(context_scale, "context_scale", 0.0, 1.0)
    min_keep = check_int(min_keep, "min_keep", o)
    rng = check_random_state(random_state, owner=o)
    th, tw = block_size(rng.uniform(*ts), math.exp(rng.uniform(math.log(ta[0]),
                                                                  math.log(ta[1]))), (gh, gw))
    ch, cw = block_size(rng.uniform(*cs), 1.0, (gh, gw))
    context = np.zeros((batch, gh, gw), dtype=bool)
    targets = np.zeros((batch, n_targets, gh, gw), dtype=bool)
    for b in range(batch):
        for _ in range(max_tries):
            tgt = np.zeros((n_targets, gh, gw), dtype=bool)
            for k in range(n_targets):
                r, c = rng.integers(0, gh - th + 1), rng.integers(0, gw - tw + 1)
                tgt[k, r:r + th, c:c + tw] = True
            ctx = np.zeros((gh, gw), dtype=bool)
            r, c = rng.integers(0, gh - ch + 1), rng.integers(0, gw - cw + 1)
            ctx[r:r + ch, c:c + cw] = True
            ctx &= ~tgt.any(axis=0)
            if ctx.sum() >= min_keep:
                break
        else:
            raise ValidationError(
                f"{o}: after {max_tries} draws the context kept fewer than min_keep={min_keep} "
                f"patches of the {gh}x{gw} grid (targets {th}x{tw} x {n_targets}); lower "
                "target_scale or n_targets, or use a finer grid.")
        context[b], targets[b] = ctx, tgt
    return context.reshape(batch, -1), targets.reshape(batch, n_targets, -1)
