"""``predcode info``: versions, backends, CPU, BLAS (and whose it is), GPU."""

from __future__ import annotations

import argparse

from .._version import __version__
from ._common import HelpFormatter, check_json_path, text_stream, write_json

__all__ = ["add_parser", "run"]


def add_parser(sub: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Register ``info``."""
    p = sub.add_parser("info", formatter_class=HelpFormatter,
                       help="versions, working backends (and why others fail), CPU, BLAS, GPU",
                       description="Describe this machine and which backends work on it.")
    p.add_argument("--json", metavar="PATH", nargs="?", const="-", default=None,
                   help="write the description as JSON to PATH ('-' or no PATH: standard "
                        "output, instead of the text)")
    from ..backend import BACKENDS

    p.add_argument("--backend", choices=BACKENDS, default=None,
                   help="also say which backend this name runs on here; exit with status 1 "
                        "when it does not work")
    p.set_defaults(handler=run, options={"json": "--json", "backend": "--backend"})
    return p


def run(args: argparse.Namespace) -> int:
    """Print (and with ``--json`` write) :func:`predcode.machine.machine_info`."""
    from ..machine import machine_info

    check_json_path(args.json)
    info = machine_info()
    status = 0
    if args.backend is not None:
        info["backend"] = _chosen(args.backend, info)
        status = 0 if info["backend"]["works"] else 1
    if args.json == "-":
        write_json("-", info)
        return status
    out = text_stream(args)
    print(f"predcode {__version__}  (python {info['versions']['python']})", file=out)
    print(f"CPU      {info['cpu']}  ({info['usable_cores']} usable of "
          f"{info['logical_cores']} logical cores)", file=out)
    for b in info["blas"]:
        if "error" in b:
            print(f"BLAS     unknown ({b['error']})", file=out)
            continue
        print(f"BLAS     {b.get('internal_api', '?')} {b.get('version', '')} "
              f"[{b.get('architecture', '')}] threads={b.get('num_threads', '?')}  "
              f"used by {b.get('used_by', '?')}", file=out)
    print(f"kernel   {info['blas_kernel']['summary']} (numpy's matrix products)", file=out)
    print(f"GPU      {info['gpu'] or 'none usable (see cupy below)'}", file=out)
    print("backends", file=out)
    for name, st in info["backends"].items():
        mark = "ok " if st["works"] else "no "
        print(f"  {mark} {name:6s} {st['detail']}", file=out)
    print("versions " + ", ".join(f"{k} {v}" for k, v in info["versions"].items()), file=out)
    if args.backend is not None:
        b = info["backend"]
        print(f"--backend {args.backend}: {b['name']} "
              f"{'works' if b['works'] else 'does not work'} ({b['detail']})", file=out)
    if args.json is not None:
        write_json(args.json, info, say=out)
    return status


def _chosen(name: str, info: dict) -> dict:
    """What ``--backend name`` means here: the backend it runs on, and whether it works."""
    from ..backend import resolve_backend
    from ..exceptions import PredcodeError

    requested = name
    if name == "auto":
        try:
            name = resolve_backend("auto")
        except PredcodeError:  # pragma: no cover - numpy always works
            name = "numpy"
    st = info["backends"][name]
    return {"requested": requested, "name": name,
            "works": st["works"], "detail": st["detail"]}
