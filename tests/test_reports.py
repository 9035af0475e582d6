"""Reports never flatter (issue 13, item 5), seeds and progress of the reproductions.

* a claim holds only with a stated margin, shown in the table; a tie is NO;
* a row without a paper value is a measurement, in its own table;
* a known failure (DEM against the EKF on Lorenz) is a claim row marked NO;
* a quick run says so under the title and in report.json;
* every reproduction writes through the one shared writer, records its seed,
  and a different seed gives different numbers;
* the long reproductions show progress while they run.
"""

from __future__ import annotations

import contextlib
import importlib
import inspect
import io
import json

import numpy as np
import pytest

from predcode.machine import machine_info
from predcode.reproduce import REPRODUCTIONS, get_reproduction
from predcode.reproduce import _report as R


def _report(claims, measurements=None, quick=False):
    return {"claims": claims, "measurements": measurements or [], "quick": quick, "seed": 3,
            "wall_time_s": 1.0, "machine": machine_info(), "backend": "numpy"}


def _claims_table(md: str) -> list[str]:
    lines = md.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("| claim |"))
    end = next(i for i in range(start, len(lines)) if not lines[i].startswith("|"))
    return lines[start + 2:end]


# -- margins ----------------------------------------------------------------------------

def test_a_tie_is_not_at_least_as_well():
    holds, text = R.at_least(0.856, 0.856, 0.01, scale=100, unit=" points")
    assert holds is False
    assert text == "difference >= +1 points (is +0 points)"
    assert R.at_least(0.87, 0.856, 0.01)[0] is True
    assert R.at_most(0.05, 0.05, 0.001)[0] is False
    assert R.at_most(0.04, 0.05, 0.005)[0] is True
    with pytest.raises(ValueError, match=r"margin=0 must be > 0"):
        R.at_least(1.0, 0.0, 0)


def test_ijepa_tie_with_pixel_prediction_is_no():
    """The quick ijepa-digits numbers: JEPA 85.6 % = pixel prediction 85.6 % (was "yes"),
    random encoder 85.6 %, raw pixels 93.8 %."""
    from predcode.reproduce.jepa import _claims as jepa_claims

    pooled = {"jepa-ema": 0.856, "pixel-pred": 0.856, "random-encoder": 0.856, "pixels": 0.938,
              "jepa-none": 0.8, "jepa-sigreg": 0.8}
    res = {k: {"pooled": {"probe_accuracy": v, "std": 0.1}} for k, v in pooled.items()}
    spread = {"seeds": [0, 1], "mean_difference": 0.0, "se_difference": 0.0}
    claims, measurements = jepa_claims(res, spread)
    first = claims[0]
    assert first["holds"] is False
    assert "+1 points" in first["margin"]
    # the random-encoder and raw-pixel comparisons are measurements (no paper value), and fail
    assert [m["passes"] for m in measurements] == [False, False]


def test_margin_is_shown_in_the_claims_table(tmp_path):
    c = R.claim("A beats B", "A > B (paper)", "0.9 vs 0.9", *R.at_least(0.9, 0.9, 0.05))
    R.write_report(tmp_path, _report([c]), "T", ["f.png"])
    md = (tmp_path / "report.md").read_text()
    assert "| claim | paper | predcode | margin | holds |" in md
    assert _claims_table(md) == [
        "| A beats B | A > B (paper) | 0.9 vs 0.9 | difference >= +0.05 (is +0) | NO |"]
    assert json.loads((tmp_path / "report.json").read_text())["claims"][0]["margin"] == (
        "difference >= +0.05 (is +0)")


# -- rows without a paper value -----------------------------------------------------------

def test_not_reported_is_not_a_claim(tmp_path):
    with pytest.raises(ValueError, match=r"not a paper value.*measurement"):
        R.claim("looser", "(not reported)", "x", True)
    bad = {"claim": "looser", "paper": "(not reported)", "measured": "x", "holds": True}
    with pytest.raises(ValueError, match=r"no paper value"):
        R.write_report(tmp_path, _report([bad]), "T", [])
    ok = R.claim("A", "paper says A", "A", True, "exact")
    m = R.measurement("looser", "50 % of seeds", "at least 1 seed", True)
    R.write_report(tmp_path, _report([ok], [m]), "T", [])
    md = (tmp_path / "report.md").read_text()
    assert not any("looser" in line for line in _claims_table(md))
    assert "## Measured (no paper value)" in md
    assert "| looser | 50 % of seeds | at least 1 seed | pass |" in md


def test_hinton_looser_and_diagnostic_rows_are_measurements():
    from predcode.reproduce.hinton1995 import CONFIG, hinton_claims

    d = {"kl_start_bits": 0.3, "kl_mean_last_half_bits": 0.07}
    claims, measurements = hinton_claims(
        3.428, 30, np.array([0.197, 0.4]), np.array([6, 4]), 0.0,
        {"from_truth": d, "from_bars_without_orientation": d}, CONFIG)
    assert all(not R._no_paper(c["paper"]) for c in claims)
    assert [m["quantity"].split(":")[0] for m in measurements] == [
        "looser", "diagnostic", "diagnostic"]
    assert {c["claim"]: c["holds"] for c in claims}[
        "wake-sleep learns a correct model (each hidden unit one bar)"] is False


# -- quick banner, seed -------------------------------------------------------------------

def test_quick_banner_under_the_title(tmp_path):
    c = R.claim("A", "paper says A", "A", True, "exact")
    R.write_report(tmp_path, _report([c], quick=True), "Title", [])
    lines = (tmp_path / "report.md").read_text().splitlines()
    assert lines[0] == "# Title" and lines[2] == R.QUICK_BANNER
    assert "not the paper's numbers" in lines[2]
    saved = json.loads((tmp_path / "report.json").read_text())
    assert saved["quick"] is True and saved["seed"] == 3
    R.write_report(tmp_path, _report([c], quick=False), "Title", [])
    assert R.QUICK_BANNER not in (tmp_path / "report.md").read_text()


def test_every_reproduction_has_a_seed_and_uses_the_shared_writer():
    for name, target in REPRODUCTIONS.items():
        module, func = target.target.split(":")
        src = inspect.getsource(importlib.import_module(module))
        assert "write_report(" in src, name
        assert "write_text(" not in src, f"{name} writes a file by hand"
        params = inspect.signature(get_reproduction(name)).parameters
        assert params["seed"].default == 0 and params["seed"].kind == params["seed"].KEYWORD_ONLY
        assert params["verbose"].default is True


@pytest.mark.parametrize("name", ["bogacz-2017", "buckley-2017-thermostat", "friston-2005-vl"])
def test_cheap_reproductions_write_through_write_report(name, tmp_path, monkeypatch):
    module = importlib.import_module(REPRODUCTIONS[name].target.split(":")[0])
    calls = []

    def spy(out, report, *a, **k):
        calls.append(report)
        return R.write_report(out, report, *a, **k)

    monkeypatch.setattr(module, "write_report", spy)
    report = get_reproduction(name)(tmp_path, quick=True, verbose=False)
    assert len(calls) == 1 and calls[0] is report
    assert report["quick"] is True and report["seed"] == 0
    md = (tmp_path / "report.md").read_text()
    assert md.splitlines()[2] == R.QUICK_BANNER and "seed 0" in md
    assert all(c["margin"] != "-" for c in report["claims"]), report["claims"]


def test_seed_changes_the_numbers_and_repeats(tmp_path):
    run = get_reproduction("bogacz-2017")
    a = run(tmp_path / "a", quick=True, verbose=False)["results"]
    b = run(tmp_path / "b", quick=True, verbose=False)["results"]
    c = run(tmp_path / "c", quick=True, seed=1, verbose=False)["results"]
    assert a["Sigma_final"] == b["Sigma_final"] and a["Sigma_tail_mean"] == b["Sigma_tail_mean"]
    assert a["Sigma_final"] != c["Sigma_final"]
    saved = json.loads((tmp_path / "c" / "report.json").read_text())
    assert saved["seed"] == 1 and saved["settings"]["variance_learning"]["seed"] == 1


# -- DEM: the known failure is a NO row; progress ------------------------------------------

@pytest.fixture(scope="module")
def dem_quick(tmp_path_factory):
    """friston-2008-dem at quick settings (~10 s), verbose, its stderr captured."""
    from predcode.reproduce.dem2008 import run

    out = tmp_path_factory.mktemp("dem")
    err, stdout = io.StringIO(), io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(stdout):
        report = run(out, quick=True, verbose=True)
    return report, out, err.getvalue()


def test_dem_loses_to_the_ekf_on_lorenz_is_a_no_row(dem_quick):
    report, out, _ = dem_quick
    rows = [c for c in report["claims"] if c["claim"].startswith("DEM more accurate than EKF "
                                                                 "(Lorenz")]
    assert len(rows) == 1 and rows[0]["holds"] is False
    assert ">= 5%" in rows[0]["margin"]
    md = (out / "report.md").read_text()
    line = next(x for x in _claims_table(md) if "(Lorenz" in x)
    assert line.endswith("| NO |")
    assert not any("DEM does not beat it on Lorenz" in x for x in report["reported"])
    assert md.splitlines()[2] == R.QUICK_BANNER


def test_dem_shows_a_progress_bar(dem_quick):
    _, _, err = dem_quick
    updates = [s for s in err.split("\r") if "friston-2008-dem" in s and "fit" in s]
    assert len(updates) > 2, err[-500:]
    assert any("/14" in s for s in updates), updates  # 14 DEM fits at quick settings


def test_polled_bar_advances_while_one_call_runs():
    """The Rao-Ballard bar follows ``n_inputs_seen_`` inside a single ``fit`` epoch."""
    import time

    from predcode.reproduce._progress import polled, stage_bar

    class Counter:
        n_inputs_seen_ = 0

    err = io.StringIO()
    with contextlib.redirect_stderr(err):
        bar = stage_bar(100, verbose=True, desc="polled", unit="input")
        c = Counter()
        with polled(bar, lambda: c.n_inputs_seen_, interval=0.02):
            for _ in range(10):
                c.n_inputs_seen_ += 10
                time.sleep(0.15)
        n = bar.n
        bar.close()
    assert n == 100
    shown = {s.split("|")[0].strip() for s in err.getvalue().split("\r") if "polled" in s}
    assert len(shown) > 2, err.getvalue()
