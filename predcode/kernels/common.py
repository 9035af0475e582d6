"""Constants and shape helpers shared by a family's three kernel versions and its model.

Imported without importing any kernel module (so a model can use them and
still load only the kernels of the backend it runs on).
"""

from __future__ import annotations

__all__ = ["LOG_FLOOR", "PYMDP_EPS", "conv_out_size"]

#: Floor added inside logarithms of probabilities in discrete active inference:
#: ``exp(-16)``, SPM's ``spm_log`` floor (``log(0)`` is replaced by ``-16``).
LOG_FLOOR = 1.1253517471925912e-07

#: pymdp 1.0's floor inside logarithms (``pymdp.maths.MINVAL``, float64 machine epsilon):
#: ``ln max(x, PYMDP_EPS)`` in the ``aif_pymdp_step`` kernel and ``pymdp_replay_trials``.
PYMDP_EPS = 2.220446049250313e-16


def conv_out_size(n: int, k: int, stride: int, padding: int) -> int:
    """Output length of a convolution along one axis."""
    return (n + 2 * padding - k) // stride + 1
