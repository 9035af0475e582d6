r"""Active inference beyond the T-maze: epistemic foraging (cue chaining) and a grid world.

``predcode reproduce epistemic-foraging``
    Cue chaining (after pymdp's epistemic-chaining demo and the epistemic
    foraging of Friston et al. 2017): cue 1 says where cue 2 is; only cue 2
    says which arm is baited; three moves leave time for one visit to a cue-2
    place. Agents that minimise expected free energy chain the cues
    (cue 1 → the named cue-2 place → the baited arm); agents that maximise
    expected utility only do not, and find the reward about half the time.

``predcode reproduce aif-gridworld``
    Navigation to a preferred cell of a 3×3 grid in ``T - 1`` moves, with and
    without slips in the process (the agent re-plans after each outcome). The
    success rate is reported beside the best possible one (every move must
    work, or one slip may be recovered) and a random agent.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np

from ..backend import resolve_backend
from ..envs import cue_chaining, gridworld
from ..machine import machine_info
from ..models.active_inference import run_trials
from ._report import at_most, claim, write_report

__all__ = ["cue_chaining_behaviour", "gridworld_behaviour", "run_epistemic_foraging",
           "run_gridworld"]


def cue_chaining_behaviour(n_agents: int = 64, *, epistemic: bool = True, n_cue2: int = 4,
                           backend: str = "auto", random_state: int = 0) -> dict[str, Any]:
    """One cue-chaining trial for each agent: chaining, reward and the visit sequences."""
    model, process = cue_chaining(n_cue2=n_cue2)
    t0 = time.perf_counter()
    r = run_trials(model, process, n_agents=n_agents, epistemic=epistemic, backend=backend,
                   random_state=random_state)
    wall = time.perf_counter() - t0
    a = r["actions"][0, :, :, 0]
    place = r["states"][0, :, 0, 1]
    arm = np.asarray(model.names["arms"])[r["states"][0, :, 0, 2]]
    chain = (a[:, 0] == 1) & (a[:, 1] == 2 + place) & (a[:, 2] == arm)
    seqs, counts = np.unique(a, axis=0, return_counts=True)
    top = np.argsort(-counts)[:5]
    return {"cue1_first": float((a[:, 0] == 1).mean()), "chain": float(chain.mean()),
            "p_reward": float((r["obs"][0, :, -1, 2] == 1).mean()),
            "top_sequences": [[seqs[i].tolist(), int(counts[i])] for i in top],
            "n_agents": n_agents, "n_policies": model.n_policies, "wall_time_s": wall,
            "agent_steps_per_s": n_agents * (model.T - 1) / wall}


def gridworld_behaviour(n_agents: int = 64, *, slip: float = 0.0, start: int = 1,
                        backend: str = "auto", random_state: int = 0) -> dict[str, Any]:
    """Agents on a 3×3 grid from ``start`` to the far corner in 4 moves."""
    model, process = gridworld((3, 3), start=start, goal=8, T=5, slip=slip)
    r = run_trials(model, process, n_agents=n_agents, backend=backend,
                   random_state=random_state)
    s = r["states"][0, :, :, 0]
    success = float((s[:, -1] == 8).mean())
    first = np.where((s == 8).any(axis=1), (s == 8).argmax(axis=1), model.T)
    # random agent: uniform actions through the same process
    rng = np.random.default_rng(random_state + 1)
    _, state = process.reset(n_agents, rng)
    for _ in range(model.T - 1):
        _, state = process.step(state, rng.integers(0, 5, size=(n_agents, 1)), rng)
    return {"success": success, "mean_steps_to_goal": float(first.mean()),
            "random_agent_success": float((state[:, 0] == 8).mean()), "slip": slip,
            "start": start, "n_agents": n_agents, "n_policies": model.n_policies,
            "paths": s[:8].tolist()}


def cue_chaining_claims(res: dict[str, dict[str, Any]], n: int, n_cue2: int) -> list[dict]:
    """Claims of the cue-chaining run (numbers from :func:`cue_chaining_behaviour`)."""
    e, u = res["expected free energy"], res["expected utility only"]
    worse, worse_text = at_most(u["p_reward"], e["p_reward"], 0.2)
    return [
        claim("agents chain the cues: cue 1 → named cue-2 place → baited arm",
              "epistemic foraging / cue chaining (Friston et al. 2017; pymdp demo)",
              f"{100 * e['chain']:.1f} % of {n} agents ({n_cue2} cue-2 places)",
              e["chain"] >= 0.9, "chain >= 90 %"),
        claim("and reach the reward", "reward on almost every trial",
              f"P(reward) = {e['p_reward']:.3f}", e["p_reward"] >= 0.9, "P(reward) >= 0.9"),
        claim("expected utility alone does not chain",
              "no epistemic value, no reason to sample cues",
              f"chain {100 * u['chain']:.1f} %, P(reward) = {u['p_reward']:.3f}",
              u["chain"] <= 0.2 and worse, f"chain <= 20 %; P(reward) {worse_text}"),
    ]


def gridworld_claims(res: dict[str, dict[str, Any]], n: int, slip: float) -> list[dict]:
    """Claims of the grid-world run (numbers from :func:`gridworld_behaviour`)."""
    d, s = res["no slips"], res[f"slip {slip}"]
    # start 1 -> goal 8 is 3 moves; with 4 moves one slip can be recovered:
    best = (1 - slip) ** 4 + 4 * slip * (1 - slip) ** 3
    sd = np.sqrt(best * (1 - best) / n)
    return [
        claim("deterministic grid: reaches the goal by the shortest path",
              "planning as inference (preferred outcome = goal cell)",
              f"success {100 * d['success']:.1f} %, first at step "
              f"{d['mean_steps_to_goal']:.2f} (shortest 3); random agent "
              f"{100 * d['random_agent_success']:.1f} %",
              d["success"] == 1.0 and abs(d["mean_steps_to_goal"] - 3) < 1e-9,
              "every agent, in exactly 3 steps"),
        claim(f"slips (p = {slip}): re-planning recovers from one slip",
              f"best possible P(success) = {best:.3f} (at most one slip in 4 moves)",
              f"success {100 * s['success']:.1f} % (random agent "
              f"{100 * s['random_agent_success']:.1f} %)",
              s["success"] >= best - 3 * sd - 1e-9,
              f"success >= best - 3 s.e. = {best - 3 * sd:.3f}"),
    ]


def _finish(out: Path, report: dict[str, Any], title: str, figures: list[str],
            verbose: bool) -> dict[str, Any]:
    write_report(out, report, f"{title}, reproduced by predcode", figures)
    if verbose:
        print(f"{title}: {report['wall_time_s']:.1f} s")
    return report


def _bar(results: dict[str, dict[str, Any]], keys: tuple[str, ...], labels: tuple[str, ...],
         title: str, path: Path) -> None:
    from ._figures import proportion_yerr, pyplot

    plt = pyplot()
    fig, ax = plt.subplots(figsize=(6.8, 4), layout="constrained")
    x = np.arange(len(keys))
    w = 0.8 / len(results)
    n_agents = sorted({res["n_agents"] for res in results.values()})
    for i, (name, res) in enumerate(results.items()):
        v = [res[k] for k in keys]
        ax.bar(x + w * i, v, width=w, yerr=proportion_yerr(v, res["n_agents"]), capsize=3,
               label=name)
    ax.set(xticks=x + 0.4 - w / 2, xticklabels=labels, ylim=(0, 1.3),
           yticks=np.linspace(0, 1, 6),
           ylabel=f"fraction of agents (n = {', '.join(map(str, n_agents))})",
           title=f"{title}\n(95 % Wilson intervals over agents)")
    ax.legend(fontsize=8, loc="upper center", ncol=len(results))
    fig.savefig(path, dpi=110)
    plt.close(fig)


def run_epistemic_foraging(out: str | Path, *, quick: bool = False, backend: str = "auto",
                           seed: int = 0, verbose: bool = True) -> dict[str, Any]:
    """Cue chaining with and without epistemic value; writes report and a figure.

    ``seed`` seeds the agents' and the process's random choices (0: the documented run).
    """
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    n, n_cue2 = (8 if quick else 128), 4
    res = {"expected free energy": cue_chaining_behaviour(n, n_cue2=n_cue2, backend=backend,
                                                          random_state=seed),
           "expected utility only": cue_chaining_behaviour(n, n_cue2=n_cue2, epistemic=False,
                                                           backend=backend, random_state=seed)}
    claims = cue_chaining_claims(res, n, n_cue2)
    _bar(res, ("cue1_first", "chain", "p_reward"), ("cue 1 first", "full chain", "P(reward)"),
         "cue chaining", out / "cue_chaining.png")
    report = {"paper": "Friston et al. (2017) epistemic foraging; pymdp epistemic chaining",
              "quick": quick, "seed": seed, "backend": resolve_backend(backend), "claims": claims,
              "results": res, "wall_time_s": time.perf_counter() - t0,
              "machine": machine_info()}
    return _finish(out, report, "Epistemic foraging by cue chaining", ["cue_chaining.png"],
                   verbose)


def run_gridworld(out: str | Path, *, quick: bool = False, backend: str = "auto",
                  seed: int = 0, verbose: bool = True) -> dict[str, Any]:
    """Grid-world navigation with and without slips; writes report and a figure.

    ``seed`` seeds the agents, the process and the random agent (0: the documented run).
    """
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    n = 16 if quick else 128
    slip = 0.2
    res = {"no slips": gridworld_behaviour(n, backend=backend, random_state=seed),
           f"slip {slip}": gridworld_behaviour(n, slip=slip, backend=backend,
                                               random_state=seed)}
    claims = gridworld_claims(res, n, slip)
    _bar(res, ("success", "random_agent_success"), ("active inference", "random agent"),
         "3×3 grid, 4 moves: success rate", out / "gridworld.png")
    report = {"paper": "grid-world navigation by active inference", "quick": quick,
              "seed": seed,
              "backend": resolve_backend(backend), "claims": claims, "results": res,
              "wall_time_s": time.perf_counter() - t0, "machine": machine_info()}
    return _finish(out, report, "Active inference in a grid world", ["gridworld.png"], verbose)
