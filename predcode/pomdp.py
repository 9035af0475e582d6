r"""The discrete POMDP specification: a generative model written as arrays.

This is the plain data layer under discrete active inference
(:mod:`predcode.models.active_inference`) and the discrete environments
(:mod:`predcode.envs.discrete`): the validated arrays of a partially observed
Markov decision process and the builders that check them. Nothing here infers
or acts.

* ``A[m]`` (O_m, S_1, ..., S_F): likelihood :math:`P(o^m_\tau | s_\tau)`;
* ``B[f]`` (S_f, S_f, U_f): transitions :math:`P(s^f_{\tau+1} | s^f_\tau, u)`;
* ``C[m]`` (O_m, T): log preferences; ``D[f]`` (S_f,): initial states;
* ``E`` (P,): policy prior; ``policies`` (P, T - 1, F): SPM's ``V``;
* optional Dirichlet counts ``a``, ``b``, ``d`` (learned by the agent).

References
----------
Friston, FitzGerald, Rigoli, Schwartenbeck & Pezzulo (2017). Active inference:
a process theory. *Neural Computation* 29(1), 1-49.
Da Costa, Parr, Sajid, Veselic, Neacsu & Friston (2020). Active inference on
discrete state-spaces: a synthesis. *J. Math. Psychol.* 99, 102447.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .backend import array_namespace, is_cupy, to_numpy
from .exceptions import ValidationError
from .kernels.common import LOG_FLOOR
from .validation import check_int

__all__ = [
    "LOG_FLOOR",
    "GenerativeModel",
    "make_model",
    "all_policies",
    "safe_log",
    "softmax",
    "dirichlet_expectation",
]

_OWNER = "GenerativeModel"
_TOL = 1e-6


def safe_log(x: Any) -> Any:
    r"""SPM's safe logarithm :math:`\ln(x + e^{-16})`: finite at zero probabilities."""
    xp = array_namespace(x)
    return xp.log(x + LOG_FLOOR)


def softmax(x: Any, axis: int = -1) -> Any:
    """Normalised exponential along ``axis`` (shifted by the maximum, so no overflow)."""
    xp = array_namespace(x)
    e = xp.exp(x - xp.max(x, axis=axis, keepdims=True))
    return e / xp.sum(e, axis=axis, keepdims=True)


def dirichlet_expectation(a: Any) -> Any:
    """Expected probabilities of Dirichlet counts: ``a / a.sum(axis=0)`` (SPM's ``spm_norm``)."""
    xp = array_namespace(a)
    tot = xp.sum(a, axis=0, keepdims=True)
    return a / xp.where(tot > 0, tot, 1.0)


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
    device : {"numpy", "cupy"}
        Where the arrays given to :func:`make_model` lived. The arrays here are
        always host copies (validation is host work); ``"cupy"`` tells
        ``backend="auto"`` of the functions that run the model to run on the GPU.
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
    device: str = field(default="numpy", compare=False)

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
    if isinstance(x, np.ndarray) or is_cupy(x) or np.isscalar(x):
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
    on_gpu = any(is_cupy(x) for arg in (A, B, C, D, E, a, b, d)
                 for x in (arg if isinstance(arg, (list, tuple)) else [arg]))
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
        d=None if d_l is None else tuple(d_l), device="cupy" if on_gpu else "numpy")


