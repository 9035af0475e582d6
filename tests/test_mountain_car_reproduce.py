"""``predcode reproduce friston-2009-mountain-car`` (Friston, Daunizeau & Kiebel 2009).

The slow test runs the reproduction (about 2 s with its figure) and needs the paper's
result: away from the goal first, then to the goal and staying; the premise "full force
alone cannot climb" is a NO row in SPM's landscape, and must stay reported as one.
"""
from __future__ import annotations

import json

import numpy as np
import pytest

from predcode.reproduce import REPRODUCTIONS, get_reproduction
from predcode.reproduce.friston2009_mountain_car import full_throttle, run_mountain_car


def test_registered():
    assert "friston-2009-mountain-car" in REPRODUCTIONS


def test_full_throttle_overshoots_in_spms_landscape():
    """The premise 'too weak to climb directly' fails in SPM's landscape (a NO row)."""
    x = full_throttle()
    assert x.max() > 2.0 and x[-1] < x.max(), (x.max(), x[-1])


@pytest.mark.slow
@pytest.mark.parametrize("seed", [0, 1])
def test_reproduction_claims_hold(tmp_path, seed):
    pytest.importorskip("matplotlib")
    report = get_reproduction("friston-2009-mountain-car")(tmp_path, seed=seed, verbose=False)
    failed = [c["claim"] for c in report["claims"] if not c["holds"]]
    assert failed == ["full force alone cannot climb the hill"], failed
    assert (tmp_path / "mountain_car.png").stat().st_size > 0
    saved = json.loads((tmp_path / "report.json").read_text())
    assert saved["claims"] == report["claims"]
    assert all(m["passes"] in (None, True) for m in report["measurements"]), report["measurements"]


@pytest.mark.slow
def test_seeded_run_repeats_and_seed_matters():
    a, b, c = run_mountain_car(seed=0), run_mountain_car(seed=0), run_mountain_car(seed=1)
    assert np.array_equal(a["x_process"], b["x_process"])
    assert not np.array_equal(a["x_process"], c["x_process"])
