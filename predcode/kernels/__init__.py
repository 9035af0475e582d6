"""Kernels of the hot loops, each in three versions with one signature.

=====================  =============================================================
module                 version
=====================  =============================================================
``reference``          plain array code (numpy, and cupy through ``xp``): the oracle
``numba_cpu``          compiled, fused CPU loops (numpy arrays)
``cupy_gpu``           fused CUDA kernels (cupy arrays)
=====================  =============================================================

A new model family adds its own three modules, named ``<family>_reference``,
``<family>_numba`` and ``<family>_cupy``; they are found by name.

Look kernels up with :func:`predcode.backend.get_kernel`; the signatures are
documented on the reference versions in :mod:`predcode.kernels.reference`.
"""

#: Names of the predictive-coding kernels every backend provides.
PC_KERNELS = (
    "pc_activate",
    "pc_predict",
    "pc_feedback",
    "pc_error",
    "pc_settle_step",
    "pc_hebbian",
)

#: Rao & Ballard (1999) kernels (the PC kernels serve its GEMMs and errors).
RB_KERNELS = ("rb_cause_step",)
