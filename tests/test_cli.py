"""The ``predcode`` command line: every subcommand, its outputs and its errors."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys

import numpy as np
import pytest

from predcode import PCN
from predcode.bench import pcn_step_flops
from predcode.cli import _leaves, build_parser, main
from predcode.datasets import load_digits_split, standardize


def test_info_lists_backends_and_machine(capsys):
    assert main(["info"]) == 0
    out = capsys.readouterr().out
    for word in ("numpy", "numba", "cupy", "CPU", "BLAS", "GPU"):
        assert word in out
    assert main(["info", "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["backends"]["numpy"]["works"] is True
    assert set(info["backends"]) == {"numpy", "numba", "cupy"}
    if not info["backends"]["cupy"]["works"]:  # says why, and how to fix it
        assert "install" in info["backends"]["cupy"]["detail"].lower()


def test_train_writes_metrics_curve_and_model(tmp_path, capsys):
    out = tmp_path / "run"
    rc = main(["train", "pcn", "--dataset", "digits", "--backend", "numba", "--epochs", "3",
               "--out", str(out), "--json", str(tmp_path / "m.json")])
    assert rc == 0
    metrics = json.loads((out / "metrics.json").read_text())
    assert json.loads((tmp_path / "m.json").read_text()) == metrics
    assert len(metrics["pcn"]["history"]["val_accuracy"]) == 3
    assert 0.8 < metrics["pcn"]["test_accuracy"] <= 1.0
    assert 0.8 < metrics["mlp"]["test_accuracy"] <= 1.0
    png = (out / "learning_curve.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 10_000
    # the saved model reproduces the reported accuracy
    _, _, Xte, yte = load_digits_split(random_state=0)
    Xtr, _, _, _ = load_digits_split(random_state=0)
    _, Xte = standardize(Xtr, Xte)
    model = PCN.load(out / "pcn.npz")
    assert model.score(Xte, yte) == pytest.approx(metrics["pcn"]["test_accuracy"])
    assert "PCN test accuracy" in capsys.readouterr().out


@pytest.mark.parametrize("argv, needle", [
    (["train", "pcn", "--epochs", "0", "--out", "x"], "--epochs"),
    (["train", "pcn", "--backend", "tpu", "--out", "x"], "--backend"),
    (["train", "pcn", "--dataset", "cifar", "--out", "x"], "--dataset"),
    (["train", "pcn", "--gamma", "-1", "--out", "x"], "--gamma"),
    (["train", "pcn", "--epochs", "2"], "--out"),
    (["bench", "pcn", "--sizes", "7"], "--sizes"),
    (["bench", "pcn", "--sizes", "a,b"], "--sizes"),
    (["bench", "pcn", "--activation", "softplus"], "--activation"),
    (["reproduce", "nobody-2020", "--out", "x"], "PAPER"),
    (["train", "pcn", "--seed", "-1", "--out", "x"], "--seed"),
    (["frobnicate"], "COMMAND"),
])
def test_bad_arguments_exit_2_with_a_message(argv, needle, capsys):
    with pytest.raises(SystemExit) as info:
        main(argv)
    assert info.value.code == 2
    assert needle in capsys.readouterr().err


def test_library_errors_exit_2_with_a_message(tmp_path, capsys):
    rc = main(["train", "pcn", "--sizes", "10,3", "--epochs", "1", "--out", str(tmp_path)])
    assert rc == 2
    err = capsys.readouterr().err
    assert "error" in err and "sizes" in err and "64 pixels" in err
    assert not (tmp_path / "metrics.json").exists()


def test_bench_reports_roofline_and_writes_json(tmp_path, capsys):
    path = tmp_path / "b.json"
    rc = main(["bench", "pcn", "--sizes", "20,16,12,4", "--batch", "8", "--steps", "3",
               "--repeats", "3", "--min-time", "0.01", "--backend", "numba", "--json",
               str(path)])
    assert rc == 0
    r = json.loads(path.read_text())
    assert r["flops_per_step"] == pcn_step_flops((20, 16, 12, 4), 8, 3)
    assert r["roofline_fraction"] > 0 and r["step"]["median_s"] > 0
    assert r["config"]["threads"] == 1
    assert r["machine"]["logical_cores"] >= 1
    assert "of the same-run GEMM roofline" in capsys.readouterr().out


def test_reproduce_quick(tmp_path, capsys):
    rc = main(["reproduce", "whittington-bogacz-2017", "--out", str(tmp_path), "--quick"])
    assert rc == 0
    report = json.loads((tmp_path / "report.json").read_text())
    assert report["quick"] is True
    assert (tmp_path / "report.md").read_text().startswith("# Whittington & Bogacz")
    said = capsys.readouterr().out
    # the console says it was a quick run, and rows without a paper value are
    # printed as measurements, not as claims
    assert said.startswith("quick smoke run (--quick)")
    assert report["measurements"] and all(
        f"[measured] {m['quantity']}" in said for m in report["measurements"])
    for name in ("learning_curves.png", "pc_vs_backprop.png"):
        assert (tmp_path / name).stat().st_size > 10_000
    # the fixed-prediction identity holds even in the quick run
    assert min(report["alignment"]["fixed_prediction_cosine"]) > 0.999999


@pytest.mark.skipif(shutil.which("predcode") is None, reason="console script not installed")
def test_console_script_is_installed():
    res = subprocess.run(["predcode", "--version"], capture_output=True, text=True)
    assert res.returncode == 0 and "predcode" in res.stdout
    res = subprocess.run(["predcode", "bench", "pcn", "--batch", "0"], capture_output=True,
                         text=True)
    assert res.returncode == 2 and "--batch" in res.stderr


def test_module_entry_point():
    res = subprocess.run([sys.executable, "-m", "predcode.cli", "info"], capture_output=True,
                         text=True)
    assert res.returncode == 0, res.stderr


def test_flop_formula_counts_the_step_and_the_constant_input_prediction(monkeypatch):
    """Count matrix-product FLOPs of a real training step: they equal pcn_step_flops,
    which computes the clamped input layer's prediction once, not T times."""
    from predcode.kernels import (
        get_kernel,
        pc_numba,  # noqa: F401  (registers the kernels)
    )

    sizes, batch, T = (12, 9, 7, 3), 5, 6
    rng = np.random.default_rng(0)
    X = rng.standard_normal((batch, sizes[0]))
    Y = rng.standard_normal((batch, sizes[-1]))
    net = PCN(sizes=sizes, T=T, dtype="float64", backend="numba", epochs=1, lr=1e-3,
              batch_size=batch, random_state=0).fit(X, Y)
    flops = {"n": 0}
    first_layer = {"n": 0}

    def counting(name):
        kernel = get_kernel(name, "numba")

        def wrapped(W, a, *rest):
            if name == "pc_hebbian":
                flops["n"] += 2 * rest[0].shape[0] * W.shape[0] * W.shape[1]
            else:
                flops["n"] += 2 * a.shape[0] * W.shape[0] * W.shape[1]
            if name == "pc_predict" and W.shape == (sizes[1], sizes[0]):
                first_layer["n"] += 1
            return kernel(W, a, *rest)

        return wrapped

    net._k = {**net._k, **{n: counting(n) for n in ("pc_predict", "pc_feedback",
                                                    "pc_hebbian")}}
    net._train_batch(X, Y)
    assert flops["n"] == pcn_step_flops(sizes, batch, T)
    assert first_layer["n"] == 1


# --- one consistent CLI (issue 13, items 2-4) ------------------------------------------


def _err_lines(capsys) -> list[str]:
    return capsys.readouterr().err.strip().splitlines()


@pytest.mark.parametrize("argv, usage, needle", [
    (["train", "pcn", "--bogus", "1", "--out", "x"], "usage: predcode train pcn", "--bogus"),
    (["bench", "aif", "--sizes", "1,2"], "usage: predcode bench aif", "--sizes"),
    (["bench", "aif", "--threads", "2"], "usage: predcode bench aif", "--threads"),
    (["bench", "aif", "--steps", "2"], "usage: predcode bench aif", "--steps"),
    (["bench", "jepa", "--dtype", "float64"], "usage: predcode bench jepa", "--dtype"),
    (["reproduce", "bogacz-2017", "--bogus"], "usage: predcode reproduce", "--bogus"),
])
def test_unknown_or_inapplicable_option_prints_the_subcommands_usage(argv, usage, needle,
                                                                     capsys):
    with pytest.raises(SystemExit) as info:
        main(argv)
    assert info.value.code == 2
    lines = _err_lines(capsys)
    assert lines[0].startswith(usage)
    assert lines[-1].startswith(usage.removeprefix("usage: ") + ": error:")
    assert needle in lines[-1]


def test_inapplicable_bench_option_says_where_it_belongs(capsys):
    with pytest.raises(SystemExit):
        main(["bench", "aif", "--sizes", "1,2"])
    assert "it is an option of bench pcn" in _err_lines(capsys)[-1]


def test_every_results_command_takes_the_same_options():
    leaves = {leaf.prog.removeprefix("predcode "): leaf for leaf in _leaves(build_parser())}
    assert set(leaves) == {"info", "train pcn", "bench pcn", "bench dem", "bench aif",
                           "bench jepa", "bench helmholtz", "bench spm", "reproduce"}
    for name, leaf in leaves.items():
        opts = leaf._option_string_actions
        assert "--json" in opts and "--backend" in opts or name == "info", name
        if name != "info":
            assert "--out" in opts, name
        if name not in ("info", "bench spm"):  # bench spm replays SPM's data: nothing random
            assert "--seed" in opts, name
        for action in leaf._actions:  # a line of help for every option
            assert action.help, (name, action.option_strings)


def test_bench_help_is_per_case_with_defaults(capsys):
    with pytest.raises(SystemExit) as info:
        main(["bench", "aif", "--help"])
    assert info.value.code == 0
    out = capsys.readouterr().out
    assert out.startswith("usage: predcode bench aif")
    for text in ("--states", "(default: 4,16,64)", "(default: 16,64,256)", "(default: 64)",
                 "(default: numba)", "(default: float32)", "--seed"):
        assert text in out, text
    for other in ("--sizes", "--threads", "--steps", "--orders"):
        assert other not in out


@pytest.mark.parametrize("seed", ["-1", "4294967296", "1.5", "x"])
@pytest.mark.parametrize("cmd", [["train", "pcn", "--out", "x"], ["bench", "pcn"],
                                 ["reproduce", "bogacz-2017", "--out", "x"]])
def test_out_of_range_seed_is_one_line_naming_the_option(cmd, seed, capsys):
    with pytest.raises(SystemExit) as info:
        main([*cmd, "--seed", seed])
    assert info.value.code == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err
    assert "--seed" in err.splitlines()[-1] and "4294967295" in err.splitlines()[-1]


def _fake_reproduction(monkeypatch, holds=(True,), *, with_seed=True, error=None):
    """Replace every reproduction by a fast fake; return the record of its calls."""
    import predcode.reproduce as rep

    calls = []

    def fake_run(out, *, quick=False, backend="auto", verbose=True, seed=0):
        calls.append({"out": out, "quick": quick, "backend": backend, "seed": seed})
        if error is not None:
            raise error
        out.mkdir(parents=True, exist_ok=True)
        report = {"claims": [{"claim": f"claim {i}", "holds": h, "measured": str(i)}
                             for i, h in enumerate(holds)], "wall_time_s": 0.5,
                  "quick": quick}
        (out / "report.json").write_text(json.dumps(report))
        (out / "report.md").write_text("# fake\n")
        return report

    def fake_run_no_seed(out, *, quick=False, backend="auto", verbose=True):
        return fake_run(out, quick=quick, backend=backend, verbose=verbose)

    monkeypatch.setattr(rep, "get_reproduction",
                        lambda name: fake_run if with_seed else fake_run_no_seed)
    return calls


@pytest.mark.parametrize("paper, backend", [
    ("bogacz-2017", "cupy"), ("friston-2005-vl", "cupy"), ("buckley-2017-thermostat", "cupy"),
    ("bogacz-2017", "numba"), ("friston-2008-dem", "cupy"),
])
def test_backend_a_reproduction_cannot_use_is_refused_before_work(paper, backend, tmp_path,
                                                                  monkeypatch, capsys):
    calls = _fake_reproduction(monkeypatch)
    rc = main(["reproduce", paper, "--backend", backend, "--out", str(tmp_path / "r")])
    assert rc == 2 and calls == []
    lines = _err_lines(capsys)
    assert len(lines) == 1
    assert lines[0].startswith("predcode reproduce: error: --backend")
    assert paper in lines[0] and "numpy" in lines[0]
    assert not (tmp_path / "r").exists()


def test_registry_records_descriptions_times_and_backends():
    from predcode.reproduce import REPRODUCTIONS, Reproduction, get_reproduction

    for name, rec in REPRODUCTIONS.items():
        assert isinstance(rec, Reproduction)
        assert rec.description and "\n" not in rec.description
        assert 0 < rec.quick_s <= rec.full_s
        assert "auto" in rec.backends
        assert callable(get_reproduction(name))
    for name in ("bogacz-2017", "friston-2005-vl", "buckley-2017-thermostat"):
        assert REPRODUCTIONS[name].backends == ("auto", "numpy")
    assert "cupy" not in REPRODUCTIONS["friston-2008-dem"].backends
    assert "cupy" in REPRODUCTIONS["whittington-bogacz-2017"].backends


def test_reproduce_list_and_help_show_every_reproduction_with_times(capsys):
    from predcode.reproduce import REPRODUCTIONS

    assert main(["reproduce", "--list"]) == 0
    listed = capsys.readouterr().out
    with pytest.raises(SystemExit):
        main(["reproduce", "--help"])
    helped = capsys.readouterr().out
    for text in (listed, helped):
        assert "2 cores" in text
        for name, rec in REPRODUCTIONS.items():
            assert name in text and rec.description in text and rec.times in text
    assert "exit status" in helped and "--strict" in helped
    assert main(["reproduce", "--list", "--json", "-"]) == 0
    table = json.loads(capsys.readouterr().out)
    assert table["bogacz-2017"]["backends"] == ["auto", "numpy"]
    assert set(table) == set(REPRODUCTIONS)


@pytest.mark.parametrize("holds, strict, rc", [
    ((True, True), False, 0), ((True, False), False, 0), ((True, False), True, 1),
    ((True, True), True, 0),
])
def test_reproduce_exit_status_is_0_unless_strict(holds, strict, rc, tmp_path, monkeypatch,
                                                  capsys):
    _fake_reproduction(monkeypatch, holds)
    argv = ["reproduce", "whittington-bogacz-2017", "--out", str(tmp_path)]
    assert main(argv + ["--strict"] * strict) == rc
    out = capsys.readouterr().out
    assert "[ok] claim 0" in out
    assert ("[FAIL] claim 1" in out) == (False in holds)


def test_reproduce_crash_is_not_a_success(tmp_path, monkeypatch):
    _fake_reproduction(monkeypatch, error=RuntimeError("boom"))
    with pytest.raises(RuntimeError):  # the console script exits 1 with the traceback
        main(["reproduce", "whittington-bogacz-2017", "--out", str(tmp_path)])


def test_reproduce_passes_seed_only_to_runs_that_take_it(tmp_path, monkeypatch, capsys):
    calls = _fake_reproduction(monkeypatch)
    assert main(["reproduce", "rao-ballard-1999", "--out", str(tmp_path), "--seed", "7",
                 "--quick", "--backend", "numpy"]) == 0
    assert calls == [{"out": tmp_path, "quick": True, "backend": "numpy", "seed": 7}]
    calls = _fake_reproduction(monkeypatch, with_seed=False)
    assert main(["reproduce", "rao-ballard-1999", "--out", str(tmp_path)]) == 0
    assert len(calls) == 1
    capsys.readouterr()
    assert main(["reproduce", "rao-ballard-1999", "--out", str(tmp_path), "--seed", "7"]) == 2
    assert len(calls) == 1
    assert "--seed 7 does not apply" in _err_lines(capsys)[-1]


def test_reproduce_json_to_stdout_keeps_stdout_pure_json(tmp_path, monkeypatch, capsys):
    _fake_reproduction(monkeypatch, (True, False))
    assert main(["reproduce", "bogacz-2017", "--out", str(tmp_path), "--json", "-"]) == 0
    captured = capsys.readouterr()
    assert [c["holds"] for c in json.loads(captured.out)["claims"]] == [True, False]
    assert "[FAIL] claim 1" in captured.err
    assert main(["reproduce", "bogacz-2017", "--out", str(tmp_path), "--json",
                 str(tmp_path / "j" / "r.json")]) == 0
    assert json.loads((tmp_path / "j" / "r.json").read_text())["wall_time_s"] == 0.5


def test_write_errors_are_one_line(tmp_path, monkeypatch, capsys):
    _fake_reproduction(monkeypatch, error=PermissionError(13, "Permission denied",
                                                          "/data/report.md"))
    assert main(["reproduce", "bogacz-2017", "--out", str(tmp_path)]) == 2
    assert _err_lines(capsys) == [
        "predcode reproduce: error: cannot write /data/report.md: Permission denied"]


def _bad_outputs(tmp_path):
    a_file = tmp_path / "a_file"
    a_file.write_text("x")
    return [
        (["--out", str(a_file)], "is an existing file"),
        (["--out", str(a_file / "sub")], "is a file, so nothing can be created under it"),
        (["--out", str(tmp_path / "ok"), "--json", str(tmp_path)], "is a folder"),
        (["--out", str(tmp_path / "ok"), "--json", str(a_file / "r.json")], "is a file"),
    ]


def _must_not_run(*args, **kwargs):
    raise AssertionError("the work started before the output paths were checked")


@pytest.mark.parametrize("case", range(4))
@pytest.mark.parametrize("cmd", [["train", "pcn"], ["bench", "pcn"],
                                 ["reproduce", "bogacz-2017"]])
def test_bad_output_paths_fail_before_any_work(cmd, case, tmp_path, monkeypatch, capsys):
    import predcode.bench as bench
    import predcode.models.pc_vs_backprop as pvb
    import predcode.reproduce as rep

    monkeypatch.setattr(pvb, "train_pair", _must_not_run)
    monkeypatch.setattr(bench, "bench_pcn", _must_not_run)
    monkeypatch.setattr(rep, "get_reproduction", lambda name: _must_not_run)
    extra, needle = _bad_outputs(tmp_path)[case]
    assert main([*cmd, *extra]) == 2
    lines = _err_lines(capsys)
    assert len(lines) == 1 and needle in lines[0]
    assert lines[0].split(": error: ")[1].startswith(extra[-2])  # names the option


def test_unwritable_output_folder_fails_before_any_work(tmp_path, monkeypatch, capsys):
    import os

    import predcode.models.pc_vs_backprop as pvb

    monkeypatch.setattr(pvb, "train_pair", _must_not_run)
    monkeypatch.setattr(os, "access", lambda path, mode: False)  # root can write anywhere
    assert main(["train", "pcn", "--out", str(tmp_path / "new")]) == 2
    (line,) = _err_lines(capsys)
    assert "--out" in line and "permission denied" in line


def test_library_errors_name_the_option_as_typed(capsys):
    rc = main(["bench", "aif", "--states", "1", "--policies", "2"])
    assert rc == 2
    (line,) = _err_lines(capsys)
    assert line.startswith("predcode bench aif: error: --states:") and "bench_aif" not in line


def test_bench_helmholtz_reports_rates_and_exits_1_under_target(tmp_path, monkeypatch, capsys):
    import predcode.bench as bench

    def fake(**kw):
        case = {"patterns_per_s": 1000.0, "median_s": 1.0, "patterns": 1000}
        return {"config": kw, "cases": {"numba": case, "numpy_loop": case},
                "speedup": 1.0, "target": 20.0, "holds": False, "machine": {}}

    monkeypatch.setattr(bench, "bench_helmholtz", fake)
    path = tmp_path / "h.json"
    assert main(["bench", "helmholtz", "--patterns", "100", "--json", str(path)]) == 1
    out = capsys.readouterr().out
    assert "x1.0 the numpy loop (target x20: NO)" in out
    assert json.loads(path.read_text())["holds"] is False


def test_library_backend_error_names_backend_option(monkeypatch, capsys):
    import predcode.bench as bench
    from predcode.exceptions import ValidationError

    def refuse(**kwargs):
        raise ValidationError("bench_pcn.backend='cupy' is not available: CuPy is missing.")

    monkeypatch.setattr(bench, "bench_pcn", refuse)
    assert main(["bench", "pcn", "--backend", "cupy"]) == 2
    assert _err_lines(capsys) == [
        "predcode bench pcn: error: --backend='cupy' is not available: CuPy is missing."]


def test_info_json_path_and_blas_owner(tmp_path, capsys):
    from predcode.machine import blas_owner

    path = tmp_path / "info.json"
    assert main(["info", "--json", str(path)]) == 0
    out = capsys.readouterr().out
    info = json.loads(path.read_text())
    assert info["blas"] and all("used_by" in b for b in info["blas"])
    for b in info["blas"]:
        assert f"used by {b['used_by']}" in out
    assert blas_owner("/v/lib/python3.11/site-packages/numpy.libs/libscipy_openblas64_.so") \
        == "numpy"
    assert blas_owner("/v/lib/python3.11/site-packages/scipy.libs/libscipy_openblas.so") \
        == "scipy"
    assert blas_owner("/v/site-packages/numpy/.libs/libopenblas.so") == "numpy"
    assert blas_owner("/usr/lib/x86_64-linux-gnu/libopenblas.so.0") == "shared"


def test_info_names_the_blas_kernel_and_a_forced_core_type(monkeypatch, capsys):
    """Issue 15 item 4: the kernel numpy's GEMMs run on, and OPENBLAS_CORETYPE, are visible."""
    from predcode.machine import blas_kernel

    blas = [{"user_api": "blas", "internal_api": "openblas", "version": "0.3.30",
             "architecture": "SkylakeX", "used_by": "scipy"},
            {"user_api": "blas", "internal_api": "openblas", "version": "0.3.31",
             "architecture": "Haswell", "used_by": "numpy"}]
    monkeypatch.setenv("OPENBLAS_CORETYPE", "Haswell")
    k = blas_kernel(blas)
    assert (k["library"], k["architecture"], k["openblas_coretype"]) == \
        ("openblas 0.3.31", "Haswell", "Haswell")  # numpy's, not scipy's
    assert k["summary"] == "openblas 0.3.31 Haswell kernels (forced by OPENBLAS_CORETYPE=Haswell)"
    monkeypatch.delenv("OPENBLAS_CORETYPE")
    assert blas_kernel(blas)["summary"].endswith("(auto-detected)")
    assert blas_kernel([])["architecture"] is None
    assert main(["info"]) == 0
    out = capsys.readouterr().out
    assert re.search(r"^kernel   .+ kernels \(auto-detected\)", out, re.M), out


def test_info_backend_says_what_it_runs_on_and_exits_1_when_it_does_not_work(capsys):
    from predcode.backend import available_backends

    assert main(["info", "--backend", "numpy", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["backend"] == {
        "requested": "numpy", "name": "numpy", "works": True,
        "detail": available_backends()["numpy"][1]}
    works = available_backends()["cupy"][0]
    assert main(["info", "--backend", "cupy"]) == (0 if works else 1)
    assert "--backend cupy: cupy" in capsys.readouterr().out


def test_library_parameter_names_become_the_options_typed():
    from predcode.cli._common import option_names
    from predcode.cli._train import OPTIONS

    msg = ("PCN.lr=1e+09: learning diverged at gamma=0.1; use a smaller lr, e.g. lr=1e+08; "
           "MLP.lr too; see predcode.backend")
    assert option_names(msg, OPTIONS) == (
        "--lr=1e+09: learning diverged at --gamma=0.1; use a smaller lr, e.g. --lr=1e+08; "
        "--baseline-lr too; see predcode.backend")
    assert option_names("train_pair.batch_size: must be >= 1", OPTIONS) == \
        "--batch-size: must be >= 1"
