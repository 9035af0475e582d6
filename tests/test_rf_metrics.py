"""Receptive-field metrics: Gabor fits, fraction of Gabor-like fields, localisation, orientation."""

from __future__ import annotations

import numpy as np
import pytest

from predcode import ValidationError
from predcode.metrics import (
    DEFAULT_R2_THRESHOLD,
    GABOR_PARAMS,
    fit_gabor,
    gabor,
    gabor_fit_fraction,
    localisation_and_orientation,
)

SHAPE = (16, 16)


def _angle_diff(a: float, b: float) -> float:
    """Distance between two orientations modulo pi, in degrees."""
    d = (a - b) % np.pi
    return float(np.degrees(min(d, np.pi - d)))


# (x0, y0, sigma_x, sigma_y, theta, freq, phase): orientations, frequencies, positions
CASES = [
    (7.5, 7.5, 2.5, 3.0, 0.0, 0.15, 0.0),
    (6.0, 9.0, 2.0, 3.5, np.pi / 6, 0.20, 1.0),
    (9.5, 6.5, 3.0, 3.0, np.pi / 3, 0.12, -2.0),
    (8.0, 5.0, 2.0, 2.5, np.pi / 2, 0.25, np.pi / 2),
    (5.5, 10.0, 2.5, 4.0, 2 * np.pi / 3, 0.18, 2.5),
    (10.0, 8.5, 2.2, 3.0, 0.9 * np.pi, 0.22, -0.7),
]


def _noisy_gabor(case, noise: float, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return gabor(SHAPE, *case, amplitude=1.0) + noise * rng.standard_normal(SHAPE)


# ---------------------------------------------------------------------------
# gabor
# ---------------------------------------------------------------------------
def test_gabor_matches_formula_with_x_as_column():
    x0, y0, sx, sy, th, f, ph, a, off = 5.0, 9.0, 2.0, 3.0, 0.4, 0.17, 0.3, 1.5, -0.2
    g = gabor((12, 14), x0, y0, sx, sy, th, f, ph, a, off)
    assert g.shape == (12, 14)
    for row, col in [(0, 0), (9, 5), (3, 11), (11, 13)]:
        x, y = col, row
        xr = (x - x0) * np.cos(th) + (y - y0) * np.sin(th)
        yr = -(x - x0) * np.sin(th) + (y - y0) * np.cos(th)
        want = a * np.exp(-(xr**2 / (2 * sx**2) + yr**2 / (2 * sy**2)))
        want = want * np.cos(2 * np.pi * f * xr + ph) + off
        assert g[row, col] == pytest.approx(want, abs=1e-12)
    # theta = 0: the carrier varies along x (columns), so rows through y0 are extrema
    v = gabor((16, 16), 7.0, 7.0, 100.0, 100.0, 0.0, 0.25, 0.0, 1.0)
    assert np.allclose(v[:, 7], v[:, 7].max(), atol=0.05)
    assert v[7, 9] == pytest.approx(-1.0, abs=1e-3)  # half a period (2 px) along x


# ---------------------------------------------------------------------------
# fit_gabor
# ---------------------------------------------------------------------------
@pytest.mark.parametrize("case", CASES, ids=[f"theta{np.degrees(c[4]):.0f}" for c in CASES])
def test_fit_recovers_noisy_gabor(case):
    field = _noisy_gabor(case, noise=0.03, seed=int(np.degrees(case[4])))
    fit = fit_gabor(field)
    p = fit["params"]
    x0, y0, _, _, theta, freq, _ = case
    assert fit["r2"] > 0.95
    assert _angle_diff(p["theta"], theta) < 10.0
    assert np.hypot(p["x0"] - x0, p["y0"] - y0) < 1.0
    assert p["freq"] == pytest.approx(freq, rel=0.15)
    assert p["amplitude"] == pytest.approx(1.0, rel=0.2)
    assert fit["fitted"].shape == SHAPE


def test_fit_exact_gabor_and_params_redraw_the_fit():
    field = gabor(SHAPE, 6.0, 9.0, 2.5, 3.5, 0.6, 0.15, 0.3, 2.0, 0.5)
    fit = fit_gabor(field)
    assert fit["r2"] > 0.9999
    p = fit["params"]
    assert tuple(p) == GABOR_PARAMS
    assert np.allclose(gabor(SHAPE, **p), fit["fitted"])
    # canonical form
    assert 0.0 <= p["theta"] < np.pi
    assert -np.pi < p["phase"] <= np.pi
    assert p["amplitude"] >= 0.0
    want = dict(
        x0=6.0,
        y0=9.0,
        sigma_x=2.5,
        sigma_y=3.5,
        theta=0.6,
        freq=0.15,
        phase=0.3,
        amplitude=2.0,
        offset=0.5,
    )
    for k, v in want.items():
        assert p[k] == pytest.approx(v, abs=1e-4), k


def test_fit_canonicalises_sign_and_orientation():
    # theta + pi with the phase negated, and a negative amplitude, draw the same Gabor
    field = gabor(SHAPE, 8.0, 7.0, 2.5, 3.0, 0.5 + np.pi, 0.2, -1.0, -1.0)
    p = fit_gabor(field)["params"]
    assert p["theta"] == pytest.approx(0.5, abs=1e-4)
    assert p["amplitude"] == pytest.approx(1.0, abs=1e-4)
    assert np.allclose(gabor(SHAPE, **p), field, atol=1e-6)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_white_noise_fits_badly(seed):
    field = np.random.default_rng(seed).standard_normal(SHAPE)
    assert fit_gabor(field)["r2"] < 0.3


def test_fit_is_deterministic_and_scale_free():
    field = _noisy_gabor(CASES[1], noise=0.1, seed=5)
    a, b = fit_gabor(field, n_starts=60), fit_gabor(field, n_starts=60)
    assert a["params"] == b["params"] and a["r2"] == b["r2"]
    c = fit_gabor(1000.0 * field + 7.0)
    assert c["r2"] == pytest.approx(fit_gabor(field)["r2"], abs=1e-6)


def test_fit_gaussian_blob_and_constant_field():
    blob = gabor(SHAPE, 7.0, 8.0, 2.0, 2.0, 0.0, 0.0, 0.0, 1.0)
    assert fit_gabor(blob)["r2"] > 0.999
    const = fit_gabor(np.full(SHAPE, 3.0))
    assert np.isnan(const["r2"])
    assert np.allclose(const["fitted"], 3.0)


def test_robust_loss_is_accepted():
    field = _noisy_gabor(CASES[2], noise=0.03, seed=1)
    field[3, 3] += 5.0  # one outlying pixel
    fit = fit_gabor(field, loss="soft_l1")
    assert _angle_diff(fit["params"]["theta"], CASES[2][4]) < 10.0


# ---------------------------------------------------------------------------
# gabor_fit_fraction
# ---------------------------------------------------------------------------
def test_fraction_of_gabors_among_noise():
    rng = np.random.default_rng(0)
    gabors = [_noisy_gabor(c, noise=0.05, seed=i) for i, c in enumerate(CASES)]
    noise = list(rng.standard_normal((4, *SHAPE)))
    out = gabor_fit_fraction(np.stack(gabors + noise))
    assert out["fraction"] == pytest.approx(0.6)
    assert out["n"] == 10
    assert out["threshold"] == DEFAULT_R2_THRESHOLD == 0.7
    assert out["r2"].shape == (10,)
    assert (out["r2"][:6] > 0.9).all() and (out["r2"][6:] < 0.3).all()
    assert len(out["params"]) == 10


def test_fraction_threshold_and_constant_fields():
    fields = np.stack([gabor(SHAPE, *CASES[0], amplitude=1.0), np.zeros(SHAPE)])
    out = gabor_fit_fraction(fields, r2_threshold=0.99)
    assert out["fraction"] == 0.5 and out["threshold"] == 0.99
    assert np.isnan(out["r2"][1])


# ---------------------------------------------------------------------------
# localisation_and_orientation
# ---------------------------------------------------------------------------
def test_localisation_high_for_small_gaussian_low_for_noise():
    blob = gabor(SHAPE, 7.5, 7.5, 1.5, 1.5, 0.0, 0.0, 0.0, 1.0)
    off_centre = gabor(SHAPE, 4.0, 11.0, 1.5, 1.5, 0.0, 0.0, 0.0, 1.0)
    noise = np.random.default_rng(0).standard_normal((20, *SHAPE))
    loc = localisation_and_orientation(np.stack([blob, off_centre]))["localisation"]
    assert (loc > 0.8).all()
    out = localisation_and_orientation(noise)
    assert (out["localisation"] < 0.4).all()
    assert out["mean_localisation"] == pytest.approx(np.pi / 16, abs=0.06)
    assert out["radius"] == 4.0


def test_orientation_selectivity_gabor_vs_blob_vs_noise():
    thetas = np.linspace(0.0, np.pi, 6, endpoint=False)
    gabors = np.stack([gabor(SHAPE, 7.5, 7.5, 2.5, 3.0, t, 0.2, 0.0, 1.0) for t in thetas])
    out = localisation_and_orientation(gabors)
    assert (out["orientation_selectivity"] > 0.7).all()
    for got, want in zip(out["orientation"], thetas, strict=True):
        assert _angle_diff(got, want) < 5.0
    assert (out["localisation"] > 0.8).all()

    blob = gabor(SHAPE, 7.5, 7.5, 2.0, 2.0, 0.0, 0.0, 0.0, 1.0)[None]
    assert localisation_and_orientation(blob)["orientation_selectivity"][0] < 0.3
    noise = np.random.default_rng(1).standard_normal((20, *SHAPE))
    out = localisation_and_orientation(noise)
    assert (out["orientation_selectivity"] < 0.3).all()
    assert out["mean_orientation_selectivity"] == pytest.approx(
        out["orientation_selectivity"].mean()
    )


def test_localisation_and_orientation_of_empty_fields_is_nan():
    fields = np.stack([np.zeros(SHAPE), gabor(SHAPE, *CASES[0], amplitude=1.0)])
    out = localisation_and_orientation(fields)
    assert np.isnan(out["localisation"][0]) and np.isnan(out["orientation_selectivity"][0])
    assert out["mean_localisation"] == pytest.approx(out["localisation"][1])


# ---------------------------------------------------------------------------
# bad input
# ---------------------------------------------------------------------------
@pytest.mark.parametrize(
    "call, match",
    [
        (lambda: fit_gabor(np.zeros(256)), r"fit_gabor\.field: expected a 2-D field.*reshape"),
        (lambda: fit_gabor(np.zeros((2, 16, 16))), r"fit_gabor\.field: .*gabor_fit_fraction"),
        (
            lambda: fit_gabor(np.where(np.eye(16) > 0, np.nan, 0.0)),
            r"fit_gabor\.field: contains 16 NaN",
        ),
        (lambda: fit_gabor(np.zeros((3, 16))), r"fit_gabor\.field: .*at least 4 x 4"),
        (lambda: fit_gabor(np.array([["a"] * 8] * 8)), r"fit_gabor\.field: expected real"),
        (lambda: fit_gabor(np.zeros(SHAPE), n_starts=0), r"fit_gabor\.n_starts: must be >= 1"),
        (lambda: fit_gabor(np.zeros(SHAPE), n_starts=2.5), r"fit_gabor\.n_starts: expected an int"),
        (lambda: fit_gabor(np.zeros(SHAPE), loss="l2"), r"fit_gabor\.loss: unknown option"),
        (
            lambda: gabor_fit_fraction(np.zeros((10, 256))),
            r"gabor_fit_fraction\.fields: expected .*\(n, height, width\).*reshape",
        ),
        (lambda: gabor_fit_fraction(np.zeros(SHAPE[0])), r"gabor_fit_fraction\.fields"),
        (lambda: gabor_fit_fraction(np.zeros((0, 16, 16))), r"gabor_fit_fraction\.fields: .*empty"),
        (
            lambda: gabor_fit_fraction(np.full((2, 8, 8), np.inf)),
            r"gabor_fit_fraction\.fields: contains 128 NaN or infinite",
        ),
        (
            lambda: gabor_fit_fraction(np.zeros((2, 8, 8)), r2_threshold=0.0),
            r"gabor_fit_fraction\.r2_threshold: must be > 0",
        ),
        (
            lambda: gabor_fit_fraction(np.zeros((2, 8, 8)), r2_threshold=1.0),
            r"gabor_fit_fraction\.r2_threshold: must be < 1",
        ),
        (
            lambda: gabor_fit_fraction(np.zeros((2, 8, 8)), r2_threshold=-0.5),
            r"gabor_fit_fraction\.r2_threshold: must be > 0",
        ),
        (
            lambda: gabor_fit_fraction(np.zeros((2, 8, 8)), r2_threshold="0.7"),
            r"gabor_fit_fraction\.r2_threshold: expected",
        ),
        (
            lambda: localisation_and_orientation(np.zeros(SHAPE)),
            r"localisation_and_orientation\.fields: expected .*\[None\]",
        ),
        (
            lambda: localisation_and_orientation(np.full((1, 8, 8), np.nan)),
            r"localisation_and_orientation\.fields: contains 64 NaN",
        ),
        (lambda: gabor((16,), 1, 1, 1, 1, 0, 0.1, 0, 1), r"gabor\.shape: expected a \(height"),
        (lambda: gabor(SHAPE, 1, 1, 0.0, 1, 0, 0.1, 0, 1), r"gabor\.sigma_x: must be > 0"),
        (lambda: gabor(SHAPE, 1, 1, 1, 1, 0, -0.1, 0, 1), r"gabor\.freq: must be >= 0"),
        (lambda: gabor(SHAPE, np.nan, 1, 1, 1, 0, 0.1, 0, 1), r"gabor\.x0: must be finite"),
    ],
)
def test_bad_input_names_the_parameter(call, match):
    with pytest.raises(ValidationError, match=match):
        call()
