"""Every figure a reproduction writes is one a scientist would accept (issue 13, item 7).

Each reproduction runs once at ``quick=True`` (a module-scoped fixture) with
``matplotlib.figure.Figure.savefig`` wrapped: the wrapper draws the figure, records
what is wrong with it, then calls the real ``savefig``, so the real plotting code is
what is checked. The rules, per saved figure (colour-bar axes are checked only by
rule 3; invisible axes are ignored):

1. **Axis labels.** An axis (x or y) that shows numeric tick labels has a non-empty
   label. An axis without tick labels needs none when its axes holds only images
   (weight tiles, maps) or when an axes it shares that axis with is labelled
   (``label_outer`` grids); otherwise an axes that plots data has both labels.
   Categorical tick labels (words, e.g. model names) name themselves.
2. **Titles.** The figure has a suptitle, or every axes has a title.
3. **Colour bars.** Every colour-mapped image (``AxesImage`` of a 2-D array,
   ``QuadMesh``) is covered by a colour bar: its own, or that of another image in the
   figure with the same colormap and the same ``(vmin, vmax)``. A colour bar has a
   label (what the colour means, with units). The one exception is tiles of weights
   each scaled on its own: images whose gid is ``"weight-tile"`` in a figure whose
   text states the scale (contains the word "scaled"). RGB images are exempt.
4. **Legends match the lines.** Every legend entry is non-empty and names an artist
   drawn in its axes (for a figure legend: in the figure) with the entry's colour;
   in an axes with a legend every line style (colour, line style) drawn is explained
   by an entry; an axes drawing two or more line styles has a legend (its own or a
   figure legend). A zero baseline (a straight line at x = 0 or y = 0) needs no
   entry. No text in the figure names a colour ("blue: correct model"):
   colours change and the legend is what says which line is which.
5. **Integer ticks for counts.** An axis whose label counts things (trials, epochs,
   iterations, episodes, steps, sweeps, seeds, updates, patterns, samples, "number
   of", "count"; not after "per" or "fraction of": those are rates) on a linear scale
   has integer tick locations.
6. **Spread across seeds.** An axes whose text says it shows a mean over seeds shows
   the spread too: error bars (``errorbar``) or a band (``fill_between``).
7. **Nothing clipped or overlapping.** Every visible text (titles, labels, tick
   labels, legend entries, annotations) lies inside the saved figure (checked
   against the figure's box unless ``bbox_inches="tight"`` is passed, which saves
   the box of all artists); no title or axis label overlaps another axes' title,
   axis label or tick labels.

Running all twelve reproductions at quick settings costs about 95 s of CPU (2 to 3
minutes of wall time on a busy 2-core machine); the five over ~8 s (:data:`SLOW`) are
marked ``slow`` (the slow suite runs in CI too), the other seven (~35 s) stay in the
fast suite.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

import matplotlib
import numpy as np
import pytest

matplotlib.use("Agg")

from matplotlib import colors as mcolors  # noqa: E402
from matplotlib.collections import PolyCollection, QuadMesh  # noqa: E402
from matplotlib.container import ErrorbarContainer  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402
from matplotlib.image import AxesImage  # noqa: E402
from matplotlib.lines import Line2D  # noqa: E402
from matplotlib.text import Text  # noqa: E402

from predcode.reproduce import REPRODUCTIONS, get_reproduction  # noqa: E402

#: reproductions taking more than ~8 s at quick settings on 2 cores run in the slow suite.
SLOW = {"lewm-two-rooms", "ijepa-digits", "rao-ballard-1999", "whittington-bogacz-2017",
        "friston-2008-dem", "hinton-1995-bars"}

COLOUR_WORDS = re.compile(r"\b(blue|red|green|orange|purple|black|gr[ae]y|yellow|cyan|"
                          r"magenta|pink|brown)\b", re.IGNORECASE)
COUNT_WORDS = re.compile(r"(?<!per )(?<!fraction of )\b(trials?|epochs?|iterations?|episodes?|"
                         r"steps?|sweeps?|seeds?|updates?|patterns?|samples?|count|"
                         r"number of)\b", re.IGNORECASE)
SEED_MEAN = re.compile(r"\bmean\b.*\bseeds?\b|\bseeds?\b.*\bmean\b", re.IGNORECASE)
NUMBER = re.compile(r"^[\s\u2212+\-−]*[\d.,]+(e[\u2212+\-−]?\d+)?%?$|^\$.*\d.*\$$",
                    re.IGNORECASE)


@dataclass
class Saved:
    """The problems found in one saved figure, by rule."""

    name: str
    problems: dict[str, list[str]] = field(default_factory=dict)

    def add(self, rule: str, what: str) -> None:
        self.problems.setdefault(rule, []).append(f"{self.name}: {what}")


def _undrawn(fig) -> set:
    """Tick labels matplotlib keeps but does not draw (ticks outside the view limits)."""
    out = set()
    for ax in fig.axes:
        for axis in (ax.xaxis, ax.yaxis):
            lo, hi = sorted(axis.get_view_interval())
            tol = 1e-9 * max(1.0, abs(hi - lo))
            for tick in axis.get_major_ticks() + axis.get_minor_ticks():
                loc = tick.get_loc()
                if loc is None or not (lo - tol <= loc <= hi + tol):
                    out.update((tick.label1, tick.label2))
    return out


def _texts(obj, undrawn: set = frozenset()) -> list[Text]:
    return [t for t in obj.findobj(Text) if t.get_visible() and t.get_text().strip()
            and t not in undrawn]


def _axes_name(ax, i: int) -> str:
    return f"axes {i} ({ax.get_title()!r})" if ax.get_title() else f"axes {i}"


def _colorbar_axes(fig) -> set:
    cax = {ax for ax in fig.axes if getattr(ax, "_colorbar", None) is not None}
    for ax in fig.axes:
        for m in _mappables(ax) + list(ax.collections):
            cb = getattr(m, "colorbar", None)
            if cb is not None:
                cax.add(cb.ax)
    return cax


def _mappables(ax) -> list:
    out = [im for im in ax.images if isinstance(im, AxesImage) and im.get_array() is not None
           and np.ndim(im.get_array()) == 2]
    out += [c for c in ax.collections if isinstance(c, QuadMesh)]
    return out


def _drawn_ticks(axis) -> list[Text]:
    lo, hi = sorted(axis.get_view_interval())
    tol = 1e-9 * max(1.0, abs(hi - lo))
    return [lab for tick in axis.get_major_ticks() + axis.get_minor_ticks()
            if tick.get_loc() is not None and lo - tol <= tick.get_loc() <= hi + tol
            for lab in (tick.label1, tick.label2)
            if lab.get_visible() and lab.get_text().strip()]


def _tick_labels(axis) -> list[str]:
    return [t.get_text() for t in _drawn_ticks(axis)]


def _is_numeric(labels: list[str]) -> bool:
    return any(NUMBER.match(s.strip()) for s in labels)


def _style(line: Line2D) -> tuple:
    return (mcolors.to_hex(line.get_color()), line.get_linestyle(), line.get_marker())


def _zero_baseline(line: Line2D) -> bool:
    """A straight line at y = 0 or x = 0 (``axhline(0)``): it needs no legend entry."""
    x, y = np.asarray(line.get_xdata(), float), np.asarray(line.get_ydata(), float)
    return x.size == 2 and (bool(np.all(y == 0)) or bool(np.all(x == 0)))


def _errorbar_lines(ax) -> set:
    out = set()
    for c in ax.containers:
        if isinstance(c, ErrorbarContainer):
            data, caps, _ = c.lines
            out.update(caps)
    return out


def _has_spread(ax) -> bool:
    return (any(isinstance(c, ErrorbarContainer) for c in ax.containers)
            or any(isinstance(c, PolyCollection) and not isinstance(c, QuadMesh)
                   for c in ax.collections))


def _artist_colour(artist):
    for getter in ("get_color", "get_facecolor", "get_edgecolor"):
        if hasattr(artist, getter):
            try:
                c = np.asarray(mcolors.to_rgba_array(getattr(artist, getter)()))
            except (ValueError, TypeError):
                continue
            if len(c):
                return tuple(np.round(c[0][:3], 3))
    return None


def check_figure(fig: Figure, name: str, kwargs: dict) -> Saved:
    """Check one figure against the module's rules; return its problems."""
    s = Saved(name)
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    cax = _colorbar_axes(fig)
    undrawn = _undrawn(fig)
    axes = [ax for ax in fig.axes if ax.get_visible() and ax not in cax]
    suptitle = fig._suptitle is not None and fig._suptitle.get_text().strip()
    legend_axes = [leg for leg in fig.legends]

    # 1. labels, 2. titles
    for i, ax in enumerate(axes):
        an = _axes_name(ax, i)
        if not (suptitle or ax.get_title().strip() or ax.get_title("left").strip()):
            s.add("titles", f"{an} has no title and the figure no suptitle")
        if not ax.axison:
            continue
        only_images = bool(ax.images) and not (ax.lines or ax.collections or ax.patches)
        for which, axis, label, shared in (
                ("x", ax.xaxis, ax.get_xlabel(), ax.get_shared_x_axes()),
                ("y", ax.yaxis, ax.get_ylabel(), ax.get_shared_y_axes())):
            if label.strip():
                continue
            ticks = _tick_labels(axis)
            if ticks:
                if _is_numeric(ticks):
                    s.add("labels", f"{an}: the {which} axis has numbers but no label")
                continue
            if only_images:
                continue
            sib = [o for o in shared.get_siblings(ax) if o is not ax]
            if any((o.get_xlabel() if which == "x" else o.get_ylabel()).strip() for o in sib):
                continue
            if ax.lines or ax.collections or ax.patches:
                s.add("labels", f"{an}: plots data but the {which} axis has no label")

    # 3. colour bars
    all_maps = [m for ax in fig.axes for m in _mappables(ax)]
    covered = [(m.get_cmap().name, m.norm.vmin, m.norm.vmax) for m in all_maps
               if m.colorbar is not None]
    stated = any("scaled" in t.get_text().lower() for t in _texts(fig))
    for i, ax in enumerate(axes):
        for m in _mappables(ax):
            if m.get_gid() == "weight-tile" and stated:
                continue
            if m.colorbar is None and (m.get_cmap().name, m.norm.vmin, m.norm.vmax) not in covered:
                s.add("colour bars", f"{_axes_name(ax, i)}: image without a colour bar")
    for ax in cax:
        if not (ax.get_ylabel().strip() or ax.get_xlabel().strip()):
            s.add("colour bars", "a colour bar has no label")

    # 4. legends
    for t in _texts(fig):
        if COLOUR_WORDS.search(t.get_text()):
            s.add("legends", f"text {t.get_text()!r} names a colour")
    for i, ax in enumerate(axes):
        an = _axes_name(ax, i)
        skip = _errorbar_lines(ax)
        lines = [ln for ln in ax.lines if ln.get_visible() and ln not in skip
                 and not _zero_baseline(ln)]
        leg = ax.get_legend()
        legends = ([leg] if leg is not None else []) + legend_axes
        for lg in legends:
            pool = ([a for o in axes for a in (o.lines + o.collections + o.patches
                                               + o.containers)]
                    if lg in legend_axes else ax.lines + ax.collections + ax.patches
                    + ax.containers)
            if lg in legend_axes and i:
                continue  # a figure legend is checked once
            by_label: dict[str, list] = {}
            for a in pool:
                lab = a.get_label() if hasattr(a, "get_label") else None
                if lab and not lab.startswith("_"):
                    by_label.setdefault(lab, []).append(a)
            for text, handle in zip(lg.get_texts(), lg.legend_handles, strict=False):
                lab = text.get_text()
                if not lab.strip():
                    s.add("legends", f"{an}: an empty legend entry")
                    continue
                if lab not in by_label:
                    s.add("legends", f"{an}: legend entry {lab!r} names no drawn artist")
                    continue
                hc = _artist_colour(handle)
                if hc is not None and all(_artist_colour(a) not in (hc, None)
                                          for a in by_label[lab]):
                    s.add("legends", f"{an}: legend entry {lab!r} has another colour than "
                                     "its artist")
        if leg is not None:
            entries = {t.get_text() for t in leg.get_texts()}
            shown = {_style(ln) for ln in lines if ln.get_label() in entries}
            shown |= {_style(c.lines[0]) for c in ax.containers
                      if isinstance(c, ErrorbarContainer) and c.lines[0] is not None
                      and c.get_label() in entries}
            for ln in lines:
                if _style(ln) not in shown and ln.get_xydata().size:
                    s.add("legends", f"{an}: a line ({_style(ln)[0]}, {ln.get_linestyle()}) "
                                     "is not explained by the legend")
                    break
        elif not legend_axes and len({_style(ln)[:2] for ln in lines}) >= 2:
            s.add("legends", f"{an}: {len({_style(ln)[:2] for ln in lines})} line styles and "
                             "no legend")

    # 5. integer ticks, 6. spread across seeds
    for i, ax in enumerate(axes):
        an = _axes_name(ax, i)
        for which, axis, label, lim, scale in (
                ("x", ax.xaxis, ax.get_xlabel(), ax.get_xlim(), ax.get_xscale()),
                ("y", ax.yaxis, ax.get_ylabel(), ax.get_ylim(), ax.get_yscale())):
            if scale != "linear" or not COUNT_WORDS.search(label) or not ax.axison:
                continue
            lo, hi = sorted(lim)
            locs = [t for t in axis.get_ticklocs() if lo - 1e-9 <= t <= hi + 1e-9]
            if _tick_labels(axis) and any(abs(t - round(t)) > 1e-9 for t in locs):
                s.add("integer ticks", f"{an}: the {which} axis counts ({label!r}) but has "
                                       f"ticks {[float(t) for t in locs]}")
        words = " ".join(t.get_text() for t in _texts(ax))
        if SEED_MEAN.search(words) and not _has_spread(ax):
            s.add("error bars", f"{an}: a mean over seeds without error bars or a band")

    # 7. clipped, overlapping
    if kwargs.get("bbox_inches") != "tight":
        box = fig.bbox
        for t in _texts(fig, undrawn):
            e = t.get_window_extent(renderer)
            if (e.x0 < box.x0 - 1 or e.y0 < box.y0 - 1 or e.x1 > box.x1 + 1
                    or e.y1 > box.y1 + 1):
                s.add("clipping", f"text {t.get_text()!r} is cut by the figure's edge")
    boxes = []
    for i, ax in enumerate(axes + list(cax)):
        own = [ax.title, ax._left_title, ax._right_title, ax.xaxis.label, ax.yaxis.label]
        own = [t for t in own if t.get_visible() and t.get_text().strip()]
        ticks = _drawn_ticks(ax.xaxis) + _drawn_ticks(ax.yaxis)
        boxes.append((i, own, ticks))
    for i, own, _ in boxes:
        for j, other_own, other_ticks in boxes:
            if j == i:
                continue
            for t in own:
                e = t.get_window_extent(renderer)
                for o in other_own + other_ticks:
                    if (j < i and o in other_own):
                        continue  # each pair of labels once
                    if e.overlaps(o.get_window_extent(renderer)):
                        s.add("clipping", f"{t.get_text()!r} overlaps {o.get_text()!r}")
    return s


@pytest.fixture(scope="module", params=[
    pytest.param(n, marks=[pytest.mark.slow] if n in SLOW else []) for n in REPRODUCTIONS])
def saved(request, tmp_path_factory) -> list[Saved]:
    """Run one reproduction at quick settings; the checks of every figure it saved."""
    records: list[Saved] = []
    original = Figure.savefig

    def spy(self, fname, *args, **kwargs):
        records.append(check_figure(self, Path(str(fname)).name, kwargs))
        return original(self, fname, *args, **kwargs)

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(Figure, "savefig", spy)
        out = tmp_path_factory.mktemp(request.param)
        get_reproduction(request.param)(out, quick=True, verbose=False)
    return records


def _problems(saved: list[Saved], rule: str) -> list[str]:
    return [p for s in saved for p in s.problems.get(rule, [])]


def test_saves_figures(saved):
    assert saved, "the reproduction saved no figure"


@pytest.mark.parametrize("rule", ["labels", "titles", "colour bars", "legends",
                                  "integer ticks", "error bars", "clipping"])
def test_figure_rule(saved, rule):
    problems = _problems(saved, rule)
    assert not problems, "\n".join(problems)


# The checker itself, on small figures made to break one rule each (fast).

def _check(build, **kwargs) -> dict[str, list[str]]:
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(4, 3))
    build(fig, ax)
    try:
        return check_figure(fig, "synthetic.png", kwargs).problems
    finally:
        plt.close(fig)


def _good(fig, ax):
    ax.plot([1, 2, 3], [1, 4, 9], label="model")
    ax.plot([1, 2, 3], [1, 3, 8], "--", label="data")
    ax.set(xlabel="trial", ylabel="reward (a.u.)", title="a good figure", xticks=[1, 2, 3])
    ax.legend()
    fig.tight_layout()


def test_checker_accepts_a_good_figure():
    assert _check(_good) == {}


def test_checker_catches_a_colour_word_and_an_unexplained_line():
    def bad(fig, ax):
        ax.plot([0, 1], [1, 2], color="C1")
        ax.axhline(1.5, color="k", ls="--", label="paper")
        ax.set(xlabel="x (a.u.)", ylabel="y (a.u.)", title="fit (blue: correct model)")
        ax.legend()
    problems = _check(bad)
    assert any("names a colour" in p for p in problems["legends"])
    assert any("not explained by the legend" in p for p in problems["legends"])


def test_checker_catches_missing_labels_title_and_colour_bar():
    def bad(fig, ax):
        ax.imshow(np.eye(3))
        ax.plot([0, 2], [0, 2])
    problems = _check(bad)
    assert {"labels", "titles", "colour bars"} <= set(problems)


def test_checker_catches_fractional_count_ticks_and_a_mean_without_spread():
    def bad(fig, ax):
        ax.plot([1, 2, 3], [0.1, 0.2, 0.3])
        ax.set(xlabel="epoch", ylabel="loss", title="mean over 5 seeds")
    problems = _check(bad)
    assert "integer ticks" in problems and "error bars" in problems


def test_checker_catches_clipped_and_overlapping_text():
    def bad(fig, ax):
        _good(fig, ax)
        ax.set_ylabel("a label far too long to fit in the height of this small figure at all")
    assert "clipping" in _check(bad)
    assert "clipping" not in _check(bad, bbox_inches="tight")
