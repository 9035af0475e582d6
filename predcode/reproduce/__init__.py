"""Reproductions of classic papers: each runs, checks numbers and writes figures.

``REPRODUCTIONS`` maps the CLI name to the module's ``run(out, quick=..., backend=...)``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

__all__ = ["REPRODUCTIONS", "get_reproduction"]

#: CLI name → "module:function" (imported lazily).
REPRODUCTIONS = {
    "whittington-bogacz-2017": "predcode.reproduce.whittington2017:run",
    "rao-ballard-1999": "predcode.reproduce.rao_ballard1999:run",
    "bogacz-2017": "predcode.reproduce.bogacz2017:run",
    "buckley-2017-thermostat": "predcode.reproduce.buckley2017:run",
    "friston-2005-vl": "predcode.reproduce.friston2005_vl:run",
    "friston-2008-dem": "predcode.reproduce.dem2008:run",
    "friston-2017-tmaze": "predcode.reproduce.friston2017:run",
    "epistemic-foraging": "predcode.reproduce.aif_tasks:run_epistemic_foraging",
    "aif-gridworld": "predcode.reproduce.aif_tasks:run_gridworld",
    "hinton-1995-bars": "predcode.reproduce.hinton1995:run",
    "ijepa-digits": "predcode.reproduce.jepa:run",
    "lewm-two-rooms": "predcode.reproduce.lewm:run",
}


def get_reproduction(name: str) -> Callable[..., dict[str, Any]]:
    """The ``run`` function of a reproduction by its CLI name."""
    import importlib

    from ..validation import check_choice

    check_choice(name, "reproduction", REPRODUCTIONS)
    module, func = REPRODUCTIONS[name].split(":")
    return getattr(importlib.import_module(module), func)
