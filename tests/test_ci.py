"""``.ci/run`` does what a newcomer does: the README's two commands, in order, in one venv."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

pytestmark = pytest.mark.skipif(shutil.which("bash") is None, reason="needs bash")


def _readme_command(key: str) -> str:
    """The first line of the first ```bash block after the paragraph naming ``key``."""
    text = (ROOT / "README.md").read_text()
    after = text[text.index(key):]
    block = re.search(r"```bash\n(.*?)\n", after)
    assert block, f"no bash block after {key!r} in README.md"
    return block.group(1)


def _dry_run(*args: str) -> list[str]:
    proc = subprocess.run(["bash", str(ROOT / ".ci" / "run"), "--dry-run", *args],
                          capture_output=True, text=True, timeout=60, cwd=ROOT)
    assert proc.returncode == 0, proc.stderr
    return [line for line in proc.stdout.splitlines() if line.startswith("==> [")]


def test_ci_runs_the_readme_commands_in_order_in_one_venv():
    main_job = _readme_command("Run the main job")
    tests = _readme_command("Install and pass the tests")
    assert 'pip install ".[mnist]"' in main_job and "predcode reproduce" in main_job
    assert 'pip install -e ".[test,docs]"' in tests and "pytest" in tests
    lines = _dry_run()
    steps = [re.match(r"==> \[(\w+)\]", line).group(1) for line in lines]
    assert steps == ["venv", "mainjob", "tests", "elsewhere", "slow", "ruff", "docs"]
    venv = re.search(r"python3 -m venv (\S+)", lines[0]).group(1)
    # both README commands run verbatim, with that venv's bin first on PATH
    for line, command in ((lines[1], main_job), (lines[2], tests)):
        assert line.endswith("bash -c " + command), line
        assert f"PATH={venv}/bin:" in line
    # the editable install is checked from outside the repository
    assert "cd '" in lines[3] and "predcode info" in lines[3]
    assert str(ROOT) not in lines[3].split("cd '")[1].split("'")[0]


def test_ci_with_an_existing_python_installs_nothing(tmp_path):
    lines = _dry_run("--python", shutil.which("python3") or "python3")
    tests = next(line for line in lines if line.startswith("==> [tests]"))
    assert tests.endswith("bash -c python3 -m pytest"), tests
    assert not any(line.startswith(("==> [venv] python", "==> [mainjob] env")) for line in lines)


def test_ci_rejects_unknown_steps_and_options():
    for args in (["--only", "bogus"], ["--bogus"]):
        proc = subprocess.run(["bash", str(ROOT / ".ci" / "run"), *args], capture_output=True,
                              text=True, timeout=60, cwd=ROOT)
        assert proc.returncode == 2, (args, proc.stdout, proc.stderr)
        assert "unknown" in proc.stderr


def test_readme_run_times_are_the_registry_s():
    """Each ``predcode reproduce NAME ... # ~T`` line of the README states the time
    ``predcode reproduce --list`` gives (one source of truth for run times)."""
    from predcode.reproduce import REPRODUCTIONS, format_seconds

    found = 0
    for line in (ROOT / "README.md").read_text().splitlines():
        m = re.match(r"predcode reproduce ([\w-]+) .*#.*?(~[\d.]+ (?:s|min))\b", line)
        if m:
            found += 1
            name, stated = m.groups()
            assert stated == format_seconds(REPRODUCTIONS[name].full_s), (name, stated)
    assert found >= 8, found
