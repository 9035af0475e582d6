"""Environments for discrete active inference: generative processes and their models.

Each builder returns ``(model, process)``: the agent's
:class:`~predcode.models.active_inference.GenerativeModel` and the
:class:`MDPProcess` that generates its outcomes.
"""

from .discrete import (
    MDPProcess,
    cue_chaining,
    gridworld,
    tmaze,
)

__all__ = ["MDPProcess", "tmaze", "cue_chaining", "gridworld"]
