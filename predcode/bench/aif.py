r"""Benchmark of discrete active inference: agent-steps per second against states and policies.

One *agent-step* is one time step of one agent: marginal message passing over
the trial for every policy (16 iterations), the expected free energy of every
policy, the policy posterior with its precision, and an action
(:func:`~predcode.models.active_inference.run_trials`, the code the
reproductions run). The model is random but valid: one hidden factor of ``S``
states with 4 actions, one modality of ``S`` outcomes, ``T = 3`` (two moves)
and ``P`` policies drawn from the 16 two-move sequences (with replacement when
``P`` > 16, which costs the same as distinct policies). The work grows as
:math:`N P T^2 S^2` (message passing) and :math:`N P T S O` (expected free
energy).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..backend import blas_threads, resolve_backend
from ..envs import MDPProcess
from ..machine import machine_info
from ..models.active_inference import make_model, run_trials
from ..validation import check_int, check_param
from .timing import time_case

__all__ = ["bench_aif", "random_model"]


def random_model(n_states: int, n_policies: int, *, T: int = 3, n_actions: int = 4,
                 random_state: int = 0):
    """A random valid model (and process) with ``n_states`` states and ``n_policies`` policies."""
    rng = np.random.default_rng(random_state)
    S = n_states
    A = rng.dirichlet(np.full(S, 0.2), size=S).T
    B = rng.dirichlet(np.full(S, 0.2), size=(n_actions, S)).transpose(2, 1, 0)
    C = rng.normal(size=S)
    V = rng.integers(0, n_actions, size=(n_policies, T - 1, 1))
    model = make_model([A], [B], [C], policies=V)
    return model, MDPProcess(model.A, model.B, model.D)


def bench_aif(
    states: tuple[int, ...] = (4, 16, 64),
    policies: tuple[int, ...] = (16, 64, 256),
    *,
    agents: int = 64,
    backend: str = "numba",
    dtype: str = "float64",
    repeats: int = 3,
    min_time: float = 0.5,
    seed: int = 0,
    scheme: str = "predcode",
) -> dict[str, Any]:
    """Time ``agents`` agents for one trial on every (states, policies) pair.

    ``scheme`` is :func:`~predcode.models.active_inference.run_trials`'s: ``"predcode"``
    (the default, described above) or ``"pymdp"`` (pymdp 1.0's semantics, one fused kernel
    call per step, deterministic actions; no precision update, no learning).

    Returns
    -------
    dict
        ``cases``: one entry per pair with the median wall time per trial and
        ``agent_steps_per_s`` (= agents × T / median time); ``config`` and
        ``machine`` (CPU, cores, BLAS, GPU, versions). ``seed`` seeds the random
        models and the agents (repeat ``k`` runs with ``seed + k``).
    """
    owner = "bench_aif"
    agents = check_int(agents, "agents", owner)
    repeats = check_int(repeats, "repeats", owner)
    check_param(min_time, "min_time", owner, low=0, low_inclusive=True)
    for s in states:
        check_int(s, "states", owner, low=2)
    for p in policies:
        check_int(p, "policies", owner)
    backend = resolve_backend(backend, owner=owner)
    cases = []
    with blas_threads():  # once for the whole bench, not per timed trial
        for S in states:
            for P in policies:
                model, process = random_model(S, P, random_state=seed)
                kw = {"n_agents": agents, "backend": backend, "dtype": dtype, "scheme": scheme}
                calls = iter(range(10**9))

                def trial(model=model, process=process, kw=kw, calls=calls):
                    run_trials(model, process, random_state=(seed + next(calls)) % 2**32, **kw)

                # the first call (numba compilation, CuPy's kernel cache) is reported as warmup_s
                st = time_case(trial, backend, repeats, min_time)
                cases.append({"states": S, "policies": P, "T": model.T, "agents": agents, **st,
                              "agent_steps_per_s": agents * model.T / st["median_s"]})
    return {"config": {"agents": agents, "backend": backend, "dtype": dtype, "scheme": scheme,
                       "states": list(states), "policies": list(policies), "seed": seed},
            "cases": cases, "machine": machine_info()}
