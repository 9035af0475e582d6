r"""A point mass in two rooms joined by a door, seen as small images.

The world is the unit square; a vertical wall of width ``wall`` at
:math:`x = 1/2` splits it into two rooms, open only in the door
:math:`y \in [d_0, d_1]` (default [0.4, 0.6]). The state is the position
:math:`p \in [0, 1]^2`; an action :math:`a \in [-1, 1]^2` moves it by
``step_size`` :math:`\cdot a`. A move that would enter the wall outside the door
stops at the wall (the component along the wall is kept); the outer border
clips. Observations are ``size``×``size`` images: the wall at intensity 0.5 and
the agent as a Gaussian blob of width ``blob`` pixels at intensity 1.

This is the "Two-Room" navigation task of the latent-planning literature
(DINO-WM, Zhou et al. 2024; LeWorldModel, Maes et al. 2026) reduced to a few
lines: the dynamics are written out, not simulated by a physics engine.
:func:`generate_trajectories` makes an offline, seeded data set of random
exploratory trajectories.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from ..backend import array_namespace
from ..exceptions import ValidationError
from ..validation import check_array, check_int, check_param, check_random_state

__all__ = ["TwoRooms", "generate_trajectories"]


@dataclass(frozen=True)
class TwoRooms:
    """Geometry, dynamics and rendering of the two-room world (see module doc)."""

    size: int = 16
    step_size: float = 0.08
    wall: float = 0.125
    door: tuple[float, float] = (0.4, 0.6)
    blob: float = 1.0

    def __post_init__(self) -> None:
        o = "TwoRooms"
        check_int(self.size, "size", o, low=4)
        check_param(self.step_size, "step_size", o, low=0.0, high=0.5)
        check_param(self.wall, "wall", o, low=0.0, high=0.5)
        check_param(self.blob, "blob", o, low=0.0)
        d0, d1 = self.door
        if not 0.0 <= d0 < d1 <= 1.0:
            raise ValidationError(f"TwoRooms.door: expected 0 <= d0 < d1 <= 1, got {self.door}.")

    @property
    def n_pixels(self) -> int:
        return self.size * self.size

    def room(self, pos: Any) -> Any:
        """0 for the left room, 1 for the right (the doorway counts by its side of x = 1/2)."""
        return (pos[..., 0] >= 0.5).astype(np.int64)

    def in_wall(self, pos: Any) -> Any:
        """Whether positions lie inside the wall (outside the door)."""
        xl, xr = 0.5 - self.wall / 2, 0.5 + self.wall / 2
        d0, d1 = self.door
        return (pos[..., 0] > xl) & (pos[..., 0] < xr) & ((pos[..., 1] < d0) | (pos[..., 1] > d1))

    def step(self, pos: Any, action: Any) -> Any:
        """Next positions (..., 2) from positions and actions (..., 2), batched."""
        xp = array_namespace(pos, action)
        xl, xr = 0.5 - self.wall / 2, 0.5 + self.wall / 2
        d0, d1 = self.door
        a = xp.clip(action, -1.0, 1.0) * self.step_size
        q = xp.clip(pos + a, 0.0, 1.0)
        px, py, qx, qy = pos[..., 0], pos[..., 1], q[..., 0], q[..., 1]
        from_left = (px <= xl) & (qx > xl)
        from_right = (px >= xr) & (qx < xr)
        xe = xp.where(from_left, xl, xr)
        dx = qx - px
        frac = xp.where(xp.abs(dx) > 0, (xe - px) / xp.where(dx == 0, 1.0, dx), 0.0)
        ye = py + frac * (qy - py)
        blocked = (from_left | from_right) & ((ye < d0) | (ye > d1))
        eps = 1e-6
        qx = xp.where(blocked & from_left, xl - eps, xp.where(blocked & from_right, xr + eps, qx))
        in_band = (qx > xl) & (qx < xr)
        qy = xp.where(in_band, xp.clip(qy, d0, d1), qy)
        return xp.stack([qx, qy], axis=-1)

    def render(self, pos: Any) -> Any:
        """Images (..., size*size) of positions (..., 2), flattened row-major (row = y)."""
        xp = array_namespace(pos)
        S = self.size
        c = (xp.arange(S) + 0.5) / S
        yy, xx = xp.meshgrid(c, c, indexing="ij")
        background = xp.asarray(0.5 * self.in_wall(np.stack(
            [np.asarray(xx.get() if hasattr(xx, "get") else xx),
             np.asarray(yy.get() if hasattr(yy, "get") else yy)], axis=-1)), dtype=pos.dtype)
        s2 = 2.0 * (self.blob / S) ** 2
        d2 = ((xx - pos[..., 0, None, None]) ** 2 + (yy - pos[..., 1, None, None]) ** 2)
        img = xp.maximum(xp.exp(-d2 / s2), background)
        return img.reshape(pos.shape[:-1] + (S * S,))

    def sample_free(self, n: int, rng: np.random.Generator, room: int | None = None) -> np.ndarray:
        """``n`` positions drawn uniformly outside the wall (optionally in one room)."""
        out = np.empty((0, 2))
        while len(out) < n:
            p = rng.uniform(0.02, 0.98, size=(2 * n, 2))
            keep = ~self.in_wall(p) & (np.abs(p[:, 0] - 0.5) > self.wall)
            if room is not None:
                keep &= self.room(p) == room
            out = np.concatenate([out, p[keep]])
        return out[:n]


def generate_trajectories(n_traj: int = 200, T: int = 20, *, env: TwoRooms | None = None,
                          persistence: float = 0.8, near_door: float = 0.0,
                          random_state: Any = 0,
                          dtype: Any = np.float32) -> dict[str, np.ndarray]:
    r"""Random exploratory trajectories of the two-room world, rendered (seeded, offline).

    Actions follow a persistent random walk :math:`a_t = \rho a_{t-1} +
    \sqrt{1-\rho^2}\,\xi_t`, :math:`\xi_t \sim \mathcal U[-1,1]^2` scaled by
    :math:`\sqrt 3` (so each step is informative and door crossings happen).
    A fraction ``near_door`` of the trajectories starts within 0.15 of the door
    (door crossings are rare from uniform starts: about 1 % of transitions).

    Returns
    -------
    dict
        ``"obs"`` (n_traj, T+1, size²), ``"actions"`` (n_traj, T, 2) clipped to
        [-1, 1], ``"pos"`` (n_traj, T+1, 2).
    """
    o = "generate_trajectories"
    n_traj, T = check_int(n_traj, "n_traj", o), check_int(T, "T", o)
    check_param(persistence, "persistence", o, low=0.0, high=1.0, low_inclusive=True,
                high_inclusive=False)
    check_param(near_door, "near_door", o, low=0.0, high=1.0, low_inclusive=True)
    env = TwoRooms() if env is None else env
    rng = check_random_state(random_state, owner=o)
    pos = np.empty((n_traj, T + 1, 2))
    acts = np.empty((n_traj, T, 2))
    pos[:, 0] = env.sample_free(n_traj, rng)
    n_door = int(round(near_door * n_traj))
    if n_door:
        d0, d1 = env.door
        centre = np.array([0.5, 0.5 * (d0 + d1)])
        cand = env.sample_free(50 * n_door, rng)
        cand = cand[np.linalg.norm(cand - centre, axis=1) < 0.15 + env.wall / 2][:n_door]
        pos[:len(cand), 0] = cand
    a = rng.uniform(-1, 1, size=(n_traj, 2))
    for t in range(T):
        xi = rng.uniform(-1, 1, size=(n_traj, 2)) * np.sqrt(3.0)
        a = persistence * a + np.sqrt(1 - persistence ** 2) * xi
        acts[:, t] = np.clip(a, -1, 1)
        pos[:, t + 1] = env.step(pos[:, t], acts[:, t])
    return {"obs": env.render(pos).astype(dtype), "actions": acts.astype(dtype), "pos": pos}


def check_positions(pos: Any, owner: str) -> np.ndarray:
    """Validate positions of shape (n, 2) in the unit square."""
    pos = check_array(pos, "pos", owner, shape=(None, 2))
    if (pos < 0).any() or (pos > 1).any():
        raise ValidationError(f"{owner}: positions must lie in [0, 1]^2.")
    return pos
