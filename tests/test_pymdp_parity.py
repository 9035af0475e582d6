"""predcode against pymdp 1.0 on SPM's T-maze (issue 14, item 5).

Fixture: ``tests/fixtures/pymdp/tmaze`` (``make_tmaze.py``, pymdp 1.0.4, JAX 0.10.2,
float64): pymdp's ``Agent(inference_algo="mmp", gamma=1)`` built from
``spm_tmaze_model()`` (D fixed, C given as SPM's ``ln softmax(C)``), run on SPM's 32
clamped trials of ``tests/fixtures/spm/mdp_tmaze``; at each step ``infer_states`` on the
window so far and, at t = 0, 1, ``infer_policies`` with the policies' remaining steps.

:func:`predcode.models.pymdp_mdp.pymdp_replay_trials` reproduces pymdp's numbers to
round-off (measured: state posteriors 6e-17 max-abs, q(pi) 3e-17 max-abs = 8e-17
relative, -EFE 1.8e-15 max-abs = 1e-16 relative, actions identical); asserted at 1e-9.

SPM's scheme with pymdp's policy-posterior semantics (``replay_trials(use_F=False,
fixed_gamma=True, novelty=False, learn=False, tau=12)``) does NOT reproduce pymdp: its
state inference and G differ from pymdp's (see ``docs/spm/mdp.rst``). Measured: the
location posteriors of the policy actually taken agree to 4e-16; the context posteriors
differ by up to 0.41 (SPM's 16 gradient steps of size 1/tau = 1/12 from the erp-reset
belief vs pymdp's 16 fixed-point sweeps); q(pi) at t = 0 differs by 1.3e-4 (G on
per-policy posteriors of the whole trial, current step included); at t = 1 by 0.1 (SPM
scores each policy on its own hypothetical past, pymdp on the actions taken, plus SPM's
Occam window). ``test_spm_scheme_gap_is_as_documented`` pins these numbers.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from predcode.exceptions import ValidationError
from predcode.models.pymdp_mdp import pymdp_replay_trials
from predcode.models.spm_mdp import replay_trials, spm_tmaze_model

HERE = Path(__file__).parent / "fixtures" / "pymdp" / "tmaze"
TOL = 1e-9


@pytest.fixture(scope="module")
def fx():
    return dict(np.load(HERE / "tmaze.npz"))


@pytest.fixture(scope="module")
def ours(fx):
    return pymdp_replay_trials(spm_tmaze_model(), fx["o"], fx["u"], gamma=float(fx["gamma"]),
                               num_iter=int(fx["num_iter"]))


def _err(a, b):
    a, b = np.asarray(a, float), np.asarray(b, float)
    mx = float(np.max(np.abs(a - b)))
    return mx, mx / max(float(np.max(np.abs(b))), 1e-300)


def test_fixture_model_is_spm_tmaze(fx):
    m = spm_tmaze_model()
    for i, a in enumerate(m.A):
        np.testing.assert_allclose(fx[f"A{i}"], a / a.sum(0, keepdims=True), rtol=0, atol=0)
    for i, (b, d) in enumerate(zip(m.B, m.D, strict=True)):
        np.testing.assert_array_equal(fx[f"B{i}"], b)
        np.testing.assert_array_equal(fx[f"D{i}"], d)
    np.testing.assert_array_equal(fx["policies"], np.asarray(m.policies))
    o = np.load(Path(__file__).parent / "fixtures" / "spm" / "mdp_tmaze" / "mdp_tmaze.npz")["o"]
    np.testing.assert_array_equal(fx["o"], o.astype(int).transpose(0, 2, 1) - 1)


def test_state_posteriors_match_pymdp(fx, ours):
    for (f, t), got in ours["qs"].items():
        mx, rel = _err(got, fx[f"qs{f}_t{t}"])
        assert rel < TOL, (f"factor {f}, step {t}: state posteriors max-abs {mx:.2e}, "
                           f"relative {rel:.2e} >= {TOL:g}")


@pytest.mark.parametrize("key", ["q_pi", "neg_efe"])
def test_policy_posterior_and_G_match_pymdp(fx, ours, key):
    mx, rel = _err(ours[key], fx[key])
    assert rel < TOL, f"{key}: max-abs {mx:.2e}, relative {rel:.2e} >= {TOL:g}"


def test_actions_match_pymdp(fx, ours):
    np.testing.assert_array_equal(ours["action"], fx["action"])


def test_spm_scheme_gap_is_as_documented(fx):
    """SPM's scheme under pymdp's q(pi) semantics: what agrees and by how much it differs."""
    m = spm_tmaze_model()
    # D is fixed (no learning), so only the 6 distinct (o, u) trials of the 32 matter
    key = np.concatenate([fx["o"].reshape(len(fx["o"]), -1), fx["u"].reshape(len(fx["u"]), -1)], 1)
    ks = np.sort(np.unique(key, axis=0, return_index=True)[1])
    r = replay_trials(m, fx["o"][ks], fx["u"][ks], tau=12.0, use_F=False, fixed_gamma=True,
                      novelty=False, learn=False)
    V = np.asarray(m.policies)
    taken = [int(np.flatnonzero((V == u).all(axis=(1, 2)))[0]) for u in fx["u"][ks]]
    x = [np.stack([r["x"][f][i, :, :, p] for i, p in enumerate(taken)]) for f in range(2)]
    loc, _ = _err(x[0], fx["qs0_t2"][ks].transpose(0, 2, 1))
    ctx, _ = _err(x[1], fx["qs1_t2"][ks].transpose(0, 2, 1))
    q0, _ = _err(r["R"][:, :, 0], fx["q_pi"][ks, 0])
    q1, _ = _err(r["R"][:, :, 1], fx["q_pi"][ks, 1])
    assert loc < 1e-12, f"location posteriors (policy taken) max-abs {loc:.2e} >= 1e-12"
    assert 0.3 < ctx < 0.5, f"context posterior gap {ctx:.3f} left the documented 0.41"
    assert 5e-5 < q0 < 5e-4, f"q(pi) gap at t=0 {q0:.2e} left the documented 1.3e-4"
    assert 0.05 < q1 < 0.2, f"q(pi) gap at t=1 {q1:.3f} left the documented 0.1"


def test_errors_name_the_parameter(fx):
    m = spm_tmaze_model()
    with pytest.raises(ValidationError, match=r"pymdp_replay_trials\.obs"):
        pymdp_replay_trials(m, fx["o"][:, :2], fx["u"])
    with pytest.raises(ValidationError, match=r"pymdp_replay_trials\.actions"):
        pymdp_replay_trials(m, fx["o"], fx["u"][:, :1])
    with pytest.raises(ValidationError, match=r"pymdp_replay_trials\.gamma"):
        pymdp_replay_trials(m, fx["o"], fx["u"], gamma=0.0)
    with pytest.raises(ValidationError, match=r"pymdp_replay_trials\.C"):
        pymdp_replay_trials(m, fx["o"], fx["u"], C=[np.zeros(5)])


def test_meta_records_pymdp_version():
    meta = json.loads((HERE / "meta.json").read_text())
    assert meta["pymdp"].startswith("1.0") and meta["jax_enable_x64"] is True
    assert meta["inference_algo"] == "mmp"
