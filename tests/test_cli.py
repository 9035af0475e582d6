"""The ``predcode`` command line: every subcommand, its outputs and its errors."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys

import numpy as np
import pytest

from predcode import PCN
from predcode.bench import pcn_step_flops
from predcode.cli import main
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
               "--out", str(out)])
    assert rc == 0
    metrics = json.loads((out / "metrics.json").read_text())
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
    (["reproduce", "nobody-2020", "--out", "x"], "paper"),
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
