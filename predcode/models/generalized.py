r"""Hierarchical dynamic models in generalized coordinates of motion.

Friston (2008), *Hierarchical models in the brain*, PLoS Comput Biol 4:e1000211;
Friston, Trujillo-Barreto & Daunizeau (2008), *DEM: a variational treatment of
dynamic systems*, NeuroImage 41:849-885.

A hierarchical dynamic model (HDM) with levels :math:`i = 1..m` is

.. math::

    v_{i-1} = g_i(x_i, v_i, \theta) + z_i, \qquad
    \dot x_i = f_i(x_i, v_i, \theta) + w_i, \qquad
    v_m = \eta + z_{m+1},

with data :math:`y = v_0`. In *generalized coordinates* :math:`\tilde u = [u, u',
u'', \dots]` (embedding order :math:`n`) and under local linearity (SPM's convention:
Jacobians are evaluated at the zeroth order and applied to the higher orders),

.. math::

    \tilde g = [g,\; g_x x' + g_v v',\; g_x x'' + g_v v'', \dots], \qquad
    \tilde f = [f,\; f_x x' + f_v v', \dots],

and the generalized prediction errors are :math:`\tilde\varepsilon_v = \tilde v_{i-1}
- \tilde g_i`, :math:`\tilde\varepsilon_x = D\tilde x - \tilde f` with the block shift
operator :math:`D` (:func:`shift_operator`). Generalized noise with a Gaussian
autocorrelation of smoothness :math:`s` (in time bins) has covariance
:math:`\tilde\Sigma = S(s) \otimes \Sigma` and precision :math:`\tilde\Pi = S(s)^{-1}
\otimes \Pi` (:func:`temporal_covariance`, :func:`temporal_precision`).

Conventions taken from SPM (``spm_DEM_R``, ``spm_DEM_embed``, ``spm_DEM_M_set``)
where the papers leave them open: the autocorrelation is
:math:`\rho(h) = \exp(-h^2 / (4 s^2))`; the data are embedded at each time bin by
inverting a local Taylor expansion over the ``n`` bins around it, with the end bins
repeated where the window leaves the series; precisions are
``exp(h) * V`` with log-precision hyperparameters ``h``; hidden states and data have
``n`` orders and causes ``d`` (SPM's ``E.n + 1`` and ``E.d + 1``), with ``d = n`` by
default.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..exceptions import ValidationError
from ..validation import check_array, check_param

__all__ = [
    "temporal_covariance",
    "temporal_precision",
    "shift_operator",
    "embed",
    "Level",
    "HDM",
    "numerical_jacobian",
]

Fn = Callable[[np.ndarray, np.ndarray, np.ndarray], np.ndarray]


def temporal_covariance(n: int, s: float) -> np.ndarray:
    r"""Covariance :math:`S(s)` of the first ``n`` temporal derivatives of smooth noise.

    For an autocorrelation :math:`\rho(h) = \exp(-h^2/(4s^2))` the covariance of the
    :math:`i`-th and :math:`j`-th derivatives is :math:`S_{ij} = (-1)^i
    \rho^{(i+j)}(0)`, with :math:`\rho^{(2k)}(0) = (-1)^k (2k-1)!! / (2 s^2)^k` and
    zero for odd orders (SPM ``spm_DEM_R``). For ``n = 3, s = 1/2``:
    ``[[1, 0, -2], [0, 2, 0], [-2, 0, 12]]``.

    Parameters
    ----------
    n : int
        Embedding order (number of generalized coordinates, >= 1).
    s : float
        Smoothness (standard deviation of the Gaussian kernel, in time bins), > 0.
    """
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 1:
        raise ValidationError(f"temporal_covariance.n: expected an int >= 1, got {n!r}.")
    check_param(s, "s", "temporal_covariance", low=0)
    r = np.zeros(2 * n - 1)
    for k in range(n):  # even orders 2k
        dfact = float(np.prod(np.arange(1, 2 * k, 2))) if k else 1.0
        r[2 * k] = (-1) ** k * dfact / (2.0 * s * s) ** k
    S = np.empty((n, n))
    for i in range(n):
        S[i] = (-1) ** i * r[i : i + n]
    return S + 0.0  # no negative zeros


def temporal_precision(n: int, s: float) -> np.ndarray:
    """Temporal precision :math:`R(s) = S(s)^{-1}` (see :func:`temporal_covariance`)."""
    return np.linalg.inv(temporal_covariance(n, s))


def shift_operator(n: int, d: int = 1) -> np.ndarray:
    r"""Block shift (derivative) operator :math:`D = \mathrm{diag}(1, 1) \otimes I_d`.

    ``D @ [u, u', u'', ...] = [u', u'', ..., 0]`` for ``n`` orders of a ``d``-vector.
    """
    return np.kron(np.eye(n, k=1), np.eye(d))


def embed(Y: Any, n: int, t: int, dt: float = 1.0, boundary: str = "clamp") -> np.ndarray:
    r"""Generalized coordinates of a time series at bin ``t`` (SPM ``spm_DEM_embed``).

    The ``n`` bins around ``t`` (offsets :math:`\tau_k = -\lfloor (n-1)/2 \rfloor, \dots`)
    are fitted exactly by a Taylor polynomial about ``t``: with :math:`T_{kj} =
    \tau_k^j / j!`, :math:`\tilde y = T^{-1} Y_{\text{window}}`.

    Near the ends of the series the window leaves the data. ``boundary="clamp"``
    (default, SPM's convention) keeps the centred offsets and replaces every bin
    outside the series by the nearest end bin. ``boundary="shift"`` slides the window
    inside the series (a one-sided fit, exact for polynomials of degree < ``n``).
    The one-sided fit extrapolates, so it amplifies noise in the high orders: for
    noise of smoothness ``s = 1/2`` and ``n = 6`` the first bin's
    :math:`\tilde z^\top S(s)^{-1}\tilde z` is 74 times its nominal value ``n``
    (2400 times at ``n = 8``), against 0.4 times with clamping (exact values, see
    ``tests/test_generalized.py``). That excess biased DEM's precision estimates low
    and made the error grow with ``n``; hence clamping is the default.

    Parameters
    ----------
    Y : array, shape (N, d)
        Time series (rows are time bins).
    n : int
        Embedding order.
    t : int
        Time bin (0-based).
    dt : float
        Bin width.
    boundary : {"clamp", "shift"}
        Treatment of windows that leave the series (see above).

    Returns
    -------
    ndarray, shape (n * d,)
        ``[y, y', ..., y^{(n-1)}]`` at ``t``.
    """
    Y = np.asarray(Y, dtype=float)
    N = Y.shape[0]
    if N < n:
        raise ValidationError(
            f"embed.Y: need at least n = {n} time bins to embed, got {N}; "
            "lower the embedding order."
        )
    if boundary == "shift":
        start = min(max(t - (n - 1) // 2, 0), N - n)
        idx = np.arange(start, start + n)
        tau = (idx - t) * dt
    elif boundary == "clamp":
        off = np.arange(n) - (n - 1) // 2
        idx = np.clip(t + off, 0, N - 1)
        tau = off * dt
    else:
        raise ValidationError(
            f"embed.boundary: expected 'clamp' or 'shift', got {boundary!r}."
        )
    T = np.array([[tk**j / math.factorial(j) for j in range(n)] for tk in tau])
    return np.linalg.solve(T, Y[idx]).reshape(-1)


def numerical_jacobian(
    fun: Callable[[np.ndarray], np.ndarray], x: np.ndarray, h: float = 1e-6
) -> np.ndarray:
    """Central-difference Jacobian of ``fun`` at ``x`` (columns: d fun / d x_j)."""
    x = np.asarray(x, dtype=float)
    f0 = np.atleast_1d(np.asarray(fun(x), dtype=float))
    J = np.empty((f0.size, x.size))
    for j in range(x.size):
        step = h * max(1.0, abs(x[j]))
        xp_, xm = x.copy(), x.copy()
        xp_[j] += step
        xm[j] -= step
        J[:, j] = (np.atleast_1d(fun(xp_)) - np.atleast_1d(fun(xm))) / (2 * step)
    return J


def _jacobian(
    fun: Fn,
    analytic: Fn | None,
    x: np.ndarray,
    v: np.ndarray,
    theta: np.ndarray,
    wrt: int,
    shape: tuple[int, int],
) -> np.ndarray:
    """Analytic Jacobian of ``fun(x, v, theta)`` w.r.t. ``x`` (wrt=0) or ``v`` (wrt=1),
    or central differences when none is given."""
    if analytic is not None:
        return np.asarray(analytic(x, v, theta), float).reshape(shape)
    if wrt == 0:
        return numerical_jacobian(lambda a: fun(a, v, theta), x).reshape(shape)
    return numerical_jacobian(lambda b: fun(x, b, theta), v).reshape(shape)


@dataclass
class Level:
    r"""One level of an HDM: :math:`v_{i-1} = g(x, v, \theta) + z`, :math:`\dot x = f(x, v,
    \theta) + w`.

    Parameters
    ----------
    g : callable ``g(x, v, theta) -> (n_out,)``
        Prediction of the level below (the data at level 1).
    n_out : int
        Size of the level below (data size at level 1).
    n_x, n_v : int
        Hidden states and causes of this level (``n_x = 0``: static level).
    f : callable ``f(x, v, theta) -> (n_x,)``, optional
        Flow of the hidden states (required when ``n_x > 0``).
    gx, gv, fx, fv : callable, optional
        Analytic Jacobians (same arguments); numerical (central differences) otherwise.
    V : array (n_out, n_out), optional
        Base precision of :math:`z` (identity); the precision is ``exp(hv) * V``.
    W : array (n_x, n_x), optional
        Base precision of :math:`w` (identity); the precision is ``exp(hw) * W``.
    hv, hw : float
        Log-precisions (prior expectation of the hyperparameters).
    x0 : array (n_x,), optional
        Initial expectation of the hidden states (zeros).
    """

    g: Fn
    n_out: int
    n_x: int = 0
    n_v: int = 0
    f: Fn | None = None
    gx: Fn | None = None
    gv: Fn | None = None
    fx: Fn | None = None
    fv: Fn | None = None
    V: Any = None
    W: Any = None
    hv: float = 0.0
    hw: float = 0.0
    x0: Any = None


def _check_precision(P: Any, d: int, name: str) -> np.ndarray:
    if P is None:
        return np.eye(d)
    P = np.atleast_2d(np.asarray(P, dtype=float))
    if P.shape != (d, d):
        raise ValidationError(
            f"HDM.{name}: expected a ({d}, {d}) precision matrix, got shape {P.shape}."
        )
    if not np.all(np.isfinite(P)) or not np.allclose(P, P.T):
        raise ValidationError(f"HDM.{name}: a precision matrix must be finite and symmetric.")
    if np.linalg.eigvalsh(P).min() <= 0:
        raise ValidationError(
            f"HDM.{name}: precision matrix is not positive definite (smallest eigenvalue "
            f"{np.linalg.eigvalsh(P).min():.3g}); pass a symmetric positive-definite matrix."
        )
    return P


def _same_number(a: Any, b: Any) -> bool:
    if isinstance(a, np.ndarray) or isinstance(b, np.ndarray):
        return (isinstance(a, np.ndarray) and isinstance(b, np.ndarray)
                and a.shape == b.shape and bool(np.array_equal(a, b)))
    return a == b


@dataclass
class HDM:
    r"""A hierarchical dynamic model: levels, parameters, priors and embedding.

    Parameters
    ----------
    levels : sequence of :class:`Level`
        Level 1 predicts the data; level ``i + 1`` predicts the causes of level ``i``.
    eta : float or array (n_v of the top level,) or callable ``eta(t)``
        Prior expectation of the top-level causes (zero).
    eta_precision : array or float
        Base precision of the top-level causes (identity); times ``exp(h_eta)``.
    h_eta : float
        Log-precision of the top-level cause prior.
    theta : array, optional
        Parameters (prior expectation), passed to every ``f`` and ``g``.
    theta_precision : float or array
        Prior precision of the parameters (a large value effectively fixes them).
    n : int
        Embedding order of the hidden states and the data (SPM's ``E.n + 1``; the
        convolution demo uses 6).
    d : int, optional
        Embedding order of the causes, ``1 <= d <= n`` (SPM's ``E.d + 1``); ``None``
        (default) uses ``n``. Orders of the causes at and above ``d`` are held at zero,
        which acts as a smoothness prior on the causes.
    s : float
        Temporal smoothness of the generalized noise, in time bins (SPM: 1/2).
    dt : float
        Time-bin width.
    boundary : {"clamp", "shift"}
        How data are embedded at the ends of the series (see :func:`embed`; SPM's
        ``"clamp"`` by default).
    """

    levels: Sequence[Level]
    eta: Any = 0.0
    eta_precision: Any = None
    h_eta: float = 0.0
    theta: Any = None
    theta_precision: Any = 1e8
    n: int = 6
    d: Any = None
    s: float = 0.5
    dt: float = 1.0
    boundary: str = "clamp"
    _sizes: dict = field(default_factory=dict, init=False, repr=False)
    _zoo: Any = field(default=None, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if not self.levels:
            raise ValidationError("HDM.levels: expected at least one Level.")
        self.theta = (
            np.zeros(0)
            if self.theta is None
            else np.atleast_1d(np.asarray(self.theta, dtype=float)).copy()
        )
        if self.n < 1:
            raise ValidationError(f"HDM.n: embedding order must be >= 1, got {self.n}.")
        if self.d is None:
            self.d = self.n
        if (
            isinstance(self.d, bool)
            or not isinstance(self.d, (int, np.integer))
            or not 1 <= self.d <= self.n
        ):
            raise ValidationError(
                f"HDM.d: the causes' embedding order must be an int in [1, n = {self.n}], "
                f"got {self.d!r}."
            )
        check_param(self.s, "s", "HDM", low=0)
        check_param(self.dt, "dt", "HDM", low=0)
        if self.boundary not in ("clamp", "shift"):
            raise ValidationError(
                f"HDM.boundary: expected 'clamp' or 'shift', got {self.boundary!r}."
            )
        tp = np.asarray(self.theta_precision, dtype=float)
        self.theta_precision = (
            np.eye(self.theta.size) * tp
            if tp.ndim == 0
            else _check_precision(tp, self.theta.size, "theta_precision")
        )
        for i, lv in enumerate(self.levels):
            if i > 0 and lv.n_out != self.levels[i - 1].n_v:
                raise ValidationError(
                    f"HDM.levels[{i}].n_out: level {i + 1} predicts the {self.levels[i - 1].n_v} "
                    f"causes of level {i}, got n_out = {lv.n_out}; make them match."
                )
            if lv.n_x > 0 and lv.f is None:
                raise ValidationError(
                    f"HDM.levels[{i}].f: a level with n_x = {lv.n_x} needs a flow f."
                )
            lv.V = _check_precision(lv.V, lv.n_out, f"levels[{i}].V")
            lv.W = _check_precision(lv.W, lv.n_x, f"levels[{i}].W")
        top = self.levels[-1].n_v
        self.eta_precision = _check_precision(self.eta_precision, top, "eta_precision")
        # check dimensions of f and g once, at the initial point
        for i, lv in enumerate(self.levels):
            x, v = np.zeros(lv.n_x) if lv.x0 is None else np.asarray(lv.x0, float), np.zeros(lv.n_v)
            if x.shape != (lv.n_x,):
                raise ValidationError(
                    f"HDM.levels[{i}].x0: expected shape ({lv.n_x},), got {x.shape}."
                )
            gy = np.atleast_1d(lv.g(x, v, self.theta))
            if gy.shape != (lv.n_out,):
                raise ValidationError(
                    f"HDM.levels[{i}].g: returns shape {gy.shape}, but n_out = {lv.n_out}; "
                    "g must return one value per output of the level below."
                )
            if lv.n_x:
                fx = np.atleast_1d(lv.f(x, v, self.theta))
                if fx.shape != (lv.n_x,):
                    raise ValidationError(
                        f"HDM.levels[{i}].f: returns shape {fx.shape}, but n_x = {lv.n_x}; "
                        "f must return the time derivative of every hidden state."
                    )
        self.nx = sum(lv.n_x for lv in self.levels)
        self.nv = sum(lv.n_v for lv in self.levels)
        self.ny = self.levels[0].n_out
        # hyperparameter blocks: (kind, level) for every z_i (v-errors), the cause prior, and w_i
        self.h_blocks = (
            [("v", i) for i in range(len(self.levels))]
            + [("eta", -1)]
            + [("x", i) for i, lv in enumerate(self.levels) if lv.n_x]
        )

    # ------------------------------------------------------------------ zoo identity
    def _fingerprint(self) -> list[Any]:
        """Every number that defines the model (sizes, priors, precisions, parameters)."""
        out: list[Any] = [self.n, self.d, float(self.s), float(self.dt), self.boundary,
                          float(self.h_eta), self.theta, self.theta_precision,
                          self.eta_precision, None if callable(self.eta) else np.asarray(self.eta)]
        for lv in self.levels:
            out += [lv.n_out, lv.n_x, lv.n_v, float(lv.hv), float(lv.hw), lv.V, lv.W,
                    None if lv.x0 is None else np.asarray(lv.x0, float)]
        return out

    def _tag_zoo(self, name: str, params: dict[str, Any], rebuild: Callable) -> None:
        """Record that this model is the zoo model ``name`` built with ``params``."""
        fp = [a.copy() if isinstance(a, np.ndarray) else a for a in self._fingerprint()]
        self._zoo = (name, params, fp, rebuild)

    def zoo_spec(self) -> dict[str, Any] | None:
        """``{"zoo": name, "params": {...}}`` for an unchanged model of the zoo, else ``None``.

        Models built by :mod:`predcode.models.hdm_zoo` carry their name and arguments;
        a model changed after building (e.g. a new ``levels[0].x0``) no longer matches
        its recorded numbers and gives ``None``, like any user-built model.
        """
        if self._zoo is None:
            return None
        name, params, fp, _ = self._zoo
        now = self._fingerprint()
        if len(now) != len(fp) or not all(_same_number(a, b) for a, b in zip(now, fp, strict=True)):
            return None
        return {"zoo": name, "params": params}

    def __eq__(self, other: object) -> bool:
        """Same object, or the same unchanged zoo model (user callables cannot be compared)."""
        if self is other:
            return True
        if not isinstance(other, HDM):
            return NotImplemented
        spec = self.zoo_spec()
        return spec is not None and spec == other.zoo_spec()

    __hash__ = None  # mutable

    def __reduce_ex__(self, protocol: Any) -> Any:
        # a zoo model pickles (and deep-copies) by name: its lambdas could not be pickled
        spec = self.zoo_spec()
        if spec is None:
            return super().__reduce_ex__(protocol)
        return (self._zoo[3], (spec["zoo"], spec["params"]))

    # ------------------------------------------------------------------ helpers
    def x_init(self) -> np.ndarray:
        """Initial hidden-state expectation (stacked over levels)."""
        parts = [
            np.zeros(lv.n_x) if lv.x0 is None else np.asarray(lv.x0, float) for lv in self.levels
        ]
        return np.concatenate(parts) if parts else np.zeros(0)

    def eta_at(self, t: int) -> np.ndarray:
        """Prior expectation of the top-level causes at bin ``t``."""
        e = self.eta(t) if callable(self.eta) else self.eta
        return np.broadcast_to(np.asarray(e, float), (self.levels[-1].n_v,)).copy()

    def h_prior(self) -> np.ndarray:
        """Prior expectation of every log-precision (order of ``h_blocks``)."""
        out = []
        for kind, i in self.h_blocks:
            out.append(
                self.h_eta
                if kind == "eta"
                else (self.levels[i].hv if kind == "v" else self.levels[i].hw)
            )
        return np.array(out, float)

    def split(self, X: np.ndarray, V: np.ndarray) -> list[tuple[np.ndarray, np.ndarray]]:
        """Split stacked states/causes into per-level ``(x_i, v_i)``."""
        out, ix, iv = [], 0, 0
        for lv in self.levels:
            out.append((X[ix : ix + lv.n_x], V[iv : iv + lv.n_v]))
            ix += lv.n_x
            iv += lv.n_v
        return out

    def evaluate(self, X: np.ndarray, V: np.ndarray, theta: np.ndarray) -> dict[str, np.ndarray]:
        """Stacked ``g``, ``f`` and their Jacobians at ``(X, V, theta)``.

        ``G`` (size ``ny + nv``) holds every level's prediction of the level below and
        ``-eta`` handled outside; ``Gx, Gv, Fx, Fv`` are block-diagonal in the levels.
        """
        L = self.levels
        nout = sum(lv.n_out for lv in L)
        G, F = np.empty(nout), np.empty(self.nx)
        Gx, Gv = np.zeros((nout, self.nx)), np.zeros((nout, self.nv))
        Fx, Fv = np.zeros((self.nx, self.nx)), np.zeros((self.nx, self.nv))
        io = ix = iv = 0
        for lv, (x, v) in zip(L, self.split(X, V), strict=True):
            so, sx, sv = slice(io, io + lv.n_out), slice(ix, ix + lv.n_x), slice(iv, iv + lv.n_v)
            G[so] = lv.g(x, v, theta)
            Gx[so, sx] = _jacobian(lv.g, lv.gx, x, v, theta, 0, (lv.n_out, lv.n_x))
            Gv[so, sv] = _jacobian(lv.g, lv.gv, x, v, theta, 1, (lv.n_out, lv.n_v))
            if lv.n_x:
                F[sx] = lv.f(x, v, theta)
                Fx[sx, sx] = _jacobian(lv.f, lv.fx, x, v, theta, 0, (lv.n_x, lv.n_x))
                Fv[sx, sv] = _jacobian(lv.f, lv.fv, x, v, theta, 1, (lv.n_x, lv.n_v))
            io, ix, iv = io + lv.n_out, ix + lv.n_x, iv + lv.n_v
        return {"G": G, "F": F, "Gx": Gx, "Gv": Gv, "Fx": Fx, "Fv": Fv}

    def check_data(self, Y: Any, owner: str = "DEM") -> np.ndarray:
        """Validate data ``Y`` of shape ``(N, ny)`` (finite, at least ``n`` bins)."""
        Y = check_array(Y, "Y", owner, ndim=2, shape=(None, self.ny), dtype=np.float64)
        if Y.shape[0] < self.n:
            raise ValidationError(
                f"{owner}.Y: need at least n = {self.n} time bins, got {Y.shape[0]}."
            )
        return Y
