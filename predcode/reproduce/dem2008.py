r"""Friston (2008) / Friston, Trujillo-Barreto & Daunizeau (2008): DEM demos.

The models are those of :mod:`predcode.models.hdm_zoo` (SPM's demo models,
``spm_DEM_M``; facts only):

* **convolution** (``DEM_demo_convolution``): 1 cause, 2 hidden states, 4 outputs,
  :math:`f = Ax + Bv` with :math:`A = [[-1, 4], [-2, -1]]/4`, :math:`B = [1, 0]^\top`,
  :math:`g = Cx` with :math:`C` the first two columns of the 4-point DCT matrix / 4,
  noise precisions :math:`e^8`, cause prior precision 1, :math:`s = 1/2`, embedding
  :math:`n = 6`, :math:`N = 32` bins, Gaussian-bump cause (centre bin 12, width 2:
  our choice where SPM's script was not checked);
* **Lorenz**: :math:`\theta = (18, -4, 46.92)`, flow
  :math:`[[-\theta_1, \theta_1, 0], [\theta_3 - x_3, -1, -x_1], [x_2, x_1, \theta_2]]x/32`,
  :math:`g = \sum x`, :math:`x_0 = (0.9, 0.8, 30)`, observation precision 1,
  state precision :math:`e^{16}`, :math:`s = 1/8`; inverted from the wrong start
  :math:`(2, 8, 22)`;
* **double well**: :math:`f = (16x/(1+x^2) - x/2 + 2v)/8`, :math:`g = x^2/16`,
  precisions :math:`e^2` (observation) and :math:`e^{16}` (state), cause prior
  precision 1/8, :math:`s = 1/2`;
* **triple estimation** (``DEM_demo_DEM``): the convolution model with four
  parameters unknown (second row of :math:`A`, first row of :math:`C`; prior
  expectation (0, -1/2, 0, 0), prior precision 1; the choice of parameters is ours),
  and the log-precisions of observation and state noise unknown (prior 4). The data
  have SPM's noise log-precision 8 (seed 0 claimed; the full run adds four seeds to
  check for bias, and SPM's own two-parameter set-up, reported).

Run with ``predcode reproduce friston-2008-dem --out DIR``.
"""

from __future__ import annotations

import math
import time
from pathlib import Path
from typing import Any

import numpy as np

from ..backend import resolve_backend
from ..machine import machine_info
from ..models.dem import DEM, extended_kalman_filter, generalized_filter, simulate
from ..models.hdm_zoo import (  # noqa: F401  (the zoo's builders, importable from here as before)
    CONV_A,
    CONV_B,
    CONV_C,
    conv_cause,
    convolution_model,
    dct_matrix,
    double_well_model,
    lorenz_model,
)
from ._progress import stage_bar
from ._report import claim, write_report

__all__ = [
    "demo_convolution",
    "demo_lorenz",
    "demo_double_well",
    "demo_triple",
    "run",
]


def _tick(bar: Any, n: int = 1) -> None:
    if bar is not None:
        bar.update(n)


def _rmse(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.sqrt(np.mean((np.asarray(a) - np.asarray(b)) ** 2)))


def demo_convolution(
    orders=(1, 2, 3, 4, 6), seeds=(0, 1, 2), backend: str = "auto", bar: Any = None
) -> dict[str, Any]:
    """Cause recovery, error against embedding order, DEM vs EKF, generalized filtering.

    The main run and the error-against-order sweep use the first seed of ``seeds``;
    DEM (16 iterations) and the EKF are also compared on the data of every seed in
    ``seeds``. ``bar`` (optional) is advanced after each DEM fit.
    """
    U = conv_cause(32)
    m = convolution_model()
    base = seeds[0]
    sim = simulate(m, U, random_state=base)
    t0 = time.perf_counter()
    d = DEM(m, n_iter=16, backend=backend).fit(sim["Y"])
    wall = time.perf_counter() - t0
    _tick(bar)
    ek = extended_kalman_filter(m, sim["Y"])
    gf = generalized_filter(m, sim["Y"], backend=backend)
    by_order = {}
    for n in orders:
        mn = convolution_model(n=n)
        # predcode's variant for the whole sweep: SPM's scheme needs n >= 2 (E.n >= 1)
        dn = DEM(mn, n_iter=1, backend=backend, scheme="predcode").fit(sim["Y"])
        _tick(bar)
        by_order[n] = {
            "cause_rmse": _rmse(dn.v_[:, 0], U[:, 0]),
            "state_rmse": _rmse(dn.x_, sim["x"]),
        }
    per_seed = []
    for seed in seeds:
        sk = sim if seed == base else simulate(m, U, random_state=seed)
        dk = d if seed == base else DEM(m, n_iter=16, backend=backend).fit(sk["Y"])
        ekk = ek if seed == base else extended_kalman_filter(m, sk["Y"])
        if seed != base:
            _tick(bar)
        per_seed.append(
            {
                "seed": int(seed),
                "state_rmse": _rmse(dk.x_, sk["x"]),
                "ekf_state_rmse": _rmse(ekk["x"], sk["x"]),
                "cause_rmse": _rmse(dk.v_[:, 0], U[:, 0]),
                "ekf_cause_rmse": _rmse(ekk["v"][:, 0], U[:, 0]),
            }
        )
    return {
        "U": U,
        "sim": sim,
        "dem": d,
        "ekf": ek,
        "gf": gf,
        "by_order": by_order,
        "per_seed": per_seed,
        "cause_rmse": _rmse(d.v_[:, 0], U[:, 0]),
        "cause_corr": float(np.corrcoef(d.v_[:, 0], U[:, 0])[0, 1]),
        "state_rmse": _rmse(d.x_, sim["x"]),
        "ekf_cause_rmse": _rmse(ek["v"][:, 0], U[:, 0]),
        "ekf_state_rmse": _rmse(ek["x"], sim["x"]),
        "gf_cause_rmse": _rmse(gf["v"][:, 0], U[:, 0]),
        "wall_s": wall,
    }


def demo_lorenz(N: int = 128, seeds=(0, 1, 2), backend: str = "auto",
                bar: Any = None) -> dict[str, Any]:
    """Lorenz trajectory from a wrong initial state: DEM D-step vs EKF.

    The first seed is the main run; the second-half RMSE of DEM (``n_d`` = 1 and 2) and
    of the EKF is also measured on the data of every seed in ``seeds``. ``bar``
    (optional) is advanced after each seed.
    """

    def late(x, true):
        e = np.sqrt(np.sum((x - true) ** 2, axis=1))
        return e, float(np.sqrt(np.mean(e[N // 2 :] ** 2)))

    per_seed, curves = [], []
    for seed in seeds:
        sk = simulate(lorenz_model(), np.zeros((N, 1)), random_state=seed)
        m = lorenz_model(x0=(2.0, 8.0, 22.0))  # inverted from a wrong initial state
        dk = DEM(m, n_iter=1, backend=backend).fit(sk["Y"])
        # SPM's scheme takes one D-step per bin (E.nD = 1): n_d = 2 is predcode's variant
        d2 = DEM(m, n_iter=1, n_d=2, backend=backend, scheme="predcode").fit(sk["Y"])
        ekk = extended_kalman_filter(m, sk["Y"])
        row = {
            "seed": int(seed),
            "late_rmse": late(dk.x_, sk["x"])[1],
            "late_rmse_nd2": late(d2.x_, sk["x"])[1],
            "late_rmse_ekf": late(ekk["x"], sk["x"])[1],
        }
        per_seed.append(row)
        curves.append((late(dk.x_, sk["x"])[0], late(ekk["x"], sk["x"])[0]))
        _tick(bar)
        if seed == seeds[0]:
            sim, d, ek = sk, dk, ekk
            err, err_ek = late(dk.x_, sk["x"])[0], late(ekk["x"], sk["x"])[0]
    return {
        "sim": sim,
        "dem": d,
        "ekf": ek,
        "err": err,
        "err_ekf": err_ek,
        # state error per time bin of every seed (rows), for the figure's spread
        "err_seeds": np.array([c[0] for c in curves]),
        "err_ekf_seeds": np.array([c[1] for c in curves]),
        "per_seed": per_seed,
        "initial_error": float(err[0]),
        "late_rmse": per_seed[0]["late_rmse"],
        "late_rmse_ekf": per_seed[0]["late_rmse_ekf"],
    }


def demo_double_well(N: int = 64, backend: str = "auto", random_state: int = 1
                     ) -> dict[str, Any]:
    """Double well: the symmetric observation x^2/16 makes the posterior bimodal."""
    t = np.arange(N)
    U = (8 * np.sin(2 * np.pi * t / 32) * np.exp(-((t - N / 2) ** 2) / (2 * (N / 4) ** 2)))[:, None]
    sim = simulate(double_well_model(x0=-2.0), U, random_state=random_state)
    m = double_well_model(x0=2.0)  # start in the other well
    d = DEM(m, n_iter=1, backend=backend).fit(sim["Y"])
    x, xh = sim["x"][:, 0], d.x_[:, 0]
    wrong = float(np.mean(np.sign(xh) != np.sign(x)))
    return {
        "U": U,
        "sim": sim,
        "dem": d,
        "wrong_sign_fraction": wrong,
        "rmse": _rmse(xh, x),
        "rmse_abs": _rmse(np.abs(xh), np.abs(x)),
        "fit_rmse_y": _rmse(xh**2 / 16, sim["Y"][:, 0]),
    }


#: DEM "beats" the EKF when its median error is lower by at least this fraction of the EKF's.
BEAT_MARGIN = 0.05

TRIPLE_FREE = [2, 3, 6, 7]
SPM_TRIPLE_FREE = [2, 6]


def demo_triple(
    n_iter: int = 64,
    hs: float = 8.0,
    backend: str = "auto",
    random_state: int = 0,
    spm: bool = False,
    d: int | None = None,
    scheme: str = "predcode",
) -> dict[str, Any]:
    r"""States, parameters and log-precisions together (``DEM_demo_DEM``).

    Default (ours): four parameters (second row of A, first row of C) start from the
    wrong values (0, -1/2, 0, 0) with prior precision 1; data have observation and state
    noise log-precisions ``hs``. The first row of A is not estimated: the unknown cause
    enters the first state's flow, so errors there are explained away by the cause.

    ``spm=True`` follows SPM's ``DEM_demo_DEM``: two free parameters (``A[1, 0]`` and
    ``C[0, 0]``, SPM's indices 2 and 5) with prior 0 and prior variance :math:`e^8`, no
    state noise (log-precision 32), observation log-precision ``hs``, and the cause
    :math:`\exp(-(t - 12)^2 / 4)` for SPM's 1-based bins. Both start the log-precisions
    of observation and state noise at 4. ``d`` is the causes' embedding order (``n``
    by default; SPM's demos use 2 or 3).

    ``scheme`` is the :class:`~predcode.DEM` scheme. The claims use predcode's variant
    (``"predcode"``): on this set-up SPM's scheme (``"spm"``) rejects five expansions
    running and stops (its rule: the E-step's log time constant below -8) after 11 of
    the 32 iterations, with the parameters short of the claim's margin; the report
    gives SPM's scheme's numbers on the same data beside it.
    """
    if spm:
        free, start, prior_prec, hw_true = SPM_TRIPLE_FREE, [0.0, 0.0], math.exp(-8), 32.0
        U = np.exp(-((np.arange(32) - 11.0) ** 2) / 4)[:, None]
    else:
        free, start, prior_prec, hw_true = TRIPLE_FREE, [0.0, -0.5, 0.0, 0.0], 1.0, hs
        U = conv_cause(32)
    sim = simulate(convolution_model(hv=hs, hw=hw_true), U, random_state=random_state)
    true = np.concatenate([CONV_A.ravel(), CONV_B, CONV_C.ravel()])
    th = true.copy()
    th[free] = start
    tp = np.full(14, 1e8)
    tp[free] = prior_prec
    m = convolution_model(
        hv=4.0, hw=4.0, theta=th, theta_precision=np.diag(tp), analytic=False, d=d
    )
    d = DEM(
        m,
        n_iter=n_iter,
        learn_theta=free,
        learn_h=[("v", 0), ("x", 0)],
        backend=backend,
        scheme=scheme,
    ).fit(sim["Y"])
    hv, hw = d.h_[m.h_blocks.index(("v", 0))], d.h_[m.h_blocks.index(("x", 0))]
    return {
        "dem": d,
        "sim": sim,
        "U": U,
        "hs": hs,
        "theta": d.theta_[free].tolist(),
        "theta_true": true[free].tolist(),
        "theta_prior": th[free].tolist(),
        "theta_sd": np.sqrt(np.diag(d.Sigma_theta_)).tolist(),
        "hv": float(hv),
        "hw": float(hw),
        "F": d.F_accepted_,
        # F of every iteration the scheme ran (rejected expansions included)
        "F_all": [f for f, s in zip(d.history_["F_all"], d.history_["stopped"], strict=True)
                  if not s],
        "cause_rmse": _rmse(d.v_[:, 0], U[:, 0]),
    }


def _figures(out: Path, conv: dict, lor: dict, dw: dict, tri: dict) -> list[str]:
    from ._figures import integer_ticks, pyplot

    plt = pyplot()
    names = []
    fig, ax = plt.subplots(1, 3, figsize=(13, 3.8), layout="constrained")
    t = np.arange(len(conv["U"]))
    sd = np.sqrt(conv["dem"].Su_[:, conv["dem"].model.n * conv["dem"].model.nx])
    ax[0].fill_between(
        t, conv["dem"].v_[:, 0] - 1.64 * sd, conv["dem"].v_[:, 0] + 1.64 * sd, alpha=0.3,
        color="C0", lw=0, label="DEM 90 % interval"
    )
    ax[0].plot(t, conv["U"][:, 0], "k--", label="true cause")
    ax[0].plot(t, conv["dem"].v_[:, 0], color="C0", label="DEM")
    ax[0].plot(t, conv["ekf"]["v"][:, 0], ":", color="C1", label="EKF")
    ax[0].set(title="convolution: cause v (seed 0)", xlabel="time (bins)",
              ylabel="cause v (a.u.)")
    ax[0].legend(fontsize=8)
    x_true, x_dem = conv["sim"]["x"], conv["dem"].x_
    for k in range(x_true.shape[1]):
        ax[1].plot(t, x_true[:, k], "--", color=f"C{k}", label=f"true $x_{k + 1}$")
        ax[1].plot(t, x_dem[:, k], "-", color=f"C{k}", label=f"DEM $x_{k + 1}$")
    ax[1].set(title="convolution: hidden states (seed 0)", xlabel="time (bins)",
              ylabel="hidden state x (a.u.)")
    ax[1].legend(fontsize=8, ncol=2)
    orders = sorted(conv["by_order"])
    ax[2].plot(orders, [conv["by_order"][n]["cause_rmse"] for n in orders], "o-", label="cause")
    ax[2].plot(orders, [conv["by_order"][n]["state_rmse"] for n in orders], "s-", label="states")
    ax[2].set(title="error vs embedding order (seed 0)", xlabel="embedding order n",
              ylabel="RMSE (a.u.)")
    integer_ticks(ax[2].xaxis)
    ax[2].legend(fontsize=8)
    fig.savefig(out / "convolution.png", dpi=110)
    plt.close(fig)
    names.append("convolution.png")

    fig, ax = plt.subplots(1, 3, figsize=(13, 3.8), layout="constrained")
    ax[0].plot(lor["sim"]["x"][:, 0], lor["sim"]["x"][:, 2], "k--", label="true")
    ax[0].plot(lor["dem"].x_[:, 0], lor["dem"].x_[:, 2], color="C0", label="DEM")
    ax[0].set(title="Lorenz attractor (seed 0)", xlabel="state $x_1$ (a.u.)",
              ylabel="state $x_3$ (a.u.)")
    ax[0].legend(fontsize=8)
    n_seeds = len(lor["err_seeds"])
    tl = np.arange(lor["err_seeds"].shape[1])
    for key, label, style, colour in (("err_seeds", "DEM", "-", "C0"),
                                      ("err_ekf_seeds", "EKF", ":", "C1")):
        e = np.asarray(lor[key])
        ax[1].plot(tl, np.median(e, axis=0), style, color=colour, label=f"{label}, median")
        ax[1].fill_between(tl, e.min(axis=0), e.max(axis=0), color=colour, alpha=0.2, lw=0,
                           label=f"{label}, range over seeds")
    ax[1].set(title=f"Lorenz state error ({n_seeds} seeds)", xlabel="time (bins)",
              ylabel="state error ‖x̂ − x‖ (a.u.)", yscale="log")
    ax[1].legend(fontsize=7, ncol=2)
    tw = np.arange(len(dw["sim"]["x"]))
    ax[2].plot(tw, dw["sim"]["x"][:, 0], "k--", label="true")
    ax[2].plot(tw, dw["dem"].x_[:, 0], color="C0", label="DEM (started in the other well)")
    ax[2].set(title="double well: DEM finds the mirror image", xlabel="time (bins)",
              ylabel="hidden state x (a.u.)")
    ax[2].legend(fontsize=8)
    fig.savefig(out / "lorenz_double_well.png", dpi=110)
    plt.close(fig)
    names.append("lorenz_double_well.png")

    fig, ax = plt.subplots(1, 2, figsize=(9.5, 3.8), layout="constrained")
    ax[0].plot(np.arange(1, len(tri["F"]) + 1), tri["F"], "o-", ms=3)
    ax[0].set(title="triple estimation: free energy", xlabel="DEM iteration (accepted)",
              ylabel="free energy F (nats)")
    integer_ticks(ax[0].xaxis)
    ax[1].bar(np.arange(4) - 0.2, tri["theta_true"], 0.4, label="true")
    ax[1].bar(
        np.arange(4) + 0.2, tri["theta"], 0.4, yerr=1.64 * np.array(tri["theta_sd"]),
        capsize=3, label="DEM (90 % interval)"
    )
    ax[1].axhline(0, color="k", lw=0.6)
    ax[1].set(title="estimated parameters (seed 0)", xticks=range(4),
              xticklabels=["A[2,1]", "A[2,2]", "C[1,1]", "C[1,2]"],
              xlabel="parameter (A row 2, C row 1)", ylabel="value")
    ax[1].legend(fontsize=8)
    fig.savefig(out / "triple_estimation.png", dpi=110)
    plt.close(fig)
    names.append("triple_estimation.png")
    return names


def _sections(report: dict[str, Any]) -> list[str]:
    """The tables beside the claims (error against order, per seed, triple estimation)."""
    lines = [
        "Error against embedding order (convolution model, seed 0, one D-step pass):",
        "",
        "| n | cause RMSE | state RMSE |",
        "|---|---|---|",
    ]
    for n, r in report["results"]["convolution"]["by_order"].items():
        lines.append(f"| {n} | {r['cause_rmse']:.3f} | {r['state_rmse']:.3f} |")
    lines += [
        "",
        "DEM against the EKF, per seed (convolution: state / cause RMSE; Lorenz: state RMSE "
        "over the second half):",
        "",
        "| seed | conv DEM | conv EKF | Lorenz DEM | Lorenz DEM n_d=2 | Lorenz EKF |",
        "|---|---|---|---|---|---|",
    ]
    cs = {r["seed"]: r for r in report["results"]["convolution"]["per_seed"]}
    ls = {r["seed"]: r for r in report["results"]["lorenz"]["per_seed"]}
    for k in sorted(set(cs) | set(ls)):
        c, lo = cs.get(k), ls.get(k)
        conv = (
            f"{c['state_rmse']:.3f} / {c['cause_rmse']:.3f} | "
            f"{c['ekf_state_rmse']:.3f} / {c['ekf_cause_rmse']:.3f}"
            if c
            else "- | -"
        )
        lor = (
            f"{lo['late_rmse']:.2f} | {lo['late_rmse_nd2']:.2f} | {lo['late_rmse_ekf']:.2f}"
            if lo
            else "- | - | -"
        )
        lines.append(f"| {k} | {conv} | {lor} |")
    ts = report["results"].get("triple_seeds")
    if ts:
        lines += [
            "",
            "Triple estimation at SPM's noise level (log-precision 8), per seed "
            "(estimate minus truth; h_v, h_w):",
            "",
            "| seed | errors | h_v | h_w |",
            "|---|---|---|---|",
        ]
        for r in ts:
            pairs = zip(r["theta"], r["theta_true"], strict=True)
            err = ", ".join(f"{a - b:+.3f}" for a, b in pairs)
            lines.append(f"| {r['seed']} | {err} | {r['hv']:.2f} | {r['hw']:.2f} |")
    return ["\n".join(lines)]


def run(
    out: str | Path,
    *,
    quick: bool = False,
    backend: str = "auto",
    seed: int = 0,
    verbose: bool = True,
) -> dict[str, Any]:
    """Run the four demos; write ``report.json``, ``report.md`` and PNG figures to ``out``.

    ``quick`` uses fewer embedding orders, seeds, Lorenz bins and triple-estimation
    iterations (and skips the multi-seed triple estimation). ``seed`` shifts every
    data seed (``seed + k``; 0: the documented run). ``verbose`` shows a bar over
    the DEM fits.
    """
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    orders = (1, 2, 4, 6, 8) if quick else tuple(range(1, 11))
    n_seeds = 3 if quick else 8
    # DEM fits: convolution (main, orders, other seeds), Lorenz seeds, double well, triple;
    # the full run adds 4 + 5 triple estimations, 8 + 5 with the causes' order d = 2
    total = 1 + len(orders) + (n_seeds - 1) + n_seeds + 3 + (0 if quick else 4 + 5 + 8 + 5)
    bar = stage_bar(total, verbose=verbose, desc="friston-2008-dem", unit="fit")
    conv = demo_convolution(orders=orders, seeds=tuple(seed + k for k in range(n_seeds)),
                            backend=backend, bar=bar)
    lor = demo_lorenz(N=64 if quick else 128, seeds=tuple(seed + k for k in range(n_seeds)),
                      backend=backend, bar=bar)
    dw = demo_double_well(backend=backend, random_state=1 + seed)
    _tick(bar)
    tri = demo_triple(n_iter=32 if quick else 64, backend=backend, random_state=seed)
    _tick(bar)
    tri_s = demo_triple(n_iter=32 if quick else 64, backend=backend, random_state=seed,
                        scheme="spm")
    _tick(bar)
    tri_seeds, tri_spm, conv_d2, tri_d2 = [], [], [], []
    if not quick:
        tri_seeds = [tri]
        for k in (1, 2, 3, 4):
            tri_seeds.append(demo_triple(n_iter=64, backend=backend, random_state=seed + k))
            _tick(bar)
        for k in range(5):
            tri_spm.append(demo_triple(n_iter=16, backend=backend, random_state=seed + k,
                                       spm=True, scheme="spm"))
            _tick(bar)
        # the causes' embedding order: SPM's d = E.d + 1 = 2 against our default d = n
        U = conv_cause(32)
        for k in range(8):
            sk = simulate(convolution_model(), U, random_state=seed + k)
            dk = DEM(convolution_model(d=2), n_iter=16, backend=backend).fit(sk["Y"])
            conv_d2.append((_rmse(dk.x_, sk["x"]), _rmse(dk.v_[:, 0], U[:, 0])))
            _tick(bar)
        for k in range(5):
            tri_d2.append(demo_triple(n_iter=64, backend=backend, random_state=seed + k, d=2))
            _tick(bar)
    bar.close()
    F = tri["F"]
    bo = conv["by_order"]
    ps = conv["per_seed"]
    med = {k: float(np.median([r[k] for r in ps])) for k in ps[0] if k != "seed"}
    hi = [n for n in bo if n >= 4]

    def flat(key: str) -> bool:  # no rise beyond n = 4 (15 % tolerance)
        return max(bo[n][key] for n in hi) <= 1.15 * bo[4][key]

    lp = lor["per_seed"]
    lmed = {k: float(np.median([r[k] for r in lp])) for k in lp[0] if k != "seed"}
    lost = sum(r["late_rmse_ekf"] > 3 for r in lp)

    def beats(dem: float, ekf: float) -> bool:  # lower error by a stated margin
        return bool(dem <= (1 - BEAT_MARGIN) * ekf)

    th, tt, tp = (np.array(tri[k]) for k in ("theta", "theta_true", "theta_prior"))
    claims = [
        claim(
            "convolution: DEM recovers the cause",
            "conditional cause tracks the true Gaussian bump",
            f"RMSE {conv['cause_rmse']:.3f}, corr {conv['cause_corr']:.3f}",
            conv["cause_corr"] > 0.8,
            margin="corr > 0.8",
        ),
        claim(
            "triple estimation: F rises over iterations",
            "free energy increases monotonically",
            f"F {F[0]:.1f} -> {F[-1]:.1f} over {len(F)} accepted iterations; "
            f"{len(tri['F_all']) - len(F)} expansions rejected (F fell) and retried "
            "with a shorter step",
            bool(F[-1] > F[0] + 100 and np.all(np.diff(F) > 0)),
            margin="rise > 100 nats; every accepted step up",
        ),
        claim(
            f"error falls as the embedding order grows (n = 1, 2 -> 4) and does not "
            f"rise up to n = {max(hi)}",
            "generalized coordinates help (SPM's demos use E.n = 4, i.e. 5 orders)",
            "cause RMSE "
            + ", ".join(f"n={n} {bo[n]['cause_rmse']:.3f}" for n in bo)
            + "; state RMSE "
            + ", ".join(f"n={n} {bo[n]['state_rmse']:.3f}" for n in bo),
            all(
                bo[4][k] < bo[1][k] and bo[4][k] < bo[2][k] and flat(k)
                for k in ("cause_rmse", "state_rmse")
            ),
            margin="n=4 below n=1 and n=2; n >= 4 at most 1.15 x n=4",
        ),
        claim(
            f"DEM more accurate than EKF (convolution, median over {len(ps)} seeds)",
            "DEM outperforms extended Kalman filtering",
            f"state RMSE DEM {med['state_rmse']:.3f} vs EKF "
            f"{med['ekf_state_rmse']:.3f} (DEM lower on "
            f"{sum(r['state_rmse'] < r['ekf_state_rmse'] for r in ps)}/{len(ps)}); cause RMSE "
            f"DEM {med['cause_rmse']:.3f} vs EKF {med['ekf_cause_rmse']:.3f} (DEM lower on "
            f"{sum(r['cause_rmse'] < r['ekf_cause_rmse'] for r in ps)}/{len(ps)})",
            beats(med["state_rmse"], med["ekf_state_rmse"])
            and beats(med["cause_rmse"], med["ekf_cause_rmse"]),
            margin=f"DEM median lower by >= {BEAT_MARGIN:.0%} of the EKF's (state and cause)",
        ),
        claim(
            f"DEM more accurate than EKF (Lorenz, median over {len(lp)} seeds)",
            "DEM outperforms extended Kalman filtering",
            f"second-half state RMSE: median DEM {lmed['late_rmse']:.2f} (n_d = 2: "
            f"{lmed['late_rmse_nd2']:.2f}) vs EKF {lmed['late_rmse_ekf']:.2f}; DEM lower on "
            f"{sum(r['late_rmse'] < r['late_rmse_ekf'] for r in lp)}/{len(lp)} seeds; the EKF "
            f"loses the attractor (RMSE > 3) on {lost}/{len(lp)}, DEM on "
            f"{sum(r['late_rmse'] > 3 for r in lp)}/{len(lp)} (the EKF is more accurate when "
            "it keeps track; docs/dem.rst)",
            beats(lmed["late_rmse"], lmed["late_rmse_ekf"]),
            margin=f"DEM median lower by >= {BEAT_MARGIN:.0%} of the EKF's",
        ),
        claim(
            "Lorenz: trajectory recovered from a wrong initial state",
            "conditional trajectory converges onto the true attractor",
            f"seed 0: error {lor['initial_error']:.2f} at t=0, RMSE "
            f"{lor['late_rmse']:.2f} over the second half; all {len(lp)} seeds: at most "
            f"{max(r['late_rmse'] for r in lp):.2f}",
            lor["late_rmse"] < 0.25 * lor["initial_error"]
            and max(r["late_rmse"] for r in lp) < 3,
            margin="seed 0 below 1/4 of the initial error; every seed < 3",
        ),
        claim(
            "double well: a unimodal (Laplace) posterior fails",
            "DEM can lock onto the wrong mode of a bimodal posterior",
            f"wrong-sign bins {dw['wrong_sign_fraction']:.2f}; "
            f"RMSE x {dw['rmse']:.2f} vs "
            f"abs(x) {dw['rmse_abs']:.2f}",
            dw["wrong_sign_fraction"] > 0.2 and dw["rmse_abs"] < 0.5 * dw["rmse"],
            margin="wrong sign on > 20 % of bins; RMSE of abs(x) < half that of x",
        ),
        claim(
            "triple estimation at SPM's noise level (log-precision 8): parameters "
            "and the observation log-precision estimated (the state log-precision is "
            "reported, not tested: weakly identified)",
            "conditional estimates near the true values",
            "theta "
            + ", ".join(f"{a:.3f}" for a in th)
            + " (true "
            + ", ".join(f"{a:.3f}" for a in tt)
            + ", prior "
            + ", ".join(f"{a:.2g}" for a in tp)
            + f"); h_v {tri['hv']:.2f}, h_w {tri['hw']:.2f} (true {tri['hs']:.0f}, prior 4)",
            # h_w is weakly identified here (see the reported rows): not part of the test
            bool(
                np.all(np.abs(th - tt) < 0.5 * np.abs(tp - tt)) and abs(tri["hv"] - tri["hs"]) < 2
            ),
            margin="each error < half the prior's; abs(h_v - true) < 2",
        ),
    ]
    if tri_seeds:
        E = np.array([np.array(r["theta"]) - r["theta_true"] for r in tri_seeds])
        se = E.std(axis=0, ddof=1) / np.sqrt(len(E))
        sd_post = np.mean([r["theta_sd"] for r in tri_seeds], axis=0)
        claims.append(
            claim(
                f"triple estimation at log-precision 8: no bias over {len(E)} seeds",
                "conditional estimates near the true values",
                "mean error "
                + ", ".join(f"{a:+.3f}" for a in E.mean(axis=0))
                + " (standard error "
                + ", ".join(f"{a:.3f}" for a in se)
                + "); spread across seeds "
                + ", ".join(f"{a:.3f}" for a in E.std(axis=0, ddof=1))
                + " vs posterior sd "
                + ", ".join(f"{a:.3f}" for a in sd_post)
                + f"; h_v {np.mean([r['hv'] for r in tri_seeds]):.2f}, "
                f"h_w {np.mean([r['hw'] for r in tri_seeds]):.2f} (mean)",
                bool(np.all(np.abs(E.mean(axis=0)) < 3 * se)),
                margin="each abs(mean error) < 3 s.e.",
            )
        )
        spread = E.std(axis=0, ddof=1)
        claims.append(
            claim(
                f"triple estimation: the posterior sd matches the spread of the "
                f"estimates over {len(E)} seeds",
                "conditional estimates with their posterior confidence intervals",
                "spread across seeds "
                + ", ".join(f"{a:.3f}" for a in spread)
                + " vs posterior sd "
                + ", ".join(f"{a:.3f}" for a in sd_post)
                + " (ratio "
                + ", ".join(f"{a:.1f}" for a in spread / sd_post)
                + "; the posterior is overconfident, docs/dem.rst)",
                bool(np.all(spread <= 1.5 * sd_post)),
                margin="spread <= 1.5 x posterior sd, each parameter",
            )
        )
    reported = [
        f"Convolution, generalized filtering (one online pass): cause RMSE "
        f"{conv['gf_cause_rmse']:.3f}.",
        "Triple estimation with SPM's scheme (DEM(scheme='spm'), same data; the claims above "
        f"use predcode's variant): {len(tri_s['F'])} accepted of {len(tri_s['F_all'])} "
        "iterations run, theta "
        + ", ".join(f"{a:.3f}" for a in tri_s["theta"])
        + f"; h_v {tri_s['hv']:.2f}, h_w {tri_s['hw']:.2f}.",
    ]
    if conv_d2:
        c2 = np.median(np.array(conv_d2), axis=0)
        E2 = np.array([np.array(r["theta"]) - r["theta_true"] for r in tri_d2])
        reported.append(
            f"Causes embedded with SPM's order d = 2 instead of d = n = 6: convolution median "
            f"state / cause RMSE over {len(conv_d2)} seeds {c2[0]:.3f} / {c2[1]:.3f} (d = n: "
            f"{med['state_rmse']:.3f} / {med['cause_rmse']:.3f}); triple estimation over "
            f"{len(E2)} seeds: mean parameter error "
            + ", ".join(f"{a:+.3f}" for a in E2.mean(axis=0))
            + f", mean h_v {np.mean([r['hv'] for r in tri_d2]):.2f}, mean h_w "
            f"{np.mean([r['hw'] for r in tri_d2]):.2f} (true 8). The state log-precision is "
            "weakly identified at this noise level: its estimate depends on the causes' order."
        )
    if tri_spm:
        est = np.array([r["theta"] for r in tri_spm])
        reported.append(
            "SPM's DEM_demo_DEM set-up (A[1,0], C[0,0] free, flat prior, no state noise, "
            f"16 iterations), {len(est)} seeds: A[1,0] "
            + ", ".join(f"{a:.3f}" for a in est[:, 0])
            + f" (true {tri_spm[0]['theta_true'][0]:.3f}); C[0,0] "
            + ", ".join(f"{a:.3f}" for a in est[:, 1])
            + f" (true {tri_spm[0]['theta_true'][1]:.3f}); h_v "
            + ", ".join(f"{r['hv']:.2f}" for r in tri_spm)
            + " (true 8)."
        )
    report = {
        "paper": "Friston 2008; Friston, Trujillo-Barreto & Daunizeau 2008",
        "quick": quick,
        "seed": seed,
        "backend": resolve_backend(backend),
        "claims": claims,
        "reported": reported,
        "wall_time_s": time.perf_counter() - t0,
        "machine": machine_info(),
        "results": {
            "convolution": {
                k: conv[k]
                for k in (
                    "cause_rmse",
                    "cause_corr",
                    "state_rmse",
                    "ekf_cause_rmse",
                    "ekf_state_rmse",
                    "gf_cause_rmse",
                    "wall_s",
                    "per_seed",
                )
            }
            | {"by_order": {str(k): v for k, v in bo.items()}, "F": conv["dem"].F_accepted_},
            "lorenz": {
                k: lor[k] for k in ("initial_error", "late_rmse", "late_rmse_ekf", "per_seed")
            },
            "double_well": {
                k: dw[k] for k in ("wrong_sign_fraction", "rmse", "rmse_abs", "fit_rmse_y")
            },
            "triple": {
                k: tri[k]
                for k in (
                    "theta",
                    "theta_true",
                    "theta_sd",
                    "hv",
                    "hw",
                    "F",
                    "F_all",
                    "hs",
                    "cause_rmse",
                )
            },
        },
    }
    if tri_spm:
        report["results"]["triple_spm_demo"] = [
            {"seed": k} | {q: r[q] for q in ("theta", "theta_true", "theta_sd", "hv", "hw")}
            for k, r in enumerate(tri_spm)
        ]
    if tri_seeds:
        report["results"]["triple_seeds"] = [
            {"seed": k} | {q: r[q] for q in ("theta", "theta_true", "theta_sd", "hv", "hw")}
            for k, r in enumerate(tri_seeds)
        ]
    report["figures"] = _figures(out, conv, lor, dw, tri)
    write_report(out, report, "Friston (2008) DEM demos", report["figures"],
                 notes=[f"Reported, not claimed: {r}" for r in reported],
                 sections=_sections(report))
    return report
