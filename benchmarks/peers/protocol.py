"""JSON-lines protocol between the peer-benchmark driver and its workers.

Every implementation (predcode, PyTorch eager / compile, pcx, raw JAX, pymdp) runs
in its own worker process, under its own interpreter (the peers live in their own
virtual environments, never in predcode's). The driver (``driver.py``) sends one
JSON object per line on the worker's stdin and reads one JSON object per line on
its stdout; anything else a worker prints must go to stderr.

Requests (``cmd``) and replies:

``info``
    ``{"impl", "versions": {...}, "blas": [threadpoolctl entries], "threads": {...}}``
``list``
    ``{"cases": [names]}``
``export`` (predcode worker only) ``case, params, path``
    writes the case's inputs (weights, data, every random draw the check needs)
    to ``path`` (``.npz``) and replies ``{"ok": true}``.
``setup`` ``case, params, inputs``
    builds the case from the exported inputs, runs it once (compilation,
    warm-up) and replies ``{"setup_s", "warmup_s"}``: build time and the first
    call's time, reported apart from the steady state.
``outputs`` ``case, path``
    writes the case's outputs for the equality check (losses, gradients, costs,
    posteriors: whatever the case defines) to ``path`` and replies ``{"ok": true}``.
``time`` ``case, reps``
    runs the case ``reps`` times and replies ``{"times": [seconds, ...]}``
    (each call blocks until its result exists: ``block_until_ready``,
    ``torch`` ops are synchronous on the CPU).
``quit``
    exits.

A failure replies ``{"error": "<one line>"}`` and the worker keeps serving.

A *case* is a class with ``__init__(self, inputs: dict, params: dict)``,
``outputs(self) -> dict[str, ndarray]`` and ``run(self) -> None``; the predcode
side also has ``export(params) -> dict[str, ndarray]`` as a staticmethod.
"""

from __future__ import annotations

import json
import sys
import time
import traceback
from collections.abc import Callable
from typing import Any

import numpy as np

__all__ = ["serve", "blas_info"]


def blas_info() -> list[dict[str, Any]]:
    """threadpoolctl's view of the loaded BLAS / OpenMP libraries (architecture included)."""
    try:
        from threadpoolctl import threadpool_info
    except ImportError as exc:  # pragma: no cover - peer venv without threadpoolctl
        return [{"error": f"threadpoolctl not installed: {exc}"}]
    keep = ("user_api", "internal_api", "version", "architecture", "num_threads", "filepath")
    return [{k: info.get(k) for k in keep} for info in threadpool_info()]


def serve(impl: str, cases: dict[str, type], versions: Callable[[], dict[str, str]],
          threads: Callable[[], dict[str, Any]] | None = None) -> None:
    """Serve driver requests on stdin/stdout until ``quit`` (see module doc)."""
    live: dict[str, Any] = {}
    out = sys.stdout
    sys.stdout = sys.stderr  # stray prints from libraries must not break the protocol
    for line in sys.stdin:
        if not line.strip():
            continue
        try:
            req = json.loads(line)
            cmd = req["cmd"]
            if cmd == "quit":
                break
            if cmd == "info":
                rep = {"impl": impl, "versions": versions(), "blas": blas_info(),
                       "threads": threads() if threads else {}}
            elif cmd == "list":
                rep = {"cases": sorted(cases)}
            elif cmd == "export":
                data = cases[req["case"]].export(req.get("params", {}))
                np.savez(req["path"], **data)
                rep = {"ok": True}
            elif cmd == "setup":
                with np.load(req["inputs"], allow_pickle=False) as f:
                    inputs = {k: f[k] for k in f.files}
                t0 = time.perf_counter()
                case = cases[req["case"]](inputs, req.get("params", {}))
                t1 = time.perf_counter()
                case.run()
                t2 = time.perf_counter()
                live[req["case"]] = case
                rep = {"setup_s": t1 - t0, "warmup_s": t2 - t1}
            elif cmd == "outputs":
                res = live[req["case"]].outputs()
                np.savez(req["path"], **{k: np.asarray(v) for k, v in res.items()})
                rep = {"ok": True}
            elif cmd == "time":
                case = live[req["case"]]
                times = []
                for _ in range(int(req["reps"])):
                    t0 = time.perf_counter()
                    case.run()
                    times.append(time.perf_counter() - t0)
                rep = {"times": times}
            else:
                rep = {"error": f"unknown cmd {cmd!r}"}
        except Exception as exc:  # noqa: BLE001 - reported to the driver, worker keeps serving
            traceback.print_exc(file=sys.stderr)
            rep = {"error": f"{type(exc).__name__}: {exc}".splitlines()[0]}
        out.write(json.dumps(rep) + "\n")
        out.flush()
