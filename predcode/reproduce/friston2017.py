r"""Friston et al. (2017): active inference in the T-maze, with context learning.

What is reproduced, each number beside the paper's claim:

1. **Epistemic then pragmatic.** An agent whose expected free energy includes
   ambiguity (epistemic value) first samples the cue, then the baited arm, and
   so reaches the reward on nearly every trial (Friston et al. 2015, 2017:
   "the agent first samples the cue and then the rewarded arm"). The same
   agent with expected utility only (no epistemic terms) has no reason to
   visit the cue and reaches the reward far less often.
2. **The trial figure.** Beliefs about hidden states, policy probabilities,
   action probabilities, outcomes and precision over one trial, laid out like
   SPM's ``spm_MDP_VB_trial``.
3. **Context learning** (Friston et al. 2016, "Active inference and
   learning"): when the baited arm never changes, Dirichlet counts ``d`` over
   the context accumulate, the context becomes known in advance, and the
   agent stops visiting the cue and goes straight to the reward (two rewarded
   outcomes per trial instead of one).

Run with ``predcode reproduce friston-2017-tmaze --out DIR``.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np

from ..backend import resolve_backend
from ..envs import tmaze
from ..machine import machine_info
from ..models.active_inference import run_trials
from ._report import at_most, claim, write_report

__all__ = ["tmaze_behaviour", "context_learning", "run"]


def tmaze_behaviour(
    n_agents: int = 256, n_trials: int = 1, *, epistemic: bool = True, backend: str = "auto",
    random_state: int = 0, **kw: Any,
) -> dict[str, Any]:
    """``n_trials`` T-maze trials for each of ``n_agents`` agents (context random each trial).

    Returns the fraction of trials that visit the cue first, that end on reward
    (overall and per trial), that follow "cue then the arm the cue named", and
    the records.
    """
    model, process = tmaze(**kw)
    r = run_trials(model, process, n_agents=n_agents, n_trials=n_trials, epistemic=epistemic,
                   backend=backend, random_state=random_state)
    a = r["actions"][:, :, :, 0]
    ctx = r["states"][:, :, 0, 1]
    named_arm = 1 + ctx  # context 0: left arm (1); context 1: right arm (2)
    rewarded = r["obs"][:, :, -1, 1] == 1
    return {
        "cue_first": float((a[..., 0] == 3).mean()),
        "cue_then_named_arm": float(((a[..., 0] == 3) & (a[..., 1] == named_arm)).mean()),
        "p_reward": float(rewarded.mean()),
        "p_reward_per_trial": rewarded.mean(axis=1).tolist(),
        "n_agents": n_agents, "n_trials": n_trials, "records": r, "model": model,
    }


def context_learning(
    n_agents: int = 32, n_trials: int = 32, *, d0: float = 4.0, backend: str = "auto",
    random_state: int = 0,
) -> dict[str, Any]:
    """Trials with a fixed context (reward on the left) and learned ``d`` over the context."""
    model, process = tmaze(context=0, learn_context=True, d0=d0)
    r = run_trials(model, process, n_agents=n_agents, n_trials=n_trials, backend=backend,
                   random_state=random_state)
    cue_first = (r["actions"][:, :, 0, 0] == 3).mean(axis=1)
    per_agent = (r["obs"][:, :, 1:, 1] == 1).sum(axis=2)  # (n_trials, n_agents)
    rewards = per_agent.mean(axis=1)
    rewards_sem = per_agent.std(axis=1, ddof=1) / np.sqrt(n_agents) if n_agents > 1 else (
        np.zeros(n_trials))
    p_final = (r["obs"][:, :, -1, 1] == 1).mean(axis=1)
    # prior belief about the context at the start of each trial = normalised d before it:
    # d grows by the final posterior over the initial context (eta = 1)
    X = r["X"][1][:, :, 0]  # (n_trials, N, 2)
    d_before = d0 + np.concatenate([np.zeros((1,) + X.shape[1:]), np.cumsum(X, axis=0)[:-1]])
    prior_left = d_before[..., 0] / d_before.sum(axis=-1)
    return {"cue_first": cue_first.tolist(), "rewards_per_trial": rewards.tolist(),
            "rewards_per_trial_sem": rewards_sem.tolist(),
            "p_reward_final": p_final.tolist(), "prior_left": prior_left.mean(axis=1).tolist(),
            "d_final": r["d"][1].mean(axis=0).tolist(), "d0": d0,
            "n_agents": n_agents, "n_trials": n_trials}


def _plot_trial(res: dict[str, Any], path: Path) -> None:
    from ._figures import pyplot

    plt = pyplot()
    r, model = res["records"], res["model"]
    k = 0  # first agent
    T = model.T
    names = model.names
    fig, axes = plt.subplots(3, 2, figsize=(12, 9), layout="constrained")
    for f, ax in enumerate(axes[0]):
        X = r["X"][f][0, k].T  # (S_f, T)
        im = ax.imshow(X, cmap="gray_r", vmin=0, vmax=1, aspect="auto")
        labels = names["locations"] if f == 0 else ("reward left", "reward right")
        ax.set(yticks=range(len(labels)), yticklabels=labels, xticks=range(T),
               xlabel="time step", title=f"beliefs about hidden states: {names['factors'][f]}")
        true = r["states"][0, k, :, f]
        ax.plot(range(T), true, "o", mfc="none", mec="tab:red", ms=12, label="true state")
        ax.legend(loc="upper right", fontsize=8)
        fig.colorbar(im, ax=ax, label="posterior probability")
    ax = axes[1, 0]
    q = r["q_pi"][0, k].T  # (P, T - 1)
    im = ax.imshow(q, cmap="gray_r", vmin=0, vmax=1, aspect="auto")
    pol = [" → ".join(names["locations"][u] for u in v[:, 0]) for v in model.policies]
    ax.set(yticks=range(len(pol)), yticklabels=pol, xticks=range(T - 1),
           xticklabels=range(1, T), xlabel="decision", title="policy posterior q(π)")
    ax.tick_params(axis="y", labelsize=7)
    fig.colorbar(im, ax=ax, label="q(π)")
    ax = axes[1, 1]
    for t in range(T - 1):
        onehot = np.eye(4)[model.policies[:, t, 0]]
        ax.bar(np.arange(4) + 0.35 * t, r["q_pi"][0, k, t] @ onehot, width=0.35,
               label=f"decision {t + 1}")
    ax.set(xticks=np.arange(4) + 0.17, xticklabels=names["locations"], xlabel="action (move to)",
           ylabel="P(action) before α", title="action probabilities (policy marginals)")
    ax.legend()
    ax = axes[2, 0]
    obs = r["obs"][0, k]
    txt = [", ".join(names["outcomes"][m][obs[t, m]] for m in range(3)) for t in range(T)]
    ax.axis("off")
    ax.set_title("outcomes (location, reward, cue)")
    for t, s in enumerate(txt):
        ax.text(0.02, 0.8 - 0.25 * t, f"t = {t}: {s}", fontsize=11)
    ax = axes[2, 1]
    ax.plot(range(1, T), r["gamma"][0, k], "o-")
    ax.set(xlabel="decision", ylabel="precision γ", title="precision of beliefs about policies",
           ylim=(0, 1.5 * max(1.0, r["gamma"][0, k].max())), xticks=range(1, T))
    fig.suptitle("T-maze: one trial of an active-inference agent (layout of SPM's trial figure)")
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _plot_summary(beh: dict[str, Any], cl: dict[str, Any], path: Path) -> None:
    from ._figures import integer_ticks, proportion_yerr, pyplot

    plt = pyplot()
    fig, axes = plt.subplots(1, 4, figsize=(19, 4.2), layout="constrained")
    ax = axes[0]
    keys = ("cue_first", "cue_then_named_arm", "p_reward")
    x = np.arange(len(keys))
    first = next(iter(beh.values()))
    n_all = first["n_agents"] * first["n_trials"]
    for i, (name, res) in enumerate(beh.items()):
        v = [res[k] for k in keys]
        ax.bar(x + 0.4 * i, v, width=0.4, yerr=proportion_yerr(v, n_all), capsize=3,
               label=name)
    ax.set(xticks=x + 0.2, xticklabels=["cue first", "cue → named arm", "reward"],
           ylim=(0, 1.3), yticks=np.linspace(0, 1, 6), ylabel="fraction of trials",
           title=f"random context: {first['n_agents']} agents × {first['n_trials']} trials")
    ax.legend(fontsize=8, loc="upper center", ncol=2)
    ax = axes[1]
    for name, res in beh.items():
        v = res["p_reward_per_trial"]
        ax.errorbar(np.arange(1, res["n_trials"] + 1), v, yerr=proportion_yerr(v, res["n_agents"]),
                    fmt="o-", capsize=3, label=name)
    ax.set(xlabel="trial", ylabel="P(reward), fraction of agents", ylim=(0, 1.05),
           title=f"reward over trials ({first['n_agents']} agents)")
    ax.legend(fontsize=8)
    trials = np.arange(1, cl["n_trials"] + 1)
    ax = axes[2]
    ax.errorbar(trials, cl["cue_first"], yerr=proportion_yerr(cl["cue_first"], cl["n_agents"]),
                fmt="o-", capsize=2, label="fraction of agents visiting the cue first")
    ax.plot(trials, cl["prior_left"], "s-", label="prior P(context = left) = d / Σd "
                                                  "(mean over agents)")
    ax.set(xlabel="trial", ylabel="fraction of agents / probability", ylim=(-0.05, 1.45),
           yticks=np.linspace(0, 1, 6),
           title=f"context learning, reward always left ({cl['n_agents']} agents)")
    ax.legend(fontsize=8, loc="upper center")
    ax = axes[3]
    ax.errorbar(trials, cl["rewards_per_trial"], yerr=cl.get("rewards_per_trial_sem"),
                fmt="o-", capsize=2, label="mean ± s.e.m. over agents")
    ax.set(xlabel="trial", ylabel="rewarded outcomes per trial", ylim=(0, 2.1),
           title="exploitation after learning")
    ax.legend(fontsize=8, loc="lower right")
    for a in axes[1:]:
        integer_ticks(a.xaxis)
    fig.suptitle("T-maze behaviour; error bars: 95 % Wilson intervals of proportions, "
                 "s.e.m. of means")
    fig.savefig(path, dpi=110)
    plt.close(fig)


def tmaze_claims(beh: dict[str, dict[str, Any]], cl: dict[str, Any], n: int,
                 n_trials: int, k: int = 4) -> list[dict[str, Any]]:
    """Claims of the T-maze run (numbers from :func:`tmaze_behaviour`, :func:`context_learning`)."""
    e, u = beh["expected free energy"], beh["expected utility only"]
    early, late = float(np.mean(cl["cue_first"][:k])), float(np.mean(cl["cue_first"][-k:]))
    r_early = float(np.mean(cl["rewards_per_trial"][:k]))
    r_late = float(np.mean(cl["rewards_per_trial"][-k:]))
    worse, worse_text = at_most(u["p_reward"], e["p_reward"], 0.2)
    return [
        claim("the agent samples the cue first",
              "cue first, then the rewarded arm (Friston et al. 2015, 2017)",
              f"cue first {100 * e['cue_first']:.1f} %, cue then the named arm "
              f"{100 * e['cue_then_named_arm']:.1f} % of {n} agents × {n_trials} trials",
              e["cue_first"] >= 0.95 and e["cue_then_named_arm"] >= 0.95, "both >= 95 %"),
        claim("it reaches the reward (up to the arm's 0.98)", "reward on almost every trial",
              f"P(reward) = {e['p_reward']:.3f}", e["p_reward"] >= 0.9, "P(reward) >= 0.9"),
        claim("without epistemic value it does much worse",
              "expected utility alone does not sample the cue (Friston et al. 2015)",
              f"P(reward) = {u['p_reward']:.3f}, cue first {100 * u['cue_first']:.1f} %",
              worse, f"P(reward) {worse_text}"),
        claim("learning the context stops cue visits",
              "exploration gives way to exploitation (Friston et al. 2016)",
              f"cue first {100 * early:.0f} % (first {k} trials) → {100 * late:.0f} % "
              f"(last {k}); d = {np.round(cl['d_final'], 2).tolist()}",
              early >= 0.9 and late <= 0.1, "first >= 90 %, last <= 10 %"),
        claim("and doubles the reward collected per trial",
              "reward from the first move once the context is known",
              f"{r_early:.2f} → {r_late:.2f} rewarded outcomes per trial",
              r_late >= 1.8 * r_early - 0.05, "last >= 1.8 x first - 0.05"),
    ]


def run(out: str | Path, *, quick: bool = False, backend: str = "auto", seed: int = 0,
        verbose: bool = True) -> dict[str, Any]:
    """Run the T-maze reproduction; write ``report.json``, ``report.md`` and two figures.

    ``quick`` uses fewer agents and trials (a smoke run; same claims). The
    run takes seconds, so ``verbose`` has nothing to report (no progress bar).
    ``seed`` seeds every random choice of the agents and the process.
    """
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    n, n_trials = (32, 4) if quick else (256, 16)
    beh = {"expected free energy": tmaze_behaviour(n, n_trials, backend=backend,
                                                   random_state=seed),
           "expected utility only": tmaze_behaviour(n, n_trials, epistemic=False,
                                                    backend=backend, random_state=seed)}
    cl = context_learning(8 if quick else 64, 16 if quick else 32, backend=backend,
                          random_state=seed)
    e = beh["expected free energy"]
    claims = tmaze_claims(beh, cl, n, n_trials)
    _plot_trial(e, out / "tmaze_trial.png")
    _plot_summary(beh, cl, out / "tmaze_summary.png")
    report = {
        "paper": "Friston, FitzGerald, Rigoli, Schwartenbeck & Pezzulo (2017), Active "
                 "inference: a process theory, Neural Computation 29(1):1-49",
        "quick": quick, "seed": seed, "backend": resolve_backend(backend), "claims": claims,
        "results": {"behaviour": {k2: {kk: vv for kk, vv in v.items()
                                       if kk not in ("records", "model")}
                                  for k2, v in beh.items()},
                    "context_learning": cl},
        "wall_time_s": time.perf_counter() - t0, "machine": machine_info(),
    }
    write_report(out, report, "Friston et al. (2017) T-maze, reproduced by predcode",
                 ["tmaze_trial.png", "tmaze_summary.png"], footer=[
                     "Settings: reward probability 0.98, preference c = 3, T = 3, SPM's ten "
                     "policies, alpha = 512, beta = 1, 16 message-passing iterations, tau = 4."])
    return report
