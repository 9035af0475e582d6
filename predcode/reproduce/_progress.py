"""Progress of long reproductions: a tqdm bar over the work done, with an estimate.

:func:`stage_bar` is a bar the caller advances (``bar.update(n)``) after each
piece of work; :func:`polled` advances it from a counter a model updates while
it trains (e.g. ``RaoBallard.n_inputs_seen_``, which grows batch by batch inside
one epoch), so a single ``fit`` call does not jump from 0 to 100 %.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from ..training import progress

__all__ = ["stage_bar", "polled"]


def stage_bar(total: float, *, verbose: bool, desc: str, unit: str = "step") -> Any:
    """A bar of ``total`` units (tqdm when ``verbose``, a silent stand-in otherwise)."""
    return progress(range(0), verbose=verbose, desc=desc, unit=unit, total=total)


@contextmanager
def polled(bar: Any, count: Callable[[], float], *, interval: float = 0.5) -> Iterator[None]:
    """Advance ``bar`` to ``start + count()`` every ``interval`` s while the block runs."""
    if not hasattr(bar, "refresh"):  # the silent stand-in: nothing to show
        yield
        return
    start = bar.n
    stop = threading.Event()

    def advance() -> None:
        try:
            done = count()
        except Exception:  # the counter may not exist yet (before fit initialises)
            return
        if start + done > bar.n:
            bar.update(start + done - bar.n)

    def tick() -> None:
        while not stop.wait(interval):
            advance()

    t = threading.Thread(target=tick, daemon=True)
    t.start()
    try:
        yield
    finally:
        stop.set()
        t.join()
        advance()
