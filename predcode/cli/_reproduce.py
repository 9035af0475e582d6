"""``predcode reproduce PAPER``: run a paper reproduction; ``--list`` says what there is."""

from __future__ import annotations

import argparse
import inspect
import sys
from dataclasses import asdict
from pathlib import Path
from typing import Any

from ._common import (
    HelpFormatter,
    UsageError,
    add_common,
    check_json_path,
    check_out_dir,
    text_stream,
    write_json,
)

__all__ = ["add_parser", "run", "listing"]

OPTIONS = {"backend": "--backend", "seed": "--seed", "random_state": "--seed",
           "quick": "--quick", "out": "--out"}

EXIT_CODES = """\
exit status:
  0  the reproduction ran and wrote report.md and report.json, whatever its
     claims say (a claim that does not hold is a result, marked NO/FAIL)
  1  --strict was given and at least one claim does not hold; or the run crashed
  2  bad input: an unknown or inapplicable option, a bad value, an --out or
     --json path that cannot be written (checked before any work), or an error
     the library reports about the settings"""


def listing() -> str:
    """One line per reproduction: name, description, 2-core run times, backends."""
    from ..reproduce import REPRODUCTIONS

    width = max(map(len, REPRODUCTIONS))
    lines = []
    for name, rec in REPRODUCTIONS.items():
        lines.append(f"  {name:{width}s}  {rec.description}")
        only = "" if "cupy" in rec.backends else \
            f"; --backend {'/'.join(b for b in rec.backends if b != 'auto')} only"
        lines.append(f"  {'':{width}s}  {rec.times}{only}")
    return "\n".join(lines)


def add_parser(sub: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Register ``reproduce``."""
    from ..backend import BACKENDS
    from ..reproduce import REPRODUCTIONS

    p = sub.add_parser(
        "reproduce", formatter_class=HelpFormatter,
        help="reproduce a classic paper's numbers and figures",
        description="Re-run a paper's experiments; write report.md, report.json and the "
                    "figures to --out, each number beside the paper's claim.",
        epilog=f"reproductions (wall time on 2 cores, full and --quick):\n{listing()}\n\n"
               f"{EXIT_CODES}")
    p.add_argument("paper", nargs="?", choices=list(REPRODUCTIONS), metavar="PAPER",
                   help="the reproduction to run (see --list)")
    p.add_argument("--list", action="store_true",
                   help="list the reproductions with their run times, then exit")
    add_common(p, backends=BACKENDS, backend="auto",
               out="output folder for report.md, report.json and figures (created)",
               json_help="write the report as JSON here too",
               backend_help="compute backend (each reproduction names the ones it can use "
                            "in --list)")
    p.add_argument("--quick", action="store_true",
                   help="smoke run: few epochs on a subset (not the paper's numbers)")
    p.add_argument("--strict", action="store_true",
                   help="exit with status 1 when any claim does not hold")
    p.set_defaults(handler=run, options=OPTIONS)
    return p


def _accepts(func: Any, name: str) -> bool:
    """Whether ``func`` takes the keyword ``name`` (or ``**kwargs``)."""
    try:
        params = inspect.signature(func).parameters.values()
    except (TypeError, ValueError):  # pragma: no cover - builtins
        return False
    return any(p.name == name or p.kind is p.VAR_KEYWORD for p in params)


def run(args: argparse.Namespace) -> int:
    """Check everything, run the reproduction, print its claims; see ``EXIT_CODES``."""
    from ..reproduce import REPRODUCTIONS, get_reproduction

    say = text_stream(args)
    if args.list:
        check_json_path(args.json)
        print(f"reproductions (wall time on 2 cores, full and --quick):\n{listing()}",
              file=say)
        if args.json is not None:
            write_json(args.json, {name: {**asdict(rec), "backends": list(rec.backends)}
                                   for name, rec in REPRODUCTIONS.items()}, say=say)
        return 0
    if args.paper is None:
        args.parser.error("the following arguments are required: PAPER (or --list)")
    if args.out is None:
        args.parser.error("the following arguments are required: --out")
    rec = REPRODUCTIONS[args.paper]
    if args.backend not in rec.backends:
        runs_on = " or ".join(b for b in rec.backends if b != "auto")
        raise UsageError(f"--backend {args.backend} does not apply to {args.paper}: it runs "
                         f"on {runs_on} only; use --backend {' or '.join(rec.backends)}")
    func = get_reproduction(args.paper)
    kwargs: dict[str, Any] = {"quick": args.quick, "backend": args.backend}
    if _accepts(func, "seed"):
        kwargs["seed"] = args.seed
    elif args.seed != 0:
        raise UsageError(f"--seed {args.seed} does not apply to {args.paper}: this "
                         "reproduction has fixed seeds; leave --seed out")
    check_out_dir(args.out)
    check_json_path(args.json)
    out: Path = args.out
    report = func(out, **kwargs)
    claims = report.get("claims", [])
    if report.get("quick"):
        print("quick smoke run (--quick): reduced settings, not the paper's numbers",
              file=say)
    for c in claims:
        mark = {True: "ok", False: "FAIL"}.get(c.get("holds"), "n/a")
        print(f"[{mark}] {c.get('claim', '?')}: {c.get('measured', '')}", file=say)
    for m in report.get("measurements", []):
        # no paper value: not a claim (never counted by --strict)
        check = f"; check {m['check']}: {'pass' if m['passes'] else 'fail'}" if (
            m.get("passes") is not None) else ""
        print(f"[measured] {m.get('quantity', '?')}: {m.get('measured', '')}{check}",
              file=say)
    for s in report.get("skipped", []):
        print(f"[skipped] {s}", file=say)
    wall = report.get("wall_time_s")
    took = f" ({wall:.1f} s)" if isinstance(wall, int | float) else ""
    print(f"wrote {out}/report.md, report.json and figures{took}", file=say)
    if args.json is not None:
        write_json(args.json, report, say=say)
    failed = [c for c in claims if c.get("holds") is False]
    if failed and args.strict:
        print(f"--strict: {len(failed)} of {len(claims)} claims do not hold", file=sys.stderr)
        return 1
    return 0
