"""Shared writing of a reproduction's report: JSON, and Markdown with the claims table.

Every reproduction writes ``report.json`` and ``report.md`` through
:func:`write_report`. A claim (:func:`claim`) is a statement a paper makes,
the value predcode measured and whether it holds *with a stated margin*
(the ``margin`` column): :func:`at_least` and :func:`at_most` compare two
numbers so that an exact tie does not count as "at least as well". A value
with no paper counterpart is a :func:`measurement`, shown in its own table,
never among the claims. A quick run says so under the title and in the JSON
(``"quick": true``); the seed is recorded in both.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["claim", "measurement", "at_least", "at_most", "write_report", "QUICK_BANNER"]

#: The line under the title of a ``--quick`` report.
QUICK_BANNER = ("**Quick smoke run (`--quick`): reduced settings, not the paper's numbers.**")

#: Paper values that mean "no paper value" (such a row is a measurement, not a claim).
_NO_PAPER = {"", "-", "—", "not reported", "(not reported)", "n/a"}


def _no_paper(paper: str) -> bool:
    return paper.strip().lower() in _NO_PAPER


def claim(text: str, paper: str, measured: str, holds: Any,
          margin: str | None = None) -> dict[str, Any]:
    """One row of the claims table (``claim | paper | predcode | margin | holds``).

    Parameters
    ----------
    text : str
        The claim.
    paper : str
        What the paper reports (a claim needs one; see :func:`measurement`).
    measured : str
        What predcode measured.
    holds : bool
        Whether the claim holds with the stated margin.
    margin : str, optional
        The test and its margin, as shown in the table (e.g. from :func:`at_least`).

    Returns
    -------
    dict
        ``{"claim", "paper", "measured", "margin", "holds"}``.

    Raises
    ------
    ValueError
        If ``paper`` is empty or "not reported" (use :func:`measurement`).
    """
    if _no_paper(paper):
        raise ValueError(f"claim {text!r}: paper={paper!r} is not a paper value; a row "
                         "without one is a measurement: use measurement(text, measured)")
    return {"claim": text, "paper": paper, "measured": measured,
            "margin": margin or "-", "holds": bool(holds)}


def measurement(text: str, measured: str, check: str | None = None,
                passes: Any = None) -> dict[str, Any]:
    """One row of the "measured (no paper value)" table.

    ``check`` states an optional sanity check (e.g. "KL <= 0.10 bits") and
    ``passes`` its outcome; neither makes the row a claim.
    """
    return {"quantity": text, "measured": measured, "check": check or "-",
            "passes": None if passes is None else bool(passes)}


def _fmt(v: float) -> str:
    return f"{v:.3g}"


def at_least(a: float, b: float, margin: float, *, unit: str = "",
             scale: float = 1.0) -> tuple[bool, str]:
    """``a`` is at least ``b`` plus a positive ``margin``: (holds, margin text).

    An exact tie does not hold. ``scale`` and ``unit`` only format the text
    (e.g. ``scale=100, unit=" points"`` for accuracies given as fractions).
    """
    if not margin > 0:
        raise ValueError(f"at_least: margin={margin!r} must be > 0 (a tie is not a win)")
    d = (float(a) - float(b)) * scale
    return (bool(float(a) - float(b) >= margin),
            f"difference >= +{_fmt(margin * scale)}{unit} (is {d:+.3g}{unit})")


def at_most(a: float, b: float, margin: float, *, unit: str = "",
            scale: float = 1.0) -> tuple[bool, str]:
    """``a`` is at most ``b`` minus a positive ``margin`` (lower is better): (holds, text)."""
    if not margin > 0:
        raise ValueError(f"at_most: margin={margin!r} must be > 0 (a tie is not a win)")
    d = (float(b) - float(a)) * scale
    return (bool(float(b) - float(a) >= margin),
            f"lower by >= {_fmt(margin * scale)}{unit} (is {d:+.3g}{unit})")


def _plain(obj: Any) -> Any:
    if isinstance(obj, dict):
        return {str(k): _plain(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_plain(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, np.generic):
        return obj.item()
    return obj


def claims_table(claims: list[dict[str, Any]]) -> list[str]:
    """Markdown lines of the claims table."""
    lines = ["| claim | paper | predcode | margin | holds |", "|---|---|---|---|---|"]
    for c in claims:
        lines.append(f"| {c['claim']} | {c['paper']} | {c['measured']} | "
                     f"{c.get('margin', '-')} | {'yes' if c['holds'] else 'NO'} |")
    return lines


def measurements_table(rows: list[dict[str, Any]]) -> list[str]:
    """Markdown lines of the "measured (no paper value)" table."""
    lines = ["## Measured (no paper value)", "", "| quantity | predcode | check | passes |",
             "|---|---|---|---|"]
    for r in rows:
        p = r.get("passes")
        lines.append(f"| {r['quantity']} | {r['measured']} | {r.get('check', '-')} | "
                     f"{'-' if p is None else ('pass' if p else 'fail')} |")
    return lines


def write_report(out: Path, report: dict[str, Any], title: str, figures: list[str],
                 notes: list[str] | None = None, sections: list[str] | None = None,
                 footer: list[str] | None = None) -> None:
    """Write ``report.json`` and ``report.md``.

    Parameters
    ----------
    out : Path
        The output folder (exists).
    report : dict
        Needs ``claims`` (rows of :func:`claim`), ``quick``, ``seed``,
        ``wall_time_s`` and ``machine``; optional ``measurements`` (rows of
        :func:`measurement`) and ``backend``.
    title : str
        The Markdown title.
    figures : list of str
        File names of the figures.
    notes : list of str, optional
        Bullets under the tables.
    sections : list of str, optional
        Further Markdown blocks (tables with their headings), after the notes.
    footer : list of str, optional
        Lines after the wall-time line (e.g. settings).
    """
    for key in ("claims", "quick", "seed", "wall_time_s", "machine"):
        if key not in report:
            raise KeyError(f"write_report: the report has no {key!r} entry")
    for c in report["claims"]:
        if _no_paper(str(c["paper"])):
            raise ValueError(f"write_report: claim {c['claim']!r} has no paper value; "
                             "put it in report['measurements'] (measurement())")
    (out / "report.json").write_text(json.dumps(_plain(report), indent=2, default=float))
    lines = [f"# {title}", ""]
    if report["quick"]:
        lines += [QUICK_BANNER, ""]
    lines += claims_table(report["claims"]) + [""]
    if report.get("measurements"):
        lines += measurements_table(report["measurements"]) + [""]
    for note in notes or []:
        lines.append(f"- {note}")
    if notes:
        lines.append("")
    for block in sections or []:
        lines += [block.rstrip("\n"), ""]
    m = report["machine"]
    backend = report.get("backend", "numpy")
    lines += [f"Total wall time: {report['wall_time_s']:.1f} s on {m['cpu']} "
              f"({m['usable_cores']} cores), backend {backend}, seed {report['seed']}"
              + (" (quick run)." if report["quick"] else "."), ""]
    for line in footer or []:
        lines += [line, ""]
    lines += ["Figures: " + ", ".join(f"`{f}`" for f in figures) + ".", ""]
    (out / "report.md").write_text("\n".join(lines))
