r"""Generalized filtering (SPM's ``spm_LAP``): dual estimation of states, parameters and
precisions under the Laplace assumption, in one online integration per iteration.

Friston, Stephan, Li & Daunizeau (2010), *Generalised filtering*, Math Probl Eng
2010:621670; SPM12 ``spm_LAP`` (with ``spm_DEM_eval``, ``spm_LAP_eval``, ``spm_dx``).

For an :class:`~predcode.models.generalized.HDM` with generalized errors
:math:`\tilde\varepsilon(\tilde u, \theta)` (SPM's local linearity, highest state order
set to zero) and precision :math:`\tilde\Pi = \mathrm{blkdiag}(R\otimes
\mathrm{diag}(e^{\pi_v}), R\otimes\mathrm{diag}(e^{\pi_x}))`, log-precisions
:math:`\pi = \ln\mathrm{diag}(V) + h` (one hyperparameter per learned block, SPM's
``Q = I``), the Gibbs energy is

.. math::

    L = \tfrac12\tilde\varepsilon^\top\tilde\Pi\tilde\varepsilon - \tfrac12\ln|\tilde\Pi|
    + \tfrac12\varphi^\top P_\theta\varphi + \tfrac12(h-\eta_h)^\top P_h (h-\eta_h),

with :math:`\varphi` the parameters' deviation from their prior mean in the reduced
basis :math:`U` of the prior covariance (``spm_svd``). At every time bin (``n_d``
sub-steps) the states, the parameters and log-precisions :math:`b = [\varphi, h]` and
their motion :math:`b'` follow

.. math::

    \dot{\tilde u} = D\tilde u - L_{\tilde u}, \qquad \dot b = b', \qquad
    \dot b' = -N b' - C_b (L_b + H_b),

where :math:`H_b` is the gradient of the entropy term :math:`\tfrac12\ln|L_{aa}|`
(:math:`a = [\tilde u, \varphi]`), :math:`N` the number of bins, and :math:`C_b =
(\bar L_{bb} + e^{\delta}\mathrm{diag}\bar L_{bb})^{-1}` the inverse of the running
average of the curvature :math:`L_{bb}`. The joint flow (data and prior causes
included) is integrated by local linearisation over :math:`1/n_d` (``spm_dx``).
Each iteration restarts the states at their initial value and keeps
:math:`(\varphi, h, b')`; the free energy sums the states' part over bins and the
parameters' and precisions' parts of their Bayesian averages over bins. As in SPM,
an iteration (after the fourth) that lowers F is undone (:math:`\varphi, h` back to
the last accepted values, :math:`\delta \leftarrow \max(\delta + 2, 2)`), otherwise
:math:`\delta \leftarrow \max(\delta - 1, -8)`; the scheme stops after four accepted
gains below 1 or when :math:`\delta > 6`.
"""

from __future__ import annotations

import functools
import math
import time
from typing import Any

import numpy as np
from scipy.linalg import expm

from ..base import Model
from ..exceptions import ValidationError
from ..validation import check_int, check_param
from ._spm_linalg import spm_inv, spm_logdet
from .generalized import HDM, shift_operator, temporal_precision
from .hdm_args import _as_hdm, _free_indices, _h_indices

__all__ = ["LAP", "embed_at", "reduced_basis"]


def embed_at(Y: np.ndarray, n: int, ts: float) -> np.ndarray:
    r"""Generalized coordinates of ``Y`` (shape ``(N, q)``) at a possibly fractional,
    **1-based** time ``ts`` (SPM's ``spm_DEM_embed``).

    The ``n`` bins :math:`k = 1..n + \mathrm{fix}(t_s - (n+1)/2)` (clamped to the
    series) are fitted by a Taylor polynomial about :math:`t_s`. Returns ``(n, q)``.
    """
    N = Y.shape[0]
    k = np.arange(1, n + 1) + math.trunc(ts - (n + 1) / 2)
    x = ts - k.min() + 1
    k = np.clip(k, 1, N)
    return _taylor_inverse(n, float(x)) @ Y[k - 1]


@functools.lru_cache(maxsize=256)
def _taylor_inverse(n: int, x: float) -> np.ndarray:
    """``pinv(T)`` with :math:`T_{ij} = (i - x)^j / j!` (``i = 1..n``, ``j = 0..n-1``)."""
    T = np.array([[(i - x) ** j / math.factorial(j) for j in range(n)]
                  for i in range(1, n + 1)])
    out = np.linalg.pinv(T)
    out.setflags(write=False)
    return out


def reduced_basis(C: np.ndarray) -> np.ndarray:
    """SPM's ``spm_svd(C, 0)`` for a covariance ``C``: the eigenvectors whose normalised
    eigenvalue exceeds ``64 eps`` (a diagonal ``C`` gives its unit vectors, largest first).
    """
    C = np.asarray(C, float)
    p = C.shape[0]
    if p == 0:
        return np.zeros((0, 0))
    nz = np.flatnonzero(np.any(C != 0, axis=1) | np.any(C != 0, axis=0))
    X = C[np.ix_(nz, nz)]
    U = np.zeros((p, 0))
    if X.size == 0:
        return U
    tol = 64 * np.finfo(float).eps
    if np.any(X - np.diag(np.diag(X))):
        u, s, _ = np.linalg.svd(X)
        s2 = s**2
        u = u[:, s2 * s2.size / s2.sum() > tol]
    else:
        s = np.diag(X)
        order = np.argsort(-s, kind="stable")
        s2 = s[order] ** 2
        u = np.eye(len(nz))[:, order][:, s2 * s2.size / s2.sum() > tol]
    U = np.zeros((p, u.shape[1]))
    U[nz] = u
    return U


class _Structure:
    """Sizes, fixed operators and precisions of an HDM for ``spm_LAP``."""

    def __init__(self, m: HDM, free: np.ndarray, h_free: np.ndarray, h_var: float,
                 n_d: int):
        self.m = m
        self.n, self.d = n, d = m.n, m.d
        self.nx, self.nv, self.ny = nx, nv, ny = m.nx, m.nv, m.ny
        self.nc = nc = m.levels[-1].n_v
        self.ne0 = ne0 = ny + nv
        self.nu = n * nx + d * nv
        self.n_d = n_d
        # log-precisions: v-errors (levels, then the top-level causes) and x-errors
        base_h, base_g, self.h_rows = [], [], []
        for kind, i in m.h_blocks:
            if kind == "v":
                P, h0 = m.levels[i].V, m.levels[i].hv
            elif kind == "eta":
                P, h0 = m.eta_precision, m.h_eta
            else:
                P, h0 = m.levels[i].W, m.levels[i].hw
            if np.any(P - np.diag(np.diag(P))):
                raise ValidationError(
                    f"LAP.model: spm_LAP needs diagonal precisions, but the {kind} precision "
                    f"of level {i} has off-diagonal entries; use a diagonal V/W."
                )
            (base_g if kind == "x" else base_h).append(np.log(np.diag(P)) + h0)
        self.pi_h0 = np.concatenate(base_h)
        self.pi_g0 = np.concatenate(base_g) if base_g else np.zeros(0)
        # which rows each learned hyperparameter moves (Q = I on its block)
        sizes = [len(b) for b in base_h] + [len(b) for b in base_g]
        starts = np.concatenate([[0], np.cumsum(sizes)])
        kinds = [k for k, _ in m.h_blocks]
        self.h_free = h_free
        self.hE = m.h_prior()[h_free]
        self.Ph = np.eye(h_free.size) / h_var
        self.dh_rows = []  # (is_state_noise, row indices within pi_h or pi_g)
        nhv = len(self.pi_h0)
        for j in h_free:
            rows = np.arange(starts[j], starts[j + 1])
            if kinds[j] == "x":
                self.dh_rows.append((True, rows - nhv))
            else:
                self.dh_rows.append((False, rows))
        # parameters in SPM's reduced space
        pC = np.linalg.inv(m.theta_precision)
        Ufree = np.zeros((m.theta.size, free.size))
        Ufree[free, np.arange(free.size)] = 1.0
        Ur = reduced_basis(Ufree.T @ pC @ Ufree)
        self.Up = Ufree @ Ur
        self.np_ = self.Up.shape[1]
        self.Pp = spm_inv(self.Up.T @ pC @ self.Up)
        self.ld_Pp, self.ld_Ph = spm_logdet(self.Pp), spm_logdet(self.Ph)
        self.pE = m.theta.copy()
        self.nb = h_free.size
        R = temporal_precision(n, m.s)
        self.R = R
        # operators
        In, Ind = np.eye(n), np.eye(n, d)
        self.Dy = shift_operator(n, ny)
        self.Dc = shift_operator(d, nc)
        self.Du = np.zeros((self.nu, self.nu))
        self.Du[: n * nx, : n * nx] = shift_operator(n, nx)
        self.Du[n * nx:, n * nx:] = shift_operator(d, nv)
        A = np.zeros((ne0, nv))
        A[ny:] = np.eye(nv)
        self.A = A
        dedy = np.zeros((ne0, ny))
        dedy[:ny] = np.eye(ny)
        dedc = np.zeros((ne0, nc))
        dedc[ne0 - nc:] = -np.eye(nc)
        self.dEdy = np.vstack([np.kron(In, dedy), np.zeros((n * nx, n * ny))])
        self.dEdc = np.vstack([np.kron(Ind, dedc), np.zeros((n * nx, d * nc))])
        self.shift_x = np.kron(np.eye(n, k=1), np.eye(nx))
        self.In, self.Ind = In, Ind
        # SPM's mask: very precise errors (log-precision >= 8) leave F
        ih, ig = self.pi_h0 < 8, self.pi_g0 < 8
        self.je = np.flatnonzero(np.concatenate([np.tile(ih, n), np.tile(ig, n)]))

    def pi(self, h: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        ph, pg = self.pi_h0.copy(), self.pi_g0.copy()
        for j, (state, rows) in enumerate(self.dh_rows):
            target = pg if state else ph
            target[rows] += h[j] - self.hE[j]
        return ph, pg

    def theta(self, p: np.ndarray) -> np.ndarray:
        return self.pE + self.Up @ p

    def evaluate(self, X: np.ndarray, V: np.ndarray, p: np.ndarray) -> dict[str, np.ndarray]:
        """g, f and Jacobians at order 0, with the generalized g-Jacobian of SPM (cause rows)."""
        ev = self.m.evaluate(X, V, self.theta(p))
        nc, nx = self.nc, self.nx
        ev["Gf"] = np.concatenate([ev["G"], np.zeros(nc)])
        ev["Gxf"] = np.vstack([ev["Gx"], np.zeros((nc, nx))])
        ev["Gvf"] = np.vstack([ev["Gv"], np.zeros((nc, self.nv))]) - self.A
        return ev

    def g_and_f(self, X: np.ndarray, V: np.ndarray, p: np.ndarray) -> dict[str, np.ndarray]:
        """The stacked predictions ``Gf`` (cause rows zero) and flows ``F`` only."""
        th = self.theta(p)
        G, F = np.zeros(self.ne0), np.empty(self.nx)
        io = ix = 0
        for lv, (x, v) in zip(self.m.levels, self.m.split(X, V), strict=True):
            G[io: io + lv.n_out] = lv.g(x, v, th)
            if lv.n_x:
                F[ix: ix + lv.n_x] = lv.f(x, v, th)
            io, ix = io + lv.n_out, ix + lv.n_x
        return {"Gf": G, "F": F}

    def param_jacobians(self, X: np.ndarray, V: np.ndarray, p: np.ndarray,
                        cross: bool) -> dict[str, Any]:
        """Jacobians in the reduced parameters by central differences (and, with
        ``cross``, the parameter derivatives of the state Jacobians)."""
        out: dict[str, Any] = {"Gp": [], "Fp": [], "Gxp": [], "Gvp": [], "Fxp": [], "Fvp": []}
        for j in range(self.np_):
            step = 1e-6 * max(1.0, float(np.abs(self.Up[:, j] @ self.pE)))
            e = np.zeros(self.np_)
            e[j] = step
            if cross:
                hi, lo = self.evaluate(X, V, p + e), self.evaluate(X, V, p - e)
            else:  # only g and f are needed
                hi, lo = self.g_and_f(X, V, p + e), self.g_and_f(X, V, p - e)
            out["Gp"].append((hi["Gf"] - lo["Gf"]) / (2 * step))
            out["Fp"].append((hi["F"] - lo["F"]) / (2 * step))
            if cross:
                for key, src in (("Gxp", "Gxf"), ("Gvp", "Gvf"), ("Fxp", "Fx"), ("Fvp", "Fv")):
                    out[key].append((hi[src] - lo[src]) / (2 * step))
        out["Gp"] = np.array(out["Gp"]).T.reshape(self.ne0, self.np_)
        out["Fp"] = np.array(out["Fp"]).T.reshape(self.nx, self.np_)
        return out


class LAP(Model):
    r"""Generalized filtering of a hierarchical dynamic model (SPM's ``spm_LAP``).

    ``fit(Y)`` runs up to ``n_iter`` iterations (SPM's ``M(1).E.nN``; the epochs of the
    protocol) of the online scheme described in :mod:`predcode.models.lap`;
    ``partial_fit(Y)`` runs one more. Each iteration integrates states, parameters,
    log-precisions and their motion together through the data, restarting the states
    at their initial value.

    Parameters
    ----------
    model : HDM or str
        The generative model: its ``theta`` and ``theta_precision`` are the parameters'
        prior mean and precision (SPM's ``pE``, ``inv(pC)``), ``hv``/``hw``/``h_eta`` the
        log-precisions (with the diagonal ``V``/``W``/``eta_precision``: log-precision
        ``log(diag V) + hv``).
    n_iter : int
        Iterations (SPM ``M(1).E.nN``, default 8).
    n_d : int
        Integration steps per time bin (SPM ``M(1).E.nD``, default 1).
    learn_theta : array of int or None
        Parameters that are estimated (those with a negligible prior variance are
        dropped as SPM's ``spm_svd`` does); ``None``: none.
    learn_h : sequence of (kind, level) or None
        Log-precision blocks estimated (SPM: a level with ``hE``; ``Q = I``).
    h_variance : float
        Prior variance of the log-precisions (SPM's ``hC``, default 1).
    dt0 : float
        Initial log-regulariser :math:`\delta` of the parameter update (SPM ``E.v``, 0).

    Attributes
    ----------
    history_ : dict
        Per iteration: ``energy`` (:math:`-F/N`), ``F`` (SPM's ``DEM.F``: the free
        energy held after the iteration, a rejected one repeats the last accepted),
        ``F_iter`` (this iteration's F), ``S`` (free action), ``accepted``,
        ``stopped``, ``wall_time_s``.
    x_, v_ : ndarray (N, nx), (N, nv)
        Conditional expectations (order 0) of the last recorded iteration (SPM ``qU``).
    u_ : ndarray (N, nu)
        Generalized expectations; ``Sx_`` (N, nx, nx), ``Sv_`` their covariances.
    z_, w_ : ndarray (N, ny), (N, nx)
        Prediction errors of the data and of the states (order 0).
    theta_, Sigma_theta_ : ndarray
        Bayesian average (over bins) of the parameters and its covariance (``qP.P``,
        ``qP.C``).
    h_, Sigma_h_ : ndarray
        The same for the learned log-precisions (``qH``).
    theta_path_ : ndarray (n_iter_run, p)
        Bayesian-averaged parameters after each iteration.
    theta_t_, h_t_ : ndarray (N, p), (N, n_learned_h)
        The online parameters and learned log-precisions at each bin of the last
        recorded iteration (SPM's ``qP.p{t}``, ``qH.p{t}``; before that bin's update).
    F_t_ : ndarray (N,)
        Free energy of the states at each bin of that iteration (SPM's ``DEM.FT``).
    F_ : float
        Final free energy (``DEM.F(end)``).
    """

    ENERGY_UNIT = "nats"
    _RUNTIME = ("_xp", "_k", "_m", "_st")
    _DIVERGENCE_PARAM = "n_d"
    _EPOCHS_PARAM = "n_iter"
    _STATE_KINDS = {"it": "iu", "stopped": "biu", "convergence": "iu"}
    _LEARNED = (
        "history_", "n_features_in_", "backend_", "u_", "Sx_", "Sv_", "z_", "w_", "theta_",
        "Sigma_theta_", "h_", "Sigma_h_", "theta_path_", "F_", "_sc", "free_", "h_free_",
        "theta_t_", "h_t_", "F_t_",
    )

    def __init__(
        self,
        model: HDM | str | None = None,
        *,
        n_iter: int = 8,
        n_d: int = 1,
        learn_theta: Any = None,
        learn_h: Any = None,
        h_variance: float = 1.0,
        dt0: float = 0.0,
    ):
        self.model = model
        self.n_iter = n_iter
        self.n_d = n_d
        self.learn_theta = learn_theta
        self.learn_h = learn_h
        self.h_variance = h_variance
        self.dt0 = dt0

    # ------------------------------------------------------------------ set-up
    def _on_runtime(self) -> None:
        self._m = m = _as_hdm(self.model, "LAP")
        self._st = _Structure(m, self.free_, self.h_free_, float(self.h_variance),
                              int(self.n_d))

    def _ensure_runtime(self) -> None:
        if getattr(self, "_st", None) is None:
            self._on_runtime()

    def _init_fit(self, Y: Any, y: Any = None) -> np.ndarray:
        m = _as_hdm(self.model, "LAP")
        check_int(self.n_iter, "n_iter", "LAP")
        check_int(self.n_d, "n_d", "LAP")
        check_param(self.h_variance, "h_variance", "LAP", low=0)
        check_param(self.dt0, "dt0", "LAP", low=None)
        self.free_ = _free_indices(m, self.learn_theta, "LAP")
        self.h_free_ = _h_indices(m, self.learn_h, "LAP")
        self._on_runtime()
        Y = m.check_data(Y, "LAP")
        st = self._st
        self.n_features_in_ = m.ny
        self.backend_ = "numpy"
        self._sc = {
            "p": np.zeros(st.np_), "h": st.hE.copy(), "db": np.zeros(st.np_ + st.nb),
            "dLdBB": np.zeros((0, 0)), "dt": float(self.dt0), "F": [-np.inf],
            "best_p": np.zeros(st.np_), "best_h": st.hE.copy(), "it": 0, "convergence": -4,
            "stopped": False,
        }
        self.theta_path_ = np.zeros((0, m.theta.size))
        self.theta_t_, self.h_t_ = np.zeros((0, m.theta.size)), np.zeros((0, st.nb))
        self.F_t_ = np.zeros(0)
        self.theta_, self.Sigma_theta_ = m.theta.copy(), np.zeros((m.theta.size,) * 2)
        self.h_, self.Sigma_h_ = st.hE.copy(), np.zeros((st.nb, st.nb))
        self.F_ = -np.inf
        return Y

    def _fit_data(self, Y: Any, y: Any = None) -> np.ndarray:
        return self._m.check_data(Y, "LAP")

    # ------------------------------------------------------------------ one pass
    def _pass(self, Y: np.ndarray) -> dict[str, Any]:
        """One online integration through the data (SPM's loop over bins and D-steps)."""
        st, sc, m = self._st, self._sc, self._m
        n, d, nx, nv, ny, nc = st.n, st.d, st.nx, st.nv, st.ny, st.nc
        N, nD, npar, nb, nu = Y.shape[0], st.n_d, st.np_, st.nb, st.nu
        Ueta = np.array([m.eta_at(t) for t in range(N)]).reshape(N, nc)
        X = np.zeros((n, nx))
        X[0] = m.x_init()
        Vc = np.zeros((d, nv))
        p, h, db = sc["p"].copy(), sc["h"].copy(), sc["db"].copy()
        R = st.R
        Kb = N * np.eye(npar + nb)
        rec = {k: [] for k in ("u", "E", "p", "h", "Cp", "Ch", "Sx", "Sv", "Fc", "AC")}
        cross = None
        ld_cache: dict[bytes, float] = {}
        iS_cache: dict[bytes, np.ndarray] = {}
        for i_s in range(N):
            for i_d in range(nD):
                ts = i_s + 1 + i_d / nD
                yt = embed_at(Y, n, ts)
                ct = embed_at(Ueta, d, ts)
                ev = st.evaluate(X[0], Vc[0], p)
                pj = st.param_jacobians(X[0], Vc[0], p, cross is None)
                if cross is None:  # SPM holds these from the first bin of an iteration
                    cross = {k: pj[k] for k in ("Gxp", "Gvp", "Fxp", "Fvp")}
                    dup = [-np.vstack([
                        np.hstack([np.kron(st.In, cross["Gxp"][j]),
                                   np.kron(st.Ind, cross["Gvp"][j])]),
                        np.hstack([np.kron(st.In, cross["Fxp"][j]),
                                   np.kron(st.Ind, cross["Fvp"][j])]),
                    ]) for j in range(npar)]
                    cx = {k: np.array(cross[k]).reshape(npar, *shape) for k, shape in (
                        ("Gxp", (st.ne0, nx)), ("Gvp", (st.ne0, nv)),
                        ("Fxp", (nx, nx)), ("Fvp", (nx, nv)))}
                    dup_a = np.array(dup).reshape(npar, n * (st.ne0 + nx), nu)
                Vn = np.zeros((n, nv))
                Vn[:d] = Vc
                Cn = np.zeros((n, nc))
                Cn[:d] = ct
                # generalized errors
                Ev = np.zeros((n, st.ne0))
                Ev[0] = np.concatenate([yt[0], Vc[0]]) - np.concatenate([ev["G"], ct[0]])
                for k in range(1, n):
                    Ev[k] = (np.concatenate([yt[k], np.zeros(nv)])
                             - np.concatenate([np.zeros(st.ne0 - nc), Cn[k]])
                             - ev["Gxf"] @ X[k] - ev["Gvf"] @ Vn[k])
                Ex = np.zeros((n, nx))
                if nx:
                    Ex[0] = X[1] - ev["F"] if n > 1 else -ev["F"]
                    for k in range(1, n - 1):
                        Ex[k] = X[k + 1] - ev["Fx"] @ X[k] - ev["Fv"] @ Vn[k]
                E = np.concatenate([Ev.ravel(), Ex.ravel()])
                # Jacobians
                dEdu = np.vstack([
                    np.hstack([-np.kron(st.In, ev["Gxf"]), -np.kron(st.Ind, ev["Gvf"])]),
                    np.hstack([st.shift_x - np.kron(st.In, ev["Fx"]),
                               -np.kron(st.Ind, ev["Fv"])]),
                ])
                # parameter derivatives of the errors, all orders: order 0 from this
                # bin's Jacobians, higher orders through the held cross-derivatives
                g_hi = (np.einsum("jex,kx->jke", cx["Gxp"], X[1:])
                        + np.einsum("jev,kv->jke", cx["Gvp"], Vn[1:]))
                f_hi = (np.einsum("jex,kx->jke", cx["Fxp"], X[1:])
                        + np.einsum("jev,kv->jke", cx["Fvp"], Vn[1:]))
                dEdp = -np.concatenate([
                    np.concatenate([pj["Gp"].T[:, None], g_hi], axis=1).reshape(npar, n * st.ne0),
                    np.concatenate([pj["Fp"].T[:, None], f_hi], axis=1).reshape(npar, n * nx),
                ], axis=1).T
                ph, pg = st.pi(h)
                nvr = n * st.ne0
                key = h.tobytes()
                if key not in iS_cache:  # the precision depends on h only
                    iS = np.zeros((E.size, E.size))
                    iS[:nvr, :nvr] = np.kron(R, np.diag(np.exp(ph)))
                    iS[nvr:, nvr:] = np.kron(R, np.diag(np.exp(pg)))
                    iS_cache.clear()
                    iS_cache[key] = iS
                iS = iS_cache[key]
                diS = []
                for state, rows in st.dh_rows:
                    M_ = np.zeros((E.size, E.size))
                    dvec = np.zeros(len(pg) if state else len(ph))
                    dvec[rows] = np.exp(pg[rows] if state else ph[rows])
                    blk = np.kron(R, np.diag(dvec))
                    if state:
                        M_[nvr:, nvr:] = blk
                    else:
                        M_[:nvr, :nvr] = blk
                    diS.append(M_)
                dDdh = np.array([n * len(rows) for _, rows in st.dh_rows], float)
                dEdh = np.array([E @ Mi for Mi in diS]).reshape(nb, E.size)
                dSdhh = np.diag([E @ Mi @ E for Mi in diS]) if nb else np.zeros((0, 0))
                iSE = iS @ E
                Eh = h - st.hE
                dLdu = dEdu.T @ iSE
                dLdh = dEdh @ E / 2 - dDdh / 2 + st.Ph @ Eh
                dLdp = dEdp.T @ iSE + st.Pp @ p
                iSdu, iSdp = iS @ dEdu, iS @ dEdp
                dLduu = dEdu.T @ iSdu
                dLdpp = dEdp.T @ iSdp + st.Pp
                dLdhh = dSdhh / 2 + st.Ph
                dLduy = iSdu.T @ st.dEdy
                dLduc = iSdu.T @ st.dEdc
                dLdup = dEdu.T @ iSdp
                dLdhp = dEdh @ dEdp
                dLdaa = np.block([[dLduu, dLdup], [dLdup.T, dLdpp]])
                dLdbb = np.block([[dLdpp, dLdhp.T], [dLdhp, dLdhh]])
                Cup = spm_inv(dLdaa)
                Chh = spm_inv(dLdhh)
                # gradients of the entropy term
                dHdh = np.zeros(nb)
                for j, Mi in enumerate(diS):
                    Luu = dEdu.T @ Mi @ dEdu
                    Lpu = dEdp.T @ Mi @ dEdu
                    Lpp = dEdp.T @ Mi @ dEdp
                    dHdh[j] = np.sum(np.block([[Luu, Lpu.T], [Lpu, Lpp]]) * Cup.T) / 2
                # tr(dL_aa/dp_j C_up) / 2 with dL_aa/dp_j = [[L + L', M'], [M, 0]]
                CupT = Cup.T
                Luup = np.einsum("jeu,ev->juv", dup_a, iSdu)
                Lpup = np.einsum("ep,jeu->jpu", iSdp, dup_a)
                dHdp = (np.einsum("juv,uv->j", Luup + Luup.transpose(0, 2, 1), CupT[:nu, :nu])
                        + np.einsum("jpu,up->j", Lpup, CupT[:nu, nu:])
                        + np.einsum("jpu,pu->j", Lpup, CupT[nu:, :nu])) / 2
                dHdb = np.concatenate([dHdp, dHdh])
                dLdb = np.concatenate([dLdp, dLdh])
                if i_d == 0 or N == 1:
                    u = np.concatenate([X.ravel(), Vc.ravel()])
                    je = st.je
                    iSj = iS[np.ix_(je, je)]
                    if key not in ld_cache:  # iS depends on h only
                        ld_cache[key] = spm_logdet(iSj)
                    Fc = [-E[je] @ iSj @ E[je] / 2, 0.0,
                          -n * ny * math.log(2 * math.pi) / 2, ld_cache[key] / 2, 0.0]
                    AC = (sum(Fc) - p @ st.Pp @ p / 2 - Eh @ st.Ph @ Eh / 2
                          + st.ld_Pp / 2 + st.ld_Ph / 2 - spm_logdet(dLdbb) / 2)
                    iv = slice(n * nx, n * nx + nv)
                    ip = slice(nu, nu + npar)
                    for key, val in (("u", u), ("E", E), ("p", p.copy()), ("h", h.copy()),
                                     ("Cp", Cup[ip, ip]), ("Ch", Chh),
                                     ("Sx", Cup[:nx, :nx]), ("Sv", Cup[iv, iv]),
                                     ("Fc", Fc), ("AC", AC)):
                        rec[key].append(val)
                # update the parameters' curvature and whiten their gradients
                if sc["dLdBB"].size == 0 and npar + nb:
                    sc["dLdBB"] = dLdbb + 32 * np.eye(npar + nb)
                elif npar + nb:
                    sc["dLdBB"] = sc["dLdBB"] * (1 - 1 / N) + dLdbb / N
                if npar + nb:
                    B = sc["dLdBB"]
                    Cb = spm_inv(B + np.diag(np.diag(B)) * math.exp(sc["dt"]))
                    dLdb, dHdb = Cb @ dLdb, Cb @ dHdb
                # joint flow and Jacobian: [y, u, c, b, b']
                uvec = np.concatenate([X.ravel(), Vc.ravel()])
                yv, cv = yt.ravel(), ct.ravel()
                b = np.concatenate([p, h])
                fl = np.concatenate([st.Dy @ yv, st.Du @ uvec - dLdu, st.Dc @ cv, db,
                                     -Kb @ db - dLdb - dHdb])
                sy, sc_, sb = yv.size, cv.size, b.size
                k = sy + nu + sc_ + 2 * sb
                J = np.zeros((k, k))
                o_u, o_c, o_b, o_d = sy, sy + nu, sy + nu + sc_, sy + nu + sc_ + sb
                J[:sy, :sy] = st.Dy
                J[o_u:o_c, :sy] = -dLduy
                J[o_u:o_c, o_u:o_c] = st.Du - dLduu
                J[o_u:o_c, o_c:o_b] = -dLduc
                J[o_c:o_b, o_c:o_b] = st.Dc
                J[o_b:o_d, o_d:] = np.eye(sb)
                J[o_d:, o_b:o_d] = -np.eye(sb)
                J[o_d:, o_d:] = -Kb
                aug = np.zeros((k + 1, k + 1))
                aug[1:, 0] = fl / nD
                aug[1:, 1:] = J / nD
                dq = expm(aug)[1:, 0]
                uvec = uvec + dq[o_u:o_c]
                X = uvec[: n * nx].reshape(n, nx)
                Vc = uvec[n * nx:].reshape(d, nv)
                b = b + dq[o_b:o_d]
                p, h = b[:npar], b[npar:]
                db = db + dq[o_d:]
        sc["p"], sc["h"], sc["db"] = p, h, db
        return rec

    @staticmethod
    def _average(means: list, covs: list, prior_P: np.ndarray, N: int
                 ) -> tuple[np.ndarray, np.ndarray]:
        """Bayesian average over bins (precision-weighted), SPM's parameter averaging."""
        k = prior_P.shape[0]
        if k == 0:
            return np.zeros(0), np.zeros((0, 0))
        Q, E = np.zeros((k, k)), np.zeros(k)
        for mu, C in zip(means, covs, strict=True):
            P = spm_inv(C)
            E += P @ mu
            Q += P
        return spm_inv(Q) @ E, spm_inv(Q + (1 - N) * prior_P)

    def _epoch(self, Y: np.ndarray, epoch: int, n_epochs: int) -> dict[str, float]:
        """One iteration of ``spm_LAP`` with its accept/revert rule (see the module doc)."""
        st, sc = self._st, self._sc
        N = Y.shape[0]
        if sc["stopped"]:
            return self._row(N, sc["F"][-1], sc["F"][-1], False, True)
        t0 = time.perf_counter()
        rec = self._pass(Y)
        Ep, Cp = self._average(rec["p"], rec["Cp"], st.Pp, N)
        Eh, Ch = self._average(rec["h"], rec["Ch"], st.Ph, N)
        Eh = Eh - st.hE if st.nb else Eh
        Fc = np.array(rec["Fc"])
        FC = list(Fc.sum(0)) + [
            -Ep @ st.Pp @ Ep / 2, -Eh @ st.Ph @ Eh / 2,
            spm_logdet(st.Pp @ Cp) / 2, spm_logdet(st.Ph @ Ch) / 2]
        Fe = float(sum(FC))
        S = float(np.sum(rec["AC"]))
        i = sc["it"]
        F = sc["F"]
        accepted = True
        if Fe < F[i] and i > 3:
            accepted = False
            F.append(F[i])
            sc["p"], sc["h"] = sc["best_p"].copy(), sc["best_h"].copy()
            sc["dt"] = max(sc["dt"] + 2, 2)
            if sc["dt"] > 6:
                sc["convergence"] = 1
        else:
            if Fe - F[i] < 1:
                sc["convergence"] += 1
            F[i] = Fe
            F.append(Fe)
            sc["best_p"], sc["best_h"] = sc["p"].copy(), sc["h"].copy()
            sc["dt"] = max(sc["dt"] - 1, -8)
        sc["it"] = i + 1
        if sc["convergence"] > 0:
            sc["stopped"] = True
        else:
            self._record(rec, N)
        self.F_ = float(F[i])
        row = self._row(N, F[i], Fe, accepted, False)
        row["S"] = S
        row["wall_time_s"] = time.perf_counter() - t0
        return row

    def _record(self, rec: dict[str, list], N: int) -> None:
        """Keep one iteration's states and its Bayesian parameter averages (SPM ``qU``,
        ``qP``, ``qH``)."""
        st = self._st
        n, nx, ny, ne0 = st.n, st.nx, st.ny, st.ne0
        self.u_ = np.array(rec["u"])
        E = np.array(rec["E"])
        self.z_ = E[:, :ny]
        self.w_ = E[:, n * ne0: n * ne0 + nx]
        self.Sx_, self.Sv_ = np.array(rec["Sx"]), np.array(rec["Sv"])
        Ep, Cp = self._average(rec["p"], rec["Cp"], st.Pp, N)
        self.theta_ = st.theta(Ep)
        self.Sigma_theta_ = st.Up @ Cp @ st.Up.T
        Eh, Ch = self._average(rec["h"], rec["Ch"], st.Ph, N)
        self.h_, self.Sigma_h_ = Eh, Ch
        self.theta_t_ = np.array([st.theta(p) for p in rec["p"]])
        self.h_t_ = np.array(rec["h"]).reshape(N, st.nb)
        self.F_t_ = np.array(rec["Fc"]).sum(axis=1)
        self.theta_path_ = np.vstack([self.theta_path_, self.theta_[None]])

    def _row(self, N: int, F: float, F_iter: float, accepted: bool, stopped: bool
             ) -> dict[str, float]:
        return {"energy": -float(F) / N, "F": float(F), "F_iter": float(F_iter),
                "accepted": float(accepted), "stopped": float(stopped)}

    # ------------------------------------------------------------------ protocol
    def fit(self, Y: Any, y: Any = None) -> LAP:
        """Invert the model on data ``Y`` of shape ``(N, n_y)``: up to ``n_iter`` iterations."""
        return super().fit(Y, y)

    def partial_fit(self, Y: Any, y: Any = None) -> LAP:
        """One more iteration on ``Y`` (the first call initialises)."""
        return super().partial_fit(Y, y)

    @property
    def x_(self) -> np.ndarray:
        return self.u_[:, : self._st_sizes()[0]]

    @property
    def v_(self) -> np.ndarray:
        nx, n, nv = self._st_sizes()
        return self.u_[:, n * nx: n * nx + nv]

    def _st_sizes(self) -> tuple[int, int, int]:
        m = _as_hdm(self.model, "LAP")
        return m.nx, m.n, m.nv

    def infer(self, Y: Any) -> np.ndarray:
        """Conditional expectations ``[x, v]`` (order 0) of the last recorded iteration,
        shape ``(N, nx + nv)``; ``Y`` must be the data the model was fitted on."""
        self._check_fitted("infer")
        self._same_data(Y)
        return np.hstack([self.x_, self.v_])

    def _same_data(self, Y: Any) -> None:
        m = _as_hdm(self.model, "LAP")
        Y = m.check_data(Y, "LAP")
        if Y.shape[0] != self.u_.shape[0]:
            raise ValidationError(
                f"LAP.Y: the model was fitted on {self.u_.shape[0]} bins, got {Y.shape[0]}; "
                "generalized filtering is online, so fit it on these data."
            )

    def energy(self, Y: Any) -> np.ndarray:
        """Per-bin Gibbs energy of the data part, :math:`\\tfrac12 z^\\top\\Pi z`, in nats."""
        self._check_fitted("energy")
        self._same_data(Y)
        ph = self._st_or_new().pi(self.h_ if self.h_.size else np.zeros(0))[0]
        return 0.5 * np.sum(self.z_**2 * np.exp(ph[: self.z_.shape[1]]), axis=1)

    def _st_or_new(self) -> _Structure:
        self._ensure_runtime()
        return self._st

    def score(self, Y: Any) -> float:
        """Free energy per bin of the last iteration (``F_ / N``; higher is better)."""
        self._check_fitted("score")
        self._same_data(Y)
        return float(self.F_) / self.u_.shape[0]

    # ------------------------------------------------------------------ persistence
    def _state(self) -> dict[str, np.ndarray]:
        sc = self._sc
        return {
            "u": self.u_, "Sx": self.Sx_, "Sv": self.Sv_, "z": self.z_, "w": self.w_,
            "theta": self.theta_, "Sigma_theta": self.Sigma_theta_, "h": self.h_,
            "Sigma_h": self.Sigma_h_, "theta_path": self.theta_path_,
            "theta_t": self.theta_t_, "h_t": self.h_t_, "F_t": self.F_t_,
            "free": self.free_.astype(float), "h_free": self.h_free_.astype(float),
            "p": sc["p"], "hq": sc["h"], "db": sc["db"], "dLdBB": sc["dLdBB"],
            "best_p": sc["best_p"], "best_h": sc["best_h"],
            "Fs": np.array(sc["F"]), "dt": np.array(sc["dt"]), "F": np.array(self.F_),
            "it": np.array(sc["it"]), "convergence": np.array(sc["convergence"]),
            "stopped": np.array(sc["stopped"]),
        }

    def _expected_shapes(self) -> dict[str, tuple[int, ...]]:
        """Arrays whose shapes the parameters fix (the others depend on the data)."""
        p = _as_hdm(self.model, "LAP").theta.size
        return {"theta": (p,), "Sigma_theta": (p, p), "F": (), "dt": (), "it": (),
                "convergence": (), "stopped": ()}

    def _set_state(self, state: dict[str, np.ndarray]) -> None:
        if self.learn_h is not None:  # .npz stores tuples as lists
            self.learn_h = tuple(tuple(b) for b in self.learn_h)
        self.u_, self.Sx_, self.Sv_ = state["u"], state["Sx"], state["Sv"]
        self.z_, self.w_ = state["z"], state["w"]
        self.theta_, self.Sigma_theta_ = state["theta"], state["Sigma_theta"]
        self.h_, self.Sigma_h_ = state["h"], state["Sigma_h"]
        self.theta_path_ = state["theta_path"]
        self.theta_t_, self.h_t_, self.F_t_ = state["theta_t"], state["h_t"], state["F_t"]
        self.free_ = state["free"].astype(int)
        self.h_free_ = state["h_free"].astype(int)
        self.F_ = float(state["F"])
        self._sc = {
            "p": state["p"], "h": state["hq"], "db": state["db"], "dLdBB": state["dLdBB"],
            "best_p": state["best_p"], "best_h": state["best_h"],
            "F": [float(f) for f in state["Fs"]], "dt": float(state["dt"]),
            "it": int(state["it"]), "convergence": int(state["convergence"]),
            "stopped": bool(state["stopped"]),
        }
        self.n_features_in_ = _as_hdm(self.model, "LAP").ny
        self.backend_ = "numpy"
