"""Environments: discrete generative processes (active inference) and the two-room world.

Each builder returns ``(model, process)``: the agent's
:class:`~predcode.pomdp.GenerativeModel` and the
:class:`MDPProcess` that generates its outcomes.
"""

from .discrete import (
    MDPProcess,
    cue_chaining,
    gridworld,
    tmaze,
)
from .two_rooms import TwoRooms, generate_trajectories

__all__ = ["MDPProcess", "tmaze", "cue_chaining", "gridworld", "TwoRooms", "generate_trajectories"]
