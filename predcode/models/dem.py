r"""Dynamic expectation maximisation (DEM) and generalized filtering.

Friston, Trujillo-Barreto & Daunizeau (2008), *DEM: a variational treatment of
dynamic systems*, NeuroImage 41:849-885; Friston, Stephan, Li & Daunizeau (2010),
*Generalised filtering*, Math Probl Eng 2010:621670.

For an :class:`~predcode.models.generalized.HDM`, the generalized states
:math:`\tilde u = [\tilde x, \tilde v]` at each time bin carry a Gaussian
(Laplace) posterior. With generalized errors :math:`\tilde\varepsilon(\tilde u,
\theta)`, their precision :math:`\tilde\Pi(h) = \sum_j e^{h_j} Q_j` and
:math:`\tilde\varepsilon_u = \partial\tilde\varepsilon/\partial\tilde u`:

**D-step** (states). The expectation follows the flow

.. math::

    \dot{\tilde u} = D\tilde u + \partial_{\tilde u} F, \qquad
    \partial_{\tilde u} F = -\tilde\varepsilon_u^\top\tilde\Pi\tilde\varepsilon, \qquad
    J = D - \tilde\varepsilon_u^\top\tilde\Pi\tilde\varepsilon_u,

integrated between time bins by local linearisation (Ozaki 1992):
:math:`\Delta\tilde u = (e^{\Delta t J} - I) J^{-1} \dot{\tilde u}` (computed as a
block of one augmented matrix exponential, so a singular :math:`J` is fine). The
conditional covariance is :math:`\Sigma_u = (\tilde\varepsilon_u^\top\tilde\Pi
\tilde\varepsilon_u)^{-1}`.

**E-step** (parameters). Gauss-Newton on the free energy summed over time:
:math:`\Delta\theta = -(\partial_{\theta\theta} F)^{-1} \partial_\theta F` with
:math:`\partial_\theta F = -\sum_t \tilde\varepsilon_\theta^\top\tilde\Pi
\tilde\varepsilon - P_\theta(\theta - \eta_\theta)`, :math:`\partial_{\theta\theta} F
= -\sum_t \tilde\varepsilon_\theta^\top\tilde\Pi\tilde\varepsilon_\theta - P_\theta`.

**M-step** (log-precisions). Newton steps on

.. math::

    \partial_{h_j} F = \tfrac12 \sum_t \big[\operatorname{tr}(Q_j\tilde\Pi^{-1}) -
    e^{h_j}(\tilde\varepsilon^\top Q_j\tilde\varepsilon +
    \operatorname{tr}(Q_j\tilde\varepsilon_u\Sigma_u\tilde\varepsilon_u^\top) +
    \operatorname{tr}(Q_j\tilde\varepsilon_\theta\Sigma_\theta
    \tilde\varepsilon_\theta^\top))\big] - p_h (h_j - \eta_{h_j}).

**Free energy** (up to a constant), recorded per iteration in ``history_["F"]``:

.. math::

    F = \sum_t \big[-\tfrac12\tilde\varepsilon^\top\tilde\Pi\tilde\varepsilon
    + \tfrac12\ln|\tilde\Pi| + \tfrac12\ln|\Sigma_u|
    - \tfrac12\operatorname{tr}(\tilde\Pi\tilde\varepsilon_\theta\Sigma_\theta
    \tilde\varepsilon_\theta^\top)\big]
    - \tfrac12\lVert\theta-\eta_\theta\rVert^2_{P_\theta} + \tfrac12\ln|P_\theta\Sigma_\theta|
    - \tfrac{p_h}2\lVert h-\eta_h\rVert^2 .

**Generalized filtering** (:func:`generalized_filter`): a thin call of
:class:`predcode.models.lap.LAP` (SPM's ``spm_LAP``): states, parameters and
log-precisions integrated together through the data, one online pass by default.
"""

from __future__ import annotations

import contextvars
import math
import os
from pathlib import Path
from typing import Any

import numpy as np
from scipy.linalg import expm

from ..backend import blas_threads, is_cupy, resolve_backend
from ..base import Model, load_model
from ..exceptions import BackendError, DivergenceError, ValidationError
from ..training import BLOW_UP
from ..validation import check_int, check_param, check_random_state
from .generalized import (
    HDM,
    _jacobian,
    embed,
    shift_operator,
    temporal_covariance,
    temporal_precision,
)
from .hdm_args import _as_hdm, _free_indices, _h_indices

#: The HDM given to :meth:`DEM.load` while the file is read.
_LOAD_MODEL: contextvars.ContextVar = contextvars.ContextVar("dem_load_model", default=None)

__all__ = [
    "DEM",
    "generalized_filter",
    "ozaki_step",
    "simulate",
    "extended_kalman_filter",
    "GeneralizedErrors",
]


def ozaki_step(J: np.ndarray, udot: np.ndarray, dt: float = 1.0) -> np.ndarray:
    r"""Local-linearisation update :math:`(e^{\Delta t J} - I) J^{-1}\dot u`.

    Exact for the linear flow :math:`\dot u = J (u - u_0) + \dot u_0`; computed as the
    top-right block of :math:`\exp(\Delta t\,[[J, \dot u], [0, 0]])`.
    """
    k = J.shape[0]
    A = np.zeros((k + 1, k + 1))
    A[:k, :k] = J * dt
    A[:k, k] = udot * dt
    return expm(A)[:k, k]


class GeneralizedErrors:
    """Generalized prediction errors of an HDM and their Jacobians (SPM's local linearity).

    Layout: ``u = [X~, V~]`` ordered by derivative order (``[X, X', ...]``; ``n`` orders
    of the hidden states, ``d`` of the causes, see :class:`HDM`); errors
    ``e = [e_v (n * n_out), e_eta (n * n_top), e_x (n * n_x)]``.
    """

    def __init__(self, model: HDM):
        self.m = m = model
        n = m.n
        self.n = n
        self.nout = sum(lv.n_out for lv in m.levels)
        self.ntop = m.levels[-1].n_v
        self.d = d = m.d
        self.nu = n * m.nx + d * m.nv
        self.ne = n * (self.nout + self.ntop + m.nx)
        self.Dx = shift_operator(n, m.nx)
        self.Du = np.zeros((self.nu, self.nu))
        nX = n * m.nx
        self.Du[:nX, :nX] = self.Dx
        self.Du[nX:, nX:] = shift_operator(d, m.nv)
        # selector of the lower-level causes predicted by higher levels
        self.sel = np.zeros((self.nout, m.nv))
        self.sel[m.ny :, : m.nv - self.ntop] = np.eye(m.nv - self.ntop)
        self.top = np.zeros((self.ntop, m.nv))
        self.top[:, m.nv - self.ntop :] = np.eye(self.ntop)
        self.R = temporal_precision(n, m.s)
        self.S = temporal_covariance(n, m.s)
        # precision components Q_j (one per hyperparameter block)
        self.Q = []
        self.block_rows = []
        offs_v = np.cumsum([0] + [lv.n_out for lv in m.levels])
        offs_x = np.cumsum([0] + [lv.n_x for lv in m.levels])
        for kind, i in m.h_blocks:
            Z = [
                np.zeros((self.nout, self.nout)),
                np.zeros((self.ntop, self.ntop)),
                np.zeros((m.nx, m.nx)),
            ]
            if kind == "v":
                a, b = offs_v[i], offs_v[i + 1]
                Z[0][a:b, a:b] = m.levels[i].V
                dim = b - a
            elif kind == "eta":
                Z[1][...] = m.eta_precision
                dim = self.ntop
            else:
                a, b = offs_x[i], offs_x[i + 1]
                Z[2][a:b, a:b] = m.levels[i].W
                dim = b - a
            Qj = np.zeros((self.ne, self.ne))
            o = 0
            for z in Z:
                k = n * z.shape[0]
                Qj[o : o + k, o : o + k] = np.kron(self.R, z)
                o += k
            self.Q.append(Qj)
            self.block_rows.append(n * dim)
        self.Q = np.array(self.Q)
        # ln|Q_j restricted to its block| for the log-determinant of the precision
        self.logdet_base = 0.0
        for Qj in self.Q:
            ev = np.linalg.eigvalsh(Qj)
            self.logdet_base += float(np.sum(np.log(ev[ev > 1e-12 * ev.max()])))

    def precision(self, h: np.ndarray) -> np.ndarray:
        """Generalized precision ``sum_j exp(h_j) Q_j``."""
        return np.tensordot(np.exp(h), self.Q, axes=1)

    def logdet_precision(self, h: np.ndarray) -> float:
        """``ln|Pi~(h)|`` (blocks are disjoint, so it is linear in ``h``)."""
        return self.logdet_base + float(np.dot(self.block_rows, h))

    def errors(
        self, u: np.ndarray, ytil: np.ndarray, eta: np.ndarray, theta: np.ndarray, jac: bool = True
    ) -> tuple[np.ndarray, np.ndarray | None]:
        """Generalized errors ``e`` at ``u`` and (optionally) ``de/du``."""
        m, n = self.m, self.n
        nX = n * m.nx
        Xt = u[:nX].reshape(n, m.nx)
        Vt = np.zeros((n, m.nv))  # causes have d orders; higher orders are zero
        Vt[: self.d] = u[nX:].reshape(self.d, m.nv)
        ev = m.evaluate(Xt[0], Vt[0], theta)
        Gx, Gv, Fx, Fv = ev["Gx"], ev["Gv"], ev["Fx"], ev["Fv"]
        Yt = ytil.reshape(n, m.ny)
        obs = np.concatenate([Yt, Vt @ self.sel[m.ny :].T], axis=1)  # (n, nout)
        pred = Xt @ Gx.T + Vt @ Gv.T
        pred[0] = ev["G"]
        e_v = obs - pred
        etat = np.zeros((n, self.ntop))
        etat[0] = eta
        e_eta = Vt @ self.top.T - etat
        flow = Xt @ Fx.T + Vt @ Fv.T
        flow[0] = ev["F"]
        Xnext = np.zeros_like(Xt)
        Xnext[:-1] = Xt[1:]
        e_x = Xnext - flow
        e = np.concatenate([e_v.ravel(), e_eta.ravel(), e_x.ravel()])
        if not jac:
            return e, None
        I = np.eye(n)
        Eu = np.zeros((self.ne, self.nu))
        a, b = n * self.nout, n * (self.nout + self.ntop)
        Eu[:a, :nX] = -np.kron(I, Gx)
        kv = self.d * m.nv  # columns of the d cause orders
        Eu[:a, nX:] = np.kron(I, self.sel - Gv)[:, :kv]
        Eu[a:b, nX:] = np.kron(I, self.top)[:, :kv]
        Eu[b:, :nX] = self.Dx - np.kron(I, Fx)
        Eu[b:, nX:] = -np.kron(I, Fv)[:, :kv]
        return e, Eu

    def theta_jacobian(
        self, u: np.ndarray, ytil: np.ndarray, eta: np.ndarray, theta: np.ndarray, free: np.ndarray
    ) -> np.ndarray:
        """``de/dtheta`` for the free parameters (central differences)."""
        J = np.zeros((self.ne, free.size))
        for c, j in enumerate(free):
            d = 1e-6 * max(1.0, abs(theta[j]))
            tp, tm = theta.copy(), theta.copy()
            tp[j] += d
            tm[j] -= d
            J[:, c] = (
                self.errors(u, ytil, eta, tp, False)[0] - self.errors(u, ytil, eta, tm, False)[0]
            ) / (2 * d)
        return J

    def u_init(self, x0: np.ndarray | None = None) -> np.ndarray:
        """Initial generalized state: ``x0`` at order 0, zeros elsewhere."""
        u = np.zeros(self.nu)
        u[: self.m.nx] = self.m.x_init() if x0 is None else x0
        return u

    def unpack(self, u: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Order-0 states and causes of a generalized state."""
        nX = self.n * self.m.nx
        return u[: self.m.nx], u[nX : nX + self.m.nv]


def _joint_step(
    ge: GeneralizedErrors,
    u: np.ndarray,
    g: np.ndarray,
    H: np.ndarray,
    Eu: np.ndarray,
    P: np.ndarray,
    ytil: np.ndarray,
    dt: float | None = None,
) -> np.ndarray:
    """Ozaki update of ``u`` over ``dt``, with the data's motion in the Jacobian.

    As in SPM's D-step, the data enter the joint flow ``q = [u, y~]``,
    ``q' = [Du + dF/du, Dy~]``, whose Jacobian couples the states to the data
    through ``d2F/du dy~ = -Eu^T Pi~ de/dy~`` (``de/dy~`` is the identity on the
    data rows), so the expectation anticipates the data's motion.
    """
    m = ge.m
    dt = m.dt if dt is None else dt
    ny = m.ny * ge.n
    nu = ge.nu
    # rows of e holding the data errors: e_v[k, :ny] for each order k
    Ey = np.zeros((ge.ne, ny))
    for k in range(ge.n):
        Ey[k * ge.nout : k * ge.nout + m.ny, k * m.ny : (k + 1) * m.ny] = np.eye(m.ny)
    J = np.zeros((nu + ny, nu + ny))
    J[:nu, :nu] = ge.Du - H
    J[:nu, nu:] = -Eu.T @ P @ Ey
    J[nu:, nu:] = shift_operator(ge.n, m.ny)
    qdot = np.concatenate([ge.Du @ u - g, shift_operator(ge.n, m.ny) @ ytil])
    return ozaki_step(J, qdot, dt)[:nu]


def _logdet_pd(H: np.ndarray, what: str) -> float:
    sign, ld = np.linalg.slogdet(H)
    if sign <= 0 or not np.isfinite(ld):
        raise DivergenceError(
            f"DEM.n_d: the conditional precision of the {what} is not positive definite; "
            "the scheme diverged (check the model's precisions and the data scale)."
        )
    return float(ld)


def _host_only(backend: str, Y: Any, owner: str) -> None:
    """DEM has no device version: cupy data or ``backend="cupy"`` raise one clear line."""
    if is_cupy(Y) or backend == "cupy":
        raise BackendError(
            f"{owner}.backend: DEM runs on the host only (backend 'numpy' or 'numba'); its "
            "matrices are a few dozen rows, too small for a GPU. Move the data with "
            "predcode.to_device(Y, 'numpy')."
        )


def _spm_supported(m: HDM, dem: Any, owner: str) -> None:
    """Raise one line where ``scheme="spm"`` cannot run a configuration (no fall-back)."""
    fix = "pass scheme='predcode' (predcode's variant) for it"
    if len(m.levels) != 1:
        raise ValidationError(
            f"{owner}.scheme: scheme='spm' (SPM's spm_DEM) is implemented for one-level HDMs, "
            f"got {len(m.levels)} levels; {fix}."
        )
    for b in [] if dem.learn_h is None else [tuple(b) for b in dem.learn_h]:
        if b not in (("v", 0), ("x", 0)):
            raise ValidationError(
                f"{owner}.scheme: scheme='spm' learns the log-precisions of ('v', 0) and "
                f"('x', 0) only, got learn_h block {b}; {fix}."
            )
    if int(dem.n_d) != 1:
        raise ValidationError(
            f"{owner}.scheme: scheme='spm' takes one D-step per bin (SPM's E.nD = 1), got "
            f"n_d={dem.n_d}; pass n_d=1, or {fix}."
        )
    if m.boundary != "clamp" or m.dt != 1:
        raise ValidationError(
            f"{owner}.scheme: scheme='spm' embeds the data as spm_DEM does (bins of width 1, "
            f"ends clamped), got dt={m.dt}, boundary={m.boundary!r}; build the HDM with "
            f"dt=1, boundary='clamp', or {fix}."
        )
    if m.n < 2:
        raise ValidationError(
            f"{owner}.scheme: scheme='spm' needs n >= 2 orders of motion (SPM's E.n >= 1), "
            f"got n={m.n}; build the HDM with n >= 2, or {fix}."
        )


#: SPM's scheme's state between iterations (saved with the posterior, prefix "spm/").
_SPM_ARRAYS = ("qe", "qp_c", "qh", "qh_c", "qh_e", "B_qe", "B_qp_c", "B_qh", "B_qh_c",
               "B_qh_e", "dp_step")
_SPM_SCALARS = ("te", "tm", "Fi", "nM", "it", "stopped")

#: The scheme's own state between iterations (saved with the posterior).
_SCHEME_ARRAYS = ("theta", "h", "Sth", "u0", "u0_best", "dtheta", "Sth_new", "dh")
_SCHEME_SCALARS = ("scale", "it", "stopped")


class DEM(Model):
    r"""Dynamic expectation maximisation of a hierarchical dynamic model.

    ``fit(Y)`` runs ``n_iter`` D/E/M iterations (the epochs of the protocol) on data
    ``Y`` of shape ``(N, n_y)`` (rows are time bins); ``partial_fit(Y)`` runs one more.

    **Two schemes.** ``scheme="spm"`` (the default) is SPM12's ``spm_DEM``
    (:class:`predcode.models.dem_spm.SpmDem`, the scheme of
    :func:`~predcode.models.dem_spm.spm_dem`; checked against SPM's own outputs on
    ``DEM_demo_convolution`` and ``DEM_demo_DEM`` to 1e-13 in states and 2e-11 in F):
    precision :math:`\Pi_0 + \sum_j e^{h_j}Q_j` with :math:`h` from its prior mean, the
    highest-order state error set to zero, a D-step with the parameters' uncertainty,
    an E-step by ``spm_dx`` with time constant :math:`e^{t_e}`, Fisher scoring in the
    M-step clipped at :math:`\pm 2`, F with SPM's constant and mask, and SPM's rule:
    an iteration whose F fell returns to the last accepted posterior with
    :math:`t_e \to \min(t_e - 2, -2)`; the scheme stops (later iterations do nothing,
    ``history_["stopped"]`` is 1) when the E- and M-steps fall below :math:`e^{-4}`,
    when :math:`t_e < -8`, or after one iteration when nothing is learned. It runs
    one-level HDMs with ``n >= 2``, ``dt = 1``, ``boundary="clamp"``, ``n_d = 1`` and
    ``learn_h`` in ``("v", 0)``, ``("x", 0)``; anything else raises a
    :class:`~predcode.exceptions.ValidationError` naming ``scheme`` (no fall-back).

    ``scheme="predcode"`` is predcode's own variant, kept for what it does that SPM's
    does not: deeper hierarchies (several levels, learned ``"eta"`` precision), static
    models (``n = 1``), several D-steps per bin (``n_d``), ``dt`` and the ``"shift"``
    embedding, and the numba accumulation kernel (``backend``). Its deliberate
    differences from SPM: the highest-order state error is kept; precisions are
    :math:`e^h Q` (no fixed floor); one Gauss-Newton E-step without ``spm_dx`` and
    without parameter uncertainty in the D-step; Newton M-steps clipped at
    :math:`\pm 4`; F without SPM's constant and mask; ``inv(H + 1e-12 I)`` for
    ``spm_inv``; step control by halving/quartering the step and the ``tol`` rule:
    an iteration whose F fell returns to the last accepted point with a quarter of the
    step, and the scheme stops when an accepted F gains less than ``tol`` or the step
    falls below 1e-4. See "Dynamic models" and "predcode for SPM users" in the docs.

    Parameters
    ----------
    model : HDM or str
        The generative model (its ``theta`` is the parameters' prior expectation), or
        the name of a model of :data:`predcode.models.hdm_zoo.ZOO`.
    n_iter : int
        DEM iterations (D-, E- and M-step each; SPM ``M(1).E.nE``, whose default is 8).
    learn_theta : array of int or None
        Indices of the parameters estimated in the E-step (``None``: none).
    learn_h : sequence of (kind, level) or None
        Hyperparameter blocks estimated in the M-step (``None``: none); kinds are
        ``"v"`` (z of a level), ``"x"`` (w of a level) and ``"eta"``.
    h_precision : float, sequence of float or None
        Prior precision of the log-precisions (SPM's ``hC``/``gC`` is its inverse, a
        variance). ``None``: the scheme's default, 1 for ``"spm"`` (SPM's ``hC = 1``),
        1/16 for ``"predcode"``. With ``scheme="spm"`` it may give one value per
        ``learn_h`` block; ``np.inf`` fixes a block at its prior mean (SPM's ``hC = 0``).
    n_m : int
        Newton steps of the M-step per iteration.
    n_d : int
        D-step integration steps per time bin (SPM ``E.nD``, default 1); each re-linearises
        the flow with the data advanced along their generalized motion.
    backend : {"auto", "numpy", "numba"}
        Backend of the accumulation kernel of ``scheme="predcode"``; ``"auto"`` resolves
        from the data (numba if installed, else numpy). ``scheme="spm"`` is numpy code
        whatever the backend. DEM runs on the host: ``"cupy"`` and cupy data raise
        :class:`~predcode.exceptions.BackendError`.
    tol : float
        ``scheme="predcode"``: stop when an accepted F improves by less than this
        (SPM's scheme has its own rule, above).
    verbose : bool
        One progress bar over the iterations.
    scheme : {"spm", "predcode"}
        SPM's ``spm_DEM`` (default) or predcode's variant (above).
    floor_v, floor_w : array or None
        ``scheme="spm"`` only: the fixed precision floor (SPM's ``M(1).V``, ``M(1).W``)
        under a learned response / state noise block, :math:`V + e^h Q`; ``None`` is
        zero. SPM's demo models carry ``V = W = I`` (``spm_DEM_M``): pass ``np.eye(n_y)``,
        ``np.eye(n_x)`` to match a demo that sets ``hE``, e.g. ``DEM_demo_DEM``
        (:func:`predcode.models.hdm_zoo.dem_demo_params`). The prior covariance of the
        free parameters is ``inv(model.theta_precision)`` restricted to them (SPM's
        ``pC``); prior causes are the model's ``eta`` (SPM's ``DEM.U``).
    Attributes
    ----------
    history_ : dict
        Per iteration: ``energy`` (:math:`-F/N + \tfrac{n_e - n_u}2\ln 2\pi`, the
        negative free energy of the posterior held, per time bin, in nats: lower is
        better; ``scheme="spm"``: :math:`-F/N`, its F has SPM's constant),
        ``wall_time_s``, ``F`` (free energy of the posterior held; ``"spm"``: SPM's
        ``DEM.F``; ``"predcode"``: without the constant), ``F_all`` (F at this
        iteration's expansion point, rejected ones included), ``accepted`` (1 if it was
        accepted), ``step`` (``"predcode"``: the step scale taken next; ``"spm"``: the
        E-step's log time constant :math:`t_e`), ``stopped`` (1 if the scheme had
        stopped) and, for ``"spm"``, ``A`` (SPM's free action ``DEM.S``).
    F_accepted_ : list of float
        F of the accepted iterations (monotonically rising).
    theta_path_, h_path_ : ndarray (n_accepted, p), (n_accepted, n_h)
        Parameters and log-precisions of the accepted iterations (``scheme="spm"``:
        after each iteration run, as :func:`~predcode.models.dem_spm.spm_dem`).
    x_, v_ : ndarray (N, nx), (N, nv)
        Conditional expectations of hidden states and causes (order 0).
    u_ : ndarray (N, nu)
        Generalized conditional expectations.
    Su_ : ndarray (N, nu)
        Conditional variances (diagonal of Sigma_u).
    Sigma_u_ : ndarray (N, nu, nu)
        ``scheme="spm"`` only: the full conditional covariance of the generalized states
        and causes per bin (SPM's ``qU.C`` and ``qU.S`` blocks together).
    E_ : ndarray (N, n_e)
        ``scheme="spm"`` only: the generalized prediction errors per bin (SPM's
        ``qU.z``/``qU.w``, all orders: response and cause errors, then state errors;
        SPM's zeroed highest state order included).
    y_hat_ : ndarray (N, n_y)
        ``scheme="spm"`` only: the predicted response ``y - z`` (SPM ``DEM.qU.v{1}``
        minus ``qU.z{1}``, as ``spm_DEM_qU`` plots it).
    F_bins_ : ndarray (N,)
        Each bin's contribution to F (states' part; ``"predcode"``: up to ``-(n_e - n_u)/2 ln
        2 pi``; ``"spm"``: SPM's ``Lu`` per bin, with the constant, masked as SPM masks).
    theta_, h_ : ndarray
        Parameter and log-precision estimates; ``Sigma_theta_`` their covariance
        (``scheme="spm"``: also ``Sigma_h_``, SPM's ``qH.C`` of the learned blocks).
    F_ : float
        Free energy of the posterior (``"predcode"``: SPM's convention without the
        constant; ``"spm"``: SPM's ``DEM.F`` with it; ``A_`` its free action).
    n_iter_ : int
        Accepted iterations.
    n_features_in_ : int
        Data size ``n_y``.
    """

    ENERGY_UNIT = "nats"
    _KERNELS = ("dem_accumulate",)
    _RUNTIME = ("_xp", "_k", "_m", "_ge")
    _DIVERGENCE_PARAM = "n_d"
    #: saved arrays that are not floating point (see Model._STATE_KINDS)
    _STATE_KINDS = {"scheme/it": "iu", "scheme/stopped": "biu", "spm/it": "iu",
                    "spm/nM": "iu", "spm/stopped": "biu"}
    _EPOCHS_PARAM = "n_iter"
    _LEARNED = (
        "history_", "n_features_in_", "u_", "Su_", "F_bins_", "theta_", "h_",
        "Sigma_theta_", "F_", "theta_path_", "h_path_", "_scheme", "free_", "h_free_",
        "_spm", "Sigma_h_", "A_", "Sigma_u_", "E_", "y_hat_",
    )

    def __init__(
        self,
        model: HDM | str | None = None,
        *,
        n_iter: int = 16,
        learn_theta: Any = None,
        learn_h: Any = None,
        h_precision: Any = None,
        n_m: int = 8,
        n_d: int = 1,
        backend: str = "auto",
        tol: float = 1e-4,
        verbose: bool = False,
        scheme: str = "spm",
        floor_v: Any = None,
        floor_w: Any = None,
    ):
        self.model = model
        self.n_iter = n_iter
        self.learn_theta = learn_theta
        self.learn_h = learn_h
        self.h_precision = h_precision
        self.n_m = n_m
        self.n_d = n_d
        self.backend = backend
        self.tol = tol
        self.verbose = verbose
        self.scheme = scheme
        self.floor_v = floor_v
        self.floor_w = floor_w

    # ------------------------------------------------------------------ set-up
    def _validate(self) -> HDM:
        m = _as_hdm(self.model, "DEM")
        if self.scheme not in ("spm", "predcode"):
            raise ValidationError(
                f"DEM.scheme: expected 'spm' (SPM's spm_DEM) or 'predcode' (predcode's "
                f"variant), got {self.scheme!r}."
            )
        check_int(self.n_iter, "n_iter", "DEM")
        check_int(self.n_m, "n_m", "DEM")
        check_int(self.n_d, "n_d", "DEM")
        check_param(self.tol, "tol", "DEM", low=0, low_inclusive=True)
        self.free_ = _free_indices(m, self.learn_theta, "DEM")
        self.h_free_ = _h_indices(m, self.learn_h, "DEM")
        if self.scheme == "predcode":
            if self.h_precision is not None:
                check_param(self.h_precision, "h_precision", "DEM", low=0)
            for name in ("floor_v", "floor_w"):
                if getattr(self, name) is not None:
                    raise ValidationError(
                        f"DEM.{name}: a fixed precision floor is part of SPM's scheme only; "
                        f"pass scheme='spm' or {name}=None."
                    )
        else:
            self._spm_h_cov(m)  # validates h_precision
            _spm_supported(m, self, "DEM")
        return m

    def _hp(self) -> float:
        """The log-precisions' prior precision of predcode's scheme (default 1/16)."""
        return 1.0 / 16 if self.h_precision is None else float(self.h_precision)

    def _spm_h_cov(self, m: HDM) -> list[float]:
        """SPM's ``hC``/``gC`` (prior variances) of the learned blocks, in SPM's order."""
        blocks = [] if self.learn_h is None else [tuple(b) for b in self.learn_h]
        hp = 1.0 if self.h_precision is None else self.h_precision
        if np.ndim(hp) == 0:
            check_param(hp, "h_precision", "DEM", low=0)
            prec = [float(hp)] * len(blocks)
        else:
            prec = [float(v) for v in np.ravel(np.asarray(hp, float))]
            if len(prec) != len(blocks) or any(not v > 0 or math.isnan(v) for v in prec):
                raise ValidationError(
                    f"DEM.h_precision: expected a positive number or one per learn_h block "
                    f"({len(blocks)}), np.inf to fix a block at its prior mean; got {hp!r}."
                )
        order = [b for b in (("v", 0), ("x", 0)) if b in blocks]
        return [1.0 / prec[blocks.index(b)] for b in order]

    def _spm_scheme(self, m: HDM, Y: Any) -> Any:
        """SPM's scheme (:class:`~predcode.models.dem_spm.SpmDem`) on data ``Y``."""
        from .dem_spm import SpmDem

        Y = m.check_data(Y, "DEM")
        U = np.array([m.eta_at(t) for t in range(Y.shape[0])]).reshape(Y.shape[0], -1)
        return SpmDem(m, Y, U, learn_theta=self.free_, learn_h=self.learn_h,
                      h_cov=self._spm_h_cov(m), n_m=self.n_m, floor_v=self.floor_v,
                      floor_w=self.floor_w, owner="DEM")

    def _on_runtime(self) -> None:
        self._m = m = _as_hdm(self.model, "DEM")
        self._ge = GeneralizedErrors(m)

    def _data(self, Y: Any, name: str = "Y") -> tuple[np.ndarray, np.ndarray]:
        if is_cupy(Y):
            _host_only("cupy", Y, "DEM")
        m = self._m
        Y = m.check_data(Y, "DEM")
        Ytil = np.array([embed(Y, m.n, t, m.dt, m.boundary) for t in range(Y.shape[0])])
        return Y, Ytil

    def _init_fit(self, Y: Any, y: Any = None) -> Any:
        m = self._validate()
        _host_only(self.backend, Y, "DEM")
        self._setup_runtime(Y)
        if self.scheme == "spm":
            sd = self._spm_scheme(m, Y)
            self._spm = sd.initial_state()
            self.theta_path_ = np.zeros((0, m.theta.size))
            self.h_path_ = np.zeros((0, len(m.h_blocks)))
            self.n_features_in_ = m.ny
            return sd
        data = self._data(Y)
        free = self.free_
        Pth = m.theta_precision[np.ix_(free, free)] if free.size else np.zeros((0, 0))
        k, nh = free.size, len(m.h_blocks)
        self._scheme = {
            "theta": m.theta.copy(), "h": m.h_prior(),
            "Sth": np.linalg.inv(Pth) if free.size else np.zeros((0, 0)),
            "u0": self._ge.u_init(), "u0_best": self._ge.u_init(),
            "dtheta": np.zeros(k), "Sth_new": np.zeros((k, k)), "dh": np.zeros(nh),
            "scale": 1.0, "it": 0, "stopped": False,
        }
        self.theta_path_ = np.zeros((0, m.theta.size))
        self.h_path_ = np.zeros((0, nh))
        self.n_features_in_ = m.ny
        return data

    def _fit_data(self, Y: Any, y: Any = None) -> Any:
        if self.scheme == "spm":
            if is_cupy(Y):
                _host_only("cupy", Y, "DEM")
            return self._spm_scheme(self._m, Y)
        return self._data(Y)

    # ------------------------------------------------------------------ D-step
    def _dstep(
        self,
        ge: GeneralizedErrors,
        Ytil: np.ndarray,
        theta: np.ndarray,
        h: np.ndarray,
        u0: np.ndarray,
        Ptheta_cov: np.ndarray | None,
    ) -> dict[str, Any]:
        m = ge.m
        acc = self._k["dem_accumulate"]
        P = ge.precision(h)
        N = Ytil.shape[0]
        u = u0.copy()
        U = np.empty((N, ge.nu))
        Sd = np.empty((N, ge.nu))
        E = np.empty((N, ge.ne))
        Eus, Sus = [], []
        Ft = np.empty(N)
        ldP = ge.logdet_precision(h)
        for t in range(N):
            eta = m.eta_at(t)
            e, Eu = ge.errors(u, Ytil[t], eta, theta)
            g, H, ss = acc(e[None], Eu[None], P)
            if not np.all(np.isfinite(u)) or not np.isfinite(ss):
                raise DivergenceError(
                    f"DEM.n_d={self.n_d}: the D-step diverged at time bin {t} (non-finite "
                    f"states); integrate with more steps per bin, e.g. n_d={2 * self.n_d}, "
                    "or check the model's flow and precisions and the data scale."
                )
            Su = np.linalg.inv(H + 1e-12 * np.eye(ge.nu))
            U[t], Sd[t], E[t] = u, np.diag(Su), e
            Eus.append(Eu)
            Sus.append(Su)
            Ft[t] = -0.5 * ss + 0.5 * ldP - 0.5 * _logdet_pd(H, "states")
            h_dt = m.dt / self.n_d
            for k in range(self.n_d):
                if k:  # SPM's nD: re-linearise within the bin; the data move as a Taylor series
                    yk = expm(shift_operator(m.n, m.ny) * (k * h_dt)) @ Ytil[t]
                    e, Eu = ge.errors(u, yk, eta, theta)
                    g, H, _ = acc(e[None], Eu[None], P)
                else:
                    yk = Ytil[t]
                u = u + _joint_step(ge, u, g, H, Eu, P, yk, h_dt)
        return {"U": U, "Sd": Sd, "E": E, "Eu": Eus, "Su": Sus, "F": float(Ft.sum()), "Ft": Ft}

    def _estep(self, g, H, dth, Pth):
        """Gauss-Newton step on the free parameters and their new conditional covariance."""
        if not self.free_.size:
            return np.zeros(0), np.zeros((0, 0))
        Sth = np.linalg.inv(H + Pth)
        return Sth @ (-g - Pth @ dth), Sth

    def _mstep(self, ge, d, Jth, Sth, h, hE, N):
        """Newton steps on the free log-precisions (errors and covariances held fixed)."""
        dh = np.zeros_like(h)
        if not self.h_free_.size:
            return dh
        A = np.zeros(len(ge.Q))
        for t in range(N):
            e, Eu, Su = d["E"][t], d["Eu"][t], d["Su"][t]
            for j in self.h_free_:
                Qj = ge.Q[j]
                A[j] += e @ Qj @ e + np.sum((Eu @ Su @ Eu.T) * Qj)
                if self.free_.size:
                    A[j] += np.sum((Jth[t] @ Sth @ Jth[t].T) * Qj)
        cnt = N * np.asarray(ge.block_rows, float)
        hn = h.copy()
        for _ in range(self.n_m):
            for j in self.h_free_:
                dF = (
                    0.5 * cnt[j] - 0.5 * math.exp(hn[j]) * A[j] - self._hp() * (hn[j] - hE[j])
                )
                d2 = -0.5 * math.exp(hn[j]) * A[j] - self._hp()
                hn[j] -= float(np.clip(dF / d2, -4, 4))
        return hn - h

    def _theta_jacobians(self, U: np.ndarray, Ytil: np.ndarray, theta: np.ndarray) -> np.ndarray:
        m, ge = self._m, self._ge
        if not self.free_.size:
            return np.zeros((U.shape[0], ge.ne, 0))
        return np.array(
            [ge.theta_jacobian(U[t], Ytil[t], m.eta_at(t), theta, self.free_)
             for t in range(U.shape[0])]
        )

    def _constant(self) -> float:
        """``(n_e - n_u)/2 ln 2 pi``: what F (SPM's convention) leaves out, per bin (0 for
        ``scheme="spm"``, whose F has SPM's constant)."""
        if self.scheme == "spm":
            return 0.0
        return 0.5 * (self._ge.ne - self._ge.nu) * math.log(2 * math.pi)

    # ------------------------------------------------------------------ one iteration
    def _epoch(self, data: tuple, epoch: int, n_epochs: int) -> dict[str, float]:
        """One D/E/M iteration (SPM's scheme with its step control); see the class doc."""
        if self.scheme == "spm":
            return self._spm_epoch(data)
        Y, Ytil = data
        m, ge, sc = self._m, self._ge, self._scheme
        N = Y.shape[0]
        if sc["stopped"]:
            return self._row(N, self.F_, accepted=False, idle=True)
        free, h_free = self.free_, self.h_free_
        theta, h, Sth = sc["theta"], sc["h"], sc["Sth"]
        hE, pE = m.h_prior(), m.theta
        Pth = m.theta_precision[np.ix_(free, free)] if free.size else np.zeros((0, 0))
        self._check_h(h)
        d = self._dstep(ge, Ytil, theta, h, sc["u0"], Sth)
        P = ge.precision(h)
        Jth = self._theta_jacobians(d["U"], Ytil, theta)
        g = H = None
        if free.size:
            g, H, _ = self._k["dem_accumulate"](d["E"], Jth, P)
        dth = theta[free] - pE[free]
        F = d["F"]
        if free.size:
            F -= 0.5 * float(np.einsum("tkq,kl,tlr,qr->", Jth, P, Jth, Sth))
            F += (
                -0.5 * dth @ Pth @ dth
                + 0.5 * _logdet_pd(Pth, "parameter prior")
                - 0.5 * _logdet_pd(H + Pth, "parameters")
            )
        F -= 0.5 * self._hp() * float(np.sum((h[h_free] - hE[h_free]) ** 2))
        if not math.isfinite(F):
            self._check_h(h, force=True)
            raise DivergenceError(
                f"DEM.n_d={self.n_d}: the free energy became {F} in iteration {sc['it'] + 1}; "
                f"integrate with more steps per bin, e.g. n_d={2 * self.n_d}, or check the "
                "model's precisions and the data scale."
            )
        accepted = False
        if sc["it"] and F <= self.F_:
            # SPM's rule: F fell, so return to the last expansion point, shorter step
            sc["scale"] /= 4
            if sc["scale"] < 1e-4:
                sc["stopped"] = True
        else:
            accepted = True
            gain = np.inf if not sc["it"] else F - self.F_
            self.u_, self.Su_, self.F_bins_ = d["U"], d["Sd"], d["Ft"]
            self.theta_, self.h_, self.Sigma_theta_ = theta.copy(), h.copy(), Sth.copy()
            self.F_ = float(F)
            self.theta_path_ = np.vstack([self.theta_path_, theta[None]])
            self.h_path_ = np.vstack([self.h_path_, h[None]])
            if gain < self.tol:
                sc["stopped"] = True
            else:
                sc["scale"] = min(1.0, 2 * sc["scale"]) if sc["it"] else 1.0
                sc["dtheta"], sc["Sth_new"] = self._estep(g, H, dth, Pth)
                sc["dh"] = self._mstep(ge, d, Jth, sc["Sth_new"], h, hE, N)
                sc["u0_best"] = d["U"][0].copy()
        if not sc["stopped"]:
            theta = self.theta_.copy()
            theta[free] += sc["scale"] * sc["dtheta"]
            sc["theta"] = theta
            sc["h"] = self.h_ + sc["scale"] * sc["dh"]
            sc["Sth"] = sc["Sth_new"]
            # the next D-step starts from the smoothed expectation of the first bin
            sc["u0"] = sc["u0_best"].copy()
        sc["it"] += 1
        return self._row(N, F, accepted)

    def _spm_epoch(self, sd: Any) -> dict[str, float]:
        """One iteration of ``spm_DEM`` (:meth:`predcode.models.dem_spm.SpmDem.iterate`)."""
        st, m = self._spm, self._m
        if st["stopped"]:
            return {"energy": -self.F_ / sd.N, "F": self.F_, "F_all": self.F_, "A": self.A_,
                    "accepted": 0.0, "step": float(st["te"]), "stopped": 1.0}
        rec = sd.iterate(st)
        if not (math.isfinite(rec["F"]) and np.all(np.isfinite(rec["X"]))):
            raise DivergenceError(
                f"DEM.n_d={self.n_d}: SPM's scheme gave F = {rec['F']} (non-finite states or "
                f"free energy) in iteration {st['it']}; check the model's precisions and the "
                "data scale."
            )
        self._spm_record(sd, rec)
        self.theta_path_ = np.vstack([self.theta_path_, sd.theta_of(st["qe"])[None]])
        self.h_path_ = np.vstack([self.h_path_, self._h_full(m, sd, st["qh"])[None]])
        return {"energy": -self.F_ / sd.N, "F": self.F_, "F_all": rec["F_iter"],
                "A": self.A_, "accepted": float(rec["accepted"]), "step": float(st["te"]),
                "stopped": 0.0}

    @staticmethod
    def _h_full(m: HDM, sd: Any, qh: np.ndarray) -> np.ndarray:
        """All of the model's log-precisions (``h_blocks`` order): SPM's learned ``qh``
        where learned, the prior (fixed) value elsewhere."""
        h = m.h_prior()
        learned = [b for b in (("v", 0), ("x", 0)) if b in sd.learned_blocks]
        for i, b in enumerate(learned):
            h[m.h_blocks.index(b)] = qh[i]
        return h

    def _spm_record(self, sd: Any, rec: dict[str, Any]) -> None:
        """Keep an iteration's posterior (SPM: ``qU``, ``qP``, ``qH``, ``DEM.F``)."""
        st, m = self._spm, self._m
        N = sd.N
        self.u_ = np.concatenate([rec["X"].reshape(N, -1), rec["V"].reshape(N, -1)], axis=1)
        r = sd.result(st, rec)  # spm_dem's qU: the errors, y - z and the full covariance
        self.Sigma_u_ = np.array(r["Su"], float)
        self.Su_ = np.diagonal(self.Sigma_u_, axis1=1, axis2=2).copy()
        self.E_ = np.array(r["E"], float)
        self.y_hat_ = np.array(r["y_hat"], float)
        self.F_bins_ = rec["F_bins"]
        self.theta_ = r["theta"]
        self.h_ = self._h_full(m, sd, st["qh"])
        self.Sigma_theta_ = np.array(st["qp_c"], float)
        self.Sigma_h_ = np.array(st["qh_c"], float)
        self.F_, self.A_ = float(rec["F"]), float(rec["A"])

    def _row(self, N: int, F_all: float, accepted: bool, idle: bool = False
             ) -> dict[str, float]:
        sc = self._scheme
        energy = -self.F_ / N + self._constant()
        first = self.history_.get("energy")
        if first and abs(energy) > BLOW_UP * max(abs(first[0]), 1e-12):
            # the base loop would name n_d with the advice of a step size; say it here
            self._check_h(self.h_, force=True)
            raise DivergenceError(
                f"DEM.n_d={self.n_d}: the free energy blew up (energy per bin "
                f"{first[0]:.4g} -> {energy:.4g}); check the model's precisions and the "
                "data scale."
            )
        return {
            "energy": energy, "F": self.F_, "F_all": float(F_all),
            "accepted": float(accepted), "step": float(sc["scale"]), "stopped": float(idle),
        }

    def _check_h(self, h: np.ndarray, force: bool = False) -> None:
        """Raise when the log-precisions ran away (a too weak precision prior)."""
        if not self.h_free_.size:
            return
        hf = h[self.h_free_]
        if force or not np.all(np.isfinite(hf)) or np.max(np.abs(hf)) > 300:
            raise DivergenceError(
                f"DEM.h_precision={self._hp():g}: the log-precisions ran away "
                f"(h = {np.round(hf, 2).tolist()}); raise h_precision, e.g. "
                f"h_precision={max(10 * self._hp(), 1 / 16):g}, or learn fewer blocks."
            )

    # ------------------------------------------------------------------ protocol
    def fit(self, Y: Any, y: Any = None) -> DEM:
        """Invert the model on data ``Y`` of shape ``(N, n_y)``: ``n_iter`` iterations.

        Returns ``self``. A failure (bad data, divergence) leaves the model unfitted.
        """
        return super().fit(Y, y)

    def partial_fit(self, Y: Any, y: Any = None) -> DEM:
        """One more D/E/M iteration on ``Y`` (the first call initialises)."""
        return super().partial_fit(Y, y)

    @property
    def x_(self) -> np.ndarray:
        m = _as_hdm(self.model, "DEM")
        return self.u_[:, : m.nx]

    @property
    def v_(self) -> np.ndarray:
        m = _as_hdm(self.model, "DEM")
        nX = m.n * m.nx
        return self.u_[:, nX : nX + m.nv]

    @property
    def F_accepted_(self) -> list[float]:
        h = self.history_
        return [f for f, a in zip(h.get("F_all", []), h.get("accepted", []), strict=True) if a]

    @property
    def wall_time_(self) -> float:
        """Seconds spent in all iterations so far (sum of ``history_["wall_time_s"]``)."""
        return float(sum(self.history_.get("wall_time_s", [])))

    @property
    def n_iter_(self) -> int:
        return int(self.theta_path_.shape[0])

    def _posterior(self, Y: Any, method: str) -> tuple[dict[str, Any], np.ndarray]:
        self._check_fitted(method)
        self._ensure_runtime()
        if self.scheme == "spm":
            if is_cupy(Y):
                _host_only("cupy", Y, "DEM")
            sd = self._spm_scheme(self._m, Y)
            st = self._spm
            with blas_threads():
                rec = sd.dstep(st["qe"], st["qh"], st["qp_c"])
            N = sd.N
            U = np.concatenate([rec["X"].reshape(N, -1), rec["V"].reshape(N, -1)], axis=1)
            return {"U": U, "sd": sd}, sd.bin_free_energy(rec)
        Y, Ytil = self._data(Y)
        with blas_threads():
            d = self._dstep(self._ge, Ytil, self.theta_, self.h_, self._ge.u_init(),
                            self.Sigma_theta_)
            Ft = d["Ft"].copy()
            if self.free_.size:
                Jth = self._theta_jacobians(d["U"], Ytil, self.theta_)
                P = self._ge.precision(self.h_)
                Ft -= 0.5 * np.einsum("tkq,kl,tlr,qr->t", Jth, P, Jth, self.Sigma_theta_)
        return d, Ft

    def infer(self, Y: Any, *, generalized: bool = False) -> np.ndarray:
        """Conditional means of the hidden states and causes of ``Y`` (one D-step).

        The D-step runs with the fitted parameters ``theta_``, log-precisions ``h_``
        and parameter covariance, from the model's initial state ``x0``.

        Returns
        -------
        ndarray (N, nx + nv)
            Order-0 means ``[x, v]`` per time bin (``generalized=True``: the
            generalized means ``u``, shape ``(N, nu)``).
        """
        d, _ = self._posterior(Y, "infer")
        if generalized:
            return d["U"]
        m = self._m
        nX = m.n * m.nx
        return np.concatenate([d["U"][:, : m.nx], d["U"][:, nX : nX + m.nv]], axis=1)

    def energy(self, Y: Any) -> np.ndarray:
        r"""Negative free energy of each time bin of ``Y``, in nats (lower is better).

        :math:`-F_t` of the D-step run as in :meth:`infer`: accuracy, log-precision
        and state-entropy terms and the bin's parameter-uncertainty term
        :math:`-\tfrac12\operatorname{tr}(\tilde\Pi\tilde\varepsilon_\theta
        \Sigma_\theta\tilde\varepsilon_\theta^\top)`, with the constant
        :math:`-\tfrac{n_e - n_u}2\ln 2\pi` included (for a static linear-Gaussian
        model this is the exact negative log evidence of the bin). Shape ``(N,)``, on
        the host (DEM's data live there).
        """
        _, Ft = self._posterior(Y, "energy")
        return -(Ft - self._constant())

    def score(self, Y: Any) -> float:
        """Free energy of ``Y`` in nats (larger is better): ``-sum(energy(Y))`` plus the
        parameter and log-precision prior terms of the fit."""
        self._check_fitted("score")
        if self.scheme == "spm":
            d, Ft = self._posterior(Y, "score")
            return float(np.sum(Ft)) + d["sd"].prior_free_energy(self._spm)
        e = self.energy(Y)
        m, free, hf = self._m, self.free_, self.h_free_
        F = -float(np.sum(e))
        if free.size:
            Pth = m.theta_precision[np.ix_(free, free)]
            dth = self.theta_[free] - m.theta[free]
            F += (-0.5 * dth @ Pth @ dth + 0.5 * _logdet_pd(Pth, "parameter prior")
                  + 0.5 * _logdet_pd(self.Sigma_theta_, "parameters"))
        hE = m.h_prior()
        F -= 0.5 * self._hp() * float(np.sum((self.h_[hf] - hE[hf]) ** 2))
        return F

    # ------------------------------------------------------------------ persistence
    def _state(self) -> dict[str, np.ndarray]:
        if self.scheme == "spm":
            st = self._spm
            out = {
                "u_": self.u_, "Su_": self.Su_, "F_bins_": self.F_bins_,
                "theta_": self.theta_, "h_": self.h_, "Sigma_theta_": self.Sigma_theta_,
                "Sigma_h_": self.Sigma_h_, "F_": np.array(self.F_), "A_": np.array(self.A_),
                "theta_path_": self.theta_path_, "h_path_": self.h_path_,
                "Sigma_u_": self.Sigma_u_, "E_": self.E_, "y_hat_": self.y_hat_,
            }
            out.update({f"spm/{k}": np.asarray(st[k], float) for k in _SPM_ARRAYS})
            out.update({f"spm/{k}": np.array(st[k]) for k in _SPM_SCALARS})
            return out
        sc = self._scheme
        out = {
            "u_": self.u_, "Su_": self.Su_, "F_bins_": self.F_bins_, "theta_": self.theta_,
            "h_": self.h_, "Sigma_theta_": self.Sigma_theta_, "F_": np.array(self.F_),
            "theta_path_": self.theta_path_, "h_path_": self.h_path_,
        }
        out.update({f"scheme/{k}": np.asarray(sc[k]) for k in _SCHEME_ARRAYS})
        out.update({f"scheme/{k}": np.array(sc[k]) for k in _SCHEME_SCALARS})
        return out

    def _expected_shapes(self) -> dict[str, tuple[int, ...]]:
        given = _LOAD_MODEL.get()
        if given is not None:
            saved = self.model.get("user") if isinstance(self.model, dict) else None
            if saved is not None:
                ge = GeneralizedErrors(given)
                now = {"n_y": given.ny, "n_x": given.nx, "n_v": given.nv, "n_u": ge.nu,
                       "n_theta": int(given.theta.size), "n_h": len(given.h_blocks)}
                if now != saved:
                    raise ValidationError(
                        f"DEM.load.model: the HDM given has sizes {now}, but the file was "
                        f"saved with an HDM of sizes {saved}; pass the same HDM."
                    )
            self.model = given
        m = self._validate()  # a user-built HDM without the model given raises here
        ge = GeneralizedErrors(m)
        p, k, nh = m.theta.size, self.free_.size, len(m.h_blocks)
        if self.scheme == "spm":
            nl = len(self._spm_h_cov(m))
            shapes = {"theta_": (p,), "h_": (nh,), "Sigma_theta_": (k, k),
                      "Sigma_h_": (nl, nl), "F_": (), "A_": ()}
            for key, shp in (("qe", (k,)), ("qp_c", (k, k)), ("qh", (nl,)), ("qh_c", (nl, nl)),
                             ("qh_e", (nl,)), ("dp_step", (k,))):
                shapes[f"spm/{key}"] = shp
                if key != "dp_step":
                    shapes[f"spm/B_{key}"] = shp
            shapes.update({f"spm/{s}": () for s in _SPM_SCALARS})
            return shapes
        shapes = {
            "theta_": (p,), "h_": (nh,), "Sigma_theta_": (k, k), "F_": (),
            "scheme/theta": (p,), "scheme/h": (nh,), "scheme/Sth": (k, k),
            "scheme/u0": (ge.nu,), "scheme/u0_best": (ge.nu,), "scheme/dtheta": (k,),
            "scheme/Sth_new": (k, k), "scheme/dh": (nh,),
        }
        shapes.update({f"scheme/{s}": () for s in _SCHEME_SCALARS})
        return shapes

    def _set_state(self, state: dict[str, np.ndarray]) -> None:
        m = _as_hdm(self.model, "DEM")
        self.model = m
        # .npz stores tuples as lists: give the block names back as tuples
        if self.learn_h is not None:
            self.learn_h = tuple(tuple(b) for b in self.learn_h)
        nu = GeneralizedErrors(m).nu
        N = state["u_"].shape[0] if "u_" in state else -1
        want = {"u_": (N, nu), "Su_": (N, nu), "F_bins_": (N,),
                "theta_path_": (None, m.theta.size), "h_path_": (None, len(m.h_blocks))}
        if self.scheme == "spm":
            want.update(Sigma_u_=(N, nu, nu), E_=(N, m.n * (m.ny + m.nv + m.nx)),
                        y_hat_=(N, m.ny))
        for key, shape in want.items():
            a = state.get(key)
            if a is None or a.ndim != len(shape) or any(
                    s is not None and s != t for s, t in zip(shape, a.shape, strict=True)):
                raise ValidationError(
                    f"DEM.load: array {key!r} is missing or has the wrong shape for this "
                    "model (was it saved with another HDM?)."
                )
            if not np.all(np.isfinite(a)):
                raise ValidationError(f"DEM.load: array {key!r} has NaN or inf.")
        for key in (*want, "theta_", "h_", "Sigma_theta_"):
            setattr(self, key, np.array(state[key], dtype=float))
        self.F_ = float(state["F_"])
        if self.scheme == "spm":
            self.Sigma_h_ = np.array(state["Sigma_h_"], dtype=float)
            self.A_ = float(state["A_"])
            st = {k: np.array(state[f"spm/{k}"], dtype=float) for k in _SPM_ARRAYS}
            st.update(te=float(state["spm/te"]), tm=float(state["spm/tm"]),
                      Fi=float(state["spm/Fi"]), nM=int(state["spm/nM"]),
                      it=int(state["spm/it"]), stopped=bool(state["spm/stopped"]))
            self._spm = st
            self.n_features_in_ = m.ny
            return
        sc = {k: np.array(state[f"scheme/{k}"], dtype=float) for k in _SCHEME_ARRAYS}
        sc["scale"] = float(state["scheme/scale"])
        sc["it"] = int(state["scheme/it"])
        sc["stopped"] = bool(state["scheme/stopped"])
        self._scheme = sc
        self.n_features_in_ = m.ny

    def save(self, path: str | os.PathLike) -> Path:
        """Save parameters, posterior, scheme state and history to ``path`` (``.npz``).

        A model of the zoo (:mod:`predcode.models.hdm_zoo`) is stored by name and
        arguments, so ``DEM.load(path)`` rebuilds it. A user-built HDM holds Python
        callables (``f``, ``g``) that ``.npz`` cannot hold: everything else is saved,
        and ``DEM.load(path, model=hdm)`` takes the same HDM back.
        """
        self._check_fitted("save")
        m = _as_hdm(self.model, "DEM")
        spec = m.zoo_spec()
        if spec is None:
            ge = GeneralizedErrors(m)
            spec = {"user": {"n_y": m.ny, "n_x": m.nx, "n_v": m.nv, "n_u": ge.nu,
                             "n_theta": int(m.theta.size), "n_h": len(m.h_blocks)}}
        keep = self.model
        self.model = spec
        try:
            return super().save(path)
        finally:
            self.model = keep

    @classmethod
    def load(cls, path: str | os.PathLike, model: HDM | None = None) -> DEM:
        """Load a DEM saved with :meth:`save`.

        Parameters
        ----------
        path : str or path
            The ``.npz`` file.
        model : HDM, optional
            The HDM the DEM inverted. Required when it was user-built (a clear
            :class:`ValidationError` says so otherwise); a zoo model is rebuilt by name.
        """
        if model is not None and not isinstance(model, HDM):
            raise ValidationError(
                f"DEM.load.model: expected an HDM, got {type(model).__name__}."
            )
        token = _LOAD_MODEL.set(model)
        try:
            return load_model(path, expected=cls)
        finally:
            _LOAD_MODEL.reset(token)


@blas_threads()
def generalized_filter(
    model: HDM,
    Y: Any,
    *,
    learn_theta: Any = None,
    learn_h: Any = None,
    h_precision: float | None = None,
    backend: str = "auto",
    n_iter: int = 1,
    n_d: int = 1,
    h_variance: float = 1.0,
) -> dict[str, Any]:
    r"""Generalized filtering (SPM's ``spm_LAP``): a thin call of :class:`~predcode.LAP`.

    Runs ``LAP(model, n_iter=n_iter, n_d=n_d, learn_theta=learn_theta, learn_h=learn_h,
    h_variance=h_variance).fit(Y)`` and returns its online trajectories, so its numbers
    are :class:`~predcode.LAP`'s (and SPM's). The default ``n_iter = 1`` is one online
    pass through the data (states, parameters and log-precisions integrated together
    at every bin); use :class:`~predcode.LAP` itself for SPM's iterated scheme.

    Parameters
    ----------
    model : HDM
        The generative model (diagonal precisions, as ``spm_LAP`` needs).
    Y : array (N, n_y)
        Data.
    learn_theta, learn_h
        Parameters and log-precision blocks estimated online (see :class:`~predcode.LAP`).
    h_precision : float, optional
        Deprecated (the former recursive scheme's option): the prior precision of the
        log-precisions; pass ``h_variance = 1 / h_precision`` instead.
    backend : str
        ``"auto"``/``"numpy"``: generalized filtering runs on the host.
    n_iter, n_d, h_variance
        :class:`~predcode.LAP`'s iterations (SPM ``E.nN``), integration steps per bin
        (``E.nD``) and prior variance of the log-precisions (``hC``).

    Returns
    -------
    dict
        ``x`` (N, nx), ``v`` (N, nv) conditional expectations (order 0), ``u`` the
        generalized ones, ``theta`` (N, p) and ``h`` (N, n_h) the online parameters and
        log-precisions (all blocks; the unlearned ones at their prior) at each bin,
        ``F`` (N,) the free energy of the states at each bin (SPM's ``DEM.FT``), and
        ``model`` the fitted :class:`~predcode.LAP`.
    """
    import warnings

    from .lap import LAP

    m = model
    if not isinstance(m, HDM):
        raise ValidationError(
            f"generalized_filter.model: expected an HDM, got {type(m).__name__}."
        )
    _host_only(backend, Y, "generalized_filter")
    resolve_backend(backend, Y, owner="generalized_filter")
    if h_precision is not None:
        check_param(h_precision, "h_precision", "generalized_filter", low=0)
        if h_variance != 1.0:
            raise ValidationError(
                "generalized_filter.h_precision: deprecated and given with h_variance; "
                "pass only h_variance (= 1 / h_precision)."
            )
        warnings.warn(
            "generalized_filter(h_precision=...) is deprecated: generalized_filter now runs "
            "SPM's spm_LAP (predcode.LAP); pass h_variance = 1 / h_precision.",
            DeprecationWarning, stacklevel=2,
        )
        h_variance = 1.0 / h_precision
    lap = LAP(m, n_iter=n_iter, n_d=n_d, learn_theta=learn_theta, learn_h=learn_h,
              h_variance=h_variance)
    lap.fit(Y)
    N = lap.u_.shape[0]
    h = np.tile(m.h_prior(), (N, 1))
    if lap.h_free_.size:
        h[:, lap.h_free_] = lap.h_t_
    return {
        "u": lap.u_,
        "x": lap.x_,
        "v": lap.v_,
        "theta": lap.theta_t_,
        "h": h,
        "F": lap.F_t_,
        "model": lap,
    }


def _smooth_noise(
    N: int, d: int, s: float, dt: float, rng: np.random.Generator, oversample: int = 16
) -> np.ndarray:
    """Unit-variance noise with autocorrelation ``exp(-h^2 / (4 s^2))`` sampled every ``dt``.

    White noise on a grid ``oversample`` times finer than ``dt`` is convolved with the
    Gaussian kernel ``exp(-h^2 / (2 s^2))`` (whose self-convolution has the stated
    autocorrelation) and sampled at the bins; a kernel sampled only at the bins would
    be too coarse for ``s`` below a bin (lag-1 correlation 0.26 instead of 0.37 at s = 1/2).
    """
    if d == 0:
        return np.zeros((N, 0))
    if s <= 0:
        return rng.standard_normal((N, d))
    h = dt / oversample
    pad = int(math.ceil(4 * s / h)) + 1
    k = np.exp(-((np.arange(-pad, pad + 1) * h) ** 2) / (2 * s * s))
    k /= np.sqrt(np.sum(k * k))
    M = (N - 1) * oversample + 1
    w = rng.standard_normal((M + 2 * pad, d))
    fine = np.stack([np.convolve(w[:, j], k, mode="valid") for j in range(d)], axis=1)
    return fine[::oversample]


@blas_threads()
def simulate(
    model: HDM,
    U: Any,
    *,
    noise: bool = True,
    random_state: Any = 0,
    x0: Any = None,
    substeps: int = 8,
) -> dict[str, np.ndarray]:
    r"""Generate data from an HDM with top-level causes ``U`` (N, n_top).

    Noise :math:`z_i, w_i` is smooth (Gaussian autocorrelation, width ``s``) with
    precisions ``exp(hv) V``, ``exp(hw) W``. Everything runs on a grid ``substeps``
    times finer than ``dt``: the causes ``U`` are interpolated linearly between bins,
    the noise is drawn on the fine grid, the states take one local-linearisation step
    per fine step, and every ``substeps``-th point is returned. (Holding causes and
    state noise constant within a bin, as an earlier version did, adds a sub-bin
    roughness that the model's smooth causes cannot explain: with observation
    log-precision 16 and no state noise, DEM estimated the state log-precision as 11.6
    on bin-held data and 14.2 on data from this simulator.)

    Returns
    -------
    dict
        ``Y`` (N, ny), ``x`` (N, nx) and ``v`` (N, nv) stacked over levels.
    """
    m = model
    rng = check_random_state(random_state, owner="simulate")
    substeps = check_int(substeps, "substeps", "simulate")
    U = np.asarray(U, float).reshape(len(U), -1)
    N = U.shape[0]
    L = m.levels
    k = substeps
    Nf = (N - 1) * k + 1
    hf = m.dt / k
    # causes on the fine grid: linear interpolation between bins
    frac = (np.arange(Nf) % k) / k
    lo = np.arange(Nf) // k
    hi = np.minimum(lo + 1, N - 1)
    Uf = U[lo] * (1 - frac)[:, None] + U[hi] * frac[:, None]

    def chol_cov(P: np.ndarray, h: float) -> np.ndarray:
        return np.linalg.cholesky(np.linalg.inv(math.exp(h) * P)) if P.size else P

    # noise drawn on the fine grid (the kernel oversampling keeps the fine grid's
    # resolution at least dt / 16)
    over = max(1, int(math.ceil(16 / k)))
    Z = [
        (
            _smooth_noise(Nf, lv.n_out, m.s, hf, rng, over) @ chol_cov(lv.V, lv.hv).T
            if noise
            else np.zeros((Nf, lv.n_out))
        )
        for lv in L
    ]
    W = [
        (
            _smooth_noise(Nf, lv.n_x, m.s, hf, rng, over) @ chol_cov(lv.W, lv.hw).T
            if noise and lv.n_x
            else np.zeros((Nf, lv.n_x))
        )
        for lv in L
    ]
    xs = m.split(m.x_init() if x0 is None else np.asarray(x0, float), np.zeros(m.nv))
    xs = [x.copy() for x, _ in xs]
    Yo, Xo, Vo = np.empty((N, m.ny)), np.empty((N, m.nx)), np.empty((N, m.nv))
    th = m.theta
    for j in range(Nf):
        v = Uf[j]
        vs = [None] * len(L)
        for i in range(len(L) - 1, -1, -1):
            vs[i] = v
            v = np.atleast_1d(L[i].g(xs[i], vs[i], th)) + Z[i][j]
        if j % k == 0:
            t = j // k
            Yo[t] = v
            Xo[t] = np.concatenate(xs) if xs else np.zeros(0)
            Vo[t] = np.concatenate(vs)
        if j == Nf - 1:
            break
        for i, lv in enumerate(L):
            if not lv.n_x:
                continue
            fval = np.atleast_1d(lv.f(xs[i], vs[i], th)) + W[i][j]
            J = _jacobian(lv.f, lv.fx, xs[i], vs[i], th, 0, (lv.n_x, lv.n_x))
            xs[i] = xs[i] + ozaki_step(J, fval, hf)
    return {"Y": Yo, "x": Xo, "v": Vo}


@blas_threads()
def extended_kalman_filter(
    model: HDM, Y: Any, *, cause_variance: float = 1.0 / 8, x0: Any = None, P0: float = 1.0
) -> dict[str, np.ndarray]:
    r"""Extended Kalman filter on the discrete-time version of a one-level HDM.

    State :math:`s = [x, v]`; :math:`x_{t+1} = x_t + (e^{f_x\Delta t} - I) f_x^{-1}
    f(x_t, v_t)` (the same local linearisation as DEM), :math:`v_{t+1} = v_t +
    \omega` with variance ``cause_variance`` (the EKF has no notion of smooth causes),
    state noise covariance :math:`(e^{h_w}W)^{-1}\Delta t`, observation noise
    :math:`(e^{h_v}V)^{-1}`. Returns filtered ``x`` (N, nx), ``v`` (N, nv).
    """
    m = model
    if len(m.levels) != 1:
        raise ValidationError("extended_kalman_filter.model: supports one-level HDMs only.")
    Y = m.check_data(Y, "extended_kalman_filter")
    lv = m.levels[0]
    nx, nv = lv.n_x, lv.n_v
    ns = nx + nv
    s = np.zeros(ns)
    s[:nx] = m.x_init() if x0 is None else x0
    s[nx:] = m.eta_at(0)
    P = np.eye(ns) * P0
    th = m.theta
    Q = np.zeros((ns, ns))
    if nx:
        Q[:nx, :nx] = np.linalg.inv(math.exp(lv.hw) * lv.W) * m.dt
    Q[nx:, nx:] = np.eye(nv) * cause_variance
    Rn = np.linalg.inv(math.exp(lv.hv) * lv.V)
    xs, vs = [], []
    for t in range(Y.shape[0]):
        x, v = s[:nx], s[nx:]
        ev = m.evaluate(x, v, th)
        Hm = np.hstack([ev["Gx"], ev["Gv"]])
        Sy = Hm @ P @ Hm.T + Rn
        K = P @ Hm.T @ np.linalg.inv(Sy)
        s = s + K @ (Y[t] - ev["G"])
        P = (np.eye(ns) - K @ Hm) @ P
        xs.append(s[:nx].copy())
        vs.append(s[nx:].copy())
        # predict with the local linearisation of the flow
        x, v = s[:nx], s[nx:]
        ev = m.evaluate(x, v, th)
        Jf = np.zeros((ns, ns))
        Jf[:nx, :nx], Jf[:nx, nx:] = ev["Fx"], ev["Fv"]
        A = np.zeros((ns + 1, ns + 1))
        A[:ns, :ns] = Jf * m.dt
        A[:nx, ns] = ev["F"] * m.dt
        E = expm(A)
        s = s + E[:ns, ns]
        Phi = E[:ns, :ns]
        P = Phi @ P @ Phi.T + Q
    return {"x": np.array(xs), "v": np.array(vs)}
