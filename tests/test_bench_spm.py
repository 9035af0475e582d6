"""``predcode bench spm``: predcode beside SPM12's recorded Octave times, on SPM's fixtures."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from predcode.bench.spm import SPM_CASES, bench_spm, default_fixture_dir
from predcode.cli import main
from predcode.exceptions import ValidationError

FIXTURES = Path(__file__).parent / "fixtures" / "spm"


def test_every_timed_case_has_its_fixture_and_an_octave_time():
    assert default_fixture_dir() == FIXTURES.resolve()
    for name in SPM_CASES:
        meta = json.loads((FIXTURES / name / "meta.json").read_text())
        assert meta["octave_wall_s"] > 0, name


def test_speedup_is_spm_time_over_predcode_time_and_the_target_decides_holds():
    r = bench_spm(cases=("dem_convolution",), repeats=1)
    (row,) = r["cases"]
    spm_s = json.loads((FIXTURES / "dem_convolution" / "meta.json").read_text())["octave_wall_s"]
    assert row["spm_s"] == spm_s
    assert row["speedup"] == pytest.approx(spm_s / row["predcode_s"], rel=1e-12)
    assert row["holds"] is (row["speedup"] >= 20.0)
    assert r["machine"]["usable_cores"] >= 1


@pytest.mark.parametrize("kw, word", [
    ({"cases": ("dem_nope",)}, "cases="),
    ({"backend": "numba"}, "backend="),
    ({"fixtures": "/nonexistent/spm"}, "fixtures="),
    ({"repeats": 0}, "repeats"),
])
def test_bad_options_are_one_line_naming_the_option(kw, word):
    with pytest.raises(ValidationError) as err:
        bench_spm(**kw)
    assert word in str(err.value) and "\n" not in str(err.value)


def test_cli_prints_a_row_per_case_and_writes_json(tmp_path, capsys):
    out = tmp_path / "b.json"
    assert main(["bench", "spm", "--cases", "dem_convolution", "--repeats", "1",
                 "--json", str(out)]) == 0
    text = capsys.readouterr().out
    assert "dem_convolution" in text and "spm_DEM" in text
    rows = json.loads(out.read_text())["cases"]
    assert [r["case"] for r in rows] == ["dem_convolution"]
