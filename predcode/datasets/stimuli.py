"""Synthetic visual stimuli for end-stopping and surround-suppression probes.

Conventions shared by every function:

* Images are float64 arrays of shape (height, width); the default shape
  (16, 26) is the region seen by Rao & Ballard's (1999) three overlapping 16x16
  modules.
* Coordinates are (row, column) in pixels, pixel ``(r, c)`` having its centre at
  ``(r, c)``. The default centre is the geometric image centre
  ``((h - 1) / 2, (w - 1) / 2)``, which for even sides lies between pixels.
* Orientations are in degrees, counter-clockwise as seen on screen (rows grow
  downwards): 0 is horizontal, 90 vertical, 45 rises to the right. The
  orientation of a grating is that of its stripes, so a bar and a grating with the
  same ``orientation_deg`` are parallel.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from ..exceptions import ValidationError
from ..validation import check_pair, check_param

__all__ = ["bar", "bars_of_increasing_length", "grating", "orientation_contrast"]

# Sub-pixel samples per axis for anti-aliased bars (coverage resolution 1/64).
_SUPERSAMPLE = 8


def _check_center(center: Any, shape: tuple[int, int], owner: str) -> tuple[float, float]:
    if center is None:
        return (shape[0] - 1) / 2.0, (shape[1] - 1) / 2.0
    if isinstance(center, np.ndarray):
        center = center.tolist()
    if isinstance(center, (str, bytes)) or not isinstance(center, Sequence) or len(center) != 2:
        raise ValidationError(
            f"{owner}.center: expected None or a (row, col) pair of numbers, got {center!r}."
        )
    r = check_param(center[0], "center[0]", owner)
    c = check_param(center[1], "center[1]", owner)
    return float(r), float(c)


def _angle(value: Any, name: str, owner: str) -> tuple[float, float]:
    """(cos, sin) of an angle in degrees, exact at multiples of 90."""
    theta = np.deg2rad(float(check_param(value, name, owner)))
    c, s = np.cos(theta), np.sin(theta)
    c = 0.0 if abs(c) < 1e-12 else float(c)
    s = 0.0 if abs(s) < 1e-12 else float(s)
    return c, s


def _rotated(dr: np.ndarray, dc: np.ndarray, cos: float, sin: float):
    """Coordinates along (u) and across (v) an orientation, from row/col offsets."""
    u = dc * cos - dr * sin
    v = dc * sin + dr * cos
    return u, v


def bar(
    shape: tuple[int, int] = (16, 26),
    *,
    length: float,
    width: float = 2.0,
    orientation_deg: float = 0.0,
    center: tuple[float, float] | None = None,
    contrast: float = 1.0,
    antialias: bool = True,
) -> np.ndarray:
    """A bright bar on a zero background.

    Parameters
    ----------
    shape : (int, int), default (16, 26)
        Image (height, width).
    length : float
        Bar length in pixels along its orientation, >= 0; 0 gives a blank image.
        Keyword-only.
    width : float, default 2.0
        Bar width in pixels across its orientation, > 0. Two pixels, because the
        default centre of an even-sided image lies between two pixel rows: a
        horizontal bar of even width and even length is then rendered exactly (every
        pixel fully in or out), while a width of 1 would be split over two half-lit
        rows.
    orientation_deg : float, default 0.0
        Orientation in degrees (0 horizontal, 90 vertical, counter-clockwise).
    center : (float, float), optional
        (row, col) of the bar's midpoint; default the geometric image centre. May lie
        outside the image (the bar is clipped).
    contrast : float, default 1.0
        Value of a fully covered pixel (negative gives a dark bar).
    antialias : bool, default True
        If True, each pixel's value is ``contrast`` times the fraction of its area
        that the bar covers (estimated on an 8x8 sub-pixel grid, so exact to 1/64),
        so responses change smoothly with length and oblique bars have no jagged
        edges. If False, a pixel is ``contrast`` when its centre lies inside or on
        the edge of the bar rectangle, else 0.

    Returns
    -------
    ndarray, shape ``shape``, float64
        Values between 0 and ``contrast``.

    Raises
    ------
    ValidationError
        Invalid shape, negative length, non-positive width, non-finite numbers or a
        malformed centre.

    Examples
    --------
    >>> img = bar(length=10)  # 10 x 2 horizontal bar at the centre of a 16 x 26 image
    >>> float(img.sum())
    20.0
    """
    owner = "bar"
    h, w = check_pair(shape, "shape", owner)
    length = float(check_param(length, "length", owner, low=0.0, low_inclusive=True))
    width = float(check_param(width, "width", owner, low=0.0))
    cos, sin = _angle(orientation_deg, "orientation_deg", owner)
    r0, c0 = _check_center(center, (h, w), owner)
    contrast = float(check_param(contrast, "contrast", owner))
    if not isinstance(antialias, (bool, np.bool_)):
        raise ValidationError(f"{owner}.antialias: expected a bool, got {antialias!r}.")
    if length == 0.0:
        return np.zeros((h, w))
    if antialias:
        k = _SUPERSAMPLE
        sub = (np.arange(k) + 0.5) / k - 0.5
        dr = (np.arange(h) - r0)[:, None, None, None] + sub[None, None, :, None]
        dc = (np.arange(w) - c0)[None, :, None, None] + sub[None, None, None, :]
        u, v = _rotated(dr, dc, cos, sin)
        inside = (np.abs(u) <= length / 2) & (np.abs(v) <= width / 2)
        cover = inside.mean(axis=(2, 3))
    else:
        tol = 1e-9
        dr = (np.arange(h) - r0)[:, None]
        dc = (np.arange(w) - c0)[None, :]
        u, v = _rotated(dr, dc, cos, sin)
        cover = ((np.abs(u) <= length / 2 + tol) & (np.abs(v) <= width / 2 + tol)).astype(
            np.float64
        )
    return contrast * cover


def bars_of_increasing_length(
    shape: tuple[int, int],
    lengths: Sequence[float],
    orientation_deg: float = 0.0,
    width: float = 2.0,
    center: tuple[float, float] | None = None,
    contrast: float = 1.0,
    antialias: bool = True,
) -> np.ndarray:
    """A stack of bars of the given lengths, otherwise identical (end-stopping probe).

    Parameters
    ----------
    shape : (int, int)
        Image (height, width), e.g. (16, 26).
    lengths : sequence of float
        Bar lengths in pixels (each >= 0), in the order wanted; e.g.
        ``range(0, 27, 2)`` for the full width of a 16x26 region.
    orientation_deg, width, center, contrast, antialias
        As in :func:`bar`.

    Returns
    -------
    ndarray, shape (len(lengths), height, width), float64
        ``out[i] == bar(shape, length=lengths[i], ...)``.

    Raises
    ------
    ValidationError
        Empty or non-numeric ``lengths`` (the message names the offending index), or
        any error of :func:`bar`.
    """
    owner = "bars_of_increasing_length"
    if isinstance(lengths, np.ndarray):
        lengths = lengths.tolist()
    if isinstance(lengths, range):
        lengths = list(lengths)
    if isinstance(lengths, (str, bytes)) or not isinstance(lengths, Sequence) or not lengths:
        raise ValidationError(
            f"{owner}.lengths: expected a non-empty sequence of lengths in pixels, got {lengths!r}."
        )
    for i, L in enumerate(lengths):
        check_param(L, f"lengths[{i}]", owner, low=0.0, low_inclusive=True)
    return np.stack(
        [
            bar(
                shape,
                length=L,
                width=width,
                orientation_deg=orientation_deg,
                center=center,
                contrast=contrast,
                antialias=antialias,
            )
            for L in lengths
        ]
    )


def grating(
    shape: tuple[int, int], orientation_deg: float, period: float, phase: float = 0.0
) -> np.ndarray:
    """A sinusoidal grating with values in [-1, 1].

    ``cos(2 pi d / period + phase)``, where ``d`` is the signed distance from the
    geometric image centre across the stripes, so with ``phase=0`` a bright stripe
    runs through the centre.

    Parameters
    ----------
    shape : (int, int)
        Image (height, width).
    orientation_deg : float
        Stripe orientation in degrees (0: horizontal stripes, varying down the
        rows; 90: vertical stripes, varying along the columns).
    period : float
        Wavelength in pixels, >= 2 (the Nyquist limit; shorter periods alias).
    phase : float, default 0.0
        Phase in radians at the image centre.

    Returns
    -------
    ndarray, shape ``shape``, float64
        Values in [-1, 1]; the spatial frequency is ``1/period`` cycles/pixel along
        the direction (rows, cols) = (cos, sin) of ``orientation_deg``.

    Raises
    ------
    ValidationError
        Invalid shape, ``period < 2`` or non-finite numbers.
    """
    owner = "grating"
    h, w = check_pair(shape, "shape", owner)
    cos, sin = _angle(orientation_deg, "orientation_deg", owner)
    period = float(check_param(period, "period", owner, low=2.0, low_inclusive=True))
    phase = float(check_param(phase, "phase", owner))
    r0, c0 = (h - 1) / 2.0, (w - 1) / 2.0
    _, v = _rotated((np.arange(h) - r0)[:, None], (np.arange(w) - c0)[None, :], cos, sin)
    return np.cos(2.0 * np.pi * v / period + phase)


def orientation_contrast(
    shape: tuple[int, int],
    center_radius: float,
    orientation_center_deg: float,
    orientation_surround_deg: float,
    period: float,
    surround: bool = True,
    surround_radius: float | None = None,
    phase: float = 0.0,
) -> np.ndarray:
    """Centre grating disc within a surround grating annulus (orientation contrast).

    Pixels whose centre lies within ``center_radius`` of the geometric image
    centre show a grating at ``orientation_center_deg``; with ``surround``, pixels
    farther out (up to ``surround_radius``) show one at
    ``orientation_surround_deg``; everything else is 0. Both gratings share period
    and phase, referenced to the image centre (see :func:`grating`). Equal
    orientations give an iso-oriented surround, orthogonal ones a cross-oriented
    surround, as used to probe orientation-contrast surround suppression.

    Parameters
    ----------
    shape : (int, int)
        Image (height, width).
    center_radius : float
        Radius of the centre disc in pixels, > 0.
    orientation_center_deg, orientation_surround_deg : float
        Stripe orientations in degrees (convention of :func:`grating`).
    period : float
        Grating wavelength in pixels, >= 2.
    surround : bool, default True
        False leaves the surround blank (centre-only stimulus).
    surround_radius : float, optional
        Outer radius of the surround annulus, > ``center_radius``; default: the
        surround fills the rest of the image.
    phase : float, default 0.0
        Grating phase in radians at the image centre.

    Returns
    -------
    ndarray, shape ``shape``, float64
        Values in [-1, 1].

    Raises
    ------
    ValidationError
        Invalid shape, radii, period, angles, or a non-bool ``surround``.
    """
    owner = "orientation_contrast"
    h, w = check_pair(shape, "shape", owner)
    rc = float(check_param(center_radius, "center_radius", owner, low=0.0))
    if not isinstance(surround, (bool, np.bool_)):
        raise ValidationError(f"{owner}.surround: expected a bool, got {surround!r}.")
    rs = np.inf
    if surround_radius is not None:
        rs = float(check_param(surround_radius, "surround_radius", owner, low=0.0))
        if rs <= rc:
            raise ValidationError(
                f"{owner}.surround_radius: must be larger than center_radius={rc}, got {rs}."
            )
    for name, value in (
        ("orientation_center_deg", orientation_center_deg),
        ("orientation_surround_deg", orientation_surround_deg),
    ):
        check_param(value, name, owner)
    check_param(period, "period", owner, low=2.0, low_inclusive=True)
    r0, c0 = (h - 1) / 2.0, (w - 1) / 2.0
    dist = np.hypot((np.arange(h) - r0)[:, None], (np.arange(w) - c0)[None, :])
    inner = dist <= rc
    out = np.where(inner, grating((h, w), orientation_center_deg, period, phase), 0.0)
    if surround:
        ring = ~inner & (dist <= rs)
        out = np.where(ring, grating((h, w), orientation_surround_deg, period, phase), out)
    return out
