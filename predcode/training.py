"""The one training loop every predcode family runs.

A model's ``fit``/``partial_fit`` (see :class:`predcode.base.Model`) end in
:func:`run_epochs`, which owns what every family used to write for itself:

* the progress bar (``verbose=True``: one tqdm bar per call, one tick per epoch,
  the epoch's metrics as its postfix; nothing at all otherwise);
* the BLAS thread limit (:func:`predcode.backend.blas_threads`);
* the history: every epoch appends ``energy`` (the family's yardstick, mean per
  sample, in the unit the model documents), ``wall_time_s`` (seconds of the
  epoch, the device synchronised before the clock stops) and the family's own
  keys to ``model.history_``;
* the divergence check: a non-finite metric, or an energy that blows up beyond
  ``BLOW_UP`` times its first value, raises :class:`DivergenceError` naming the
  parameter most likely at fault (``model._DIVERGENCE_PARAM``, usually ``lr``;
  settling models raise their own error naming ``gamma``/``k1`` from inside the
  epoch); after the last epoch, a learned array holding NaN or inf raises it too
  (:func:`check_state`), so a diverged model is never left fitted.

Everything is all-or-nothing because the caller runs it inside
:meth:`predcode.base.Model._all_or_nothing`.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from .backend import array_namespace, blas_threads, synchronize
from .exceptions import DivergenceError

__all__ = ["BLOW_UP", "run_epochs", "progress", "check_epoch", "check_state",
           "nonfinite_arrays"]

#: An epoch energy this many times larger (in magnitude) than the first epoch's
#: counts as a blow-up: learning that works lowers its energy; a rise of six
#: orders of magnitude is the signature of a step size past its stable range.
BLOW_UP = 1e6


class _Quiet:
    """Stand-in for a tqdm bar when ``verbose=False`` (no bar, no notebook widget warning)."""

    def __init__(self, iterable: Iterable) -> None:
        self._it = iterable

    def __iter__(self) -> Iterator:
        return iter(self._it)

    def set_postfix(self, *_: Any, **__: Any) -> None:
        pass

    def update(self, *_: Any) -> None:
        pass

    def close(self) -> None:
        pass


def progress(iterable: Iterable, *, verbose: bool, desc: str, unit: str = "epoch",
             total: int | None = None) -> Any:
    """A tqdm bar over ``iterable`` when ``verbose``, else a silent stand-in."""
    if not verbose:
        return _Quiet(iterable)
    from tqdm.auto import tqdm

    return tqdm(iterable, desc=desc, unit=unit, total=total, leave=False)


def check_epoch(owner: str, param: str, value: Any, epoch: int, n_epochs: int,
                row: dict[str, float], first_energy: float | None) -> None:
    """Raise :class:`DivergenceError` if the epoch's metrics show divergence.

    Parameters
    ----------
    owner : str
        Model class name, for the message.
    param, value : str, float
        The parameter most likely at fault and its value (e.g. ``"lr"``, 0.5).
    epoch, n_epochs : int
        Zero-based epoch index and the number of epochs of this call.
    row : dict
        The epoch's metrics (host floats).
    first_energy : float or None
        ``energy`` of the model's first recorded epoch (None: this is the first).
    """
    where, fix = _blame(owner, param, value)
    for key, v in row.items():
        if not math.isfinite(v):
            raise DivergenceError(
                f"{where}: training diverged in epoch {epoch + 1} of {n_epochs} "
                f"({key} became {v}); {fix}, or check the data for huge values."
            )
    e = row.get("energy")
    if e is not None and first_energy is not None and abs(e) > BLOW_UP * max(
            abs(first_energy), 1e-12):
        raise DivergenceError(
            f"{where}: training diverged in epoch {epoch + 1} of {n_epochs} (energy "
            f"rose from {first_energy:.4g} to {e:.4g}, more than {BLOW_UP:g} times); {fix}."
        )


def _blame(owner: str, param: str, value: Any) -> tuple[str, str]:
    """``("Owner.param=value", "use a smaller param, e.g. ...")`` for a divergence message."""
    number = isinstance(value, (int, float)) and not isinstance(value, bool)
    where = f"{owner}.{param}={value:g}" if number else owner
    fix = (f"use a smaller {param}, e.g. {param}={value / 10:g}" if number and value
           else f"lower {param}")
    return where, fix


def nonfinite_arrays(state: dict[str, Any]) -> list[str]:
    """Names of the floating-point arrays of ``state`` that hold NaN or inf (on
    their own device: nothing is copied)."""
    bad = []
    for name, value in state.items():
        dtype = getattr(value, "dtype", None)
        if dtype is None or dtype.kind not in "fc":
            continue
        if not bool(array_namespace(value).isfinite(value).all()):
            bad.append(name)
    return bad


def check_state(model: Any, param: str, n_epochs: int) -> None:
    """Raise :class:`DivergenceError` if a learned array holds NaN or inf.

    The last line of defence after :func:`check_epoch`: an epoch's metrics are
    measured before its last update, so a step that overflows the weights in the
    final epoch shows only here. A diverged model is never left fitted.
    """
    bad = nonfinite_arrays(model._state())
    if bad:
        where, fix = _blame(type(model).__name__, param, getattr(model, param, None))
        shown = bad if len(bad) <= 4 else [*bad[:4], "..."]
        raise DivergenceError(
            f"{where}: training diverged in epoch {n_epochs} of {n_epochs} (the learned "
            f"array(s) {shown} became NaN or inf); {fix}, or check the data for huge values."
        )


def run_epochs(model: Any, epoch: Callable[[int, int], dict[str, float]], n_epochs: int
               ) -> None:
    """Run ``n_epochs`` calls of ``epoch(i, n_epochs)`` with bar, history and checks.

    Parameters
    ----------
    model : predcode.base.Model
        The model being trained: its ``verbose``, ``backend_``, ``history_``,
        ``_DIVERGENCE_PARAM`` are used.
    epoch : callable
        One pass over the data; returns the epoch's metrics as host floats,
        ``energy`` among them.
    n_epochs : int
        Passes to run.
    """
    owner = type(model).__name__
    param = model._DIVERGENCE_PARAM
    history = model.history_
    bar = progress(range(n_epochs), verbose=bool(getattr(model, "verbose", False)),
                   desc=owner)
    with blas_threads():
        for i in bar:
            t0 = time.perf_counter()
            row = {k: float(v) for k, v in epoch(i, n_epochs).items()}
            synchronize(model.backend_)
            row["wall_time_s"] = time.perf_counter() - t0
            first = history.get("energy", [None])[0] if history.get("energy") else None
            check_epoch(owner, param, getattr(model, param, None), i, n_epochs, row, first)
            for key, value in row.items():
                history.setdefault(key, []).append(value)
            bar.set_postfix({k: f"{v:.4g}" for k, v in row.items() if k != "wall_time_s"})
    if n_epochs and getattr(model, "check_divergence", True) is not False:
        check_state(model, param, n_epochs)
