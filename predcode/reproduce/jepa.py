r"""JEPA beside predictive coding and pixel prediction on the same digits ("ijepa-digits").

Every model sees the same images (scikit-learn's 8×8 digits, standardised by
the training mean and s.d.), the same number of epochs, and no labels; the
labels only score a **linear probe** (closed-form ridge on the frozen
representation). Compared:

* ``jepa-ema``: I-JEPA (EMA target encoder, momentum 0.996 → 1, multi-block masks);
* ``jepa-sigreg``: the same with one shared encoder and SIGReg (LeJEPA);
* ``jepa-none``: shared encoder, no regulariser (the collapse control);
* ``pixel-pred``: the same network predicting target *pixels* (MAE-like);
* ``pc``: a generative predictive-coding network (:class:`~predcode.PCN`,
  ``mode="generative"``), latents of the same size as the pooled JEPA embedding;
* ``random-encoder``: the JEPA encoder at initialisation (what training adds);
* ``pixels``: the raw image.

Every JEPA variant, the random encoder included, uses the same encoder
(:data:`DIGITS_ENCODER`; the default translation-equivariant CNN).
``IJEPA(pos_embed=True)`` with momentum 0.95 → 1 beat its random encoder on
seeds 0–4 (+1.07 ± 0.37 points) but not on fresh seeds 5–9, so it is not the
default (docs/jepa.rst).

Reported per model: probe accuracy on the pooled (``D``-dim) and on the full
patch map (``P·D``-dim) representation, effective rank, embedding s.d., wall time;
and JEPA-EMA minus its random encoder over seeds 0–4 (paired: same split and
initialisation per seed), because one seed's split moves the probe more than
training does (docs/jepa.rst).

Claims checked (from the papers, at this toy scale): latent prediction is not
worse than pixel prediction for linear probing (I-JEPA, Assran et al. 2023,
Table 1: I-JEPA > MAE); without a collapse-preventing mechanism the shared
encoder shrinks its embeddings, and SIGReg prevents it (LeJEPA).

Run with ``predcode reproduce ijepa-digits --out DIR``.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np

from ..backend import resolve_backend, to_numpy
from ..datasets import load_digits_split
from ..machine import machine_info
from ..metrics.representations import effective_rank, linear_probe
from ..models.jepa import IJEPA
from ..models.pcn import PCN
from ._report import at_least, claim, measurement, write_report

__all__ = ["run", "compare_on_digits", "compare_on_two_rooms", "ema_vs_random_over_seeds"]


def _scores(Ztr: Any, Zte: Any, ytr: Any, yte: Any) -> dict[str, float]:
    Ztr, Zte = to_numpy(Ztr), to_numpy(Zte)
    return {"probe_accuracy": linear_probe(Ztr, ytr, Zte, yte), "dim": int(Ztr.shape[1]),
            "effective_rank": effective_rank(Zte), "std": float(Zte.std(axis=0).mean())}


#: Encoder and EMA settings of the digits comparison (see the module doc).
DIGITS_ENCODER: dict[str, Any] = {}
DIGITS_EMA: tuple[float, float] = (0.996, 1.0)


def compare_on_digits(*, epochs: int = 20, max_train: int | None = None, embed_dim: int = 32,
                      backend: str = "auto", random_state: int = 0,
                      verbose: bool = False) -> dict[str, Any]:
    """Train every model on the same digits with the same epochs; probe and time them."""
    Xtr, ytr, Xte, yte = load_digits_split(random_state=random_state)
    if max_train is not None:
        Xtr, ytr = Xtr[:max_train], ytr[:max_train]
    mu, sd = Xtr.mean(), Xtr.std()
    Xtr, Xte = (Xtr - mu) / sd, (Xte - mu) / sd
    res: dict[str, Any] = {"pixels": {"pooled": _scores(Xtr, Xte, ytr, yte), "wall_time_s": 0.0}}
    common = dict(epochs=epochs, embed_dim=embed_dim, backend=backend, random_state=random_state,
                  verbose=verbose, **DIGITS_ENCODER)
    variants = {"jepa-ema": dict(collapse="ema", ema=DIGITS_EMA),
                "jepa-sigreg": dict(collapse="sigreg"), "jepa-none": dict(collapse="none"),
                "pixel-pred": dict(predict="pixels"),
                "random-encoder": dict(collapse="none", lr=1e-12, epochs=1)}
    histories = {}
    for name, kw in variants.items():
        t0 = time.perf_counter()
        m = IJEPA(**{**common, **kw}).fit(Xtr)
        wall = time.perf_counter() - t0
        res[name] = {"pooled": _scores(m.infer(Xtr, pool="mean"), m.infer(Xte, pool="mean"),
                                       ytr, yte),
                     "patch_map": _scores(m.infer(Xtr), m.infer(Xte), ytr, yte),
                     "wall_time_s": wall if name != "random-encoder" else 0.0,
                     "final_loss": m.history_["loss"][-1]}
        histories[name] = m.history_["loss"]
    t0 = time.perf_counter()
    pc = PCN(sizes=(embed_dim, 64, Xtr.shape[1]), mode="generative", epochs=epochs, T=20,
             gamma=0.1, lr=0.05, backend=backend, random_state=random_state).fit(Xtr)
    wall = time.perf_counter() - t0
    res["pc"] = {"pooled": _scores(pc.infer(Xtr), pc.infer(Xte), ytr, yte), "wall_time_s": wall,
                 "final_loss": pc.history_["energy"][-1]}
    histories["pc (energy)"] = pc.history_["energy"]
    return {"results": res, "histories": histories, "n_train": int(len(Xtr)),
            "n_test": int(len(Xte)), "epochs": epochs, "embed_dim": embed_dim}


def ema_vs_random_over_seeds(seeds=(0, 1, 2, 3, 4), *, epochs: int = 20,
                             max_train: int | None = None, embed_dim: int = 32,
                             backend: str = "auto", **ema_kw: Any) -> dict[str, Any]:
    """Pooled probe of JEPA-EMA and of its random initial encoder, seed by seed.

    Each seed draws its own train/test split, initialisation and masks; the
    same seed gives both models the same split and the same initial encoder,
    so the difference is paired. ``ema_kw`` overrides the model's settings
    (default: :data:`DIGITS_ENCODER` and ``ema=DIGITS_EMA``). Returns the
    accuracies, the paired differences, their mean, sample s.d. (``ddof=1``)
    and standard error.
    """
    import numpy as np

    ema_kw = {**DIGITS_ENCODER, "ema": DIGITS_EMA, **ema_kw}
    enc_kw = {k: v for k, v in ema_kw.items() if k not in ("ema", "lr", "epochs")}

    ema, rnd = [], []
    for seed in seeds:
        Xtr, ytr, Xte, yte = load_digits_split(random_state=seed)
        if max_train is not None:
            Xtr, ytr = Xtr[:max_train], ytr[:max_train]
        mu, sd = Xtr.mean(), Xtr.std()
        Xtr, Xte = (Xtr - mu) / sd, (Xte - mu) / sd
        for acc, kw in ((ema, dict(collapse="ema", epochs=epochs, **ema_kw)),
                        (rnd, dict(collapse="none", lr=1e-12, epochs=1, **enc_kw))):
            m = IJEPA(embed_dim=embed_dim, backend=backend, random_state=seed, **kw).fit(Xtr)
            acc.append(linear_probe(to_numpy(m.infer(Xtr, pool="mean")), ytr,
                                    to_numpy(m.infer(Xte, pool="mean")), yte))
    d = np.asarray(ema) - np.asarray(rnd)
    sd_d = float(d.std(ddof=1)) if len(d) > 1 else 0.0
    return {"seeds": list(seeds), "jepa_ema": ema, "random_encoder": rnd,
            "difference": d.tolist(), "mean_difference": float(d.mean()), "sd_difference": sd_d,
            "se_difference": sd_d / float(np.sqrt(len(d))), "settings": ema_kw}


def compare_on_two_rooms(*, epochs: int = 20, n_traj: int = 120, embed_dim: int = 32,
                         backend: str = "auto", random_state: int = 0,
                         verbose: bool = False) -> dict[str, Any]:
    """Same footing on two-room frames: probe :math:`R^2` of the agent's position.

    Frames of random trajectories (16×16), no actions used; JEPA (EMA and
    SIGReg), pixel prediction and generative PC, same frames and epochs.
    """
    from ..envs import TwoRooms, generate_trajectories

    env = TwoRooms()
    tr = generate_trajectories(n_traj, 10, env=env, random_state=random_state)
    te = generate_trajectories(max(n_traj // 3, 4), 10, env=env, random_state=random_state + 1)
    Xtr, Xte = tr["obs"].reshape(-1, env.n_pixels), te["obs"].reshape(-1, env.n_pixels)
    ptr, pte = tr["pos"].reshape(-1, 2), te["pos"].reshape(-1, 2)
    mu, sd = Xtr.mean(), Xtr.std()
    Xtr, Xte = (Xtr - mu) / sd, (Xte - mu) / sd

    def score(Ztr: Any, Zte: Any) -> dict[str, float]:
        Ztr, Zte = to_numpy(Ztr), to_numpy(Zte)
        return {"probe_r2_position": linear_probe(Ztr, ptr, Zte, pte, task="regression"),
                "effective_rank": effective_rank(Zte), "dim": int(Ztr.shape[1])}

    res: dict[str, Any] = {"pixels": {"pooled": score(Xtr, Xte), "wall_time_s": 0.0}}
    common = dict(image_shape=(env.size, env.size), patch=2, epochs=epochs,
                  embed_dim=embed_dim, backend=backend, random_state=random_state,
                  verbose=verbose)
    for name, kw in {"jepa-ema": dict(collapse="ema"), "jepa-sigreg": dict(collapse="sigreg"),
                     "pixel-pred": dict(predict="pixels")}.items():
        t0 = time.perf_counter()
        m = IJEPA(**{**common, **kw}).fit(Xtr)
        wall = time.perf_counter() - t0
        res[name] = {"pooled": score(m.infer(Xtr, pool="mean"), m.infer(Xte, pool="mean")),
                     "patch_map": score(m.infer(Xtr), m.infer(Xte)), "wall_time_s": wall}
    t0 = time.perf_counter()
    pc = PCN(sizes=(embed_dim, 128, env.n_pixels), mode="generative", epochs=epochs, T=20,
             gamma=0.1, lr=0.05, backend=backend, random_state=random_state).fit(Xtr)
    res["pc"] = {"pooled": score(pc.infer(Xtr), pc.infer(Xte)),
                 "wall_time_s": time.perf_counter() - t0}
    return {"results": res, "n_train": int(len(Xtr)), "n_test": int(len(Xte)),
            "epochs": epochs}


def _plot(r: dict[str, Any], path: Path, spread: dict[str, Any] | None = None) -> None:
    from ._figures import pyplot

    plt = pyplot()
    res = r["results"]
    names = list(res)
    n_panels = 4 if spread is not None else 3
    fig, ax = plt.subplots(1, n_panels, figsize=(4.4 * n_panels, 3.9), layout="constrained")
    acc = [100 * res[n]["pooled"]["probe_accuracy"] for n in names]
    ax[0].barh(names, acc, color="C0")
    ax[0].set(xlim=(0, 100), xlabel="test accuracy (%; chance 10 %)",
              title=f"linear probe, pooled {r['embed_dim']}-d (seed 0)")
    for y, a in enumerate(acc):
        ax[0].text(a + 1, y, f"{a:.1f}", va="center", fontsize=7)
    dims = [res[n]["pooled"]["dim"] for n in names]
    ax[1].barh(names, [res[n]["pooled"]["effective_rank"] for n in names], color="C1")
    ax[1].set(xlabel="effective rank (of the representation's dimension)",
              title="effective rank, pooled (seed 0)")
    ax[1].set_yticks(range(len(names)), [f"{n} ({d}-d)" for n, d in zip(names, dims,
                                                                         strict=True)])
    wall = [res[n]["wall_time_s"] for n in names]
    ax[2].barh(names, wall, color="C2")
    for y, w in enumerate(wall):
        if w == 0:
            ax[2].text(0, y, " not trained", va="center", fontsize=7)
    ax[2].set(xlabel="training wall time (s)", title=f"training cost, {r['epochs']} epochs")
    if spread is not None:
        d = 100 * np.asarray(spread["difference"])
        seeds = spread["seeds"]
        ax[3].plot(seeds, d, "o", color="C0", label="one seed (own split and initialisation)")
        m, se = 100 * spread["mean_difference"], 100 * spread["se_difference"]
        ax[3].errorbar([seeds[-1] + 1], [m], yerr=[se], fmt="s", color="k", capsize=3,
                       label="mean ± s.e.")
        ax[3].axhline(0, color="k", lw=0.6)
        ax[3].set(xticks=list(seeds) + [seeds[-1] + 1],
                  xticklabels=[str(s) for s in seeds] + ["mean"], xlabel="seed",
                  ylabel="JEPA-EMA − random encoder\n(probe accuracy, points)",
                  title=f"training gain over {len(seeds)} seeds")
        ax[3].legend(fontsize=7)
    fig.suptitle(f"JEPA vs predictive coding vs pixel prediction, digits ({r['n_train']} train "
                 f"/ {r['n_test']} test images)")
    fig.savefig(path, dpi=120)
    plt.close(fig)


#: Margin (accuracy, as a fraction) by which one probe must beat another to count.
PROBE_MARGIN = 0.01


def _claims(res: dict[str, Any], spread: dict[str, Any]) -> tuple[list, list]:
    """Claims and measurements of the digits comparison (numbers from ``compare_on_digits``)."""
    lat = res["jepa-ema"]["pooled"]["probe_accuracy"]
    pix = res["pixel-pred"]["pooled"]["probe_accuracy"]
    rnd = res["random-encoder"]["pooled"]["probe_accuracy"]
    raw = res["pixels"]["pooled"]["probe_accuracy"]
    s_none, s_sig = res["jepa-none"]["pooled"]["std"], res["jepa-sigreg"]["pooled"]["std"]
    pts = dict(scale=100, unit=" points")
    claims = [
        claim("latent prediction probes better than pixel prediction",
              "I-JEPA > MAE in linear probing (Assran et al. 2023, Table 1)",
              f"JEPA-EMA {100 * lat:.1f} % vs pixel prediction {100 * pix:.1f} % (pooled)",
              *at_least(lat, pix, PROBE_MARGIN, **pts)),
        claim("no regulariser, shared encoder: embeddings shrink; SIGReg prevents it",
              "collapse without EMA/stop-grad; SIGReg avoids it (LeJEPA)",
              f"embedding s.d. {s_none:.3f} (none) vs {s_sig:.3f} (SIGReg)",
              s_sig > 3 * s_none, f"SIGReg s.d. > 3x no-regulariser s.d. "
              f"(is {s_sig / max(s_none, 1e-12):.2g}x)"),
    ]
    gain, se = spread["mean_difference"], spread["se_difference"]
    measurements = [
        measurement("training adds to the random encoder (JEPA-EMA, paired over seeds)",
                    f"seed {spread['seeds'][0]}: {100 * lat:.1f} % vs random encoder "
                    f"{100 * rnd:.1f} %; seeds {spread['seeds'][0]}-{spread['seeds'][-1]}: "
                    f"{100 * gain:+.2f} +- {100 * se:.2f} points (mean +- s.e.)",
                    "mean gain > 2 s.e. (and > 0)", gain > 2 * se and gain > 0),
        measurement("JEPA-EMA against the raw pixels (pooled probe)",
                    f"{100 * lat:.1f} % vs {100 * raw:.1f} %",
                    at_least(lat, raw, PROBE_MARGIN, **pts)[1],
                    at_least(lat, raw, PROBE_MARGIN)[0]),
    ]
    return claims, measurements


def run(out: str | Path, *, quick: bool = False, backend: str = "auto", seed: int = 0,
        verbose: bool = True) -> dict[str, Any]:
    """Run the comparison; write ``report.json``, ``report.md`` and ``jepa_vs_pc.png``.

    ``seed`` shifts every random choice (splits, initialisations, masks): the
    digits and two-room comparisons use ``seed``, the paired seeds ``seed + k``.
    """
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    r = compare_on_digits(epochs=2 if quick else 20, max_train=300 if quick else None,
                          backend=backend, random_state=seed, verbose=verbose)
    rooms = compare_on_two_rooms(epochs=2 if quick else 10, n_traj=20 if quick else 120,
                                 backend=backend, random_state=seed, verbose=verbose)
    spread = ema_vs_random_over_seeds(tuple(seed + k for k in ((0, 1) if quick else range(5))),
                                      epochs=2 if quick else 20,
                                      max_train=300 if quick else None, backend=backend)
    claims, measurements = _claims(r["results"], spread)
    res = r["results"]
    rows = [f"{n}: probe {100 * v['pooled']['probe_accuracy']:.1f} % (pooled, "
            f"{v['pooled']['dim']}-d)"
            + (f", {100 * v['patch_map']['probe_accuracy']:.1f} % (patch map, "
               f"{v['patch_map']['dim']}-d)" if "patch_map" in v else "")
            + f", effective rank {v['pooled']['effective_rank']:.1f}, s.d. "
              f"{v['pooled']['std']:.3f}, {v['wall_time_s']:.1f} s" for n, v in res.items()]
    rows.append("JEPA-EMA minus random encoder, pooled probe, seeds "
                f"{spread['seeds'][0]}-{spread['seeds'][-1]} (own split and initialisation "
                "per seed): " + ", ".join(f"{100 * v:+.1f}" for v in spread["difference"])
                + f" points; mean {100 * spread['mean_difference']:+.2f} +- "
                f"{100 * spread['sd_difference']:.2f} (s.d.), standard error "
                f"{100 * spread['se_difference']:.2f}")
    rows += [f"two rooms, {n}: probe R^2 of position {v['pooled']['probe_r2_position']:.2f} "
             f"(pooled, {v['pooled']['dim']}-d)"
             + (f", {v['patch_map']['probe_r2_position']:.2f} (patch map)"
                if "patch_map" in v else "")
             + f", effective rank {v['pooled']['effective_rank']:.1f}, "
               f"{v['wall_time_s']:.1f} s" for n, v in rooms["results"].items()]
    report = {"paper": "Assran et al. 2023 (I-JEPA); Balestriero & LeCun 2025 (LeJEPA)",
              "quick": quick, "seed": seed, "backend": resolve_backend(backend),
              "claims": claims, "measurements": measurements, **r,
              "two_rooms": rooms, "ema_vs_random_over_seeds": spread,
              "wall_time_s": time.perf_counter() - t0, "machine": machine_info()}
    _plot(r, out / "jepa_vs_pc.png", spread)
    write_report(out, report, "JEPA vs predictive coding vs pixel prediction on digits",
                 ["jepa_vs_pc.png"], notes=[
                     f"Same data ({r['n_train']} train / {r['n_test']} test images), "
                     f"{r['epochs']} epochs each, no labels in training; two-room frames: "
                     f"{rooms['n_train']} / {rooms['n_test']}, {rooms['epochs']} epochs.", *rows,
                     "Pooled = mean over patch positions (JEPA) or the latent cause (PC); the "
                     "patch map keeps every position (a much larger probe input).",
                     f"Backend: {resolve_backend(backend)} (numba kernels for im2col, GELU, "
                     "SIGReg and the CEM rollouts where it resolves to numba).",
                     "Toy scale: conv encoders on 8x8 images, not ViTs on ImageNet; read the "
                     "paper column as the direction of the effect, not its size."])
    return report


