"""spm_ADEM mountain car (ADEM_mountaincar_loss): parity with SPM12 under Octave.

The process flow is checked against SPM's ``spm_fx_mountaincar(x, v, a, P)/2`` on a grid
(the fixture's ``xgrid``/``fgrid``). The whole active-inference run,
:func:`predcode.models.adem_spm.spm_adem` on SPM's own noise (``pU.z``, ``pU.w``), is
checked against SPM's trajectory: true states, sensations, the model's conditional
means, its sensory errors, action, the per-bin ``J`` and F. Measured agreement (max-abs
over the array, relative to the array's max-abs): states and sensations 7.7e-10, action
3.3e-9, F 2.3e-11; the tolerances below are about 10x that. SPM's own sensitivity (its
``spm_expm`` in ``spm_dx`` swapped for Octave's ``expm``) is given in
``docs/spm/adem.rst``.
"""
from pathlib import Path

import numpy as np
import pytest

from predcode.envs.mountain_car import mountain_car_flow, mountain_car_prior_flow
from predcode.models.adem_spm import spm_adem

FIX = Path(__file__).parent / "fixtures" / "spm" / "adem_mountaincar" / "adem_mountaincar.npz"


def test_process_flow_matches_spm_fx_mountaincar():
    d = np.load(FIX)
    got = np.stack([mountain_car_flow(g[:2], 0.0, g[2]) for g in d["xgrid"].T], axis=1)
    err = np.abs(got - d["fgrid"]).max() / np.abs(d["fgrid"]).max()
    assert err < 1e-12, f"flow: max-abs relative error {err:.2e} > 1e-12 against SPM"


def run_fixture(d):
    """predcode's call for SPM's run (the bench entry uses the same)."""
    return spm_adem(
        lambda x, v, a: mountain_car_flow(x, v[0], a[0]), lambda x, v, a: x,
        lambda x, v: mountain_car_prior_flow(x), lambda x, v: x,
        x_process=[0.0, -0.5], x_model=[0.0, -0.5], N=d["C"].shape[1],
        z=np.vstack([d["pUz1"], d["pUz2"]]).T, w=d["pUw1"].T,
        U_action=np.exp(5), V_model=np.exp(8), W_model=np.exp(8),
        V_cause_model=np.exp(16), order=4, cause_order=2,
    )


@pytest.fixture(scope="module")
def both():
    d = np.load(FIX)
    return d, run_fixture(d)


def _rel(a, b):
    return float(np.abs(a - b).max() / np.abs(b).max())


@pytest.mark.parametrize("key, ref, tol", [
    ("x_process", "pUx", 1e-8),   # the car's true position and velocity
    ("y", "pUv1", 1e-8),          # sensations
    ("x", "qUx", 1e-8),           # the model's conditional means of the states
    ("e_y", "qUz1", 1e-8),        # sensory prediction errors
    ("a", "qUa", 3e-8),           # action
    ("J", "J", 2e-9),             # free energy per bin
])
def test_trajectory_matches_spm_adem(both, key, ref, tol):
    d, r = both
    want = d[ref]
    got = r[key].T.reshape(want.shape)
    err = _rel(got, want)
    assert err < tol, f"{key} vs SPM {ref}: max-abs relative error {err:.2e} > {tol:.0e}"


def test_free_energy_matches_spm_adem(both):
    d, r = both
    F = float(d["F"].ravel()[-1])
    err = abs(r["F"] - F) / abs(F)
    assert err < 1e-9, f"F {r['F']:.6f} vs SPM {F:.6f}: relative error {err:.2e} > 1e-9"


def test_model_causes_stay_at_zero_as_in_spm(both):
    d, r = both
    assert np.abs(d["qUv2"]).max() == 0.0
    assert np.abs(r["v"]).max() < 1e-12, f"model cause moved: {np.abs(r['v']).max():.2e}"


def test_course_matches_spm(both):
    """SPM's course: away from the goal first (min -1.168 at bin index 17), then past 0.75
    at index 44, ending at 0.967."""
    _, r = both
    x = r["x_process"][:, 0]
    assert int(x.argmin()) == 17 and abs(x.min() + 1.16827) < 1e-4, (x.argmin(), x.min())
    assert int(np.argmax(x > 0.75)) == 44, f"first bin past 0.75: {np.argmax(x > 0.75)}"
    assert abs(x[-1] - 0.96739) < 1e-4, f"final position {x[-1]:.5f}, SPM 0.96739"


def test_drawn_noise_has_spm_dem_z_variance_and_is_seeded():
    from predcode.models.adem_spm import spm_dem_noise

    a = spm_dem_noise(4.0, 2, 1000, 0.5, random_state=3)
    b = spm_dem_noise(4.0, 2, 1000, 0.5, random_state=3)
    assert np.array_equal(a, b)
    sd = a.std(0)
    assert np.all(np.abs(sd - 0.5) < 0.05), f"noise s.d. {sd}, expected 1/sqrt(4) = 0.5"
    assert not spm_dem_noise(np.exp(33), 1, 10).any()  # SPM: none above e^32


def test_output_size_mismatch_is_one_clear_error():
    from predcode.exceptions import ValidationError

    with pytest.raises(ValidationError, match="model_g"):
        spm_adem(lambda x, v, a: x, lambda x, v, a: x, lambda x, v: x, lambda x, v: x[:1],
                 x_process=[0.0, 0.0], x_model=[0.0, 0.0], N=16)
