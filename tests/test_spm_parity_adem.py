"""spm_ADEM mountain car (ADEM_mountaincar_loss): parity with SPM12 under Octave.

Only the generative process is checked so far: predcode's mountain-car flow against
SPM's ``spm_fx_mountaincar(x, v, a, P)/2`` on a grid (the fixture's ``xgrid``/``fgrid``).
"""
from pathlib import Path

import numpy as np

from predcode.envs.mountain_car import mountain_car_flow

FIX = Path(__file__).parent / "fixtures" / "spm" / "adem_mountaincar" / "adem_mountaincar.npz"


def test_process_flow_matches_spm_fx_mountaincar():
    d = np.load(FIX)
    got = np.stack([mountain_car_flow(g[:2], 0.0, g[2]) for g in d["xgrid"].T], axis=1)
    err = np.abs(got - d["fgrid"]).max() / np.abs(d["fgrid"]).max()
    assert err < 1e-12, f"flow: max-abs relative error {err:.2e} > 1e-12 against SPM"

