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

Options give the *form* of pymdp 1.0's policy posterior: ``use_F=False`` drops
the :math:`F(\pi)` term and ``fixed_gamma=True`` keeps :math:`\gamma = 1/\beta`.
They do not give pymdp's numbers: its state inference (marginal message passing over
the past window, given the actions taken) and its :math:`G` differ as well, by up to
0.41 in the context posterior on the T-maze;
:func:`predcode.models.pymdp_mdp.pymdp_replay_trials` is pymdp's scheme.

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

__all__ = ["SPM_LOG_EPS", "SpmArrays", "SpmAgent", "replay_trials", "dirichlet_kl",
           "spm_tmaze_model", "reset_beliefs", "infer_policy_states", "expected_free_energy",
           "policy_posterior", "action_probabilities", "stack_records"]

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
        if g != f:  # the last remaining axis to contract is g: move it last, one dot
            out = np.dot(np.moveaxis(out, g, -1), xs[g]) if g < out.ndim - 1 else out @ xs[g]
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


# --------------------------------------------------------------------------- the model's arrays
class SpmArrays:
    r"""The constant arrays of ``spm_MDP_VB_X`` for one generative model (host, float64).

    ``A[m]`` normalised likelihoods, ``sB[f]``/``rB[f]`` forward and backward
    (normalised transposed) transitions, ``lnC[m]`` (O_m, T) = :math:`\ln\sigma(C)`,
    ``lnE`` (P,) log policy prior, ``V`` (P, T - 1, F) policies; sizes ``T``, ``Ns``,
    ``Nu``, ``Np``.
    """

    def __init__(self, model: GenerativeModel) -> None:
        self.T, self.M, self.Nf = model.T, len(model.A), len(model.B)
        self.V = np.asarray(model.policies)
        self.Np = self.V.shape[0]
        self.Ns, self.Nu = tuple(model.n_states), tuple(model.n_actions)
        self.A = [_norm0(np.asarray(a, float)) for a in model.A]
        self.sB = [np.stack([_norm0(b[:, :, j]) for j in range(b.shape[2])], 2)
                   for b in model.B]
        self.rB = [np.stack([_norm0(b[:, :, j].T) for j in range(b.shape[2])], 2)
                   for b in model.B]
        self.lnC = [_log(_softmax0(np.asarray(c, float))) for c in model.C]
        self.lnE = _log(_norm0(np.asarray(model.E, float)[:, None])[:, 0])
        self.D = [np.asarray(x, float) for x in model.D]


# --------------------------------------------------------------------------- one step's updates
def reset_beliefs(x: list[np.ndarray], erp: float) -> list[np.ndarray]:
    r"""Reset every belief at the start of a step: :math:`x \leftarrow \sigma(\ln x/\text{erp})`.

    ``spm_MDP_VB_X`` (``erp``, default 4) does this before each step's belief
    updates, flattening the beliefs of the previous step towards uniform so that
    the new outcome can move them.
    ``x[f]`` is (S_f, T, P).
    """
    return [_softmax0(_log(xf) / erp) for xf in x]


def infer_policy_states(
    arr: SpmArrays, x: list[np.ndarray], L: list[np.ndarray], lnD: list[np.ndarray],
    p: int, t: int, *, tau: float, n_iter: int,
) -> float:
    r"""Gradient descent on the free energy of policy ``p`` at step ``t``; returns :math:`-F(\pi)`.

    Friston et al. (2017), marginal message passing as ``spm_MDP_VB_X`` runs it: for each
    factor ``f`` and time :math:`\tau` (Gauss-Seidel over :math:`\tau`, ``n_iter``
    = 16 sweeps), with :math:`q_L = \ln \mathbb{E}_{q(s^{\setminus f})} P(o_\tau|s)`
    for :math:`\tau \le t` (else 0),

    .. math::

        v = (\ln B_{\pi,\tau-1} s_{\tau-1} + q_L - \ln s)
          + [\tau < T-1](\ln \tilde B_{\pi,\tau}^\top s_{\tau+1} + q_L - \ln s),
        \qquad s \leftarrow \sigma\big(\ln s + (v - \bar v)/\tau_{\rm step}\big)

    (:math:`\ln D` for the forward message at :math:`\tau = 0`). The returned
    :math:`-F(\pi) = \sum_{\tau,f} s\cdot v/2` carries SPM's correction
    :math:`-(N_f-1)\,s\cdot q_L/N_f` on interior steps, and, as in
    ``spm_MDP_VB_X``, iterations 3-4 are skipped (F kept) once F changed by
    less than :math:`e^{-8}`. ``x[f][:, :, p]`` is updated in place.
    """
    T, Nf, V = arr.T, arr.Nf, arr.V
    dF, F_prev, Fk = 1.0, 0.0, 0.0
    for i in range(n_iter):
        Fk = 0.0
        xq = [x[f][:, 0, p].copy() for f in range(Nf)]
        for j in range(T):
            if j <= t:
                xq = [x[f][:, j, p].copy() for f in range(Nf)]
            for f in range(Nf):
                sx = x[f][:, j, p]
                if dF > np.exp(-8.0) or i > 3:
                    qL = _log(_dot_except(L[j], xq, f).ravel()) if j <= t else 0.0 * sx
                    qx = _log(sx)
                    if j == 0:
                        v = lnD[f] + qL - qx
                    else:
                        v = _log(arr.sB[f][:, :, V[p, j - 1, f]] @ x[f][:, j - 1, p]) + qL - qx
                    if j < T - 1:
                        v = v + _log(arr.rB[f][:, :, V[p, j, f]] @ x[f][:, j + 1, p]) + qL - qx
                    if j == 0 or j == T - 1:
                        Fk += sx @ (0.5 * v)
                    else:
                        Fk += sx @ (0.5 * v - (Nf - 1) * qL / Nf)
                    sx = _softmax0(qx + (v - v.sum() / v.size) / tau)
                else:
                    Fk = F_prev
                x[f][:, j, p] = sx
                xq[f] = sx
        if i > 0:
            dF = Fk - F_prev
        F_prev = Fk
    return Fk


def expected_free_energy(
    arr: SpmArrays, x: list[np.ndarray], p: int, t: int, *,
    wD: list[np.ndarray] | None = None, epistemic: bool = True,
) -> float:
    r"""SPM's :math:`Q(\pi) = -G(\pi)` of policy ``p`` at step ``t`` (``spm_MDP_G``).

    The expected free energy of Friston et al. (2017) as ``spm_MDP_VB_X`` computes
    it, with SPM's sign (larger is better):

    .. math::

        Q(\pi) = \sum_{\tau \ge t}\Big[\underbrace{I(o_\tau; s_\tau)}_{\text{epistemic,
        joint over modalities}} + \sum_m o^m_{\pi\tau}\cdot\ln\sigma(C^m_\tau)\Big]
        - w_D\cdot s_{\pi,0}

    with the current step included, :math:`o^m = A^m s` under the joint of the
    factor marginals, and the novelty of the initial-state counts
    :math:`w_D = \tfrac12(1/\sum d - 1/d)` (``spm_wnorm``) when ``wD`` is given.
    ``epistemic=False`` keeps only the expected utility (predcode's option; no
    SPM counterpart).
    """
    Q = 0.0
    if wD is not None and epistemic:
        for f in range(arr.Nf):
            Q -= wD[f] @ x[f][:, 0, p]
    for j in range(t, arr.T):
        xs = [x[f][:, j, p] for f in range(arr.Nf)]
        if epistemic:
            Q += _epistemic(arr.A, xs)
        js = _joint(xs).ravel()
        for g in range(arr.M):
            Q += (arr.A[g].reshape(arr.A[g].shape[0], -1) @ js) @ arr.lnC[g][:, j]
    return float(Q)


def policy_posterior(
    lnE: np.ndarray, Q: np.ndarray, F: np.ndarray, gamma: float, qb: float, *,
    beta: float, n_iter: int, use_F: bool = True, fixed_gamma: bool = False,
) -> tuple[np.ndarray, float, float]:
    r"""Policy posterior and precision of one step (``spm_MDP_VB_X``; Friston et al. 2017).

    ``n_iter`` = 16 updates of

    .. math::

        q(\pi) = \sigma(\ln E + \gamma Q + F), \quad p_0(\pi) = \sigma(\ln E + \gamma Q),
        \quad \beta_q \leftarrow \beta_q - \tfrac12\big(\beta_q - \beta + (q - p_0)\cdot Q\big),
        \quad \gamma = 1/\beta_q

    (SPM's signs: ``F`` is :math:`-F(\pi)`, ``Q`` is :math:`-G(\pi)`), starting from
    the step's ``gamma`` and ``qb``, which are carried over from the previous step
    of the trial. The returned :math:`q(\pi)` is the one formed with the γ
    *before* the last update, as SPM reports it. ``use_F=False`` drops
    :math:`F(\pi)`; ``fixed_gamma=True`` keeps :math:`\gamma = 1/\beta`.

    Returns ``(q_pi, gamma, qb)`` over the given (plausible) policies.
    """
    Fu = F if use_F else np.zeros_like(F)
    qu = np.ones_like(Q)
    for _ in range(n_iter):
        qu = _softmax0(lnE + gamma * Q + Fu)
        pu = _softmax0(lnE + gamma * Q)
        if fixed_gamma:
            gamma = 1.0 / beta
        else:
            qb = qb - (qb - beta + (qu - pu) @ Q) / 2
            gamma = 1.0 / qb
    return qu, gamma, qb


def action_probabilities(arr: SpmArrays, q_pi: np.ndarray, t: int, *,
                         alpha: float) -> np.ndarray:
    r"""Joint action probabilities :math:`\sigma(\alpha \ln \sum_\pi q(\pi)[\pi_t = u])`.

    ``spm_MDP_VB_X`` (Friston et al. 2017); ``alpha`` = 512 by default. Returns an array of
    shape ``Nu`` (one axis per factor); SPM's ``MDP.P``.
    """
    Pu = np.zeros(arr.Nu)
    for p in range(arr.Np):
        Pu[tuple(arr.V[p, t])] += q_pi[p]
    with np.errstate(divide="ignore"):
        return _softmax0(alpha * np.log(Pu.ravel())[:, None])[:, 0].reshape(arr.Nu)


# --------------------------------------------------------------------------- one agent
class SpmAgent:
    r"""One ``spm_MDP_VB_X`` agent over trials: the state of SPM's loop, driven step by step.

    ``begin_trial()``, then ``step(t, o_t)`` for ``t = 0 .. T - 1`` (each returns the
    joint action probabilities for the next move, or None at the last step), then
    ``end_trial()`` (learns ``d``; returns the trial's records). The caller supplies
    the outcomes and picks the actions: :func:`replay_trials` clamps them (SPM's own
    or anyone's), :func:`predcode.models.active_inference.run_trials` with
    ``scheme="spm"`` samples them from a generative process. The agent's beliefs
    depend on outcomes only, as in SPM (actions move the process, not the beliefs).
    """

    def __init__(self, model: GenerativeModel, *, tau: float = 4.0, erp: float = 4.0,
                 zeta: float = 3.0, beta: float = 1.0, alpha: float = 512.0,
                 n_iter: int = 16, use_F: bool = True, fixed_gamma: bool = False,
                 novelty: bool = True, epistemic: bool = True, learn: bool = True,
                 eta: float = 1.0, owner: str = "replay_trials") -> None:
        if not isinstance(model, GenerativeModel):
            raise ValidationError(f"{owner}.model: expected a GenerativeModel from make_model, "
                                  f"got {type(model).__name__}.")
        if model.a is not None or model.b is not None:
            raise ValidationError(f"{owner}.model: SPM's scheme here learns d only, not a or b; "
                                  "build the model with A and B (and d) only, or use "
                                  "scheme='predcode'.")
        self.arr = SpmArrays(model)
        self.d = None if model.d is None else [np.asarray(x, float).copy() for x in model.d]
        self.tau, self.erp, self.zeta, self.beta = tau, erp, zeta, beta
        self.alpha, self.n_iter, self.use_F, self.fixed_gamma = alpha, n_iter, use_F, fixed_gamma
        self.novelty, self.epistemic, self.learn, self.eta = novelty, epistemic, learn, eta

    def begin_trial(self) -> None:
        """Priors of a new trial (from the counts ``d`` when learned), uniform beliefs."""
        arr = self.arr
        if self.d is None:
            D, self.wD = arr.D, None
        else:
            D = [_norm0(x[:, None])[:, 0] for x in self.d]
            self.wD = ([(1.0 / (x + SPM_LOG_EPS).sum() - 1.0 / (x + SPM_LOG_EPS)) / 2
                        for x in self.d] if self.novelty else None)
        self.lnD = [_log(x) for x in D]
        self.x = [np.full((s, arr.T, arr.Np), 1.0 / s) for s in arr.Ns]
        for f in range(arr.Nf):
            self.x[f][:, 0, :] = D[f][:, None]
        self.L: list[np.ndarray] = []
        self.R = np.zeros((arr.Np, arr.T))
        self.plaus = np.arange(arr.Np)
        self.qb = float(self.beta)
        self.w = np.zeros(arr.T)
        self.F, self.G = np.zeros((arr.Np, arr.T)), np.zeros((arr.Np, arr.T))
        self.P: list[np.ndarray] = []

    def step(self, t: int, o_t: Any) -> np.ndarray | None:
        """Take outcome ``o_t`` (M,) at step ``t``: infer, evaluate policies, act."""
        arr = self.arr
        lik = 1.0
        for g in range(arr.M):
            lik = lik * arr.A[g][int(o_t[g])]
        self.L.append(lik)
        if t > 0:  # Occam window on the previous step's policy posterior
            with np.errstate(divide="ignore"):
                lq = np.log(self.R[self.plaus, t - 1])
            self.plaus = self.plaus[(lq - lq.max()) > -self.zeta]
        self.x = reset_beliefs(self.x, self.erp)
        F, Q = np.zeros(arr.Np), np.zeros(arr.Np)
        for p in self.plaus:
            F[p] = infer_policy_states(arr, self.x, self.L, self.lnD, p, t, tau=self.tau,
                                       n_iter=self.n_iter)
        if arr.Np > 1:
            for p in self.plaus:
                Q[p] = expected_free_energy(arr, self.x, p, t, wD=self.wD,
                                            epistemic=self.epistemic)
            gamma = self.w[t - 1] if t > 0 else 1.0 / self.qb
            qu, self.w[t], self.qb = policy_posterior(
                arr.lnE[self.plaus], Q[self.plaus], F[self.plaus], gamma, self.qb,
                beta=self.beta, n_iter=self.n_iter, use_F=self.use_F,
                fixed_gamma=self.fixed_gamma)
            self.R[self.plaus, t] = qu
        else:
            self.R[:, t] = 1.0
        self.F[:, t], self.G[:, t] = F, Q
        if t == arr.T - 1:
            return None
        Pu = action_probabilities(arr, self.R[:, t], t, alpha=self.alpha)
        self.P.append(Pu)
        return Pu

    def end_trial(self) -> dict[str, Any]:
        r"""The trial's records (SPM's names); learns :math:`d \mathrel{+}= \eta\,\bar s_0`."""
        arr = self.arr
        X = [np.einsum("sjp,p->sj", xf, self.R[:, -1]) for xf in self.x]
        P = [np.stack([Pu.sum(axis=tuple(g for g in range(arr.Nf) if g != f))
                       for Pu in self.P], axis=1) if self.P else np.zeros((n, 0))
             for f, n in enumerate(arr.Nu)]
        out = {"R": self.R, "w": self.w, "F": self.F, "G": self.G, "P": P, "X": X,
               "x": self.x, "d": None, "Fd": np.zeros(arr.Nf)}
        if self.d is not None:
            out["d"] = []
            for f in range(arr.Nf):
                prior = self.d[f].copy()
                if self.learn:
                    pos = self.d[f] > 0
                    self.d[f][pos] = self.d[f][pos] + self.eta * X[f][pos, 0]
                out["d"].append(self.d[f].copy())
                out["Fd"][f] = -dirichlet_kl(self.d[f], prior)
        return out


def stack_records(recs: list[dict[str, Any]]) -> dict[str, Any]:
    """Per-trial records of :meth:`SpmAgent.end_trial` stacked on a leading trial axis."""
    out: dict[str, Any] = {}
    for key in ("R", "w", "F", "G", "Fd"):
        out[key] = np.stack([r[key] for r in recs])
    for key in ("P", "X", "x"):
        out[key] = [np.stack([r[key][f] for r in recs]) for f in range(len(recs[0][key]))]
    out["d"] = None if recs[0]["d"] is None else [
        np.stack([r["d"][f] for r in recs]) for f in range(len(recs[0]["d"]))]
    return out


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
    eta: float = 1.0,
) -> dict[str, Any]:
    r"""Run SPM's ``spm_MDP_VB_X`` agent on clamped outcomes and actions, trial after trial.

    The clamped (replay) mode of the public API:
    ``run_trials(model, clamp=dict(o=obs, u=actions), scheme="spm")`` calls this.
    One :class:`SpmAgent` is driven through the trials; its beliefs see the outcomes
    only (as in SPM, actions move the process, not the beliefs), so ``actions`` are
    checked and recorded, not used.

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
        ``fixed_gamma=True`` keeps :math:`\gamma = 1/\beta` (the form of pymdp's
        q(π); for pymdp's numbers use ``pymdp_mdp.pymdp_replay_trials``).
    novelty : bool
        Include the novelty of ``d`` in :math:`Q`.
    learn : bool
        Accumulate ``d`` after each trial.
    eta : float
        Learning rate of ``d`` (SPM's ``MDP.eta``, 1).

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
    agent = SpmAgent(model, tau=tau, erp=erp, zeta=zeta, beta=beta, alpha=alpha,
                     n_iter=n_iter, use_F=use_F, fixed_gamma=fixed_gamma, novelty=novelty,
                     learn=learn, eta=eta, owner=owner)
    T, M, Nf = model.T, len(model.A), len(model.B)
    obs = np.asarray(obs)
    actions = np.asarray(actions)
    if obs.ndim != 3 or obs.shape[1:] != (T, M) or obs.dtype.kind not in "iu":
        raise ValidationError(f"{owner}.obs: expected ints of shape (K, {T}, {M}), got "
                              f"{obs.dtype} {obs.shape}.")
    for m, n in enumerate(model.n_outcomes):
        if obs[..., m].size and (obs[..., m].min() < 0 or obs[..., m].max() >= n):
            raise ValidationError(f"{owner}.obs[..., {m}]: outcomes of modality {m} must lie "
                                  f"in 0..{n - 1} (0-based; SPM's o minus 1).")
    K = obs.shape[0]
    if actions.shape != (K, T - 1, Nf):
        raise ValidationError(f"{owner}.actions: expected ints of shape ({K}, {T - 1}, {Nf}), "
                              f"got {actions.shape}.")
    recs = []
    for k in range(K):
        agent.begin_trial()
        for t in range(T):
            agent.step(t, obs[k, t])
        recs.append(agent.end_trial())
    return stack_records(recs)


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
