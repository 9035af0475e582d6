"""numba's kernel cache is written to a per-user folder, never inside the installed package.

A copy of the package in a scratch ``site-packages`` stands in for a
``pip install .``: compiling a cached kernel there must leave no ``.nbi``/``.nbc``
file inside the package (such files survive ``pip uninstall`` and the folder they
leave shadows a later editable install), and must honour ``NUMBA_CACHE_DIR``.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("numba")

import predcode  # noqa: E402
from predcode.kernels import numba_cache  # noqa: E402

# Compile (and so cache) one small kernel of the copied package, then report where
# numba put it.
_SCRIPT = """
import numpy as np
import predcode
from predcode.kernels import get_kernel
assert predcode.__file__.startswith({site!r}), predcode.__file__
k = get_kernel("dem_accumulate", "numba")
g, H, ss = k(np.ones((3, 2)), np.ones((3, 2, 2)), np.eye(2))
assert ss == 6.0, ss
"""


def _installed_copy(tmp_path: Path) -> Path:
    site = tmp_path / "site-packages"
    shutil.copytree(Path(predcode.__file__).parent, site / "predcode",
                    ignore=shutil.ignore_patterns("__pycache__"))
    return site


def _run(tmp_path: Path, site: Path, **env: str) -> None:
    full = {k: v for k, v in os.environ.items()
            if k not in ("NUMBA_CACHE_DIR", "XDG_CACHE_HOME", "PYTHONPATH")}
    full.update(env, PYTHONPATH=str(site), PYTHONDONTWRITEBYTECODE="1")
    proc = subprocess.run([sys.executable, "-c", _SCRIPT.format(site=str(site))],
                          cwd=tmp_path, env=full, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]


def _numba_files(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*") if p.suffix in (".nbi", ".nbc"))


def test_kernels_cache_in_the_user_cache_not_in_the_package(tmp_path):
    site = _installed_copy(tmp_path)
    cache_home = tmp_path / "xdg-cache"
    _run(tmp_path, site, XDG_CACHE_HOME=str(cache_home))
    assert _numba_files(site) == [], "numba wrote its cache inside the installed package"
    cached = _numba_files(cache_home / "predcode" / "numba")
    assert any("dem_numba" in p.name for p in cached), cached


def test_numba_cache_dir_is_honoured(tmp_path):
    site = _installed_copy(tmp_path)
    chosen = tmp_path / "my-numba-cache"
    cache_home = tmp_path / "xdg-cache"
    _run(tmp_path, site, NUMBA_CACHE_DIR=str(chosen), XDG_CACHE_HOME=str(cache_home))
    assert _numba_files(site) == []
    assert any("dem_numba" in p.name for p in _numba_files(chosen))
    assert not cache_home.exists() or _numba_files(cache_home) == []


def test_cache_dir_rules(tmp_path, monkeypatch):
    monkeypatch.setattr(sys, "platform", "linux")
    monkeypatch.setenv("NUMBA_CACHE_DIR", str(tmp_path / "n"))
    assert numba_cache.cache_dir() == tmp_path / "n"
    monkeypatch.delenv("NUMBA_CACHE_DIR")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "x"))
    assert numba_cache.cache_dir() == tmp_path / "x" / "predcode" / "numba"
    # an unwritable cache home falls back to a per-user folder in the temp dir
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    monkeypatch.setenv("XDG_CACHE_HOME", str(blocker))
    fallback = numba_cache.cache_dir()
    assert fallback.parent == Path(__import__("tempfile").gettempdir())
    assert fallback.name.startswith("predcode-numba-")
