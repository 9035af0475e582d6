r"""Discrete environments: the T-maze, cue chaining (epistemic foraging) and a grid world.

Each is a POMDP written as arrays. The *generative process* (:class:`MDPProcess`)
samples true states and outcomes from its own ``A``, ``B``, ``D``; the agent's
*generative model* uses the same ``A`` and ``B`` but its own beliefs ``D``
(and, when learning, Dirichlet counts), as in SPM's ``MDP.GA/GB`` convention.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..exceptions import ValidationError
from ..pomdp import GenerativeModel, all_policies, make_model
from ..validation import check_int, check_param

__all__ = ["MDPProcess", "tmaze", "cue_chaining", "gridworld"]


class MDPProcess:
    """Generative process: samples states from ``D`` and ``B``, outcomes from ``A``.

    Parameters
    ----------
    A, B, D : lists of arrays
        As in :func:`~predcode.pomdp.make_model` (normalised).
    """

    def __init__(self, A: list[np.ndarray], B: list[np.ndarray], D: list[np.ndarray]):
        self.A = [np.asarray(a, dtype=np.float64) for a in A]
        self.B = [np.asarray(b, dtype=np.float64) for b in B]
        self.D = [np.asarray(d, dtype=np.float64) for d in D]

    @staticmethod
    def _sample(p: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """One draw per row of ``p`` (n, k)."""
        c = np.cumsum(p, axis=1)
        r = rng.random(p.shape[0])[:, None] * c[:, -1:]
        return np.minimum((c < r).sum(axis=1), p.shape[1] - 1)

    def observe(self, state: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """Outcomes (n, M) of true states (n, F)."""
        idx = tuple(state.T)
        return np.stack([self._sample(a[(slice(None),) + idx].T, rng) for a in self.A], axis=1)

    def reset(self, n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        """Sample ``n`` initial states and their outcomes."""
        state = np.stack([self._sample(np.broadcast_to(d, (n, d.size)), rng) for d in self.D],
                         axis=1)
        return self.observe(state, rng), state

    def step(self, state: np.ndarray, actions: np.ndarray,
             rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        """Move every factor with its action, then observe."""
        new = np.stack([self._sample(b[:, state[:, f], actions[:, f]].T, rng)
                        for f, b in enumerate(self.B)], axis=1)
        return self.observe(new, rng), new


def _context_prior(context: Any, n: int, name: str) -> np.ndarray:
    if context is None:
        return np.full(n, 1.0 / n)
    c = check_int(context, name, "envs", low=0)
    if c >= n:
        raise ValidationError(f"envs.{name}: expected 0..{n - 1} or None (random), got {c}.")
    return np.eye(n)[c]


def tmaze(
    reward_prob: float = 0.98,
    preference: float = 3.0,
    *,
    context: int | None = None,
    learn_context: bool = False,
    d0: float = 0.25,
) -> tuple[GenerativeModel, MDPProcess]:
    r"""The T-maze of Friston et al. (2015, 2017): a cue tells which arm is baited.

    Hidden factors: location (0 centre, 1 left arm, 2 right arm, 3 cue) and
    context (0: reward on the left, 1: on the right). Actions move to a
    location; the arms are absorbing (an agent that enters one stays). Outcome
    modalities: location (4, seen exactly), reward (0 none, 1 reward, 2 loss:
    the baited arm pays with ``reward_prob``) and cue (0 none, 1 "left",
    2 "right", exact at the cue location). Preferences
    :math:`C_{\text{reward}} = (0, c, -c)`, ``T = 3`` (two moves), and SPM's
    ten policies of ``DEMO_MDP_maze`` (stay/left/right/cue, then any move
    where one is possible).

    Parameters
    ----------
    reward_prob : float
        Probability that the baited arm pays (SPM and pymdp: 0.98).
    preference : float
        ``c``, the log-preference for reward (and aversion to loss).
    context : int or None
        The process's true context (None: random on every trial).
    learn_context : bool
        Give the agent Dirichlet counts ``d`` over the context (``d0`` each)
        so that it learns the context across trials (Friston et al. 2016).
    """
    check_param(reward_prob, "reward_prob", "tmaze", low=0, high=1, low_inclusive=True)
    check_param(preference, "preference", "tmaze")
    p = reward_prob
    A_loc = np.zeros((4, 4, 2))
    A_rew = np.zeros((3, 4, 2))
    A_cue = np.zeros((3, 4, 2))
    for c in range(2):
        for loc in range(4):
            A_loc[loc, loc, c] = 1.0
        A_rew[0, 0, c] = A_rew[0, 3, c] = 1.0
        A_cue[0, 0, c] = A_cue[0, 1, c] = A_cue[0, 2, c] = 1.0
        A_cue[1 + c, 3, c] = 1.0
    A_rew[:, 1, 0] = (0, p, 1 - p)
    A_rew[:, 2, 0] = (0, 1 - p, p)
    A_rew[:, 1, 1] = (0, 1 - p, p)
    A_rew[:, 2, 1] = (0, p, 1 - p)
    B_loc = np.zeros((4, 4, 4))
    for u in range(4):
        for s in range(4):
            B_loc[s if s in (1, 2) else u, s, u] = 1.0
    B_ctx = np.eye(2)[:, :, None]
    V = np.array([[0, 0], [0, 1], [0, 2], [0, 3], [1, 1], [2, 2],
                  [3, 0], [3, 1], [3, 2], [3, 3]])
    policies = np.stack([V, np.zeros_like(V)], axis=-1)
    C = [np.zeros(4), np.array([0.0, preference, -preference]), np.zeros(3)]
    D = [np.eye(4)[0], np.full(2, 0.5)]
    kw: dict[str, Any] = {}
    if learn_context:
        kw["d"] = [np.eye(4)[0], np.full(2, d0)]
    model = make_model([A_loc, A_rew, A_cue], [B_loc, B_ctx], C, D, policies=policies, **kw)
    model.names.update(factors=("location", "context"), modalities=("location", "reward", "cue"),
                       locations=("centre", "left", "right", "cue"),
                       outcomes=(("centre", "left", "right", "cue"),
                                 ("none", "reward", "loss"), ("none", "left", "right")))
    process = MDPProcess([A_loc, A_rew, A_cue], [B_loc, B_ctx],
                         [np.eye(4)[0], _context_prior(context, 2, "context")])
    return model, process


def cue_chaining(
    reward_prob: float = 0.98,
    preference: float = 3.0,
    *,
    n_cue2: int = 4,
) -> tuple[GenerativeModel, MDPProcess]:
    r"""Epistemic foraging by cue chaining (after pymdp's "epistemic chaining" demo).

    The first cue reveals where the second cue is (one of ``n_cue2`` places);
    only the second cue reveals which of two arms is baited. With three moves
    (``T = 4``) there is time for one visit to a second-cue place, so an agent
    that values information goes cue 1 → the place it named → the baited arm;
    an agent that only values reward has no reason to. Policies: every
    sequence of three moves, with one continuation (stay) after entering an arm.

    Locations: 0 centre, 1 cue 1, 2.. 1+n_cue2 second-cue places, then arms A
    and B (absorbing). Hidden factors: location, second-cue place (n_cue2),
    baited arm (2). Modalities: location (exact), cue (0 none, 1..n_cue2 "the
    second cue is at place k" at cue 1, n_cue2+1 / n_cue2+2 "arm A / B" at the
    true second-cue place), reward (none, reward, loss).
    """
    check_param(reward_prob, "reward_prob", "cue_chaining", low=0, high=1, low_inclusive=True)
    n_cue2 = check_int(n_cue2, "n_cue2", "cue_chaining", low=2)
    L = 2 + n_cue2 + 2
    armA, armB = L - 2, L - 1
    no_cue = 1 + n_cue2 + 2
    A_loc = np.zeros((L, L, n_cue2, 2))
    A_cue = np.zeros((no_cue, L, n_cue2, 2))
    A_rew = np.zeros((3, L, n_cue2, 2))
    p = reward_prob
    for k in range(n_cue2):
        for r in range(2):
            for loc in range(L):
                A_loc[loc, loc, k, r] = 1.0
                if loc == 1:
                    A_cue[1 + k, loc, k, r] = 1.0
                elif loc == 2 + k:
                    A_cue[1 + n_cue2 + r, loc, k, r] = 1.0
                else:
                    A_cue[0, loc, k, r] = 1.0
                if loc in (armA, armB):
                    good = (loc == armA) == (r == 0)
                    A_rew[:, loc, k, r] = (0, p, 1 - p) if good else (0, 1 - p, p)
                else:
                    A_rew[0, loc, k, r] = 1.0
    B_loc = np.zeros((L, L, L))
    for u in range(L):
        for s in range(L):
            B_loc[s if s in (armA, armB) else u, s, u] = 1.0
    B_k, B_r = np.eye(n_cue2)[:, :, None], np.eye(2)[:, :, None]
    V = all_policies([L], 4)[:, :, 0]
    # an arm is absorbing: keep one continuation (repeat the arm) after entering it
    keep = [all(v[i + 1] == v[i] for i in range(2) if v[i] in (armA, armB)) for v in V]
    V = V[np.asarray(keep)]
    policies = np.stack([V, np.zeros_like(V), np.zeros_like(V)], axis=-1)
    C = [np.zeros(L), np.zeros(no_cue), np.array([0.0, preference, -preference])]
    D = [np.eye(L)[0], np.full(n_cue2, 1.0 / n_cue2), np.full(2, 0.5)]
    model = make_model([A_loc, A_cue, A_rew], [B_loc, B_k, B_r], C, D, policies=policies)
    model.names.update(factors=("location", "cue2 place", "baited arm"),
                       modalities=("location", "cue", "reward"), cue1=1,
                       cue2=tuple(range(2, 2 + n_cue2)), arms=(armA, armB))
    process = MDPProcess([A_loc, A_cue, A_rew], [B_loc, B_k, B_r], D)
    return model, process


def gridworld(
    shape: tuple[int, int] = (3, 3),
    *,
    start: int = 0,
    goal: int | None = None,
    T: int = 5,
    preference: float = 4.0,
    slip: float = 0.0,
) -> tuple[GenerativeModel, MDPProcess]:
    r"""Navigation on a grid: reach the preferred cell within ``T - 1`` moves.

    One hidden factor, the cell (row-major index), with five actions (stay,
    up, down, left, right; moves off the grid stay put). One modality, the
    cell, seen exactly. Preferences: ``preference`` nats for the goal cell at
    every time step. ``slip`` is the process's probability of staying put
    instead of moving (the agent's model assumes deterministic moves).
    Policies: every sequence of ``T - 1`` actions (5^(T-1)).
    """
    rows, cols = shape
    n = rows * cols
    goal = n - 1 if goal is None else goal
    for name, v in (("start", start), ("goal", goal)):
        if not 0 <= v < n:
            raise ValidationError(f"gridworld.{name}: expected a cell 0..{n - 1}, got {v}.")
    check_param(slip, "slip", "gridworld", low=0, high=1, low_inclusive=True, high_inclusive=False)
    moves = ((0, 0), (-1, 0), (1, 0), (0, -1), (0, 1))
    B = np.zeros((n, n, 5))
    for s in range(n):
        r, c = divmod(s, cols)
        for u, (dr, dc) in enumerate(moves):
            rr, cc = r + dr, c + dc
            s2 = rr * cols + cc if 0 <= rr < rows and 0 <= cc < cols else s
            B[s2, s, u] = 1.0
    A = np.eye(n)
    C = np.zeros(n)
    C[goal] = preference
    D = np.eye(n)[start]
    model = make_model([A], [B], [C], [D], T=T)
    model.names.update(shape=shape, start=start, goal=goal)
    Bp = (1 - slip) * B + slip * np.eye(n)[:, :, None]
    return model, MDPProcess([A], [Bp], [D])
