"""CuPy (GPU) versions of the DEM kernels (same signatures as :mod:`.dem_reference`).

Batched cuBLAS products over time bins; results stay on the device.
"""

from __future__ import annotations

from typing import Any

import cupy as cp

from .registry import register_kernel

B = "cupy"


@register_kernel("dem_accumulate", B)
def dem_accumulate(E: Any, J: Any, P: Any) -> tuple[Any, Any, Any]:
    """See :func:`predcode.kernels.dem_reference.dem_accumulate`."""
    PE = E @ P
    PJ = cp.matmul(P, J)
    g = cp.einsum("tkq,tk->q", J, PE)
    H = cp.matmul(J.transpose(0, 2, 1), PJ).sum(axis=0)
    ss = cp.sum(PE * E)
    return g, H, ss
