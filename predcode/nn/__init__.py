"""Small differentiable building blocks with hand-written backward passes.

:mod:`~predcode.nn.layers` (Linear, ReLU, GELU, Tanh, LayerNorm, Conv2d via
im2col, Flatten, Sequential), :mod:`~predcode.nn.losses` (MSE, cosine, VICReg,
SIGReg) and :mod:`~predcode.nn.optim` (AdamW, warm-up + cosine schedule). No
general autodiff: each backward pass is written out and tested against finite
differences.
"""

from .layers import (
    GELU,
    Conv2d,
    Flatten,
    Layer,
    LayerNorm,
    Linear,
    ReLU,
    Sequential,
    Tanh,
    copy_params,
    named_params,
    zero_grad,
)
from .losses import cosine, epps_pulley_grid, mse, sigreg, vicreg
from .optim import AdamW, warmup_cosine

__all__ = [
    "Layer", "Linear", "ReLU", "GELU", "Tanh", "LayerNorm", "Conv2d", "Flatten", "Sequential",
    "named_params", "zero_grad", "copy_params",
    "mse", "cosine", "vicreg", "sigreg", "epps_pulley_grid",
    "AdamW", "warmup_cosine",
]
