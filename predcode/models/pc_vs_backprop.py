r"""A discriminative PCN beside its backprop twin, trained on the same data (W&B 2017).

:func:`train_pair` trains a :class:`~predcode.PCN` (local Hebbian learning, output
precision :math:`\pi_L`) and an :class:`~predcode.MLP` (backprop) of the same
architecture, initialisation and batches on a bundled dataset, with the
learning rates matched at the output (:math:`\eta_{PC} \pi_L = \eta_{BP}`), and
:func:`plot_learning_curves` draws their test accuracy and objective per epoch.
Used by ``predcode train`` and the ``whittington-bogacz-2017`` reproduction.

Reference: Whittington, J. C. R. & Bogacz, R. (2017). *Neural Computation* 29(5),
1229-1262.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np

from ..backend import resolve_backend
from ..datasets import load_dataset, standardize
from ..exceptions import ValidationError
from .pcn import MLP, PCN

__all__ = ["DEFAULTS", "MLP_LR", "PCN_LR", "OUTPUT_PRECISION", "train_pair",
           "plot_learning_curves"]

#: Per-dataset settings of the reproduction (chosen on digits; see docs/pcn.rst).
DEFAULTS: dict[str, dict[str, Any]] = {
    "digits": {"sizes": (64, 128, 128, 10), "epochs": 60, "batch_size": 16},
    "mnist": {"sizes": (784, 256, 256, 10), "epochs": 30, "batch_size": 16},
}
#: Learning rates: MLP eta = 0.05; PCN eta = 0.5 with output precision 0.1 (eta pi_L = 0.05).
MLP_LR, PCN_LR, OUTPUT_PRECISION = 0.05, 0.5, 0.1


def train_pair(
    dataset: str = "digits",
    *,
    epochs: int | None = None,
    sizes: tuple[int, ...] | None = None,
    batch_size: int | None = None,
    activation: str = "tanh",
    T: int = 40,
    gamma: float = 0.1,
    pcn_lr: float = PCN_LR,
    mlp_lr: float = MLP_LR,
    output_precision: float = OUTPUT_PRECISION,
    dtype: str = "float32",
    backend: str = "auto",
    random_state: int = 0,
    baseline: bool = True,
    verbose: bool = False,
    max_train: int | None = None,
) -> dict[str, Any]:
    """Train a discriminative PCN (and its backprop twin) on a bundled dataset.

    Returns
    -------
    dict
        ``"metrics"`` (JSON-ready: accuracies, wall times, histories, settings)
        and ``"models"`` (the fitted PCN and MLP).
    """
    cfg = dict(DEFAULTS.get(dataset, DEFAULTS["digits"]))
    Xtr, ytr, Xte, yte = load_dataset(dataset, random_state=random_state)
    if max_train is not None:
        Xtr, ytr = Xtr[:max_train], ytr[:max_train]
    Xtr, Xte = standardize(Xtr, Xte)
    sizes = tuple(sizes) if sizes is not None else cfg["sizes"]
    if sizes[0] != Xtr.shape[1]:
        raise ValidationError(
            f"sizes: the first layer must match the {dataset!r} images ({Xtr.shape[1]} pixels), "
            f"got sizes={sizes}."
        )
    epochs = epochs if epochs is not None else cfg["epochs"]
    batch_size = batch_size if batch_size is not None else cfg["batch_size"]
    L = len(sizes) - 1
    common = dict(sizes=sizes, activation=activation, epochs=epochs, batch_size=batch_size,
                  dtype=dtype, backend=backend, random_state=random_state,
                  lr_schedule="cosine", verbose=verbose)
    models: dict[str, Any] = {}
    metrics: dict[str, Any] = {
        "dataset": dataset, "n_train": int(Xtr.shape[0]), "n_test": int(Xte.shape[0]),
        "settings": {**{k: (list(v) if isinstance(v, tuple) else v) for k, v in common.items()},
                     "T": T, "gamma": gamma, "pcn_lr": pcn_lr, "mlp_lr": mlp_lr,
                     "output_precision": output_precision,
                     "backend_resolved": resolve_backend(backend)},
    }
    t0 = time.perf_counter()
    pcn = PCN(T=T, gamma=gamma, lr=pcn_lr, precisions=(1.0,) * L + (output_precision,),
              **common).fit(Xtr, ytr, validation_data=(Xte, yte))
    metrics["pcn"] = {"test_accuracy": pcn.score(Xte, yte),
                      "train_accuracy": pcn.score(Xtr, ytr),
                      "wall_time_s": time.perf_counter() - t0, "history": pcn.history_}
    models["pcn"] = pcn
    if baseline:
        t0 = time.perf_counter()
        mlp = MLP(lr=mlp_lr, **common).fit(Xtr, ytr, validation_data=(Xte, yte))
        metrics["mlp"] = {"test_accuracy": mlp.score(Xte, yte),
                          "train_accuracy": mlp.score(Xtr, ytr),
                          "wall_time_s": time.perf_counter() - t0, "history": mlp.history_}
        metrics["accuracy_gap_points"] = 100 * (
            metrics["mlp"]["test_accuracy"] - metrics["pcn"]["test_accuracy"])
        models["mlp"] = mlp
    return {"metrics": metrics, "models": models}


def plot_learning_curves(results: dict[str, Any], path: Path) -> None:
    """Test accuracy and objective per epoch of each dataset's PCN and MLP (one row each)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import MaxNLocator

    names = list(results)
    fig, axes = plt.subplots(len(names), 2, figsize=(11, 3.8 * len(names)), squeeze=False,
                             layout="constrained")
    for i, name in enumerate(names):
        m = results[name]
        ax = axes[i, 0]
        for key, label, style in (("pcn", "PC (local Hebbian)", "-"), ("mlp", "backprop", "--")):
            if key in m:
                acc = 100 * np.asarray(m[key]["history"]["val_accuracy"])
                final = 100 * m[key]["test_accuracy"]
                ax.plot(np.arange(1, acc.size + 1), acc, style, label=f"{label}: {final:.1f} %")
        ax.set(xlabel="epoch", ylabel="test accuracy (%)", title=f"{name}: test accuracy")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.legend(loc="lower right")
        ax = axes[i, 1]
        pi_L = m["settings"]["output_precision"]
        for key, label, style in (("pcn", rf"PC energy $F$ ($\pi_L$ = {pi_L:g})", "-"),
                                  ("mlp", r"backprop loss $\frac{1}{2}\|t - h_L\|^2$", "--")):
            if key in m:
                e = np.asarray(m[key]["history"]["energy"])
                ax.semilogy(np.arange(1, e.size + 1), e, style, label=label)
        ax.set(xlabel="epoch", ylabel="objective per training sample (log scale)",
               title=f"{name}: training objective")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.legend()
    fig.savefig(path, dpi=120)
    plt.close(fig)
