"""The Rao & Ballard (1999) reproduction harness: measurements and report.

These check that the measurements measure what they claim, on inputs whose
answer is known; whether the paper's effects hold is the report's business
(the report states each claim and whether it holds).
"""

from __future__ import annotations

import json

import numpy as np

from predcode import RaoBallard
from predcode.reproduce import rao_ballard1999 as R


def test_stimuli_are_preprocessed_like_the_training_images():
    """A stimulus's model input is the crop of the same scene DoG-filtered as a whole
    (as training images are), up to the filter's global zero-mean shift."""
    from predcode.datasets.natural import dog_filter
    from predcode.datasets.stimuli import bar

    stim = bar((16, 26), length=10, orientation_deg=30.0, contrast=4.0)
    scene = np.zeros((120, 140))
    scene[50:66, 60:86] = stim
    want = 0.5 * dog_filter(scene, sigma_center=1.0)[50:66, 60:86]
    got = R.as_model_input(stim, 0.5, 1.0)
    assert np.abs(got - want).max() < 0.01 * np.abs(want).max()


def test_unexplained_variance_is_zero_for_a_perfect_model_and_one_for_a_null_model():
    m = RaoBallard(n_modules=1, patch_shape=(4, 4), n_causes=(16,), dtype="float64",
                   alpha=1e-9, lam=0.0, T=400, random_state=0, k2=1e-9)
    X = np.random.default_rng(0).standard_normal((20, 4, 4))
    m.fit(X)
    m.U_[0][...] = 3.0 * np.eye(16)  # complete basis: settles to U r = I
    assert R.unexplained_variance(m, X) < 1e-6
    m.U_[0][...] = 0.0
    assert R.unexplained_variance(m, X) > 0.999


def test_end_stopping_measurement_shapes_and_index_range():
    X, _ = R.training_data(300, 10, 1.0, 1.0)
    m = RaoBallard(random_state=0, T=30, window_sigma=4.0).fit(X)
    es = R.end_stopping(m, 1.0, 1.0, lengths=(2, 8, 26))
    assert np.asarray(es["curves_feedback"]).shape == (32, 3)
    assert 0 < es["n_units"] <= 32
    assert 0.0 <= es["index_feedback_mean"] <= 1.0
    assert 0.0 <= es["index_no_feedback_mean"] <= 1.0
    assert all(0.0 <= o < 180.0 for o in es["preferred_orientation"])


def test_quick_run_writes_report_and_figures(tmp_path):
    report = R.run(tmp_path, quick=True, verbose=False)
    saved = json.loads((tmp_path / "report.json").read_text())
    assert saved["claims"] == report["claims"]
    assert {c["claim"] for c in report["claims"]} >= {
        "level-1 fields are Gabor-like", "feedback removal abolishes end-stopping"}
    for name in ("rf_level1.png", "rf_level2.png", "end_stopping.png"):
        assert (tmp_path / name).stat().st_size > 5_000
    assert (tmp_path / "report.md").read_text().startswith("# Rao & Ballard (1999)")
    assert 0.0 < report["unexplained_variance"] < 1.0
