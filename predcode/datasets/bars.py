r"""The bars and shifter problems of the Helmholtz-machine papers, as seeded generators.

**Bars** (Hinton, Dayan, Frey & Neal 1995). A ``size`` × ``size`` binary image
is made in two stages: an orientation is chosen, vertical with probability
``p_vertical`` (2/3 in the paper) or horizontal; then each of the ``size`` bars
of that orientation is on independently with probability ``p_bar`` (0.2);
a pixel is on when a bar through it is on. The blank image and the all-on image
arise from both orientations, so the 4×4 problem has :math:`16 + 16 - 2 = 30`
distinct images; their entropy is 3.4284 bits (computed exactly by
:func:`bars_distribution`).

**Shifter** (Dayan, Hinton, Neal & Zemel 1995, Fig. 1). Four rows of ``width``
binary pixels: the bottom row is random (each pixel on with probability
``p_on``), the top row is the bottom row shifted one pixel left or right with
wrap-around (direction chosen with probability 1/2), and the two middle rows
duplicate the row next to them (row 1 = row 0, row 2 = row 3), which the paper
adds to make the problem easier.

Images are rows of ``X`` (row-major pixels), float64 zeros and ones.

References
----------
Hinton, G. E., Dayan, P., Frey, B. J. & Neal, R. M. (1995). The wake-sleep
algorithm for unsupervised neural networks. *Science* 268, 1158-1161.

Dayan, P., Hinton, G. E., Neal, R. M. & Zemel, R. S. (1995). The Helmholtz
machine. *Neural Computation* 7(5), 889-904.
"""

from __future__ import annotations

import itertools
from typing import Any

import numpy as np

from ..exceptions import ValidationError
from ..validation import check_int, check_param, check_random_state

__all__ = [
    "BARS_ENTROPY_BITS",
    "bar_templates",
    "make_bars",
    "bars_distribution",
    "make_shifter",
    "shifter_distribution",
    "bar_assignment",
    "entropy_bits",
]

#: Entropy of the 4×4 bars distribution of Hinton et al. (1995), in bits
#: (exact enumeration with p_vertical = 2/3, p_bar = 0.2).
BARS_ENTROPY_BITS = 3.4284049666407332


def _check_prob(p: Any, name: str, owner: str) -> float:
    return float(check_param(p, name, owner, low=0.0, high=1.0, low_inclusive=True))


def bar_templates(size: int = 4) -> np.ndarray:
    """The ``2 size`` bar images: vertical bars (columns) first, then horizontal (rows).

    Returns
    -------
    ndarray of shape (2 * size, size * size)
        ``templates[k]`` is bar ``k`` as a flat 0/1 image; ``k < size`` is the
        vertical bar in column ``k``, ``k >= size`` the horizontal bar in row
        ``k - size``.
    """
    size = check_int(size, "size", "bar_templates")
    out = np.zeros((2 * size, size, size))
    for k in range(size):
        out[k, :, k] = 1.0
        out[size + k, k, :] = 1.0
    return out.reshape(2 * size, size * size)


def make_bars(
    n_samples: int,
    *,
    size: int = 4,
    p_vertical: float = 2.0 / 3.0,
    p_bar: float = 0.2,
    random_state: Any = None,
    return_causes: bool = False,
):
    """Draw bars images (Hinton et al. 1995).

    Parameters
    ----------
    n_samples : int
        Number of images.
    size : int
        Images are ``size`` × ``size`` (4 in the paper).
    p_vertical : float
        Probability of the vertical orientation (2/3 in the paper).
    p_bar : float
        Probability that each bar of the chosen orientation is on (0.2).
    random_state : int, Generator or None
        Seed.
    return_causes : bool
        Also return the causes: a (n, 2 size) 0/1 array of which bars are on
        (columns ordered as :func:`bar_templates`).

    Returns
    -------
    X : ndarray of shape (n_samples, size * size)
        Float64 zeros and ones.
    causes : ndarray of shape (n_samples, 2 * size), optional
    """
    o = "make_bars"
    n = check_int(n_samples, "n_samples", o)
    size = check_int(size, "size", o)
    pv = _check_prob(p_vertical, "p_vertical", o)
    pb = _check_prob(p_bar, "p_bar", o)
    rng = check_random_state(random_state, owner=o)
    vertical = rng.random(n) < pv
    on = (rng.random((n, size)) < pb).astype(float)
    causes = np.zeros((n, 2 * size))
    causes[vertical, :size] = on[vertical]
    causes[~vertical, size:] = on[~vertical]
    X = np.minimum(causes @ bar_templates(size), 1.0)
    return (X, causes) if return_causes else X


def _merge(images: list[np.ndarray], probs: list[float]) -> tuple[np.ndarray, np.ndarray]:
    """Sum the probabilities of identical images; sort by image (bits as a number)."""
    table: dict[bytes, float] = {}
    keep: dict[bytes, np.ndarray] = {}
    for img, p in zip(images, probs, strict=True):
        key = img.astype(np.uint8).tobytes()
        table[key] = table.get(key, 0.0) + p
        keep[key] = img
    keys = sorted(table, key=lambda k: tuple(np.frombuffer(k, np.uint8)))
    X = np.array([keep[k] for k in keys], dtype=float)
    P = np.array([table[k] for k in keys])
    nz = P > 0
    return X[nz], P[nz]


def bars_distribution(
    size: int = 4, *, p_vertical: float = 2.0 / 3.0, p_bar: float = 0.2
) -> tuple[np.ndarray, np.ndarray]:
    """The exact bars distribution: every distinct image and its probability.

    Images made by both orientations (blank, all-on) are counted once, with
    their probabilities summed. For the paper's 4×4 problem this gives 30
    images and an entropy of 3.4284 bits.

    Returns
    -------
    images : ndarray of shape (K, size * size)
    probs : ndarray of shape (K,)
        Sums to 1.
    """
    o = "bars_distribution"
    size = check_int(size, "size", o)
    if size > 10:
        raise ValidationError(f"{o}.size: enumeration needs size <= 10, got {size}.")
    pv = _check_prob(p_vertical, "p_vertical", o)
    pb = _check_prob(p_bar, "p_bar", o)
    T = bar_templates(size)
    images, probs = [], []
    for orient, p_o in ((0, pv), (1, 1.0 - pv)):
        for bits in itertools.product((0, 1), repeat=size):
            b = np.array(bits, dtype=float)
            k = int(b.sum())
            p = p_o * pb**k * (1.0 - pb) ** (size - k)
            images.append(np.minimum(b @ T[orient * size:(orient + 1) * size], 1.0))
            probs.append(p)
    return _merge(images, probs)


def _shifter_image(bottom: np.ndarray, direction: np.ndarray) -> np.ndarray:
    """Rows (top, top, bottom, bottom); top = bottom rolled by +1 (right) or -1 (left)."""
    n, w = bottom.shape
    right = np.roll(bottom, 1, axis=1)
    left = np.roll(bottom, -1, axis=1)
    top = np.where(direction[:, None] == 1, right, left)
    return np.concatenate([top, top, bottom, bottom], axis=1).reshape(n, 4 * w)


def make_shifter(
    n_samples: int,
    *,
    width: int = 8,
    p_on: float = 0.2,
    random_state: Any = None,
    return_direction: bool = False,
):
    """Draw shifter images (Dayan et al. 1995): 4 rows of ``width`` pixels.

    Parameters
    ----------
    n_samples : int
        Number of images.
    width : int
        Pixels per row (8 in the paper).
    p_on : float
        Probability that a pixel of the random bottom row is on.
    random_state : int, Generator or None
        Seed.
    return_direction : bool
        Also return the shift direction (1 = right, 0 = left).

    Returns
    -------
    X : ndarray of shape (n_samples, 4 * width)
    direction : ndarray of shape (n_samples,), optional
    """
    o = "make_shifter"
    n = check_int(n_samples, "n_samples", o)
    width = check_int(width, "width", o, low=2)
    p = _check_prob(p_on, "p_on", o)
    rng = check_random_state(random_state, owner=o)
    direction = (rng.random(n) < 0.5).astype(int)
    bottom = (rng.random((n, width)) < p).astype(float)
    X = _shifter_image(bottom, direction)
    return (X, direction) if return_direction else X


def shifter_distribution(width: int = 8, *, p_on: float = 0.2) -> tuple[np.ndarray, np.ndarray]:
    """The exact shifter distribution (distinct images and probabilities).

    Rows that look the same shifted either way (period 1 or 2) are counted once.
    """
    o = "shifter_distribution"
    width = check_int(width, "width", o, low=2)
    if width > 12:
        raise ValidationError(f"{o}.width: enumeration needs width <= 12, got {width}.")
    p = _check_prob(p_on, "p_on", o)
    rows = np.array(list(itertools.product((0, 1), repeat=width)), dtype=float)
    k = rows.sum(axis=1)
    pr = p**k * (1.0 - p) ** (width - k)
    images, probs = [], []
    for d in (0, 1):
        imgs = _shifter_image(rows, np.full(rows.shape[0], d))
        images.extend(imgs)
        probs.extend(0.5 * pr)
    return _merge(images, probs)


def entropy_bits(probs: Any) -> float:
    """Entropy :math:`-\\sum_k p_k \\log_2 p_k` of a distribution, in bits."""
    p = np.asarray(probs, dtype=float)
    if p.ndim != 1 or np.any(p < 0) or not np.isclose(p.sum(), 1.0, atol=1e-9):
        raise ValidationError(
            f"entropy_bits.probs: expected a 1-D probability vector summing to 1, got "
            f"shape {p.shape} with sum {p.sum() if p.size else 0:g}."
        )
    p = p[p > 0]
    return float(-(p * np.log2(p)).sum())


def bar_assignment(fields: Any, size: int = 4, *, ratio: float = 2.0) -> dict[str, Any]:
    """Which bar, if any, each hidden unit codes; and whether all bars are coded once.

    A unit's *field* is its effect on the pixels (for a Helmholtz machine
    :math:`\\sigma(G_{:j} + c) - \\sigma(c)`; for a linear decoder its weight
    column). The unit codes bar ``k`` when its ``size`` largest pixels are
    exactly bar ``k``'s pixels and the smallest of them exceeds ``ratio`` times
    the largest of the others (and is positive).

    Parameters
    ----------
    fields : array of shape (n_units, size * size)
    size : int
    ratio : float

    Returns
    -------
    dict
        ``"bars"``: per unit the bar index or -1; ``"correct"``: every one of
        the ``2 size`` bars coded by exactly one unit (needs ``n_units == 2 size``
        for equality; extra units must code nothing).
    """
    F = np.asarray(fields, dtype=float)
    if F.ndim != 2 or F.shape[1] != size * size:
        raise ValidationError(
            f"bar_assignment.fields: expected shape (n_units, {size * size}), got {F.shape}."
        )
    T = bar_templates(size).astype(bool)
    bars = []
    for f in F:
        order = np.argsort(f)[::-1]
        top, rest = order[:size], order[size:]
        mask = np.zeros(size * size, dtype=bool)
        mask[top] = True
        match = np.flatnonzero((T == mask).all(axis=1))
        lo, hi = f[top].min(), max(f[rest].max(), 0.0)
        bars.append(int(match[0]) if match.size and lo > 0 and lo > ratio * hi else -1)
    coded = [b for b in bars if b >= 0]
    correct = sorted(coded) == list(range(2 * size))
    return {"bars": bars, "correct": bool(correct)}
