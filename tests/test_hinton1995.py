"""The Hinton et al. (1995) bars reproduction: quick path in the default run.

The quick run is a smoke test (2 seeds, 40,000 patterns); the full run
(10 seeds, 2×10⁶ patterns each, a few minutes) is marked slow.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

from predcode.reproduce import get_reproduction
from predcode.reproduce import hinton1995 as H


def test_quick_run_writes_report_and_figures(tmp_path):
    report = get_reproduction("hinton-1995-bars")(tmp_path, quick=True, verbose=False)
    saved = json.loads((tmp_path / "report.json").read_text())
    assert saved["claims"] == report["claims"]
    assert report["claims"][0]["holds"]  # 30 images, 3.428 bits
    assert len(report["hm_runs"]) == 2 and len(report["pc_runs"]) == 1
    for r in report["hm_runs"]:
        assert np.all(np.asarray(r["kl_curve"]) > 0)
        assert r["free_energy_bits"] >= r["kl_bits"] + 3.428 - 1e-9  # F >= -log2 P
    for name in ("learning_curve.png", "weights.png", "report.md"):
        assert (tmp_path / name).stat().st_size > 0
    md = (tmp_path / "report.md").read_text()
    table = [line for line in md.splitlines() if line.startswith("| ")]
    assert all(line.count("|") == 6 for line in table[:4])  # no stray pipes in cells


def test_pc_binary_kl_of_a_perfect_decoder_is_near_zero(monkeypatch):
    """Decoder columns = the 8 bars and MAP codes = the true causes: with the empirical
    code prior the binary reading is the data distribution (KL ~ 0, up to the clipping
    eps and the sampled prior); a factorial prior ignores the orientation and pays."""
    from predcode import PCN
    from predcode.datasets.bars import bar_templates, make_bars

    X, causes = make_bars(20000, random_state=0, return_causes=True)
    net = PCN(sizes=(8, 16), mode="generative", activation="sigmoid", epochs=1,
              random_state=0, backend="numpy", dtype="float64").fit(X[:20])
    net.W_[1][...] = bar_templates(4).T
    net.b_[1][...] = 0.0
    monkeypatch.setattr(net, "infer", lambda _X: 2.0 * causes - 1.0)
    kl = H.pc_binary_kl(net, X)
    assert 0 <= kl["kl_bits_empirical_prior"] < 0.05, kl
    assert kl["kl_bits_factorial_prior"] > kl["kl_bits_empirical_prior"] + 0.2, kl


#: Entropy of the bars data (30 distinct images), exact: the floor of the
#: cross-entropy H + KL that a generative model pays per image.
ENTROPY_BITS = 3.4284
#: Hinton et al. (1995): KL(data || model) after 2x10^6 patterns (one run).
PAPER_KL_BITS = 0.10


def check_full_report(report):
    """The science of the full run, with every threshold stated here.

    Measured (numba, 10 seeds; docs/helmholtz.rst): KL best 0.197, median
    0.363, worst 0.753 bits; recognition gap F - (H + KL) 0.007-0.23 bits;
    4.0 of 8 bars coded on average (best 6); from the true model wake-sleep
    holds 0.066 bits, from the bars without their orientation it reaches 0.069.
    The paper's 0.10 bits from a random start is *not* reproduced (best seed
    0.197); the test pins what is.
    """
    runs = report["hm_runs"]
    assert len(runs) >= 10
    kls = np.array([r["kl_bits"] for r in runs])
    F = np.array([r["free_energy_bits"] for r in runs])
    # wake-sleep learns: an untrained 16-8-1 machine is ~11.5 bits away from the data
    # (test_untrained_machine_is_far_from_the_data); every trained seed is within 1 bit,
    # and every seed's KL fell by at least a fifth after its first 10^5 patterns
    assert kls.max() < 1.0, kls
    assert all(r["kl_bits"] < 0.8 * r["kl_curve"][0] for r in runs)
    assert np.median(kls) < 0.45 and kls.min() < 0.25, kls
    # the description length bounds the cross-entropy, F >= H + KL (F >= -log2 P per
    # image), and the recognition model is close to the posterior: the gap, the mean
    # KL(Q(h|x) || P(h|x)), is under 0.3 bits on every seed
    gap = F - (ENTROPY_BITS + kls)
    assert np.all(gap >= -1e-3) and np.all(gap < 0.3), gap
    # the hidden units find bars: at least 3 of 8 coded by single units on average
    assert np.mean([r["n_bars_coded"] for r in runs]) >= 3.0
    # the correct model is a stable fixed point at the paper's KL, and wake-sleep
    # learns the orientation once the bars are found (diagnostics)
    for name in ("from_truth", "from_bars_without_orientation"):
        assert report["diagnostics"][name]["kl_mean_last_half_bits"] <= PAPER_KL_BITS, name
    # the measured numbers, pinned (a change of the algorithm or of its random stream
    # moves them)
    assert kls.min() == pytest.approx(0.197, abs=0.03)
    assert np.median(kls) == pytest.approx(0.363, abs=0.05)


@pytest.mark.slow
def test_full_reproduction(tmp_path):
    """Hinton, Dayan, Frey & Neal (1995), bars: the full run (10 seeds x 2x10^6
    patterns, a few minutes) measured against the data entropy and the paper."""
    report = H.run(tmp_path, verbose=False)
    assert report["claims"][0]["holds"]  # 30 images, 3.428 bits
    check_full_report(report)


def test_untrained_machine_is_far_from_the_data():
    """The yardstick of the full run: before learning, a 16-8-1 machine with the
    reproduction's initial biases is over 10 bits from the data (measured 11.5)."""
    from predcode.datasets.bars import bars_distribution, entropy_bits, make_bars
    from predcode.metrics.likelihood import kl_bits

    imgs, p = bars_distribution()
    assert len(p) == 30 and entropy_bits(p) == pytest.approx(ENTROPY_BITS, abs=5e-5)
    hm = H.HelmholtzMachine((16, 8, 1), lr=0.0, epochs=1, init_bias=H.CONFIG["hm_init_bias"],
                            random_state=0, backend="numpy").fit(make_bars(10, random_state=0))
    assert kl_bits(hm.generative_params(), imgs, p) > 10.0


def test_true_model_is_near_exact_and_a_stable_fixed_point_of_wake_sleep():
    """The true bars model (hidden unit k = bar k, top unit = orientation) has a KL of
    under 0.01 bits (only the finite weights, sigma(-8) ~ 3e-4 per pixel, leak), codes
    every bar once, and online wake-sleep started there (recognition first fitted by
    sleep alone) stays below the paper's 0.10 bits."""
    from predcode.datasets.bars import bars_distribution
    from predcode.metrics.likelihood import kl_bits

    imgs, p = bars_distribution()
    hm = H.HelmholtzMachine((16, 8, 1), epochs=1, random_state=0, backend="numpy").fit(
        imgs[:2])
    H.set_true_model(hm)
    assert kl_bits(hm.generative_params(), imgs, p) < 0.01
    assert H.bar_assignment(H.hm_fields(hm))["correct"]
    d = H.wake_sleep_from_truth(30_000, n_sleep=30_000, chunk=10_000, backend="numba")
    assert d["kl_start_bits"] < 0.01 and d["correct"]
    assert max(d["kl_curve"]) < H.PAPER["kl_bits"], d["kl_curve"]
