"""predcode's replay of SPM's ``spm_MDP_VB_X`` against SPM12 run under Octave (issue 14, item 4).

Fixture: ``tests/fixtures/spm/mdp_tmaze`` (``make_mdp_tmaze.m``): DEM_demo_MDP_X, the T-maze,
32 trials learning the initial-state counts ``d``. predcode is run on SPM's own outcomes
and actions (``replay_trials``); every quantity is compared as max-abs error relative to
the array's max-abs. Measured agreement: ~1e-15 (R, w, F, G, P, X, x, d), 2e-12 (Fd,
through gammaln/psi); asserted at 1e-8.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from predcode.models.spm_mdp import replay_trials
from predcode.models.spm_mdp import spm_tmaze_model as tmaze_model

HERE = Path(__file__).parent / "fixtures" / "spm" / "mdp_tmaze"
TOL = 1e-8


@pytest.fixture(scope="module")
def spm():
    return dict(np.load(HERE / "mdp_tmaze.npz"))


@pytest.fixture(scope="module")
def replay(spm):
    obs = spm["o"].astype(int).transpose(0, 2, 1) - 1
    acts = spm["u"].astype(int).transpose(0, 2, 1) - 1
    return replay_trials(tmaze_model(), obs, acts, tau=12.0)  # the demo sets MDP.tau = 12


def _rel(a, b):
    return float(np.max(np.abs(np.asarray(a) - b)) / max(np.max(np.abs(b)), 1e-300))


@pytest.mark.parametrize("ours,theirs", [
    ("R", "R"), ("w", "w"), ("F", "F"), ("G", "G"), ("P0", "P"), ("X0", "X1"), ("X1", "X2"),
    ("x0", "x1"), ("x1", "x2"), ("d0", "d1"), ("d1", "d2"), ("Fd", "Fd")])
def test_replay_matches_spm(replay, spm, ours, theirs):
    key, f = (ours[:-1], int(ours[-1])) if ours[-1].isdigit() else (ours, None)
    got = replay[key] if f is None else replay[key][f]
    err = _rel(got, spm[theirs])
    assert err < TOL, f"{ours} vs SPM {theirs}: max-abs relative error {err:.2e} >= {TOL:g}"


def test_spm_run_course_cue_then_direct(spm):
    """SPM's 32-trial run: the cue arm (location 4) is visited first until the context
    prior is learned, then the agent goes straight to the rewarded arm (location 2)."""
    first = spm["u"][:, 0, 0].astype(int)  # first move of location factor, 1-based
    switch = int(np.argmax(first != 4))
    assert switch >= 8 and np.all(first[:switch] == 4) and np.all(first[switch:] == 2), first


def test_replay_reproduces_learning_of_context(replay):
    """The context counts d grow towards the context of the trials after the switches
    (trials 1 and 3 are context 2, the rest context 1): 31 : 5 after 32 trials, as in SPM."""
    d2 = replay["d"][1]
    assert d2[-1, 0] > 6 * d2[-1, 1] and np.all(np.diff(d2[3:, 0]) > 0.3), d2[-1]


def test_pymdp_semantics_options_change_q_pi(spm):
    obs = spm["o"].astype(int).transpose(0, 2, 1)[:2] - 1
    acts = spm["u"].astype(int).transpose(0, 2, 1)[:2] - 1
    base = replay_trials(tmaze_model(), obs, acts, tau=12.0)
    alt = replay_trials(tmaze_model(), obs, acts, tau=12.0, use_F=False, fixed_gamma=True)
    assert np.all(alt["w"] == 1.0) and _rel(alt["R"], base["R"]) > 1e-3


def test_meta_records_octave_time():
    meta = json.loads((HERE / "meta.json").read_text())
    assert meta["octave_wall_s"] > 0
