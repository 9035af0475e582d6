r"""The HDM model zoo: SPM's DEM demo models, built by name.

Set-ups follow SPM's demo models (``spm_DEM_M``; facts only):

* **convolution** (``DEM_demo_convolution``): 1 cause, 2 hidden states, 4 outputs,
  :math:`f = Ax + Bv` with :math:`A = [[-1, 4], [-2, -1]]/4`, :math:`B = [1, 0]^\top`,
  :math:`g = Cx` with :math:`C` the first two columns of the 4-point DCT matrix / 4,
  noise precisions :math:`e^8`, cause prior precision 1, :math:`s = 1/2`, embedding
  :math:`n = 6`; :func:`conv_cause` is the Gaussian-bump cause (centre bin 12, width 2:
  our choice where SPM's script was not checked);
* **lorenz**: :math:`\theta = (18, -4, 46.92)`, flow
  :math:`[[-\theta_1, \theta_1, 0], [\theta_3 - x_3, -1, -x_1], [x_2, x_1, \theta_2]]x/32`,
  :math:`g = \sum x`, :math:`x_0 = (0.9, 0.8, 30)`, observation precision 1,
  state precision :math:`e^{16}`, :math:`s = 1/8`;
* **double_well**: :math:`f = (16x/(1+x^2) - x/2 + 2v)/8`, :math:`g = x^2/16`,
  precisions :math:`e^2` (observation) and :math:`e^{16}` (state), cause prior
  precision 1/8, :math:`s = 1/2`.

Every model built here remembers its name and arguments (:meth:`HDM.zoo_spec`), so a
:class:`~predcode.models.dem.DEM` inverting it can be saved to ``.npz`` and loaded
back by name, and pickled, although its ``f`` and ``g`` are Python callables. Change
such a model after building it and it no longer counts as the zoo model (its
``zoo_spec()`` is ``None``): pass it to ``DEM.load(path, model=...)`` then.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from ..exceptions import ValidationError
from .generalized import HDM, Level

__all__ = [
    "lorenz_lap_model",
    "convolution_lap_model",
    "CONV_LAP_FREE",
    "BinSeries",
    "ZOO",
    "zoo_model",
    "convolution_model",
    "conv_cause",
    "lorenz_model",
    "double_well_model",
    "spm_convolution_model",
    "dem_demo_model",
    "dem_demo_params",
    "DEM_DEMO_FREE",
    "dct_matrix",
    "CONV_A",
    "CONV_B",
    "CONV_C",
]


def dct_matrix(N: int, K: int) -> np.ndarray:
    """First ``K`` columns of the orthonormal ``N``-point DCT-II matrix (SPM ``spm_dctmtx``)."""
    n = np.arange(N)
    C = np.empty((N, K))
    C[:, 0] = 1 / np.sqrt(N)
    for k in range(1, K):
        C[:, k] = np.sqrt(2 / N) * np.cos(np.pi * (2 * n + 1) * k / (2 * N))
    return C


CONV_A = np.array([[-1.0, 4.0], [-2.0, -1.0]]) / 4
CONV_B = np.array([1.0, 0.0])
CONV_C = dct_matrix(4, 2) / 4


def _plain(value: Any) -> Any:
    """JSON form of a builder argument (arrays and tuples become lists)."""
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


def _tagged(hdm: HDM, name: str, params: dict[str, Any]) -> HDM:
    hdm._tag_zoo(name, {k: _plain(v) for k, v in params.items()}, _rebuild)
    return hdm


def _conv_f(x, v, th):
    return th[:4].reshape(2, 2) @ x + th[4:6] * v[0]


def _conv_g(x, v, th):
    return th[6:14].reshape(4, 2) @ x


def convolution_model(
    n: int = 6,
    s: float = 0.5,
    hv: float = 8.0,
    hw: float = 8.0,
    theta: Any = None,
    theta_precision: Any = 1e8,
    analytic: bool = True,
    d: int | None = None,
) -> HDM:
    """The linear convolution model of ``DEM_demo_convolution``.

    Parameters
    ----------
    n : int
        Embedding order of states and data.
    s : float
        Smoothness of the noise (time bins).
    hv, hw : float
        Log-precisions of observation and state noise.
    theta : array (14,), optional
        Parameters ``[A (2x2), B (2,), C (4x2)]`` raveled (SPM's values by default).
    theta_precision : float or array (14, 14)
        Prior precision of the parameters.
    analytic : bool
        Analytic Jacobians (``False``: central differences).
    d : int, optional
        Embedding order of the cause (``n`` by default).
    """
    params = dict(n=n, s=s, hv=hv, hw=hw, theta=theta, theta_precision=theta_precision,
                  analytic=analytic, d=d)
    th = np.concatenate([CONV_A.ravel(), CONV_B, CONV_C.ravel()]) if theta is None else theta
    jac = {}
    if analytic:
        jac = {
            "fx": lambda x, v, t: t[:4].reshape(2, 2),
            "fv": lambda x, v, t: t[4:6][:, None],
            "gx": lambda x, v, t: t[6:14].reshape(4, 2),
            "gv": lambda x, v, t: np.zeros((4, 1)),
        }
    lv = Level(g=_conv_g, f=_conv_f, n_out=4, n_x=2, n_v=1, hv=hv, hw=hw, **jac)
    hdm = HDM([lv], theta=th, theta_precision=theta_precision, n=n, d=d, s=s)
    return _tagged(hdm, "convolution", params)


def conv_cause(N: int = 32) -> np.ndarray:
    """Gaussian-bump cause (centre bin 12, width 2 bins), shape (N, 1)."""
    t = np.arange(N)
    return np.exp(-((t - 12.0) ** 2) / (2 * 2.0**2))[:, None]


def _lorenz_f(x, v, th):
    M = np.array([[-th[0], th[0], 0.0], [th[2] - x[2], -1.0, -x[0]], [x[1], x[0], th[1]]])
    return M @ x / 32


def lorenz_model(x0: Any = (0.9, 0.8, 30.0), n: int = 6, d: int | None = None) -> HDM:
    """The Lorenz attractor of ``spm_DEM_M('lorenz')`` observed through ``sum(x)``.

    ``n``, ``d``: embedding orders of states and causes (SPM's defaults ``E.n + 1 = 7``,
    ``E.d + 1 = 3`` reproduce ``DEM_demo_Lorenz``; ``d = n`` when ``None``).
    """
    lv = Level(
        g=lambda x, v, th: np.array([x.sum()]),
        f=_lorenz_f,
        n_out=1,
        n_x=3,
        n_v=1,
        hv=0.0,
        hw=16.0,
        x0=np.array(x0, float),
        gx=lambda x, v, th: np.ones((1, 3)),
        gv=lambda x, v, th: np.zeros((1, 1)),
    )
    hdm = HDM([lv], theta=np.array([18.0, -4.0, 46.92]), h_eta=16.0, n=n, d=d, s=1 / 8)
    params = dict(x0=x0, n=n) if d is None else dict(x0=x0, n=n, d=d)
    return _tagged(hdm, "lorenz", params)


def double_well_model(x0: float = 0.0, n: int = 6) -> HDM:
    """The double-well system of ``spm_DEM_M('double well')``."""
    lv = Level(
        g=lambda x, v, th: x**2 / 16,
        n_out=1,
        n_x=1,
        n_v=1,
        hv=2.0,
        hw=16.0,
        f=lambda x, v, th: (16 * x / (1 + x**2) - x / 2 + 2 * v) / 8,
        x0=np.array([x0]),
    )
    hdm = HDM([lv], h_eta=float(np.log(1 / 8)), n=n, s=0.5)
    return _tagged(hdm, "double_well", dict(x0=x0, n=n))


def spm_convolution_model() -> HDM:
    """``DEM_demo_convolution`` as SPM runs it: SPM's default embedding (``E.n = 6``,
    ``E.d = 2``, so ``n = 7``, ``d = 3``) and precisions ``exp(8)``."""
    return convolution_model(n=7, d=3, hv=8.0, hw=8.0)


#: Free parameters of ``DEM_demo_DEM`` in this zoo's order: ``A[1, 0]`` and ``C[0, 0]``
#: (SPM's ``ip = [2, 5]`` in ``spm_vec(pE)``, which is column-major ``[f, g, h]``).
DEM_DEMO_FREE = (2, 6)


def dem_demo_model() -> tuple[HDM, dict[str, Any]]:
    """``DEM_demo_DEM``: the convolution model with two parameters unknown (prior mean
    0, variance ``exp(8)``), a log-precision of the response noise fixed at 8 (prior
    variance 0) and one of the state noise learned (prior mean 0, variance 1).

    Returns the HDM and the keyword arguments of
    :func:`predcode.models.dem_spm.spm_dem` that complete SPM's set-up, including the
    fixed precision floors ``V = W = I`` that ``spm_DEM_M`` leaves on the model before
    the demo sets ``hE`` (so SPM's precisions are ``I + e^h I``).
    """
    th = np.concatenate([CONV_A.ravel(), CONV_B, CONV_C.ravel()])
    th[list(DEM_DEMO_FREE)] = 0.0
    tp = np.full(th.size, 1e8)
    tp[list(DEM_DEMO_FREE)] = np.exp(-8.0)  # so DEM reads SPM's pC from the HDM
    hdm = convolution_model(n=7, d=3, hv=8.0, hw=0.0, theta=th, theta_precision=np.diag(tp))
    kw = dict(learn_theta=list(DEM_DEMO_FREE), theta_cov=np.eye(2) * np.exp(8.0),
              learn_h=[("v", 0), ("x", 0)], h_cov=[0.0, 1.0], n_iter=32,
              floor_v=np.eye(4), floor_w=np.eye(2))
    return hdm, kw


def dem_demo_params() -> dict[str, Any]:
    """Keyword arguments of :class:`~predcode.DEM` that, with the HDM of
    :func:`dem_demo_model`, make SPM's ``DEM_demo_DEM``: the same free parameters and
    blocks, the response noise's log-precision fixed at its prior mean (SPM's ``hC =
    0``: ``h_precision`` inf), SPM's 32 iterations and floors ``V = W = I``.

    ``DEM(dem_demo_model()[0], **dem_demo_params()).fit(Y)`` gives ``spm_DEM``'s numbers.
    """
    return dict(learn_theta=list(DEM_DEMO_FREE), learn_h=[("v", 0), ("x", 0)],
                h_precision=[np.inf, 1.0], n_iter=32, floor_v=np.eye(4), floor_w=np.eye(2))


#: name -> builder of the zoo's models.
ZOO: dict[str, Callable[..., HDM]] = {
    "convolution": convolution_model,
    "lorenz": lorenz_model,
    "double_well": double_well_model,
}


def zoo_model(name: str, **params: Any) -> HDM:
    """Build the zoo model ``name`` (a key of :data:`ZOO`) with the builder's arguments.

    Raises
    ------
    ValidationError
        Unknown name or argument.
    """
    if name not in ZOO:
        raise ValidationError(f"zoo_model.name: unknown model {name!r}; choose from {sorted(ZOO)}.")
    try:
        return ZOO[name](**params)
    except TypeError as exc:
        raise ValidationError(f"zoo_model: bad arguments for {name!r} ({exc}).") from exc


def _rebuild(name: str, params: dict[str, Any]) -> HDM:
    """Rebuild a zoo model from its spec (pickle and ``DEM.load`` use it)."""
    return zoo_model(name, **params)


def _lorenz_fx(x, v, th):
    return np.array([[-th[0], th[0], 0.0], [th[2] - 2 * x[2], -1.0, -2 * x[0]],
                     [2 * x[1], 2 * x[0], th[1]]]) / 32


def lorenz_lap_model(pE: Any) -> HDM:
    """The set-up of SPM12's ``DEM_demo_lorenz_LAP``: ``spm_DEM_M('Lorenz')`` with
    V = e^1, W = e^16, cause precision e^16, E.n = 4 (n=5), E.d = 2 (d=3), E.s = 1/16,
    parameter prior mean ``pE`` (3 values) and pC = diag(exp(-[32 2 2])).

    Observation y = x1 + x2 + x3; flow f is the scaled Lorenz system (``_lorenz_f``).
    """
    lv = Level(g=lambda x, v, th: np.array([x.sum()]), f=_lorenz_f, n_out=1, n_x=3, n_v=1,
               hv=1.0, hw=16.0, x0=np.array([0.9, 0.8, 30.0]),
               gx=lambda x, v, th: np.ones((1, 3)), gv=lambda x, v, th: np.zeros((1, 1)),
               fx=_lorenz_fx, fv=lambda x, v, th: np.zeros((3, 1)))
    return HDM([lv], theta=np.asarray(pE, float),
               theta_precision=np.diag(np.exp([32.0, 2.0, 2.0])),
               h_eta=16.0, n=5, d=3, s=1 / 16)


class BinSeries:
    """A time series read by bin (``series(t)`` is row ``t``, clamped to the last row):
    a picklable prior expectation ``eta(t)`` of the top-level causes."""

    def __init__(self, values: Any):
        self.values = np.atleast_2d(np.asarray(values, float))

    def __call__(self, t: int) -> np.ndarray:
        return self.values[min(int(t), self.values.shape[0] - 1)]


def _conv_lap_f(x, v, th):
    return th[:4].reshape(2, 2, order="F") @ x + th[12:14] * v[0]


def _conv_lap_g(x, v, th):
    return th[4:12].reshape(4, 2, order="F") @ x


#: Free parameters of ``DEM_demo_convolution_LAP`` (SPM's ``ip = [2 4 5 9]``, 0-based,
#: in SPM's ``spm_vec`` order of :func:`convolution_lap_model`).
CONV_LAP_FREE = (1, 3, 4, 8)


def convolution_lap_model(pE: Any, U: Any, hv: float = 8.0, hw: float = 6.0,
                          h_eta: float = 0.0) -> HDM:
    """The set-up of SPM12's ``DEM_demo_convolution_LAP``: ``spm_DEM_M('convolution
    model')`` (E.n = 6, E.d = 2, so n = 7, d = 3; E.s = 1/2) with its parameters in SPM's
    ``spm_vec`` order ``[f (2x2), g (4x2), h (2)]`` (column-major), precisions
    ``V = exp(hv)``, ``W = exp(hw)``, cause precision ``exp(h_eta)`` about the prior
    expectation ``U`` (shape ``(N,)`` or ``(N, 1)``: the Gaussian bump), prior mean
    ``pE`` (14 values) and prior variance 32 on :data:`CONV_LAP_FREE` (the others fixed).
    """
    pE = np.asarray(pE, float).ravel()
    if pE.size != 14:
        raise ValidationError(
            f"convolution_lap_model.pE: expected 14 parameters (SPM's spm_vec order), got "
            f"{pE.size}; pass spm_vec(M(1).pE).")
    prec = np.full(14, 1e8)
    prec[list(CONV_LAP_FREE)] = 1 / 32
    lv = Level(g=_conv_lap_g, f=_conv_lap_f, n_out=4, n_x=2, n_v=1, hv=hv, hw=hw,
               fx=lambda x, v, t: t[:4].reshape(2, 2, order="F"),
               fv=lambda x, v, t: t[12:14][:, None],
               gx=lambda x, v, t: t[4:12].reshape(4, 2, order="F"),
               gv=lambda x, v, t: np.zeros((4, 1)))
    U = np.asarray(U, float).reshape(-1, 1)
    return HDM([lv], eta=BinSeries(U), h_eta=h_eta, theta=pE,
               theta_precision=np.diag(prec), n=7, d=3, s=0.5)
