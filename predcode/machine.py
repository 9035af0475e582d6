"""What machine a number was measured on: CPU, cores, BLAS, GPU and versions."""

from __future__ import annotations

import os
import platform
import sys
from typing import Any

import numpy as np

from ._version import __version__
from .backend import available_backends


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _versions() -> dict[str, str]:
    out = {"python": sys.version.split()[0], "predcode": __version__, "numpy": np.__version__}
    for name in ("scipy", "numba", "cupy", "matplotlib", "sklearn", "mlxtend"):
        try:
            mod = __import__(name)
            out[name] = getattr(mod, "__version__", "?")
        except Exception:
            out[name] = "not installed"
    return out


_OWNERS = {"numpy": "numpy", "scipy": "scipy", "scikit_learn": "scikit-learn",
           "sklearn": "scikit-learn", "numba": "numba", "torch": "torch"}


def blas_owner(filepath: str) -> str:
    """Which package a BLAS/OpenMP library belongs to, from where it lives.

    Wheels bundle their own copy: ``site-packages/numpy.libs/`` (or
    ``numpy/.libs/``) is numpy's, ``scipy.libs/`` scipy's. A library outside
    every package (a system or conda OpenBLAS/MKL) is ``"shared"``: whoever links
    to it uses it.
    """
    parts = filepath.replace("\\", "/").split("/")
    for i, part in enumerate(parts):
        name = part[: -len(".libs")] if part.endswith(".libs") else None
        if part == ".libs" and i > 0:
            name = parts[i - 1]
        if name:
            return _OWNERS.get(name.lower(), name)
    for i, part in enumerate(parts[:-1]):
        if part in ("site-packages", "dist-packages") and parts[i + 1] in _OWNERS:
            return _OWNERS[parts[i + 1]]
    return "shared"


def blas_kernel(blas: list[dict[str, Any]]) -> dict[str, Any]:
    """The BLAS kernel numpy's matrix products run on, and whether it was forced.

    ``architecture`` is threadpoolctl's name for the core type OpenBLAS picked
    (e.g. ``"SkylakeX"``, ``"Haswell"``); ``OPENBLAS_CORETYPE`` in the environment
    overrides the detection, and a wrong setting (Haswell kernels on an AVX-512
    CPU) halves float32 GEMM speed, so it is reported beside the kernel.
    """
    forced = os.environ.get("OPENBLAS_CORETYPE") or None
    entry = next((b for b in blas if b.get("user_api") == "blas"
                  and b.get("used_by") in ("numpy", "shared")),
                 next((b for b in blas if b.get("user_api") == "blas"), None))
    if entry is None:
        return {"library": None, "architecture": None, "openblas_coretype": forced,
                "summary": "no BLAS seen by threadpoolctl"}
    arch = entry.get("architecture") or "unknown"
    lib = f"{entry.get('internal_api', '?')} {entry.get('version', '')}".strip()
    how = f"forced by OPENBLAS_CORETYPE={forced}" if forced else "auto-detected"
    return {"library": lib, "architecture": arch, "openblas_coretype": forced,
            "summary": f"{lib} {arch} kernels ({how})"}


def machine_info() -> dict[str, Any]:
    """Describe this machine for a benchmark or report (JSON-serialisable).

    Each ``blas`` entry (from threadpoolctl) says in ``used_by`` whose library it
    is: ``"numpy"``, ``"scipy"`` (each wheel bundles its own OpenBLAS) or
    ``"shared"`` (one system library for all).
    """
    try:
        import scipy.linalg  # noqa: F401  (loads scipy's BLAS, so it is listed too)
    except Exception:  # pragma: no cover - scipy is a dependency
        pass
    try:
        from threadpoolctl import threadpool_info

        blas = [
            {**{k: str(v) for k, v in info.items()
                if k in ("user_api", "internal_api", "version", "num_threads",
                         "architecture", "prefix", "filepath")},
             "used_by": blas_owner(str(info.get("filepath", "")))}
            for info in threadpool_info()
        ]
    except Exception as exc:  # pragma: no cover - threadpoolctl is a dependency
        blas = [{"error": str(exc)}]
    backends = {name: {"works": ok, "detail": why} for name, (ok, why) in
                available_backends().items()}
    gpu = backends["cupy"]["detail"] if backends["cupy"]["works"] else None
    try:
        affinity = len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not on Linux
        affinity = os.cpu_count()
    return {
        "blas_kernel": blas_kernel(blas),
        "cpu": _cpu_model(),
        "logical_cores": os.cpu_count(),
        "usable_cores": affinity,
        "platform": platform.platform(),
        "blas": blas,
        "gpu": gpu,
        "backends": backends,
        "versions": _versions(),
    }
