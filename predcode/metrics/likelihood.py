r"""Likelihoods, KL divergences and free energies of sigmoid belief networks, in bits.

The functions take the networks' *parameters*, not a model object, so this
layer does not depend on :mod:`predcode.models`. A layered sigmoid belief
network with binary layers :math:`s_0 = x, s_1, \dots, s_L` is given by

* ``generative`` — a mapping with ``"G"``: ``[None, G_1, ..., G_L]``, ``G_l`` of
  shape ``(n_{l-1}, n_l)``, and ``"c"``: ``[c_0, ..., c_L]``, the biases of every
  layer (``c_L`` the top layer's prior logits), so
  :math:`P(s_L{=}1) = \sigma(c_L)` and
  :math:`P(s_{l-1}{=}1 \mid s_l) = \sigma(G_l s_l + c_{l-1})`;
* ``recognition`` — a mapping with ``"R"``: ``[None, R_1, ..., R_L]``, ``R_l`` of
  shape ``(n_l, n_{l-1})``, and ``"r"``: ``[r_0, ..., r_L]`` (``r_0`` unused), so
  :math:`Q(s_l{=}1 \mid s_{l-1}) = \sigma(R_l s_{l-1} + r_l)`.

:meth:`HelmholtzMachine.generative_params
<predcode.models.helmholtz.HelmholtzMachine.generative_params>` and
``recognition_params`` return exactly these mappings.

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

All computations are in float64, where the arrays live: numpy arrays on the
host, CuPy arrays on their device (parameters and data must be on the same
one). Per-image results are arrays of that namespace; the Monte-Carlo paths
draw their uniform numbers from a seeded numpy Generator and send them to the
device explicitly.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np

from ..backend import array_namespace, to_numpy
from ..exceptions import ValidationError
from ..validation import check_array, check_binary, check_int, check_random_state

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


def binary_configurations(n: int, xp: Any = np) -> Any:
    """All ``2**n`` binary vectors of length ``n`` as rows (float64), in counting order.

    ``xp`` is the array namespace to build them in (numpy or cupy).
    """
    n = check_int(n, "n", "binary_configurations", low=0)
    if n > MAX_ENUMERATE + 2:
        raise ValidationError(
            f"binary_configurations.n: enumerating 2**{n} configurations is too large "
            f"(at most {MAX_ENUMERATE + 2} units)."
        )
    idx = xp.arange(2**n)[:, None]
    return ((idx >> xp.arange(n - 1, -1, -1)) & 1).astype(xp.float64)


def _log_bern(t: Any, a: Any, xp: Any) -> Any:
    """Sum over the last axis of log P(t | logits a), nats, broadcasting t and a."""
    return (t * a - (xp.maximum(a, 0) + xp.log1p(xp.exp(-xp.abs(a))))).sum(axis=-1)


def _logsumexp(a: Any, axis: int, xp: Any) -> Any:
    m = xp.max(a, axis=axis, keepdims=True)
    m = xp.where(xp.isfinite(m), m, 0.0)
    return xp.squeeze(m, axis=axis) + xp.log(xp.exp(a - m).sum(axis=axis))


def _layers(params: Any, weights: str, biases: str, name: str, owner: str) -> tuple[list, list]:
    if not isinstance(params, Mapping) or weights not in params or biases not in params:
        raise ValidationError(
            f"{owner}.{name}: expected a mapping with {weights!r} (weights, index 0 None) and "
            f"{biases!r} (biases per layer), e.g. HelmholtzMachine.{name}_params(); got "
            f"{type(params).__name__}."
        )
    W, b = list(params[weights]), list(params[biases])
    if len(W) != len(b) or len(b) < 2:
        raise ValidationError(
            f"{owner}.{name}: {weights!r} and {biases!r} must both have one entry per layer "
            f"(at least 2), got {len(W)} and {len(b)}."
        )
    return W, b


def _parameters(generative: Any, recognition: Any, owner: str) -> tuple:
    """Validated float64 parameters, their namespace and the layer sizes."""
    G, c = _layers(generative, "G", "c", "generative", owner)
    sizes = tuple(int(v.shape[0]) for v in c)
    arrays = [*G[1:], *c]
    R = r = None
    if recognition is not None:
        R, r = _layers(recognition, "R", "r", "recognition", owner)
        arrays += [*R[1:], *r[1:]]
    xp = array_namespace(*arrays)
    L = len(sizes) - 1
    for l in range(1, L + 1):
        want = (sizes[l - 1], sizes[l])
        if tuple(G[l].shape) != want:
            raise ValidationError(
                f"{owner}.generative: G[{l}] has shape {tuple(G[l].shape)}, expected {want} "
                f"for layer sizes {sizes}."
            )
        if R is not None and tuple(R[l].shape) != want[::-1]:
            raise ValidationError(
                f"{owner}.recognition: R[{l}] has shape {tuple(R[l].shape)}, expected "
                f"{want[::-1]} for layer sizes {sizes}."
            )
    f64 = xp.float64
    gen = {"G": [None] + [xp.asarray(w, dtype=f64) for w in G[1:]],
           "c": [xp.asarray(v, dtype=f64) for v in c]}
    rec = None
    if R is not None:
        rec = {"R": [None] + [xp.asarray(w, dtype=f64) for w in R[1:]],
               "r": [xp.asarray(v, dtype=f64) for v in r]}
    return gen, rec, sizes, xp


def _check_data(X: Any, width: int, owner: str, xp: Any) -> Any:
    X = check_array(X, "X", owner, shape=(None, width), dtype=np.float64, xp=xp)
    check_binary(X, "X", owner)
    return X


def _log_prior_first_hidden(gen: dict, sizes: tuple[int, ...], xp: Any) -> tuple[Any, Any]:
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
    H = binary_configurations(sizes[L], xp)
    logp = _log_bern(H, xp.broadcast_to(gen["c"][L], H.shape), xp)
    for l in range(L, 1, -1):
        below = binary_configurations(sizes[l - 1], xp)
        a = H @ gen["G"][l].T + gen["c"][l - 1]  # (2^n_l, n_{l-1})
        cond = _log_bern(below[None, :, :], a[:, None, :], xp)  # (2^n_l, 2^n_{l-1})
        logp = _logsumexp(logp[:, None] + cond, 0, xp)
        H = below
    return H, logp


def log_likelihood_bits(generative: Mapping, X: Any) -> Any:
    r"""Exact :math:`\log_2 P(x)` of each row of ``X`` under the generative model.

    Parameters
    ----------
    generative : mapping
        ``{"G": [None, G_1, ..., G_L], "c": [c_0, ..., c_L]}`` (see the module
        docstring), e.g. ``HelmholtzMachine.generative_params()``; adjacent
        layers hold at most 22 units together (and at most 20 in the first
        hidden layer).
    X : array of shape (n, n_0)
        Binary images, in the parameters' namespace.

    Returns
    -------
    array of shape (n,)
        float64, in the namespace of ``X``.
    """
    gen, _, sizes, xp = _parameters(generative, None, "log_likelihood_bits")
    X = _check_data(X, sizes[0], "log_likelihood_bits", xp)
    H1, logp1 = _log_prior_first_hidden(gen, sizes, xp)
    A = H1 @ gen["G"][1].T + gen["c"][0]  # (2^n_1, n_0)
    out = xp.empty(X.shape[0])
    chunk = max(1, 2**22 // max(1, H1.shape[0] * sizes[0]))
    for s in range(0, X.shape[0], chunk):
        Xc = X[s:s + chunk]
        cond = _log_bern(Xc[:, None, :], A[None, :, :], xp)  # (n, 2^n_1)
        out[s:s + chunk] = _logsumexp(cond + logp1[None, :], 1, xp)
    return out / _LN2


def kl_divergence_bits(p: Any, log2_q: Any) -> float:
    r""":math:`\sum_k p_k (\log_2 p_k - \log_2 q_k)` for a data distribution ``p``.

    Parameters
    ----------
    p : array of shape (K,)
        Probabilities of the data's distinct images (summing to 1).
    log2_q : array of shape (K,)
        The model's :math:`\log_2` probabilities of the same images (host or
        device; the K numbers are brought to the host for the sum).
    """
    p = np.asarray(to_numpy(p), dtype=float)
    lq = np.asarray(to_numpy(log2_q), dtype=float)
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


def kl_bits(generative: Mapping, images: Any, probs: Any) -> float:
    r""":math:`\mathrm{KL}(p_\text{data} \,\|\, P_\text{model})` in bits, exactly.

    ``generative`` as for :func:`log_likelihood_bits`; ``images`` and ``probs``
    enumerate the data distribution (e.g. from
    :func:`predcode.datasets.bars.bars_distribution`).
    """
    return kl_divergence_bits(probs, log_likelihood_bits(generative, images))


def _log_joint_and_q(gen: dict, rec: dict, X: Any, hs: list, xp: Any) -> tuple:
    """log P(x, h) and log Q(h | x) (nats) for hidden samples ``hs = [h_1 .. h_L]``.

    Each ``h_l`` has shape (..., n_l) broadcastable against X's leading axis.
    """
    L = len(hs)
    states = [X] + hs
    logq = 0.0
    logp = _log_bern(hs[-1], xp.broadcast_to(gen["c"][L], hs[-1].shape), xp)
    for l in range(1, L + 1):
        logq = logq + _log_bern(states[l], states[l - 1] @ rec["R"][l].T + rec["r"][l], xp)
        logp = logp + _log_bern(states[l - 1], states[l] @ gen["G"][l].T + gen["c"][l - 1], xp)
    return logp, logq


def free_energy_bits(
    generative: Mapping, recognition: Mapping, X: Any, *, exact: bool | None = None,
    n_samples: int = 1000, random_state: Any = None,
) -> Any:
    r"""Description length :math:`F(x)` of the recognition model, bits per image.

    Parameters
    ----------
    generative, recognition : mapping
        ``{"G": ..., "c": ...}`` and ``{"R": ..., "r": ...}`` (see the module
        docstring), e.g. ``HelmholtzMachine.generative_params()`` and
        ``recognition_params()``.
    X : array of shape (n, n_0)
        Binary images, in the parameters' namespace.
    exact : bool, optional
        Enumerate all hidden configurations (default when the hidden layers
        hold at most 20 units) or estimate from ``n_samples`` samples of Q.
    n_samples : int
        Monte-Carlo samples per image when not exact.
    random_state : int, Generator or None
        Seed of the Monte-Carlo samples.

    Returns
    -------
    array of shape (n,)
        :math:`F(x) \ge -\log_2 P(x)`, with equality iff Q equals the posterior;
        float64, in the namespace of ``X``.
    """
    gen, rec, sizes, xp = _parameters(generative, recognition, "free_energy_bits")
    X = _check_data(X, sizes[0], "free_energy_bits", xp)
    n_hidden = sum(sizes[1:])
    if exact is None:
        exact = n_hidden <= MAX_ENUMERATE
    if exact:
        if n_hidden > MAX_ENUMERATE:
            raise ValidationError(
                f"free_energy_bits: {n_hidden} hidden units are too many to enumerate "
                f"(at most {MAX_ENUMERATE}); use exact=False."
            )
        H = binary_configurations(n_hidden, xp)
        cuts = np.cumsum((0,) + sizes[1:])
        hs_all = [H[:, cuts[i]:cuts[i + 1]] for i in range(len(sizes) - 1)]
        out = xp.empty(X.shape[0])
        chunk = max(1, 2**21 // (H.shape[0] * max(sizes)))
        for s in range(0, X.shape[0], chunk):
            Xc = X[s:s + chunk][:, None, :]
            hs = [xp.broadcast_to(h[None], (Xc.shape[0],) + h.shape) for h in hs_all]
            logp, logq = _log_joint_and_q(gen, rec, Xc, hs, xp)
            q = xp.exp(logq)
            out[s:s + chunk] = (q * (logq - logp)).sum(axis=1)
        return out / _LN2
    n_samples = check_int(n_samples, "n_samples", "free_energy_bits")
    logp, logq = _sample_q(gen, rec, sizes, X, n_samples, check_random_state(random_state), xp)
    return (logq - logp).mean(axis=1) / _LN2


def _sample_q(gen: dict, rec: dict, sizes: tuple, X: Any, S: int, rng: Any, xp: Any):
    """``S`` samples of Q(h | x) per image: log P(x, h), log Q(h | x) of shape (n, S)."""
    Xs = xp.broadcast_to(X[:, None, :], (X.shape[0], S, X.shape[1]))
    hs, below = [], Xs
    for l in range(1, len(sizes)):
        p = 1.0 / (1.0 + xp.exp(-(below @ rec["R"][l].T + rec["r"][l])))
        u = rng.random(p.shape)
        if xp is not np:  # seeded host numbers, sent to the device explicitly
            u = xp.asarray(u)
        h = (u < p).astype(xp.float64)
        hs.append(h)
        below = h
    return _log_joint_and_q(gen, rec, Xs, hs, xp)


def importance_log_likelihood_bits(
    generative: Mapping, recognition: Mapping, X: Any, *, n_samples: int = 1000,
    random_state: Any = None,
) -> tuple[Any, Any]:
    r"""Importance-sampled :math:`\log_2 P(x)` with the recognition model as proposal.

    ``generative``, ``recognition`` and ``X`` as for :func:`free_energy_bits`.

    Returns
    -------
    estimate : array of shape (n,)
        :math:`\log_2 \frac1S \sum_s w_s`, :math:`w_s = P(x, h_s) / Q(h_s \mid x)`
        (biased low by Jensen's inequality, consistent as S grows).
    stderr : array of shape (n,)
        Delta-method standard error :math:`\mathrm{sd}(w)/(\sqrt S\, \bar w \ln 2)`.
    """
    gen, rec, sizes, xp = _parameters(generative, recognition, "importance_log_likelihood_bits")
    X = _check_data(X, sizes[0], "importance_log_likelihood_bits", xp)
    S = check_int(n_samples, "n_samples", "importance_log_likelihood_bits", low=2)
    logp, logq = _sample_q(gen, rec, sizes, X, S, check_random_state(random_state), xp)
    lw = logp - logq
    m = lw.max(axis=1, keepdims=True)
    w = xp.exp(lw - m)
    mean = w.mean(axis=1)
    est = (m[:, 0] + xp.log(mean)) / _LN2
    se = w.std(axis=1, ddof=1) / (math.sqrt(S) * mean * _LN2)
    return est, se
