r"""Reference (array-API) kernels of discrete-state active inference.

``aif_efe(qs, A, lnC, H, W) -> out``
    The expected-free-energy terms of one future time step and one outcome
    modality, for a batch of agents ``n`` and policies ``p`` (Da Costa et al.
    2020, eq. 8; SPM's ``spm_MDP_G`` with novelty):

    .. math::

        o_{np} &= A_n s_{np}, \\
        \text{risk} &= o \cdot (\ln o - \ln C), \quad
        \text{ambiguity} = H_n \cdot s_{np}, \\
        \text{novelty} &= o \cdot (W_n s_{np}), \quad
        \text{utility} = o \cdot \ln C .

    Shapes: ``qs`` (N, P, S) predicted (joint) hidden states, ``A`` (N, O, S),
    ``lnC`` (N, O) log preferences, ``H`` (N, S) outcome entropy per state,
    ``W`` (N, O, S) novelty weights (zeros without learning). ``out`` is
    (N, P, 4): risk, ambiguity, novelty, utility.

``aif_propagate(B, q, u) -> Bq``
    Transition messages of every policy: ``Bq[n, p] = B[n, :, :, u[p]] @ q[n, p]``
    with ``B`` (N, S, S, U) (columns = from-state), ``q`` (N, P, S) and the
    policies' actions ``u`` (P,) ints. Used for forward messages (with ``B``)
    and backward messages (with the normalised transpose).

``aif_belief_step(lnq, v, tau) -> q``
    One gradient step of marginal message passing (SPM ``spm_MDP_VB_X``):
    ``q = softmax(lnq + (v - mean(v)) / tau)`` over the last axis.

``aif_pymdp_step(orow, u, t, lnA, AB, HB, C, BT, Bb, lnD, V, lnE, gamma, info, num_iter)``
    Returns ``(qs, neg_efe, q_pi)``: one time step ``t`` of pymdp 1.0's
    ``Agent(inference_algo="mmp")`` for ``N`` agents sharing one model with one
    hidden-state factor of ``S`` states (``run_trials(..., scheme="pymdp")``; the
    semantics of :func:`predcode.models.pymdp_mdp.pymdp_replay_trials`):
    ``infer_states`` -- ``num_iter`` Jacobi sweeps of marginal message passing over the
    window ``0..t`` from uniform beliefs,

    .. math::

        q_j = \sigma\big(\ell_j + w_j \ln(B_{u_{j-1}} q_{j-1})
              + \tfrac12 [j < t] \ln(\tilde B_{u_j}^\top q_{j+1})\big),
        \quad \ell_j = \textstyle\sum_m \ln A^m_{o^m_j},

    with :math:`B_{u_{-1}} q_{-1} := D`, :math:`w_j = \tfrac12` inside the window and 1 at
    its end -- then ``infer_policies`` from :math:`q_t`: each policy's remaining moves
    ``V[p, t:]`` rolled out, :math:`s \leftarrow B_{a} s`, :math:`o = A s`,
    :math:`-G = \sum_\tau \text{info} \cdot (H[o] - s \cdot H_A) + o \cdot C`, and
    :math:`q(\pi) = \sigma(\gamma (-G) + \ln E)`. Every log is
    :math:`\ln\max(x, \epsilon)`, ``epsilon`` = ``PYMDP_EPS`` (pymdp's).

    Shapes (modalities stacked along the outcome axis, ``O`` = sum of ``O_m``):
    ``orow`` (N, T, M) ints, outcome ``o^m_j`` as its row in the stack (entries after
    ``t`` are ignored); ``u`` (N, T - 1) ints, the actions taken (entries from ``t`` on are
    ignored); ``lnA`` (O, S) :math:`\ln\max(A, \epsilon)`; ``AB`` (U, S, O) the outcomes
    one move on, ``AB[a, j, o]`` = :math:`(A B_a)_{oj}`; ``HB`` (U, S) the ambiguity one move
    on, :math:`B_a^\top H_A` with :math:`H_A = \sum_m H[A^m_{\cdot s}]` (each move's terms
    come from the state before it); ``C`` (O,) log preferences; ``BT``
    (U, S, S) with ``BT[a, j, i] = B[i, j, a]``; ``Bb`` (U, S, S) with ``Bb[a] = B[:, :, a]``
    normalised over its from-state axis (rows; :math:`\tilde B` transposed); ``lnD`` (S,)
    :math:`\ln\max(D, \epsilon)`; ``V`` (P, T - 1) ints, the policies' actions; ``lnE``
    (P,) :math:`\ln\max(E, \epsilon)`; ``gamma`` the policy precision; ``info`` the weight
    of the state-information gain (1: pymdp's ``use_states_info_gain=True``, 0: utility
    only). Returns ``qs`` (N, t + 1, S) window posteriors, ``neg_efe`` (N, P) (-G, zeros
    at ``t = T - 1``) and ``q_pi`` (N, P), in the dtype of ``lnA``.
"""

from __future__ import annotations

from typing import Any

from ..backend import array_namespace
from .common import LOG_FLOOR, PYMDP_EPS
from .registry import register_kernel

B = "numpy"


@register_kernel("aif_efe", B)
def aif_efe(qs: Any, A: Any, lnC: Any, H: Any, W: Any) -> Any:
    """Risk, ambiguity, novelty and utility per agent and policy (see module doc)."""
    xp = array_namespace(qs, A)
    qo = xp.einsum("nos,nps->npo", A, qs)
    lnqo = xp.log(qo + LOG_FLOOR)
    out = xp.empty(qs.shape[:2] + (4,), dtype=qs.dtype)
    out[..., 0] = xp.sum(qo * (lnqo - lnC[:, None, :]), axis=-1)
    out[..., 1] = xp.einsum("ns,nps->np", H, qs)
    out[..., 2] = xp.einsum("npo,nos,nps->np", qo, W, qs)
    out[..., 3] = xp.sum(qo * lnC[:, None, :], axis=-1)
    return out


@register_kernel("aif_belief_step", B)
def aif_belief_step(lnq: Any, v: Any, tau: float) -> Any:
    """``softmax(lnq + (v - mean v) / tau)`` over the last axis."""
    xp = array_namespace(lnq, v)
    x = lnq + (v - xp.mean(v, axis=-1, keepdims=True)) / tau
    x = x - xp.max(x, axis=-1, keepdims=True)
    e = xp.exp(x)
    return e / xp.sum(e, axis=-1, keepdims=True)


@register_kernel("aif_propagate", B)
def aif_propagate(Bm: Any, q: Any, u: Any) -> Any:
    """``B[n, :, :, u[p]] @ q[n, p]`` for every agent ``n`` and policy ``p``."""
    xp = array_namespace(Bm, q)
    N, S, _, U = Bm.shape
    P = q.shape[1]
    Bq = xp.matmul(q, xp.swapaxes(Bm, 1, 2).reshape(N, S, S * U)).reshape(N, P, S, U)
    onehot = xp.eye(U, dtype=q.dtype)[u]  # (P, U)
    return xp.einsum("npiu,pu->npi", Bq, onehot)


def _lg(xp: Any, x: Any) -> Any:
    return xp.log(xp.maximum(x, PYMDP_EPS))


def _softmax_last(xp: Any, z: Any) -> Any:
    e = xp.exp(z - xp.max(z, axis=-1, keepdims=True))
    return e / xp.sum(e, axis=-1, keepdims=True)


@register_kernel("aif_pymdp_step", B)
def aif_pymdp_step(orow: Any, u: Any, t: int, lnA: Any, AB: Any, HB: Any, C: Any, BT: Any,
                   Bb: Any, lnD: Any, V: Any, lnE: Any, gamma: float, info: float,
                   num_iter: int) -> tuple[Any, Any, Any]:
    """One step of pymdp's ``infer_states`` + ``infer_policies`` for all agents (module doc)."""
    xp = array_namespace(lnA, AB)
    N, T, _ = orow.shape
    S = lnD.shape[0]
    n = t + 1
    dt = lnA.dtype
    lnL = xp.sum(lnA[orow[:, :n]], axis=2)  # (N, n, S)
    q = xp.full((N, n, S), 1.0 / S, dtype=dt)
    w = xp.full((n, 1), 0.5, dtype=dt)
    w[n - 1] = 1.0
    if n > 1:
        Bf = BT[u[:, : n - 1]]  # (N, n - 1, S_from, S_to)
        Bk = Bb[u[:, : n - 1]]  # (N, n - 1, S_to, S_from)
    for _ in range(num_iter):
        msg = xp.empty((N, n, S), dtype=dt)
        msg[:, 0] = lnD
        if n > 1:
            msg[:, 1:] = _lg(xp, xp.einsum("nkj,nkji->nki", q[:, :-1], Bf))
        msg = msg * w
        if n > 1:
            msg[:, :-1] += 0.5 * _lg(xp, xp.einsum("nki,nkij->nkj", q[:, 1:], Bk))
        q = _softmax_last(xp, lnL + msg)
    P = V.shape[0]
    G = xp.zeros((N, P), dtype=dt)
    s = xp.broadcast_to(q[:, t, None, :], (N, P, S))
    for tau in range(T - 1 - t):
        a = V[:, t + tau]
        qo = xp.einsum("npj,pjo->npo", s, AB[a])
        H = -xp.sum(xp.where(qo > 0, qo * _lg(xp, qo), 0.0), axis=-1)
        G = G + (info * (H - xp.einsum("npj,pj->np", s, HB[a])) + qo @ C)
        s = xp.einsum("npj,pji->npi", s, BT[a])
    q_pi = _softmax_last(xp, gamma * G + lnE)
    return q, G, q_pi
