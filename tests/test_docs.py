"""The documentation builds with Sphinx, warnings treated as errors."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

DOCS = Path(__file__).resolve().parents[1] / "docs"


# Slow set: .ci/run's docs step runs the same build; this keeps it runnable from pytest
# without spending 20 s of the fast suite's 5-minute budget.
@pytest.mark.slow
def test_docs_build_without_warnings(tmp_path):
    pytest.importorskip("sphinx")
    pytest.importorskip("numpydoc")
    out = tmp_path / "html"
    cmd = [
        sys.executable,
        "-m",
        "sphinx",
        "-W",
        "--keep-going",  # every warning is an error, all of them reported
        "-E",  # fresh environment: no cached doctrees
        "-d",
        str(tmp_path / "doctrees"),
        "-b",
        "html",
        str(DOCS),
        str(out),
    ]
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    assert proc.returncode == 0, (
        f"sphinx-build failed (exit {proc.returncode}):\n{proc.stderr}\n{proc.stdout[-2000:]}"
    )
    assert (out / "index.html").exists()
    assert (out / "api.html").exists()
    _check_math_renders_offline(out)


def _check_math_renders_offline(out: Path) -> None:
    """Pages with equations load MathJax from the built docs, never from a CDN."""
    import re

    pages = [p for p in out.glob("*.html") if "math notranslate" in p.read_text()]
    assert pages, "no page with equations was built"
    for page in pages:
        srcs = re.findall(r'<script[^>]*src="([^"]*mathjax[^"]*)"', page.read_text(), re.I)
        assert srcs, f"{page.name} has equations but loads no MathJax"
        for src in srcs:
            assert "://" not in src and not src.startswith("//"), (
                f"{page.name} loads MathJax from {src} (needs the network)")
            assert (page.parent / src.split("?")[0]).is_file(), f"{page.name}: {src} missing"
