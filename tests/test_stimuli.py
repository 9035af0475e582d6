"""Bars, gratings and orientation-contrast stimuli: geometry, orientation, validation."""

from __future__ import annotations

import numpy as np
import pytest

from predcode import ValidationError
from predcode.datasets.stimuli import (
    bar,
    bars_of_increasing_length,
    grating,
    orientation_contrast,
)


def _structure_orientation(img: np.ndarray, mask: np.ndarray) -> float:
    """Dominant stripe orientation (degrees, convention of the stimuli) from gradients.

    The structure tensor's main axis is the gradient direction, perpendicular to
    the stripes. In (col, row) coordinates a grating at orientation theta has its
    gradient along (sin theta, cos theta), at angle 90 - theta from the column axis.
    """
    grow, gcol = np.gradient(img)
    jxx = (gcol[mask] ** 2).sum()
    jyy = (grow[mask] ** 2).sum()
    jxy = (gcol[mask] * grow[mask]).sum()
    phi = 0.5 * np.degrees(np.arctan2(2 * jxy, jxx - jyy))
    return (90.0 - phi) % 180.0


def _angle_diff(a: float, b: float) -> float:
    d = abs(a - b) % 180.0
    return min(d, 180.0 - d)


# ---------------------------------------------------------------------------
# bars
# ---------------------------------------------------------------------------
def test_bar_default_geometry_is_exact():
    img = bar(length=10)
    assert img.shape == (16, 26) and img.dtype == np.float64
    on = np.argwhere(img > 0)
    # width 2 around the centre row 7.5, length 10 around the centre column 12.5
    assert set(np.unique(on[:, 0])) == {7, 8}
    assert set(np.unique(on[:, 1])) == set(range(8, 18))
    assert set(np.unique(img)) == {0.0, 1.0}
    np.testing.assert_array_equal(img, bar(length=10, antialias=False))


def test_zero_length_is_blank_and_contrast_scales():
    assert not bar(length=0).any()
    assert not bar(length=0, antialias=False).any()
    np.testing.assert_allclose(bar(length=6, contrast=0.3), 0.3 * bar(length=6))
    assert bar(length=6, contrast=-1.0).min() == -1.0


@pytest.mark.parametrize("orientation", [0.0, 30.0, 90.0])
@pytest.mark.parametrize("antialias", [True, False])
def test_bar_pixel_count_grows_with_length(orientation, antialias):
    lengths = [0, 2, 4, 6, 8, 10, 12]
    stack = bars_of_increasing_length(
        (32, 32), lengths, orientation_deg=orientation, antialias=antialias
    )
    assert stack.shape == (len(lengths), 32, 32)
    counts = (stack > 0).sum(axis=(1, 2))
    sums = stack.sum(axis=(1, 2))
    assert counts[0] == 0 and (np.diff(counts) > 0).all()
    assert (np.diff(sums) > 0).all()
    if antialias:  # area coverage: sum = length * width up to the 1/64 sampling
        np.testing.assert_allclose(sums, 2.0 * np.asarray(lengths), atol=0.6)
    for L, img in zip(lengths, stack, strict=True):
        np.testing.assert_array_equal(
            img, bar((32, 32), length=L, orientation_deg=orientation, antialias=antialias)
        )


def test_horizontal_bar_counts_on_rao_ballard_region():
    lengths = range(0, 27, 2)
    stack = bars_of_increasing_length((16, 26), lengths)
    np.testing.assert_array_equal(stack.sum(axis=(1, 2)), [2 * L for L in lengths])
    assert stack[-1][7:9].all()  # the full-width bar spans all 26 columns


@pytest.mark.parametrize("antialias", [True, False])
def test_vertical_bar_is_transpose_of_horizontal(antialias):
    h = bar((20, 20), length=12, width=2, orientation_deg=0, antialias=antialias)
    v = bar((20, 20), length=12, width=2, orientation_deg=90, antialias=antialias)
    np.testing.assert_allclose(v, h.T, atol=1e-12)
    # and a 90 degree step of orientation is a 90 degree counter-clockwise rotation
    a = bar((21, 21), length=11, width=3, orientation_deg=30)
    b = bar((21, 21), length=11, width=3, orientation_deg=120)
    np.testing.assert_allclose(b, np.rot90(a), atol=1e-12)


def test_bar_orientation_and_centre_measured():
    img = bar((41, 41), length=24, width=2, orientation_deg=45, antialias=True)
    r, c = np.mgrid[:41, :41]
    w = img / img.sum()
    rc, cc = (w * r).sum(), (w * c).sum()
    assert rc == pytest.approx(20.0, abs=1e-9) and cc == pytest.approx(20.0, abs=1e-9)
    # principal axis of the mass: 45 degrees counter-clockwise = up and to the right
    cov = np.cov(np.stack([c.ravel() - cc, -(r.ravel() - rc)]), aweights=img.ravel())
    vals, vecs = np.linalg.eigh(cov)
    axis = vecs[:, -1]
    assert _angle_diff(np.degrees(np.arctan2(axis[1], axis[0])) % 180, 45.0) < 1.0
    shifted = bar((41, 41), length=6, center=(10, 30), antialias=False)
    on = np.argwhere(shifted)
    np.testing.assert_allclose(on.mean(axis=0), [10, 30])


def test_bar_errors():
    with pytest.raises(ValidationError, match="bar.length: must be >= 0"):
        bar(length=-1)
    with pytest.raises(ValidationError, match="bar.width: must be > 0"):
        bar(length=4, width=0)
    with pytest.raises(ValidationError, match="bar.shape"):
        bar((16, 0), length=4)
    with pytest.raises(ValidationError, match="bar.center"):
        bar(length=4, center=(1, 2, 3))
    with pytest.raises(ValidationError, match=r"bar.center\[1\]: must be finite"):
        bar(length=4, center=(1, np.inf))
    with pytest.raises(ValidationError, match="bar.orientation_deg"):
        bar(length=4, orientation_deg="vertical")
    with pytest.raises(ValidationError, match="bar.antialias"):
        bar(length=4, antialias="yes")
    with pytest.raises(ValidationError, match=r"bars_of_increasing_length.lengths\[2\]"):
        bars_of_increasing_length((16, 26), [0, 2, -4])
    with pytest.raises(ValidationError, match="bars_of_increasing_length.lengths"):
        bars_of_increasing_length((16, 26), [])


# ---------------------------------------------------------------------------
# gratings
# ---------------------------------------------------------------------------
def _fft_peak(img):
    amp = np.abs(np.fft.fft2(img - img.mean()))
    k = np.unravel_index(np.argmax(amp), amp.shape)
    f = np.array([np.fft.fftfreq(img.shape[0])[k[0]], np.fft.fftfreq(img.shape[1])[k[1]]])
    return f if (f[0], f[1]) >= (0, 0) else -f  # the +/- pair: pick one sign


@pytest.mark.parametrize(
    "orientation,period,expected",
    [
        (0.0, 8.0, (1 / 8, 0.0)),
        (90.0, 8.0, (0.0, 1 / 8)),
        (45.0, 64 / (4 * np.sqrt(2)), (4 / 64, 4 / 64)),
        (135.0, 64 / (4 * np.sqrt(2)), (4 / 64, -4 / 64)),
    ],
)
def test_grating_period_and_orientation_from_fft(orientation, period, expected):
    g = grating((64, 64), orientation, period)
    assert g.min() >= -1.0 and g.max() <= 1.0
    assert g.max() > 0.9 and g.min() < -0.9  # samples straddle the crests
    f = _fft_peak(g)
    e = np.array(expected)
    e = e if (e[0], e[1]) >= (0, 0) else -e
    np.testing.assert_allclose(f, e, atol=1e-12)
    assert abs(1 / np.hypot(*f) - period) < 1e-9
    assert _angle_diff(_structure_orientation(g, np.ones_like(g, bool)), orientation) < 1.0


def test_grating_phase_and_parallel_to_bar():
    g = grating((17, 17), 0.0, 8.0)
    assert g[8, 8] == pytest.approx(1.0)  # bright stripe through the centre
    np.testing.assert_allclose(g[8], 1.0)  # horizontal stripe, like bar(orientation 0)
    assert grating((17, 17), 0.0, 8.0, phase=np.pi)[8, 8] == pytest.approx(-1.0)
    np.testing.assert_allclose(grating((17, 17), 90.0, 8.0)[:, 8], 1.0)


def test_grating_errors():
    with pytest.raises(ValidationError, match="grating.period: must be >= 2"):
        grating((16, 16), 0.0, 1.5)
    with pytest.raises(ValidationError, match="grating.shape"):
        grating((16,), 0.0, 4.0)
    with pytest.raises(ValidationError, match="grating.phase"):
        grating((16, 16), 0.0, 4.0, phase=np.nan)


# ---------------------------------------------------------------------------
# orientation contrast
# ---------------------------------------------------------------------------
def _masks(shape, radius, margin=2.0):
    r, c = np.mgrid[: shape[0], : shape[1]]
    d = np.hypot(r - (shape[0] - 1) / 2, c - (shape[1] - 1) / 2)
    return d <= radius, d <= radius - margin, d > radius + margin


@pytest.mark.parametrize(
    "centre,surround", [(0.0, 90.0), (45.0, 135.0), (30.0, 30.0), (90.0, 20.0)]
)
def test_orientation_contrast_measured_orientations(centre, surround):
    shape, radius = (64, 64), 14.0
    img = orientation_contrast(shape, radius, centre, surround, period=6.0)
    assert img.min() >= -1.0 and img.max() <= 1.0
    disc, inner, outer = _masks(shape, radius)
    assert _angle_diff(_structure_orientation(img, inner), centre) < 3.0
    assert _angle_diff(_structure_orientation(img, outer), surround) < 3.0
    np.testing.assert_allclose(img[disc], grating(shape, centre, 6.0)[disc])
    np.testing.assert_allclose(img[~disc], grating(shape, surround, 6.0)[~disc])


def test_orientation_contrast_without_or_with_bounded_surround():
    shape, radius = (40, 48), 8.0
    disc, _, _ = _masks(shape, radius)
    alone = orientation_contrast(shape, radius, 0.0, 90.0, 4.0, surround=False)
    assert not alone[~disc].any()
    np.testing.assert_allclose(alone[disc], grating(shape, 0.0, 4.0)[disc])
    ring = orientation_contrast(shape, radius, 0.0, 90.0, 4.0, surround_radius=15.0)
    far = ~_masks(shape, 15.0)[0]
    assert not ring[far].any()
    between = _masks(shape, 15.0)[0] & ~disc
    np.testing.assert_allclose(ring[between], grating(shape, 90.0, 4.0)[between])


def test_orientation_contrast_errors():
    with pytest.raises(ValidationError, match="orientation_contrast.center_radius"):
        orientation_contrast((16, 16), 0.0, 0.0, 90.0, 4.0)
    with pytest.raises(ValidationError, match="orientation_contrast.surround_radius"):
        orientation_contrast((16, 16), 5.0, 0.0, 90.0, 4.0, surround_radius=4.0)
    with pytest.raises(ValidationError, match="orientation_contrast.period"):
        orientation_contrast((16, 16), 5.0, 0.0, 90.0, 1.0)
    with pytest.raises(ValidationError, match="orientation_contrast.surround: expected a bool"):
        orientation_contrast((16, 16), 5.0, 0.0, 90.0, 4.0, surround="no")
    with pytest.raises(ValidationError, match="orientation_contrast.orientation_surround_deg"):
        orientation_contrast((16, 16), 5.0, 0.0, None, 4.0)
