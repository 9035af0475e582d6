r"""SPM's active-inference scheme ``spm_ADEM``: a generative process and a model, one D-step.

Friston, Daunizeau & Kiebel (2009), *Reinforcement learning or active inference?*
PLoS ONE 4(7):e6421; Friston, Daunizeau, Kilner & Kiebel (2010), *Action and behavior:
a free-energy formulation*, Biol Cybern 102:227-260; SPM12 ``spm_ADEM``,
``spm_ADEM_diff``, ``spm_DEM_eval``, ``spm_DEM_embed``, ``spm_DEM_z``, ``spm_diff``.
Facts of SPM's scheme, written for predcode (one level of hidden states in the process
and in the model, the top-level causes of each as a second level):

* the **process** (SPM's ``G``) has states :math:`x_p`, exogenous causes :math:`v_p`
  (its noise :math:`z_v` plus the causes ``C``), action :math:`a`, and emits
  :math:`y = g_p(x_p, v_p, a) + z_y`, :math:`\dot x_p = f_p(x_p, v_p, a) + w`; its
  generalised motion is rebuilt in every bin from the local Jacobians (``spm_ADEM_diff``):
  :math:`y^{(i)} = g_v v^{(i)} + g_x x_p^{(i)} + g_a a^{(i)} + z^{(i)}`,
  :math:`x_p^{(i+1)} = f_v v^{(i)} + f_x x_p^{(i)} + f_a a^{(i)} + w^{(i)}`, with the
  noise's and the action's generalised coordinates taken from their time series
  (``spm_DEM_embed``);
* the **model** (SPM's ``M``) has the generalised errors of ``spm_DEM_eval``,
  :math:`\tilde\varepsilon_v^{(k)} = [y^{(k)} - g^{(k)};\, v^{(k)} - \eta^{(k)}]`,
  :math:`\tilde\varepsilon_x^{(k)} = x^{(k+1)} - f^{(k)}` (top order zero), precision
  :math:`\tilde\Pi = R(s)\otimes\mathrm{diag}(V, V_c) \oplus R(s)\otimes W`;
* the conditional means descend the free energy,
  :math:`\dot{\tilde\mu} = D\tilde\mu - \tilde\varepsilon_\mu^\top\tilde\Pi\tilde\varepsilon
  - P_u\tilde\mu` (with the prior precision :math:`P_u = R(s)\otimes(e^{-8}I + x_P)`
  on states, :math:`R(s)\otimes e^{-8}I` on causes);
* **action** descends it through the sensations it changes,
  :math:`\dot a = -\partial_a\tilde\varepsilon^\top\,\Pi_a\,\tilde\varepsilon - a_P a`, where
  :math:`\partial_a\tilde y^{(0)} = g_a` and
  :math:`\partial_a\tilde y^{(k)} = g_x f_x^{k-1} f_a` (the process's Jacobians, by
  forward differences of step :math:`e^{-8}` as SPM's ``spm_diff``), :math:`\Pi_a =
  R(s)\otimes\mathrm{diag}(U, 0)` (SPM ``G(1).U``) and :math:`a_P = e^{-2}`;
* process, noise, model and action are integrated **jointly**, one local-linearisation
  step ``spm_dx`` of the joint flow per bin (SPM's state order ``[pu.v, pu.x, pu.z,
  pu.w, qu.x, qu.v, qu.u, qu.a]``, its Jacobian with SPM's blocks);
* free energy with no parameters or hyperparameters to learn (one pass):
  :math:`F = -\tfrac12\sum_t\tilde\varepsilon_t^\top\tilde\Pi\tilde\varepsilon_t
  + \tfrac12\sum_t\ln|C_t| + \tfrac N2\ln|\tilde\Pi| - \tfrac{n n_y N}{2}\ln 2\pi`,
  :math:`C_t = (\tilde\varepsilon_u^\top\tilde\Pi\tilde\varepsilon_u + P_u)^{-1}`
  (``spm_inv``), and SPM's per-bin ``J``, which has :math:`\ln|C_t|` without the half.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np

from ..exceptions import ValidationError
from ._spm_linalg import spm_inv, spm_logdet
from .dem_spm import spm_dx
from .generalized import temporal_precision

__all__ = ["spm_adem", "spm_dem_noise"]

_FD = math.exp(-8)  # spm_diff's step
_E16, _E2, _EM2 = math.exp(16), math.exp(2), math.exp(-2)


def _fd(fun: Callable[..., Any], args: list[np.ndarray], k: int, f0: np.ndarray) -> np.ndarray:
    """Forward-difference Jacobian of ``fun(*args)`` in argument ``k`` (``spm_diff``)."""
    x = args[k]
    J = np.zeros((f0.size, x.size))
    for j in range(x.size):
        xj = x.copy()
        xj[j] += _FD
        a = list(args)
        a[k] = xj
        J[:, j] = (np.asarray(fun(*a), float).ravel() - f0) / _FD
    return J


def _embed(Y: np.ndarray, n: int, t: int) -> np.ndarray:
    """``spm_DEM_embed``: n generalised coordinates of ``Y`` (T, m) at bin ``t`` (0-based).

    The n bins centred on ``t`` (those outside the series clamped to its ends, so a
    series shorter than n works, as SPM needs for the action history) are fitted by a
    Taylor polynomial, :math:`\\tilde y = T^{+} Y_k`, :math:`T_{ij} = (i - x)^j / j!`.
    """
    T_len = Y.shape[0]
    s = t + 1
    k = np.arange(1, n + 1) + math.trunc(s - (n + 1) / 2)
    x = s - k.min() + 1
    k = np.clip(k, 1, T_len) - 1
    i = np.arange(1, n + 1)[:, None] - x
    j = np.arange(n)[None, :]
    T = i.astype(float) ** j / np.array([math.factorial(m) for m in range(n)])[None, :]
    return np.linalg.pinv(T) @ Y[k]


def _prec(P: Any, k: int, name: str) -> np.ndarray:
    """A precision given as a scalar (times I, as SPM's ``*_M_set``) or a (k, k) matrix."""
    A = np.atleast_2d(np.asarray(P, float))
    if A.size == 1:
        return np.eye(k) * float(A.ravel()[0])
    if A.shape != (k, k):
        raise ValidationError(
            f"spm_adem.{name}: expected a scalar or a ({k}, {k}) precision, got shape "
            f"{A.shape}; pass one of those."
        )
    return A


def spm_dem_noise(
    precision: Any, n_rows: int, N: int, s: float = 0.5, *, random_state: Any = None
) -> np.ndarray:
    r"""Smooth Gaussian noise as ``spm_DEM_z`` draws it, shape (N, n_rows).

    :math:`z = P^{-1/2}\,\xi\,K`, :math:`\xi` white, :math:`K` the Toeplitz Gaussian
    kernel :math:`e^{-t^2/(2 s^2)}` with rows scaled to unit norm (zero noise when
    :math:`\lVert P\rVert_1 > e^{32}`). Seeded by ``random_state``; numpy's stream is
    not Octave's, so only the statistics match SPM's.
    """
    rng = np.random.default_rng(random_state)
    P = _prec(precision, n_rows, "precision")
    if np.abs(P).sum(0).max() > math.exp(32):
        return np.zeros((N, n_rows))
    s = s + math.exp(-16)
    t = np.arange(N, dtype=float)
    K = np.exp(-((t[:, None] - t[None, :]) ** 2) / (2 * s * s))
    K = K / np.sqrt((K * K).sum(1))[None, :]
    ev, U = np.linalg.eigh(spm_inv(P))
    root = (U * np.sqrt(np.clip(ev, 0, None))) @ U.T
    return (root @ rng.standard_normal((n_rows, N)) @ K).T


def spm_adem(
    process_f: Callable[..., Any],
    process_g: Callable[..., Any],
    model_f: Callable[..., Any],
    model_g: Callable[..., Any],
    *,
    x_process: Any,
    x_model: Any,
    N: int,
    n_action: int = 1,
    n_cause_process: int = 1,
    n_cause_model: int = 1,
    z: Any = None,
    w: Any = None,
    C: Any = None,
    U: Any = None,
    V_process: Any = _E16,
    W_process: Any = _E16,
    U_action: Any = _E2,
    V_cause_process: Any = _E16,
    V_model: Any = 1.0,
    W_model: Any = 1.0,
    V_cause_model: Any = 1.0,
    x_prior: Any = 0.0,
    a_prior: float = _EM2,
    order: int = 6,
    cause_order: int = 2,
    s: float = 0.5,
    dt: float = 1.0,
    random_state: Any = None,
) -> dict[str, Any]:
    r"""Active inference with SPM's ``spm_ADEM``: act on a process while inverting a model.

    One pass (SPM's ``nE = 1``: nothing learned), one joint ``spm_dx`` step per bin of
    process, noise, beliefs and action; the equations are in the module docstring.

    Parameters
    ----------
    process_f, process_g : callable ``(x, v, a) -> array``
        Flow and output of the generative process (SPM ``G(1).f``, ``G(1).g``).
    model_f, model_g : callable ``(x, v) -> array``
        Flow and output of the agent's model (SPM ``M(1).f``, ``M(1).g``); its outputs
        must have the process's output size.
    x_process, x_model : array
        Initial states (``G(1).x``, ``M(1).x``).
    N : int
        Number of bins.
    n_action, n_cause_process, n_cause_model : int
        Sizes of ``a`` (``G(2).a``), of the process causes (``G(2).v``) and of the
        model causes (``M(2).v``).
    z : array (N, n_y + n_cause_process), optional
        Process noise on outputs and causes, SPM's ``pU.z{1}; pU.z{2}`` stacked and
        transposed; drawn by :func:`spm_dem_noise` from ``V_process`` /
        ``V_cause_process`` with ``random_state`` if omitted.
    w : array (N, n_x_process), optional
        Process state noise (``pU.w{1}``'); drawn from ``W_process`` if omitted.
    C : array (N, n_cause_process), optional
        Causes of the process, added to the cause noise (``DEM.C``'); zeros.
    U : array (N, n_cause_model), optional
        Prior expectations of the model's causes (``DEM.U``'); zeros.
    V_process, W_process, V_cause_process : float or array
        Process precisions (``G(1).V``, ``G(1).W``, ``G(2).V``), used only to draw noise.
    U_action : float or array
        Precision of the sensory errors that drive action (``G(1).U``; SPM's default
        :math:`e^2`).
    V_model, W_model, V_cause_model : float or array
        Model precisions (``M(1).V``, ``M(1).W``, ``M(2).V``).
    x_prior : float or array
        Extra prior precision on the model's states (``M(1).xP``; 0).
    a_prior : float
        Prior precision of action (``G(1).aP``; :math:`e^{-2}`).
    order, cause_order : int
        SPM's ``M(1).E.n`` and ``M(1).E.d`` (embedding orders minus one; 6 and 2).
    s : float
        Smoothness of the noise in bins (``M(1).E.s``; 1/2).
    dt : float
        Integration step (``M(1).E.dt``; 1).
    random_state : int or Generator, optional
        Seed for the noise that is drawn (only when ``z`` or ``w`` is omitted).

    Returns
    -------
    dict
        Per bin, the values at the start of the bin as SPM records them: ``x_process``
        (N, n_x_p), ``y`` (N, n_y) sensations, ``v_process`` (N, n_cause_process),
        ``x`` (N, n_x) and ``v`` (N, n_cause_model) conditional means, ``a`` (N, n_a)
        action, ``e_y`` (N, n_y) sensory prediction errors, ``S`` (N, n_x, n_x)
        conditional covariance of the states, ``J`` (N,) SPM's per-bin free energy,
        ``F`` the free energy, ``z``, ``w`` the noise used.
    """
    if N < order:
        raise ValidationError(
            f"spm_adem.N: the series must be longer than the embedding order ({order}), "
            f"got N={N}; use more bins or a smaller order."
        )
    n, d = order + 1, min(cause_order, order) + 1
    xp0 = np.asarray(x_process, float).ravel()
    xq0 = np.asarray(x_model, float).ravel()
    gx, nx, na = xp0.size, xq0.size, int(n_action)
    gv, nv = int(n_cause_process), int(n_cause_model)
    a0 = np.zeros(na)
    y0 = np.asarray(process_g(xp0, np.zeros(gv), a0), float).ravel()
    gy = ny = y0.size
    gr = gy + gv  # process "v": outputs and causes
    if np.asarray(model_g(xq0, np.zeros(nv)), float).size != ny:
        raise ValidationError(
            f"spm_adem.model_g: the model predicts "
            f"{np.asarray(model_g(xq0, np.zeros(nv))).size} outputs, the process emits "
            f"{ny}; make them the same size."
        )
    rng = np.random.default_rng(random_state)
    if z is None:
        z = np.hstack([spm_dem_noise(V_process, gy, N, s, random_state=rng),
                       spm_dem_noise(V_cause_process, gv, N, s, random_state=rng)])
    if w is None:
        w = spm_dem_noise(W_process, gx, N, s, random_state=rng) * dt
    Z = np.asarray(z, float).reshape(N, gr).copy()
    Wn = np.asarray(w, float).reshape(N, gx)
    if C is not None:
        Z[:, gy:] += np.asarray(C, float).reshape(N, gv)
    Uc = np.zeros((N, nv)) if U is None else np.asarray(U, float).reshape(N, nv)

    # ------------------------------------------------------------- precisions
    R = temporal_precision(n, s)
    ne = ny + nv
    nE = n * ne + n * nx
    Pe = np.zeros((ne, ne))
    Pe[:ny, :ny] = _prec(V_model, ny, "V_model")
    Pe[ny:, ny:] = _prec(V_cause_model, nv, "V_cause_model")
    iS = np.zeros((nE, nE))
    iS[: n * ne, : n * ne] = np.kron(R, Pe)
    iS[n * ne :, n * ne :] = np.kron(R, _prec(W_model, nx, "W_model"))
    Pa_e = np.zeros((ne, ne))
    Pa_e[:ny, :ny] = _prec(U_action, ny, "U_action")
    iG = np.zeros((nE, nE))
    iG[: n * ne, : n * ne] = np.kron(R, Pa_e)
    nu = n * nx + d * nv
    Pu = np.zeros((nu, nu))
    Pu[: n * nx, : n * nx] = np.kron(R, np.eye(nx) * math.exp(-8) + _prec(x_prior, nx, "x_prior"))
    Pu[n * nx :, n * nx :] = np.kron(R[:d, :d], np.eye(nv) * math.exp(-8))
    Pa = np.eye(na) * a_prior
    logdet_iS = spm_logdet(iS)

    # ------------------------------------------------------------- joint layout
    sizes = [("pv", n * gr), ("px", n * gx), ("pz", n * gr), ("pw", n * gx),
             ("qx", n * nx), ("qv", d * nv), ("qc", d * nv), ("qa", na)]
    sl, o = {}, 0
    for key, k in sizes:
        sl[key] = slice(o, o + k)
        o += k
    nq = o

    def shift(k: int, m: int) -> np.ndarray:
        return np.kron(np.eye(k, k=1), np.eye(m))

    D = np.zeros((nq, nq))  # the shift of every block (action has none)
    for key, k, m in (("pv", n, gr), ("px", n, gx), ("pz", n, gr), ("pw", n, gx),
                      ("qx", n, nx), ("qv", d, nv), ("qc", d, nv)):
        D[sl[key], sl[key]] = shift(k, m)
    sup = np.eye(n, k=1)
    dy_dv = np.kron(np.eye(n), np.eye(gy, gr))  # sensations inside the process "v"

    # ------------------------------------------------------------- state
    pv = np.zeros((n, gr))
    px = np.zeros((n, gx))
    px[0] = xp0
    qx = np.zeros((n, nx))
    qx[0] = xq0
    qv = np.zeros((d, nv))
    qa = a0.copy()
    A_hist = np.zeros((N, na))
    out = {k: [] for k in ("x_process", "y", "v_process", "x", "v", "a", "e_y", "S", "J")}
    EiSE = 0.0
    Hqc = 0.0
    for t in range(N):
        A_hist[t] = qa
        pz = _embed(Z, n, t)
        pw = _embed(Wn, n, t)
        pa = _embed(A_hist[: t + 1], n, t)
        qc = _embed(Uc, n, t)
        # ---- process: generalised states from local Jacobians (spm_ADEM_diff)
        xa, va, aa = px[0].copy(), pz[0, gy:].copy(), pa[0].copy()
        g0 = np.asarray(process_g(xa, va, aa), float).ravel()
        f0 = np.asarray(process_f(xa, va, aa), float).ravel()
        args = [xa, va, aa]
        Gx = np.zeros((gr, gx))
        Gv = np.zeros((gr, gr))
        Ga = np.zeros((gr, na))
        Fv = np.zeros((gx, gr))
        Gx[:gy] = _fd(process_g, args, 0, g0)
        Gv[:gy, gy:] = _fd(process_g, args, 1, g0)
        Ga[:gy] = _fd(process_g, args, 2, g0)
        Fx = _fd(process_f, args, 0, f0)
        Fv[:, gy:] = _fd(process_f, args, 1, f0)
        Fa = _fd(process_f, args, 2, f0)
        pv[0] = np.concatenate([g0 + pz[0, :gy], pz[0, gy:]])
        px[1] = f0 + pw[0]
        for i in range(1, n - 1):
            pv[i] = Gv @ pv[i] + Gx @ px[i] + Ga @ pa[i] + pz[i]
            px[i + 1] = Fv @ pv[i] + Fx @ px[i] + Fa @ pa[i] + pw[i]
        pv[n - 1] = Gv @ pv[n - 1] + Gx @ px[n - 1] + Ga @ pa[n - 1] + pz[n - 1]
        ys = pv[:, :gy]
        # ---- model: generalised errors and their Jacobians (spm_DEM_eval)
        xm, vm = qx[0].copy(), qv[0].copy()
        mf0 = np.asarray(model_f(xm, vm), float).ravel()
        mg0 = np.asarray(model_g(xm, vm), float).ravel()
        mx = _fd(model_f, [xm, vm], 0, mf0)
        mv = _fd(model_f, [xm, vm], 1, mf0)
        hx = _fd(model_g, [xm, vm], 0, mg0)
        hv = _fd(model_g, [xm, vm], 1, mg0)
        E = np.zeros(nE)
        Eu = np.zeros((nE, nu))
        Ey = np.zeros((nE, n * ny))
        Ec = np.zeros((nE, d * nv))
        for k in range(n):
            r = k * ne
            vk = qv[k] if k < d else np.zeros(nv)
            pred = mg0 if k == 0 else hx @ qx[k] + hv @ vk
            E[r : r + ny] = ys[k] - pred
            E[r + ny : r + ne] = vk - qc[k]
            Eu[r : r + ny, k * nx : (k + 1) * nx] = -hx
            Ey[r : r + ny, k * ny : (k + 1) * ny] = np.eye(ny)
            rx = n * ne + k * nx
            if k == 0:
                E[rx : rx + nx] = qx[1] - mf0
            elif k < n - 1:
                E[rx : rx + nx] = qx[k + 1] - mx @ qx[k] - mv @ vk
            Eu[rx : rx + nx, k * nx : (k + 1) * nx] = -mx
            if k < n - 1:
                Eu[rx : rx + nx, (k + 1) * nx : (k + 2) * nx] = np.eye(nx)
            if k < d:
                cv = n * nx + k * nv
                Eu[r : r + ny, cv : cv + nv] = -hv
                Eu[r + ny : r + ne, cv : cv + nv] = np.eye(nv)
                Eu[rx : rx + nx, cv : cv + nv] = -mv
                Ec[r + ny : r + ne, k * nv : (k + 1) * nv] = -np.eye(nv)
        Ev = Ey @ dy_dv
        # d(sensations)/da: g_a at order 0, g_x f_x^(k-1) f_a at order k
        dyda = np.zeros((n, gr, na))
        dyda[0] = Ga
        Fk = Fa
        for k in range(1, n):
            dyda[k] = Gx @ Fk
            Fk = Fx @ Fk
        Ea = Ev @ dyda.reshape(n * gr, na)
        # ---- record (values at the start of the bin) and free energy terms
        iSE = iS @ E
        Ceu = spm_inv(Eu.T @ iS @ Eu + Pu)
        ld = spm_logdet(Ceu)
        Hqc += ld
        EiSE += E @ iSE
        out["x_process"].append(px[0].copy())
        out["y"].append(ys[0].copy())
        out["v_process"].append(pv[0, gy:].copy())
        out["x"].append(qx[0].copy())
        out["v"].append(qv[0].copy())
        out["a"].append(qa.copy())
        out["e_y"].append(E[:ny].copy())
        out["S"].append(Ceu[:nx, :nx].copy())
        out["J"].append(-(E @ iSE) / 2 + ld + logdet_iS / 2)
        # ---- joint flow and Jacobian
        mu = np.concatenate([qx.ravel(), (qv - qc[:d]).ravel()])
        dVdu = -Eu.T @ iSE - Pu @ mu
        dVda = -Ea.T @ iG @ E - Pa @ qa
        u = np.concatenate([pv.ravel(), px.ravel(), pz.ravel(), pw.ravel(), qx.ravel(),
                            qv.ravel(), qc[:d].ravel(), qa])
        f = D @ u
        f[sl["qx"].start : sl["qv"].stop] += dVdu
        f[sl["qa"]] += dVda
        Jm = D.copy()
        # process rows (SPM's blocks)
        Jm[sl["pv"], sl["pv"]] = np.kron(sup, Gv)
        Jm[sl["pv"], sl["px"]] = np.kron(sup, Gx)
        Jm[sl["pv"], sl["pz"]] = shift(n, gr)
        Jm[sl["px"], sl["pv"]] = np.kron(np.eye(n), Fv)
        Jm[sl["px"], sl["px"]] = np.kron(np.eye(n), Fx)
        Jm[sl["px"], sl["pw"]] = np.eye(n * gx)
        Jm[sl["px"].start : sl["px"].start + gx, sl["qa"]] = Fa
        # belief rows
        qu = slice(sl["qx"].start, sl["qv"].stop)
        Jm[qu, sl["pv"]] = -Eu.T @ iS @ Ev
        Jm[qu, qu] += -Eu.T @ iS @ Eu - Pu
        Jm[qu, sl["qc"]] = -Eu.T @ iS @ Ec
        Jm[qu, sl["qa"]] = -Eu.T @ iS @ Ea
        # action row
        Jm[sl["qa"], sl["pv"]] = -Ea.T @ iG @ Ev
        Jm[sl["qa"], qu] = -Ea.T @ iG @ Eu
        Jm[sl["qa"], sl["qc"]] = -Ea.T @ iG @ Ec
        Jm[sl["qa"], sl["qa"]] = -Ea.T @ iG @ Ea - Pa
        u = u + spm_dx(Jm, f, dt)
        pv = u[sl["pv"]].reshape(n, gr)
        px = u[sl["px"]].reshape(n, gx)
        qx = u[sl["qx"]].reshape(n, nx)
        qv = u[sl["qv"]].reshape(d, nv)
        qa = u[sl["qa"]].copy()
    F = (-EiSE / 2 + Hqc / 2 + logdet_iS * N / 2 - n * ny * N * math.log(2 * math.pi) / 2)
    res = {k: np.array(v) for k, v in out.items()}
    res.update(F=float(F), z=Z, w=Wn)
    return res
