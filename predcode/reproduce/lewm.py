r"""LeWorldModel-style latent planning in the two-room world ("lewm-two-rooms").

What is run (all seeded, offline):

1. Random exploratory trajectories of :class:`~predcode.envs.TwoRooms` rendered
   as 16×16 images.
2. A :class:`~predcode.models.LatentWorldModel` (encoder → 8-d latent,
   action-conditioned predictor, loss = latent prediction MSE along 8-step
   rollouts + λ·SIGReg, no EMA, no stop-gradient) and a
   :class:`~predcode.models.PixelWorldModel` (a CNN predicting the next image),
   same data, same epochs.
3. Goal-reaching by receding-horizon CEM (:mod:`predcode.planning`) with the
   *same* CEM settings through (a) the latent model, cost
   :math:`\min_h \lVert \hat z_h - z_\text{goal}\rVert^2` (closest approach over the
   horizon, :func:`~predcode.planning.horizon_cost`); (b) the pixel model, cost
   :math:`\min_h \lVert \hat o_h - o_\text{goal}\rVert^2`; (c) the true dynamics with
   the position distance (an upper bound); (a) and (c) again with the summed cost
   :math:`\sum_h` for comparison. Every planner runs the same episodes (starts,
   goals, CEM seeds): half with the goal in the same room, half in the other room
   (through the door).

Reported: training curves, probe :math:`R^2` of the agent's position from the
latent (closed-form ridge, held-out trajectories), the latent's effective rank,
success rates, and the median time per planning decision with the ratio
pixel / latent (LeWorldModel reports planning 48× faster than DINO-WM's
patch-feature world model; here the comparison is with a pixel-space model).

Run with ``predcode reproduce lewm-two-rooms --out DIR``.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np

from ..backend import resolve_backend, to_numpy
from ..envs import TwoRooms, generate_trajectories
from ..machine import machine_info
from ..metrics.representations import effective_rank, linear_probe
from ..models.world_model import LatentWorldModel, PixelWorldModel
from ..planning import (
    TWO_ROOMS_CEM,
    TWO_ROOMS_COST_FORM,
    evaluate_planner,
    latent_cost,
    pixel_cost,
    true_cost,
)
from ._report import at_least, claim, write_report

__all__ = ["run", "CEM_SETTINGS", "COST_FORM", "ROLLOUT_STEPS"]

#: CEM settings shared by every planner of the reproduction
#: (:data:`predcode.planning.TWO_ROOMS_CEM`).
CEM_SETTINGS = TWO_ROOMS_CEM
#: Reduction of the per-step costs over the horizon
#: (:data:`predcode.planning.TWO_ROOMS_COST_FORM`).
COST_FORM = TWO_ROOMS_COST_FORM
#: The latent model is trained on 8-step rollouts (one-step teacher forcing reached the
#: other room in 8 % of episodes, 8-step rollouts 27 % at horizon 8; 16-step rollouts
#: 3 % at horizon 20, in screening).
ROLLOUT_STEPS = 8


def _plot(rep: dict[str, Any], path: Path) -> None:
    from ._figures import integer_ticks, proportion_yerr, pyplot

    plt = pyplot()
    fig, ax = plt.subplots(1, 4, figsize=(17, 3.9), layout="constrained")
    h = rep["training"]
    lam = rep["settings"]["sigreg_weight"]
    ep = np.arange(1, len(h["latent"]["loss"]) + 1)
    ax[0].plot(ep, h["latent"]["loss"], "o-", ms=3, label="latent prediction MSE (rollouts)")
    ax[0].plot(ep, h["latent"]["reg"], "s-", ms=3, label=f"SIGReg statistic (weight λ = {lam})")
    ax[0].set(yscale="log", xlabel="epoch", ylabel="batch-mean loss term (log scale)",
              title="latent world model: training")
    ax[0].legend(fontsize=7)
    ep = np.arange(1, len(h["pixel"]["loss"]) + 1)
    ax[1].plot(ep, h["pixel"]["loss"], "o-", ms=3, color="C2", label="next-image MSE")
    ax[1].set(yscale="log", xlabel="epoch", ylabel="batch-mean squared error (log scale)",
              title="pixel world model: training")
    ax[1].legend(fontsize=7)
    for a in ax[:2]:
        integer_ticks(a.xaxis)
    p = rep["planning"]
    names = [n for n in ("true", "latent", "pixel") if n in p]
    shown = {"true": "true dynamics", "latent": "latent model", "pixel": "pixel model"}
    x = np.arange(len(names))
    for j, (key, label) in enumerate((("success_same_room", "same room"),
                                      ("success_other_room", "other room"))):
        # episodes alternate same room (even) / other room (odd)
        n = [(p[k]["episodes"] + (1 - j)) // 2 for k in names]
        v = [p[k][key] or 0.0 for k in names]
        ax[2].bar(x + 0.4 * j - 0.2, v, 0.4, yerr=proportion_yerr(v, np.maximum(n, 1)),
                  capsize=3, label=label)
    ax[2].set_xticks(x, [f"{shown[k]}\n({p[k]['episodes']} episodes)" for k in names])
    ax[2].set(ylim=(0, 1.05), ylabel="success rate (fraction of episodes)",
              title="goal reaching by CEM (95 % Wilson interval)")
    ax[2].legend(fontsize=7)
    ax[3].bar([shown[k] for k in names], [1e3 * p[k]["median_decision_s"] for k in names],
              color="C2")
    ax[3].set(yscale="log", ylabel="median time per planning decision (ms)",
              title="planning cost")
    fig.suptitle("LeWorldModel-style latent planning in two rooms"
                 + (" (quick run)" if rep.get("quick") else ""))
    fig.savefig(path, dpi=120)
    plt.close(fig)


def run(out: str | Path, *, quick: bool = False, backend: str = "auto", seed: int = 0,
        verbose: bool = True) -> dict[str, Any]:
    """Train both world models, plan with CEM; write the report and ``lewm_two_rooms.png``.

    ``seed`` shifts every seed (trajectories ``seed``, ``seed + 1``; models ``seed``;
    episodes and CEM ``seed + episode``; 0: the documented run).
    """
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    t_start = time.perf_counter()
    env = TwoRooms()
    n_traj, epochs, episodes = (60, 2, 4) if quick else (300, 15, 50)
    # the full run plans the same episodes (starts, goals, seeds) with every planner;
    # the quick path (a smoke test) runs fewer, shorter pixel episodes
    pixel_episodes, max_steps = (2, 10) if quick else (episodes, 40)
    pixel_max_steps = 4 if quick else max_steps
    train = generate_trajectories(n_traj, 20, env=env, random_state=seed)
    test = generate_trajectories(50 if not quick else 10, 20, env=env, random_state=seed + 1)
    common = {"epochs": epochs, "backend": backend, "random_state": seed, "verbose": verbose}
    t0 = time.perf_counter()
    lat = LatentWorldModel(latent_dim=8, sigreg_weight=0.05, rollout_steps=ROLLOUT_STEPS,
                           **common).fit(
        train["obs"], train["actions"])
    t_lat = time.perf_counter() - t0
    t0 = time.perf_counter()
    pix = PixelWorldModel(**common).fit(train["obs"], train["actions"])
    t_pix = time.perf_counter() - t0
    Ztr = to_numpy(lat.encode(train["obs"].reshape(-1, env.n_pixels)))
    Zte = to_numpy(lat.encode(test["obs"].reshape(-1, env.n_pixels)))
    r2 = linear_probe(Ztr, train["pos"].reshape(-1, 2), Zte, test["pos"].reshape(-1, 2),
                      task="regression")
    f = COST_FORM

    def bar(name: str) -> str | None:
        return f"planning: {name}" if verbose else None

    planning = {
        "true": evaluate_planner(lambda g: true_cost(env, g, f), env, episodes,
                                 max_steps=max_steps, desc=bar("true dynamics"),
                                 random_state=seed),
        "latent": evaluate_planner(lambda g: latent_cost(lat, env, g, f), env, episodes,
                                   max_steps=max_steps, desc=bar("latent model"),
                                   random_state=seed),
        "pixel": evaluate_planner(lambda g: pixel_cost(pix, env, g, f), env, pixel_episodes,
                                  max_steps=pixel_max_steps, desc=bar("pixel model"),
                                  random_state=seed),
        # the same episodes with the summed cost (the earlier setting), for comparison
        "true_sum": evaluate_planner(lambda g: true_cost(env, g, "sum"), env, episodes,
                                     max_steps=max_steps, desc=bar("true dynamics, sum"),
                                     random_state=seed),
        "latent_sum": evaluate_planner(lambda g: latent_cost(lat, env, g, "sum"), env,
                                       episodes, max_steps=max_steps,
                                       desc=bar("latent model, sum"), random_state=seed),
    }
    ratio = planning["pixel"]["median_decision_s"] / max(planning["latent"]["median_decision_s"],
                                                         1e-12)
    L, P, T = planning["latent"], planning["pixel"], planning["true"]
    claims = [
        claim("SIGReg keeps the end-to-end latents spread (no collapse)",
              "no EMA / stop-gradient needed with SIGReg (LeWM)",
              f"latent s.d. {Zte.std(axis=0).mean():.2f}, effective rank "
              f"{effective_rank(Zte):.1f} of 8", Zte.std(axis=0).mean() > 0.3,
              "mean latent s.d. > 0.3"),
        claim("latent planning is faster per decision than pixel-space planning",
              "48x faster planning than DINO-WM (LeWM)",
              f"{1e3 * L['median_decision_s']:.1f} ms vs {1e3 * P['median_decision_s']:.1f} ms "
              f"(x{ratio:.1f})", ratio >= 2.0, "at least 2x faster"),
        claim("latent CEM reaches goals in the same room",
              "high success on Two-Room (LeWM)",
              f"{100 * L['success_same_room']:.0f} % ({episodes // 2 + episodes % 2} episodes); "
              f"true dynamics {100 * T['success_same_room']:.0f} %",
              L["success_same_room"] >= 0.6, "success >= 60 %"),
        claim("latent CEM reaches goals in the other room (through the door)",
              "high success on Two-Room (LeWM)",
              f"{100 * L['success_other_room']:.0f} % ({episodes // 2} episodes); "
              f"true dynamics {100 * T['success_other_room']:.0f} %",
              L["success_other_room"] >= 0.6, "success >= 60 %"),
        claim("latent planning more successful than pixel-space planning",
              "(LeWM vs pixel/patch world models)",
              f"{100 * L['success']:.0f} % ({episodes} episodes) vs {100 * P['success']:.0f} % "
              f"({pixel_episodes} episodes)",
              *at_least(L["success"], P["success"], 0.1, scale=100, unit=" points")),
    ]
    report = {
        "paper": "Maes et al. 2026, LeWorldModel (arXiv 2603.19312); LeCun 2022",
        "quick": quick, "seed": seed, "backend": resolve_backend(backend), "claims": claims,
        "settings": {"n_traj": n_traj, "T": 20, "epochs": epochs, "episodes": episodes,
                     "pixel_episodes": pixel_episodes, "cem": CEM_SETTINGS,
                     "cost_form": COST_FORM,
                     "max_steps": max_steps, "tol": 0.1, "latent_dim": 8,
                     "sigreg_weight": 0.05, "rollout_steps": ROLLOUT_STEPS},
        "training": {"latent": {**lat.history_, "wall_time_s": t_lat},
                     "pixel": {**pix.history_, "wall_time_s": t_pix}},
        "probe_r2_position": r2, "effective_rank": effective_rank(Zte),
        "planning": planning, "time_ratio_pixel_over_latent": ratio,
        "wall_time_s": time.perf_counter() - t_start, "machine": machine_info(),
    }
    _plot(report, out / "lewm_two_rooms.png")
    write_report(out, report, "LeWorldModel-style latent planning in two rooms",
                 ["lewm_two_rooms.png"], notes=[
                     f"{n_traj} random trajectories x 20 steps of 16x16 images; {epochs} epochs "
                     f"each; latent model {t_lat:.1f} s, pixel model {t_pix:.1f} s to train.",
                     f"Probe R^2 of the agent's position from the 8-d latent: {r2:.2f} "
                     "(linear ridge, held-out trajectories).",
                     f"CEM {CEM_SETTINGS}, cost form '{COST_FORM}' over the horizon, "
                     f"receding horizon, <= {max_steps} steps, success = within 0.1 of the "
                     f"goal; {episodes} episodes for the true and latent planners, "
                     f"{pixel_episodes} (same starts, goals and seeds) for the pixel planner "
                     f"(its decisions cost x{ratio:.0f}).",
                     f"Same episodes with the summed cost: true "
                     f"{100 * planning['true_sum']['success_same_room']:.0f} / "
                     f"{100 * planning['true_sum']['success_other_room']:.0f} %, latent "
                     f"{100 * planning['latent_sum']['success_same_room']:.0f} / "
                     f"{100 * planning['latent_sum']['success_other_room']:.0f} % "
                     "(same / other room).",
                     f"Success (all / same room / other room): true {100 * T['success']:.0f} / "
                     f"{100 * T['success_same_room']:.0f} / {100 * T['success_other_room']:.0f} "
                     f"%, latent {100 * L['success']:.0f} / {100 * L['success_same_room']:.0f} / "
                     f"{100 * L['success_other_room']:.0f} %, pixel {100 * P['success']:.0f} / "
                     f"{100 * P['success_same_room']:.0f} / {100 * P['success_other_room']:.0f} %.",
                     f"Backend: {resolve_backend(backend)} (numba kernels for im2col, GELU, "
                     "SIGReg and the CEM rollouts where it resolves to numba).",
                     "The latent and pixel costs are distances to the goal's encoding: across "
                     "the wall they carry little information on how far the goal is, so "
                     "reaching the other room needs rollouts that come near the goal within "
                     "the horizon (hence the closest-approach cost and horizon 20)."])
    return report
