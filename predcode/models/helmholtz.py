r"""Helmholtz machines trained by the wake-sleep algorithm.

A Helmholtz machine (Dayan, Hinton, Neal & Zemel 1995) pairs two layered
sigmoid belief networks over binary units :math:`s_0` (the data), :math:`s_1,
\dots, s_L` (hidden layers, :math:`s_L` the top):

*generative* (top-down), with biases :math:`b_L` on the top layer,

.. math::

    P(s_L{=}1) = \sigma(b_L), \qquad
    P(s_{l-1}{=}1 \mid s_l) = \sigma(G_l s_l + c_{l-1}),

*recognition* (bottom-up), a factorial distribution per layer given the layer
below,

.. math::

    Q(s_l{=}1 \mid s_{l-1}) = \sigma(R_l s_{l-1} + r_l).

The description length of an image under the recognition distribution is the
variational free energy

.. math::

    F(x) = \sum_h Q(h \mid x) \left[ \log_2 Q(h \mid x) - \log_2 P(x, h) \right]
         = -\log_2 P(x) + \mathrm{KL}(Q(\cdot \mid x) \,\|\, P(\cdot \mid x))
         \ \ge\ -\log_2 P(x),

in bits; :meth:`HelmholtzMachine.energy` returns it per image.

**Wake-sleep** (Hinton, Dayan, Frey & Neal 1995). *Wake*: drive the network
bottom-up with the recognition weights from a data image, sampling every layer;
move each generative layer towards reproducing the sampled state below it,

.. math::

    \Delta G_l = \varepsilon_l\, (s_{l-1} - p_{l-1}) s_l^\top, \quad
    \Delta c_{l-1} = \varepsilon_l (s_{l-1} - p_{l-1}), \quad
    \Delta b_L = \varepsilon_{L+1} (s_L - \sigma(b_L)),

with :math:`p_{l-1} = \sigma(G_l s_l + c_{l-1})`. *Sleep*: dream a sample
:math:`d_L, \dots, d_0` top-down from the generative model and move each
recognition layer towards recovering the dreamed state above it,

.. math::

    \Delta R_l = \varepsilon'_l\, (d_l - q_l) d_{l-1}^\top, \quad
    \Delta r_l = \varepsilon'_l (d_l - q_l), \qquad
    q_l = \sigma(R_l d_{l-1} + r_l).

Both are the same local delta rule (kernel ``hm_delta``), averaged over a
mini-batch; the wake updates follow the gradient of
:math:`-F` with respect to the generative weights, the sleep updates that of
:math:`-\mathrm{KL}(P \,\|\, Q)` with respect to the recognition weights.

References
----------
Hinton, G. E., Dayan, P., Frey, B. J. & Neal, R. M. (1995). The wake-sleep
algorithm for unsupervised neural networks. *Science* 268, 1158-1161.

Dayan, P., Hinton, G. E., Neal, R. M. & Zemel, R. S. (1995). The Helmholtz
machine. *Neural Computation* 7(5), 889-904.
"""

from __future__ import annotations

import math
import numbers
from typing import Any

import numpy as np

from ..backend import take, to_numpy
from ..base import Model
from ..exceptions import DivergenceError, ValidationError
from ..metrics.likelihood import free_energy_bits
from ..validation import (
    check_array,
    check_binary,
    check_dtype,
    check_int,
    check_param,
    check_random_state,
    check_sizes,
)

__all__ = ["HelmholtzMachine", "check_binary"]

_LN2 = math.log(2.0)
#: A pass whose mean description length exceeds this many times the n_0 bits of
#: sending the pixels raw (every pixel coded at probability 1/2) has diverged: a
#: machine that learns codes its images in fewer bits than that, and one started
#: at small weights begins within a few bits per pixel of it.
_RAW_FACTOR = 100.0


def _fmt(lr: Any, scale: float = 1.0) -> str:
    """A learning rate (number or per-layer sequence) as text, optionally scaled."""
    if isinstance(lr, numbers.Real):
        return f"{float(lr) * scale:g}"
    return "(" + ", ".join(f"{float(v) * scale:g}" for v in lr) + ")"


def _sigmoid(a: Any, xp: Any) -> Any:
    return 1.0 / (1.0 + xp.exp(-a))


def _log_bernoulli(t: Any, a: Any, xp: Any) -> Any:
    """Row sums of log P(t | logits a) in nats (stable)."""
    return (t * a - (xp.maximum(a, 0) + xp.log1p(xp.exp(-xp.abs(a))))).sum(axis=-1)


class HelmholtzMachine(Model):
    r"""Layered sigmoid belief networks (generative and recognition) trained by wake-sleep.

    Parameters
    ----------
    sizes : sequence of int
        Layer widths from the data up: ``(n_pixels, n_hidden_1, ..., n_top)``,
        e.g. ``(16, 8, 1)`` for the bars problem.
    lr : float or sequence of float
        Generative learning rates :math:`\varepsilon`: one number for all, or
        ``L + 1`` numbers, one per generative layer ``G_1 .. G_L`` and the last
        for the top biases :math:`b_L`.
    lr_recognition : float, sequence of float or None
        Recognition learning rates :math:`\varepsilon'` (``L`` numbers for
        ``R_1 .. R_L``, or one); ``None`` uses the generative rates.
    epochs : int
        Passes over ``X`` in :meth:`fit`.
    batch_size : int
        Images per wake-sleep step (a wake and a sleep phase on ``batch_size``
        images/dreams each; rates apply to the batch mean). ``1`` is online
        learning, as in the paper: a whole pass runs in one fused kernel
        (``hm_online``), with the uniform random numbers of the pass drawn
        up front.
    init_scale : float
        Standard deviation of the initial weights.
    init_bias : float or sequence of float
        Initial biases of layers ``0 .. L-1`` (one number for all, or ``L``
        numbers): the generative bias :math:`c_l` and, for ``l >= 1``, the
        recognition bias :math:`r_l` start there; the top bias :math:`b_L`
        starts at 0. Negative values start the machine sparse (its dreams
        mostly off, like the bars data), which helped wake-sleep find the bars.
    n_samples_energy : int
        Samples from :math:`Q` for the Monte-Carlo free energy when the
        hidden layers are too wide to enumerate (more than 20 units in all).
    dtype : {"float32", "float64"}
    backend : {"auto", "numpy", "numba", "cupy"}
    random_state : int, Generator or None
        Seed of the initial weights, the shuffling and all the sampling.
    verbose : bool
        Progress bar during :meth:`fit`.

    Attributes
    ----------
    G_, c_ : list of arrays
        Generative weights ``G_[l]`` (``(n_{l-1}, n_l)``, ``G_[0]`` is None) and
        biases ``c_[l]`` of layer ``l``; ``c_[L]`` is the top layer's bias
        :math:`b_L`.
    R_, r_ : list of arrays
        Recognition weights ``R_[l]`` (``(n_l, n_{l-1})``, ``R_[0]`` is None)
        and biases ``r_[l]`` (``r_[0]`` unused, zeros).
    history_ : dict of list
        Per epoch: ``"energy"``, the family's yardstick, the free energy
        :math:`F` in bits per image, mean over the pass: estimated, as the
        pass goes, by the sampled description length
        :math:`-\log_2 P(x, h) + \log_2 Q(h \mid x)` of each image's wake
        sample (a one-sample, unbiased estimate of :math:`F(x)` under the
        weights of that moment; :meth:`energy` gives the exact :math:`F` of
        the final weights); ``"wake_bits"``, the same number under its
        wake-sleep name; ``"sleep_bits"``, the mean
        :math:`-\log_2 Q(d_{1..L} \mid d_0)` of the dreams; ``"wall_time_s"``,
        seconds per pass.
    backend_ : str
        The concrete backend in use.

    Examples
    --------
    >>> from predcode.datasets.bars import make_bars
    >>> X = make_bars(2000, random_state=0)
    >>> hm = HelmholtzMachine(sizes=(16, 8, 1), lr=0.2, epochs=2, random_state=0).fit(X)
    >>> hm.energy(X[:5]).shape
    (5,)
    """

    ENERGY_UNIT = "bits"
    _KERNELS = ("hm_sample", "hm_delta", "hm_online")
    _LEARNED = ("n_features_in_", "G_", "c_", "R_", "r_", "history_")

    def __init__(
        self,
        sizes=(16, 8, 1),
        *,
        lr=0.2,
        lr_recognition=None,
        epochs: int = 10,
        batch_size: int = 10,
        init_scale: float = 0.1,
        init_bias=0.0,
        n_samples_energy: int = 1000,
        dtype: str = "float64",
        backend: str = "auto",
        random_state=None,
        verbose: bool = False,
    ):
        self.sizes = sizes
        self.lr = lr
        self.lr_recognition = lr_recognition
        self.epochs = epochs
        self.batch_size = batch_size
        self.init_scale = init_scale
        self.init_bias = init_bias
        self.n_samples_energy = n_samples_energy
        self.dtype = dtype
        self.backend = backend
        self.random_state = random_state
        self.verbose = verbose

    # -- validation ------------------------------------------------------------
    def _rates(self, value: Any, n: int, name: str) -> tuple[float, ...]:
        o = "HelmholtzMachine"
        if isinstance(value, numbers.Real) and not isinstance(value, bool):
            check_param(value, name, o, low=0.0, low_inclusive=True)
            return (float(value),) * n
        if isinstance(value, (str, bytes)) or not hasattr(value, "__len__"):
            raise ValidationError(
                f"{o}.{name}: expected a number or a sequence of {n} numbers, got {value!r}."
            )
        if len(value) != n:
            raise ValidationError(
                f"{o}.{name}: expected {n} rates for sizes={self.sizes_}, got {len(value)}."
            )
        for i, v in enumerate(value):
            check_param(v, f"{name}[{i}]", o, low=0.0, low_inclusive=True)
        return tuple(float(v) for v in value)

    def _validate(self) -> None:
        o = "HelmholtzMachine"
        self.sizes_ = check_sizes(self.sizes, owner=o)
        L = len(self.sizes_) - 1
        self.lr_ = self._rates(self.lr, L + 1, "lr")
        self.lr_recognition_ = (
            self.lr_[:L] if self.lr_recognition is None
            else self._rates(self.lr_recognition, L, "lr_recognition")
        )
        check_int(self.epochs, "epochs", o)
        check_int(self.batch_size, "batch_size", o)
        check_int(self.n_samples_energy, "n_samples_energy", o)
        check_param(self.init_scale, "init_scale", o, low=0.0, low_inclusive=True)
        if isinstance(self.init_bias, numbers.Real) and not isinstance(self.init_bias, bool):
            check_param(self.init_bias, "init_bias", o)
            self.init_bias_ = (float(self.init_bias),) * L
        else:
            if isinstance(self.init_bias, (str, bytes)) or not hasattr(self.init_bias, "__len__") \
                    or len(self.init_bias) != L:
                raise ValidationError(
                    f"{o}.init_bias: expected a number or {L} numbers (layers 0..{L - 1}), "
                    f"got {self.init_bias!r}."
                )
            for i, v in enumerate(self.init_bias):
                check_param(v, f"init_bias[{i}]", o)
            self.init_bias_ = tuple(float(v) for v in self.init_bias)
        check_param(self.verbose, "verbose", o, kind=bool)
        self.dtype_ = check_dtype(self.dtype, owner=o)
        self._rng = check_random_state(self.random_state, owner=o)

    def _to_runtime_device(self) -> None:
        """Parameters onto the backend's device after ``load`` (which restores host arrays)."""
        xp = self._xp
        self.G_ = [None] + [xp.asarray(w) for w in self.G_[1:]]
        self.R_ = [None] + [xp.asarray(w) for w in self.R_[1:]]
        self.c_ = [xp.asarray(v) for v in self.c_]
        self.r_ = [xp.asarray(v) for v in self.r_]

    def _check_X(self, X: Any, name: str = "X") -> Any:
        X = check_array(X, name, "HelmholtzMachine", shape=(None, self.sizes_[0]),
                        dtype=self.dtype_, xp=self._xp)
        check_binary(X, name, "HelmholtzMachine")
        return X

    def _init_weights(self) -> None:
        rng, s, dt, xp = self._rng, self.init_scale, self.dtype_, self._xp
        sizes = self.sizes_
        G: list = [None]
        R: list = [None]
        for l in range(1, len(sizes)):
            G.append(xp.asarray((s * rng.standard_normal((sizes[l - 1], sizes[l]))).astype(dt)))
            R.append(xp.asarray((s * rng.standard_normal((sizes[l], sizes[l - 1]))).astype(dt)))
        self.G_, self.R_ = G, R
        bias = self.init_bias_ + (0.0,)
        self.c_ = [xp.full(n, bias[l], dtype=dt) for l, n in enumerate(sizes)]
        self.r_ = [xp.full(n, bias[l] if l >= 1 else 0.0, dtype=dt)
                   for l, n in enumerate(sizes)]
        self.history_ = {}

    # -- random numbers ------------------------------------------------------------
    def _uniform(self, shape: tuple[int, ...]) -> Any:
        """Uniform numbers from the model's seeded Generator, on the model's device."""
        u = self._rng.random(shape).astype(self.dtype_)
        return self._xp.asarray(u) if self._xp is not np else u

    # -- the two phases --------------------------------------------------------------
    def _recognise(self, X: Any) -> list:
        """Bottom-up sample ``[x, s_1, ..., s_L]`` with the recognition weights."""
        xp, k = self._xp, self._k
        states = [X]
        for l in range(1, len(self.sizes_)):
            n = X.shape[0]
            prob = xp.empty((n, self.sizes_[l]), dtype=self.dtype_)
            out = xp.empty_like(prob)
            k["hm_sample"](states[-1], self.R_[l], self.r_[l], self._uniform(prob.shape),
                           prob, out)
            states.append(out)
        return states

    def _dream(self, n: int) -> list:
        """Top-down sample ``[d_0, d_1, ..., d_L]`` from the generative model."""
        xp, k, L = self._xp, self._k, len(self.sizes_) - 1
        top_p = _sigmoid(self.c_[L], xp)
        states: list = [None] * (L + 1)
        states[L] = (self._uniform((n, self.sizes_[L])) < top_p).astype(self.dtype_)
        for l in range(L, 0, -1):
            prob = xp.empty((n, self.sizes_[l - 1]), dtype=self.dtype_)
            out = xp.empty_like(prob)
            k["hm_sample"](states[l], self.G_[l], self.c_[l - 1],
                           self._uniform(prob.shape), prob, out)
            states[l - 1] = out
        return states

    def _wake(self, X: Any) -> Any:
        """Wake phase on a batch; returns the summed sampled description length (nats)."""
        xp, L = self._xp, len(self.sizes_) - 1
        s = self._recognise(X)
        n = X.shape[0]
        cost = 0.0
        # log Q(h | x) of the sample, with the recognition weights that drew it
        for l in range(1, L + 1):
            cost = cost + _log_bernoulli(s[l], s[l - 1] @ self.R_[l].T + self.r_[l], xp).sum()
        b = self.c_[L]
        logp_top = _log_bernoulli(s[L], xp.broadcast_to(b, s[L].shape), xp).sum()
        self.c_[L] += (self.lr_[L] / n) * (s[L] - _sigmoid(b, xp)).sum(axis=0)
        cost = cost - logp_top
        for l in range(1, L + 1):
            cost = cost - self._k["hm_delta"](self.G_[l], self.c_[l - 1], s[l], s[l - 1],
                                              self.lr_[l - 1])
        return cost

    def _sleep(self, n: int) -> Any:
        """Sleep phase on ``n`` dreams; returns the summed -log Q(d_{1..L} | d_0) (nats)."""
        d = self._dream(n)
        cost = 0.0
        for l in range(1, len(self.sizes_)):
            cost = cost - self._k["hm_delta"](self.R_[l], self.r_[l], d[l - 1], d[l],
                                              self.lr_recognition_[l - 1])
        return cost

    def _online_pass(self, X: Any) -> tuple[float, float]:
        """Online wake-sleep over the rows of ``X`` in order (kernel ``hm_online``).

        Returns the summed wake and sleep costs in nats (as :meth:`_wake`,
        :meth:`_sleep`). The parameters travel to the kernel flat and come back
        into the same arrays.
        """
        xp, L = self._xp, len(self.sizes_) - 1
        n = X.shape[0]
        G = xp.concatenate([self.G_[l].ravel() for l in range(1, L + 1)])
        R = xp.concatenate([self.R_[l].ravel() for l in range(1, L + 1)])
        c = xp.concatenate(self.c_)
        r = xp.concatenate(self.r_)
        K = sum(self.sizes_[1:]) + sum(self.sizes_)
        U = self._uniform((n, K))
        wake, sleep = self._k["hm_online"](self.sizes_, G, R, c, r, X, U,
                                           self.lr_, self.lr_recognition_)
        ow = ob = 0
        for l in range(L + 1):
            if l >= 1:
                m = self.sizes_[l - 1] * self.sizes_[l]
                self.G_[l][...] = G[ow:ow + m].reshape(self.G_[l].shape)
                self.R_[l][...] = R[ow:ow + m].reshape(self.R_[l].shape)
                ow += m
            self.c_[l][...] = c[ob:ob + self.sizes_[l]]
            self.r_[l][...] = r[ob:ob + self.sizes_[l]]
            ob += self.sizes_[l]
        return wake, sleep

    # -- fitting ----------------------------------------------------------------------
    def fit(self, X: Any, y: Any = None) -> HelmholtzMachine:
        """Learn from scratch by wake-sleep: ``epochs`` shuffled passes over ``X``.

        Parameters
        ----------
        X : array of shape (n_samples, sizes[0])
            Binary images (0/1), numpy or (with the cupy backend) cupy.
        y : None
            Unsupervised; must be None.

        Returns
        -------
        HelmholtzMachine
            ``self``. A failed fit (bad input, divergence) leaves the model
            unfitted.

        Raises
        ------
        DivergenceError
            When a pass's description length becomes non-finite (or blows up):
            the message names ``lr``.
        """
        return super().fit(X, y)

    def partial_fit(self, X: Any, y: Any = None) -> HelmholtzMachine:
        """One pass over ``X`` from the current weights (the first call initialises).

        Learning rates set with ``set_params`` since the last call apply from
        this pass on (a schedule is a loop of ``set_params`` and ``partial_fit``).
        If the pass fails, weights, history and random stream are restored.
        """
        return super().partial_fit(X, y)

    def _init_fit(self, X: Any, y: Any = None) -> Any:
        self._no_y(y)
        self._validate()
        self._setup_runtime(X)
        X = self._check_X(X)
        self._init_weights()
        self.n_features_in_ = self.sizes_[0]
        return X

    def _fit_data(self, X: Any, y: Any = None) -> Any:
        self._no_y(y)
        X = self._check_X(X)
        L = len(self.sizes_) - 1
        # rates changed with set_params apply from this pass on
        self.lr_ = self._rates(self.lr, L + 1, "lr")
        self.lr_recognition_ = (
            self.lr_[:L] if self.lr_recognition is None
            else self._rates(self.lr_recognition, L, "lr_recognition")
        )
        return X

    @staticmethod
    def _no_y(y: Any) -> None:
        if y is not None:
            raise ValidationError(
                "HelmholtzMachine: wake-sleep is unsupervised and takes no y; drop it."
            )

    def _epoch(self, X: Any, epoch: int, n_epochs: int) -> dict[str, float]:
        """One shuffled wake-sleep pass; the description lengths in bits per image."""
        n, bs = X.shape[0], self.batch_size
        order = self._rng.permutation(n)
        wake, sleep = [], []
        if bs == 1:  # online: one fused kernel call per pass
            w1, s1 = self._online_pass(take(X, order))
            wake.append(w1)
            sleep.append(s1)
        for start in range(0, n if bs > 1 else 0, bs):
            idx = order[start:start + bs]
            wake.append(self._wake(take(X, idx)))
            sleep.append(self._sleep(len(idx)))
        # one device->host sync per pass
        w = float(sum(to_numpy(v) for v in wake)) / (n * _LN2)
        s = float(sum(to_numpy(v) for v in sleep)) / (n * _LN2)
        limit = _RAW_FACTOR * self.sizes_[0]
        if math.isfinite(w) and w > limit:  # non-finite values: the base loop's check
            raise DivergenceError(
                f"HelmholtzMachine.lr={_fmt(self.lr)}: training diverged in epoch {epoch + 1} "
                f"of {n_epochs} (description length {w:.4g} bits per image, more than "
                f"{_RAW_FACTOR:g} times the {self.sizes_[0]} bits of sending the pixels raw); "
                f"use a smaller lr, e.g. lr={_fmt(self.lr, 0.1)}."
            )
        return {"energy": w, "wake_bits": w, "sleep_bits": s}

    # -- protocol ----------------------------------------------------------------------
    def _prepared(self, X: Any, method: str) -> Any:
        self._check_fitted(method)
        self._ensure_runtime()
        return self._check_X(X)

    def infer(self, X: Any, *, return_all: bool = False) -> Any:
        r"""Recognition probabilities :math:`Q(s_1{=}1 \mid x)` of the first hidden layer.

        A deterministic bottom-up pass through the means (each layer's
        probabilities drive the next). With ``return_all``, the list
        ``[x, q_1, ..., q_L]``.
        """
        X = self._prepared(X, "infer")
        xp = self._xp
        out = [X]
        for l in range(1, len(self.sizes_)):
            out.append(_sigmoid(out[-1] @ self.R_[l].T + self.r_[l], xp))
        return out if return_all else out[1]

    def energy(self, X: Any, y: Any = None) -> Any:
        r"""Description length :math:`F(x)` in bits per image (see the module docstring).

        Exact (enumerating the hidden configurations) when the hidden layers
        hold at most 20 units in all; otherwise a Monte-Carlo estimate from
        ``n_samples_energy`` recognition samples per image, seeded by
        ``random_state`` (the training random stream is not touched).

        Returns
        -------
        array of shape (n_samples,)
            float64, on the device of ``X`` (computed there by
            :func:`predcode.metrics.likelihood.free_energy_bits` from the
            parameters).
        """
        self._no_y(y)
        X = self._prepared(X, "energy")
        gen, rec = self._params_f64()
        return free_energy_bits(gen, rec, X, n_samples=self.n_samples_energy,
                                random_state=check_random_state(self.random_state))

    def score(self, X: Any, y: Any = None) -> float:
        """Minus the mean description length :math:`F` in bits per image (larger is better)."""
        self._check_fitted("score")
        return -float(to_numpy(self.energy(X, y)).mean())

    def _params_f64(self) -> tuple[dict, dict]:
        """Generative and recognition parameters as float64 arrays on the model's device."""
        f64 = self._xp.float64
        gen = {"G": [None] + [w.astype(f64) for w in self.G_[1:]],
               "c": [v.astype(f64) for v in self.c_]}
        rec = {"R": [None] + [w.astype(f64) for w in self.R_[1:]],
               "r": [v.astype(f64) for v in self.r_]}
        return gen, rec

    def sample(self, n_samples: int, *, random_state: Any = None, return_all: bool = False):
        """Dream ``n_samples`` images from the generative model (ancestral sampling)."""
        self._check_fitted("sample")
        self._ensure_runtime()
        n = check_int(n_samples, "n_samples", "HelmholtzMachine.sample")
        saved = self._rng
        if random_state is not None:
            self._rng = check_random_state(random_state)
        try:
            d = self._dream(n)
        finally:
            self._rng = saved
        return d if return_all else d[0]

    def generative_params(self) -> dict[str, list]:
        """Host (numpy float64) copies of the generative parameters ``G``, ``c``."""
        self._check_fitted("generative_params")
        return {"G": [None] + [to_numpy(w).astype(float) for w in self.G_[1:]],
                "c": [to_numpy(v).astype(float) for v in self.c_]}

    def recognition_params(self) -> dict[str, list]:
        """Host (numpy float64) copies of the recognition parameters ``R``, ``r``."""
        self._check_fitted("recognition_params")
        return {"R": [None] + [to_numpy(w).astype(float) for w in self.R_[1:]],
                "r": [to_numpy(v).astype(float) for v in self.r_]}

    # -- persistence -----------------------------------------------------------------------
    def _state(self) -> dict[str, np.ndarray]:
        L = len(self.sizes_) - 1
        st = {}
        for l in range(1, L + 1):
            st[f"G_{l}"] = to_numpy(self.G_[l])
            st[f"R_{l}"] = to_numpy(self.R_[l])
        for l in range(L + 1):
            st[f"c_{l}"] = to_numpy(self.c_[l])
            st[f"r_{l}"] = to_numpy(self.r_[l])
        return st

    def _expected_shapes(self) -> dict[str, tuple[int, ...]]:
        sizes = check_sizes(self.sizes, owner="HelmholtzMachine")
        sh = {}
        for l in range(1, len(sizes)):
            sh[f"G_{l}"] = (sizes[l - 1], sizes[l])
            sh[f"R_{l}"] = (sizes[l], sizes[l - 1])
        for l in range(len(sizes)):
            sh[f"c_{l}"] = (sizes[l],)
            sh[f"r_{l}"] = (sizes[l],)
        return sh

    def _set_state(self, state: dict[str, np.ndarray]) -> None:
        self._validate()
        L = len(self.sizes_) - 1
        dt = self.dtype_
        self.G_ = [None] + [state[f"G_{l}"].astype(dt) for l in range(1, L + 1)]
        self.R_ = [None] + [state[f"R_{l}"].astype(dt) for l in range(1, L + 1)]
        self.c_ = [state[f"c_{l}"].astype(dt) for l in range(L + 1)]
        self.r_ = [state[f"r_{l}"].astype(dt) for l in range(L + 1)]
        self.n_features_in_ = self.sizes_[0]
