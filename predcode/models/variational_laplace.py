r"""Variational Laplace for static nonlinear models, and EM for hierarchical linear ones.

**Variational Laplace** (the scheme of SPM's ``spm_nlsi_GN``; Friston et al. 2007).
The model is

.. math::

   y = g(\theta) + \epsilon, \quad \epsilon \sim \mathcal N(0, \Pi(h)^{-1}),
   \quad \Pi(h) = \textstyle\sum_i e^{h_i} Q_i, \quad
   \theta \sim \mathcal N(\eta_\theta, C_\theta), \quad h \sim \mathcal N(\eta_h, C_h),

with Gaussian (Laplace) posteriors :math:`q(\theta) = \mathcal N(\mu_\theta, \Sigma_\theta)`
and :math:`q(h) = \mathcal N(\mu_h, \Sigma_h)`. With :math:`e = y - g(\mu_\theta)`,
:math:`J = \partial g/\partial\theta`, :math:`\delta_\theta = \mu_\theta - \eta_\theta`,
:math:`\delta_h = \mu_h - \eta_h` the free-energy bound on :math:`\ln p(y)` is

.. math::

   F = -\tfrac12 e^\top\Pi e - \tfrac12\delta_\theta^\top C_\theta^{-1}\delta_\theta
       - \tfrac12\delta_h^\top C_h^{-1}\delta_h - \tfrac n2\ln 2\pi + \tfrac12\ln|\Pi|
       + \tfrac12\ln|C_\theta^{-1}\Sigma_\theta| + \tfrac12\ln|C_h^{-1}\Sigma_h| ,

   \Sigma_\theta = (J^\top\Pi J + C_\theta^{-1})^{-1}.

Each iteration runs an M-step (up to 8 Fisher-scoring updates of :math:`h`, gradient
:math:`\partial F/\partial h_i = \tfrac12\operatorname{tr}(P_i S) - \tfrac12 e^\top P_i e
- \tfrac12\operatorname{tr}(\Sigma_\theta J^\top P_i J) - [C_h^{-1}\delta_h]_i`, expected
curvature :math:`-\tfrac12\operatorname{tr}(P_i S P_j S) - [C_h^{-1}]_{ij}`, with
:math:`P_i = e^{h_i}Q_i`, :math:`S = \Pi^{-1}`; each update clipped to ±1) and then a
Levenberg-Marquardt-regularised Gauss-Newton E-step on :math:`\theta`: the
local-linearisation update :math:`\Delta\theta = (\exp(tH) - I)H^{-1}\nabla F` with
:math:`H` the Gauss-Newton curvature and a log step size :math:`v` (:math:`t = e^{v}`
over the geometric-mean curvature) that starts at -4, grows by 1/2 (to at most 4)
after an accepted step and drops to at most -4 after a rejected one (the expansion
point is then reset). These follow SPM12's ``spm_nlsi_GN``. For a linear model with
fixed precision, F at convergence is the exact log evidence.

**Hierarchical linear models** (Friston 2005; Friston et al. 2002)

.. math::

   y = X_1\theta_1 + \epsilon_1,\quad \theta_1 = X_2\theta_2 + \epsilon_2,\;\ldots,\quad
   \theta_L \sim \mathcal N(\eta, C),\quad
   \epsilon_i \sim \mathcal N(0, e^{-\lambda_i} I),

fitted by EM: the E-step is the exact Gaussian posterior of all
:math:`\theta_i` given the log-precisions :math:`\lambda`, the M-step maximises F
over :math:`\lambda` given that posterior (closed form:
:math:`e^{\lambda_i} = p_{i-1}/\langle\|\epsilon_i\|^2\rangle`). EM converges to a
maximum of the marginal likelihood :math:`p(y\mid\lambda)`, where F equals it.

References
----------
Friston, K. (2005). A theory of cortical responses. *Phil. Trans. R. Soc. B* 360, 815-836.
Friston, K., Mattout, J., Trujillo-Barreto, N., Ashburner, J., Penny, W. (2007).
Variational free energy and the Laplace approximation. *NeuroImage* 34, 220-234.
Friston, K., Penny, W., Phillips, C., Kiebel, S., Hinton, G., Ashburner, J. (2002).
Classical and Bayesian inference in neuroimaging: theory. *NeuroImage* 16, 465-483.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..exceptions import DivergenceError, ValidationError
from ..validation import check_array, check_int, check_param
from .generalized import numerical_jacobian  # one central-difference Jacobian

__all__ = [
    "VLResult",
    "numerical_jacobian",
    "precision_gradient",
    "variational_laplace",
    "linear_gaussian_posterior",
    "hierarchical_em",
    "hierarchical_log_evidence",
]

_VL = "variational_laplace"
_HEM = "hierarchical_em"


@dataclass
class VLResult:
    """What :func:`variational_laplace` returns.

    Attributes
    ----------
    Ep, Cp : ndarray
        Posterior mean and covariance of the parameters.
    Eh, Ch : ndarray
        Posterior mean and covariance of the log-precisions.
    F : float
        Free-energy bound on the log evidence at the accepted estimates.
    F_history : list of float
        F at every accepted E-step.
    n_iter : int
        Iterations run.
    converged : bool
        Whether the predicted increase of F fell below ``tol``.
    """

    Ep: np.ndarray
    Cp: np.ndarray
    Eh: np.ndarray
    Ch: np.ndarray
    F: float
    F_history: list[float] = field(default_factory=list)
    n_iter: int = 0
    converged: bool = False


def _spd(C: Any, name: str, owner: str, n: int) -> np.ndarray:
    """A symmetric positive-definite (n, n) matrix; scalars and vectors mean diagonals."""
    C = np.asarray(C, dtype=float)
    if C.ndim == 0:
        C = np.eye(n) * float(C)
    elif C.ndim == 1:
        C = np.diag(C)
    C = check_array(C, name, owner, ndim=2, shape=(n, n))
    if not np.allclose(C, C.T, rtol=1e-10, atol=1e-12):
        raise ValidationError(f"{owner}.{name}: must be symmetric; symmetrise with (C + C.T) / 2.")
    try:
        np.linalg.cholesky(C)
    except np.linalg.LinAlgError:
        w = np.linalg.eigvalsh(C).min()
        raise ValidationError(
            f"{owner}.{name}: must be positive definite, smallest eigenvalue is {w:.3g}; "
            f"a covariance or precision needs all eigenvalues > 0."
        ) from None
    return C


def _logdet(A: np.ndarray) -> float:
    sign, val = np.linalg.slogdet(A)
    return float(val) if sign > 0 else -np.inf


def _precision(h: np.ndarray, Q: list[np.ndarray]) -> np.ndarray:
    return sum(np.exp(hi) * q for hi, q in zip(h, Q, strict=True))


def precision_gradient(h: Any, Q: Sequence[Any], J: Any, e: Any, ipC: Any
                       ) -> tuple[np.ndarray, np.ndarray]:
    r"""Gradient and expected curvature of F in the log-precisions (no hyperprior).

    .. math::

       \partial_i F = \tfrac12\operatorname{tr}(P_iS) - \tfrac12 e^\top P_i e
           - \tfrac12\operatorname{tr}(\Sigma_\theta J^\top P_i J), \qquad
       \partial_{ij} F \approx -\tfrac12\operatorname{tr}(P_iSP_jS),

    with :math:`P_i = e^{h_i}Q_i`, :math:`S = \Pi^{-1}` and
    :math:`\Sigma_\theta = (J^\top\Pi J + C_\theta^{-1})^{-1}`. For a linear model
    evaluated at the posterior mean, :math:`\partial_i F` is exactly
    :math:`\partial\ln p(y\mid h)/\partial h_i`; the curvature is its expectation
    (Fisher scoring).
    """
    h = np.asarray(h, float)
    Q = [np.asarray(q, float) for q in Q]
    J, e, ipC = np.asarray(J, float), np.asarray(e, float), np.asarray(ipC, float)
    Pi = _precision(h, Q)
    try:
        S = np.linalg.inv(Pi)
        Cp = np.linalg.inv(J.T @ Pi @ J + ipC)
    except np.linalg.LinAlgError as exc:
        raise DivergenceError(f"{_VL}: singular precision at h={h} ({exc}).") from exc
    P = [np.exp(hi) * q for hi, q in zip(h, Q, strict=True)]
    PS = [Pi_ @ S for Pi_ in P]
    nh = len(Q)
    dFdh = np.array([np.trace(PS[i]) / 2 - e @ P[i] @ e / 2
                     - np.sum(Cp * (J.T @ P[i] @ J)) / 2 for i in range(nh)])
    dFdhh = np.array([[-np.sum(PS[i] * PS[j].T) / 2 for j in range(nh)] for i in range(nh)])
    return dFdh, dFdhh


def _expm_step(H: np.ndarray, grad: np.ndarray, v: float) -> np.ndarray:
    """Local-linearisation step (exp(tH) - I) H^{-1} grad for symmetric negative-definite H."""
    lam, V = np.linalg.eigh(H)
    lam = np.minimum(lam, -1e-16)
    t = np.exp(v - np.mean(np.log(-lam)))
    scale = np.expm1(t * lam) / lam
    return V @ (scale * (V.T @ grad))


def variational_laplace(
    y: Any,
    g: Callable[[np.ndarray], Any],
    pE: Any,
    pC: Any,
    *,
    Q: Sequence[Any] | None = None,
    hE: Any = None,
    hC: Any = None,
    jacobian: Callable[[np.ndarray], Any] | None = None,
    learn_precision: bool = True,
    p0: Any = None,
    max_iter: int = 128,
    tol: float = 1e-3,
) -> VLResult:
    r"""Invert :math:`y = g(\theta) + \epsilon` by variational Laplace (spm_nlsi_GN's scheme).

    Parameters
    ----------
    y : array_like, shape (n,)
        Data.
    g : callable
        ``g(theta) -> (n,)`` predicted data.
    pE, pC : array_like
        Prior mean (p,) and covariance ((p, p), a vector of variances or a scalar).
    Q : sequence of (n, n) arrays, optional
        Precision components, :math:`\Pi = \sum_i e^{h_i} Q_i`; default one, the identity.
    hE, hC : array_like
        Prior mean and covariance of the log-precisions. Defaults are SPM12's
        ``spm_nlsi_GN`` fallbacks: :math:`\eta_h = 4 - \ln\operatorname{var}(y)` (noise
        variance about var(y)/55) and :math:`C_h = e^{-4}`.
    jacobian : callable, optional
        ``jacobian(theta) -> (n, p)``; central differences when omitted.
    learn_precision : bool
        If False, :math:`h` stays at ``hE`` and F is the Laplace log evidence given
        that precision (exact for linear models).
    p0 : array_like, optional
        Starting parameters (default ``pE``).
    max_iter : int
        E-steps at most.
    tol : float
        Convergence when the predicted increase of F, :math:`\nabla F^\top\Delta\theta`,
        has been below ``tol`` for 4 iterations in a row (SPM's rule; SPM's threshold
        is 0.1).

    Returns
    -------
    VLResult
    """
    y = check_array(y, "y", _VL, ndim=1)
    n = y.shape[0]
    pE = check_array(np.atleast_1d(np.asarray(pE, float)), "pE", _VL, ndim=1)
    n_p = pE.shape[0]
    pC = _spd(pC, "pC", _VL, n_p)
    Q = [np.eye(n)] if Q is None else list(Q)
    if not Q:
        raise ValidationError(f"{_VL}.Q: expected at least one precision component, got none.")
    Q = [_spd(q, f"Q[{i}]", _VL, n) if np.ndim(q) < 2 else
         check_array(np.asarray(q, float), f"Q[{i}]", _VL, ndim=2, shape=(n, n))
         for i, q in enumerate(Q)]
    for i, q in enumerate(Q):
        if not np.allclose(q, q.T, rtol=1e-10, atol=1e-12) or np.linalg.eigvalsh(q).min() < -1e-10:
            w = np.linalg.eigvalsh((q + q.T) / 2).min()
            raise ValidationError(
                f"{_VL}.Q[{i}]: a precision component must be symmetric positive "
                f"semi-definite (smallest eigenvalue {w:.3g})."
            )
    if np.linalg.eigvalsh(sum(Q)).min() <= 1e-12 * max(1.0, np.abs(sum(Q)).max()):
        raise ValidationError(
            f"{_VL}.Q: the components must sum to a positive-definite matrix (every data "
            f"point needs some precision); add a component covering the missing points."
        )
    nh = len(Q)
    if hE is None:
        hE = 4.0 - np.log(max(float(np.var(y)), 1e-300))
    hE = np.broadcast_to(np.asarray(hE, float), (nh,)).copy() if np.ndim(hE) == 0 else \
        check_array(np.asarray(hE, float), "hE", _VL, ndim=1, shape=(nh,))
    hC = _spd(np.exp(-4.0) if hC is None else hC, "hC", _VL, nh)
    if not isinstance(learn_precision, bool):
        raise ValidationError(f"{_VL}.learn_precision: expected a bool, got {learn_precision!r}.")
    max_iter = check_int(max_iter, "max_iter", _VL)
    tol = float(check_param(tol, "tol", _VL, low=0.0))
    if not callable(g):
        raise ValidationError(
            f"{_VL}.g: expected a callable g(theta) -> (n,), got {type(g).__name__}.")

    def predict(theta: np.ndarray) -> np.ndarray:
        f = np.asarray(g(theta), dtype=float)
        if f.shape != (n,):
            raise ValidationError(
                f"{_VL}.g: returned shape {f.shape}, expected ({n},) to match y; make g(theta) "
                f"return one prediction per data point."
            )
        if not np.all(np.isfinite(f)):
            raise DivergenceError(f"{_VL}.g: returned NaN or inf at theta={theta!r}.")
        return f

    def jac(theta: np.ndarray) -> np.ndarray:
        J = numerical_jacobian(predict, theta) if jacobian is None else \
            np.asarray(jacobian(theta), dtype=float)
        if J.shape != (n, n_p):
            raise ValidationError(
                f"{_VL}.jacobian: returned shape {J.shape}, expected ({n}, {n_p}).")
        return J

    ipC, ihC = np.linalg.inv(pC), np.linalg.inv(hC)
    theta = pE.copy() if p0 is None else check_array(
        np.atleast_1d(np.asarray(p0, float)), "p0", _VL, ndim=1, shape=(n_p,)).copy()
    h = hE.copy()
    best: dict[str, Any] = {"F": -np.inf}
    v = -4.0
    history: list[float] = []
    converged = False
    below = 0
    k = 0
    reverts = 0
    for k in range(1, max_iter + 1):  # noqa: B007 - k is reported
        try:
            f = predict(theta)
            J = jac(theta)
        except DivergenceError:
            # as in spm_nlsi_GN: return to the last accepted point with a smaller step
            reverts += 1
            if "theta" not in best or reverts > 4:
                raise
            v = min(v - 2.0, -4.0)
            theta = best["theta"] + _expm_step(best["dFdpp"], best["dFdp"], v)
            continue
        reverts = 0
        e = y - f
        Ch = hC.copy()
        for _m in range(8 if learn_precision else 0):
            dFdh, dFdhh = precision_gradient(h, Q, J, e, ipC)
            dFdh -= ihC @ (h - hE)
            dFdhh -= ihC
            Ch = np.linalg.inv(-dFdhh)
            dh = np.clip(_expm_step(dFdhh, dFdh, 4.0), -1.0, 1.0)
            h = h + dh
            if dFdh @ dh < 1e-2:
                break
        Pi = _precision(h, Q)
        try:
            Cp = np.linalg.inv(J.T @ Pi @ J + ipC)
        except np.linalg.LinAlgError as exc:
            raise DivergenceError(f"{_VL}: singular posterior precision at h={h} ({exc}).") from exc
        dp_ = theta - pE
        dh_ = h - hE
        F = (-e @ Pi @ e / 2 - dp_ @ ipC @ dp_ / 2 - n * np.log(2 * np.pi) / 2
             + _logdet(Pi) / 2 + _logdet(ipC @ Cp) / 2)
        if learn_precision:
            F += -dh_ @ ihC @ dh_ / 2 + _logdet(ihC @ Ch) / 2
        if not np.isfinite(F):
            raise DivergenceError(
                f"{_VL}: free energy is {F} at iteration {k}; check g and the priors.")
        if F > best["F"] or k < 3:
            best = {"F": float(F), "theta": theta.copy(), "h": h.copy(), "Cp": Cp, "Ch": Ch}
            best["dFdp"] = J.T @ Pi @ e - ipC @ dp_
            best["dFdpp"] = -(J.T @ Pi @ J) - ipC
            v = min(v + 0.5, 4.0)
            history.append(float(F))
        else:
            theta, h = best["theta"].copy(), best["h"].copy()
            v = min(v - 2.0, -4.0)
        dtheta = _expm_step(best["dFdpp"], best["dFdp"], v)
        theta = best["theta"] + dtheta
        pred_dF = float(best["dFdp"] @ dtheta)
        below = below + 1 if pred_dF < tol else 0
        if below >= 4:
            converged = True
            break
    return VLResult(Ep=best["theta"], Cp=best["Cp"], Eh=best["h"], Ch=best["Ch"], F=best["F"],
                    F_history=history, n_iter=k, converged=converged)


def linear_gaussian_posterior(y: Any, X: Any, pE: Any, pC: Any, Ce: Any
                              ) -> tuple[np.ndarray, np.ndarray, float]:
    r"""Closed-form posterior and log evidence of :math:`y = X\theta + \epsilon`.

    :math:`\epsilon \sim \mathcal N(0, C_e)`, :math:`\theta \sim \mathcal N(\eta, C)`:
    posterior mean :math:`\eta + CX^\top(XCX^\top + C_e)^{-1}(y - X\eta)`, covariance
    :math:`C - CX^\top(XCX^\top + C_e)^{-1}XC` (covariance form), and
    :math:`\ln p(y) = \ln\mathcal N(y; X\eta, XCX^\top + C_e)`.
    """
    y = check_array(y, "y", "linear_gaussian_posterior", ndim=1)
    X = check_array(X, "X", "linear_gaussian_posterior", ndim=2, shape=(y.shape[0], None))
    n, p = X.shape
    pE = np.atleast_1d(np.asarray(pE, float))
    pC = _spd(pC, "pC", "linear_gaussian_posterior", p)
    Ce = _spd(Ce, "Ce", "linear_gaussian_posterior", n)
    Sy = X @ pC @ X.T + Ce
    K = np.linalg.solve(Sy, X @ pC).T
    r = y - X @ pE
    mean = pE + K @ r
    cov = pC - K @ X @ pC
    logev = -0.5 * (n * np.log(2 * np.pi) + _logdet(Sy) + r @ np.linalg.solve(Sy, r))
    return mean, (cov + cov.T) / 2, float(logev)


def _hier_inputs(y, designs, eta, C):
    y = check_array(y, "y", _HEM, ndim=1)
    if isinstance(designs, np.ndarray) or not isinstance(designs, Sequence) or not designs:
        raise ValidationError(
            f"{_HEM}.designs: expected a non-empty list of design matrices [X1, X2, ...], "
            f"got {type(designs).__name__}."
        )
    Xs, rows = [], y.shape[0]
    for i, X in enumerate(designs):
        X = check_array(X, f"designs[{i}]", _HEM, ndim=2, shape=(rows, None))
        Xs.append(X)
        rows = X.shape[1]
    eta = np.zeros(rows) if eta is None else check_array(
        np.atleast_1d(np.asarray(eta, float)), "eta", _HEM, ndim=1, shape=(rows,))
    C = _spd(1.0 if C is None else C, "C", _HEM, rows)
    return y, Xs, eta, C


def hierarchical_log_evidence(y: Any, designs: Sequence[Any], lam: Any, *, eta: Any = None,
                              C: Any = None) -> float:
    r""":math:`\ln p(y\mid\lambda)` of the hierarchical linear model, from its marginal moments.

    Computed top-down, independently of the EM code (used to check it):
    :math:`\operatorname{cov}\theta_{i-1} = X_i\operatorname{cov}(\theta_i)X_i^\top +
    e^{-\lambda_i}I` from :math:`\operatorname{cov}\theta_L = C`, with :math:`\theta_0 = y`.
    """
    y, Xs, eta, C = _hier_inputs(y, designs, eta, C)
    lam = check_array(np.asarray(lam, float), "lam", _HEM, ndim=1, shape=(len(Xs),))
    mean, cov = eta, C
    for X, lam_i in zip(reversed(Xs), lam[::-1], strict=True):
        mean = X @ mean
        cov = X @ cov @ X.T + np.exp(-lam_i) * np.eye(X.shape[0])
    r = y - mean
    return float(-0.5 * (y.size * np.log(2 * np.pi) + _logdet(cov) + r @ np.linalg.solve(cov, r)))


def hierarchical_em(
    y: Any,
    designs: Sequence[Any],
    *,
    eta: Any = None,
    C: Any = None,
    lam0: Any = None,
    learn_precision: bool = True,
    max_iter: int = 2000,
    tol: float = 1e-10,
) -> dict[str, Any]:
    r"""EM for the hierarchical linear model of Friston (2005), any number of levels.

    .. math::

       y = X_1\theta_1 + \epsilon_1,\quad \theta_1 = X_2\theta_2 + \epsilon_2,\;\ldots,\;
       \theta_{L-1} = X_L\theta_L + \epsilon_L,\quad \theta_L\sim\mathcal N(\eta, C),
       \quad \epsilon_i\sim\mathcal N(0, e^{-\lambda_i}I).

    Writing each level's error as :math:`\epsilon_i = r_i + D_i\theta` (:math:`\theta`
    all levels stacked), the E-step posterior has precision
    :math:`\Lambda = \sum_i e^{\lambda_i}D_i^\top D_i + \operatorname{blkdiag}(0, \ldots, C^{-1})`;
    the M-step sets :math:`e^{\lambda_i} = p_{i-1}/\langle\|\epsilon_i\|^2\rangle`
    (:math:`p_{i-1}` the size of the level below).

    Parameters
    ----------
    y : (n,) array
    designs : list of arrays
        ``[X1, X2, ...]``: ``X1`` is (n, p1), ``X2`` is (p1, p2), and so on.
    eta, C : array_like, optional
        Prior of the top level (default zero mean, identity covariance).
    lam0 : array_like, optional
        Initial log-precisions, one per level (default zeros); kept fixed if
        ``learn_precision`` is False.
    max_iter, tol : int, float
        EM stops when F rises by less than ``tol``.

    Returns
    -------
    dict
        ``"theta"`` (list of posterior means per level), ``"cov"`` (joint posterior
        covariance of the stacked parameters), ``"lam"`` (log-precisions), ``"F"``
        (free energy, = :math:`\ln p(y\mid\lambda)` after the E-step),
        ``"F_history"``, ``"n_iter"``, ``"converged"``.
    """
    y, Xs, eta, C = _hier_inputs(y, designs, eta, C)
    L = len(Xs)
    sizes = [y.size] + [X.shape[1] for X in Xs]          # p_0 = n, p_1, ..., p_L
    offsets = np.concatenate([[0], np.cumsum(sizes[1:])])
    P = int(offsets[-1])
    lam = np.zeros(L) if lam0 is None else check_array(
        np.asarray(lam0, float), "lam0", _HEM, ndim=1, shape=(L,))
    lam = lam.copy()
    max_iter = check_int(max_iter, "max_iter", _HEM)
    tol = float(check_param(tol, "tol", _HEM, low=0.0))
    if not isinstance(learn_precision, bool):
        raise ValidationError(f"{_HEM}.learn_precision: expected a bool, got {learn_precision!r}.")
    # error maps: eps_i = r_i + D_i theta
    D, r = [], []
    for i, X in enumerate(Xs):
        Di = np.zeros((sizes[i], P))
        Di[:, offsets[i]:offsets[i + 1]] = -X
        if i > 0:
            Di[:, offsets[i - 1]:offsets[i]] = np.eye(sizes[i])
        D.append(Di)
        r.append(y if i == 0 else np.zeros(sizes[i]))
    iC = np.linalg.inv(C)
    _, ldC = np.linalg.slogdet(C)
    top = slice(int(offsets[L - 1]), P)
    history: list[float] = []
    converged = False
    it = 0
    for it in range(1, max_iter + 1):  # noqa: B007 - it is reported
        a = np.exp(lam)
        Lam = sum(ai * Di.T @ Di for ai, Di in zip(a, D, strict=True))
        Lam[top, top] += iC
        b = -sum(ai * Di.T @ ri for ai, Di, ri in zip(a, D, r, strict=True))
        b[top] += iC @ eta
        cov = np.linalg.inv(Lam)
        mu = cov @ b
        eps = [ri + Di @ mu for ri, Di in zip(r, D, strict=True)]
        d = mu[top] - eta
        F = (-0.5 * sum(ai * e @ e for ai, e in zip(a, eps, strict=True)) - 0.5 * d @ iC @ d
             + 0.5 * sum(p * li for p, li in zip(sizes[:-1], lam, strict=True)) - 0.5 * ldC
             - 0.5 * y.size * np.log(2 * np.pi) + 0.5 * _logdet(cov))
        history.append(float(F))
        if not learn_precision or (it > 1 and history[-1] - history[-2] < tol):
            converged = True
            break
        ss = np.array([e @ e + np.sum((Di @ cov) * Di) for e, Di in zip(eps, D, strict=True)])
        lam = np.log(np.asarray(sizes[:-1], float) / ss)
        if not np.all(np.isfinite(lam)):
            raise DivergenceError(f"{_HEM}: log-precisions became {lam} at iteration {it}.")
    theta = [mu[offsets[i]:offsets[i + 1]] for i in range(L)]
    return {"theta": theta, "cov": cov, "lam": lam, "F": history[-1], "F_history": history,
            "n_iter": it, "converged": converged}
