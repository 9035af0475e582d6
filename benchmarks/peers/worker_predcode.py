"""predcode's peer-benchmark worker (run under predcode's venv).

Its cases are the ``CASES`` of the sibling modules ``cases_nn``, ``cases_pc`` and
``cases_aif`` (a module that is not there is skipped, with a line on stderr).
BLAS is limited once, for the whole serve loop, to ``OMP_NUM_THREADS`` threads
(the driver sets it to the number of cores the worker is pinned to; 1 by
default): ``predcode.set_blas_threads(n)`` and one ``predcode.blas_threads()``
context around ``serve``, so no timed call re-enters threadpoolctl (the calls
nested inside predcode find the limit already set).

The ``info`` reply carries predcode's ``machine_info()`` under
``threads["machine"]`` (for a driver whose interpreter cannot import predcode).
"""

from __future__ import annotations

import importlib
import os
import platform
import sys
from typing import Any

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

from protocol import serve  # noqa: E402

CASE_MODULES = ("cases_nn", "cases_pc", "cases_aif")


def load_cases() -> tuple[dict[str, type], dict[str, str]]:
    """All cases of the case modules present, and a note per module skipped."""
    cases: dict[str, type] = {}
    skipped: dict[str, str] = {}
    for name in CASE_MODULES:
        if not os.path.exists(os.path.join(HERE, f"{name}.py")):
            skipped[name] = "not present"
            continue
        try:
            mod = importlib.import_module(name)
        except Exception as exc:  # noqa: BLE001 - one broken module must not stop the others
            skipped[name] = f"import failed: {type(exc).__name__}: {exc}".splitlines()[0]
            continue
        for case, cls in getattr(mod, "CASES", {}).items():
            if case in cases:
                skipped[f"{name}:{case}"] = "duplicate case name, first module kept"
                continue
            cases[case] = cls
    for k, v in skipped.items():
        print(f"worker_predcode: skipped {k}: {v}", file=sys.stderr)
    return cases, skipped


def main() -> None:
    import numba
    import numpy as np

    import predcode

    n = int(os.environ.get("OMP_NUM_THREADS", "1"))
    predcode.set_blas_threads(n)
    cases, skipped = load_cases()

    def versions() -> dict[str, str]:
        return {"python": platform.python_version(), "predcode": predcode.__version__,
                "numpy": np.__version__, "numba": numba.__version__}

    def threads() -> dict[str, Any]:
        out: dict[str, Any] = {"predcode_blas_threads": n,
                               "numba_num_threads": numba.get_num_threads(),
                               "affinity": sorted(os.sched_getaffinity(0)),
                               "skipped_case_modules": skipped}
        try:
            from predcode.machine import machine_info

            out["machine"] = machine_info()
        except Exception as exc:  # noqa: BLE001 - informational only
            out["machine"] = {"error": f"{type(exc).__name__}: {exc}"}
        return out

    with predcode.blas_threads():
        serve("predcode", cases, versions, threads)


if __name__ == "__main__":
    main()
