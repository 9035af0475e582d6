"""Execute every example notebook (examples/*.ipynb) in fast mode.

The notebooks check their own results with ``assert`` (e.g. that the
fixed-prediction PC updates equal backprop's gradients), so a wrong number fails
execution here, not only a crash.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")
pytest.importorskip("ipykernel")

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
NOTEBOOKS = sorted(EXAMPLES.glob("*.ipynb"))

# The kernel inherits the environment of this process.
KERNEL_ENV = {"PREDCODE_NOTEBOOK_FAST": "1", "MPLBACKEND": "Agg"}
ANSI = re.compile(r"\x1b\[[0-9;]*m")


def test_notebooks_found():
    assert NOTEBOOKS, f"no notebooks found in {EXAMPLES}"


@pytest.fixture
def kernel_env():
    saved = {key: os.environ.get(key) for key in KERNEL_ENV}
    os.environ.update(KERNEL_ENV)
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


# Notebooks over ~20 s even in fast mode run in the slow set (the fast suite has 5 minutes).
SLOW_NOTEBOOKS = {"latent_planning.ipynb"}


@pytest.mark.parametrize("path", [
    pytest.param(p, marks=pytest.mark.slow) if p.name in SLOW_NOTEBOOKS else p
    for p in NOTEBOOKS], ids=[p.name for p in NOTEBOOKS])
def test_notebook_executes(path: Path, kernel_env) -> None:
    nb = nbformat.read(path, as_version=4)
    client = nbclient.NotebookClient(
        nb,
        kernel_name="python3",
        timeout=600,
        resources={"metadata": {"path": str(path.parent)}},
    )
    try:
        client.execute()
    except nbclient.exceptions.CellExecutionError as err:
        pytest.fail(f"{path.name}: a cell failed:\n{ANSI.sub('', str(err))}", pytrace=False)
    n_code = sum(cell.cell_type == "code" for cell in nb.cells)
    assert n_code > 0, f"{path.name} has no code cells"
