"""Benchmark of the JEPA family: training steps and planning decisions.

Cases (all on the machine's CPU backends or the GPU with ``backend="cupy"``):

* ``ijepa_step_<collapse>``: one I-JEPA training step (masks, forward, backward,
  AdamW, EMA) on a batch of 8×8 digits;
* ``latent_wm_step`` / ``pixel_wm_step``: one world-model training step on a
  batch of 16×16 two-room transitions;
* ``latent_cem_decision`` / ``pixel_cem_decision``: one CEM planning decision
  (the reproduction's settings) through each model; their ratio is the planning
  speed-up of the latent model.

Each case is warmed up once (numba compilation, CuPy kernel cache; that call's
time is ``warmup_s``), then timed until ``repeats`` runs and ``min_time``
seconds have passed (:func:`~predcode.bench.timing.time_case`); the median is
reported with the machine description. The BLAS thread limit is set once for
the whole bench, not per timed call.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..backend import blas_threads, resolve_backend
from ..datasets import load_digits_split
from ..envs import TwoRooms, generate_trajectories
from ..machine import machine_info
from ..models.jepa import IJEPA
from ..models.world_model import LatentWorldModel, PixelWorldModel
from ..nn import zero_grad
from ..planning import CEM, TWO_ROOMS_CEM, latent_cost
from ..validation import check_int, check_param
from .timing import time_case

__all__ = ["bench_jepa"]


def bench_jepa(*, batch: int = 64, backend: str = "numba", repeats: int = 5,
               min_time: float = 1.0, seed: int = 0) -> dict[str, Any]:
    """Time the JEPA training steps and CEM decisions (see module doc).

    ``seed`` seeds the data subset, the models, the masks and the planner.
    """
    owner = "bench_jepa"
    batch = check_int(batch, "batch", owner, low=2)
    repeats = check_int(repeats, "repeats", owner)
    check_param(min_time, "min_time", owner, low=0.0, low_inclusive=True)
    backend = resolve_backend(backend, owner=owner)
    with blas_threads():  # once for the whole bench: no threadpoolctl call per timed step
        cases = _cases(batch, backend, repeats, min_time, seed)
    ratio = cases["pixel_cem_decision"]["median_s"] / cases["latent_cem_decision"]["median_s"]
    return {"config": {"batch": batch, "backend": backend, "cem": TWO_ROOMS_CEM,
                       "seed": seed},
            "cases": cases, "planning_speedup_latent_vs_pixel": ratio,
            "machine": machine_info()}


def _cases(batch: int, backend: str, repeats: int, min_time: float,
           seed: int) -> dict[str, Any]:
    cases: dict[str, Any] = {}
    Xtr = load_digits_split(random_state=seed)[0][:batch]
    Xtr = (Xtr - Xtr.mean()) / Xtr.std()
    for collapse in ("ema", "sigreg"):
        m = IJEPA(collapse=collapse, epochs=1, batch_size=batch, backend=backend,
                  random_state=seed).fit(Xtr)
        x = m._check_X(Xtr, "bench")
        rng = np.random.default_rng(seed)

        def step(m=m, x=x, rng=rng):
            ctx, tw = m._masks(x.shape[0], rng)
            zero_grad(m.encoder_)
            zero_grad(m.predictor_)
            m._loss(x, ctx, tw, learn=True, rng=rng)
            m.optimizer_.step(1e-4)
            if m.uses_ema:
                m._ema_update(0.999)

        cases[f"ijepa_step_{collapse}"] = time_case(step, backend, repeats, min_time)
    env = TwoRooms()
    data = generate_trajectories(max(batch // 20, 2) + 1, 20, env=env, random_state=seed)
    models = {"latent": LatentWorldModel(latent_dim=8, epochs=1, batch_size=batch,
                                         backend=backend, random_state=seed),
              "pixel": PixelWorldModel(epochs=1, batch_size=batch, backend=backend,
                                       random_state=seed)}
    O = np.stack([data["obs"][:, :-1].reshape(-1, env.n_pixels),
                  data["obs"][:, 1:].reshape(-1, env.n_pixels)], axis=1)[:batch]
    A = data["actions"].reshape(-1, 1, 2)[:batch]
    for name, m in models.items():
        m.fit(data["obs"], data["actions"])
        xp = m._xp

        def wm_step(m=m, xp=xp):
            for net in m.nets_.values():
                zero_grad(net)
            m._step_loss(xp.asarray(O), xp.asarray(A), learn=True)
            m.optimizer_.step(1e-4)

        cases[f"{name}_wm_step"] = time_case(wm_step, backend, repeats, min_time)
        make = latent_cost(m, env, np.array([0.8, 0.8]))
        cost = make(np.array([0.2, 0.2]))
        planner = CEM(random_state=seed, **TWO_ROOMS_CEM)
        cases[f"{name}_cem_decision"] = time_case(lambda cost=cost, p=planner: p.plan(cost),
                                                  backend, repeats, min_time)
    return cases
