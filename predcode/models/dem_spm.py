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

__all__ = ["spm_dem", "spm_inv", "spm_logdet", "spm_dx", "spm_expm"]


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


def _kron_orders(n: int, k: int, B: np.ndarray) -> np.ndarray:
    """``kron(eye(n, k), B)``."""
    return np.kron(np.eye(n, k), B)


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
    m = model
    if len(m.levels) != 1:
        raise ValidationError(
            f"spm_dem.model: SPM's DEM scheme is implemented for one-level HDMs here, "
            f"got {len(m.levels)} levels; use DEM(spm=False) for deeper models."
        )
    lv = m.levels[0]
    Y = m.check_data(Y, "spm_dem")
    N = Y.shape[0]
    ny, nx, nv = m.ny, m.nx, m.nv
    nc = nv
    n, d = m.n, m.d
    ne = ny + nv
    Uc = np.zeros((N, nc)) if U is None else np.asarray(U, float).reshape(N, nc)
    nE_rows = n * ne + n * nx
    nu = n * nx + d * nv
    # ---------------------------------------------------------------- precisions
    blocks = [] if learn_h is None else [tuple(b) for b in learn_h]
    for b in blocks:
        if b not in (("v", 0), ("x", 0)):
            raise ValidationError(
                f"spm_dem.learn_h: unknown block {b}; choose from [('v', 0), ('x', 0)]."
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
        P = np.zeros((nE_rows, nE_rows))
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
    Qp = full(vblock(Vfix, Vtop), xblock(Wfix) if nx else None)
    Q, hE = [], []
    for b in (("v", 0), ("x", 0)):  # SPM's order: all hE, then all gE
        if b in blocks:
            Q.append(full(vblock(lv.V, zc), None) if b[0] == "v" else full(None, xblock(lv.W)))
            hE.append(lv.hv if b[0] == "v" else lv.hw)
    nh = len(Q)
    hE = np.array(hE, float)
    hc = np.ones(nh) if h_cov is None else np.asarray(h_cov, float).ravel()
    ph_c = np.diag(hc)
    ph_ic = spm_inv(ph_c) if nh else np.zeros((0, 0))
    qh = hE.copy()
    qh_c = ph_c.copy()
    qh_e = np.zeros(nh)  # SPM's qh.e: h - hE taken before the M-step's last update
    # ---------------------------------------------------------------- parameters
    free = np.array([] if learn_theta is None else learn_theta, dtype=int).ravel()
    npar = free.size
    if npar:
        pc = (np.linalg.inv(m.theta_precision)[np.ix_(free, free)]
              if theta_cov is None else np.atleast_2d(np.asarray(theta_cov, float)))
    else:
        pc = np.zeros((0, 0))
    pp_ic = spm_inv(pc) if npar else np.zeros((0, 0))
    pE = m.theta.copy()
    qe = np.zeros(npar)
    qp_c = np.zeros((npar, npar))
    # ---------------------------------------------------------------- masks, shift
    je = np.diag(Qp) < math.exp(16)
    ix = np.arange(nx * n) + ny * n + nv * n
    iv = np.arange(nv * d) + ny * n
    ju = np.concatenate([je[ix], je[iv]]).astype(float)
    nq = nu + n * ny + d * nc
    Dm = np.zeros((nq, nq))
    o = 0
    for k, w in ((n, nx), (d, nv), (n, ny), (d, nc)):
        Dm[o : o + k * w, o : o + k * w] = np.kron(np.eye(k, k=1), np.eye(w))
        o += k * w
    Pu = np.eye(nu) * nu * np.finfo(float).eps
    TOL = math.exp(-4)
    te = (4.0 if te0 is None else te0)
    tm = 4.0
    x_start = m.x_init() if x0 is None else np.asarray(x0, float).ravel()
    v_start = np.zeros(nv)

    def theta_of(e: np.ndarray) -> np.ndarray:
        th = pE.copy()
        th[free] += e
        return th

    def jac_theta(X0, V0, th):
        """d(G, F, Gx, Gv, Fx, Fv)/dtheta_free by central differences."""
        out = []
        for j in free:
            h = 1e-4 * max(1.0, abs(th[j]))
            tp, tn = th.copy(), th.copy()
            tp[j] += h
            tn[j] -= h
            a, b = m.evaluate(X0, V0, tp), m.evaluate(X0, V0, tn)
            out.append({k: (a[k] - b[k]) / (2 * h) for k in a})
        return out

    def evaluate(xs, vs, ys, cs, th):
        ev = m.evaluate(xs[0], vs[0], th)
        Gx, Gv, Fx, Fv = ev["Gx"], ev["Gv"], ev["Fx"], ev["Fv"]
        E = np.zeros(nE_rows)
        du = np.zeros((nE_rows, nu))
        dy = np.zeros((nE_rows, n * ny))
        dc = np.zeros((nE_rows, d * nc))
        for k in range(n):
            r = k * ne
            vk = vs[k] if k < d else np.zeros(nv)
            ck = cs[k] if k < d else np.zeros(nc)
            pred = ev["G"] if k == 0 else Gx @ xs[k] + Gv @ vk
            E[r : r + ny] = ys[k] - pred
            E[r + ny : r + ne] = vk - ck
            du[r : r + ny, k * nx : (k + 1) * nx] = -Gx
            dy[r : r + ny, k * ny : (k + 1) * ny] = np.eye(ny)
            if k < d:
                cv = n * nx + k * nv
                du[r : r + ny, cv : cv + nv] = -Gv
                du[r + ny : r + ne, cv : cv + nv] = np.eye(nv)
                dc[r + ny : r + ne, k * nc : (k + 1) * nc] = -np.eye(nc)
        for k in range(n):
            r = n * ne + k * nx
            vk = vs[k] if k < d else np.zeros(nv)
            if k == 0:
                E[r : r + nx] = xs[1] - ev["F"]
            elif k < n - 1:
                E[r : r + nx] = xs[k + 1] - Fx @ xs[k] - Fv @ vk
            du[r : r + nx, k * nx : (k + 1) * nx] = -Fx
            if k < n - 1:
                du[r : r + nx, (k + 1) * nx : (k + 2) * nx] = np.eye(nx)
            if k < d:
                cv = n * nx + k * nv
                du[r : r + nx, cv : cv + nv] = -Fv
        dp = np.zeros((nE_rows, npar))
        dup = np.zeros((npar, nE_rows, nu))
        if npar:
            for p, J in enumerate(jac_theta(xs[0], vs[0], th)):
                for k in range(n):
                    r = k * ne
                    vk = vs[k] if k < d else np.zeros(nv)
                    dp[r : r + ny, p] = -(J["G"] if k == 0 else J["Gx"] @ xs[k] + J["Gv"] @ vk)
                    dup[p, r : r + ny, k * nx : (k + 1) * nx] = -J["Gx"]
                    rx = n * ne + k * nx
                    dp[rx : rx + nx, p] = -(J["F"] if k == 0 else J["Fx"] @ xs[k] + J["Fv"] @ vk)
                    dup[p, rx : rx + nx, k * nx : (k + 1) * nx] = -J["Fx"]
                    if k < d:
                        cv = n * nx + k * nv
                        dup[p, r : r + ny, cv : cv + nv] = -J["Gv"]
                        dup[p, rx : rx + nx, cv : cv + nv] = -J["Fv"]
        return E, du, dy, dc, dp, dup

    Fi = -np.inf
    F_hist, A_hist, th_path, h_path = [], [], [], []
    dp_step = np.zeros(npar)
    nM = n_m if nh else 1
    nE = n_iter if (npar or nh) else 1
    B: dict[str, Any] = {}
    for iE in range(nE):
        dFdp = np.zeros(npar)
        dFdpp = np.zeros((npar, npar))
        qp_ic = np.zeros((npar, npar))
        iquc = 0.0
        EE = np.zeros((nE_rows, nE_rows))
        ECE = np.zeros((nE_rows, nE_rows))
        iS = Qp + sum((math.exp(qh[i]) * Q[i] for i in range(nh)), np.zeros_like(Qp))
        th = theta_of(qe)
        xs = np.zeros((n, nx))
        xs[0] = x_start
        vs = np.zeros((d, nv))
        vs[0] = v_start
        rec = {k: [] for k in ("x", "v", "E", "c")}
        for t in range(N):
            ys = embed(Y, n, t, 1.0, "clamp").reshape(n, ny)
            cs = embed(Uc, d, t, 1.0, "clamp").reshape(d, nc) if nc else np.zeros((d, 0))
            E, du, dy, dc, dp, dup = evaluate(xs, vs, ys, cs, th)
            qu_p = du.T @ iS @ du + Pu
            qu_c = ju[:, None] * spm_inv(qu_p) * ju[None, :]
            iquc += spm_logdet(qu_c)
            ECEu = du @ qu_c @ du.T
            ECEp = dp @ qp_c @ dp.T
            rec["x"].append(xs.copy())
            rec["v"].append(vs.copy())
            rec["E"].append(E.copy())
            rec["c"].append(qu_c)
            dWdu = np.zeros(nu)
            dWduu = np.zeros((nu, nu))
            if npar:
                Aup = np.einsum("pq,qkj,kl->jpl", qp_c, dup, iS, optimize=True)  # C dpu_j' iS
                dWdu = np.einsum("jpl,lp->j", Aup, dp)
                dWduu = np.einsum("jpl,plk->jk", Aup, dup)
            u = np.concatenate([xs.ravel(), vs.ravel(), ys.ravel(), cs.ravel()])
            dVdu = -du.T @ iS @ E - dWdu / 2 - Pu @ u[:nu]
            dVduu = -du.T @ iS @ du - dWduu / 2 - Pu
            f = Dm @ u
            f[:nu] += dVdu
            J = Dm.copy()
            J[:nu, :nu] += dVduu
            J[:nu, nu : nu + n * ny] += -du.T @ iS @ dy
            J[:nu, nu + n * ny :] += -du.T @ iS @ dc
            step = spm_dx(J, f, 1.0)
            xs = xs + step[: n * nx].reshape(n, nx)
            vs = vs + step[n * nx : nu].reshape(d, nv)
            if npar:
                CJu = np.einsum("ij,pkj,kl->pil", qu_c, dup, iS, optimize=True)  # qu.c dup_p' iS
                dWdp = np.einsum("pil,li->p", CJu, du)
                dWdpp = np.einsum("pil,qli->pq", CJu, dup)
                dFdp += -dWdp / 2 - dp.T @ iS @ E
                dFdpp += -dWdpp / 2 - dp.T @ iS @ dp
                qp_ic += dp.T @ iS @ dp
            EE += np.outer(E, E)
            ECE += ECEu + ECEp
        # M-step
        mh = np.zeros(nh)
        for _ in range(nM):
            if not nh:
                break
            iS = Qp + sum(math.exp(qh[i]) * Q[i] for i in range(nh))
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
            qp_ic = qp_ic + pp_ic
            qp_c = spm_inv(qp_ic)
        sel = np.flatnonzero(je)
        Lu = (-np.sum(iS[np.ix_(sel, sel)] * EE[np.ix_(sel, sel)]) / 2
              - n * ny * math.log(2 * math.pi) * N / 2
              + spm_logdet(iS[np.ix_(sel, sel)]) * N / 2 + iquc / 2)
        Lp = (-qe @ pp_ic @ qe / 2 - qh_e @ ph_ic @ qh_e / 2
              + (spm_logdet(qp_c @ pp_ic) if npar else 0.0) / 2
              + (spm_logdet(qh_c @ ph_ic) if nh else 0.0) / 2)
        La = (-qe @ pp_ic @ qe * N / 2 - qh_e @ ph_ic @ qh_e * N / 2
              + (spm_logdet(qp_c @ pp_ic * N) if npar else 0.0) * N / 2
              + (spm_logdet(qh_c @ ph_ic * N) if nh else 0.0) * N / 2)
        Li, Ai = Lu + Lp, Lu + La
        if Li > Fi or iE < 1:
            Fi = Li
            te = min(te + 0.5, 4.0)
            tm = min(tm + 0.5, 4.0)
            B = {"qe": qe.copy(), "qp_c": qp_c.copy(), "qh": qh.copy(), "qh_c": qh_c.copy(),
                 "qh_e": qh_e.copy()}
            if npar:
                dFdp = dFdp - pp_ic @ qe
                dFdpp = dFdpp - pp_ic
                dp_step = spm_dx(dFdpp, dFdp, [te])
                qe = qe + dp_step
        else:
            nM = 1
            qe, qp_c, qh, qh_c, qh_e = B["qe"], B["qp_c"], B["qh"], B["qh_c"], B["qh_e"]
            te = min(te - 2, -2.0)
            tm = min(tm - 2, -2.0)
        F_hist.append(Fi)
        A_hist.append(Ai)
        th_path.append(theta_of(qe))
        h_path.append(qh.copy())
        if np.abs(dp_step).sum() < TOL * np.abs(qe).sum() and np.abs(mh).sum() < TOL:
            break
        if te < -8:
            break
    X = np.array([r[0] for r in rec["x"]])
    Vv = np.array([r[0] for r in rec["v"]])
    Er = np.array(rec["E"])
    Cu = np.array(rec["c"])
    z = Er[:, :ny]
    w = Er[:, n * ne : n * ne + nx]
    ys0 = np.array([embed(Y, n, t, 1.0, "clamp")[:ny] for t in range(N)])
    Sig_th = np.zeros((m.theta.size, m.theta.size))
    if npar:
        Sig_th[np.ix_(free, free)] = qp_c
    return {
        "x": X, "v": Vv, "y_hat": ys0 - z, "z": z, "w": w,
        "S": Cu[:, :nx, :nx], "C": Cu[:, n * nx : n * nx + nv, n * nx : n * nx + nv],
        "Su": Cu, "E": Er, "F": np.array(F_hist), "A": np.array(A_hist),
        "theta": theta_of(qe), "Sigma_theta": Sig_th, "h": qh, "Sigma_h": qh_c,
        "theta_path": np.array(th_path), "h_path": np.array(h_path),
    }
