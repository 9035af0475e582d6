"""Shared writing of a reproduction's report: JSON, and Markdown with the claims table."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["claim", "write_report"]


def claim(text: str, paper: str, measured: str, holds: Any) -> dict[str, Any]:
    """One row of the claims table ("claim | paper | predcode | holds")."""
    return {"claim": text, "paper": paper, "measured": measured, "holds": bool(holds)}


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


def write_report(out: Path, report: dict[str, Any], title: str, figures: list[str],
                 notes: list[str] | None = None) -> None:
    """Write ``report.json`` and ``report.md`` (claims table, notes, machine, figures)."""
    (out / "report.json").write_text(json.dumps(_plain(report), indent=2))
    lines = [f"# {title}", "", "| claim | paper | predcode | holds |", "|---|---|---|---|"]
    for c in report["claims"]:
        lines.append(f"| {c['claim']} | {c['paper']} | {c['measured']} | "
                     f"{'yes' if c['holds'] else 'NO'} |")
    lines.append("")
    for note in notes or []:
        lines.append(f"- {note}")
    m = report["machine"]
    backend = report.get("backend", "numpy")
    lines += ["", f"Total wall time: {report['wall_time_s']:.1f} s on {m['cpu']} "
              f"({m['usable_cores']} cores), backend {backend}.", "",
              "Figures: " + ", ".join(f"`{f}`" for f in figures) + ".", ""]
    (out / "report.md").write_text("\n".join(lines))
