"""Version and thread reports for the JAX-side peer workers (``info``), and XLA thread flags.

Importing this module does not import JAX: :func:`set_xla_threads` must run before
JAX is first imported (XLA reads ``XLA_FLAGS`` once, when its CPU client starts).
"""

from __future__ import annotations

import os
from importlib.metadata import PackageNotFoundError, version
from typing import Any

__all__ = ["set_xla_threads", "versions", "threads"]


def set_xla_threads(n: int | None) -> str:
    """Limit XLA's CPU threads to ``n`` (``None``: leave everything as it is); returns XLA_FLAGS.

    XLA sizes its CPU thread pools from the cores the process may run on, so the
    process's CPU affinity is narrowed to the first ``n`` of its allowed cores; for
    ``n = 1`` Eigen's intra-op threading is also switched off
    (``--xla_cpu_multi_thread_eigen=false``). Must run before JAX is imported.
    """
    flags = os.environ.get("XLA_FLAGS", "")
    if n is not None:
        allowed = sorted(os.sched_getaffinity(0))
        if n > len(allowed):
            raise SystemExit(f"--threads {n}: only {len(allowed)} cores allowed ({allowed})")
        os.sched_setaffinity(0, allowed[:n])
        if n == 1:
            flags = f"{flags} --xla_cpu_multi_thread_eigen=false".strip()
            os.environ["XLA_FLAGS"] = flags
    return flags


def versions(packages: tuple[str, ...]) -> dict[str, str]:
    """Installed versions of ``packages`` (distribution names), plus Python and JAX's backend."""
    import platform

    out: dict[str, str] = {"python": platform.python_version()}
    for name in packages:
        dist = {"pymdp": "inferactively-pymdp"}.get(name, name)
        try:
            out[name] = version(dist)
        except PackageNotFoundError:
            out[name] = "not installed"
    try:
        import jax

        out["jax_backend"] = jax.default_backend()
        out["jax_devices"] = ", ".join(str(d) for d in jax.devices())
        out["jax_enable_x64"] = str(bool(jax.config.jax_enable_x64))
    except Exception as exc:  # noqa: BLE001 - reported, not fatal
        out["jax_backend"] = f"unavailable: {exc}"
    return out


def threads(requested: int | None, flags: str) -> dict[str, Any]:
    """Thread settings the worker runs under: XLA flags, CPU affinity, requested count."""
    try:
        affinity = sorted(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        affinity = None
    return {"requested": requested, "XLA_FLAGS": flags or os.environ.get("XLA_FLAGS", ""),
            "cpu_affinity": affinity, "os_cpu_count": os.cpu_count(),
            "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS")}
