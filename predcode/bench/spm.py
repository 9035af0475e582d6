r"""Speed beside SPM: predcode and SPM12 (under GNU Octave) on the same models and data.

Each case is one of the SPM parity fixtures in ``tests/fixtures/spm/<case>/``: the
fixture holds SPM's inputs (simulated data, priors, options), SPM's outputs and, in
``meta.json``, the wall time of the SPM call itself (``octave_wall_s``: ``spm_DEM``,
``spm_LAP``, ``spm_ADEM`` or ``spm_MDP_VB_X``, timed with ``tic``/``toc``, the minimum of
three runs) on the machine that made the fixture. predcode runs the same scheme on the
same inputs here, timed the same way (the minimum over ``repeats`` runs after one
warm-up run); the parity tests check that the numbers
agree, this only times them.

The Octave time is read from the fixture, not measured here, so the ratio is only as fair
as the two machines are alike: ``meta.json`` names the machine and its load, and the
report prints both times. The DEM and generalized-filtering cases carry the target of
issue 14, predcode :math:`\ge 20\times` faster than SPM; a case under it is a row marked
``NO``, not left out.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..exceptions import ValidationError
from ..machine import machine_info
from ..validation import check_int

__all__ = ["SPM_CASES", "SpmCase", "bench_spm", "default_fixture_dir"]


@dataclass(frozen=True)
class SpmCase:
    """One timed case: its fixture folder, the SPM routine, and how predcode runs it.

    ``prepare(folder, backend)`` loads the fixture's inputs and returns a callable with no
    arguments that runs predcode's scheme once; only that call is timed.
    """

    name: str
    spm_call: str
    predcode_call: str
    target_speedup: float | None
    prepare: Callable[[Path, str], Callable[[], Any]]


def _npz(folder: Path, name: str) -> dict[str, np.ndarray]:
    with np.load(folder / name, allow_pickle=False) as z:
        return {k: z[k] for k in z.files}


def _dem_convolution(folder: Path, backend: str) -> Callable[[], Any]:
    from ..models.dem_spm import spm_dem
    from ..models.hdm_zoo import spm_convolution_model

    z = _npz(folder, "dem_convolution.npz")
    hdm, Y, U = spm_convolution_model(), z["inputs__Y"].T, z["inputs__U"].T
    return lambda: spm_dem(hdm, Y, U)


def _dem_DEM(folder: Path, backend: str) -> Callable[[], Any]:
    from ..models.dem_spm import spm_dem
    from ..models.hdm_zoo import dem_demo_model

    z = _npz(folder, "dem_DEM.npz")
    hdm, kw = dem_demo_model()
    Y, U = z["inputs__Y"].T, z["inputs__U"].T
    return lambda: spm_dem(hdm, Y, U, **kw)


def _dem_lorenz(folder: Path, backend: str) -> Callable[[], Any]:
    from ..models.dem_spm import spm_dem
    from ..models.hdm_zoo import lorenz_model

    z = _npz(folder, "dem_lorenz.npz")
    hdm, Y, U = lorenz_model(n=7, d=3), z["inputs__Y"].T, z["inputs__U"].T
    x0 = z["inputs__x0"].ravel()
    return lambda: spm_dem(hdm, Y, U, x0=x0)


def _lap_lorenz(folder: Path, backend: str) -> Callable[[], Any]:
    from ..models.hdm_zoo import lorenz_lap_model
    from ..models.lap import LAP

    z = _npz(folder, "lap_lorenz.npz")
    hdm, Y = lorenz_lap_model(z["pE"].ravel()), z["Y"].T
    return lambda: LAP(hdm, n_iter=32, n_d=2, learn_theta=[0, 1, 2]).fit(Y)


def _lap_convolution(folder: Path, backend: str) -> Callable[[], Any]:
    from ..models.hdm_zoo import CONV_LAP_FREE, convolution_lap_model
    from ..models.lap import LAP

    z = _npz(folder, "lap_convolution.npz")
    hdm, Y = convolution_lap_model(z["pE"].ravel(), z["Uc"].ravel()), z["Y"].T
    return lambda: LAP(hdm, n_iter=32, learn_theta=list(CONV_LAP_FREE)).fit(Y)


def _adem_mountaincar(folder: Path, backend: str) -> Callable[[], Any]:
    from ..envs.mountain_car import mountain_car_flow, mountain_car_prior_flow
    from ..models.adem_spm import spm_adem

    z = _npz(folder, "adem_mountaincar.npz")
    kw = dict(x_process=[0.0, -0.5], x_model=[0.0, -0.5], N=z["C"].shape[1],
              z=np.vstack([z["pUz1"], z["pUz2"]]).T, w=z["pUw1"].T,
              U_action=np.exp(5), V_model=np.exp(8), W_model=np.exp(8),
              V_cause_model=np.exp(16), order=4, cause_order=2)
    return lambda: spm_adem(
        lambda x, v, a: mountain_car_flow(x, v[0], a[0]), lambda x, v, a: x,
        lambda x, v: mountain_car_prior_flow(x), lambda x, v: x, **kw)


def _mdp_tmaze(folder: Path, backend: str) -> Callable[[], Any]:
    from ..models.active_inference import run_trials
    from ..models.spm_mdp import spm_tmaze_model

    z = _npz(folder, "mdp_tmaze.npz")
    model = spm_tmaze_model()
    clamp = {k: z[k].astype(int).transpose(0, 2, 1) - 1 for k in ("o", "u", "s")}
    return lambda: run_trials(model, clamp=clamp, scheme="spm", tau=12.0)


#: name → case, in the order reported.
SPM_CASES: dict[str, SpmCase] = {c.name: c for c in [
    SpmCase("dem_convolution", "spm_DEM", "spm_dem(spm_convolution_model(), Y, U)", 20.0,
            _dem_convolution),
    SpmCase("dem_DEM", "spm_DEM", "spm_dem(*dem_demo_model(), Y, U)", 20.0, _dem_DEM),
    SpmCase("dem_lorenz", "spm_DEM", "spm_dem(lorenz_model(n=7, d=3), Y, U, x0=x0)", 20.0,
            _dem_lorenz),
    SpmCase("lap_lorenz", "spm_LAP", "LAP(lorenz_lap_model(pE), learn_theta=[0, 1, 2]).fit(Y)",
            20.0, _lap_lorenz),
    SpmCase("lap_convolution", "spm_LAP",
            "LAP(convolution_lap_model(pE, U), n_iter=32, learn_theta=CONV_LAP_FREE).fit(Y)",
            20.0, _lap_convolution),
    SpmCase("adem_mountaincar", "spm_ADEM",
            "spm_adem(mountain_car_flow, ..., mountain_car_prior_flow, ..., z=pU.z, w=pU.w)",
            20.0, _adem_mountaincar),
    SpmCase("mdp_tmaze", "spm_MDP_VB_X",
            "run_trials(spm_tmaze_model(), clamp=dict(o=o, u=u, s=s), scheme='spm', tau=12)",
            None, _mdp_tmaze),
]}


def default_fixture_dir() -> Path:
    """``tests/fixtures/spm`` of the source checkout this package was imported from."""
    return Path(__file__).resolve().parents[2] / "tests" / "fixtures" / "spm"


def _check_fixtures(fixtures: Path | str | None) -> Path:
    folder = default_fixture_dir() if fixtures is None else Path(fixtures)
    if not (folder / "README.md").is_file():
        raise ValidationError(
            f"bench_spm: fixtures={str(folder)!r} holds no SPM fixtures (no README.md); the "
            "fixtures live in a source checkout's tests/fixtures/spm: run from a clone of "
            "predcode or pass its path")
    return folder


def bench_spm(
    cases: tuple[str, ...] | None = None,
    fixtures: Path | str | None = None,
    backend: str = "numpy",
    repeats: int = 3,
) -> dict[str, Any]:
    """Time predcode on each SPM fixture case and set it beside SPM's recorded time.

    Parameters
    ----------
    cases : tuple of str, optional
        Names from :data:`SPM_CASES` (default: all).
    fixtures : path, optional
        The ``tests/fixtures/spm`` folder (default: the checkout's own).
    backend : {"numpy"}
        The backend predcode runs on: SPM's schemes (``spm_dem``, ``LAP``) are numpy code
        on the host, with no numba or CuPy path yet.
    repeats : int
        Timed runs per case after one warm-up run; the minimum is reported, as for SPM.

    Returns
    -------
    dict
        ``"cases"``: one row per case with ``spm_s``, ``predcode_s`` (min) and
        ``predcode_median_s``, ``speedup`` (``spm_s / predcode_s``), ``target`` and
        ``holds`` (``None`` where the case has no target); ``config`` and ``machine``
        (this machine) and each fixture's ``octave_machine`` from its ``meta.json``.
    """
    folder = _check_fixtures(fixtures)
    repeats = check_int(repeats, "repeats", "bench_spm")
    if backend != "numpy":
        raise ValidationError(f"bench_spm: backend={backend!r} is not available: SPM's "
                              "schemes run as numpy code on the host; use backend='numpy'")
    names = tuple(SPM_CASES) if cases is None else tuple(cases)
    unknown = [n for n in names if n not in SPM_CASES]
    if unknown:
        raise ValidationError(f"bench_spm: cases={unknown!r} are unknown; expected some of "
                              f"{sorted(SPM_CASES)}")
    rows = []
    for name in names:
        case = SPM_CASES[name]
        meta = json.loads((folder / name / "meta.json").read_text())
        run = case.prepare(folder / name, backend)
        run()  # warm-up (imports, caches), as SPM's first call reads its files
        times = []
        for _ in range(repeats):
            t0 = time.perf_counter()
            run()
            times.append(time.perf_counter() - t0)
        spm_s = float(meta["octave_wall_s"])
        best = float(min(times))
        speedup = spm_s / best
        target = case.target_speedup
        rows.append({
            "case": name, "spm_call": case.spm_call, "predcode_call": case.predcode_call,
            "spm_s": spm_s, "predcode_s": best, "predcode_median_s": float(np.median(times)),
            "speedup": speedup, "target": target,
            "holds": None if target is None else bool(speedup >= target),
            "octave_machine": meta.get("machine", "not recorded"),
        })
    return {"config": {"backend": backend, "repeats": repeats, "fixtures": str(folder)},
            "cases": rows, "machine": machine_info()}
