r"""Buckley, Kim, McGregor & Seth (2017): the active-inference thermostat (section 7).

``predcode reproduce buckley-2017-thermostat --out DIR`` runs the agent with the
paper's values (:math:`T_0 = 100`, :math:`T_{des} = 4`, variances 0.1, ``k = 0.1``,
``k_a = 0.01``, ``x(0) = 2``, ``dt = 0.005``, 100 time units, action from t = 25)
and checks, beside the paper's figures:

* before action the belief :math:`\mu` settles between the sensed temperature
  (:math:`T(2) = 20`) and the desired one, at the fixed point of the perception
  dynamics, which for these equal variances is the precision-weighted value 12;
* with action the agent moves until it senses the desired temperature and the
  free energy falls to near zero (the noise floor);
* with action off for the whole run the belief stays at 12 and F stays high.

Figures ``thermostat_action.png`` and ``thermostat_no_action.png``.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np

from ..machine import machine_info
from ..models import thermostat as th
from ._report import claim, measurement, write_report

__all__ = ["run"]


def _plot(sim: dict[str, np.ndarray], path: Path, title: str, onset: float | None) -> None:
    from ._figures import pyplot

    plt = pyplot()
    t = sim["t"]
    fig, axes = plt.subplots(5, 1, figsize=(7.5, 10.5), sharex=True, layout="constrained")
    axes[0].plot(t, sim["T"], "r", label="T (true temperature)")
    axes[0].plot(t, sim["x"], "k", label="x (position)")
    axes[0].axhline(4.0, color="gray", ls=":", lw=0.8, label="desired temperature 4")
    axes[0].set(ylabel="T, x (a.u.)", title="world: temperature and position")
    axes[1].plot(t, sim["mu"], "k", label=r"$\mu$")
    axes[1].plot(t, sim["mu1"], "m", label=r"$\mu'$")
    axes[1].plot(t, sim["mu2"], "b", label=r"$\mu''$")
    axes[1].set(ylabel="belief (a.u.)", title="beliefs in generalised coordinates")
    axes[2].plot(t, sim["rho0"], "k", lw=0.5, label=r"$\rho$")
    axes[2].plot(t, sim["rho1"], "m", lw=0.5, label=r"$\rho'$")
    axes[2].set(ylabel="sensation (a.u.)", title="noisy sensations of T and its rate")
    axes[3].plot(t, sim["a"], "k", label="a (action)")
    axes[3].set(ylabel="action (velocity, a.u.)", title="action")
    axes[4].semilogy(t, np.maximum(sim["F"], 1e-6), "k", label="F")
    axes[4].set(ylabel="F (nats, log scale)", title="free energy")
    for ax in axes:
        if onset is not None:
            ax.axvline(onset, color="gray", lw=0.6, ls="--", label="action switched on")
        ax.legend(loc="upper right", fontsize=8)
    axes[4].set_xlabel("time (a.u.)")
    fig.suptitle(title)
    fig.savefig(path, dpi=110)
    plt.close(fig)


def run(out: str | Path, *, quick: bool = False, backend: str = "auto", seed: int = 0,
        verbose: bool = True) -> dict[str, Any]:
    """Run the thermostat with and without action; write figures and the report.

    ``quick`` uses ``dt = 0.01`` (half the steps); the claims are the same.
    ``backend`` and ``verbose`` are accepted for a uniform interface (numpy, ~1 s).
    ``seed`` shifts the sensory noise's seed (6, the documented run, plus ``seed``).
    """
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    P = dict(th.PAPER)
    if quick:
        P["dt"] = 0.01
    kw = {k: P[k] for k in ("T_end", "dt", "action_onset", "T0", "T_des", "Sigma_z0",
                            "Sigma_z1", "Sigma_w0", "Sigma_w1", "k", "k_a", "x0", "noise_sd")}
    noise_seed = 6 + seed
    act = th.simulate(action=True, random_state=noise_seed, **kw)
    still = th.simulate(action=False, random_state=noise_seed, **kw)
    t = act["t"]
    before = (t > P["action_onset"] - 5) & (t <= P["action_onset"])
    last = t > P["T_end"] - 20
    T_start = float(th.temperature(P["x0"], P["T0"])[0])
    fixed = th.belief_fixed_point(T_start, 0.0, T_des=P["T_des"], Sigma_z0=P["Sigma_z0"],
                                  Sigma_z1=P["Sigma_z1"], Sigma_w0=P["Sigma_w0"],
                                  Sigma_w1=P["Sigma_w1"], k=P["k"])
    weighted = ((T_start / P["Sigma_z0"] + P["T_des"] / P["Sigma_w0"])
                / (1 / P["Sigma_z0"] + 1 / P["Sigma_w0"]))
    F_fixed = float(th.free_energy(T_start, 0.0, *fixed, T_des=P["T_des"]))
    mu_before = float(act["mu"][before].mean())
    sensed_end = float(act["rho0"][last].mean())
    F_before, F_end = float(act["F"][before].mean()), float(act["F"][last].mean())
    claims = [
        claim("before action μ settles between sensed and desired temperature",
              f"between ρ ≈ {T_start:g} and T_des = {P['T_des']:g} (section 7 figure)",
              f"μ = {mu_before:.3f} (fixed point {fixed[0]:.3f}; precision-weighted {weighted:g})",
              P["T_des"] < mu_before < T_start and abs(mu_before - fixed[0]) < 0.05,
              "strictly between; within 0.05 of the fixed point"),
        claim("with action the agent reaches the desired temperature",
              f"senses T_des = {P['T_des']:g} (section 7 figure)",
              f"sensed {sensed_end:.3f}, true {act['T'][-1]:.3f} at x = {act['x'][-1]:.3f} "
              f"(T = 4 at x = {np.sqrt(P['T0'] / P['T_des'] - 1):.3f})",
              abs(sensed_end - P["T_des"]) < 0.2, "abs(sensed - T_des) < 0.2"),
        claim("with action F falls to near zero", "F → ≈ 0 (section 7 figure)",
              f"F {F_before:.1f} before action → {F_end:.3f} (mean of last 20 time units)",
              F_end < 1.0 and F_end < 0.01 * F_before, "F < 1 and < 1 % of F before"),
    ]
    measurements = [
        measurement("without action belief and F stay put (perception only)",
                    f"μ = {still['mu'][last].mean():.3f}, F = {still['F'][last].mean():.1f} "
                    f"(fixed-point F {F_fixed:.1f})",
                    "μ within 0.05 of the fixed point, F > 100",
                    abs(still["mu"][last].mean() - fixed[0]) < 0.05
                    and still["F"][last].mean() > 100),
    ]
    _plot(act, out / "thermostat_action.png", "Thermostat with action (from t = 25)",
          P["action_onset"])
    _plot(still, out / "thermostat_no_action.png", "Thermostat, perception only", None)
    every = int(round(5.0 / P["dt"]))
    timeline = {key: [round(float(v), 4) for v in act[key][::every]]
                for key in ("t", "x", "T", "rho0", "mu", "a", "F")}
    report = {
        "paper": "Buckley, Kim, McGregor & Seth (2017), J. Math. Psychol. 81:55-79, section 7",
        "quick": quick, "seed": seed, "backend": "numpy", "claims": claims,
        "measurements": measurements,
        "settings": P,
        "results": {"mu_before_action": mu_before, "fixed_point": fixed.tolist(),
                    "precision_weighted": weighted, "sensed_end": sensed_end,
                    "true_T_end": float(act["T"][-1]), "x_end": float(act["x"][-1]),
                    "F_before_action": F_before, "F_end": F_end, "F_fixed_point": F_fixed,
                    "timeline_with_action": timeline},
        "wall_time_s": time.perf_counter() - t0, "machine": machine_info(),
    }
    write_report(out, report, "Buckley et al. (2017) thermostat, reproduced by predcode",
                 ["thermostat_action.png", "thermostat_no_action.png"], notes=[
                     f"Sensory noise s.d. 0.1, seed {noise_seed}; F is the Laplace-encoded energy "
                     "without constants, so its noise floor is about 0.1.",
                     "With action, every 10 time units (t: x, true T, sensed T, belief mu, "
                     "action a, F): " + "; ".join(
                         f"{timeline['t'][i]:g}: {timeline['x'][i]:.2f}, {timeline['T'][i]:.2f}, "
                         f"{timeline['rho0'][i]:.2f}, {timeline['mu'][i]:.2f}, "
                         f"{timeline['a'][i]:.3f}, {timeline['F'][i]:.3g}"
                         for i in range(0, len(timeline['t']), 2))])
    return report
