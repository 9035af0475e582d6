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
    "hinton-1995-bars": "predcode.reproduce.hinton1995:run",
}


def get_reproduction(name: str) -> Callable[..., dict[str, Any]]:
    """The ``run`` function of a reproduction by its CLI name."""
    import importlib

    from ..validation import check_choice

    check_choice(name, "reproduction", REPRODUCTIONS)
    module, func = REPRODUCTIONS[name].split(":")
    return getattr(importlib.import_module(module), func)
