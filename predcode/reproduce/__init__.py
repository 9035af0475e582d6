"""Reproductions of classic papers: each runs, checks numbers and writes figures.

``REPRODUCTIONS`` maps the CLI name to a :class:`Reproduction` record: the
``"module:function"`` of its ``run(out, quick=..., backend=...)`` (imported
lazily), a one-line description, its wall time on 2 cores (full and
``--quick``) and the backends it can use.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

__all__ = ["REPRODUCTIONS", "Reproduction", "get_reproduction", "format_seconds"]

_ALL = ("auto", "numpy", "numba", "cupy")
_HOST = ("auto", "numpy", "numba")
_NUMPY = ("auto", "numpy")


@dataclass(frozen=True)
class Reproduction:
    """What the CLI knows about one reproduction before running it.

    Attributes
    ----------
    target : str
        ``"module:function"`` of the run function.
    description : str
        One line: what is reproduced.
    full_s, quick_s : float
        Wall time in seconds on 2 cores of the full and of the ``--quick`` run
        (see :data:`REPRODUCTIONS` for where each comes from; a loaded machine
        takes up to about twice as long).
    backends : tuple of str
        The ``--backend`` values the run can use (``"auto"`` always).
    """

    target: str
    description: str
    full_s: float
    quick_s: float
    backends: tuple[str, ...] = _ALL

    @property
    def times(self) -> str:
        """``"~3.5 min (--quick ~8 s)"``."""
        return f"{format_seconds(self.full_s)} (--quick {format_seconds(self.quick_s)})"


def format_seconds(seconds: float) -> str:
    """A rough duration: ``"~2 s"``, ``"~45 s"``, ``"~1.5 min"``, ``"~19 min"``."""
    if seconds < 60:
        return f"~{max(1, round(seconds))} s"
    minutes = seconds / 60
    if minutes >= 10:
        return f"~{round(minutes)} min"
    return f"~{round(2 * minutes) / 2:g} min"  # to the half minute


#: CLI name → :class:`Reproduction`. Full times: the slow tests' full runs in
#: ``.ci/run`` on an idle 2-core Xeon (2.8 GHz, numba), 2026-12-03; lewm-two-rooms,
#: which is not in CI, from its 1-core run. Quick times: reports' ``wall_time_s``
#: from the figure checks (on a loaded machine). Rounded.
REPRODUCTIONS: dict[str, Reproduction] = {
    "whittington-bogacz-2017": Reproduction(
        "predcode.reproduce.whittington2017:run",
        "Whittington & Bogacz 2017: Hebbian PC network vs backprop, PC -> BP gradients",
        108, 8),
    "rao-ballard-1999": Reproduction(
        "predcode.reproduce.rao_ballard1999:run",
        "Rao & Ballard 1999: receptive fields, end-stopping, surround, feedback removed",
        80, 11),
    "bogacz-2017": Reproduction(
        "predcode.reproduce.bogacz2017:run",
        "Bogacz 2017 free-energy tutorial: exercises 1, 2, 3 and 5", 2, 1,
        _NUMPY),
    "buckley-2017-thermostat": Reproduction(
        "predcode.reproduce.buckley2017:run",
        "Buckley et al. 2017: the active-inference thermostat, with and without action",
        2, 2, _NUMPY),
    "friston-2005-vl": Reproduction(
        "predcode.reproduce.friston2005_vl:run",
        "Friston 2005: variational Laplace, model comparison, hierarchical EM", 4, 2,
        _NUMPY),
    "friston-2008-dem": Reproduction(
        "predcode.reproduce.dem2008:run",
        "Friston 2008 DEM: convolution, Lorenz vs EKF, double well, triple estimation",
        56, 5, _HOST),
    "friston-2009-mountain-car": Reproduction(
        "predcode.reproduce.friston2009_mountain_car:run",
        "Friston et al. 2009: mountain car by active inference (spm_ADEM), away then up",
        2, 2, _NUMPY),
    "friston-2017-tmaze": Reproduction(
        "predcode.reproduce.friston2017:run",
        "Friston et al. 2017: T-maze active inference, cue first, context learning",
        10, 3),
    "epistemic-foraging": Reproduction(
        "predcode.reproduce.aif_tasks:run_epistemic_foraging",
        "epistemic foraging: expected free energy chains cue 1 -> cue 2 -> reward",
        46, 4),
    "aif-gridworld": Reproduction(
        "predcode.reproduce.aif_tasks:run_gridworld",
        "active-inference agents in a grid world, with and without slips", 39, 5),
    "hinton-1995-bars": Reproduction(
        "predcode.reproduce.hinton1995:run",
        "Hinton et al. 1995: wake-sleep Helmholtz machine vs PC on the bars problem",
        661, 6),
    "ijepa-digits": Reproduction(
        "predcode.reproduce.jepa:run",
        "I-JEPA vs predictive coding vs pixel prediction on digits, linear probe",
        234, 10),
    "lewm-two-rooms": Reproduction(
        "predcode.reproduce.lewm:run",
        "LeWorldModel-style latent vs pixel CEM planning in two rooms", 1140, 30),
}


def get_reproduction(name: str) -> Callable[..., dict[str, Any]]:
    """The ``run`` function of a reproduction by its CLI name."""
    import importlib

    from ..validation import check_choice

    check_choice(name, "reproduction", REPRODUCTIONS)
    module, func = REPRODUCTIONS[name].target.split(":")
    return getattr(importlib.import_module(module), func)
