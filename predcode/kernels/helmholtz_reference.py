r"""Reference kernels of the Helmholtz machine's wake-sleep step (plain array code).

Both phases use one delta rule on a layer of stochastic binary logistic units
(Hinton, Dayan, Frey & Neal 1995). With ``inputs`` :math:`s` (n, m) the states
of the layer that drives, ``W`` (k, m) and ``b`` (k,) the weights and biases and
``target`` :math:`t` (n, k) the states to be predicted:

.. math::

    p = \sigma(s W^\top + b), \qquad
    \Delta W = \frac{\eta}{n} (t - p)^\top s, \qquad
    \Delta b = \frac{\eta}{n} \textstyle\sum_n (t - p),

which is :math:`\eta` times the gradient of the mean log-probability
:math:`\log P(t \mid s) = \sum_j t_j \log p_j + (1 - t_j) \log(1 - p_j)`.
The wake phase applies it to the generative weights (target: the recognition
sample of the layer below), the sleep phase to the recognition weights
(target: the dreamed state of the layer above).
"""

from __future__ import annotations

from typing import Any

from ..backend import array_namespace, register_kernel

B = "numpy"


def _softplus(a: Any, xp: Any) -> Any:
    """log(1 + exp(a)) without overflow."""
    return xp.maximum(a, 0) + xp.log1p(xp.exp(-xp.abs(a)))


@register_kernel("hm_sample", B)
def hm_sample(inputs: Any, W: Any, b: Any, u: Any, prob: Any, out: Any) -> None:
    """Sample a layer: ``prob = sigmoid(inputs @ W.T + b)``, ``out = (u < prob)`` as 0/1.

    ``u`` holds uniform random numbers of the shape of ``out`` (drawn by the
    caller, so every backend can be fed the same numbers).
    """
    xp = array_namespace(inputs)
    a = inputs @ W.T + b
    prob[...] = 1.0 / (1.0 + xp.exp(-a))
    out[...] = (u < prob).astype(out.dtype)


@register_kernel("hm_delta", B)
def hm_delta(W: Any, b: Any, inputs: Any, target: Any, lr: float):
    """Delta rule in place (see the module docstring); returns the batch log-probability.

    Returns
    -------
    scalar
        :math:`\\sum_n \\log P(t_n \\mid s_n)` in nats, computed with the weights
        *before* the update.
    """
    xp = array_namespace(W)
    n = inputs.shape[0]
    a = inputs @ W.T + b
    p = 1.0 / (1.0 + xp.exp(-a))
    logp = xp.sum(target * a - _softplus(a, xp))
    d = target - p
    W += (lr / n) * (d.T @ inputs)
    b += (lr / n) * xp.sum(d, axis=0)
    return logp
