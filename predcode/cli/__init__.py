"""The ``predcode`` command line: a thin layer over the library.

::

    predcode info [--json [PATH]]
    predcode train pcn --dataset digits --backend numba --epochs 60 --out results/pcn
    predcode bench pcn --sizes 784,300,300,10 --batch 64 --steps 20 --activation tanh \\
        --backend numba --json out.json
    predcode bench aif --states 4,16,64 --policies 16,64,256 --json aif.json
    predcode reproduce --list
    predcode reproduce whittington-bogacz-2017 --out results/wb2017 [--strict]

Every sub-command that produces results takes the same options: ``--json PATH``
(the machine-readable result; ``-`` is standard output, the text then goes to
standard error), ``--out DIR`` where it writes files (``train``, ``bench``,
``reproduce``), ``--seed`` (an integer from 0 to 2**32 - 1) and ``--backend``.
Each ``bench`` and ``train`` case has its own options, and ``--help`` shows each
option's default; an option that does not apply to the case (``bench aif
--sizes``, ``reproduce bogacz-2017 --backend cupy``) is an error.

Exit status:

0
    Success. A reproduction that ran and wrote its report exits 0 whatever its
    claims say: a claim that does not hold is a result.
1
    ``reproduce --strict`` and at least one claim does not hold; or a crash
    (an unexpected error, with its traceback).
2
    Bad input, reported in one line naming the option as typed: an unknown or
    inapplicable option (with the sub-command's usage), a bad value, an
    ``--out``/``--json`` path that is a file, under a file or not writable
    (checked before any work starts), an output that cannot be written, or an
    error the library reports about the settings.
130
    Interrupted (Ctrl-C).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterator, Sequence

from .._version import __version__
from ..exceptions import PredcodeError
from . import _bench, _info, _reproduce, _train
from ._common import UsageError, option_names

__all__ = ["main", "build_parser"]


def _leaves(parser: argparse.ArgumentParser) -> Iterator[argparse.ArgumentParser]:
    """Every parser that runs something (those without sub-commands of their own)."""
    subs = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    if not subs:
        yield parser
    for action in subs:
        for child in dict.fromkeys(action.choices.values()):
            yield from _leaves(child)


def build_parser() -> argparse.ArgumentParser:
    """The argument parser (exposed for the docs and tests)."""
    p = argparse.ArgumentParser(prog="predcode", description=(
        "Predictive-coding models on numpy, numba and CuPy: train, benchmark, reproduce."),
        epilog="'predcode COMMAND --help' lists a command's options with their defaults.")
    p.add_argument("--version", action="version", version=f"predcode {__version__}")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for module in (_info, _train, _bench, _reproduce):
        module.add_parser(sub)
    for leaf in _leaves(p):
        leaf.set_defaults(parser=leaf)
    return p


def _unknown(parser: argparse.ArgumentParser, leaf: argparse.ArgumentParser,
             extras: list[str]) -> str:
    """The error line for arguments the chosen sub-command does not take."""
    option = next((e.split("=", 1)[0] for e in extras if e.startswith("-")), None)
    if option:
        others = [o for o in _leaves(parser)
                  if o is not leaf and option in o._option_string_actions]
        parent = leaf.prog.rsplit(" ", 1)[0] + " "
        siblings = [o for o in others if o.prog.startswith(parent)]
        owners = [o.prog.removeprefix("predcode ") for o in siblings or others]
        if owners:
            return (f"{option} does not apply to '{leaf.prog}' (it is an option of "
                    f"{', '.join(owners)}); see '{leaf.prog} --help'")
    return f"unrecognized arguments: {' '.join(extras)}"


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``predcode`` console script; returns the exit status.

    See the module docstring for the exit status.
    """
    parser = build_parser()
    args, extras = parser.parse_known_args(argv)
    leaf: argparse.ArgumentParser = args.parser
    if extras:
        leaf.error(_unknown(parser, leaf, extras))  # usage + one line, exit 2
    options: dict[str, str] = getattr(args, "options", {})
    try:
        return args.handler(args)
    except UsageError as exc:
        message = str(exc)
    except PredcodeError as exc:
        message = option_names(str(exc), options)
    except OSError as exc:
        where = f" {exc.filename}" if exc.filename else ""
        message = f"cannot write{where}: {exc.strerror or exc}"
    except KeyboardInterrupt:
        print(f"{leaf.prog}: interrupted", file=sys.stderr)
        return 130
    print(f"{leaf.prog}: error: {message}", file=sys.stderr)
    return 2
