r"""AdamW with linear warm-up and cosine decay of the learning rate.

AdamW (Loshchilov & Hutter 2019) for parameter :math:`\theta` with gradient
:math:`g` at step :math:`t`:

.. math::

    m &\leftarrow \beta_1 m + (1-\beta_1) g, \qquad
    v \leftarrow \beta_2 v + (1-\beta_2) g^2, \\
    \theta &\leftarrow \theta - \eta_t\Big(\frac{m/(1-\beta_1^t)}{\sqrt{v/(1-\beta_2^t)}+\epsilon}
    + \lambda\,\theta\Big),

the weight decay :math:`\lambda` decoupled from the gradient (applied to weights
with two or more axes only: biases and norm gains are not decayed, as in I-JEPA).
"""

from __future__ import annotations

import math

from ..exceptions import ValidationError
from ..validation import check_param
from .layers import Layer, named_params

__all__ = ["AdamW", "warmup_cosine"]


def warmup_cosine(step: int, total: int, *, base: float, warmup: int = 0,
                  final: float = 0.0, start: float = 0.0) -> float:
    r"""Learning rate at ``step``: linear warm-up from ``start`` to ``base`` over
    ``warmup`` steps, then cosine decay to ``final`` at ``total``:
    :math:`\eta = f + \tfrac12 (b - f)(1 + \cos \pi\,\frac{s - w}{T - w})`.

    Also serves the EMA momentum schedule (with ``base``/``final`` swapped in role
    by the caller).
    """
    if step < warmup:
        return start + (base - start) * (step + 1) / warmup
    span = max(total - warmup, 1)
    frac = min(max(step - warmup, 0) / span, 1.0)
    return final + 0.5 * (base - final) * (1.0 + math.cos(math.pi * frac))


class AdamW:
    """AdamW over the parameters of one or more modules (see module doc).

    Parameters
    ----------
    modules : sequence of Layer
        The networks whose ``params`` are updated in place from their ``grads``.
    lr : float
        Peak learning rate (``step(lr=...)`` may override it per step).
    betas, eps, weight_decay : float
        Adam's moments, its denominator floor and the decoupled decay :math:`\\lambda`.
    """

    def __init__(self, modules: list[Layer], *, lr: float = 1e-3, betas=(0.9, 0.999),
                 eps: float = 1e-8, weight_decay: float = 0.0):
        o = "AdamW"
        check_param(lr, "lr", o, low=0.0)
        check_param(weight_decay, "weight_decay", o, low=0.0, low_inclusive=True)
        check_param(eps, "eps", o, low=0.0)
        if len(betas) != 2 or not all(0.0 <= b < 1.0 for b in betas):
            raise ValidationError(f"AdamW.betas: expected two numbers in [0, 1), got {betas!r}.")
        self.lr, self.betas, self.eps, self.weight_decay = lr, tuple(betas), eps, weight_decay
        self.entries = []
        for mod in modules:
            if not isinstance(mod, Layer):
                raise ValidationError(f"AdamW: expected Layers, got {type(mod).__name__}.")
            for _, layer, key in named_params(mod):
                p = layer.params[key]
                xp = layer.xp
                self.entries.append((layer, key, xp.zeros_like(p), xp.zeros_like(p)))
        self.t = 0

    def step(self, lr: float | None = None) -> None:
        """One update of every parameter from its accumulated gradient."""
        lr = self.lr if lr is None else lr
        self.t += 1
        b1, b2 = self.betas
        c1, c2 = 1.0 - b1 ** self.t, 1.0 - b2 ** self.t
        for layer, key, m, v in self.entries:
            p, g = layer.params[key], layer.grads[key]
            m *= b1
            m += (1.0 - b1) * g
            v *= b2
            v += (1.0 - b2) * g * g
            upd = (m / c1) / (layer.xp.sqrt(v / c2) + self.eps)
            if self.weight_decay and p.ndim >= 2:
                upd = upd + self.weight_decay * p
            p -= lr * upd

    def state_size(self) -> int:
        """Number of optimised scalars."""
        return int(sum(e[2].size for e in self.entries))


