r"""Friston, Daunizeau & Kiebel (2009): the mountain car by active inference.

*Reinforcement learning or active inference?* PLoS ONE 4(7):e6421 (the mountain-car section); SPM12
``ADEM_mountaincar_loss`` (its ``DEMO = 0`` branch: the prior beliefs about flow are
given, not learned). ``predcode reproduce friston-2009-mountain-car --out DIR`` runs
:func:`predcode.models.adem_spm.spm_adem` (SPM's ``spm_ADEM``) with the demo's set-up:

* process: the mountain car (:func:`predcode.envs.mountain_car.mountain_car_flow`),
  started at position 0 with velocity -1/2, sensations = states with precision
  :math:`e^{16}`, action precision ``G(1).U`` = :math:`e^5`;
* model: the prior flow :func:`~predcode.envs.mountain_car.mountain_car_prior_flow`
  (a spring to -0.2 with negative damping away from the goal, strong damping in the goal
  region :math:`|x - 1| \le 1/4`), precisions :math:`e^8`, embedding order 4, 128 bins;
* noise drawn by ``spm_DEM_z``'s recipe, seeded (numpy's stream, not Octave's).

Claims (the paper's qualitative result): the car first moves away from the goal (its
position goes below -0.5; SPM's own run of the demo reaches -1.168), then reaches the goal
(position ≥ 0.75) and stays in the goal region to the end; and, the premise of the
problem, full throttle towards the goal from rest at the valley floor never gets there.
That last claim FAILS in SPM's landscape (a NO row): the force bound tanh = 1 equals the
slope's steepest gradient (1, at x = 0), so from the valley floor the car at full force
gets over the hill and overshoots the goal (to 2.8); only at rest exactly at x = 0 does it
stay put.
Figure ``mountain_car.png``: landscape, phase-space trajectory, states and beliefs over
time, action.
"""

from __future__ import annotations

import math
import time
from pathlib import Path
from typing import Any

import numpy as np

from ..envs.mountain_car import landscape_gradient, mountain_car_flow, mountain_car_prior_flow
from ..machine import machine_info
from ..models.adem_spm import spm_adem
from ._report import claim, measurement, write_report

__all__ = ["run", "SETTINGS"]

#: The demo's numbers (``ADEM_mountaincar_loss``, DEMO = 0, first action run).
SETTINGS: dict[str, Any] = {
    "N": 128, "x0": [0.0, -0.5], "order": 4, "cause_order": 2,
    "prior_flow": {"x_attract": -0.2, "k": 0.6, "p": 0.5, "q": 32.0},
    "V_process": math.exp(16), "W_process": math.exp(16), "V_cause_process": math.exp(16),
    "U_action": math.exp(5), "V_model": math.exp(8), "W_model": math.exp(8),
    "V_cause_model": math.exp(16),
}


def run_mountain_car(*, seed: int = 0, z: Any = None, w: Any = None) -> dict[str, Any]:
    """The demo's action run (noise seeded by ``seed`` unless ``z``/``w`` are given)."""
    S = SETTINGS
    pf = S["prior_flow"]
    return spm_adem(
        lambda x, v, a: mountain_car_flow(x, v[0], a[0]), lambda x, v, a: x,
        lambda x, v: mountain_car_prior_flow(x, **pf), lambda x, v: x,
        x_process=S["x0"], x_model=S["x0"], N=S["N"], z=z, w=w,
        V_process=S["V_process"], W_process=S["W_process"],
        V_cause_process=S["V_cause_process"], U_action=S["U_action"],
        V_model=S["V_model"], W_model=S["W_model"], V_cause_model=S["V_cause_model"],
        order=S["order"], cause_order=S["cause_order"], random_state=seed,
    )


def full_throttle(T: float = 128.0, dt: float = 0.05) -> np.ndarray:
    """Positions of the car pushed with full force (tanh → 1) from rest at the valley floor."""
    x = np.array([-0.5, 0.0])
    out = []
    for _ in range(int(T / dt)):
        x = x + dt * mountain_car_flow(x, 0.0, 50.0)
        out.append(x[0])
    return np.array(out)


def _height(p: np.ndarray) -> np.ndarray:
    """The landscape's height (integral of its gradient, zero at the valley floor)."""
    grid = np.linspace(-2.0, 2.0, 4001)
    H = np.concatenate([[0.0], np.cumsum(np.diff(grid) * landscape_gradient(grid[1:]))])
    H = H - H[np.argmin(np.abs(grid + 0.5))]
    return np.interp(p, grid, H)


def _plot(r: dict[str, Any], path: Path) -> None:
    from ._figures import pyplot

    plt = pyplot()
    x, q, a = r["x_process"], r["x"], r["a"][:, 0]
    t = np.arange(x.shape[0])
    fig, ax = plt.subplots(2, 2, figsize=(11, 8.5), layout="constrained")
    p = np.linspace(-2, 2, 400)
    ax[0, 0].plot(p, _height(p), "k", lw=1, label="landscape height")
    ax[0, 0].scatter(x[:, 0], _height(x[:, 0]), c=t, s=12, cmap="viridis",
                     label="car (colour: time bin)")
    ax[0, 0].axvspan(0.75, 1.25, color="0.85", zorder=0, label="goal region |x - 1| ≤ 1/4")
    ax[0, 0].set(xlabel="position", ylabel="height", title="the car on the landscape")
    ax[0, 0].legend(loc="upper left", fontsize=8)
    vv = np.linspace(-1.5, 1.5, 41)
    pp = np.linspace(-2, 2, 41)
    P, V = np.meshgrid(pp, vv)
    flow = np.array([mountain_car_prior_flow([pi, vi])
                     for pi, vi in zip(P.ravel(), V.ravel(), strict=True)])
    ax[0, 1].streamplot(P, V, flow[:, 0].reshape(P.shape), flow[:, 1].reshape(P.shape),
                        color="0.7", density=0.8, linewidth=0.6)
    ax[0, 1].plot(x[:, 0], x[:, 1], "b", label="true trajectory")
    ax[0, 1].plot(q[:, 0], q[:, 1], "r:", label="conditional expectation")
    ax[0, 1].plot(x[0, 0], x[0, 1], "ko", label="start")
    ax[0, 1].axvspan(0.75, 1.25, color="0.85", zorder=0, label="goal region")
    ax[0, 1].set(xlabel="position", ylabel="velocity", xlim=(-2, 2), ylim=(-1.5, 1.5),
                 title="phase space over the prior flow (streamlines)")
    ax[0, 1].legend(loc="lower right", fontsize=8)
    ax[1, 0].plot(t, x[:, 0], "b", label="position (true)")
    ax[1, 0].plot(t, q[:, 0], "b:", label="position (predicted)")
    ax[1, 0].plot(t, x[:, 1], "g", label="velocity (true)")
    ax[1, 0].plot(t, q[:, 1], "g:", label="velocity (predicted)")
    ax[1, 0].axhline(0.75, color="0.5", lw=0.6, ls="--", label="goal edge 0.75")
    ax[1, 0].set(xlabel="time (bins)", ylabel="state", title="states and beliefs")
    ax[1, 0].legend(loc="lower right", fontsize=8)
    ax[1, 1].plot(t, a, "k", label="action a")
    ax[1, 1].plot(t, np.tanh(a / 2), "m", label="force tanh(a/2)")
    ax[1, 1].set(xlabel="time (bins)", ylabel="action", title="action")
    ax[1, 1].legend(loc="upper right", fontsize=8)
    fig.suptitle("Mountain car by active inference (Friston, Daunizeau & Kiebel 2009)")
    fig.savefig(path, dpi=100)
    plt.close(fig)


def run(out: str | Path, *, quick: bool = False, backend: str = "auto", seed: int = 0,
        verbose: bool = True) -> dict[str, Any]:
    """Run the mountain car, check the paper's qualitative result, write figure and report.

    ``quick`` is the same run (about 1 s); ``backend`` and ``verbose`` are accepted for
    a uniform interface (numpy). ``seed`` seeds the (tiny, precision e^16) noise.
    """
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    r = run_mountain_car(seed=seed)
    pos = r["x_process"][:, 0]
    i_min = int(pos.argmin())
    reached = np.flatnonzero(pos >= 0.75)
    i_goal = int(reached[0]) if reached.size else -1
    after = pos[i_goal:] if reached.size else np.array([np.nan])
    stays = bool(reached.size) and bool(np.all(np.abs(after - 1.0) <= 0.25))
    push = full_throttle()
    push_t = float(np.argmax(push >= 0.75) + 1) * 0.05 if push.max() >= 0.75 else float("nan")
    gap = np.abs(r["x"] - r["x_process"]).max(1)
    belief_err, belief_bin = float(gap.max()), int(gap.argmax())
    claims = [
        claim("the car first moves away from the goal",
              "moves away (to negative positions) before climbing; SPM's own run: -1.168",
              f"minimum {pos.min():.3f} at bin {i_min}",
              pos.min() < -0.5 and (i_goal < 0 or i_min < i_goal),
              "min < -0.5, before the goal is reached"),
        claim("then it reaches the goal", "reaches the goal at x ≈ 1; SPM's run: ≥ 0.75 at bin 44",
              f"first ≥ 0.75 at bin {i_goal}" if reached.size else "never ≥ 0.75",
              bool(reached.size), "position ≥ 0.75 within 128 bins"),
        claim("and stays there", "stays at the goal; SPM's run ends at 0.967",
              f"in [{after.min():.3f}, {after.max():.3f}] after bin {i_goal}; "
              f"final {pos[-1]:.3f}", stays, "|x - 1| ≤ 1/4 from then to the end"),
        claim("full force alone cannot climb the hill",
              "the engine is too weak to go straight up the slope (the problem's premise)",
              f"from rest at -0.5 under tanh = 1: ≥ 0.75 at t = {push_t:.1f}, overshoots "
              f"to {push.max():.2f} (SPM's landscape: full force equals the slope at x = 0)",
              push.max() < 0.75, "never ≥ 0.75"),
    ]
    measurements = [
        measurement("free energy F of the run", f"{r['F']:.2f}"),
        measurement("largest |belief - true state| over the run (bin of the largest)",
                    f"{belief_err:.3g} (bin {belief_bin})"),
    ]
    fix = (Path(__file__).resolve().parents[2] / "tests" / "fixtures" / "spm"
           / "adem_mountaincar" / "adem_mountaincar.npz")
    if fix.exists():
        d = np.load(fix)
        rs = run_mountain_car(z=np.vstack([d["pUz1"], d["pUz2"]]).T, w=d["pUw1"].T)
        err = float(np.abs(rs["x_process"].T - d["pUx"]).max() / np.abs(d["pUx"]).max())
        dF = abs(rs["F"] - float(d["F"].ravel()[-1])) / abs(float(d["F"].ravel()[-1]))
        measurements.append(measurement(
            "on SPM's own noise: predcode vs SPM12 spm_ADEM (tests/fixtures)",
            f"states max-abs rel. error {err:.1e}; F {rs['F']:.2f} vs "
            f"{float(d['F'].ravel()[-1]):.2f} (rel. {dF:.1e})", "< 1e-6", err < 1e-6))
        dev = float(np.abs(r["x_process"].T - d["pUx"]).max())
        measurements.append(measurement(
            "this run (numpy noise) vs SPM's run (Octave noise)",
            f"max |Δ state| {dev:.3g}"))
    _plot(r, out / "mountain_car.png")
    step = 8
    report = {
        "paper": "Friston, Daunizeau & Kiebel (2009), PLoS ONE 4(7):e6421, mountain car; "
                 "SPM12 ADEM_mountaincar_loss (DEMO = 0)",
        "quick": quick, "seed": seed, "backend": "numpy", "claims": claims,
        "measurements": measurements,
        "settings": {k: v for k, v in SETTINGS.items()},
        "results": {"F": r["F"], "min_position": float(pos.min()), "min_bin": i_min,
                    "goal_bin": i_goal, "final_position": float(pos[-1]),
                    "position_every_8": [round(float(v), 4) for v in pos[::step]],
                    "action_every_8": [round(float(v), 4) for v in r["a"][::step, 0]]},
        "wall_time_s": time.perf_counter() - t0, "machine": machine_info(),
    }
    write_report(out, report, "Friston et al. (2009) mountain car, reproduced by predcode",
                 ["mountain_car.png"], notes=[
                     "SPM's scheme spm_ADEM (predcode.models.adem_spm.spm_adem) with the "
                     "demo's priors given (DEMO = 0 branch); no learning of the prior flow.",
                     f"Noise from spm_DEM_z's recipe with numpy's generator, seed {seed}.",
                     "Position every 8 bins: " + ", ".join(
                         f"{v:.2f}" for v in report["results"]["position_every_8"])])
    return report
