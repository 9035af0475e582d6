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
"""

from __future__ import annotations

from typing import Any

from ..backend import array_namespace
from .common import LOG_FLOOR
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
