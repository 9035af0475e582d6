r"""Yardsticks for learned representations: linear probes and effective rank.

* :func:`linear_probe` fits a closed-form ridge regression from embeddings to
  targets on a training split and scores it on a test split: accuracy (one-hot
  regression, argmax) for labels, :math:`R^2` for continuous targets.
* :func:`effective_rank` (Roy & Vetterli 2007; used by RankMe, Garrido et al.
  2023, to detect collapse) is :math:`\exp H(p)` with
  :math:`p_i = \sigma_i / \sum_j \sigma_j` the normalised singular values of the
  centred embeddings: 1 for fully collapsed (rank-1) embeddings, ``D`` for
  isotropic ones.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..backend import to_numpy
from ..exceptions import ValidationError
from ..validation import check_array, check_param

__all__ = ["effective_rank", "ridge_fit", "linear_probe"]


def effective_rank(Z: Any, eps: float = 1e-12) -> float:
    r"""Effective rank :math:`\exp(-\sum_i p_i \log p_i)` of the centred embeddings ``Z`` (N, D)."""
    Z = check_array(to_numpy(Z).reshape(len(Z), -1), "Z", "effective_rank")
    s = np.linalg.svd(Z - Z.mean(axis=0), compute_uv=False)
    if s.sum() <= eps:
        return 1.0
    p = s / s.sum()
    p = p[p > eps]
    return float(np.exp(-(p * np.log(p)).sum()))


def ridge_fit(X: np.ndarray, Y: np.ndarray, alpha: float = 1e-2) -> tuple[np.ndarray, np.ndarray]:
    r"""Closed-form ridge regression :math:`W = (X_c^\top X_c + \alpha N I)^{-1} X_c^\top Y_c`.

    Features are centred (the intercept is not penalised); ``alpha`` is per sample.
    Returns ``(W, b)`` with predictions ``X @ W + b``.
    """
    mx, my = X.mean(axis=0), Y.mean(axis=0)
    Xc, Yc = X - mx, Y - my
    N, D = X.shape
    if D <= N:
        W = np.linalg.solve(Xc.T @ Xc + alpha * N * np.eye(D), Xc.T @ Yc)
    else:  # dual form, cheaper when features outnumber samples
        W = Xc.T @ np.linalg.solve(Xc @ Xc.T + alpha * N * np.eye(N), Yc)
    return W, my - mx @ W


def linear_probe(Z_train: Any, y_train: Any, Z_test: Any, y_test: Any, *,
                 task: str = "classification", alpha: float = 1e-2) -> float:
    """Score a ridge linear probe: test accuracy (``"classification"``) or :math:`R^2`.

    Features are standardised by training statistics first.
    """
    check_param(alpha, "alpha", "linear_probe", low=0.0, low_inclusive=True)
    Ztr = check_array(to_numpy(Z_train).reshape(len(Z_train), -1), "Z_train", "linear_probe")
    Zte = check_array(to_numpy(Z_test).reshape(len(Z_test), -1), "Z_test", "linear_probe",
                      shape=(None, Ztr.shape[1]))
    mu, sd = Ztr.mean(axis=0), Ztr.std(axis=0) + 1e-8
    Ztr, Zte = (Ztr - mu) / sd, (Zte - mu) / sd
    ytr, yte = np.asarray(to_numpy(y_train)), np.asarray(to_numpy(y_test))
    if len(ytr) != len(Ztr) or len(yte) != len(Zte):
        raise ValidationError("linear_probe: targets and embeddings must have the same length.")
    if task == "classification":
        classes = np.unique(ytr)
        Y = (ytr[:, None] == classes[None, :]).astype(float)
        W, b = ridge_fit(Ztr, Y, alpha)
        return float(np.mean(classes[np.argmax(Zte @ W + b, axis=1)] == yte))
    if task == "regression":
        Y = ytr.reshape(len(ytr), -1).astype(float)
        W, b = ridge_fit(Ztr, Y, alpha)
        P = Zte @ W + b
        Yt = yte.reshape(len(yte), -1)
        ss_res = ((Yt - P) ** 2).sum(axis=0)
        ss_tot = ((Yt - Yt.mean(axis=0)) ** 2).sum(axis=0)
        return float(np.mean(1.0 - ss_res / np.maximum(ss_tot, 1e-12)))
    raise ValidationError(f"linear_probe.task: unknown option {task!r}; choose 'classification' "
                          "or 'regression'.")
