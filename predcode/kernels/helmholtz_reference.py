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

from ..backend import array_namespace
from .registry import register_kernel

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


def _unpack_offsets(sizes: Any) -> tuple[list, list, list]:
    """Offsets of layer ``l``'s blocks in the flat ``G``/``R`` (l = 1..L) and ``c``/``r`` arrays."""
    L = len(sizes) - 1
    ow, ob = [0] * (L + 2), [0] * (L + 2)
    for l in range(1, L + 1):
        ow[l + 1] = ow[l] + int(sizes[l - 1]) * int(sizes[l])
    for l in range(L + 1):
        ob[l + 1] = ob[l] + int(sizes[l])
    return ow, ob, [int(n) for n in sizes]


@register_kernel("hm_online", B)
def hm_online(sizes: Any, G: Any, R: Any, c: Any, r: Any, X: Any, U: Any,
              lr_g: Any, lr_r: Any):
    r"""Online wake-sleep (one wake and one sleep step per image, in order), in place.

    The whole network is passed flat: ``G`` holds :math:`G_1, \dots, G_L`
    (each ``(n_{l-1}, n_l)``, C order) one after another, ``R`` holds
    :math:`R_1, \dots, R_L` (each ``(n_l, n_{l-1})``), ``c`` holds the
    generative biases :math:`c_0, \dots, c_L` (:math:`c_L = b_L`, the top
    biases) and ``r`` the recognition biases :math:`r_0, \dots, r_L`
    (:math:`r_0` unused). For image ``x = X[i]`` and the uniforms ``U[i]``
    (``n_1 + ... + n_L`` for the recognition samples, then ``n_L + ... + n_0``
    for the dream, top first), the step is the batch step of
    :class:`~predcode.models.helmholtz.HelmholtzMachine` with one image:

    * wake: :math:`s_l = [u < \sigma(R_l s_{l-1} + r_l)]`, then
      :math:`b_L \mathrel{+}= \varepsilon_{L+1}(s_L - \sigma(b_L))` and
      :math:`G_l \mathrel{+}= \varepsilon_l (s_{l-1} - p_{l-1}) s_l^\top`,
      :math:`c_{l-1} \mathrel{+}= \varepsilon_l (s_{l-1} - p_{l-1})`;
    * sleep: dream :math:`d_L, \dots, d_0` with the updated generative
      weights, then :math:`R_l \mathrel{+}= \varepsilon'_l (d_l - q_l) d_{l-1}^\top`,
      :math:`r_l \mathrel{+}= \varepsilon'_l (d_l - q_l)`.

    ``lr_g`` holds :math:`\varepsilon_1, \dots, \varepsilon_{L+1}`, ``lr_r``
    :math:`\varepsilon'_1, \dots, \varepsilon'_L`.

    Returns
    -------
    (wake, sleep) : tuple of float
        Summed over the images, in nats, with the weights before each step:
        the sampled description length
        :math:`\sum_l \log Q(s_l \mid s_{l-1}) - \log P(s_L) - \sum_l \log P(s_{l-1} \mid s_l)`
        and :math:`-\sum_l \log Q(d_l \mid d_{l-1})`.
    """
    xp = array_namespace(X)
    ow, ob, n = _unpack_offsets(sizes)
    L = len(n) - 1

    def Gl(l):
        return G[ow[l]:ow[l + 1]].reshape(n[l - 1], n[l])

    def Rl(l):
        return R[ow[l]:ow[l + 1]].reshape(n[l], n[l - 1])

    def cl(l):
        return c[ob[l]:ob[l + 1]]

    def rl(l):
        return r[ob[l]:ob[l + 1]]

    def logb(t, a):
        return xp.sum(t * a - _softplus(a, xp))

    wake, sleep = 0.0, 0.0
    for i in range(X.shape[0]):
        u, k = U[i], 0
        s = [X[i]]
        for l in range(1, L + 1):
            a = Rl(l) @ s[-1] + rl(l)
            s.append((u[k:k + n[l]] < 1.0 / (1.0 + xp.exp(-a))).astype(X.dtype))
            wake += float(logb(s[l], a))
            k += n[l]
        top = cl(L)
        wake -= float(logb(s[L], top))
        top += lr_g[L] * (s[L] - 1.0 / (1.0 + xp.exp(-top)))
        for l in range(1, L + 1):
            a = Gl(l) @ s[l] + cl(l - 1)
            wake -= float(logb(s[l - 1], a))
            dlt = s[l - 1] - 1.0 / (1.0 + xp.exp(-a))
            Gl(l)[...] += lr_g[l - 1] * xp.outer(dlt, s[l])
            cl(l - 1)[...] += lr_g[l - 1] * dlt
        d = [None] * (L + 1)
        d[L] = (u[k:k + n[L]] < 1.0 / (1.0 + xp.exp(-cl(L)))).astype(X.dtype)
        k += n[L]
        for l in range(L, 0, -1):
            a = Gl(l) @ d[l] + cl(l - 1)
            d[l - 1] = (u[k:k + n[l - 1]] < 1.0 / (1.0 + xp.exp(-a))).astype(X.dtype)
            k += n[l - 1]
        for l in range(1, L + 1):
            a = Rl(l) @ d[l - 1] + rl(l)
            sleep -= float(logb(d[l], a))
            e = d[l] - 1.0 / (1.0 + xp.exp(-a))
            Rl(l)[...] += lr_r[l - 1] * xp.outer(e, d[l - 1])
            rl(l)[...] += lr_r[l - 1] * e
    return wake, sleep
