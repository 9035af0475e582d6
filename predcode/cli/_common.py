"""What every sub-command shares: argument types, help format, output paths, errors."""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
from pathlib import Path
from typing import Any, TextIO

__all__ = ["UsageError", "HelpFormatter", "add_common", "int_list", "sizes", "positive_int",
           "positive_float", "seed", "check_out_dir", "check_json_path", "write_json",
           "option_names", "text_stream", "SEED_MAX"]

#: Seeds are what numpy's and scikit-learn's ``random_state`` accept.
SEED_MAX = 2**32 - 1


class UsageError(Exception):
    """Bad input found by the CLI after parsing: one line, exit status 2."""


class HelpFormatter(argparse.HelpFormatter):
    """Wrap one-paragraph texts, keep multi-line ones (the epilogs) as written; end
    each option's help with its default.

    Defaults that say nothing (``None``, ``False`` of a flag) are left out;
    tuples are shown as the user types them (``784,300,300,10``).
    """

    def _fill_text(self, text: str, width: int, indent: str) -> str:
        if "\n" in text:
            return "".join(indent + line for line in text.splitlines(keepends=True))
        return super()._fill_text(text, width, indent)

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        default = action.default
        if ("%(default)" in text or "default:" in text or default is None or default is False
                or default is argparse.SUPPRESS or not action.option_strings):
            return text
        if isinstance(default, tuple | list):
            default = ",".join(str(v) for v in default)
        return f"{text} (default: {str(default).replace('%', '%%')})"


def int_list(example: str, what: str = "positive integers", min_len: int = 1) -> Any:
    """argparse type: comma-separated positive integers, at least ``min_len`` of them."""

    def parse(text: str) -> tuple[int, ...]:
        try:
            values = tuple(int(v) for v in text.split(","))
        except ValueError:
            raise argparse.ArgumentTypeError(
                f"expected comma-separated {what} such as {example}, got {text!r}"
            ) from None
        if len(values) < min_len or min(values) < 1:
            least = f"at least {min_len} " if min_len > 1 else ""
            raise argparse.ArgumentTypeError(
                f"expected {least}{what} such as {example}, got {text!r}"
            )
        return values

    return parse


sizes = int_list("784,300,300,10", "positive layer widths", min_len=2)


def _positive(kind: type) -> Any:
    """argparse type: a positive (finite) ``kind`` (int or float)."""
    word = "integer" if kind is int else "finite number"

    def parse(text: str):
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a positive {word}, got {text!r}") from None
        if not 0 < value < float("inf"):
            raise argparse.ArgumentTypeError(f"expected a positive {word}, got {text!r}")
        return value

    return parse


positive_int, positive_float = _positive(int), _positive(float)


def seed(text: str) -> int:
    """argparse type: an integer seed in ``0 .. 2**32 - 1``."""
    try:
        value = int(text)
    except ValueError:
        value = None
    if value is None or not 0 <= value <= SEED_MAX:
        raise argparse.ArgumentTypeError(
            f"expected an integer from 0 to {SEED_MAX} (2**32 - 1), got {text!r}")
    return value


def add_common(p: argparse.ArgumentParser, *, backends: tuple[str, ...], backend: str,
               out: str | None = None, json_help: str = "write the result as JSON here",
               with_seed: bool = True, out_required: bool = False,
               backend_help: str = "compute backend") -> None:
    """The options every results-producing sub-command shares, spelled the same way."""
    if out is not None:
        p.add_argument("--out", type=Path, metavar="DIR", required=out_required, help=out)
    p.add_argument("--json", metavar="PATH", default=None,
                   help=f"{json_help} ('-' = standard output)")
    if with_seed:
        p.add_argument("--seed", type=seed, default=0,
                       help=f"random seed, 0 to {SEED_MAX}")
    p.add_argument("--backend", choices=backends, default=backend, help=backend_help)


def _nearest_existing(path: Path) -> Path:
    """``path`` or its closest ancestor that exists."""
    path = path.absolute()
    while not path.exists() and path != path.parent:
        path = path.parent
    return path


def _check_creatable(path: Path, option: str, shown: str) -> None:
    """Everything above ``path`` that exists is a writable folder."""
    base = _nearest_existing(path.parent)
    if not base.is_dir():
        raise UsageError(f"{option} {shown}: {base} is a file, so nothing can be created "
                         "under it; choose another path")
    if not os.access(base, os.W_OK | os.X_OK):
        raise UsageError(f"{option} {shown}: cannot write in {base} (permission denied); "
                         "choose a folder you can write to")


def check_out_dir(path: Path | None, option: str = "--out") -> None:
    """Fail before any work when ``path`` cannot be (or become) a writable folder."""
    if path is None:
        return
    shown = str(path)
    if path.exists():
        if not path.is_dir():
            raise UsageError(f"{option} {shown}: is an existing file, not a folder; give a "
                             "folder (it is created when missing)")
        if not os.access(path, os.W_OK | os.X_OK):
            raise UsageError(f"{option} {shown}: cannot write in this folder (permission "
                             "denied); choose a folder you can write to")
        return
    _check_creatable(path, option, shown)


def check_json_path(path: str | None, option: str = "--json") -> None:
    """Fail before any work when the JSON file ``path`` cannot be written (``-`` = stdout)."""
    if path is None or path == "-":
        return
    p = Path(path)
    if p.is_dir():
        raise UsageError(f"{option} {path}: is a folder; give a file name such as "
                         f"{Path(path) / 'result.json'}")
    if p.exists():
        if not os.access(p, os.W_OK):
            raise UsageError(f"{option} {path}: the file is not writable (permission denied)")
        return
    _check_creatable(p, option, path)


def _jsonable(obj: Any) -> Any:
    """numpy scalars and arrays, paths and sets in results, as JSON values."""
    if hasattr(obj, "tolist"):
        return obj.tolist()
    if isinstance(obj, Path):
        return str(obj)
    if isinstance(obj, set | frozenset):
        return sorted(obj)
    raise TypeError(f"not JSON-serialisable: {type(obj).__name__}")


def write_json(target: str | Path, data: Any, *, say: TextIO | None = None) -> None:
    """Write ``data`` as JSON to the file ``target`` (``"-"``: standard output)."""
    text = json.dumps(data, indent=2, default=_jsonable)
    if str(target) == "-":
        print(text)
        return
    path = Path(target)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text + "\n")
    if say is not None:
        print(f"wrote {path}", file=say)


def text_stream(args: argparse.Namespace) -> TextIO:
    """Where the human-readable lines go: stderr when the JSON goes to stdout."""
    return sys.stderr if getattr(args, "json", None) == "-" else sys.stdout


_MODULES = {"predcode", "np", "numpy", "cupy", "numba", "scipy", "os", "sys"}
_ASSIGN = re.compile(r"(?<![\w.\-])([A-Za-z_][A-Za-z0-9_]*)=")
_NAME = re.compile(r"\b(?:[A-Za-z_][A-Za-z0-9_]*\.)?([A-Za-z_][A-Za-z0-9_]*)\b")


def option_names(message: str, options: dict[str, str]) -> str:
    """Rename the library's parameter names to the options the user typed.

    ``"bench_pcn.backend: ..."`` becomes ``"--backend: ..."``: a leading
    ``owner.param`` or ``param`` is replaced when ``owner.param`` or ``param`` is
    a key of ``options`` (→ the option), and so is every later ``owner.param``
    and every ``param=`` (``"use lr=0.1"`` → ``"use --lr=0.1"``).
    """
    def lookup(whole: str, name: str, *, dotted_only: bool) -> str | None:
        owner = whole[: -len(name) - 1] if "." in whole else ""
        if (dotted_only and not owner) or owner in _MODULES:
            return None
        return options.get(whole, options.get(name))

    head = _NAME.match(message)
    if head:
        new = lookup(head.group(0), head.group(1), dotted_only=False)
        if new:
            message = new + message[head.end():]
    message = _NAME.sub(lambda m: lookup(m.group(0), m.group(1), dotted_only=True)
                        or m.group(0), message)
    # advice such as "use lr=1e-3" in the spelling the CLI takes: "--lr=1e-3"
    return _ASSIGN.sub(lambda m: f"{options[m.group(1)]}=" if m.group(1) in options
                       else m.group(0), message)
