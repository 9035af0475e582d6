"""Quick paths of the JEPA and LeWorldModel reproductions: they run and write their reports.

The full runs (``quick=False``) are marked slow; their claims are what
``predcode reproduce ijepa-digits`` / ``lewm-two-rooms`` print.
"""

from __future__ import annotations

import json

import pytest

from predcode.reproduce import get_reproduction


@pytest.mark.parametrize(
    "name", ["ijepa-digits", pytest.param("lewm-two-rooms", marks=pytest.mark.slow)])
def test_quick_reproduction_writes_report(name, tmp_path):
    report = get_reproduction(name)(tmp_path, quick=True, verbose=False)
    saved = json.loads((tmp_path / "report.json").read_text())
    assert saved["claims"] == report["claims"] and report["claims"]
    assert (tmp_path / "report.md").read_text().count("|") > 10
    assert list(tmp_path.glob("*.png"))
    if name == "lewm-two-rooms":
        p = report["planning"]
        assert p["true"]["success"] >= 0.5  # the oracle planner (10 steps at most in quick mode)
        assert p["latent"]["decisions"] > 0 and p["pixel"]["decisions"] > 0
        assert report["time_ratio_pixel_over_latent"] > 1.0
    else:
        res = report["results"]
        assert set(res) >= {"jepa-ema", "jepa-sigreg", "pixel-pred", "pc", "pixels"}
        # the science of the quick run (300 training digits, 2 epochs): a linear probe
        # on raw standardised pixels reaches 89.6 % (measured), and every learned
        # representation keeps the digit identity far above the 10 % of chance
        # (measured 78-89 %); a collapsed or broken encoder probes near chance
        chance = 0.1
        assert res["pixels"]["pooled"]["probe_accuracy"] >= 0.85
        for name in ("jepa-ema", "jepa-sigreg", "jepa-none", "pixel-pred", "pc",
                     "random-encoder"):
            acc = res[name]["pooled"]["probe_accuracy"]
            assert acc >= chance + 0.6, (name, acc)
        # the seed-0 pair of the multi-seed check is the same run as the main table's
        s = report["ema_vs_random_over_seeds"]
        assert s["seeds"] == [0, 1] and len(s["difference"]) == 2
        assert s["jepa_ema"][0] == pytest.approx(res["jepa-ema"]["pooled"]["probe_accuracy"])
        assert s["random_encoder"][0] == pytest.approx(
            res["random-encoder"]["pooled"]["probe_accuracy"])
        assert s["mean_difference"] == pytest.approx(
            sum(a - b for a, b in zip(s["jepa_ema"], s["random_encoder"], strict=True)) / 2)
        assert s["se_difference"] == pytest.approx(s["sd_difference"] / 2 ** 0.5)
        assert s["settings"] == {"ema": (0.996, 1.0)}


@pytest.mark.slow
def test_full_ijepa_digits_sigreg_prevents_collapse(tmp_path):
    """The full digits comparison (about 2 minutes): without a regulariser the
    shared encoder's embeddings shrink (s.d. 0.004 measured) and SIGReg keeps them
    (0.08), the LeJEPA claim. (JEPA-EMA does not beat its random encoder
    robustly: +1.0 +- 0.9 points over seeds 0-4, mean +- s.e.; that claim is
    reported, not asserted.) The full ``lewm-two-rooms`` run (19 minutes, 1 core)
    is left to the CLI; its quick path is tested above."""
    report = get_reproduction("ijepa-digits")(tmp_path, verbose=False)
    holds = {c["claim"]: c["holds"] for c in report["claims"]}
    assert holds["no regulariser, shared encoder: embeddings shrink; SIGReg prevents it"]


def test_bench_jepa_cli(tmp_path, capsys):
    """``predcode bench jepa`` times every case and writes JSON with the machine."""
    from predcode.cli import main

    out = tmp_path / "jepa.json"
    assert main(["bench", "jepa", "--batch", "8", "--repeats", "1", "--min-time", "0.01",
                 "--json", str(out)]) == 0
    r = json.loads(out.read_text())
    assert set(r["cases"]) == {"ijepa_step_ema", "ijepa_step_sigreg", "latent_wm_step",
                               "pixel_wm_step", "latent_cem_decision", "pixel_cem_decision"}
    assert r["planning_speedup_latent_vs_pixel"] > 1.0
    assert "cpu" in r["machine"]
    assert "faster per decision" in capsys.readouterr().out
