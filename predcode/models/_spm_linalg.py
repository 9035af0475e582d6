"""SPM's scale-aware inverse and tolerant log-determinant (``spm_inv``, ``spm_logdet``).

Written for predcode from the documented behaviour of SPM12's functions, so that the
schemes that follow SPM (``predcode.models.lap``) regularise exactly as SPM does.
"""

from __future__ import annotations

import numpy as np

__all__ = ["spm_inv", "spm_logdet"]


def spm_inv(A: np.ndarray) -> np.ndarray:
    r"""Inverse of :math:`A + \tau I` with SPM's tolerance
    :math:`\tau = \max(\mathrm{eps}(\lVert A\rVert_\infty)\max(m, n), e^{-32})`.

    ``eps(x)`` is the spacing of doubles at ``x``. An empty matrix gives an empty one.
    """
    A = np.asarray(A, float)
    m, n = A.shape
    if A.size == 0:
        return np.zeros((n, m))
    tol = max(float(np.spacing(np.linalg.norm(A, np.inf))) * max(m, n), float(np.exp(-32)))
    return np.linalg.inv(A + np.eye(m, n) * tol)


def spm_logdet(C: np.ndarray) -> float:
    r"""Log-determinant as SPM's ``spm_logdet`` computes it.

    Rows and columns with a zero diagonal are dropped; a diagonal matrix gives
    :math:`\sum\ln c_{ii}`, a symmetric one its Cholesky factor, otherwise (or when
    Cholesky fails) :math:`\sum\ln s_i` over the singular values :math:`s_i` in
    :math:`(10^{-16}, 10^{16})`; the same window applies to the diagonal case.
    """
    C = np.asarray(C, float)
    if C.size == 0:
        return 0.0
    dg = np.diag(C)
    keep = np.flatnonzero(dg)
    if keep.size < C.shape[0] or C.shape[0] != C.shape[1]:
        C = C[np.ix_(keep, keep)]
        dg = np.diag(C)
    if C.size == 0:
        return 0.0
    if np.isnan(C).any():
        return float("nan")
    tol = 1e-16
    if np.count_nonzero(C) > np.count_nonzero(dg):  # an off-diagonal entry is nonzero
        if np.max(np.abs(C - C.T)) <= tol:
            try:
                L = np.linalg.cholesky(C)
                return float(2 * np.sum(np.log(np.diag(L))))
            except np.linalg.LinAlgError:
                pass
        s = np.linalg.svd(C, compute_uv=False)
    else:
        s = dg
    s = s[(s > tol) & (s < 1 / tol)]
    return float(np.sum(np.log(s)))
