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
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from .exceptions import ValidationError
from .validation import check_int, check_param, check_random_state

__all__ = ["CEM", "run_episode", "horizon_cost", "COST_FORMS"]

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
