r"""SPM's discrete active-inference scheme (``spm_MDP_VB_X``) replayed on given trials.

:func:`replay_trials` runs the agent of SPM12's ``spm_MDP_VB_X`` on trials whose
states, outcomes and actions are clamped (SPM's own, from a fixture, or any
others), and returns what SPM returns per trial: per-policy and
Bayesian-model-average state posteriors, the policy posterior, the precision,
the action probabilities, :math:`F(\pi)`, :math:`G(\pi)` and the Dirichlet counts
``d`` learned over trials. It follows SPM's scheme step by step (checked to
1e-8 against SPM run under Octave, ``tests/test_spm_parity_mdp.py``):

* log floor :math:`\ln(x + 10^{-16})` everywhere except the epistemic term
  (``spm_MDP_G``), which uses :math:`\ln(x + e^{-16})`;
* at the start of each time step every belief is reset,
  :math:`x \leftarrow \sigma(\ln x / \text{erp})` (``erp`` = 4);
* the likelihood message of factor ``f`` is the log of the *expected likelihood*
  :math:`\ln \mathbb{E}_{q(s^{\setminus f})} P(o_\tau | s)`;
* 16 gradient iterations per policy, :math:`s \leftarrow \sigma(\ln s + (v -
  \bar v)/\tau)` with SPM's skip of iterations 3-4 once :math:`F(\pi)` has
  converged (change below :math:`e^{-8}`);
* :math:`-F(\pi) = \sum_\tau \ldots` as accumulated by SPM (with its
  correction :math:`-(N_f - 1) q_L / N_f` on interior time steps);
* policies outside the Occam window (:math:`\ln q(\pi) < \max - \zeta`,
  ``zeta`` = 3) at the previous step are dropped (posterior zero);
* :math:`Q(\pi) = -G(\pi) = \sum_{\tau \ge t} [\text{joint mutual information}
  (\texttt{spm\_MDP\_G}) + \sum_m o^m_\tau \cdot \ln\sigma(C^m_\tau)]
  - w_D \cdot s_{\pi,1}` (current step included; novelty of ``d`` with
  ``spm_wnorm`` :math:`w_D = \tfrac12(1/\sum d - 1/d)`);
* precision :math:`\gamma = 1/\beta_q`, 16 steps
  :math:`\beta_q \leftarrow \beta_q - \tfrac12(\beta_q - \beta + (q - p_0)\cdot Q)`,
  carried over between the time steps of a trial (reset to :math:`\beta` per
  trial); the reported :math:`q(\pi) = \sigma(\ln E + \gamma Q - F)` uses
  the γ before the last step, as SPM does;
* after a trial :math:`d \mathrel{+}= \bar s_1` where :math:`d > 0`.

Options select pymdp 1.0's policy-posterior semantics: ``use_F=False`` drops
the :math:`F(\pi)` term and ``fixed_gamma=True`` keeps :math:`\gamma = 1/\beta`.

References
----------
Friston, FitzGerald, Rigoli, Schwartenbeck & Pezzulo (2017). Active inference:
a process theory. *Neural Computation* 29(1), 1-49.
SPM12 ``toolbox/DEM/spm_MDP_VB_X.m``, ``spm_MDP_G.m``, ``spm_KL_dir.m``.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from scipy.special import gammaln, psi

from ..exceptions import ValidationError
from ..pomdp import GenerativeModel, make_model

__all__ = ["SPM_LOG_EPS", "replay_trials", "dirichlet_kl", "spm_tmaze_model"]

#: ``spm_MDP_VB_X``'s floor inside logarithms: ``log(x + 1e-16)``.
SPM_LOG_EPS = 1e-16
_G_EPS = float(np.exp(-16.0))  # spm_MDP_G's floor (and threshold)


def _log(x: np.ndarray) -> np.ndarray:
    return np.log(x + SPM_LOG_EPS)


def _softmax0(x: np.ndarray) -> np.ndarray:
    """Softmax over axis 0 (SPM's ``spm_softmax``); a single row gives ones."""
    if x.shape[0] < 2:
        return np.ones_like(x)
    e = np.exp(x - x.max(axis=0, keepdims=True))
    return e / e.sum(axis=0, keepdims=True)


def _norm0(x: np.ndarray) -> np.ndarray:
    """``spm_norm``: columns to sum one; empty columns become uniform."""
    tot = x.sum(axis=0, keepdims=True)
    with np.errstate(invalid="ignore", divide="ignore"):
        out = x / tot
    out[np.isnan(out)] = 1.0 / x.shape[0]
    return out


def dirichlet_kl(q: np.ndarray, p: np.ndarray) -> float:
    r"""KL divergence of Dirichlet ``q`` from ``p`` summed over columns (``spm_KL_dir``).

    :math:`\sum \ln B(p) - \ln B(q) + (q - p)\cdot(\psi(q) - \psi(\sum q))`, both
    floored at :math:`e^{-16}`.
    """
    p = np.maximum(np.asarray(p, float), _G_EPS)
    q = np.maximum(np.asarray(q, float), _G_EPS)

    def betaln(a: np.ndarray) -> np.ndarray:
        return gammaln(a).sum(axis=0) - gammaln(a.sum(axis=0))

    dpsi = psi(q) - psi(q.sum(axis=0, keepdims=True))
    return float(np.sum(betaln(p) - betaln(q) + ((q - p) * dpsi).sum(axis=0)))


def _dot_except(L: np.ndarray, xs: list[np.ndarray], f: int) -> np.ndarray:
    """Contract the joint array ``L`` (S_1, ..., S_F) with every ``xs[g]``, g != f."""
    out = L
    for g in range(len(xs) - 1, -1, -1):
        if g != f:
            out = np.tensordot(out, xs[g], axes=([g], [0]))
    return out


def _joint(xs: list[np.ndarray]) -> np.ndarray:
    out = xs[0]
    for x in xs[1:]:
        out = np.multiply.outer(out, x)
    return out


def _epistemic(A: list[np.ndarray], xs: list[np.ndarray]) -> float:
    """``spm_MDP_G``: mutual information of joint outcomes and states under ``xs``."""
    qx = _joint(xs).ravel()
    Af = [a.reshape(a.shape[0], -1) for a in A]
    G = 0.0
    qo = 0.0
    for i in np.flatnonzero(qx > _G_EPS):
        po = Af[0][:, i]
        for a in Af[1:]:
            po = np.multiply.outer(po, a[:, i]).ravel()
        qo = qo + qx[i] * po
        G += qx[i] * po @ np.log(po + _G_EPS)
    return float(G - qo @ np.log(qo + _G_EPS))


def replay_trials(
    model: GenerativeModel,
    obs: Any,
    actions: Any,
    *,
    tau: float = 4.0,
    erp: float = 4.0,
    zeta: float = 3.0,
    beta: float = 1.0,
    alpha: float = 512.0,
    n_iter: int = 16,
    use_F: bool = True,
    fixed_gamma: bool = False,
    novelty: bool = True,
    learn: bool = True,
) -> dict[str, Any]:
    r"""Run SPM's ``spm_MDP_VB_X`` agent on clamped outcomes and actions, trial after trial.

    Parameters
    ----------
    model : GenerativeModel
        From :func:`predcode.pomdp.make_model`; ``d`` (counts) is learned when given,
        else ``D`` is fixed. ``a``/``b`` learning is not replayed (ValidationError).
    obs : array of int
        (K, T, M) outcomes of K trials, 0-based.
    actions : array of int
        (K, T - 1, F) actions taken, 0-based.
    tau, erp, zeta, beta, alpha, n_iter
        SPM's ``MDP.tau`` (4; DEM_demo_MDP_X sets 12), ``erp`` (4), ``zeta`` (3),
        ``beta`` (1), ``alpha`` (512) and its 16 iterations.
    use_F, fixed_gamma : bool
        ``use_F=False`` drops :math:`F(\pi)` from :math:`q(\pi)`;
        ``fixed_gamma=True`` keeps :math:`\gamma = 1/\beta` (pymdp's semantics).
    novelty : bool
        Include the novelty of ``d`` in :math:`Q`.
    learn : bool
        Accumulate ``d`` after each trial.

    Returns
    -------
    dict
        Per trial (leading axis K), SPM's names and signs: ``R`` (K, P, T) policy
        posteriors, ``w`` (K, T) precision, ``P`` list per factor (K, U_f, T - 1)
        action marginals of :math:`\sigma(\alpha \ln P(u))`, ``F`` (K, P, T)
        = :math:`-F(\pi)`, ``G`` (K, P, T) = :math:`Q = -G(\pi)`, ``X`` list per
        factor (K, S_f, T) averaged posteriors, ``x`` list per factor
        (K, S_f, T, P) per-policy posteriors, ``d`` list per factor (K, S_f)
        after each trial, ``Fd`` (K, F) = :math:`-KL(d \| d_{prior})`.
    """
    owner = "replay_trials"
    if not isinstance(model, GenerativeModel):
        raise ValidationError(f"{owner}.model: expected a GenerativeModel from make_model, got "
                              f"{type(model).__name__}.")
    if model.a is not None or model.b is not None:
        raise ValidationError(f"{owner}.model: learning a or b is not replayed; build the model "
                              "with A and B (and d) only.")
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
    V = np.asarray(model.policies)
    Np = V.shape[0]
    Ns = model.n_states
    Nu = model.n_actions
    A = [_norm0(np.asarray(a, float)) for a in model.A]
    sB = [np.stack([_norm0(b[:, :, j]) for j in range(b.shape[2])], 2) for b in model.B]
    rB = [np.stack([_norm0(b[:, :, j].T) for j in range(b.shape[2])], 2) for b in model.B]
    lnC = [_log(_softmax0(np.asarray(c, float))) for c in model.C]
    qE = _log(_norm0(np.asarray(model.E, float)[:, None])[:, 0])
    d = None if model.d is None else [np.asarray(x, float).copy() for x in model.d]
    D_fixed = [np.asarray(x, float) for x in model.D]
    out: dict[str, Any] = {
        "R": np.zeros((K, Np, T)), "w": np.zeros((K, T)), "F": np.zeros((K, Np, T)),
        "G": np.zeros((K, Np, T)), "P": [np.zeros((K, n, T - 1)) for n in Nu],
        "X": [np.zeros((K, s, T)) for s in Ns], "x": [np.zeros((K, s, T, Np)) for s in Ns],
        "d": None if d is None else [np.zeros((K, s)) for s in Ns], "Fd": np.zeros((K, Nf)),
    }
    for k in range(K):
        D = D_fixed if d is None else [_norm0(x[:, None])[:, 0] for x in d]
        lnD = [_log(x) for x in D]
        wD = None if d is None else [(1.0 / (x + SPM_LOG_EPS).sum() - 1.0 / (x + SPM_LOG_EPS)) / 2
                                     for x in d]
        x = [np.full((s, T, Np), 1.0 / s) for s in Ns]
        for f in range(Nf):
            x[f][:, 0, :] = D[f][:, None]
        L = []
        for t in range(T):
            lik = 1.0
            for g in range(M):
                lik = lik * A[g][obs[k, t, g]]
            L.append(lik)
        u_post = np.zeros((Np, T))
        plaus = np.arange(Np)
        qb = float(beta)
        w = np.zeros(T)
        w_cur = 1.0 / qb
        for t in range(T):
            if t > 0:
                with np.errstate(divide="ignore"):
                    lq = np.log(u_post[plaus, t - 1])
                plaus = plaus[(lq - lq.max()) > -zeta]
            for f in range(Nf):
                x[f] = _softmax0(_log(x[f]) / erp)
            F = np.zeros(Np)
            for p in plaus:
                dF = 1.0
                F_prev = 0.0
                for i in range(n_iter):
                    Fk = 0.0
                    xq = [x[f][:, 0, p].copy() for f in range(Nf)]
                    for j in range(T):
                        if j <= t:
                            xq = [x[f][:, j, p].copy() for f in range(Nf)]
                        for f in range(Nf):
                            sx = x[f][:, j, p]
                            if dF > np.exp(-8.0) or i > 3:
                                qL = np.zeros(Ns[f])
                                if j <= t:
                                    qL = _log(_dot_except(L[j], xq, f).ravel())
                                qx = _log(sx)
                                if j == 0:
                                    v = lnD[f] + qL - qx
                                else:
                                    v = _log(sB[f][:, :, V[p, j - 1, f]] @ x[f][:, j - 1, p]) \
                                        + qL - qx
                                if j < T - 1:
                                    v = v + _log(rB[f][:, :, V[p, j, f]] @ x[f][:, j + 1, p]) \
                                        + qL - qx
                                if j == 0 or j == T - 1:
                                    Fk += sx @ (0.5 * v)
                                else:
                                    Fk += sx @ (0.5 * v - (Nf - 1) * qL / Nf)
                                v = v - v.mean()
                                sx = _softmax0(qx + v / tau)
                            else:
                                Fk = F_prev
                            x[f][:, j, p] = sx
                            xq[f] = sx
                    if i > 0:
                        dF = Fk - F_prev
                    F_prev = Fk
                F[p] = Fk
            Q = np.zeros(Np)
            if Np > 1:
                for p in plaus:
                    if wD is not None and novelty:
                        for f in range(Nf):
                            Q[p] -= wD[f] @ x[f][:, 0, p]
                    for j in range(t, T):
                        xs = [x[f][:, j, p] for f in range(Nf)]
                        Q[p] += _epistemic(A, xs)
                        js = _joint(xs)
                        for g in range(M):
                            qo = A[g].reshape(A[g].shape[0], -1) @ js.ravel()
                            Q[p] += qo @ lnC[g][:, j]
                if t > 0:
                    w[t] = w[t - 1]
                else:
                    w[t] = w_cur
                Fu = F if use_F else np.zeros(Np)
                for _ in range(n_iter):
                    qu = _softmax0(qE[plaus] + w[t] * Q[plaus] + Fu[plaus])
                    pu = _softmax0(qE[plaus] + w[t] * Q[plaus])
                    if fixed_gamma:
                        w[t] = 1.0 / beta
                    else:
                        eg = (qu - pu) @ Q[plaus]
                        qb = qb - (qb - beta + eg) / 2
                        w[t] = 1.0 / qb
                    u_post[plaus, t] = qu
            else:
                u_post[:, t] = 1.0
            out["F"][k, :, t], out["G"][k, :, t] = F, Q
            for f in range(Nf):
                out["X"][f][k, :, :] = np.einsum("sjp,p->sj", x[f], u_post[:, t])
            if t < T - 1:
                Pu = np.zeros(Nu)
                for p in range(Np):
                    Pu[tuple(V[p, t])] += u_post[p, t]
                with np.errstate(divide="ignore"):
                    Pu = _softmax0(alpha * np.log(Pu.ravel())[:, None])[:, 0].reshape(Nu)
                for f in range(Nf):
                    out["P"][f][k, :, t] = Pu.sum(axis=tuple(g for g in range(Nf) if g != f))
        out["R"][k], out["w"][k] = u_post, w
        for f in range(Nf):
            out["x"][f][k] = x[f]
        if d is not None:
            for f in range(Nf):
                prior = d[f].copy()
                if learn:
                    pos = d[f] > 0
                    d[f][pos] = d[f][pos] + out["X"][f][k, pos, 0]
                out["d"][f][k] = d[f]
                out["Fd"][k, f] = -dirichlet_kl(d[f], prior)
    return out


def spm_tmaze_model() -> GenerativeModel:
    """The T-maze generative model of SPM12's ``DEM_demo_MDP_X``, 0-based.

    Two factors (location: centre, two arms, cue arm; context: reward left or right), two
    modalities (where; what: nothing, reward, no reward), ten two-step policies
    (``V(:,:,2) = 1`` becomes action 0), ``C`` with the demo's +6/-6 for reward and -1 at the
    centre, and the demo's concentration ``d`` (128 on the start location, 2 on each
    context), so that ``replay_trials(spm_tmaze_model(), o, u, tau=12)`` is the demo's run.
    """
    a, b = 0.98, 0.02
    A1 = np.zeros((5, 4, 2))
    A1[:4, :, 0] = np.eye(4)
    A1[:3, :3, 1] = np.eye(3)
    A1[4, 3, 1] = 1
    A2 = np.zeros((3, 4, 2))
    A2[:, :, 0] = [[1, 0, 0, 1], [0, a, b, 0], [0, b, a, 0]]
    A2[:, :, 1] = [[1, 0, 0, 1], [0, b, a, 0], [0, a, b, 0]]
    B1 = np.zeros((4, 4, 4))
    for u in range(4):  # action u takes every location to u, except the arms 1, 2 (absorbing)
        B1[u, [0, 3], u] = 1
        B1[1, 1, u] = B1[2, 2, u] = 1
    B2 = np.eye(2)[:, :, None]
    C1 = np.zeros((5, 3))
    C1[0] = -1
    C2 = np.zeros((3, 3))
    C2[1], C2[2] = 6, -6
    V1 = np.array([[1, 1, 1, 1, 2, 3, 4, 4, 4, 4], [1, 2, 3, 4, 2, 3, 1, 2, 3, 4]]) - 1
    pol = np.zeros((10, 2, 2), dtype=int)
    pol[:, :, 0] = V1.T
    return make_model([A1, A2], [B1, B2], [C1, C2], policies=pol, T=3,
                      d=[np.array([128.0, 1, 1, 1]), np.array([2.0, 2])])
