r"""pymdp 1.0's discrete active-inference scheme replayed on given trials.

:func:`pymdp_replay_trials` runs, on clamped outcomes and actions, what pymdp 1.0's JAX
``Agent`` computes with ``inference_algo="mmp"``: ``infer_states`` (marginal message
passing over the past window, conditioned on the actions taken) and ``infer_policies``
(q(π) from a roll-out of each policy's remaining actions). It is written from pymdp
1.0.4's definitions (``pymdp/algos.py``: ``update_marginals``, ``get_mmp_messages``;
``pymdp/control.py``: ``compute_neg_efe_policy_inductive``,
``update_posterior_policies_inductive``) and checked against pymdp run in float64
(``tests/test_pymdp_parity.py``). It is *not* SPM's scheme: see
:func:`predcode.models.spm_mdp.replay_trials` for ``spm_MDP_VB_X``.

State inference at step :math:`t` (window :math:`j = 0..t`, :math:`n = t + 1`), per
factor :math:`f`, from uniform beliefs, ``num_iter`` synchronous (Jacobi) sweeps of

.. math::

   \ln q_j \leftarrow \sum_m \mathbb{E}_{q^{\setminus f}_j}[\ln A^m_{o_j}]
   + w_j \ln(B_{u_{j-1}} q_{j-1}) + \tfrac12 [j < n-1] \ln(\tilde B_{u_j}^\top q_{j+1}),

with :math:`B_{u_{-1}} q_{-1} := D`, :math:`w_j = \tfrac12` for :math:`j < n - 1` and 1 at
the window's end, :math:`\tilde B` the transition normalised over the *from* state, and
every log :math:`\ln\max(x, \epsilon)` with :math:`\epsilon` the float64 machine epsilon
(pymdp's mirror-descent step with ``tau = 1``: the old :math:`\ln q` cancels).

Policies from the current belief :math:`q_t`: :math:`s_{\tau+1} = B_{\pi_\tau} s_\tau`,
:math:`o^m = A^m s`, :math:`-G(\pi) = \sum_\tau \sum_m (H[o^m] - \mathbb{E}_s
H[A^m_{\cdot s}] + o^m \cdot C^m)` and :math:`q(\pi) = \sigma(\gamma (-G) + \ln E)` with
a fixed :math:`\gamma`.

References
----------
Heins, Millidge, Demekas, Klein, Friston, Couzin & Tschantz (2022). pymdp: a Python library
for active inference in discrete state spaces. *JOSS* 7(73), 4098.
Parr, Markovic, Kiebel & Friston (2019). Neuronal message passing using mean-field,
Bethe, and marginal approximations. *Scientific Reports* 9, 1889.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..exceptions import ValidationError
from ..kernels.common import PYMDP_EPS
from ..pomdp import GenerativeModel

__all__ = ["PYMDP_EPS", "pymdp_preferences", "pymdp_replay_trials"]


def _lg(x: np.ndarray) -> np.ndarray:
    return np.log(np.maximum(x, PYMDP_EPS))


def _softmax(x: np.ndarray) -> np.ndarray:
    e = np.exp(x - x.max())
    return e / e.sum()


def _xlogx(x: np.ndarray) -> np.ndarray:
    return np.where(x > 0, x * _lg(x), 0.0)


def pymdp_preferences(model: GenerativeModel) -> list[np.ndarray]:
    r"""SPM's meaning of ``model.C`` as pymdp adds it to -G, per modality:
    :math:`\ln(\sigma(C_{\cdot,0}) + 10^{-16})` (the first time step's column; pymdp's agent
    has one C per modality). The default ``C`` of :func:`pymdp_replay_trials` and of
    ``run_trials(scheme="pymdp")``."""
    out = []
    for c in model.C:
        c0 = np.asarray(c, float)
        c0 = c0[:, 0] if c0.ndim == 2 else c0
        out.append(np.log(_softmax(c0) + 1e-16))
    return out


def _expect_except(L: np.ndarray, qs: list[np.ndarray], f: int) -> np.ndarray:
    out = L
    for g in range(len(qs) - 1, -1, -1):
        if g != f:
            out = np.tensordot(out, qs[g], axes=([g], [0]))
    return out


def _expect_all(L: np.ndarray, qs: list[np.ndarray]) -> np.ndarray:
    """Contract the leading state axes 1.. of ``L`` (o, S_1, ..., S_F) with ``qs``."""
    out = L
    for g in range(len(qs) - 1, -1, -1):
        out = np.tensordot(out, qs[g], axes=([g + 1], [0]))
    return out


def _mmp(lnA: list[np.ndarray], B: list[np.ndarray], u: np.ndarray, D: list[np.ndarray],
         num_iter: int) -> list[np.ndarray]:
    """pymdp's ``run_mmp`` over one window; ``lnA[j]`` is the summed per-modality log
    likelihood (S_1, ..., S_F) of the outcomes at ``j``; returns (n, S_f) per factor."""
    n, Nf = len(lnA), len(D)
    qs = [np.full((n, d.size), 1.0 / d.size) for d in D]
    lnD = [_lg(d) for d in D]
    Bu = [[B[f][:, :, u[j, f]] for j in range(n - 1)] for f in range(Nf)]
    Bt = [[b / np.maximum(b.sum(axis=1, keepdims=True), PYMDP_EPS) for b in Bu[f]]
          for f in range(Nf)]
    for _ in range(num_iter):
        new = []
        for f in range(Nf):
            q = np.empty_like(qs[f])
            for j in range(n):
                fwd = lnD[f] if j == 0 else _lg(Bu[f][j - 1] @ qs[f][j - 1])
                msg = (0.5 if j < n - 1 else 1.0) * fwd
                if j < n - 1:
                    msg = msg + 0.5 * _lg(qs[f][j + 1] @ Bt[f][j])
                ll = _expect_except(lnA[j], [qs[g][j] for g in range(Nf)], f)
                lq = _lg(qs[f][j])
                z = lq + (ll - lq + msg)
                q[j] = _softmax(z - z.mean())
            new.append(q)
        qs = new
    return qs


def _neg_efe(q0: list[np.ndarray], A: list[np.ndarray], B: list[np.ndarray],
             C: list[np.ndarray], pol: np.ndarray) -> float:
    """pymdp's ``compute_neg_efe_policy_inductive`` (utility + state information gain)."""
    qs = [x.copy() for x in q0]
    HA = [-_xlogx(a).sum(axis=0) for a in A]
    total = 0.0
    for tau in range(pol.shape[0]):
        qs = [B[f][:, :, pol[tau, f]] @ qs[f] for f in range(len(B))]
        for m in range(len(A)):
            qo = _expect_all(A[m], qs)
            total += -_xlogx(qo).sum() - float(_expect_all(HA[m][None], qs)[0])
            total += qo @ C[m]
    return total


def pymdp_replay_trials(
    model: GenerativeModel,
    obs: Any,
    actions: Any,
    *,
    gamma: float = 1.0,
    num_iter: int = 16,
    C: list[np.ndarray] | None = None,
) -> dict[str, Any]:
    r"""Replay clamped trials with pymdp 1.0's ``Agent(inference_algo="mmp")`` scheme.

    At each step ``t`` of a trial: ``infer_states`` on the outcomes ``0..t`` and the actions
    ``0..t-1`` (prior ``D``), then, for ``t < T - 1``, ``infer_policies`` with each
    policy's remaining actions ``policies[:, t:]`` (the horizon SPM uses).

    Parameters
    ----------
    model : GenerativeModel
        From :func:`predcode.pomdp.make_model`; ``A``, ``B``, ``D``, ``E`` and ``policies``
        are used (``D`` fixed: no learning; ``d``, ``a``, ``b`` are ignored).
    obs : array of int
        (K, T, M) outcomes, 0-based.
    actions : array of int
        (K, T - 1, F) actions taken, 0-based.
    gamma : float
        pymdp's fixed policy precision (``Agent(gamma=...)``, default 1.0).
    num_iter : int
        pymdp's ``num_iter`` (16).
    C : list of arrays, optional
        Per-modality log preferences (M_m,) as pymdp adds them to -G. Default: SPM's
        meaning of ``model.C``, :math:`\ln(\sigma(C_{\cdot,0}) + 10^{-16})` (the first
        time step's column; pymdp's agent has one C per modality).

    Returns
    -------
    dict
        ``qs`` dict ``(f, t)`` -> (K, t + 1, S_f) window posteriors at step t (pymdp's
        ``infer_states`` output); ``q_pi`` (K, T - 1, P); ``neg_efe`` (K, T - 1, P)
        (= -EFE, SPM's sign of G); ``action`` (K, T - 1, F), pymdp's deterministic
        ``sample_action`` (the first remaining action of the argmax policy).
    """
    owner = "pymdp_replay_trials"
    if not isinstance(model, GenerativeModel):
        raise ValidationError(f"{owner}.model: expected a GenerativeModel from make_model, got "
                              f"{type(model).__name__}.")
    T, M, Nf = model.T, len(model.A), len(model.B)
    obs = np.asarray(obs)
    actions = np.asarray(actions)
    if obs.ndim != 3 or obs.shape[1:] != (T, M):
        raise ValidationError(f"{owner}.obs: expected ints of shape (K, {T}, {M}), got "
                              f"{obs.shape}.")
    K = obs.shape[0]
    if actions.shape != (K, T - 1, Nf):
        raise ValidationError(f"{owner}.actions: expected ints of shape ({K}, {T - 1}, {Nf}), "
                              f"got {actions.shape}.")
    if not (np.isfinite(gamma) and gamma > 0):
        raise ValidationError(f"{owner}.gamma: expected a positive finite precision, got "
                              f"{gamma!r}.")
    A = [np.asarray(a, float) / np.asarray(a, float).sum(axis=0, keepdims=True)
         for a in model.A]
    B = [np.asarray(b, float) for b in model.B]
    D = [np.asarray(d, float) for d in model.D]
    lnE = _lg(np.asarray(model.E, float))
    if C is None:
        C = pymdp_preferences(model)
    else:
        C = [np.asarray(c, float) for c in C]
        if len(C) != M or any(c.shape != (a.shape[0],) for c, a in zip(C, A, strict=False)):
            raise ValidationError(f"{owner}.C: expected {M} vectors of shapes "
                                  f"{[a.shape[0] for a in A]}, got {[c.shape for c in C]}.")
    V = np.asarray(model.policies)
    Np = V.shape[0]
    lnA_obs = [[sum(_lg(A[m][obs[k, j, m]]) for m in range(M)) for j in range(T)]
               for k in range(K)]
    out: dict[str, Any] = {
        "qs": {(f, t): np.zeros((K, t + 1, D[f].size)) for f in range(Nf) for t in range(T)},
        "q_pi": np.zeros((K, T - 1, Np)), "neg_efe": np.zeros((K, T - 1, Np)),
        "action": np.zeros((K, T - 1, Nf), dtype=int),
    }
    for k in range(K):
        for t in range(T):
            qs = _mmp(lnA_obs[k][: t + 1], B, actions[k, :t], D, num_iter)
            for f in range(Nf):
                out["qs"][f, t][k] = qs[f]
            if t == T - 1:
                continue
            q0 = [qs[f][t] for f in range(Nf)]
            G = np.array([_neg_efe(q0, A, B, C, V[p, t:]) for p in range(Np)])
            qp = _softmax(gamma * G + lnE)
            out["neg_efe"][k, t], out["q_pi"][k, t] = G, qp
            out["action"][k, t] = V[int(np.argmax(qp)), t]
    return out
