r"""Discrete-state active inference with SPM's semantics (``spm_MDP_VB_X``).

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

import itertools
import string
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..backend import get_namespace, resolve_backend, to_numpy
from ..exceptions import ValidationError
from ..kernels import get_kernel
from ..kernels.common import LOG_FLOOR
from ..validation import check_choice, check_int, check_param, check_random_state

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
    "learn",
    "run_trials",
]

_OWNER = "GenerativeModel"
_TOL = 1e-6


# --------------------------------------------------------------------------- helpers
def safe_log(x: Any) -> Any:
    r"""SPM's safe logarithm :math:`\ln(x + e^{-16})`: finite at zero probabilities."""
    xp = get_namespace("cupy") if type(x).__module__.startswith("cupy") else np
    return xp.log(x + LOG_FLOOR)


def softmax(x: Any, axis: int = -1) -> Any:
    """Normalised exponential along ``axis`` (shifted by the maximum, so no overflow)."""
    xp = get_namespace("cupy") if type(x).__module__.startswith("cupy") else np
    e = xp.exp(x - xp.max(x, axis=axis, keepdims=True))
    return e / xp.sum(e, axis=axis, keepdims=True)


def dirichlet_expectation(a: Any) -> Any:
    """Expected probabilities of Dirichlet counts: ``a / a.sum(axis=0)`` (SPM's ``spm_norm``)."""
    xp = get_namespace("cupy") if type(a).__module__.startswith("cupy") else np
    tot = xp.sum(a, axis=0, keepdims=True)
    return a / xp.where(tot > 0, tot, 1.0)


def novelty_weights(a: Any) -> Any:
    r"""Novelty weights :math:`W = \tfrac12 (a^{\odot-1} - a_0^{\odot-1})` of Dirichlet counts.

    :math:`a_0` sums ``a`` over its first (outcome) axis. ``W`` is non-negative,
    large where counts are few, and zero where ``a`` is zero (an impossible
    entry is never novel). Da Costa et al. (2020), eq. 8; SPM's ``spm_wnorm``
    with the opposite sign convention.
    """
    xp = get_namespace("cupy") if type(a).__module__.startswith("cupy") else np
    pos = a > 0
    safe = xp.where(pos, a, 1.0)
    a0 = xp.sum(a, axis=0, keepdims=True)
    a0 = xp.where(a0 > 0, a0, 1.0)
    return xp.where(pos, 0.5 * (1.0 / safe - 1.0 / a0), 0.0)


def all_policies(n_actions: Sequence[int], T: int) -> np.ndarray:
    """Every sequence of ``T - 1`` actions: an int array (P, T - 1, F).

    ``n_actions[f]`` is the number of actions of factor ``f`` (1 for an
    uncontrolled factor).
    """
    per_step = list(itertools.product(*[range(int(u)) for u in n_actions]))
    seqs = list(itertools.product(per_step, repeat=T - 1))
    return np.asarray(seqs, dtype=np.int64).reshape(len(seqs), T - 1, len(n_actions))


# --------------------------------------------------------------------------- model
@dataclass(frozen=True)
class GenerativeModel:
    r"""A validated POMDP generative model (host numpy arrays); build with :func:`make_model`.

    Attributes
    ----------
    A, B, C, D : tuple of ndarray
        Likelihoods, transitions, log preferences (O_m, T), initial states.
    E : ndarray
        Policy prior (P,), sums to one.
    policies : ndarray of int
        (P, T - 1, F) action of each factor at each move.
    T : int
        Number of time steps (outcomes) in a trial.
    a, b, d : tuple of ndarray or None
        Dirichlet concentration parameters (learned when present).
    """

    A: tuple[np.ndarray, ...]
    B: tuple[np.ndarray, ...]
    C: tuple[np.ndarray, ...]
    D: tuple[np.ndarray, ...]
    E: np.ndarray
    policies: np.ndarray
    T: int
    a: tuple[np.ndarray, ...] | None = None
    b: tuple[np.ndarray, ...] | None = None
    d: tuple[np.ndarray, ...] | None = None
    names: dict[str, Any] = field(default_factory=dict, compare=False)

    @property
    def n_states(self) -> tuple[int, ...]:
        """Number of states of each hidden factor."""
        return tuple(d.shape[0] for d in self.D)

    @property
    def n_outcomes(self) -> tuple[int, ...]:
        """Number of outcomes of each modality."""
        return tuple(a.shape[0] for a in self.A)

    @property
    def n_actions(self) -> tuple[int, ...]:
        """Number of actions of each factor."""
        return tuple(b.shape[2] for b in self.B)

    @property
    def n_policies(self) -> int:
        """Number of policies."""
        return int(self.policies.shape[0])


def _as_list(x: Any, name: str) -> list[np.ndarray] | None:
    if x is None:
        return None
    if isinstance(x, np.ndarray) or np.isscalar(x):
        x = [x]
    if not isinstance(x, (list, tuple)):
        raise ValidationError(
            f"{_OWNER}.{name}: expected an array or a list of arrays (one per "
            f"{'factor' if name in 'BDbd' else 'modality'}), got {type(x).__name__}.")
    out = []
    for i, v in enumerate(x):
        arr = np.asarray(to_numpy(v), dtype=np.float64)
        if not np.all(np.isfinite(arr)):
            raise ValidationError(f"{_OWNER}.{name}[{i}]: contains NaN or infinite values.")
        out.append(arr)
    return out


def _check_columns(arr: np.ndarray, name: str, what: str) -> None:
    if np.any(arr < 0):
        idx = tuple(int(i) for i in np.argwhere(arr < 0)[0])
        raise ValidationError(f"{_OWNER}.{name}: probabilities must be >= 0; entry {idx} is "
                              f"{arr[idx]!r}.")
    sums = arr.sum(axis=0)
    if arr.ndim == 1:
        if abs(sums - 1.0) > _TOL:
            raise ValidationError(f"{_OWNER}.{name}: must sum to 1, sums to {sums:.6g}; "
                                  f"normalise with {name} / {name}.sum().")
        return
    bad = np.abs(sums - 1.0) > _TOL
    if np.any(bad):
        idx = tuple(int(i) for i in np.argwhere(bad)[0])
        raise ValidationError(
            f"{_OWNER}.{name}: every column P(. | {what}) must sum to 1 over axis 0; the "
            f"column at index {idx} of the remaining axes sums to {sums[idx]:.6g}. Normalise "
            f"with {name.split('[')[0]}[i] / {name.split('[')[0]}[i].sum(axis=0).")


def make_model(
    A: Any,
    B: Any,
    C: Any = None,
    D: Any = None,
    E: Any = None,
    policies: Any = None,
    T: int | None = None,
    *,
    a: Any = None,
    b: Any = None,
    d: Any = None,
) -> GenerativeModel:
    r"""Validate arrays and build a :class:`GenerativeModel`.

    Parameters
    ----------
    A : array or list of arrays
        ``A[m]`` has shape (O_m, S_1, ..., S_F); columns sum to one.
    B : array or list of arrays
        ``B[f]`` has shape (S_f, S_f, U_f) (a 2-d array means one action).
    C : array or list of arrays, optional
        ``C[m]`` of shape (O_m,) or (O_m, T): log preferences (default zeros).
    D : array or list of arrays, optional
        ``D[f]`` of shape (S_f,) summing to one (default uniform).
    E : array, optional
        Policy prior (P,) (default uniform); normalised to sum to one.
    policies : array of int, optional
        (P, T - 1, F) or, for one factor, (P, T - 1); default every sequence.
    T : int, optional
        Time steps per trial; default ``policies.shape[1] + 1`` (or 2).
    a, b, d : optional
        Dirichlet counts shaped like ``A``, ``B``, ``D``; when given they
        replace ``A``, ``B``, ``D`` by their expectations and are learned.

    Raises
    ------
    ValidationError
        A wrong shape, unnormalised column, negative entry, action out of range
        or mismatched factor/modality count; the message names the array, the
        factor or modality index and the entry to fix.
    """
    A_l, B_l = _as_list(A, "A"), _as_list(B, "B")
    a_l, b_l, d_l = _as_list(a, "a"), _as_list(b, "b"), _as_list(d, "d")
    if a_l is not None:
        if len(a_l) != len(A_l):
            raise ValidationError(f"{_OWNER}.a: has {len(a_l)} modalities but A has "
                                  f"{len(A_l)}; give one count array per modality.")
        for m, (cnt, lik) in enumerate(zip(a_l, A_l, strict=True)):
            if cnt.shape != lik.shape or np.any(cnt < 0):
                raise ValidationError(f"{_OWNER}.a[{m}]: expected non-negative counts of "
                                      f"shape {lik.shape} (like A[{m}]), got shape {cnt.shape}.")
        A_l = [dirichlet_expectation(cnt) for cnt in a_l]
    if b_l is not None:
        if len(b_l) != len(B_l):
            raise ValidationError(f"{_OWNER}.b: has {len(b_l)} factors but B has {len(B_l)}.")
        b_l = [cnt[:, :, None] if cnt.ndim == 2 else cnt for cnt in b_l]
        B_l = [bb[:, :, None] if bb.ndim == 2 else bb for bb in B_l]
        for f, (cnt, tr) in enumerate(zip(b_l, B_l, strict=True)):
            if cnt.shape != tr.shape or np.any(cnt < 0):
                raise ValidationError(f"{_OWNER}.b[{f}]: expected non-negative counts of "
                                      f"shape {tr.shape} (like B[{f}]), got shape {cnt.shape}.")
        B_l = [dirichlet_expectation(cnt) for cnt in b_l]
    F = len(B_l)
    B_l = [bb[:, :, None] if bb.ndim == 2 else bb for bb in B_l]
    for f, bb in enumerate(B_l):
        if bb.ndim != 3 or bb.shape[0] != bb.shape[1]:
            raise ValidationError(
                f"{_OWNER}.B[{f}]: expected shape (S_{f}, S_{f}, n_actions) with square "
                f"slices, got {bb.shape}.")
        _check_columns(bb, f"B[{f}]", f"state, action of factor {f}")
    ns = tuple(bb.shape[0] for bb in B_l)
    for m, lik in enumerate(A_l):
        if lik.shape[1:] != ns:
            raise ValidationError(
                f"{_OWNER}.A[{m}]: expected shape (n_outcomes, {', '.join(map(str, ns))}) for "
                f"{F} hidden factor(s) of sizes {ns} (from B), got {lik.shape}; A needs one "
                f"axis per factor, in the order of B.")
        _check_columns(lik, f"A[{m}]", "hidden states")
    if d_l is not None:
        if len(d_l) != F:
            raise ValidationError(f"{_OWNER}.d: has {len(d_l)} factors but B has {F}.")
        for f, cnt in enumerate(d_l):
            if cnt.shape != (ns[f],) or np.any(cnt < 0) or cnt.sum() <= 0:
                raise ValidationError(f"{_OWNER}.d[{f}]: expected positive counts of shape "
                                      f"({ns[f]},), got {cnt.shape}.")
        D_l = [cnt / cnt.sum() for cnt in d_l]
    else:
        D_l = _as_list(D, "D") if D is not None else [np.full(n, 1.0 / n) for n in ns]
    if len(D_l) != F:
        raise ValidationError(f"{_OWNER}.D: has {len(D_l)} factors but B has {F}; give one "
                              f"initial-state vector per factor.")
    for f, dd in enumerate(D_l):
        if dd.shape != (ns[f],):
            raise ValidationError(f"{_OWNER}.D[{f}]: expected shape ({ns[f]},) (B[{f}] has "
                                  f"{ns[f]} states), got {dd.shape}.")
        _check_columns(dd, f"D[{f}]", "nothing")
    if policies is None:
        T = 2 if T is None else check_int(T, "T", _OWNER)
        V = all_policies([bb.shape[2] for bb in B_l], T)
    else:
        V = np.asarray(to_numpy(policies))
        if V.ndim == 2 and F == 1:
            V = V[:, :, None]
        if V.ndim != 3 or V.shape[2] != F or not np.issubdtype(V.dtype, np.integer):
            raise ValidationError(
                f"{_OWNER}.policies: expected an int array (n_policies, T - 1, {F}) (one "
                f"action per factor and move), got {V.dtype} {V.shape}.")
        if T is None:
            T = V.shape[1] + 1
        T = check_int(T, "T", _OWNER)
        if V.shape[1] != T - 1:
            raise ValidationError(f"{_OWNER}.policies: expected {T - 1} moves for T={T}, "
                                  f"got {V.shape[1]}.")
        for f in range(F):
            nu = B_l[f].shape[2]
            if V[:, :, f].size and (V[:, :, f].min() < 0 or V[:, :, f].max() >= nu):
                bad = int(V[:, :, f].max()) if V[:, :, f].max() >= nu else int(V[:, :, f].min())
                raise ValidationError(
                    f"{_OWNER}.policies[:, :, {f}]: uses action {bad} but B[{f}] has {nu} "
                    f"action(s) (its shape[2]); valid actions are 0..{nu - 1}.")
    P = V.shape[0]
    if C is None:
        C_l = [np.zeros(lik.shape[0]) for lik in A_l]
    else:
        C_l = _as_list(C, "C")
    if len(C_l) != len(A_l):
        raise ValidationError(f"{_OWNER}.C: has {len(C_l)} modalities but A has {len(A_l)}.")
    for m, c in enumerate(C_l):
        if c.ndim == 1:
            c = np.repeat(c[:, None], T, axis=1)
        if c.shape != (A_l[m].shape[0], T):
            raise ValidationError(f"{_OWNER}.C[{m}]: expected shape ({A_l[m].shape[0]},) or "
                                  f"({A_l[m].shape[0]}, {T}), got {C_l[m].shape}.")
        C_l[m] = c
    if E is None:
        E_arr = np.full(P, 1.0 / P)
    else:
        E_arr = np.asarray(to_numpy(E), dtype=np.float64)
        if E_arr.shape != (P,) or np.any(E_arr < 0) or E_arr.sum() <= 0:
            raise ValidationError(f"{_OWNER}.E: expected non-negative weights of shape ({P},) "
                                  f"(one per policy), got {E_arr.shape}.")
        E_arr = E_arr / E_arr.sum()
    return GenerativeModel(
        A=tuple(A_l), B=tuple(B_l), C=tuple(C_l), D=tuple(D_l), E=E_arr,
        policies=V.astype(np.int64), T=int(T),
        a=None if a_l is None else tuple(a_l), b=None if b_l is None else tuple(b_l),
        d=None if d_l is None else tuple(d_l))


# --------------------------------------------------------------------------- batched state
def batched_arrays(model: GenerativeModel, n_agents: int = 1, *, backend: str = "numpy",
                   dtype: str = "float64") -> dict[str, Any]:
    """The per-agent arrays the inference functions take (``st``), for step-by-step use.

    Keys: ``A``, ``B``, ``D`` (expectations), ``lnA``, ``lnD``, ``rB`` (normalised
    transposed transitions), ``H`` (outcome entropies), ``Wa``/``Wb`` (novelty
    weights), ``lnC`` and the counts ``a``, ``b``, ``d``, each with a leading
    agent axis; ``xp`` is the array namespace.
    """
    backend = resolve_backend(backend, owner="batched_arrays")
    return _batched(model, check_int(n_agents, "n_agents", "batched_arrays"),
                    get_namespace(backend), dtype)


def _batched(model: GenerativeModel, N: int, xp: Any, dtype: Any) -> dict[str, Any]:
    """Per-agent copies (leading axis N) of the arrays the agent uses."""

    def rep(x: np.ndarray) -> Any:
        return xp.asarray(np.broadcast_to(x, (N,) + x.shape).copy(), dtype=dtype)

    st: dict[str, Any] = {"xp": xp, "N": N}
    st["a"] = None if model.a is None else [rep(x) for x in model.a]
    st["b"] = None if model.b is None else [rep(x) for x in model.b]
    st["d"] = None if model.d is None else [rep(x) for x in model.d]
    _refresh(model, st, dtype)
    return st


def _refresh(model: GenerativeModel, st: dict[str, Any], dtype: Any) -> None:
    """Recompute expectations, logs, entropies and novelty weights from (learned) counts."""
    xp, N = st["xp"], st["N"]

    def rep(x: np.ndarray) -> Any:
        return xp.asarray(np.broadcast_to(x, (N,) + x.shape).copy(), dtype=dtype)

    def norm0(x: Any) -> Any:  # normalise axis 1 (axis 0 is the batch)
        tot = xp.sum(x, axis=1, keepdims=True)
        return x / xp.where(tot > 0, tot, 1.0)

    A = [norm0(x) for x in st["a"]] if st["a"] is not None else [rep(x) for x in model.A]
    B = [norm0(x) for x in st["b"]] if st["b"] is not None else [rep(x) for x in model.B]
    if st["d"] is not None:
        D = [x / xp.sum(x, axis=1, keepdims=True) for x in st["d"]]
    else:
        D = [rep(x) for x in model.D]
    st["A"], st["B"], st["D"] = A, B, D
    st["lnA"] = [xp.log(x + LOG_FLOOR) for x in A]
    st["lnD"] = [xp.log(x + LOG_FLOOR) for x in D]
    # forward (B) and backward (normalised B transpose) messages, SPM's sB and rB
    st["rB"] = [norm0(xp.swapaxes(x, 1, 2)) for x in B]
    S = int(np.prod(model.n_states))
    st["Aflat"] = [x.reshape(N, x.shape[1], S) for x in A]
    st["H"] = [-xp.sum(x * xp.log(x + LOG_FLOOR), axis=1) for x in st["Aflat"]]
    if st["a"] is not None:
        st["Wa"] = [xp.moveaxis(novelty_weights(xp.moveaxis(x, 0, -1)), -1, 0)
                    .reshape(N, x.shape[1], S) for x in st["a"]]
    else:
        st["Wa"] = [xp.zeros_like(x) for x in st["Aflat"]]
    if st["b"] is not None:
        st["Wb"] = [xp.moveaxis(novelty_weights(xp.moveaxis(x, 0, -1)), -1, 0) for x in st["b"]]
    else:
        st["Wb"] = None
    st["lnC"] = [xp.asarray(np.broadcast_to(np.log(_softmax_np(c, 0) + LOG_FLOOR),
                                            (N,) + c.shape).copy(), dtype=dtype)
                 for c in model.C]


def _softmax_np(x: np.ndarray, axis: int) -> np.ndarray:
    e = np.exp(x - x.max(axis=axis, keepdims=True))
    return e / e.sum(axis=axis, keepdims=True)


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
    xp = get_namespace("cupy") if type(L).__module__.startswith("cupy") else np
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
    V = xp.asarray(model.policies)
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
    xp = get_namespace("cupy") if type(L).__module__.startswith("cupy") else np
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
    V = xp.asarray(model.policies)
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
    xp = get_namespace("cupy") if type(G).__module__.startswith("cupy") else np
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
    takes the most probable action.

    Returns
    -------
    actions : ndarray of int (N, F);  probs : list of (N, U_f) host arrays.
    """
    check_choice(mode, "mode", ("stochastic", "deterministic"), "select_action")
    q = to_numpy(q_pi)
    N = q.shape[0]
    acts = np.zeros((N, len(n_actions)), dtype=np.int64)
    probs = []
    for f, nu in enumerate(n_actions):
        onehot = np.eye(nu)[policies[:, t, f]]  # (P, U)
        marg = q @ onehot
        pu = _softmax_np(alpha * np.log(marg + LOG_FLOOR), 1)
        probs.append(pu)
        if mode == "deterministic":
            acts[:, f] = pu.argmax(axis=1)
        else:
            c = pu.cumsum(axis=1)
            r = rng.random(N)[:, None] * c[:, -1:]
            acts[:, f] = np.minimum((c < r).sum(axis=1), nu - 1)
    return acts, probs


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
    process: Any,
    *,
    n_agents: int = 1,
    n_trials: int = 1,
    beta: float = 1.0,
    alpha: float = 512.0,
    tau: float = 4.0,
    n_iter: int = 16,
    eta: float = 1.0,
    epistemic: bool = True,
    novelty: bool = True,
    update_gamma: bool = True,
    action_mode: str = "stochastic",
    backend: str = "auto",
    dtype: str = "float64",
    random_state: Any = None,
) -> dict[str, Any]:
    """Run ``n_agents`` active-inference agents for ``n_trials`` trials at once.

    Each agent holds its own Dirichlet counts (leading batch axis), so learning
    agents diverge as their experience does. The environment ``process`` is a
    generative process (e.g. :class:`predcode.envs.MDPProcess`) with
    ``reset(n, rng) -> (obs (n, M), state)`` and
    ``step(state, actions (n, F), rng) -> (obs, state)``.

    Parameters
    ----------
    beta : float
        Prior rate of the precision over policies (SPM default 1: prior γ = 1).
    alpha : float
        Action precision (SPM default 512).
    tau, n_iter : float, int
        Time constant and iterations of marginal message passing (SPM: 4, 16).
    eta : float
        Learning rate of the Dirichlet counts (SPM default 1).
    epistemic : bool
        ``False``: expected utility only (no ambiguity, no outcome entropy, no
        novelty).
    novelty : bool
        Include the novelty of learned parameters in ``G``.
    action_mode : {"stochastic", "deterministic"}
    backend : {"auto", "numpy", "numba", "cupy"}
    random_state : int, Generator or None

    Returns
    -------
    dict
        Host arrays: ``obs`` (n_trials, N, T, M), ``actions`` (n_trials, N, T-1, F),
        ``states`` (true states, n_trials, N, T, F), ``q_pi`` (n_trials, N, T-1, P)
        policy posteriors at each decision, ``gamma`` (n_trials, N, T-1),
        ``X`` (list per factor, n_trials, N, T, S_f: final state beliefs),
        ``G`` (n_trials, N, T-1, P), and the final counts ``a``, ``b``, ``d``.
    """
    owner = "run_trials"
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
    backend = resolve_backend(backend, owner=owner)
    xp = get_namespace(backend)
    rng = check_random_state(random_state, owner=owner)
    N, T, P, F, M = n_agents, model.T, model.n_policies, len(model.B), len(model.A)
    st = _batched(model, N, xp, dtype)
    lnE = xp.asarray(np.log(model.E + LOG_FLOOR), dtype=dtype)
    rec: dict[str, Any] = {
        "obs": np.zeros((n_trials, N, T, M), dtype=np.int64),
        "actions": np.zeros((n_trials, N, T - 1, F), dtype=np.int64),
        "states": np.zeros((n_trials, N, T, F), dtype=np.int64),
        "q_pi": np.zeros((n_trials, N, max(T - 1, 1), P)),
        "gamma": np.zeros((n_trials, N, max(T - 1, 1))),
        "G": np.zeros((n_trials, N, max(T - 1, 1), P)),
        "X": [np.zeros((n_trials, N, T, s)) for s in model.n_states],
    }
    V = model.policies
    for k in range(n_trials):
        o0, state = process.reset(N, rng)
        obs = np.zeros((N, T, M), dtype=np.int64)
        obs[:, 0] = o0
        rec["states"][k, :, 0] = state
        acts = np.zeros((N, T - 1, F), dtype=np.int64)
        mask = np.ones((N, P), dtype=bool)
        qs = [xp.full((N, P, T, s), 1.0 / s, dtype=dtype) for s in model.n_states]
        for t in range(T):
            obs_x = xp.asarray(obs)
            qs, Fe = marginal_message_passing(model, st, obs_x, t, qs, n_iter=n_iter, tau=tau,
                                              backend=backend)
            if t < T - 1:
                G, _ = expected_free_energy(model, st, qs, t, epistemic=epistemic,
                                            novelty=novelty and (st["a"] is not None
                                                                 or st["b"] is not None),
                                            backend=backend)
                q_pi, _, gamma = policy_posterior(G, Fe, lnE, beta=beta, n_iter=n_iter,
                                                  update_gamma=update_gamma,
                                                  mask=xp.asarray(mask))
                u, _ = select_action(q_pi, V, t, model.n_actions, alpha=alpha,
                                     mode=action_mode, rng=rng)
                acts[:, t] = u
                rec["q_pi"][k, :, t] = to_numpy(q_pi)
                rec["gamma"][k, :, t] = to_numpy(gamma)
                rec["G"][k, :, t] = to_numpy(G)
                mask &= np.all(V[None, :, t, :] == u[:, None, :], axis=-1)
                o, state = process.step(state, u, rng)
                obs[:, t + 1] = o
                rec["states"][k, :, t + 1] = state
            else:
                q_pi = xp.asarray(mask / mask.sum(axis=1, keepdims=True), dtype=dtype)
        # Bayesian model average over (surviving) policies of the final beliefs
        w = q_pi[:, :, None, None]
        X = [xp.sum(w * q, axis=1) for q in qs]
        for f in range(F):
            rec["X"][f][k] = to_numpy(X[f])
        rec["obs"][k], rec["actions"][k] = obs, acts
        if st["a"] is not None or st["b"] is not None or st["d"] is not None:
            learn(model, st, xp.asarray(obs), xp.asarray(acts), X, eta=eta)
            _refresh(model, st, dtype)
    for key in ("a", "b", "d"):
        rec[key] = None if st[key] is None else [to_numpy(x) for x in st[key]]
    rec["backend"] = backend
    return rec

