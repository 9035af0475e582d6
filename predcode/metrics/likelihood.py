r"""Likelihoods, KL divergences and free energies of sigmoid belief networks, in bits.

For a layered sigmoid belief network (:class:`~predcode.models.helmholtz.HelmholtzMachine`)
with binary layers :math:`s_0 = x, s_1, \dots, s_L`:

* :func:`log_likelihood_bits` — exact :math:`\log_2 P(x)`, marginalising the
  hidden layers one at a time from the top,
  :math:`P(s_{l-1}) = \sum_{s_l} P(s_l) P(s_{l-1} \mid s_l)`, so the cost is
  :math:`\sum_l 2^{n_l + n_{l-1}}` rather than :math:`2^{\sum_l n_l}`;
* :func:`kl_bits` — :math:`\mathrm{KL}(p_\text{data} \,\|\, P) = \sum_x p(x)
  \log_2 \frac{p(x)}{P(x)}` for an enumerated data distribution;
* :func:`free_energy_bits` — the description length of the recognition model,
  :math:`F(x) = \mathbb E_{Q(h \mid x)}[\log_2 Q(h \mid x) - \log_2 P(x, h)]`,
  exactly by enumerating all hidden configurations (at most 20 hidden units)
  or by Monte Carlo;
* :func:`importance_log_likelihood_bits` — for larger networks,
  :math:`\hat P(x) = \frac1S \sum_s P(x, h_s) / Q(h_s \mid x)` with
  :math:`h_s \sim Q(\cdot \mid x)`, and the standard error of
  :math:`\log_2 \hat P(x)` by the delta method,
  :math:`\mathrm{sd}(w) / (\sqrt S\, \bar w \ln 2)`.

All computations are on the host in float64.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from ..exceptions import ValidationError
from ..validation import check_int, check_random_state

__all__ = [
    "MAX_ENUMERATE",
    "binary_configurations",
    "log_likelihood_bits",
    "kl_bits",
    "kl_divergence_bits",
    "free_energy_bits",
    "importance_log_likelihood_bits",
]

_LN2 = math.log(2.0)
#: Largest number of binary units enumerated jointly (2**20 configurations).
MAX_ENUMERATE = 20


def binary_configurations(n: int) -> np.ndarray:
    """All ``2**n`` binary vectors of length ``n`` as rows (float64), in counting order."""
    n = check_int(n, "n", "binary_configurations", low=0)
    if n > MAX_ENUMERATE + 2:
        raise ValidationError(
            f"binary_configurations.n: enumerating 2**{n} configurations is too large "
            f"(at most {MAX_ENUMERATE + 2} units)."
        )
    idx = np.arange(2**n)[:, None]
    return ((idx >> np.arange(n - 1, -1, -1)) & 1).astype(float)


def _log_bern(t: np.ndarray, a: np.ndarray) -> np.ndarray:
    """Sum over the last axis of log P(t | logits a), nats, broadcasting t and a."""
    return (t * a - (np.maximum(a, 0) + np.log1p(np.exp(-np.abs(a))))).sum(axis=-1)


def _logsumexp(a: np.ndarray, axis: int) -> np.ndarray:
    m = np.max(a, axis=axis, keepdims=True)
    m = np.where(np.isfinite(m), m, 0.0)
    return np.squeeze(m, axis=axis) + np.log(np.exp(a - m).sum(axis=axis))


def _params(model: Any) -> tuple[dict, dict, tuple[int, ...]]:
    from ..models.helmholtz import HelmholtzMachine

    if not isinstance(model, HelmholtzMachine):
        raise ValidationError(
            f"model: expected a fitted HelmholtzMachine, got {type(model).__name__}."
        )
    gen, rec = model.generative_params(), model.recognition_params()
    return gen, rec, model.sizes_


def _check_data(X: Any, width: int, owner: str) -> np.ndarray:
    from ..models.helmholtz import check_binary
    from ..validation import check_array

    X = check_array(X, "X", owner, shape=(None, width), dtype=np.float64)
    check_binary(X, "X", owner)
    return X


def _log_prior_first_hidden(gen: dict, sizes: tuple[int, ...]) -> tuple[np.ndarray, np.ndarray]:
    """Configurations of layer 1 and their log prior (nats), marginalising layers 2..L."""
    L = len(sizes) - 1
    for l in range(1, L):
        if sizes[l] + sizes[l + 1] > MAX_ENUMERATE + 2:
            raise ValidationError(
                f"log_likelihood_bits: layers {l} and {l + 1} hold {sizes[l]} + {sizes[l + 1]} "
                f"units, too many to enumerate (at most {MAX_ENUMERATE + 2}); use "
                "importance_log_likelihood_bits for an estimate with a standard error."
            )
    if sizes[1] > MAX_ENUMERATE:
        raise ValidationError(
            f"log_likelihood_bits: the first hidden layer has {sizes[1]} units, too many to "
            f"enumerate (at most {MAX_ENUMERATE}); use importance_log_likelihood_bits."
        )
    H = binary_configurations(sizes[L])
    logp = _log_bern(H, np.broadcast_to(gen["c"][L], H.shape))
    for l in range(L, 1, -1):
        below = binary_configurations(sizes[l - 1])
        a = H @ gen["G"][l].T + gen["c"][l - 1]  # (2^n_l, n_{l-1})
        cond = _log_bern(below[None, :, :], a[:, None, :])  # (2^n_l, 2^n_{l-1})
        logp = _logsumexp(logp[:, None] + cond, axis=0)
        H = below
    return H, logp


def log_likelihood_bits(model: Any, X: Any) -> np.ndarray:
    r"""Exact :math:`\log_2 P(x)` of each row of ``X`` under the generative model.

    Parameters
    ----------
    model : HelmholtzMachine
        A fitted machine whose adjacent layers hold at most 22 units together
        (and at most 20 in the first hidden layer).
    X : array of shape (n, sizes[0])
        Binary images.

    Returns
    -------
    ndarray of shape (n,)
    """
    gen, _, sizes = _params(model)
    X = _check_data(X, sizes[0], "log_likelihood_bits")
    H1, logp1 = _log_prior_first_hidden(gen, sizes)
    A = H1 @ gen["G"][1].T + gen["c"][0]  # (2^n_1, n_0)
    out = np.empty(X.shape[0])
    chunk = max(1, 2**22 // max(1, H1.shape[0] * sizes[0]))
    for s in range(0, X.shape[0], chunk):
        Xc = X[s:s + chunk]
        cond = _log_bern(Xc[:, None, :], A[None, :, :])  # (n, 2^n_1)
        out[s:s + chunk] = _logsumexp(cond + logp1[None, :], axis=1)
    return out / _LN2


def kl_divergence_bits(p: Any, log2_q: Any) -> float:
    r""":math:`\sum_k p_k (\log_2 p_k - \log_2 q_k)` for a data distribution ``p``.

    Parameters
    ----------
    p : array of shape (K,)
        Probabilities of the data's distinct images (summing to 1).
    log2_q : array of shape (K,)
        The model's :math:`\log_2` probabilities of the same images.
    """
    p = np.asarray(p, dtype=float)
    lq = np.asarray(log2_q, dtype=float)
    if p.ndim != 1 or p.shape != lq.shape:
        raise ValidationError(
            f"kl_divergence_bits: p and log2_q must be 1-D of one length, got {p.shape} "
            f"and {lq.shape}."
        )
    if np.any(p < 0) or not np.isclose(p.sum(), 1.0, atol=1e-9):
        raise ValidationError(
            f"kl_divergence_bits.p: expected probabilities summing to 1, got sum {p.sum():g}."
        )
    nz = p > 0
    return float((p[nz] * (np.log2(p[nz]) - lq[nz])).sum())


def kl_bits(model: Any, images: Any, probs: Any) -> float:
    r""":math:`\mathrm{KL}(p_\text{data} \,\|\, P_\text{model})` in bits, exactly.

    ``images`` and ``probs`` enumerate the data distribution (e.g. from
    :func:`predcode.datasets.bars.bars_distribution`).
    """
    return kl_divergence_bits(probs, log_likelihood_bits(model, images))


def _log_joint_and_q(gen: dict, rec: dict, X: np.ndarray, hs: list) -> tuple:
    """log P(x, h) and log Q(h | x) (nats) for hidden samples ``hs = [h_1 .. h_L]``.

    Each ``h_l`` has shape (..., n_l) broadcastable against X's leading axis.
    """
    L = len(hs)
    states = [X] + hs
    logq = 0.0
    logp = _log_bern(hs[-1], np.broadcast_to(gen["c"][L], hs[-1].shape))
    for l in range(1, L + 1):
        logq = logq + _log_bern(states[l], states[l - 1] @ rec["R"][l].T + rec["r"][l])
        logp = logp + _log_bern(states[l - 1], states[l] @ gen["G"][l].T + gen["c"][l - 1])
    return logp, logq


def free_energy_bits(
    model: Any, X: Any, *, exact: bool | None = None, n_samples: int = 1000,
    random_state: Any = None,
) -> np.ndarray:
    r"""Description length :math:`F(x)` of the recognition model, bits per image.

    Parameters
    ----------
    model : HelmholtzMachine
    X : array of shape (n, sizes[0])
        Binary images.
    exact : bool, optional
        Enumerate all hidden configurations (default when the hidden layers
        hold at most 20 units) or estimate from ``n_samples`` samples of Q.
    n_samples : int
        Monte-Carlo samples per image when not exact.
    random_state : int, Generator or None
        Seed of the Monte-Carlo samples.

    Returns
    -------
    ndarray of shape (n,)
        :math:`F(x) \ge -\log_2 P(x)`, with equality iff Q equals the posterior.
    """
    gen, rec, sizes = _params(model)
    X = _check_data(X, sizes[0], "free_energy_bits")
    n_hidden = sum(sizes[1:])
    if exact is None:
        exact = n_hidden <= MAX_ENUMERATE
    if exact:
        if n_hidden > MAX_ENUMERATE:
            raise ValidationError(
                f"free_energy_bits: {n_hidden} hidden units are too many to enumerate "
                f"(at most {MAX_ENUMERATE}); use exact=False."
            )
        H = binary_configurations(n_hidden)
        cuts = np.cumsum((0,) + sizes[1:])
        hs_all = [H[:, cuts[i]:cuts[i + 1]] for i in range(len(sizes) - 1)]
        out = np.empty(X.shape[0])
        chunk = max(1, 2**21 // (H.shape[0] * max(sizes)))
        for s in range(0, X.shape[0], chunk):
            Xc = X[s:s + chunk][:, None, :]
            hs = [np.broadcast_to(h[None], (Xc.shape[0],) + h.shape) for h in hs_all]
            logp, logq = _log_joint_and_q(gen, rec, Xc, hs)
            q = np.exp(logq)
            out[s:s + chunk] = (q * (logq - logp)).sum(axis=1)
        return out / _LN2
    n_samples = check_int(n_samples, "n_samples", "free_energy_bits")
    logp, logq = _sample_q(gen, rec, sizes, X, n_samples, check_random_state(random_state))
    return (logq - logp).mean(axis=1) / _LN2


def _sample_q(gen: dict, rec: dict, sizes: tuple, X: np.ndarray, S: int, rng: Any):
    """``S`` samples of Q(h | x) per image: log P(x, h), log Q(h | x) of shape (n, S)."""
    Xs = np.broadcast_to(X[:, None, :], (X.shape[0], S, X.shape[1]))
    hs, below = [], Xs
    for l in range(1, len(sizes)):
        p = 1.0 / (1.0 + np.exp(-(below @ rec["R"][l].T + rec["r"][l])))
        h = (rng.random(p.shape) < p).astype(float)
        hs.append(h)
        below = h
    return _log_joint_and_q(gen, rec, Xs, hs)


def importance_log_likelihood_bits(
    model: Any, X: Any, *, n_samples: int = 1000, random_state: Any = None
) -> tuple[np.ndarray, np.ndarray]:
    r"""Importance-sampled :math:`\log_2 P(x)` with the recognition model as proposal.

    Returns
    -------
    estimate : ndarray of shape (n,)
        :math:`\log_2 \frac1S \sum_s w_s`, :math:`w_s = P(x, h_s) / Q(h_s \mid x)`
        (biased low by Jensen's inequality, consistent as S grows).
    stderr : ndarray of shape (n,)
        Delta-method standard error :math:`\mathrm{sd}(w)/(\sqrt S\, \bar w \ln 2)`.
    """
    gen, rec, sizes = _params(model)
    X = _check_data(X, sizes[0], "importance_log_likelihood_bits")
    S = check_int(n_samples, "n_samples", "importance_log_likelihood_bits", low=2)
    logp, logq = _sample_q(gen, rec, sizes, X, S, check_random_state(random_state))
    lw = logp - logq
    m = lw.max(axis=1, keepdims=True)
    w = np.exp(lw - m)
    mean = w.mean(axis=1)
    est = (m[:, 0] + np.log(mean)) / _LN2
    se = w.std(axis=1, ddof=1) / (math.sqrt(S) * mean * _LN2)
    return est, se
