"""Quick paths of the static free-energy reproductions and their CLI entry.

bogacz-2017 (Bogacz 2017 exercises), buckley-2017-thermostat (Buckley et al.
2017, section 7) and friston-2005-vl (variational Laplace / hierarchical EM):
every claim must hold even in the quick run, and the files must be written.
"""

from __future__ import annotations

import json

import pytest

from predcode.cli import main
from predcode.reproduce import REPRODUCTIONS, get_reproduction

NAMES = {
    "bogacz-2017": ["exercise1_posterior.png", "exercise2_3_dynamics.png",
                    "exercise5_variance.png"],
    "buckley-2017-thermostat": ["thermostat_action.png", "thermostat_no_action.png"],
    "friston-2005-vl": ["model_comparison.png", "hierarchical_em.png"],
}


@pytest.mark.parametrize("name", sorted(NAMES))
def test_quick_reproduction(name, tmp_path):
    assert name in REPRODUCTIONS
    report = get_reproduction(name)(tmp_path, quick=True, verbose=False)
    failed = [c for c in report["claims"] if not c["holds"]]
    assert not failed, failed
    for f in NAMES[name] + ["report.json", "report.md"]:
        assert (tmp_path / f).stat().st_size > 0, f
    saved = json.loads((tmp_path / "report.json").read_text())
    assert saved["claims"] == report["claims"]
    md = (tmp_path / "report.md").read_text()
    assert md.count("| yes |") == len(report["claims"])


def test_bogacz_numbers_in_report(tmp_path):
    """phi* = 1.5675 (root of 2 phi^3 = 3 phi + 3), and Sigma learned near 2."""
    r = get_reproduction("bogacz-2017")(tmp_path, quick=True)["results"]
    assert round(r["phi_star"], 4) == 1.5675
    assert r["gradient_ascent_phi_T5"] == pytest.approx(1.5675, abs=1e-3)
    assert 1.5 < r["Sigma_tail_mean"] < 2.5


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(NAMES))
def test_full_reproduction(name, tmp_path):
    report = get_reproduction(name)(tmp_path, verbose=False)
    assert all(c["holds"] for c in report["claims"]), report["claims"]


def test_cli_reproduce_thermostat(tmp_path, capsys):
    assert main(["reproduce", "buckley-2017-thermostat", "--out", str(tmp_path), "--quick"]) == 0
    out = capsys.readouterr().out
    assert "[ok] with action F falls to near zero" in out
