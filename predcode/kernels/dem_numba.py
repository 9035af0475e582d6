"""numba (CPU) versions of the DEM kernels (same signatures as :mod:`.dem_reference`).

One fused pass per time bin: ``P e`` and ``P J`` are formed once and contracted into
the gradient, curvature and quadratic form without temporaries of size ``N x ne x nq``.
"""

from __future__ import annotations

from typing import Any

import numba
import numpy as np

from .numba_cache import configure as _configure_cache
from .registry import register_kernel

_configure_cache()  # numba's cache: per user, never inside the package

B = "numba"


@numba.njit(cache=True, nogil=True, error_model="numpy")
def _accumulate(E, J, P):  # pragma: no cover - compiled
    N, ne = E.shape
    nq = J.shape[2]
    g = np.zeros(nq)
    H = np.zeros((nq, nq))
    PJ = np.empty((ne, nq))
    ss = 0.0
    for t in range(N):
        for a in range(ne):
            pe = 0.0
            for b in range(ne):
                pe += P[a, b] * E[t, b]
            ss += pe * E[t, a]
            for q in range(nq):
                g[q] += J[t, a, q] * pe
        for a in range(ne):
            for q in range(nq):
                acc = 0.0
                for b in range(ne):
                    acc += P[a, b] * J[t, b, q]
                PJ[a, q] = acc
        for q in range(nq):
            for r in range(q, nq):
                acc = 0.0
                for a in range(ne):
                    acc += J[t, a, q] * PJ[a, r]
                H[q, r] += acc
    for q in range(nq):
        for r in range(q):
            H[q, r] = H[r, q]
    return g, H, ss


@register_kernel("dem_accumulate", B)
def dem_accumulate(E: Any, J: Any, P: Any) -> tuple[Any, Any, Any]:
    """See :func:`predcode.kernels.dem_reference.dem_accumulate`."""
    E = np.ascontiguousarray(E, dtype=np.float64)
    J = np.ascontiguousarray(J, dtype=np.float64)
    P = np.ascontiguousarray(P, dtype=np.float64)
    g, H, ss = _accumulate(E, J, P)
    return g, H, float(ss)
