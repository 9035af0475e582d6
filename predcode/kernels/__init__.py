"""Kernels of the hot loops, each in three versions with one signature.

Each family holds three modules: ``<family>_reference`` (plain array code,
numpy and cupy through ``xp``: the oracle), ``<family>_numba`` (compiled, fused
CPU loops on numpy arrays) and ``<family>_cupy`` (fused CUDA kernels on cupy
arrays). :mod:`predcode.kernels.registry` lists every kernel and module
explicitly; look kernels up with :func:`get_kernel`. The signatures are
documented on the reference versions.
"""

from .registry import FAMILIES, KERNELS, get_kernel, get_kernels, register_kernel

__all__ = ["FAMILIES", "KERNELS", "get_kernel", "get_kernels", "register_kernel"]
