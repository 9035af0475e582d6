r"""Planning by the cross-entropy method (CEM), with a receding horizon.

CEM (Rubinstein 1999; as used for planning in PlaNet, Hafner et al. 2019, DINO-WM
and LeWorldModel) searches action sequences :math:`A \in [-1,1]^{H\times d_a}`:

1. draw ``samples`` sequences from :math:`\mathcal N(\mu, \operatorname{diag}\sigma^2)`,
   clipped to the action box;
2. score each with a cost :math:`c(A)` (computed for all samples at once: the
   rollouts are batched over samples);
3. refit :math:`\mu, \sigma` to the ``elites`` cheapest; repeat ``iterations`` times.

:func:`run_episode` plans, executes the first action, observes, and plans again
(receding horizon / model-predictive control), warm-starting :math:`\mu` with
the previous plan shifted by one step.

Costs for world models (any object with ``infer``/``encode`` and ``rollout``,
e.g. :class:`~predcode.models.LatentWorldModel`; and an environment with
``render``/``step``, e.g. :class:`~predcode.envs.TwoRooms`):
:func:`state_cost` (from encoded states), :func:`latent_cost` /
:func:`pixel_cost` (from environment states, through the model's rollouts),
:func:`true_cost` (the true dynamics) and :func:`oracle_latent_cost` (true
dynamics, latent distance: a diagnostic); :func:`evaluate_planner` runs seeded
goal-reaching episodes in two rooms.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from .backend import array_namespace, to_numpy
from .exceptions import ValidationError
from .validation import check_int, check_param, check_random_state

__all__ = ["CEM", "run_episode", "horizon_cost", "COST_FORMS", "TWO_ROOMS_CEM",
           "TWO_ROOMS_COST_FORM", "state_cost", "latent_cost", "pixel_cost", "true_cost",
           "oracle_latent_cost", "evaluate_planner"]

#: Reductions of per-step costs to a sequence cost (:func:`horizon_cost`).
COST_FORMS = ("sum", "final", "min")


def horizon_cost(d: Any, form: str = "sum") -> Any:
    r"""Reduce per-step costs ``d`` (samples, H) to one cost per action sequence.

    With :math:`d_h` the cost of the state predicted after step :math:`h`
    (e.g. the squared distance to the goal):

    * ``"sum"``: :math:`c = \sum_{h=1}^H d_h` (reach the goal early and stay);
    * ``"final"``: :math:`c = d_H` (endpoint cost);
    * ``"min"``: :math:`c = \min_{h} d_h` (closest approach: a sequence is as good as
      the nearest it comes to the goal, whatever it does afterwards).

    Parameters
    ----------
    d : array (samples, H)
    form : {"sum", "final", "min"}

    Returns
    -------
    array (samples,)
    """
    if form not in COST_FORMS:
        raise ValidationError(f"horizon_cost: form must be one of {COST_FORMS}, got {form!r}.")
    if getattr(d, "ndim", None) != 2:
        raise ValidationError(f"horizon_cost: d must be 2-D (samples, H), got shape "
                              f"{getattr(d, 'shape', None)}.")
    if form == "sum":
        return d.sum(axis=1)
    if form == "final":
        return d[:, -1]
    return d.min(axis=1)


@dataclass
class CEM:
    """Cross-entropy-method planner (see module doc).

    Parameters
    ----------
    horizon : int
        Planning horizon :math:`H` (steps).
    samples, iterations, elites : int
        Population per iteration, refits per decision, elite count.
    init_std, min_std : float
        Initial and floor standard deviation of the sampling distribution.
    action_dim : int
    random_state : int, Generator or None
    """

    horizon: int = 8
    samples: int = 200
    iterations: int = 4
    elites: int = 20
    init_std: float = 0.7
    min_std: float = 0.05
    action_dim: int = 2
    random_state: Any = None

    def __post_init__(self) -> None:
        o = "CEM"
        for name in ("horizon", "samples", "iterations", "elites", "action_dim"):
            check_int(getattr(self, name), name, o)
        if self.elites > self.samples:
            raise ValidationError(f"CEM.elites: must be <= samples ({self.samples}), got "
                                  f"{self.elites}.")
        check_param(self.init_std, "init_std", o, low=0.0)
        check_param(self.min_std, "min_std", o, low=0.0, low_inclusive=True)
        self.rng = check_random_state(self.random_state, owner=o)

    def plan(self, cost: Callable[[np.ndarray], np.ndarray], init_mean: np.ndarray | None = None
             ) -> tuple[np.ndarray, float]:
        """Best mean action sequence (H, action_dim) and the cost of the best sample seen.

        ``cost`` maps actions (samples, H, action_dim) to costs (samples,).
        """
        H, da, S = self.horizon, self.action_dim, self.samples
        mu = np.zeros((H, da)) if init_mean is None else np.asarray(init_mean, float).copy()
        if mu.shape != (H, da):
            raise ValidationError(f"CEM.plan: init_mean must have shape {(H, da)}, got "
                                  f"{mu.shape}.")
        sd = np.full((H, da), self.init_std)
        best = np.inf
        for _ in range(self.iterations):
            A = np.clip(mu + sd * self.rng.standard_normal((S, H, da)), -1.0, 1.0)
            c = np.asarray(cost(A), dtype=float)
            if c.shape != (S,):
                raise ValidationError(f"CEM.plan: cost must return shape ({S},), got {c.shape}.")
            if not np.all(np.isfinite(c)):
                raise ValidationError("CEM.plan: the cost returned NaN or inf.")
            idx = np.argsort(c)[:self.elites]
            elite = A[idx]
            mu, sd = elite.mean(axis=0), np.maximum(elite.std(axis=0), self.min_std)
            best = min(best, float(c[idx[0]]))
        return mu, best


def run_episode(
    planner: CEM,
    make_cost: Callable[[np.ndarray], Callable[[np.ndarray], np.ndarray]],
    step: Callable[[np.ndarray, np.ndarray], np.ndarray],
    start: np.ndarray,
    goal: np.ndarray,
    *,
    max_steps: int = 30,
    tol: float = 0.08,
) -> dict[str, Any]:
    """Receding-horizon control until the state is within ``tol`` of ``goal``.

    Parameters
    ----------
    planner : CEM
    make_cost : callable
        ``make_cost(state)`` returns the cost of action sequences from ``state``
        (it encodes the observation of ``state``, or uses it directly).
    step : callable
        True environment dynamics ``step(state, action) -> state``.
    start, goal : ndarray (2,)
        Start and goal states; success is ``|state - goal| < tol``.

    Returns
    -------
    dict
        ``success``, ``steps``, ``final_distance``, ``decision_times_s`` (list),
        ``path`` (steps+1, 2).
    """
    check_int(max_steps, "max_steps", "run_episode")
    state = np.asarray(start, dtype=float)
    path = [state.copy()]
    times = []
    mu = None
    for _ in range(max_steps):
        if np.linalg.norm(state - goal) < tol:
            break
        t0 = time.perf_counter()
        plan, _ = planner.plan(make_cost(state), init_mean=mu)
        times.append(time.perf_counter() - t0)
        state = np.asarray(step(state, plan[0]), dtype=float)
        path.append(state.copy())
        mu = np.concatenate([plan[1:], np.zeros((1, plan.shape[1]))])
    d = float(np.linalg.norm(state - goal))
    return {"success": d < tol, "steps": len(path) - 1, "final_distance": d,
            "decision_times_s": times, "path": np.array(path)}


#: CEM settings of the two-room planning (the lewm-two-rooms reproduction and its
#: benchmark). Horizon 20 (was 8): with a closest-approach cost the planner must see the
#: goal within the horizon, and a path through the door is up to ~20 steps of 0.08
#: (screening in ``docs/world_models.rst``).
TWO_ROOMS_CEM = {"horizon": 20, "samples": 128, "iterations": 3, "elites": 16}
#: How the per-step costs are reduced over the horizon in two rooms (:func:`horizon_cost`):
#: ``"min"``, the closest approach to the goal (the sum reached the other room less often).
TWO_ROOMS_COST_FORM = "min"


def state_cost(model: Any, z0: Any, zg: Any, form: str = "sum"
               ) -> Callable[[np.ndarray], np.ndarray]:
    r"""Cost of action sequences from state ``z0`` (1, d) to goal state ``zg`` (1, d).

    :math:`d_h = \lVert \hat z_h - z_g\rVert^2` along ``model.rollout`` (batched
    over the samples), reduced over the horizon by :func:`horizon_cost`
    (``form``); the actions are moved to the states' device and dtype, the
    costs come back to the host (one transfer per call).
    """
    xp = array_namespace(z0)
    dt = z0.dtype

    def cost(A: np.ndarray) -> np.ndarray:
        Z = model.rollout(xp.repeat(z0, A.shape[0], axis=0), xp.asarray(A.astype(dt)))
        return to_numpy(horizon_cost(((Z - zg[:, None, :]) ** 2).sum(axis=2), form))

    return cost


def _encode_states(model: Any, env: Any, states: np.ndarray) -> Any:
    """The model's states of the rendered environment ``states`` (n, 2), on its device."""
    img = env.render(states).astype(model.dtype_)
    return model.encode(model._xp.asarray(img))  # the one host->device move of the images


def latent_cost(model: Any, env: Any, goal: np.ndarray, form: str = "sum"):
    r"""``make_cost(state)`` for CEM through a latent (or pixel) model's rollouts.

    Per-step cost :math:`d_h = \lVert \hat z_h - f(o_\text{goal})\rVert^2`, reduced over
    the horizon by :func:`horizon_cost` (``form``); :math:`f` is the model's
    ``encode`` of the rendered state.
    """
    zg = _encode_states(model, env, np.asarray(goal)[None])

    def make(state: np.ndarray):
        return state_cost(model, _encode_states(model, env, np.asarray(state)[None]), zg, form)

    return make


pixel_cost = latent_cost  # the pixel model's "latent" is the image itself


def _true_positions(env: Any, state: np.ndarray, A: np.ndarray) -> np.ndarray:
    """Positions (S, H, 2) of the true dynamics from ``state`` under actions (S, H, 2)."""
    p = np.broadcast_to(state, (A.shape[0], 2)).copy()
    out = np.empty(A.shape[:2] + (2,))
    for h in range(A.shape[1]):
        p = env.step(p, A[:, h])
        out[:, h] = p
    return out


def true_cost(env: Any, goal: np.ndarray, form: str = "sum"):
    """``make_cost(state)`` with the true dynamics and the squared position distance."""
    def make(state: np.ndarray):
        def cost(A: np.ndarray) -> np.ndarray:
            P = _true_positions(env, state, A)
            return horizon_cost(((P - goal) ** 2).sum(axis=2), form)
        return cost
    return make


def oracle_latent_cost(model: Any, env: Any, goal: np.ndarray, form: str = "sum"):
    r"""True dynamics, latent cost (a diagnostic).

    :math:`d_h = \lVert f(\text{render}(p_h)) - f(o_\text{goal})\rVert^2` along the
    true rollout :math:`p_h`, reduced by :func:`horizon_cost`.

    It separates the latent *geometry* (is the distance to the
    goal's encoding a usable cost?) from the *predictor* (are its rollouts right?).
    """
    zg = to_numpy(_encode_states(model, env, np.asarray(goal)[None]))

    def make(state: np.ndarray):
        def cost(A: np.ndarray) -> np.ndarray:
            P = _true_positions(env, state, A)
            Z = to_numpy(_encode_states(model, env, P.reshape(-1, 2)))
            d = ((Z - zg) ** 2).sum(axis=1).reshape(A.shape[:2])
            return horizon_cost(d, form)
        return cost
    return make


def evaluate_planner(cost_factory: Callable[[np.ndarray], Any], env: Any, episodes: int, *,
                     max_steps: int = 40, tol: float = 0.1, random_state: int = 0,
                     cem: dict[str, Any] | None = None, desc: str | None = None
                     ) -> dict[str, Any]:
    """Success rates (same room / other room) and decision times over ``episodes``.

    Episodes alternate same room / other room of a two-room environment
    (``env.sample_free(n, rng, room=)``, ``rng`` seeded by ``random_state``); episode
    ``ep`` plans with ``CEM(random_state=random_state + ep, **{**TWO_ROOMS_CEM, **cem})``;
    ``desc`` shows a
    progress bar over the episodes with that label (``None``: no bar).
    """
    check_int(episodes, "episodes", "evaluate_planner")
    rng = np.random.default_rng(random_state)
    cem = {**TWO_ROOMS_CEM, **(cem or {})}
    out: dict[str, list] = {"same": [], "cross": []}
    times: list[float] = []
    dist: list[float] = []
    it: Any = range(episodes)
    if desc is not None:
        from tqdm.auto import tqdm

        it = tqdm(it, desc=desc, leave=False)
    for ep in it:
        kind = "same" if ep % 2 == 0 else "cross"
        s = env.sample_free(1, rng, room=0)[0]
        g = env.sample_free(1, rng, room=0 if kind == "same" else 1)[0]
        r = run_episode(CEM(random_state=random_state + ep, **cem), cost_factory(g), env.step,
                        s, g,
                        max_steps=max_steps, tol=tol)
        out[kind].append(bool(r["success"]))
        times += r["decision_times_s"]
        dist.append(r["final_distance"])
    allw = out["same"] + out["cross"]
    return {"episodes": episodes, "success": float(np.mean(allw)),
            "success_same_room": float(np.mean(out["same"])) if out["same"] else None,
            "success_other_room": float(np.mean(out["cross"])) if out["cross"] else None,
            "median_decision_s": float(np.median(times)) if times else 0.0,
            "decisions": len(times), "mean_final_distance": float(np.mean(dist))}
