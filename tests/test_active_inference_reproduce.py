"""Active-inference reproductions (quick paths), the CLI entries and the bench case.

Claims checked (each report puts them beside the paper): Friston et al. (2015,
2017) T-maze — cue first, then the named arm, reward ~0.98, much worse without
epistemic value; Friston et al. (2016) — learning the context stops cue visits;
cue chaining (epistemic foraging); grid-world navigation against the best
possible success rate.
"""

from __future__ import annotations

import json

import pytest

from predcode.bench import bench_aif
from predcode.cli import main
from predcode.reproduce import REPRODUCTIONS, get_reproduction


@pytest.mark.parametrize("name", ["friston-2017-tmaze", "epistemic-foraging", "aif-gridworld"])
def test_quick_reproductions_hold(name, tmp_path):
    report = get_reproduction(name)(tmp_path, quick=True, backend="numba", verbose=False)
    failed = [c for c in report["claims"] if not c["holds"]]
    assert not failed, failed
    saved = json.loads((tmp_path / "report.json").read_text())
    assert saved["claims"] == report["claims"]
    assert (tmp_path / "report.md").read_text().count("| yes |") == len(report["claims"])
    assert list(tmp_path.glob("*.png"))


@pytest.mark.slow
@pytest.mark.parametrize("name", ["friston-2017-tmaze", "epistemic-foraging", "aif-gridworld"])
def test_full_reproductions_hold(name, tmp_path):
    report = get_reproduction(name)(tmp_path, backend="numba", verbose=False)
    failed = [c for c in report["claims"] if not c["holds"]]
    assert not failed, failed


def test_reproductions_registered():
    assert {"friston-2017-tmaze", "epistemic-foraging", "aif-gridworld"} <= set(REPRODUCTIONS)


def test_bench_aif_reports_agent_steps(tmp_path):
    r = bench_aif(states=(3,), policies=(4, 8), agents=4, repeats=1, min_time=0.0)
    assert [(c["states"], c["policies"]) for c in r["cases"]] == [(3, 4), (3, 8)]
    for c in r["cases"]:
        assert c["agent_steps_per_s"] == pytest.approx(4 * 3 / c["median_s"])
    assert "cpu" in r["machine"]
    out = tmp_path / "aif.json"
    assert main(["bench", "aif", "--states", "3", "--policies", "4", "--agents", "2",
                 "--repeats", "1", "--min-time", "0.01", "--json", str(out)]) == 0
    assert json.loads(out.read_text())["cases"][0]["policies"] == 4


def test_cli_rejects_bad_states(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["bench", "aif", "--states", "4,x"])
    assert exc.value.code == 2
    assert "--states" in capsys.readouterr().err
