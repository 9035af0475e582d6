r"""Discrete-state active inference after SPM's ``spm_MDP_VB_X``: predcode's batched scheme.

:func:`run_trials` has two schemes. ``scheme="spm"`` is SPM12's own scheme, step by
step (:mod:`predcode.models.spm_mdp`, the code of ``replay_trials``, checked against
SPM to 5e-15), with a clamped replay mode (``clamp=dict(o=..., u=..., s=...)``). The
default ``scheme="predcode"``, described below, is predcode's batched variant: all
agents at once on numpy, numba or cupy, with ``a``/``b``/``d`` learning; it differs
from SPM's scheme in its log floor, belief reset, precision carry-over, Occam window,
horizon and epistemic term of G (docs: "predcode for SPM users").

A *generative model* of a partially observed Markov decision process, written
as arrays (Friston et al. 2017; Da Costa et al. 2020):

* ``A[m]`` (O_m, S_1, ..., S_F): likelihood :math:`P(o^m_\tau | s_\tau)` of
  modality ``m`` given the hidden-state factors;
* ``B[f]`` (S_f, S_f, U_f): transitions :math:`P(s^f_{\tau+1} | s^f_\tau, u)`,
  one slice per action (columns sum to one);
* ``C[m]`` (O_m,) or (O_m, T): log preferences (SPM normalises them with
  :math:`\ln \sigma(C)`);
* ``D[f]`` (S_f,): initial states; ``E`` (P,): policy prior (habits);
* ``policies`` (P, T - 1, F): the action each policy takes on each factor at
  each move (SPM's ``V``);
* optional Dirichlet concentration parameters ``a``, ``b``, ``d``: when given,
  the agent uses their expectations as ``A``, ``B``, ``D`` and learns them.

One trial has ``T`` time steps (outcomes). At each step ``t`` the agent

1. infers hidden states under every policy by *marginal message passing*
   (SPM's gradient scheme, ``n_iter`` = 16 iterations, time constant
   ``tau`` = 4), scoring each policy's variational free energy :math:`F(\pi)`;
2. scores each policy's expected free energy
   :math:`G(\pi) = \sum_{\tau > t}\sum_m \text{risk} + \text{ambiguity}
   - \text{novelty}` (kernel ``aif_efe``);
3. forms the policy posterior :math:`q(\pi) = \sigma(\ln E - \gamma G - F)`
   while updating the precision :math:`\gamma = 1/\beta_q` (SPM's ``beta`` = 1);
4. acts: :math:`P(u) \propto \exp(\alpha \ln \sum_\pi q(\pi)[\pi_t = u])`
   (SPM's ``alpha`` = 512), sampled, or the most probable action.

After each trial, Dirichlet counts accumulate (:func:`learn`). Everything runs
on a leading batch axis of agents (``N``), on numpy or cupy arrays, with the
inner loops in the ``aif_*`` kernels.

References
----------
Friston, FitzGerald, Rigoli, Schwartenbeck & Pezzulo (2017). Active inference:
a process theory. *Neural Computation* 29(1), 1-49.
Da Costa, Parr, Sajid, Veselic, Neacsu & Friston (2020). Active inference on
discrete state-spaces: a synthesis. *J. Math. Psychol.* 99, 102447.
Parr, Markovic, Kiebel & Friston (2019). Neuronal message passing using
mean-field, Bethe, and marginal approximations. *Sci. Rep.* 9, 1889.
"""

from __future__ import annotations

import string
from collections.abc import Sequence
from typing import Any

import numpy as np

from ..backend import array_namespace, get_namespace, resolve_backend, to_numpy
from ..exceptions import ValidationError
from ..kernels import get_kernel
from ..pomdp import (
    LOG_FLOOR,
    GenerativeModel,
    all_policies,
    dirichlet_expectation,
    make_model,
    safe_log,
    softmax,
)
from ..validation import check_choice, check_int, check_param, check_random_state
from .pymdp_mdp import PYMDP_EPS, pymdp_preferences
from .spm_mdp import SpmAgent, replay_trials, stack_records

__all__ = [
    "LOG_FLOOR",
    "GenerativeModel",
    "make_model",
    "all_policies",
    "safe_log",
    "softmax",
    "dirichlet_expectation",
    "novelty_weights",
    "batched_arrays",
    "infer_states_fpi",
    "marginal_message_passing",
    "expected_free_energy",
    "policy_posterior",
    "select_action",
    "action_probabilities",
    "resolve_model_backend",
    "learn",
    "pymdp_step_arrays",
    "run_trials",
]



# --------------------------------------------------------------------------- helpers
def novelty_weights(a: Any) -> Any:
    r"""Novelty weights :math:`W = \tfrac12 (a^{\odot-1} - a_0^{\odot-1})` of Dirichlet counts.

    :math:`a_0` sums ``a`` over its first (outcome) axis. ``W`` is non-negative,
    large where counts are few, and zero where ``a`` is zero (an impossible
    entry is never novel). Da Costa et al. (2020), eq. 8; SPM's ``spm_wnorm``
    with the opposite sign convention.
    """
    xp = array_namespace(a)
    pos = a > 0
    safe = xp.where(pos, a, 1.0)
    a0 = xp.sum(a, axis=0, keepdims=True)
    a0 = xp.where(a0 > 0, a0, 1.0)
    return xp.where(pos, 0.5 * (1.0 / safe - 1.0 / a0), 0.0)


# --------------------------------------------------------------------------- batched state
def resolve_model_backend(backend: str, model: GenerativeModel, *arrays: Any,
                          owner: str) -> str:
    """``backend="auto"`` from the data: cupy when the model was built from cupy arrays
    (:attr:`GenerativeModel.device`) or any of ``arrays`` is a cupy array, else numba,
    else numpy (:func:`predcode.backend.resolve_backend`)."""
    if backend == "auto" and getattr(model, "device", "numpy") == "cupy":
        backend = "cupy"
    return resolve_backend(backend, *arrays, owner=owner)


def batched_arrays(model: GenerativeModel, n_agents: int = 1, *, backend: str = "numpy",
                   dtype: str = "float64") -> dict[str, Any]:
    """The per-agent arrays the inference functions take (``st``), for step-by-step use.

    Keys: ``A``, ``B``, ``D`` (expectations), ``lnA``, ``lnD``, ``rB`` (normalised
    transposed transitions), ``H`` (outcome entropies), ``Wa``/``Wb`` (novelty
    weights), ``lnC`` and the counts ``a``, ``b``, ``d``, each with a leading
    agent axis; ``V`` (the policies, on the device); ``xp`` is the array namespace.
    ``backend="auto"`` resolves from the model (see :func:`resolve_model_backend`).
    """
    backend = resolve_model_backend(backend, model, owner="batched_arrays")
    return _batched(model, check_int(n_agents, "n_agents", "batched_arrays"),
                    get_namespace(backend), dtype)


def _batched(model: GenerativeModel, N: int, xp: Any, dtype: Any,
             counts: dict[str, Any] | None = None) -> dict[str, Any]:
    """Per-agent copies (leading axis N) of the arrays the agent uses.

    The model's arrays (host or already on ``xp``'s device) are moved to the
    device here, once: one explicit copy per array, none later. ``counts``
    (``a``/``b``/``d`` lists without the agent axis) replaces the model's counts.
    """

    def rep(x: Any) -> Any:
        x = xp.asarray(x, dtype=dtype)
        return xp.broadcast_to(x, (N,) + x.shape).copy()

    src = {k: getattr(model, k) for k in ("a", "b", "d")}
    if counts is not None:
        src.update(counts)
    st: dict[str, Any] = {"xp": xp, "N": N}
    for key in ("a", "b", "d"):
        st[key] = None if src[key] is None else [rep(x) for x in src[key]]
    st["V"] = xp.asarray(model.policies)
    # constants (not learned): computed once
    if st["a"] is None:
        st["A"] = [rep(x) for x in model.A]
    if st["b"] is None:
        st["B"] = [rep(x) for x in model.B]
    if st["d"] is None:
        st["D"] = [rep(x) for x in model.D]
    st["lnC"] = [rep(xp.log(softmax(xp.asarray(c, dtype=xp.float64), 0) + LOG_FLOOR))
                 for c in model.C]
    _refresh(model, st, dtype, first=True)
    return st


def _refresh(model: GenerativeModel, st: dict[str, Any], dtype: Any,
             first: bool = False) -> None:
    """Recompute expectations, logs, entropies and novelty weights from (learned) counts.

    Device work only: the constants were put on the device by :func:`_batched`;
    ``first=False`` (after learning) recomputes only what depends on counts.
    """
    xp, N = st["xp"], st["N"]

    def norm0(x: Any) -> Any:  # normalise axis 1 (axis 0 is the batch)
        tot = xp.sum(x, axis=1, keepdims=True)
        return x / xp.where(tot > 0, tot, 1.0)

    S = int(np.prod(model.n_states))
    if st["a"] is not None:
        st["A"] = [norm0(x) for x in st["a"]]
    if first or st["a"] is not None:
        st["lnA"] = [xp.log(x + LOG_FLOOR) for x in st["A"]]
        st["Aflat"] = [x.reshape(N, x.shape[1], S) for x in st["A"]]
        st["H"] = [-xp.sum(x * xp.log(x + LOG_FLOOR), axis=1) for x in st["Aflat"]]
    if st["b"] is not None:
        st["B"] = [norm0(x) for x in st["b"]]
    if first or st["b"] is not None:
        # forward (B) and backward (normalised B transpose) messages, SPM's sB and rB
        st["rB"] = [norm0(xp.swapaxes(x, 1, 2)) for x in st["B"]]
    if st["d"] is not None:
        st["D"] = [x / xp.sum(x, axis=1, keepdims=True) for x in st["d"]]
    if first or st["d"] is not None:
        st["lnD"] = [xp.log(x + LOG_FLOOR) for x in st["D"]]
    if st["a"] is not None:
        st["Wa"] = [xp.moveaxis(novelty_weights(xp.moveaxis(x, 0, -1)), -1, 0)
                    .reshape(N, x.shape[1], S) for x in st["a"]]
    elif first:
        st["Wa"] = [xp.zeros_like(x) for x in st["Aflat"]]
    if st["b"] is not None:
        st["Wb"] = [xp.moveaxis(novelty_weights(xp.moveaxis(x, 0, -1)), -1, 0) for x in st["b"]]
    elif first:
        st["Wb"] = None


def _loglik(st: dict[str, Any], obs: Any) -> Any:
    """Joint log-likelihood (N, S_1, ..., S_F) of one time step's outcomes (N, M)."""
    xp, N = st["xp"], st["N"]
    idx = xp.arange(N)
    L = 0
    for m, lnA in enumerate(st["lnA"]):
        L = L + lnA[idx, obs[:, m]]
    return L


def _message(L: Any, qs: list[Any], f: int, policy_axis: bool) -> Any:
    """Contract the joint log-likelihood with every factor's marginal except ``f``."""
    xp = array_namespace(L)
    F = len(qs)
    letters = string.ascii_lowercase[2:2 + F]
    p = "p" if policy_axis else ""
    ops, subs = [L], ["n" + letters]
    for g in range(F):
        if g != f:
            ops.append(qs[g])
            subs.append("n" + p + letters[g])
    if F == 1:
        return L[:, None] if policy_axis else L
    if policy_axis and len(ops) == 1:
        return L[:, None]
    return xp.einsum(",".join(subs) + "->n" + p + letters[f], *ops)


# --------------------------------------------------------------------------- inference
def infer_states_fpi(
    model: GenerativeModel, obs: Any, prior: Sequence[Any] | None = None, *,
    n_iter: int = 16, tol: float = 1e-8,
) -> list[np.ndarray]:
    r"""Single-step state inference by fixed-point iteration (mean field over factors).

    .. math::

        \ln q(s^f) = \ln P(s^f) + \mathbb{E}_{q(s^{\setminus f})}
        \Big[\sum_m \ln A^m[o^m, s]\Big], \qquad q(s^f) \leftarrow \sigma(\cdot)

    iterated until the marginals change by less than ``tol`` (one iteration is
    exact for one factor).

    Parameters
    ----------
    model : GenerativeModel
    obs : array of int
        (M,) one outcome per modality, or (N, M) for a batch.
    prior : list of arrays, optional
        ``prior[f]`` (S_f,) or (N, S_f); default ``model.D``.

    Returns
    -------
    list of ndarray
        ``q[f]`` with shape (S_f,) or (N, S_f), each summing to one.
    """
    obs = _check_obs(model, obs)
    single = obs.ndim == 1
    obs2 = obs[None] if single else obs
    N = obs2.shape[0]
    st = _batched(model, N, np, np.float64)
    prior = st["D"] if prior is None else [
        np.broadcast_to(np.asarray(p, dtype=np.float64), (N, model.n_states[f]))
        for f, p in enumerate(prior)]
    lnp = [np.log(p + LOG_FLOOR) for p in prior]
    L = _loglik(st, obs2)
    qs = [softmax(x) for x in lnp]
    for _ in range(n_iter):
        new = [softmax(lnp[f] + _message(L, qs, f, False)) for f in range(len(qs))]
        delta = max(float(np.abs(x - y).max()) for x, y in zip(new, qs, strict=True))
        qs = new
        if delta < tol:
            break
    return [q[0] for q in qs] if single else qs


def _check_obs(model: GenerativeModel, obs: Any) -> np.ndarray:
    o = np.asarray(to_numpy(obs))
    M = len(model.A)
    if o.shape[-1:] != (M,) or o.ndim not in (1, 2) or not np.issubdtype(o.dtype, np.integer):
        raise ValidationError(f"obs: expected ints of shape ({M},) or (N, {M}) (one outcome "
                              f"per modality), got {o.dtype} {o.shape}.")
    for m, n in enumerate(model.n_outcomes):
        if o[..., m].min() < 0 or o[..., m].max() >= n:
            raise ValidationError(f"obs[..., {m}]: outcomes of modality {m} must lie in "
                                  f"0..{n - 1}, got {int(o[..., m].max())}.")
    return o


def marginal_message_passing(
    model: GenerativeModel, st: dict[str, Any], obs: Any, t: int, qs: list[Any], *,
    n_iter: int = 16, tau: float = 4.0, backend: str = "numpy",
) -> tuple[list[Any], Any]:
    r"""Marginal message passing over a trial's time steps, for every policy.

    For factor ``f``, time :math:`\tau`, policy :math:`\pi` (Parr et al. 2019;
    SPM ``spm_MDP_VB_X``), with :math:`\ell_\tau` the expected log-likelihood of
    the outcomes seen so far (:math:`\tau \le t`, else 0), forward message
    :math:`\overrightarrow{m}_\tau = \ln(B_{\pi,\tau-1} s_{\tau-1})`
    (:math:`\ln D` at :math:`\tau = 0`) and backward message
    :math:`\overleftarrow{m}_\tau = \ln(\tilde B_{\pi,\tau}^\top s_{\tau+1})`
    (columns of :math:`B^\top` normalised):

    .. math::

        v = (\overrightarrow{m} + \ell - \ln s) + [\tau < T-1]
            (\overleftarrow{m} + \ell - \ln s), \qquad
        s \leftarrow \sigma\big(\ln s + (v - \bar v)/\tau_{\text{step}}\big)

    swept over :math:`\tau` (Gauss-Seidel) ``n_iter`` times (SPM: 16 iterations,
    :math:`\tau_{\text{step}}` = 4). The fixed point is
    :math:`\ln s_\tau = \ell_\tau + \tfrac12(\overrightarrow{m}_\tau +
    \overleftarrow{m}_\tau)` inside the trial.

    Parameters
    ----------
    st : dict
        Batched model arrays (internal).
    obs : array of int
        (N, T, M) outcomes; entries after ``t`` are ignored.
    qs : list of arrays
        ``qs[f]`` (N, P, T, S_f): beliefs, updated and returned.

    Returns
    -------
    qs : list of arrays
        Updated beliefs.
    F : array
        (N, P) variational free energy of each policy,
        :math:`F(\pi) = \sum_{\tau,f} s\cdot(\ln s - \overrightarrow{m}) -
        \sum_{\tau \le t} \mathbb{E}_s[\ln P(o_\tau|s_\tau)]`.
    """
    xp, N = st["xp"], st["N"]
    step = get_kernel("aif_belief_step", backend)
    V = st["V"] if "V" in st else xp.asarray(model.policies)
    T, F = model.T, len(qs)
    P = V.shape[0]
    Ls = [_loglik(st, obs[:, j]) for j in range(t + 1)]

    propagate = get_kernel("aif_propagate", backend)

    def fwd(f: int, j: int) -> Any:
        if j == 0:
            return xp.broadcast_to(st["lnD"][f][:, None, :], (N, P, model.n_states[f]))
        return xp.log(propagate(st["B"][f], qs[f][:, :, j - 1], V[:, j - 1, f]) + LOG_FLOOR)

    def bwd(f: int, j: int) -> Any:
        return xp.log(propagate(st["rB"][f], qs[f][:, :, j + 1], V[:, j, f]) + LOG_FLOOR)

    for _ in range(n_iter):
        for j in range(T):
            for f in range(F):
                lnq = xp.log(qs[f][:, :, j] + LOG_FLOOR)
                ell = (_message(Ls[j], [q[:, :, j] for q in qs], f, True)
                       if j <= t else 0.0)
                v = fwd(f, j) + ell - lnq
                if j < T - 1:
                    v = v + bwd(f, j) + ell - lnq
                qs[f][:, :, j] = step(lnq, v, tau)
    Fe = xp.zeros((N, P), dtype=qs[0].dtype)
    for j in range(T):
        for f in range(F):
            q = qs[f][:, :, j]
            Fe = Fe + xp.sum(q * (xp.log(q + LOG_FLOOR) - fwd(f, j)), axis=-1)
        if j <= t:
            Fe = Fe - _message_full(Ls[j], [q[:, :, j] for q in qs])
    return qs, Fe


def _message_full(L: Any, qs: list[Any]) -> Any:
    """Expected joint log-likelihood under the product of marginals: (N, P)."""
    xp = array_namespace(L)
    F = len(qs)
    letters = string.ascii_lowercase[2:2 + F]
    subs = ["n" + letters] + ["np" + c for c in letters]
    return xp.einsum(",".join(subs) + "->np", L, *qs)


def _joint(qs_t: list[Any]) -> Any:
    """Outer product of factor marginals (N, P, S_f) -> (N, P, prod S_f), C order."""
    out = qs_t[0]
    for q in qs_t[1:]:
        out = (out[..., :, None] * q[..., None, :]).reshape(out.shape[:2] + (-1,))
    return out


def expected_free_energy(
    model: GenerativeModel, st: dict[str, Any], qs: list[Any], t: int, *,
    epistemic: bool = True, novelty: bool = True, backend: str = "numpy",
) -> tuple[Any, dict[str, Any]]:
    r"""Expected free energy of every policy from time ``t`` on.

    .. math::

        G(\pi) = \sum_{\tau=t+1}^{T-1} \sum_m
        \underbrace{o^m_{\pi\tau}\cdot(\ln o^m_{\pi\tau} - \ln \sigma(C^m_\tau))}_{\text{risk}}
        + \underbrace{H^m \cdot s_{\pi\tau}}_{\text{ambiguity}}
        - \underbrace{o^m_{\pi\tau}\cdot W^m s_{\pi\tau}}_{\text{novelty of } a}
        - \sum_f \underbrace{s^f_{\pi\tau}\cdot W^f_{u} s^f_{\pi,\tau-1}}
          _{\text{novelty of } b}

    with :math:`o = A s`, :math:`H^m = -\mathrm{diag}(A^{m\top} \ln A^m)` and
    :math:`W` from :func:`novelty_weights` (Da Costa et al. 2020, eq. 8).
    ``epistemic=False`` keeps only the expected utility,
    :math:`G = -\sum o \cdot \ln\sigma(C)` (the ablation of Friston et al. 2015).

    Returns
    -------
    G : array (N, P)
    terms : dict
        ``risk``, ``ambiguity``, ``novelty`` and ``utility`` summed over time, (N, P).
    """
    xp, N = st["xp"], st["N"]
    efe = get_kernel("aif_efe", backend)
    P = model.n_policies
    tot = {k: xp.zeros((N, P), dtype=qs[0].dtype)
           for k in ("risk", "ambiguity", "novelty", "utility")}
    V = st["V"] if "V" in st else xp.asarray(model.policies)
    n_idx = xp.arange(N)[:, None]
    for j in range(t + 1, model.T):
        s = _joint([q[:, :, j] for q in qs])
        for m in range(len(model.A)):
            W = st["Wa"][m] if novelty else xp.zeros_like(st["Wa"][m])
            out = efe(s, st["Aflat"][m], st["lnC"][m][:, :, j], st["H"][m], W)
            for i, k in enumerate(("risk", "ambiguity", "novelty", "utility")):
                tot[k] = tot[k] + out[..., i]
        if novelty and st["Wb"] is not None:
            for f, Wb in enumerate(st["Wb"]):
                Wu = Wb[n_idx, :, :, V[None, :, j - 1, f]]
                tot["novelty"] = tot["novelty"] + xp.einsum(
                    "npi,npij,npj->np", qs[f][:, :, j], Wu, qs[f][:, :, j - 1])
    if epistemic:
        G = tot["risk"] + tot["ambiguity"] - tot["novelty"]
    else:
        G = -tot["utility"]
    return G, tot


def policy_posterior(
    G: Any, F: Any, lnE: Any, *, beta: float = 1.0, n_iter: int = 16,
    update_gamma: bool = True, mask: Any = None,
) -> tuple[Any, Any, Any]:
    r"""Policy posterior and precision (SPM ``spm_MDP_VB_X``; Da Costa et al. 2020 eq. 10).

    .. math::

        \pi_0 = \sigma(\ln E - \gamma G), \quad \pi = \sigma(\ln E - \gamma G - F),
        \quad \beta_q \leftarrow \beta_q - \tfrac12\big(\beta_q - \beta -
        (\pi - \pi_0)\cdot G\big), \quad \gamma = 1/\beta_q

    iterated ``n_iter`` times from :math:`\beta_q = \beta` (the prior rate;
    the prior precision is :math:`1/\beta`), a gradient descent (step ½, as in
    SPM) to the fixed point :math:`\beta_q = \beta + (\pi - \pi_0)\cdot G`:
    precision rises when the evidence favours the policies that ``G`` favours.

    Parameters
    ----------
    G, F : array (N, P)
        Expected and variational free energies.
    lnE : array (P,) or (N, P)
        Log policy prior (habits).
    mask : array of bool (N, P), optional
        Policies still allowed (consistent with past actions); others get 0.

    Returns
    -------
    q_pi : (N, P) posterior;  q_pi0 : (N, P) prior;  gamma : (N,) precision.
    """
    xp = array_namespace(G)
    N = G.shape[0]
    lnE = xp.broadcast_to(lnE, G.shape)
    if mask is not None:
        lnE = xp.where(mask, lnE, -1e30)
        G = xp.where(mask, G, 0.0)
        F = xp.where(mask, F, 0.0)
    qb = xp.full((N,), float(beta), dtype=G.dtype)
    gamma = 1.0 / qb
    for _ in range(n_iter if update_gamma else 1):
        q = softmax(lnE - gamma[:, None] * G - F)
        p0 = softmax(lnE - gamma[:, None] * G)
        if not update_gamma:
            break
        eg = xp.sum((q - p0) * G, axis=-1)
        qb = qb - 0.5 * (qb - beta - eg)
        qb = xp.maximum(qb, 1e-8)
        gamma = 1.0 / qb
    q = softmax(lnE - gamma[:, None] * G - F)
    p0 = softmax(lnE - gamma[:, None] * G)
    return q, p0, gamma


def select_action(
    q_pi: Any, policies: np.ndarray, t: int, n_actions: Sequence[int], *,
    alpha: float = 512.0, mode: str = "stochastic", rng: np.random.Generator | None = None,
) -> tuple[np.ndarray, list[np.ndarray]]:
    r"""Choose the next action of every factor from the policy posterior.

    :math:`P(u^f) = \sigma(\alpha \ln \sum_\pi q(\pi)[\pi_{t,f} = u])` (SPM:
    ``alpha`` = 512); ``mode="stochastic"`` samples it, ``"deterministic"``
    takes the most probable action. Host function (it copies ``q_pi`` to the
    host); :func:`run_trials` computes the probabilities on the device and
    sends only them across.

    Returns
    -------
    actions : ndarray of int (N, F);  probs : list of (N, U_f) host arrays.
    """
    check_choice(mode, "mode", ("stochastic", "deterministic"), "select_action")
    probs = action_probabilities(to_numpy(q_pi), np.asarray(policies), t, n_actions,
                                 alpha=alpha)
    return _sample_actions(probs, mode, rng), probs


def action_probabilities(q_pi: Any, policies: Any, t: int, n_actions: Sequence[int], *,
                         alpha: float = 512.0) -> list[Any]:
    r"""Action probabilities :math:`\sigma(\alpha \ln \sum_\pi q(\pi)[\pi_{t,f} = u])`.

    Computed where ``q_pi`` (N, P) and ``policies`` (P, T - 1, F) live (numpy or
    cupy); returns one (N, U_f) array per factor on that device.
    """
    xp = array_namespace(q_pi, policies)
    probs = []
    for f, nu in enumerate(n_actions):
        onehot = xp.eye(nu)[policies[:, t, f]]  # (P, U)
        marg = q_pi @ onehot
        probs.append(softmax(alpha * xp.log(marg + LOG_FLOOR), 1))
    return probs


def _sample_actions(probs: list[np.ndarray], mode: str,
                    rng: np.random.Generator | None) -> np.ndarray:
    """Host sampling (inverse CDF with one uniform per agent and factor) or argmax."""
    N = probs[0].shape[0]
    acts = np.zeros((N, len(probs)), dtype=np.int64)
    for f, pu in enumerate(probs):
        if mode == "deterministic":
            acts[:, f] = pu.argmax(axis=1)
        else:
            c = pu.cumsum(axis=1)
            r = rng.random(N)[:, None] * c[:, -1:]
            acts[:, f] = np.minimum((c < r).sum(axis=1), pu.shape[1] - 1)
    return acts


def learn(
    model: GenerativeModel, st: dict[str, Any], obs: Any, actions: Any, X: list[Any], *,
    eta: float = 1.0,
) -> None:
    r"""Accumulate Dirichlet counts after a trial (SPM ``spm_MDP_VB_X``; Da Costa eq. 12).

    With :math:`\bar s_\tau` the Bayesian-model-average posterior over states at
    the end of the trial (``X[f]`` (N, T, S_f)):

    .. math::

        a^m \mathrel{+}= \eta \sum_\tau o^m_\tau \otimes \bar s_\tau \;[a^m > 0], \quad
        b^f_u \mathrel{+}= \eta \sum_{\tau \ge 1} [u_{\tau-1} = u]\,
        \bar s^f_\tau \otimes \bar s^f_{\tau-1} \;[b^f > 0], \quad
        d^f \mathrel{+}= \eta\, \bar s^f_0

    (only entries that are already positive grow: structural zeros stay zero).
    """
    xp, N = st["xp"], st["N"]
    idx = xp.arange(N)
    if st["a"] is not None:
        for m, a in enumerate(st["a"]):
            no = a.shape[1]
            for j in range(model.T):
                o = xp.zeros((N, no), dtype=a.dtype)
                o[idx, obs[:, j, m]] = 1.0
                s = _joint([x[:, None, j] for x in X])[:, 0]
                da = (o[:, :, None] * s[:, None, :]).reshape(a.shape)
                a += eta * da * (a > 0)
    if st["b"] is not None:
        for f, b in enumerate(st["b"]):
            for j in range(1, model.T):
                u = actions[:, j - 1, f]
                db = X[f][:, j, :, None] * X[f][:, j - 1, None, :]
                upd = xp.zeros_like(b)
                upd[idx, :, :, u] = db
                b += eta * upd * (b > 0)
    if st["d"] is not None:
        for f, d in enumerate(st["d"]):
            d += eta * X[f][:, 0] * (d > 0)


# --------------------------------------------------------------------------- agents
def run_trials(
    model: GenerativeModel,
    process: Any = None,
    *,
    n_agents: int = 1,
    n_trials: int = 1,
    beta: float = 1.0,
    alpha: float | None = None,
    tau: float = 4.0,
    n_iter: int = 16,
    eta: float = 1.0,
    epistemic: bool = True,
    novelty: bool = True,
    update_gamma: bool = True,
    action_mode: str | None = None,
    backend: str = "auto",
    dtype: str = "float64",
    random_state: Any = None,
    scheme: str = "predcode",
    clamp: dict[str, Any] | None = None,
    erp: float = 4.0,
    zeta: float = 3.0,
    use_F: bool = True,
) -> dict[str, Any]:
    """Run ``n_agents`` active-inference agents for ``n_trials`` trials at once.

    Three schemes (``scheme``):

    * ``"spm"``: SPM12's ``spm_MDP_VB_X`` (Friston et al. 2017), step by step as
      :class:`predcode.models.spm_mdp.SpmAgent` runs it, the same code as
      :func:`predcode.models.spm_mdp.replay_trials` (checked against SPM to
      5e-15 on ``DEM_demo_MDP_X``): belief reset ``erp``, Occam window ``zeta``,
      γ carried over within a trial, G from the current step on with the joint
      epistemic term and the novelty of ``d``, SPM's log floor. One host (numpy,
      float64) agent after another; it learns ``d`` only (a model with ``a`` or
      ``b`` is refused). Actions are drawn from SPM's joint action distribution
      (one uniform per agent and move).
    * ``"predcode"`` (the default): predcode's batched variant, all agents at once
      on numpy, numba or cupy (float32 or float64), with ``a``/``b``/``d``
      learning; it differs from SPM in each point above (docs: "predcode for SPM
      users", ``spm_MDP_VB_X``) and does not reproduce SPM's numbers.
    * ``"pymdp"``: pymdp 1.0's ``Agent(inference_algo="mmp")`` acting in the process, the
      semantics of :func:`predcode.models.pymdp_mdp.pymdp_replay_trials` (checked against
      pymdp): at each step ``infer_states`` (``n_iter`` Jacobi sweeps of marginal message
      passing over the past window from uniform beliefs, prior ``D``), ``infer_policies``
      (-G of each policy's remaining moves from the current belief: utility plus state
      information gain, ``epistemic=False`` keeps the utility only; :math:`q(\\pi) =
      \\sigma(\\gamma(-G) + \\ln E)` with the fixed :math:`\\gamma = 1/\\beta`), then pymdp's
      ``sample_action`` with ``sampling_mode="full"``: ``action_mode="deterministic"``
      (the default here, as in pymdp) takes the first move of the most probable policy
      (the first on ties, ``argmax``), ``"stochastic"`` samples a policy from
      :math:`\\sigma(\\alpha \\ln q(\\pi))` (pymdp's ``alpha`` = 16 is the default here) with
      the run's numpy random stream (so not JAX's draws) and takes its first move. ``C`` is
      :func:`~predcode.models.pymdp_mdp.pymdp_preferences` (SPM's :math:`\\ln\\sigma(C)`, first
      column). No learning: ``a``/``b``/``d`` are ignored (their expectations ``A``, ``B``,
      ``D`` are used), as are ``tau``, ``eta``, ``novelty``, ``update_gamma``, ``erp``,
      ``zeta`` and ``use_F``. One fused kernel call per time step (``aif_pymdp_step``: all
      agents, all sweeps, the whole window, -G of every policy and q(pi)) on numpy, numba or
      cupy, float32 or float64. Models with one hidden-state factor only (any number of
      modalities): a model with several factors is refused with a one-line
      ``ValidationError`` (use ``pymdp_replay_trials`` for a clamped replay of those).

    With ``scheme="pymdp"``, ``clamp=dict(o=..., u=...)`` replays one clamped trial of each
    of ``N`` agents at once: ``o`` (N, T, M) outcomes and ``u`` (N, T - 1, 1) actions,
    0-based (``n_agents`` is taken from them; leave it at 1 or give N; ``n_trials`` = 1);
    the agents' own choices are recorded as ``choices`` but not fed back.

    ``clamp=dict(o=..., u=..., s=...)`` (``scheme="spm"``) is the replay mode:
    no process; one agent is run on the given outcomes ``o`` (n_trials, T, M),
    0-based, with the actions ``u`` (n_trials, T - 1, F) and optionally the true
    states ``s`` (n_trials, T, F) recorded beside them (the agent's beliefs see
    only the outcomes, as in SPM). SPM's arrays convert as
    ``o = MDP(k).o' - 1``, ``u = MDP(k).u' - 1``, ``s = MDP(k).s' - 1``.

    Each agent holds its own Dirichlet counts (leading batch axis), so learning
    agents diverge as their experience does. The environment ``process`` is a
    generative process (e.g. :class:`predcode.envs.MDPProcess`) with
    ``reset(n, rng) -> (obs (n, M), state)`` and
    ``step(state, actions (n, F), rng) -> (obs, state)``.

    Parameters
    ----------
    beta : float
        Prior rate of the precision over policies (SPM default 1: prior γ = 1).
    alpha : float or None
        Action precision (default None: SPM's 512; pymdp's 16 with ``scheme="pymdp"``).
    tau, n_iter : float, int
        Time constant and iterations of marginal message passing (SPM: 4, 16).
    eta : float
        Learning rate of the Dirichlet counts (SPM default 1).
    epistemic : bool
        ``False``: expected utility only (no ambiguity, no outcome entropy, no
        novelty).
    novelty : bool
        Include the novelty of learned parameters in ``G``.
    action_mode : {"stochastic", "deterministic"} or None
        Default None: ``"stochastic"`` (SPM's), ``"deterministic"`` with ``scheme="pymdp"``
        (pymdp's ``action_selection`` default).
    backend : {"auto", "numpy", "numba", "cupy"}
    random_state : int, Generator or None
    scheme : {"predcode", "spm", "pymdp"}
        See above.
    clamp : dict or None
        Replay mode (``scheme="spm"``): keys ``o``, ``u`` and optionally ``s``.
    erp, zeta, use_F : float, float, bool
        ``scheme="spm"`` only: SPM's ``MDP.erp`` (4) and ``MDP.zeta`` (3);
        ``use_F=False`` drops :math:`F(\\pi)` from :math:`q(\\pi)` (pymdp's semantics,
        with ``update_gamma=False``, which is SPM's ``OPTIONS.gamma = 1``).

    Returns
    -------
    dict
        Host arrays: ``obs`` (n_trials, N, T, M), ``actions`` (n_trials, N, T-1, F),
        ``states`` (true states, n_trials, N, T, F; None when clamped without ``s``),
        ``q_pi`` (n_trials, N, T-1, P) policy posteriors at each decision,
        ``gamma`` (n_trials, N, T-1), ``X`` (list per factor, n_trials, N, T, S_f:
        final state beliefs), ``G`` (n_trials, N, T-1, P, expected free energy,
        smaller is better), and the final counts ``a``, ``b``, ``d``. With
        ``scheme="spm"`` also ``spm``: the records of
        :func:`~predcode.models.spm_mdp.replay_trials` (SPM's names and signs: ``R``,
        ``w``, ``F`` = −F(π), ``G`` = −G(π), ``P``, ``X``, ``x``, ``d`` per trial, ``Fd``)
        with leading axes (n_trials, N). With ``scheme="pymdp"`` also ``neg_efe`` (= -G),
        ``qs``: dict ``(0, t)`` -> (n_trials, N, t + 1, S) the window posteriors of step
        ``t`` (pymdp's ``infer_states`` output; ``X`` is the last step's) and ``choices``
        (n_trials, N, T - 1, 1) the agents' actions (equal to ``actions`` unless clamped);
        ``gamma`` holds the fixed precision.
    """
    owner = "run_trials"
    check_choice(scheme, "scheme", ("predcode", "spm", "pymdp"), owner)
    if alpha is None:
        alpha = 16.0 if scheme == "pymdp" else 512.0
    if action_mode is None:
        action_mode = "deterministic" if scheme == "pymdp" else "stochastic"
    if scheme == "pymdp":
        return _run_trials_pymdp(
            model, process, clamp, n_agents=n_agents, n_trials=n_trials, beta=beta,
            alpha=alpha, n_iter=n_iter, epistemic=epistemic, action_mode=action_mode,
            backend=backend, dtype=dtype, random_state=random_state)
    if scheme == "spm":
        return _run_trials_spm(
            model, process, clamp, n_agents=n_agents, n_trials=n_trials, beta=beta,
            alpha=alpha, tau=tau, n_iter=n_iter, eta=eta, epistemic=epistemic,
            novelty=novelty, update_gamma=update_gamma, action_mode=action_mode,
            backend=backend, dtype=dtype, random_state=random_state, erp=erp, zeta=zeta,
            use_F=use_F)
    if clamp is not None:
        raise ValidationError(f"{owner}.clamp: the replay mode runs SPM's scheme; pass "
                              "scheme='spm' with clamp.")
    if process is None:
        raise ValidationError(f"{owner}.process: expected a generative process (reset/step), "
                              "got None; give one, or clamp=dict(o=..., u=...) with "
                              "scheme='spm'.")
    n_agents = check_int(n_agents, "n_agents", owner)
    n_trials = check_int(n_trials, "n_trials", owner)
    for name, val in (("beta", beta), ("alpha", alpha), ("tau", tau), ("eta", eta)):
        check_param(val, name, owner, low=0)
    n_iter = check_int(n_iter, "n_iter", owner)
    check_choice(action_mode, "action_mode", ("stochastic", "deterministic"), owner)
    check_choice(dtype, "dtype", ("float32", "float64"), owner)
    if not isinstance(model, GenerativeModel):
        raise ValidationError(f"{owner}.model: expected a GenerativeModel from make_model, got "
                              f"{type(model).__name__}.")
    backend = resolve_model_backend(backend, model, owner=owner)
    xp = get_namespace(backend)
    rng = check_random_state(random_state, owner=owner)
    N, T, P, F, M = n_agents, model.T, model.n_policies, len(model.B), len(model.A)
    st = _batched(model, N, xp, dtype)
    lnE = xp.asarray(np.log(model.E + LOG_FLOOR), dtype=dtype)
    V = st["V"]
    n_act = model.n_actions
    # the agent's records stay on the device until the end; the environment's
    # (outcomes, actions, true states: host ints) stay on the host
    rec: dict[str, Any] = {
        "obs": np.zeros((n_trials, N, T, M), dtype=np.int64),
        "actions": np.zeros((n_trials, N, T - 1, F), dtype=np.int64),
        "states": np.zeros((n_trials, N, T, F), dtype=np.int64),
    }
    dev = {
        "q_pi": xp.zeros((n_trials, N, max(T - 1, 1), P)),
        "gamma": xp.zeros((n_trials, N, max(T - 1, 1))),
        "G": xp.zeros((n_trials, N, max(T - 1, 1), P)),
        "X": [xp.zeros((n_trials, N, T, s)) for s in model.n_states],
    }
    for k in range(n_trials):
        o0, state = process.reset(N, rng)
        obs = np.zeros((N, T, M), dtype=np.int64)
        obs[:, 0] = o0
        rec["states"][k, :, 0] = state
        acts = np.zeros((N, T - 1, F), dtype=np.int64)
        obs_x = xp.zeros((N, T, M), dtype=np.int64)
        obs_x[:, 0] = xp.asarray(o0)  # host -> device: the first outcomes (N, M)
        acts_x = xp.zeros((N, T - 1, F), dtype=np.int64)
        mask = xp.ones((N, P), dtype=bool)
        qs = [xp.full((N, P, T, s), 1.0 / s, dtype=dtype) for s in model.n_states]
        for t in range(T):
            qs, Fe = marginal_message_passing(model, st, obs_x, t, qs, n_iter=n_iter, tau=tau,
                                              backend=backend)
            if t < T - 1:
                G, _ = expected_free_energy(model, st, qs, t, epistemic=epistemic,
                                            novelty=novelty and (st["a"] is not None
                                                                 or st["b"] is not None),
                                            backend=backend)
                q_pi, _, gamma = policy_posterior(G, Fe, lnE, beta=beta, n_iter=n_iter,
                                                  update_gamma=update_gamma, mask=mask)
                probs = action_probabilities(q_pi, V, t, n_act, alpha=alpha)
                u, o, state = _environment_step(probs, process, state, action_mode, rng)
                acts[:, t] = u
                obs[:, t + 1] = o
                rec["states"][k, :, t + 1] = state
                # host -> device: the actions and outcomes of this step, one (N, F + M) copy
                uo = xp.asarray(np.concatenate([u, o], axis=1))
                acts_x[:, t], obs_x[:, t + 1] = uo[:, :F], uo[:, F:]
                dev["q_pi"][k, :, t] = q_pi
                dev["gamma"][k, :, t] = gamma
                dev["G"][k, :, t] = G
                mask &= xp.all(V[None, :, t, :] == acts_x[:, None, t, :], axis=-1)
            else:
                q_pi = (mask / mask.sum(axis=1, keepdims=True)).astype(dtype)
        # Bayesian model average over (surviving) policies of the final beliefs
        w = q_pi[:, :, None, None]
        X = [xp.sum(w * q, axis=1) for q in qs]
        for f in range(F):
            dev["X"][f][k] = X[f]
        rec["obs"][k], rec["actions"][k] = obs, acts
        if st["a"] is not None or st["b"] is not None or st["d"] is not None:
            learn(model, st, obs_x, acts_x, X, eta=eta)
            _refresh(model, st, dtype)
    # device -> host, once, at the end
    rec["q_pi"], rec["gamma"], rec["G"] = (to_numpy(dev[k]) for k in ("q_pi", "gamma", "G"))
    rec["X"] = [to_numpy(x) for x in dev["X"]]
    for key in ("a", "b", "d"):
        rec[key] = None if st[key] is None else [to_numpy(x) for x in st[key]]
    rec["backend"] = backend
    return rec


def pymdp_step_arrays(model: GenerativeModel, xp: Any = np, dtype: Any = "float64",
                      C: list[Any] | None = None) -> dict[str, Any]:
    """The model arrays of kernel ``aif_pymdp_step`` (one factor), made once per run.

    Host float64 arithmetic as :func:`~predcode.models.pymdp_mdp.pymdp_replay_trials` does
    it, then one C-contiguous copy per array to ``xp``'s device in ``dtype``. Keys: the
    kernel's ``lnA``, ``AB``, ``HB``, ``C``, ``BT``, ``Bb``, ``lnD``, ``V``, ``lnE`` and
    ``offsets`` (M,), the first row of each modality in the stacked outcome axis (host
    ints; ``orow = o + offsets``); ``Vh`` the host policies (P, T - 1).
    """
    eps = PYMDP_EPS
    A = [np.asarray(a, float) / np.asarray(a, float).sum(axis=0, keepdims=True)
         for a in model.A]
    As = np.concatenate(A, axis=0)
    HA = sum(-np.where(a > 0, a * np.log(np.maximum(a, eps)), 0.0).sum(axis=0) for a in A)
    C = pymdp_preferences(model) if C is None else [np.asarray(c, float) for c in C]
    B = np.asarray(model.B[0], float)
    Bn = B / np.maximum(B.sum(axis=1, keepdims=True), eps)
    Vh = np.ascontiguousarray(np.asarray(model.policies)[:, :, 0], dtype=np.int64)

    def dev(x: Any, dt: Any = dtype) -> Any:
        x = np.ascontiguousarray(x, dtype=dt)
        return x if xp is np else xp.asarray(x)

    return {
        "lnA": dev(np.log(np.maximum(As, eps))),
        "AB": dev(np.matmul(As, B.transpose(2, 0, 1)).transpose(0, 2, 1)),
        "HB": dev(np.matmul(HA, B.transpose(2, 0, 1))),
        "C": dev(np.concatenate(C)), "BT": dev(B.transpose(2, 1, 0)),
        "Bb": dev(Bn.transpose(2, 0, 1)),
        "lnD": dev(np.log(np.maximum(np.asarray(model.D[0], float), eps))),
        "V": dev(Vh, np.int64), "lnE": dev(np.log(np.maximum(np.asarray(model.E, float), eps))),
        "offsets": np.concatenate([[0], np.cumsum([a.shape[0] for a in A])[:-1]]).astype(
            np.int64),
        "Vh": Vh,
    }


def _run_trials_pymdp(model: GenerativeModel, process: Any, clamp: dict[str, Any] | None, *,
                      n_agents: int, n_trials: int, beta: float, alpha: float, n_iter: int,
                      epistemic: bool, action_mode: str, backend: str, dtype: str,
                      random_state: Any) -> dict[str, Any]:
    """``run_trials(scheme="pymdp")``: pymdp's agents, one ``aif_pymdp_step`` call per step."""
    owner = "run_trials"
    if not isinstance(model, GenerativeModel):
        raise ValidationError(f"{owner}.model: expected a GenerativeModel from make_model, got "
                              f"{type(model).__name__}.")
    n_agents = check_int(n_agents, "n_agents", owner)
    n_trials = check_int(n_trials, "n_trials", owner)
    check_param(beta, "beta", owner, low=0)
    check_param(alpha, "alpha", owner, low=0)
    n_iter = check_int(n_iter, "n_iter", owner)
    check_choice(action_mode, "action_mode", ("stochastic", "deterministic"), owner)
    check_choice(dtype, "dtype", ("float32", "float64"), owner)
    T, M, F = model.T, len(model.A), len(model.B)
    if F != 1:
        raise ValidationError(f"{owner}.model: scheme='pymdp' runs models with one hidden-state "
                              f"factor, got {F}; use scheme='predcode', or pymdp_replay_trials "
                              "for a clamped replay.")
    if clamp is not None:
        if process is not None:
            raise ValidationError(f"{owner}.process: give a process or clamp, not both "
                                  "(clamp replays given trials).")
        if not isinstance(clamp, dict) or set(clamp) != {"o", "u"}:
            raise ValidationError(f"{owner}.clamp: scheme='pymdp' expects dict(o=..., u=...), got "
                                  f"{clamp if not isinstance(clamp, dict) else sorted(clamp)}.")
        co, cu = np.asarray(clamp["o"]), np.asarray(clamp["u"])
        if co.ndim != 3 or co.shape[1:] != (T, M) or not np.issubdtype(co.dtype, np.integer):
            raise ValidationError(f"{owner}.clamp['o']: expected ints of shape (N, {T}, {M}), "
                                  f"got {co.dtype} {co.shape}.")
        if cu.shape != (co.shape[0], T - 1, 1) or not np.issubdtype(cu.dtype, np.integer):
            raise ValidationError(f"{owner}.clamp['u']: expected ints of shape "
                                  f"({co.shape[0]}, {T - 1}, 1), got {cu.dtype} {cu.shape}.")
        for m, no in enumerate(model.n_outcomes):
            if co[..., m].min() < 0 or co[..., m].max() >= no:
                raise ValidationError(f"{owner}.clamp['o'][..., {m}]: outcomes of modality {m} "
                                      f"must lie in 0..{no - 1}.")
        if cu.size and (cu.min() < 0 or cu.max() >= model.n_actions[0]):
            raise ValidationError(f"{owner}.clamp['u']: actions must lie in "
                                  f"0..{model.n_actions[0] - 1}.")
        if n_agents not in (1, co.shape[0]):
            raise ValidationError(f"{owner}.n_agents: clamp holds {co.shape[0]} agents' trials, "
                                  f"got n_agents={n_agents}; leave it at 1 or match.")
        if n_trials != 1:
            raise ValidationError(f"{owner}.n_trials: clamp holds one trial per agent; use "
                                  f"n_trials=1, got {n_trials}.")
        n_agents = co.shape[0]
    elif process is None:
        raise ValidationError(f"{owner}.process: expected a generative process (reset/step), "
                              "got None; give one, or clamp=dict(o=..., u=...).")
    backend = resolve_model_backend(backend, model, owner=owner)
    xp = get_namespace(backend)
    step = get_kernel("aif_pymdp_step", backend)
    rng = check_random_state(random_state, owner=owner)
    N, P, S = n_agents, model.n_policies, model.n_states[0]
    Tm = max(T - 1, 1)
    k_ = pymdp_step_arrays(model, xp, dtype)
    off, Vh = k_["offsets"], k_["Vh"]
    kargs = (k_["lnA"], k_["AB"], k_["HB"], k_["C"], k_["BT"], k_["Bb"], k_["lnD"], k_["V"],
             k_["lnE"], 1.0 / beta, 1.0 if epistemic else 0.0, n_iter)
    rec: dict[str, Any] = {
        "obs": np.zeros((n_trials, N, T, M), dtype=np.int64),
        "actions": np.zeros((n_trials, N, T - 1, 1), dtype=np.int64),
        "states": None if clamp is not None else np.zeros((n_trials, N, T, 1), dtype=np.int64),
        "choices": np.zeros((n_trials, N, T - 1, 1), dtype=np.int64),
    }
    dev = {"q_pi": xp.zeros((n_trials, N, Tm, P), dtype=dtype),
           "neg_efe": xp.zeros((n_trials, N, Tm, P), dtype=dtype),
           "qs": {(0, t): xp.zeros((n_trials, N, t + 1, S), dtype=dtype) for t in range(T)}}
    for k in range(n_trials):
        if clamp is None:
            o, state = process.reset(N, rng)
            rec["states"][k, :, 0] = state
        else:
            o = co[:, 0]
        rec["obs"][k, :, 0] = o
        orow = np.zeros((N, T, M), dtype=np.int64)
        orow[:, 0] = o + off
        u = np.zeros((N, Tm), dtype=np.int64)
        orow_x, u_x = (orow, u) if xp is np else (xp.asarray(orow), xp.asarray(u))
        for t in range(T):
            qs, neg, qp = step(orow_x, u_x, t, *kargs)
            dev["qs"][0, t][k] = qs
            if t == T - 1:
                break
            dev["q_pi"][k, :, t], dev["neg_efe"][k, :, t] = qp, neg
            if action_mode == "deterministic":
                pol = to_numpy(xp.argmax(qp, axis=1))  # device -> host: (N,) ints
            else:
                lp = alpha * np.log(np.maximum(to_numpy(qp).astype(np.float64), PYMDP_EPS))
                c = np.cumsum(np.exp(lp - lp.max(axis=1, keepdims=True)), axis=1)
                r = rng.random(N)[:, None] * c[:, -1:]
                pol = np.minimum((c < r).sum(axis=1), P - 1)
            a = Vh[pol, t]
            rec["choices"][k, :, t, 0] = a
            if clamp is None:
                o, state = process.step(state, a[:, None], rng)
                rec["states"][k, :, t + 1] = state
            else:
                a, o = cu[:, t, 0], co[:, t + 1]
            rec["actions"][k, :, t, 0] = a
            rec["obs"][k, :, t + 1] = o
            u[:, t] = a
            orow[:, t + 1] = o + off
            if xp is not np:  # host -> device: this step's action and outcomes
                u_x[:, t] = xp.asarray(a)
                orow_x[:, t + 1] = xp.asarray(orow[:, t + 1])
    rec["q_pi"], rec["neg_efe"] = to_numpy(dev["q_pi"]), to_numpy(dev["neg_efe"])
    rec["G"] = -rec["neg_efe"]
    rec["gamma"] = np.full((n_trials, N, Tm), 1.0 / beta)
    rec["qs"] = {key: to_numpy(v) for key, v in dev["qs"].items()}
    rec["X"] = [rec["qs"][0, T - 1]]
    rec.update(a=None, b=None, d=None, backend=backend, scheme="pymdp")
    return rec


def _environment_step(probs: list[Any], process: Any, state: Any, mode: str,
                      rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, Any]:
    """The one place where the agent meets its (host) environment in a step.

    Device -> host: the action probabilities of this step, one (N, sum U_f)
    copy; the action is sampled on the host with the run's one random stream
    (so every backend draws the same actions), the process steps on the host.
    Returns host actions (N, F), outcomes (N, M) and the process state.
    """
    sizes = [p.shape[1] for p in probs]
    xp = array_namespace(*probs)
    flat = to_numpy(xp.concatenate(probs, axis=1))
    host = np.split(flat, np.cumsum(sizes)[:-1], axis=1)
    u = _sample_actions(host, mode, rng)
    o, state = process.step(state, u, rng)
    return u, np.asarray(o, dtype=np.int64), state


def _run_trials_spm(model: GenerativeModel, process: Any, clamp: dict[str, Any] | None, *,
                    n_agents: int, n_trials: int, beta: float, alpha: float, tau: float,
                    n_iter: int, eta: float, epistemic: bool, novelty: bool,
                    update_gamma: bool, action_mode: str, backend: str, dtype: str,
                    random_state: Any, erp: float, zeta: float,
                    use_F: bool) -> dict[str, Any]:
    """``run_trials(scheme="spm")``: :class:`~predcode.models.spm_mdp.SpmAgent` s driven
    by a process (sampled outcomes and actions) or by clamped trials (the replay mode)."""
    owner = "run_trials"
    n_agents = check_int(n_agents, "n_agents", owner)
    n_trials = check_int(n_trials, "n_trials", owner)
    for name, val in (("beta", beta), ("alpha", alpha), ("tau", tau), ("eta", eta),
                      ("erp", erp), ("zeta", zeta)):
        check_param(val, name, owner, low=0)
    n_iter = check_int(n_iter, "n_iter", owner)
    check_choice(action_mode, "action_mode", ("stochastic", "deterministic"), owner)
    if backend not in ("auto", "numpy"):
        raise ValidationError(f"{owner}.backend: scheme='spm' runs on the host with numpy, got "
                              f"{backend!r}; use backend='numpy' (or 'auto'), or "
                              "scheme='predcode' for numba/cupy.")
    if dtype != "float64":
        raise ValidationError(f"{owner}.dtype: scheme='spm' runs in float64, got {dtype!r}; "
                              "use dtype='float64', or scheme='predcode'.")
    kw = dict(tau=tau, erp=erp, zeta=zeta, beta=beta, alpha=alpha, n_iter=n_iter,
              use_F=use_F, fixed_gamma=not update_gamma, novelty=novelty)
    if clamp is not None:
        if process is not None:
            raise ValidationError(f"{owner}.process: give a process or clamp, not both "
                                  "(clamp replays given trials).")
        if not isinstance(clamp, dict) or not {"o", "u"} <= set(clamp) or not (
                set(clamp) <= {"o", "u", "s"}):
            raise ValidationError(f"{owner}.clamp: expected dict(o=..., u=...[, s=...]), got "
                                  f"{clamp if not isinstance(clamp, dict) else sorted(clamp)}.")
        if n_agents != 1:
            raise ValidationError(f"{owner}.n_agents: clamped trials are one agent's; use "
                                  f"n_agents=1, got {n_agents}.")
        if not epistemic:
            raise ValidationError(f"{owner}.epistemic: the replay mode runs SPM's agent with "
                                  "its epistemic terms; use epistemic=True.")
        o, u = np.asarray(clamp["o"]), np.asarray(clamp["u"])
        if o.ndim == 3 and n_trials not in (1, o.shape[0]):
            raise ValidationError(f"{owner}.n_trials: clamp['o'] holds {o.shape[0]} trials, "
                                  f"got n_trials={n_trials}; leave it at 1 or match.")
        rep = replay_trials(model, o, u, **kw, learn=eta > 0, eta=eta)
        T, F = model.T, len(model.B)
        s = clamp.get("s")
        if s is not None:
            s = np.asarray(s)
            if s.shape != (o.shape[0], T, F):
                raise ValidationError(f"{owner}.clamp['s']: expected ints of shape "
                                      f"({o.shape[0]}, {T}, {F}), got {s.shape}.")
            s = s[:, None].astype(np.int64)
        per = {key: _insert_agent_axis(val) for key, val in rep.items()}
        return _spm_records(model, o[:, None].astype(np.int64), u[:, None].astype(np.int64),
                            s, per, [None if rep["d"] is None else [x[-1] for x in rep["d"]]])
    if not isinstance(model, GenerativeModel):
        raise ValidationError(f"{owner}.model: expected a GenerativeModel from make_model, got "
                              f"{type(model).__name__}.")
    if process is None:
        raise ValidationError(f"{owner}.process: expected a generative process (reset/step), "
                              "got None; give one, or clamp=dict(o=..., u=...).")
    rng = check_random_state(random_state, owner=owner)
    N, T, F, M = n_agents, model.T, len(model.B), len(model.A)
    agents = [SpmAgent(model, **kw, epistemic=epistemic, learn=eta > 0, eta=eta, owner=owner)
              for _ in range(N)]
    obs = np.zeros((n_trials, N, T, M), dtype=np.int64)
    acts = np.zeros((n_trials, N, T - 1, F), dtype=np.int64)
    states = np.zeros((n_trials, N, T, F), dtype=np.int64)
    recs: list[list[dict[str, Any]]] = [[] for _ in range(N)]
    for k in range(n_trials):
        o, state = process.reset(N, rng)
        obs[k, :, 0], states[k, :, 0] = o, state
        for a in agents:
            a.begin_trial()
        for t in range(T):
            Pu = [a.step(t, obs[k, n, t]) for n, a in enumerate(agents)]
            if t == T - 1:
                break
            acts[k, :, t] = _sample_joint(Pu, action_mode, rng)
            o, state = process.step(state, acts[k, :, t], rng)
            obs[k, :, t + 1], states[k, :, t + 1] = o, state
        for n, a in enumerate(agents):
            recs[n].append(a.end_trial())
    stacked = [stack_records(r) for r in recs]
    per: dict[str, Any] = {}
    for key in ("R", "w", "F", "G", "Fd"):
        per[key] = np.stack([r[key] for r in stacked], axis=1)
    for key in ("P", "X", "x", "d"):
        per[key] = None if stacked[0][key] is None else [
            np.stack([r[key][f] for r in stacked], axis=1) for f in range(len(stacked[0][key]))]
    final_d = None if agents[0].d is None else [np.stack([a.d[f] for a in agents])
                                                for f in range(F)]
    return _spm_records(model, obs, acts, states, per, [final_d])


def _insert_agent_axis(val: Any) -> Any:
    if val is None:
        return None
    if isinstance(val, list):
        return [x[:, None] for x in val]
    return val[:, None]


def _spm_records(model: GenerativeModel, obs: np.ndarray, acts: np.ndarray, states: Any,
                 per: dict[str, Any], final_d: list[Any]) -> dict[str, Any]:
    """run_trials's records from SPM's per-trial records ``per`` (leading n_trials, N)."""
    d = final_d[0]
    if d is not None and d[0].ndim == 1:  # clamped: one agent
        d = [x[None] for x in d]
    Tm = max(model.T - 1, 1)
    return {
        "obs": obs, "actions": acts, "states": states,
        "q_pi": np.swapaxes(per["R"][..., :Tm], -1, -2),
        "gamma": per["w"][..., :Tm],
        "G": -np.swapaxes(per["G"][..., :Tm], -1, -2),
        "X": [np.swapaxes(x, -1, -2) for x in per["X"]],
        "a": None, "b": None, "d": d, "backend": "numpy", "scheme": "spm", "spm": per,
    }


def _sample_joint(Pu: list[np.ndarray], mode: str, rng: np.random.Generator) -> np.ndarray:
    """One joint action per agent from SPM's joint action probabilities (shape ``Nu`` each):
    inverse CDF with one uniform per agent, or the most probable (``deterministic``)."""
    shape = Pu[0].shape
    flat = np.stack([p.ravel() for p in Pu])
    if mode == "deterministic":
        idx = flat.argmax(axis=1)
    else:
        c = flat.cumsum(axis=1)
        r = rng.random(flat.shape[0])[:, None] * c[:, -1:]
        idx = np.minimum((c < r).sum(axis=1), flat.shape[1] - 1)
    return np.stack(np.unravel_index(idx, shape), axis=1).astype(np.int64)
