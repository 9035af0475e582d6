r"""SPM's DEM scheme (``spm_DEM``) on a one-level :class:`~predcode.models.generalized.HDM`.

Friston, Trujillo-Barreto & Daunizeau (2008), *DEM: a variational treatment of dynamic
systems*, NeuroImage 41:849-885; SPM12 ``spm_DEM``, ``spm_DEM_eval``, ``spm_DEM_R``,
``spm_dx``, ``spm_inv``, ``spm_logdet``. Facts of SPM's scheme, written for predcode:

* generalized errors ordered by derivative order, :math:`\tilde\varepsilon = [\tilde
  \varepsilon_v, \tilde\varepsilon_x]` with :math:`\varepsilon_v^{(k)} = [y^{(k)} -
  g^{(k)};\, v^{(k)} - \eta^{(k)}]` and :math:`\varepsilon_x^{(k)} = x^{(k+1)} -
  f^{(k)}`, the highest-order state error set to zero;
* precision :math:`\tilde\Pi = \Pi_0 + \sum_j e^{h_j} Q_j`: a fixed floor
  :math:`\Pi_0` (``V``, ``W`` of levels whose log-precision is not learned, the cause
  prior) plus the hyperparameterised part; :math:`h` starts at its prior mean;
* D-step: the joint flow of :math:`[\tilde u, \tilde y, \tilde\eta]` integrated by
  ``spm_dx`` over one bin, with the parameter-uncertainty terms :math:`W(\tilde u)`;
  conditional covariance ``spm_inv`` of :math:`\tilde\varepsilon_u^\top\tilde\Pi
  \tilde\varepsilon_u`, masked for errors with precision :math:`\ge e^{16}`;
* E-step: ``spm_dx`` with time constant :math:`e^{t_e}` (regularised Gauss-Newton);
  M-step: Fisher scoring with ``spm_dx`` and clipping :math:`\pm 2`;
* free energy with SPM's constant :math:`-\tfrac{n n_y N}{2}\ln 2\pi` and the mask.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from ..exceptions import ValidationError
from ._spm_linalg import spm_inv, spm_logdet
from .generalized import HDM, embed, temporal_precision

__all__ = ["SpmDem", "spm_dem", "spm_inv", "spm_logdet", "spm_dx", "spm_expm"]


def spm_expm(J: np.ndarray) -> np.ndarray:
    r"""``spm_expm``: matrix exponential by a (6, 6) Padé approximant with scaling and
    squaring, :math:`e^J = (D^{-1}E)^{2^s}` on :math:`J / 2^s`, :math:`s = \max(0, e + 1)`
    for :math:`\lVert J\rVert_\infty = f 2^e`, :math:`f \in [1/2, 1)`."""
    J = np.asarray(J, float)
    nrm = float(np.abs(J).sum(1).max()) if J.size else 0.0
    e = np.frexp(nrm)[1]
    sq = max(0, int(e) + 1)
    J = J / 2.0**sq
    I = np.eye(J.shape[0])
    X = J
    c = 0.5
    E = I + c * J
    D = I - c * J
    q, pos = 6, True
    for k in range(2, q + 1):
        c = c * (q - k + 1) / (k * (2 * q - k + 1))
        X = J @ X
        cX = c * X
        E = E + cX
        D = D + cX if pos else D - cX
        pos = not pos
    E = np.linalg.solve(D, E)
    for _ in range(sq):
        E = E @ E
    return E


def spm_dx(J: np.ndarray, f: np.ndarray, t: Any = 1.0) -> np.ndarray:
    r"""``spm_dx``: :math:`\Delta x = (e^{tJ} - I)J^{-1}f`; a list ``[t]`` means the
    time constant :math:`e^{t - \ln|J|/n}` (SPM's cell argument)."""
    n = f.size
    if isinstance(t, list):
        t = math.exp(t[0] - spm_logdet(J) / n)
    if t > math.exp(16):
        return -np.linalg.pinv(J) @ f
    A = np.zeros((n + 1, n + 1))
    A[1:, 0] = t * f
    A[1:, 1:] = t * J
    return np.real(spm_expm(A)[1:, 0])


def _block_index(r0: int, rstride: int, c0: int, cstride: int, k: int, nr: int, nc: int
                 ) -> tuple[np.ndarray, np.ndarray]:
    """Row and column indices of ``k`` blocks of ``nr x nc`` on a block diagonal: block
    ``j`` starts at row ``r0 + j rstride``, column ``c0 + j cstride``."""
    j = np.arange(k)[:, None, None]
    rows = r0 + j * rstride + np.arange(nr)[None, :, None]
    cols = c0 + j * cstride + np.arange(nc)[None, None, :]
    return rows, cols


def _embed_all(Y: np.ndarray, n: int) -> np.ndarray:
    """``embed(Y, n, t, 1, "clamp")`` for every bin ``t`` (SPM's ``spm_DEM_embed``), the
    Taylor matrix built once: the same solves, so the same numbers."""
    N = Y.shape[0]
    if N < n:
        return np.array([embed(Y, n, t, 1.0, "clamp") for t in range(N)])  # its error
    off = np.arange(n) - (n - 1) // 2
    T = np.array([[float(tk) ** j / math.factorial(j) for j in range(n)] for tk in off])
    idx = np.clip(np.arange(N)[:, None] + off[None, :], 0, N - 1)
    return np.array([np.linalg.solve(T, Y[i]).reshape(-1) for i in idx])


class SpmDem:
    r"""SPM's DEM scheme (``spm_DEM``) on one data set, one iteration at a time.

    :func:`spm_dem` runs it to the end; :class:`~predcode.DEM` (``scheme="spm"``) takes
    one :meth:`iterate` per epoch. The arguments are those of :func:`spm_dem`. All that
    depends only on the model and the data (embeddings, precision components, masks,
    the constant parts of the error Jacobians) is built once here; the state between
    iterations is the dict :meth:`initial_state` returns.
    """

    def __init__(
        self,
        model: HDM,
        Y: Any,
        U: Any = None,
        *,
        x0: Any = None,
        learn_theta: Any = None,
        theta_cov: Any = None,
        learn_h: Any = None,
        h_cov: Any = None,
        n_m: int = 8,
        te0: float | None = None,
        floor_v: Any = None,
        floor_w: Any = None,
        owner: str = "spm_dem",
    ):
        m = self.m = model
        if len(m.levels) != 1:
            raise ValidationError(
                f"{owner}.model: SPM's DEM scheme is implemented for one-level HDMs here, "
                f"got {len(m.levels)} levels; use DEM(scheme='predcode') for deeper models."
            )
        lv = m.levels[0]
        Y = m.check_data(Y, owner)
        self.N = N = Y.shape[0]
        self.ny, self.nx, self.nv = ny, nx, nv = m.ny, m.nx, m.nv
        self.nc = nc = nv
        self.n, self.d = n, d = m.n, m.d
        if n < 2:
            raise ValidationError(
                f"{owner}.model: SPM's DEM needs at least two orders of motion (n >= 2, "
                f"E.n >= 1), got n={n}; build the HDM with n >= 2."
            )
        self.ne = ne = ny + nv
        Uc = np.zeros((N, nc)) if U is None else np.asarray(U, float).reshape(N, nc)
        self.nr = nr = n * ne + n * nx
        self.nu = nu = n * nx + d * nv
        # ------------------------------------------------------------ precisions
        blocks = [] if learn_h is None else [tuple(b) for b in learn_h]
        self.learned_blocks = blocks
        for b in blocks:
            if b not in (("v", 0), ("x", 0)):
                raise ValidationError(
                    f"{owner}.learn_h: unknown block {b}; choose from [('v', 0), ('x', 0)]."
                )
        Rv = temporal_precision(n, m.s)
        Rw = Rv

        def vblock(Pv: np.ndarray, Pc: np.ndarray) -> np.ndarray:
            Z = np.zeros((ne, ne))
            Z[:ny, :ny] = Pv
            Z[ny:, ny:] = Pc
            return np.kron(Rv, Z)

        def xblock(Pw: np.ndarray) -> np.ndarray:
            return np.kron(Rw, Pw)

        def full(vb: np.ndarray | None, xb: np.ndarray | None) -> np.ndarray:
            P = np.zeros((nr, nr))
            if vb is not None:
                P[: n * ne, : n * ne] = vb
            if xb is not None:
                P[n * ne :, n * ne :] = xb
            return P

        zv, zc, zw = np.zeros((ny, ny)), np.zeros((nc, nc)), np.zeros((nx, nx))
        if ("v", 0) in blocks:
            Vfix = zv if floor_v is None else np.atleast_2d(np.asarray(floor_v, float))
        else:
            Vfix = math.exp(lv.hv) * lv.V
        if ("x", 0) in blocks:
            Wfix = zw if floor_w is None else np.atleast_2d(np.asarray(floor_w, float))
        else:
            Wfix = math.exp(lv.hw) * lv.W
        Vtop = math.exp(m.h_eta) * m.eta_precision
        self.Qp = Qp = full(vblock(Vfix, Vtop), xblock(Wfix) if nx else None)
        Q, hE = [], []
        for b in (("v", 0), ("x", 0)):  # SPM's order: all hE, then all gE
            if b in blocks:
                Q.append(full(vblock(lv.V, zc), None) if b[0] == "v" else full(None, xblock(lv.W)))
                hE.append(lv.hv if b[0] == "v" else lv.hw)
        self.Q = Q
        self.nh = nh = len(Q)
        self.hE = np.array(hE, float)
        hc = np.ones(nh) if h_cov is None else np.asarray(h_cov, float).ravel()
        if hc.size != nh:
            raise ValidationError(
                f"{owner}.h_cov: expected one prior variance per learned block ({nh}), got "
                f"{hc.size}."
            )
        self.ph_c = np.diag(hc)
        self.ph_ic = spm_inv(self.ph_c) if nh else np.zeros((0, 0))
        # ------------------------------------------------------------ parameters
        self.free = free = np.array([] if learn_theta is None else learn_theta, dtype=int).ravel()
        self.npar = npar = free.size
        if npar:
            pc = (np.linalg.inv(m.theta_precision)[np.ix_(free, free)]
                  if theta_cov is None else np.atleast_2d(np.asarray(theta_cov, float)))
        else:
            pc = np.zeros((0, 0))
        self.pp_ic = spm_inv(pc) if npar else np.zeros((0, 0))
        self.pE = m.theta.copy()
        # ------------------------------------------------------------ masks, shift
        self.je = je = np.diag(Qp) < math.exp(16)
        self.sel = np.flatnonzero(je)
        ix = np.arange(nx * n) + ny * n + nv * n
        iv = np.arange(nv * d) + ny * n
        self.ju = np.concatenate([je[ix], je[iv]]).astype(float)
        self.nq = nq = nu + n * ny + d * nc
        Dm = np.zeros((nq, nq))
        o = 0
        for k, w in ((n, nx), (d, nv), (n, ny), (d, nc)):
            Dm[o : o + k * w, o : o + k * w] = np.kron(np.eye(k, k=1), np.eye(w))
            o += k * w
        self.Dm = Dm
        self.Pu = np.eye(nu) * nu * np.finfo(float).eps
        self.n_m = int(n_m)
        self.te0 = 4.0 if te0 is None else float(te0)
        self.x_start = m.x_init() if x0 is None else np.asarray(x0, float).ravel()
        # ------------------------------------------------------------ data, once
        self.ys = _embed_all(Y, n).reshape(N, n, ny)
        self.cs = _embed_all(Uc, d).reshape(N, d, nc) if nc else np.zeros((N, d, 0))
        self.ys0 = self.ys[:, 0, :].copy()
        # ------------------------------------------------------------ error Jacobians
        # d e / d u: the model's blocks (filled per bin) on a constant template
        self.iGx = _block_index(0, ne, 0, nx, n, ny, nx)
        self.iGv = _block_index(0, ne, n * nx, nv, d, ny, nv)
        self.iFx = _block_index(n * ne, nx, 0, nx, n, nx, nx)
        self.iFv = _block_index(n * ne, nx, n * nx, nv, d, nx, nv)
        du0 = np.zeros((nr, nu))
        for k in range(d):
            du0[k * ne + ny : (k + 1) * ne, n * nx + k * nv : n * nx + (k + 1) * nv] = np.eye(nv)
        for k in range(n - 1):
            r = n * ne + k * nx
            du0[r : r + nx, (k + 1) * nx : (k + 2) * nx] = np.eye(nx)
        self.du0 = du0
        # d e / d y~ is +1 on the data rows, d e / d c~ is -1 on the cause-prior rows:
        # multiplying by them selects columns (exactly)
        self.yrows = (np.arange(n)[:, None] * ne + np.arange(ny)[None, :]).ravel()
        self.crows = (np.arange(d)[:, None] * ne + ny + np.arange(nc)[None, :]).ravel()

    # ---------------------------------------------------------------- state
    def initial_state(self) -> dict[str, Any]:
        """The scheme's state before the first iteration (SPM's initial ``qP``, ``qH``)."""
        npar, nh = self.npar, self.nh
        st: dict[str, Any] = {
            "qe": np.zeros(npar), "qp_c": np.zeros((npar, npar)), "qh": self.hE.copy(),
            "qh_c": self.ph_c.copy(), "qh_e": np.zeros(nh), "te": self.te0, "tm": 4.0,
            "Fi": -np.inf, "nM": self.n_m if nh else 1, "dp_step": np.zeros(npar),
            "it": 0, "stopped": False,
        }
        for k in ("qe", "qp_c", "qh", "qh_c", "qh_e"):
            st["B_" + k] = np.array(st[k], float).copy()
        return st

    def theta_of(self, e: np.ndarray) -> np.ndarray:
        th = self.pE.copy()
        th[self.free] += e
        return th

    def precision(self, qh: np.ndarray) -> np.ndarray:
        """``iS = Pi_0 + sum_j exp(h_j) Q_j``."""
        return self.Qp + sum((math.exp(qh[i]) * self.Q[i] for i in range(self.nh)),
                             np.zeros_like(self.Qp))

    # ---------------------------------------------------------------- errors
    def _errors(self, ev: dict[str, np.ndarray], xs: np.ndarray, Vf: np.ndarray,
                ys: np.ndarray, Cf: np.ndarray) -> np.ndarray:
        n, ne, ny, nx = self.n, self.ne, self.ny, self.nx
        E = np.empty(self.nr)
        Ev = E[: n * ne].reshape(n, ne)
        Ex = E[n * ne :].reshape(n, nx)
        Gx, Gv, Fx, Fv = ev["Gx"], ev["Gv"], ev["Fx"], ev["Fv"]
        # row by row (matrix times vector), so the sums round as SPM's order-by-order loop
        pred = np.array([Gx @ xs[k] + Gv @ Vf[k] for k in range(n)])
        pred[0] = ev["G"]
        Ev[:, :ny] = ys - pred
        Ev[:, ny:] = Vf - Cf
        Ex[0] = xs[1] - ev["F"]
        for k in range(1, n - 1):
            Ex[k] = xs[k + 1] - Fx @ xs[k] - Fv @ Vf[k]
        Ex[n - 1] = 0.0
        return E

    def _fill(self, out: np.ndarray, Gx, Gv, Fx, Fv) -> np.ndarray:
        """Put ``-Gx, -Gv, -Fx, -Fv`` on their block diagonals of ``out`` (n_e rows, n_u)."""
        out[self.iGx] = -Gx
        out[self.iGv] = -Gv
        out[self.iFx] = -Fx
        out[self.iFv] = -Fv
        return out

    def _jac_theta(self, X0, V0, th):
        """d(G, F, Gx, Gv, Fx, Fv)/dtheta_free by central differences."""
        m = self.m
        out = []
        for j in self.free:
            h = 1e-4 * max(1.0, abs(th[j]))
            tp, tn = th.copy(), th.copy()
            tp[j] += h
            tn[j] -= h
            a, b = m.evaluate(X0, V0, tp), m.evaluate(X0, V0, tn)
            out.append({k: (a[k] - b[k]) / (2 * h) for k in a})
        return out

    def _param_jac(self, xs, Vf, th):
        """``de/dtheta`` (n_e, p) and ``d2e/du dtheta`` (p, n_e, n_u)."""
        n, ne, ny, nu, npar = self.n, self.ne, self.ny, self.nu, self.npar
        dp = np.zeros((self.nr, npar))
        dup = np.zeros((npar, self.nr, nu))
        for p, J in enumerate(self._jac_theta(xs[0], Vf[0], th)):
            col = np.zeros(self.nr)
            pv = xs @ J["Gx"].T + Vf @ J["Gv"].T
            pv[0] = J["G"]
            col[: n * ne].reshape(n, ne)[:, :ny] = -pv
            px = xs @ J["Fx"].T + Vf @ J["Fv"].T
            px[0] = J["F"]
            col[n * ne :] = -px.ravel()
            dp[:, p] = col
            self._fill(dup[p], J["Gx"], J["Gv"], J["Fx"], J["Fv"])
        return dp, dup

    # ---------------------------------------------------------------- D-step
    def dstep(self, qe: np.ndarray, qh: np.ndarray, qp_c: np.ndarray,
              record: bool = True) -> dict[str, Any]:
        """One pass of the D-step through the data; also the E- and M-steps' sums."""
        m, n, d, nx, nv, ny, nc = self.m, self.n, self.d, self.nx, self.nv, self.ny, self.nc
        nu, nr, npar, N = self.nu, self.nr, self.npar, self.N
        iS = self.precision(qh)
        th = self.theta_of(qe)
        xs = np.zeros((n, nx))
        xs[0] = self.x_start
        vs = np.zeros((d, nv))
        Vf = np.zeros((n, nv))
        Cf = np.zeros((n, nc))
        Pu, ju, Dm, du0 = self.Pu, self.ju, self.Dm, self.du0
        yrows, crows = self.yrows, self.crows
        c_y, c_c = nu + n * ny, nu + n * ny + d * nc
        dFdp = np.zeros(npar)
        dFdpp = np.zeros((npar, npar))
        qp_ic = np.zeros((npar, npar))
        iquc = 0.0
        EE = np.zeros((nr, nr))
        ECE = np.zeros((nr, nr))
        X = np.empty((N, n, nx))
        Vs = np.empty((N, d, nv))
        Er = np.empty((N, nr))
        Cu = np.empty((N, nu, nu))
        ld = np.empty(N)
        for t in range(N):
            ys, cs = self.ys[t], self.cs[t]
            Vf[:d] = vs
            Cf[:d] = cs
            ev = m.evaluate(xs[0], vs[0], th)
            E = self._errors(ev, xs, Vf, ys, Cf)
            du = self._fill(du0.copy(), ev["Gx"], ev["Gv"], ev["Fx"], ev["Fv"])
            duTiS = du.T @ iS
            HH = duTiS @ du
            qu_c = ju[:, None] * spm_inv(HH + Pu) * ju[None, :]
            ld[t] = spm_logdet(qu_c)
            iquc += ld[t]
            ECEu = du @ qu_c @ du.T
            X[t], Vs[t], Er[t], Cu[t] = xs, vs, E, qu_c
            u = np.concatenate([xs.ravel(), vs.ravel(), ys.ravel(), cs.ravel()])
            dVdu = -(duTiS @ E) - Pu @ u[:nu]
            dVduu = -HH - Pu
            if not npar:
                ECE += ECEu
            else:
                dp, dup = self._param_jac(xs, Vf, th)
                ECE += ECEu + dp @ qp_c @ dp.T
                # W(u) = tr(C dpu' iS dpu) terms: sums over the free parameters
                Bq = np.tensordot(qp_c, dup, axes=(1, 0))  # (p, n_e, n_u)
                dWdu = np.zeros(nu)
                dWduu = np.zeros((nu, nu))
                for p in range(npar):
                    A = Bq[p].T @ iS  # (n_u, n_e)
                    dWdu += A @ dp[:, p]
                    dWduu += A @ dup[p]
                dVdu = -(duTiS @ E) - dWdu / 2 - Pu @ u[:nu]
                dVduu = -HH - dWduu / 2 - Pu
            f = Dm @ u
            f[:nu] += dVdu
            J = Dm.copy()
            J[:nu, :nu] += dVduu
            J[:nu, nu:c_y] -= duTiS[:, yrows]
            J[:nu, c_y:c_c] += duTiS[:, crows]
            step = spm_dx(J, f, 1.0)
            if npar:
                dWdp = np.empty(npar)
                dWdpp = np.empty((npar, npar))
                for p in range(npar):
                    CJu = qu_c @ dup[p].T @ iS  # (n_u, n_e)
                    dWdp[p] = np.sum(CJu * du.T)
                    for q in range(npar):
                        dWdpp[p, q] = np.sum(CJu * dup[q].T)
                dpTiS = dp.T @ iS
                dFdp += -dWdp / 2 - dpTiS @ E
                dpiSdp = dpTiS @ dp
                dFdpp += -dWdpp / 2 - dpiSdp
                qp_ic += dpiSdp
            EE += np.outer(E, E)
            xs = xs + step[: n * nx].reshape(n, nx)
            vs = vs + step[n * nx : nu].reshape(d, nv)
        return {"iS": iS, "EE": EE, "ECE": ECE, "iquc": iquc, "dFdp": dFdp, "dFdpp": dFdpp,
                "qp_ic": qp_ic, "X": X, "V": Vs, "E": Er, "Cu": Cu, "logdet_c": ld}

    # ---------------------------------------------------------------- one iteration
    def iterate(self, st: dict[str, Any]) -> dict[str, Any]:
        """One D/E/M iteration of ``spm_DEM`` on the state ``st`` (changed in place).

        Returns the D-step's record with ``F`` (the free energy held: SPM's ``DEM.F``),
        ``A`` (free action), ``F_iter`` (this iteration's F) and ``accepted``.
        """
        nh, npar, N, TOL = self.nh, self.npar, self.N, math.exp(-4)
        Q, ph_ic, pp_ic, hE = self.Q, self.ph_ic, self.pp_ic, self.hE
        qe, qp_c, qh = st["qe"], st["qp_c"], st["qh"]
        qh_c, qh_e = st["qh_c"], st["qh_e"]
        te, tm, Fi, nM, dp_step = st["te"], st["tm"], st["Fi"], st["nM"], st["dp_step"]
        iE = st["it"]
        rec = self.dstep(qe, qh, qp_c)
        iS, EE, ECE = rec["iS"], rec["EE"], rec["ECE"]
        # M-step
        mh = np.zeros(nh)
        for _ in range(nM):
            if not nh:
                break
            iS = self.precision(qh)
            S = spm_inv(iS)
            dS = ECE + EE - S * N
            dPdh = [math.exp(qh[i]) * Q[i] for i in range(nh)]
            dFdh = np.array([-np.sum(dPdh[i] * dS.T) / 2 for i in range(nh)])
            dFdhh = np.array([[-np.sum((dPdh[i] @ S) * (dPdh[j] @ S).T) * N / 2
                               for j in range(nh)] for i in range(nh)])
            dFdhh += np.diag(dFdh)
            qh_e = qh - hE
            dFdh = dFdh - ph_ic @ qh_e
            dFdhh = dFdhh - ph_ic
            dh = np.clip(spm_dx(dFdhh, dFdh, [tm]), -2, 2)
            qh = qh + dh
            mh = mh + dh
            qh_c = -spm_inv(dFdhh)
            if dFdh @ dh < TOL or np.abs(dh).sum() < TOL:
                break
        if npar:
            qp_c = spm_inv(rec["qp_ic"] + pp_ic)
        sel = self.sel
        iSs = iS[np.ix_(sel, sel)]
        Lu = (-np.sum(iSs * EE[np.ix_(sel, sel)]) / 2
              - self.n * self.ny * math.log(2 * math.pi) * N / 2
              + spm_logdet(iSs) * N / 2 + rec["iquc"] / 2)
        Lp = self._prior_terms(qe, qp_c, qh_c, qh_e)
        La = (-qe @ pp_ic @ qe * N / 2 - qh_e @ ph_ic @ qh_e * N / 2
              + (spm_logdet(qp_c @ pp_ic * N) if npar else 0.0) * N / 2
              + (spm_logdet(qh_c @ ph_ic * N) if nh else 0.0) * N / 2)
        Li, Ai = Lu + Lp, Lu + La
        accepted = bool(Li > Fi or iE < 1)
        if accepted:
            Fi = Li
            te = min(te + 0.5, 4.0)
            tm = min(tm + 0.5, 4.0)
            for k, v in (("qe", qe), ("qp_c", qp_c), ("qh", qh), ("qh_c", qh_c),
                         ("qh_e", qh_e)):
                st["B_" + k] = np.array(v, float).copy()
            if npar:
                dFdp = rec["dFdp"] - pp_ic @ qe
                dFdpp = rec["dFdpp"] - pp_ic
                dp_step = spm_dx(dFdpp, dFdp, [te])
                qe = qe + dp_step
        else:
            nM = 1
            qe, qp_c, qh = st["B_qe"].copy(), st["B_qp_c"].copy(), st["B_qh"].copy()
            qh_c, qh_e = st["B_qh_c"].copy(), st["B_qh_e"].copy()
            te = min(te - 2, -2.0)
            tm = min(tm - 2, -2.0)
        stopped = ((not npar and not nh)
                   or (np.abs(dp_step).sum() < TOL * np.abs(qe).sum() and np.abs(mh).sum() < TOL)
                   or te < -8)
        st.update(qe=qe, qp_c=qp_c, qh=qh, qh_c=qh_c, qh_e=qh_e, te=float(te), tm=float(tm),
                  Fi=float(Fi), nM=int(nM), dp_step=dp_step, it=iE + 1, stopped=bool(stopped))
        rec["F_bins"] = self.bin_free_energy(rec, iS)
        rec.update(F=float(Fi), A=float(Ai), F_iter=float(Li), accepted=accepted)
        return rec

    def _prior_terms(self, qe, qp_c, qh_c, qh_e) -> float:
        pp_ic, ph_ic = self.pp_ic, self.ph_ic
        return float(-qe @ pp_ic @ qe / 2 - qh_e @ ph_ic @ qh_e / 2
                     + (spm_logdet(qp_c @ pp_ic) if self.npar else 0.0) / 2
                     + (spm_logdet(qh_c @ ph_ic) if self.nh else 0.0) / 2)

    def prior_free_energy(self, st: dict[str, Any]) -> float:
        """The parameter and log-precision terms of F at the state ``st`` (SPM's ``Lp``)."""
        return self._prior_terms(st["qe"], st["qp_c"], st["qh_c"], st["qh_e"])

    def bin_free_energy(self, rec: dict[str, Any], iS: np.ndarray | None = None) -> np.ndarray:
        r"""Each bin's part of F (SPM's ``Lu``, summed over bins): :math:`-\tfrac12
        \tilde\varepsilon^\top\tilde\Pi\tilde\varepsilon + \tfrac12\ln|\tilde\Pi| -
        \tfrac{n n_y}2\ln 2\pi + \tfrac12\ln|\Sigma_u|` over the unmasked errors."""
        sel = self.sel
        iSs = (rec["iS"] if iS is None else iS)[np.ix_(sel, sel)]
        Es = rec["E"][:, sel]
        return (-np.einsum("ti,ij,tj->t", Es, iSs, Es) / 2
                - self.n * self.ny * math.log(2 * math.pi) / 2
                + spm_logdet(iSs) / 2 + rec["logdet_c"] / 2)

    def result(self, st: dict[str, Any], rec: dict[str, Any]) -> dict[str, Any]:
        """:func:`spm_dem`'s outputs from the last D-step's record and the state."""
        n, ne, ny, nx, nv = self.n, self.ne, self.ny, self.nx, self.nv
        Er, Cu = rec["E"], rec["Cu"]
        z = Er[:, :ny]
        w = Er[:, n * ne : n * ne + nx]
        Sig_th = np.zeros((self.m.theta.size, self.m.theta.size))
        if self.npar:
            Sig_th[np.ix_(self.free, self.free)] = st["qp_c"]
        return {
            "x": rec["X"][:, 0, :], "v": rec["V"][:, 0, :], "y_hat": self.ys0 - z, "z": z,
            "w": w, "S": Cu[:, :nx, :nx], "C": Cu[:, n * nx : n * nx + nv, n * nx : n * nx + nv],
            "Su": Cu, "E": Er, "theta": self.theta_of(st["qe"]), "Sigma_theta": Sig_th,
            "h": st["qh"], "Sigma_h": st["qh_c"],
        }


def spm_dem(
    model: HDM,
    Y: Any,
    U: Any = None,
    *,
    x0: Any = None,
    learn_theta: Any = None,
    theta_cov: Any = None,
    learn_h: Any = None,
    h_cov: Any = None,
    n_iter: int = 8,
    n_m: int = 8,
    te0: float | None = None,
    floor_v: Any = None,
    floor_w: Any = None,
) -> dict[str, Any]:
    r"""Invert a one-level HDM with SPM's DEM (``spm_DEM``): D, E and M steps.

    Parameters
    ----------
    model : HDM
        One level; its ``theta`` is the parameters' prior mean (SPM ``pE``), ``n`` and
        ``d`` are SPM's ``E.n + 1`` and ``E.d + 1``, ``s`` is ``E.s``.
    Y : array (N, n_y)
        Data (SPM's ``DEM.Y`` transposed).
    U : array (N, n_v), optional
        Prior expectation of the causes (SPM's ``DEM.U`` transposed; zeros).
    x0 : array (n_x,), optional
        Initial states (SPM ``M(1).x``); the model's ``x_init()`` otherwise.
    learn_theta : array of int, optional
        Free parameters (SPM: the support of ``pC``).
    theta_cov : array, optional
        Their prior covariance (SPM ``pC`` restricted to them); default the inverse of
        ``model.theta_precision`` there.
    learn_h : sequence of ("v", 0) / ("x", 0), optional
        Blocks with a log-precision (SPM ``hE``/``gE`` with ``Q``/``R`` = the level's
        ``V``/``W``); their prior mean is ``hv``/``hw``. The other blocks enter the
        fixed floor with precision ``exp(hv) V`` / ``exp(hw) W`` (SPM ``M(1).V/W``).
    h_cov : sequence of float, optional
        Prior variance of each learned log-precision (SPM ``hC``/``gC``; 1).
    n_iter, n_m : int
        SPM's ``E.nE`` (DEM iterations) and ``E.nM`` (M-step iterations).
    te0 : float, optional
        Initial E-step log time constant (SPM: 4 for ``E.linear = 1``, else 0).
    floor_v, floor_w : array, optional
        Fixed precision floor of the response / state noise (SPM ``M(1).V``/``M(1).W``)
        added to a learned block's ``e^h V``: zero by default. (SPM's own demo models
        come out of ``spm_DEM_M`` with ``V = W = I``, so a demo that sets ``hE``
        afterwards, like ``DEM_demo_DEM``, inverts with ``I + e^h I``: pass
        ``floor_v=np.eye(n_y), floor_w=np.eye(n_x)`` to match it.) Ignored for a block
        that is not learned (its precision is then ``exp(hv) V`` / ``exp(hw) W``).

    Returns
    -------
    dict
        ``x`` (N, n_x), ``v`` (N, n_v) conditional means, ``y_hat`` (N, n_y) predicted
        response, ``z`` (N, n_y) response errors, ``w`` (N, n_x) state errors, ``S``
        (N, n_x, n_x) and ``C`` (N, n_v, n_v) conditional covariances, ``Su`` (N, n_u,
        n_u) full state covariance, ``E`` (N, n_e) generalized errors, ``F`` (n_it,)
        free energy, ``A`` free action, ``theta``, ``Sigma_theta`` (p, p), ``h``,
        ``Sigma_h``, ``theta_path``, ``h_path`` per iteration.
    """
    scheme = SpmDem(model, Y, U, x0=x0, learn_theta=learn_theta, theta_cov=theta_cov,
                    learn_h=learn_h, h_cov=h_cov, n_m=n_m, te0=te0, floor_v=floor_v,
                    floor_w=floor_w)
    st = scheme.initial_state()
    F_hist, A_hist, th_path, h_path = [], [], [], []
    rec: dict[str, Any] = {}
    for _ in range(int(n_iter)):
        rec = scheme.iterate(st)
        F_hist.append(rec["F"])
        A_hist.append(rec["A"])
        th_path.append(scheme.theta_of(st["qe"]))
        h_path.append(st["qh"].copy())
        if st["stopped"]:
            break
    out = scheme.result(st, rec)
    out.update(F=np.array(F_hist), A=np.array(A_hist), theta_path=np.array(th_path),
               h_path=np.array(h_path))
    return out
