"""The bars and shifter generators and their exact distributions.

Source of the numbers: Hinton, Dayan, Frey & Neal (1995), *Science* 268 — 4×4
bars, vertical with probability 2/3, each bar on with probability 0.2; and
Dayan, Hinton, Neal & Zemel (1995), *Neural Computation* 7 — the shifter.
"""

from __future__ import annotations

import numpy as np
import pytest

from predcode.datasets.bars import (
    BARS_ENTROPY_BITS,
    bar_assignment,
    bar_templates,
    bars_distribution,
    entropy_bits,
    make_bars,
    make_shifter,
    shifter_distribution,
)
from predcode.exceptions import ValidationError


def test_bars_distribution_has_30_images_and_3_428_bits():
    """Blank and all-on images come from both orientations and are counted once:
    16 + 16 - 2 = 30 images; entropy 3.4284 bits (the issue's 3.428)."""
    X, p = bars_distribution()
    assert X.shape == (30, 16)
    assert len({row.tobytes() for row in X}) == 30
    assert abs(p.sum() - 1.0) < 1e-12
    H = entropy_bits(p)
    assert abs(H - BARS_ENTROPY_BITS) < 1e-12
    assert round(H, 3) == 3.428
    blank = np.flatnonzero(X.sum(axis=1) == 0)
    assert abs(p[blank[0]] - 0.8**4) < 1e-12  # 2/3 0.8^4 + 1/3 0.8^4
    full = np.flatnonzero(X.sum(axis=1) == 16)
    assert abs(p[full[0]] - 0.2**4) < 1e-12


def test_bars_unmerged_entropy_differs():
    """Counting the shared images twice (32 'images') would give 3.806 bits, not 3.428."""
    q = []
    for po in (2 / 3, 1 / 3):
        for k in range(5):
            n_ways = [1, 4, 6, 4, 1][k]
            q += [po * 0.2**k * 0.8 ** (4 - k)] * n_ways
    assert abs(entropy_bits(np.array(q)) - 3.8060) < 1e-4


def test_make_bars_matches_the_exact_distribution():
    X, p = bars_distribution()
    S, causes = make_bars(60000, random_state=0, return_causes=True)
    keys = {row.tobytes(): i for i, row in enumerate(X)}
    counts = np.zeros(len(p))
    for row in S:
        counts[keys[row.tobytes()]] += 1
    tv = 0.5 * np.abs(counts / counts.sum() - p).sum()
    assert tv < 0.01, tv
    np.testing.assert_array_equal(np.minimum(causes @ bar_templates(4), 1), S)
    assert set(np.unique(S)) <= {0.0, 1.0}
    np.testing.assert_array_equal(make_bars(5, random_state=3), make_bars(5, random_state=3))


def test_shifter_images_and_distribution():
    X, d = make_shifter(500, random_state=1, return_direction=True)
    rows = X.reshape(-1, 4, 8)
    np.testing.assert_array_equal(rows[:, 0], rows[:, 1])
    np.testing.assert_array_equal(rows[:, 2], rows[:, 3])
    for r, direction in zip(rows, d, strict=True):
        np.testing.assert_array_equal(r[0], np.roll(r[3], 1 if direction == 1 else -1))
    imgs, p = shifter_distribution()
    # 2 * 256 images, less 4 bottom rows whose left and right shifts coincide
    assert imgs.shape == (508, 32)
    assert abs(p.sum() - 1) < 1e-12
    # entropy: 8 pixels of H(0.2) plus one bit of direction, less what the 4 merge
    h = -(0.2 * np.log2(0.2) + 0.8 * np.log2(0.8))
    assert 8 * h < entropy_bits(p) < 8 * h + 1


def test_bar_assignment():
    T = bar_templates(4)
    out = bar_assignment(T[::-1] * 3.0)
    assert out["correct"] and out["bars"] == list(range(7, -1, -1))
    dup = T.copy()
    dup[1] = T[0]
    assert not bar_assignment(dup)["correct"]
    weak = T + 1.5  # other pixels too strong (2.5 < 2 x 1.5): no clean bar
    assert bar_assignment(weak)["bars"] == [-1] * 8
    with pytest.raises(ValidationError, match="fields"):
        bar_assignment(np.zeros((8, 15)))


@pytest.mark.parametrize("kw,match", [
    ({"p_bar": 1.5}, "p_bar"), ({"p_vertical": -0.1}, "p_vertical"), ({"size": 0}, "size"),
])
def test_bars_bad_arguments(kw, match):
    with pytest.raises(ValidationError, match=match):
        make_bars(10, **kw)


def test_bad_counts_and_probabilities():
    with pytest.raises(ValidationError, match="n_samples"):
        make_bars(0)
    with pytest.raises(ValidationError, match="p_on"):
        make_shifter(3, p_on=2.0)
    with pytest.raises(ValidationError, match="summing to 1"):
        entropy_bits([0.5, 0.6])
