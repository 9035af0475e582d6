r"""Rao & Ballard (1999): receptive fields, end-stopping, feedback removal, surround effects.

``predcode reproduce rao-ballard-1999 --out DIR`` trains the paper's geometry
(three 16×16 level-1 modules offset by 5 px, 32 causes each; one level-2 module
of 128 causes) on bundled natural images (DoG-prefiltered, Gaussian window per
module) and measures, each beside the paper's claim:

* level-1 and level-2 receptive fields (Fig. 2) and the fraction of level-1
  fields fit by a Gabor function with :math:`R^2 \ge 0.7`;
* end-stopping (Fig. 3): the absolute level-1 error :math:`|r - r^{td}|` of each
  centre-module unit to bars of increasing length at its preferred
  orientation, and the index (peak − long-bar response) / peak;
* feedback removal (Fig. 5): the same with the level-2 prediction cut
  (:math:`r^{td} = 0`): the paper reports end-stopping abolished;
* orientation-contrast surround suppression (Fig. 6): centre grating alone, with
  an iso-oriented and with an orthogonal surround;
* unexplained variance of held-out patches.

Status: the receptive fields, metrics and measurements are implemented and
tested; with the settings below the end-stopping claims do **not** yet hold
(the report says so). See ``docs/rao_ballard.rst`` for what was tried.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import numpy as np

from ..backend import resolve_backend, to_numpy
from ..bench.machine import machine_info
from ..datasets import PatchSampler, load_natural_images, preprocess
from ..datasets.natural import dog_filter
from ..datasets.stimuli import bar, orientation_contrast
from ..metrics import gabor_fit_fraction, localisation_and_orientation
from ..models.rao_ballard import RaoBallard

__all__ = ["CONFIG", "training_data", "as_model_input", "end_stopping",
           "surround_suppression", "unexplained_variance", "run"]

#: Settings of the reproduction. The paper's values: sigma2 = 1, sigma2_td = 10,
#: alpha = (1, 0.05), lambda = 0.02, k2 / 1.015 every 40 inputs. Choices of ours
#: (the paper's Methods were not available to us): the data scale, the window,
#: the DoG widths, k2 and the level-2 weight prior (the paper's single lambda
#: applied to level 2 keeps U_h near 0; see docs/rao_ballard.rst).
CONFIG: dict[str, Any] = {
    "n_patches": 20000,
    "n_test": 1000,
    "data_scale": 1.0,
    "dog_sigma": 1.0,
    "model": {"window_sigma": 4.0, "k2": (0.3, 0.3), "lam": (0.02, 0.005), "T": 100,
              "prior": "sparse", "sigma2": 1.0, "sigma2_td": 10.0, "alpha": (1.0, 0.05)},
    "bar_contrast": 4.0,
    "bar_lengths": tuple(range(2, 27, 2)),
}


def training_data(n: int, n_test: int, data_scale: float, dog_sigma: float,
                  random_state: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """DoG-filtered, unit-variance natural images → ``(train, test)`` 16×26 regions."""
    images = preprocess(load_natural_images(), method="dog", sigma_center=dog_sigma)
    sampler = PatchSampler(images, patch_shape=(16, 26), random_state=random_state)
    X = sampler.sample(n + n_test) * data_scale
    return X[:n], X[n:]


def as_model_input(image: np.ndarray, data_scale: float, dog_sigma: float) -> np.ndarray:
    """Preprocess a stimulus exactly like the training images (DoG, then scale).

    The stimulus is embedded in a zero canvas first, so the filter sees no edge.
    """
    h, w = image.shape
    pad = 16
    canvas = np.zeros((h + 2 * pad, w + 2 * pad))
    canvas[pad:pad + h, pad:pad + w] = image
    return dog_filter(canvas, sigma_center=dog_sigma)[pad:pad + h, pad:pad + w] * data_scale


def _centre_error(model: RaoBallard, S: np.ndarray, feedback: bool) -> np.ndarray:
    """Absolute level-1 error of the centre module, (n_stimuli, n_causes)."""
    centre = model.n_modules // 2
    return np.abs(to_numpy(model.errors(S, feedback=feedback))[:, centre, :])


def end_stopping(model: RaoBallard, data_scale: float, dog_sigma: float,
                 lengths=CONFIG["bar_lengths"], contrast: float = CONFIG["bar_contrast"],
                 orientations=None) -> dict[str, Any]:
    """Length tuning of the centre module's error neurons, with and without feedback.

    Each unit's preferred orientation is the one giving its largest absolute error to a
    bar of length 8 without feedback (its classical response). The index is
    (peak − response to the longest bar) / peak, for units whose classical
    response is above the 25th percentile.
    """
    if orientations is None:  # 8 orientations, 22.5 degrees apart
        orientations = tuple(np.arange(0, 180, 22.5))
    h, w = model.region_shape_
    prep = [as_model_input(bar((h, w), length=8, orientation_deg=float(o), contrast=contrast),
                           data_scale, dog_sigma) for o in orientations]
    classical = _centre_error(model, np.stack(prep), feedback=False)  # (n_ori, K)
    pref = np.asarray(orientations)[classical.argmax(axis=0)]
    K = classical.shape[1]
    curves = {True: np.zeros((K, len(lengths))), False: np.zeros((K, len(lengths)))}
    for k in range(K):
        S = np.stack([as_model_input(bar((h, w), length=float(L), orientation_deg=float(pref[k]),
                                         contrast=contrast), data_scale, dog_sigma)
                      for L in lengths])
        for fb in (True, False):
            curves[fb][k] = _centre_error(model, S, feedback=fb)[:, k]

    def index(c: np.ndarray) -> np.ndarray:
        peak = c.max(axis=1)
        return (peak - c[:, -1]) / np.maximum(peak, 1e-12)

    strong = classical.max(axis=0) >= np.percentile(classical.max(axis=0), 25)
    esi_fb, esi_nf = index(curves[True]), index(curves[False])
    diff = (esi_fb - esi_nf)[strong]
    return {
        "lengths": list(map(float, lengths)), "preferred_orientation": pref.tolist(),
        "curves_feedback": curves[True].tolist(), "curves_no_feedback": curves[False].tolist(),
        "units": np.flatnonzero(strong).tolist(), "n_units": int(strong.sum()),
        "index_feedback_mean": float(esi_fb[strong].mean()),
        "index_feedback_sd": float(esi_fb[strong].std()),
        "index_no_feedback_mean": float(esi_nf[strong].mean()),
        "index_no_feedback_sd": float(esi_nf[strong].std()),
        "paired_difference_mean": float(diff.mean()),
        "paired_difference_sem": float(diff.std(ddof=1) / np.sqrt(diff.size)) if diff.size > 1
        else float("nan"),
        "fraction_units_more_end_stopped_with_feedback": float((diff > 0).mean()),
    }


def surround_suppression(model: RaoBallard, data_scale: float, dog_sigma: float,
                         preferred: np.ndarray, period: float = 6.0,
                         center_radius: float = 4.0) -> dict[str, Any]:
    """Centre-module absolute error to a centre grating alone, with iso and orthogonal
    surrounds."""
    h, w = model.region_shape_
    K = len(preferred)
    resp = np.zeros((3, K))
    for k in range(K):
        o = float(preferred[k])
        stims = [orientation_contrast((h, w), center_radius, o, o, period, surround=False),
                 orientation_contrast((h, w), center_radius, o, o, period),
                 orientation_contrast((h, w), center_radius, o, o + 90.0, period)]
        S = np.stack([as_model_input(s, data_scale, dog_sigma) for s in stims])
        resp[:, k] = _centre_error(model, S, feedback=True)[:, k]
    centre, iso, ortho = resp
    ok = centre > np.percentile(centre, 25)
    return {
        "centre": centre.tolist(), "iso": iso.tolist(), "ortho": ortho.tolist(),
        "n_units": int(ok.sum()),
        "iso_suppression_mean": float(((centre - iso) / centre)[ok].mean()),
        "ortho_suppression_mean": float(((centre - ortho) / centre)[ok].mean()),
        "fraction_iso_below_ortho": float((iso < ortho)[ok].mean()),
    }


def unexplained_variance(model: RaoBallard, X: np.ndarray) -> float:
    """Fraction of held-out patch variance not explained by the level-1 prediction U r."""
    P = to_numpy(model._patches(model._check_X(X)))
    R = to_numpy(model.reconstruct(X)).reshape(P.shape)
    return float(((P - R) ** 2).sum() / (P**2).sum())


def _figures(model: RaoBallard, es: dict[str, Any], out: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    for level, name in ((1, "rf_level1.png"), (2, "rf_level2.png")):
        rf = model.receptive_fields(level)[:32]
        fig, axes = plt.subplots(4, 8, figsize=(8 if level == 1 else 11, 4.4))
        for ax, f in zip(axes.ravel(), rf, strict=False):
            v = np.abs(f).max() or 1.0
            ax.imshow(f, cmap="gray", vmin=-v, vmax=v)
            ax.axis("off")
        fig.suptitle(f"level-{level} receptive fields" + (" (first 32)" if level == 2 else ""))
        fig.savefig(out / name, dpi=100)
        plt.close(fig)
    units = es["units"]
    fb = np.asarray(es["curves_feedback"])[units]
    nf = np.asarray(es["curves_no_feedback"])[units]
    fb, nf = fb / fb.max(axis=1, keepdims=True), nf / nf.max(axis=1, keepdims=True)
    L = es["lengths"]
    fig, ax = plt.subplots(figsize=(5.5, 3.8))
    for c, label, style in ((fb, "with feedback", "-"), (nf, "feedback removed", "--")):
        m, s = c.mean(axis=0), c.std(axis=0)
        ax.plot(L, m, style, label=label)
        ax.fill_between(L, m - s, m + s, alpha=0.2)
    ax.set(xlabel="bar length (pixels)", ylabel="|error| / peak (mean ± sd)",
           title=f"end-stopping, {es['n_units']} centre-module units")
    ax.legend()
    fig.tight_layout()
    fig.savefig(out / "end_stopping.png", dpi=120)
    plt.close(fig)


def run(out: str | Path, *, quick: bool = False, backend: str = "auto",
        verbose: bool = True) -> dict[str, Any]:
    """Train, measure and write ``report.json``, ``report.md`` and figures to ``out``."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    cfg = CONFIG
    n = 1000 if quick else cfg["n_patches"]
    Xtr, Xte = training_data(n, 200 if quick else cfg["n_test"], cfg["data_scale"],
                             cfg["dog_sigma"])
    model = RaoBallard(random_state=0, backend=backend, verbose=verbose,
                       **cfg["model"]).fit(Xtr)
    t_train = time.perf_counter() - t0
    rf1 = model.receptive_fields(1)
    gab = gabor_fit_fraction(rf1)
    loc = localisation_and_orientation(rf1)
    es = end_stopping(model, cfg["data_scale"], cfg["dog_sigma"])
    ss = surround_suppression(model, cfg["data_scale"], cfg["dog_sigma"],
                              np.asarray(es["preferred_orientation"]))
    uv = unexplained_variance(model, Xte)
    wall = time.perf_counter() - t0
    claims = [
        {"claim": "level-1 fields are Gabor-like", "paper": "Fig. 2: localised, oriented",
         "measured": f"{100 * gab['fraction']:.0f} % of {gab['n']} fit a Gabor with R² ≥ "
                     f"{gab['threshold']}", "holds": bool(gab["fraction"] >= 0.5)},
        {"claim": "end-stopping with feedback", "paper": "Fig. 3: strong end-stopping",
         "measured": f"index {es['index_feedback_mean']:.2f} ± {es['index_feedback_sd']:.2f} "
                     f"(n = {es['n_units']})",
         "holds": bool(es["index_feedback_mean"] >= 0.5)},
        {"claim": "feedback removal abolishes end-stopping",
         "paper": "Fig. 5: index with feedback >> without",
         "measured": f"with {es['index_feedback_mean']:.2f}, without "
                     f"{es['index_no_feedback_mean']:.2f}; paired difference "
                     f"{es['paired_difference_mean']:+.3f} ± {es['paired_difference_sem']:.3f} "
                     f"(sem)", "holds": bool(es["paired_difference_mean"]
                                             > 3 * es["paired_difference_sem"]
                                             and es["paired_difference_mean"] >= 0.2)},
        {"claim": "iso-oriented surround suppresses more than orthogonal",
         "paper": "Fig. 6: orientation-contrast surround suppression",
         "measured": f"suppression iso {ss['iso_suppression_mean']:+.2f}, ortho "
                     f"{ss['ortho_suppression_mean']:+.2f} (n = {ss['n_units']})",
         "holds": bool(ss["iso_suppression_mean"] > ss["ortho_suppression_mean"])},
        {"claim": "full reproduction under 5 minutes", "paper": "(acceptance target)",
         "measured": f"{wall:.0f} s", "holds": bool(wall < 300)},
    ]
    report = {
        "paper": "Rao & Ballard (1999), Nature Neuroscience 2(1):79-87", "quick": quick,
        "backend": resolve_backend(backend), "claims": claims,
        "gabor": {"fraction": gab["fraction"], "r2": np.asarray(gab["r2"]).tolist(),
                  "threshold": gab["threshold"]},
        "localisation_mean": float(np.mean(loc["localisation"])),
        "orientation_selectivity_mean": float(np.mean(loc["orientation_selectivity"])),
        "end_stopping": es, "surround": ss, "unexplained_variance": uv,
        "train_time_s": t_train, "wall_time_s": wall,
        "config": json.loads(json.dumps(cfg)), "machine": machine_info(),
    }
    _figures(model, es, out)
    (out / "report.json").write_text(json.dumps(report, indent=2))
    lines = ["# Rao & Ballard (1999), reproduced by predcode", "",
             "| claim | paper | predcode | holds |", "|---|---|---|---|"]
    lines += [f"| {c['claim']} | {c['paper']} | {c['measured']} | "
              f"{'yes' if c['holds'] else 'NO'} |" for c in claims]
    lines += ["", f"Unexplained variance of {len(Xte)} held-out regions: {100 * uv:.1f} %. "
              f"Localisation {report['localisation_mean']:.2f}, orientation selectivity "
              f"{report['orientation_selectivity_mean']:.2f} (means over level-1 fields).",
              f"Training {t_train:.0f} s, total {wall:.0f} s on {report['machine']['cpu']}.",
              "", "Figures: `rf_level1.png`, `rf_level2.png`, `end_stopping.png`.", ""]
    (out / "report.md").write_text("\n".join(lines))
    return report
