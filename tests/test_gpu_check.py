"""``benchmarks/gpu_check.sh``: argument handling, the no-GPU exit and the dry-run JSON.

These run on the CPU; the GPU steps themselves run only on a machine with CuPy
and a CUDA device (``benchmarks/gpu_check.sh --out gpu_check.json``).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "gpu_check.sh"
STEPS = {"pytest_gpu", "bench_pcn", "bench_aif", "bench_jepa", "bench_dem"}

pytestmark = pytest.mark.skipif(
    os.name != "posix" or shutil.which("bash") is None or shutil.which("timeout") is None,
    reason="gpu_check.sh needs bash and coreutils' timeout",
)


def run(*args: str, cwd: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    full = {**os.environ, **(env or {})}
    return subprocess.run(["bash", str(SCRIPT), "--python", sys.executable, *args], cwd=cwd,
                          env=full, capture_output=True, text=True, timeout=120, check=False)


@pytest.fixture
def no_cupy(tmp_path) -> dict[str, str]:
    """An environment in which ``import cupy`` fails, whatever is installed."""
    fake = tmp_path / "fake" / "cupy"
    fake.mkdir(parents=True)
    (fake / "__init__.py").write_text('raise ImportError("fake: no CuPy here")\n')
    path = os.pathsep.join(p for p in (str(fake.parent), os.environ.get("PYTHONPATH")) if p)
    return {"PYTHONPATH": path}


def test_help_prints_usage_and_exits_0(tmp_path):
    p = run("--help", cwd=tmp_path)
    assert p.returncode == 0, p.stderr
    assert "Usage: benchmarks/gpu_check.sh" in p.stdout
    assert "--dry-run" in p.stdout and "--out PATH" in p.stdout
    assert not list(tmp_path.iterdir())  # --help writes nothing


@pytest.mark.parametrize("args, message", [
    (["--bogus"], "unknown option --bogus"),
    (["--out"], "--out needs a value"),
    (["--out="], "--out needs a value"),
    (["--budget", "soon"], "--budget must be a positive whole number"),
    (["--budget", "0"], "--budget must be a positive whole number"),
    (["--backend", "tpu"], "--backend must be cupy, numpy or numba"),
    (["--python", "/no/such/python"], "--python: no interpreter"),
])
def test_bad_arguments_print_usage_and_exit_2(tmp_path, args, message):
    p = run(*args, cwd=tmp_path)
    assert p.returncode == 2
    assert message in p.stderr
    assert "Usage:" in p.stderr
    assert not (tmp_path / "gpu_check.json").exists()


def test_out_that_is_a_folder_is_refused(tmp_path):
    (tmp_path / "here").mkdir()
    p = run("--dry-run", "--out", "here", cwd=tmp_path)
    assert p.returncode == 2
    assert "is a folder" in p.stderr


def test_without_cupy_exits_3_with_a_clear_message_and_records_why(tmp_path, no_cupy):
    p = run(cwd=tmp_path, env=no_cupy)
    assert p.returncode == 3
    assert "no GPU check possible here" in p.stderr
    assert "CuPy is not importable" in p.stderr and "fake: no CuPy here" in p.stderr
    doc = json.loads((tmp_path / "gpu_check.json").read_text())  # the default path, in cwd
    assert doc["status"] == "no_gpu"
    assert doc["gpu"]["available"] is False
    assert "fake: no CuPy here" in doc["gpu"]["reason"]
    assert {s["status"] for s in doc["steps"].values()} == {"not_run"}


def test_dry_run_writes_the_skeleton_at_a_relative_path(tmp_path, no_cupy):
    p = run("--dry-run", "--out", "deep/er/check.json", "--budget", "300", cwd=tmp_path,
            env=no_cupy)
    assert p.returncode == 0, p.stderr
    out = tmp_path / "deep" / "er" / "check.json"  # relative to the caller's folder
    doc = json.loads(out.read_text())
    assert {"schema", "status", "dry_run", "backend", "argv", "started_at", "finished_at",
            "wall_time_s", "budget_s", "python", "predcode_version", "gpu", "steps",
            "figures"} <= doc.keys()
    assert doc["schema"] == "predcode.gpu_check/1"
    assert (doc["status"], doc["dry_run"], doc["backend"], doc["budget_s"]) == (
        "dry_run", True, "cupy", 300)
    assert doc["python"] == sys.executable
    assert set(doc["steps"]) == STEPS
    for name, step in doc["steps"].items():
        assert step["status"] == "planned", name
        assert 0 < step["timeout_s"] <= 300, name
        assert {"exit_code", "elapsed_s", "command"} <= step.keys()
    cmd = doc["steps"]["pytest_gpu"]["command"]
    assert cmd[:3] == [sys.executable, "-m", "pytest"] and "gpu" in cmd
    for name in STEPS - {"pytest_gpu"}:
        command = doc["steps"][name]["command"]
        assert command[command.index("--backend") + 1] == "cupy", name
        assert name.removeprefix("bench_") in command, name
    assert doc["figures"] == {}
    # The step timeouts add up to the default 8-minute budget at most.
    p = run("--dry-run", "--out", "full.json", cwd=tmp_path, env=no_cupy)
    doc = json.loads((tmp_path / "full.json").read_text())
    assert doc["budget_s"] == 480
    assert sum(s["timeout_s"] for s in doc["steps"].values()) <= 480
