"""Input and parameter validation shared by all model families.

Errors follow one pattern: ``Owner.parameter: expected ..., got ...; how to fix``.
"""

from __future__ import annotations

import numbers
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np

from .exceptions import BackendError, ValidationError

__all__ = [
    "check_array",
    "check_param",
    "check_choice",
    "check_dtype",
    "check_random_state",
    "check_sizes",
    "check_pair",
    "check_int",
    "check_binary",
]


def _name(owner: str | None, name: str) -> str:
    return f"{owner}.{name}" if owner else name


def check_param(
    value: Any,
    name: str,
    owner: str | None = None,
    *,
    kind: type | tuple[type, ...] = numbers.Real,
    low: float | None = None,
    high: float | None = None,
    low_inclusive: bool = False,
    high_inclusive: bool = True,
) -> Any:
    """Check a scalar parameter's type and range.

    Parameters
    ----------
    value : object
        The value to check.
    name : str
        Parameter name, used in the message.
    owner : str, optional
        Class or function owning the parameter, e.g. ``"PCN"``.
    kind : type or tuple of types
        Accepted types (``numbers.Real``, ``numbers.Integral``, ``bool`` ...).
    low, high : float, optional
        Bounds; ``low`` is exclusive unless ``low_inclusive``.
    low_inclusive, high_inclusive : bool
        Whether the bounds are inclusive.

    Returns
    -------
    object
        ``value`` unchanged.

    Raises
    ------
    ValidationError
        If the type or range is wrong.
    """
    full = _name(owner, name)
    if isinstance(value, bool) and kind is not bool and bool not in np.atleast_1d(kind):
        raise ValidationError(f"{full}: expected a number, got the bool {value!r}.")
    if not isinstance(value, kind):
        want = getattr(kind, "__name__", str(kind))
        raise ValidationError(
            f"{full}: expected {want}, got {type(value).__name__} {value!r}."
        )
    if isinstance(value, numbers.Real) and not np.isfinite(value):
        raise ValidationError(f"{full}: must be finite, got {value!r}.")
    if low is not None:
        bad = value < low if low_inclusive else value <= low
        if bad:
            op = ">=" if low_inclusive else ">"
            raise ValidationError(f"{full}: must be {op} {low}, got {value!r}.")
    if high is not None:
        bad = value > high if high_inclusive else value >= high
        if bad:
            op = "<=" if high_inclusive else "<"
            raise ValidationError(f"{full}: must be {op} {high}, got {value!r}.")
    return value


def check_choice(value: Any, name: str, choices: Iterable[str], owner: str | None = None) -> str:
    """Check that ``value`` is one of ``choices`` (strings)."""
    choices = tuple(choices)
    if value not in choices:
        raise ValidationError(
            f"{_name(owner, name)}: unknown option {value!r}; choose one of "
            + ", ".join(repr(c) for c in choices)
            + "."
        )
    return value


def check_dtype(dtype: Any, name: str = "dtype", owner: str | None = None) -> np.dtype:
    """Resolve ``dtype`` to ``float32`` or ``float64``."""
    if dtype is None:
        raise ValidationError(
            f"{_name(owner, name)}: expected 'float32' or 'float64', got None."
        )
    try:
        dt = np.dtype(dtype)
    except TypeError as exc:
        raise ValidationError(
            f"{_name(owner, name)}: expected 'float32' or 'float64', got {dtype!r}."
        ) from exc
    if dt not in (np.float32, np.float64):
        raise ValidationError(
            f"{_name(owner, name)}: expected 'float32' or 'float64', got {dt.name!r}; "
            "predcode computes in floating point only."
        )
    return dt


def check_sizes(sizes: Any, name: str = "sizes", owner: str | None = None) -> tuple[int, ...]:
    """Check a layer-size sequence: at least two positive integers."""
    full = _name(owner, name)
    if isinstance(sizes, np.ndarray) and sizes.ndim == 1:
        sizes = sizes.tolist()
    if isinstance(sizes, (str, bytes)) or not isinstance(sizes, Sequence):
        raise ValidationError(
            f"{full}: expected a sequence of layer widths such as (64, 32, 10), got {sizes!r}."
        )
    if len(sizes) < 2:
        raise ValidationError(
            f"{full}: expected at least two layers (input and output), got {tuple(sizes)!r}."
        )
    out = []
    for i, n in enumerate(sizes):
        if isinstance(n, bool) or not isinstance(n, numbers.Integral) or n < 1:
            raise ValidationError(
                f"{full}[{i}]: expected a positive integer width, got {n!r}."
            )
        out.append(int(n))
    return tuple(out)


def check_array(
    X: Any,
    name: str = "X",
    owner: str | None = None,
    *,
    ndim: int | None = 2,
    shape: Sequence[int | None] | None = None,
    dtype: np.dtype | None = None,
    xp: Any = None,
    allow_nonfinite: bool = False,
    layout: str | None = None,
) -> Any:
    """Validate an array: kind, dimensionality, shape, dtype and finiteness.

    Parameters
    ----------
    X : array_like
        The input. Lists and numpy arrays are accepted on host backends; on the
        cupy backend ``X`` must already be a cupy array (no silent host→device copy).
    name, owner : str
        Used in messages.
    ndim : int, optional
        Required number of dimensions.
    shape : sequence of int or None, optional
        Required shape; ``None`` entries are free.
    dtype : numpy dtype, optional
        Cast to this floating dtype (a cast, never a device move).
    xp : module, optional
        Array namespace the result must belong to (numpy or cupy).
    allow_nonfinite : bool
        Skip the NaN/inf check.
    layout : str, optional
        What the axes are, for messages, e.g. ``"(n, 64) = (n, 8*8) flattened
        images"``; by default the shape (and ``(n_samples, n_features)`` for 2-D).

    Returns
    -------
    array
        ``X`` as an array of namespace ``xp`` and dtype ``dtype``.
    """
    from .backend import array_namespace  # local: avoid import cycle

    full = _name(owner, name)
    if xp is None:
        xp = np
    src = array_namespace(X)
    if src is not xp:
        target = "cupy" if xp is not np else "numpy"
        raise BackendError(
            f"{full}: expected a {xp.__name__} array for this backend, got a "
            f"{src.__name__} array; move it explicitly with "
            f"predcode.to_device({name}, {target!r})."
        ) from None
    if xp is np:
        try:
            X = np.asarray(X)
        except Exception as exc:  # ragged lists etc.
            raise ValidationError(f"{full}: could not convert to an array ({exc}).") from exc
    if X.dtype.kind not in "biuf":
        raise ValidationError(
            f"{full}: expected numeric data, got dtype {X.dtype}; convert with "
            f"{name}.astype('float64')."
        )
    if shape is not None and ndim is not None and len(shape) != ndim:
        ndim = len(shape)
    if ndim is None and shape is not None:
        ndim = len(shape)
    if ndim is not None and X.ndim != ndim:
        raise ValidationError(
            f"{full}: expected shape {_wanted(ndim, shape, layout)}, got {tuple(X.shape)}"
            f"{_reshape_hint(X.shape, ndim, shape, name)}."
        )
    if shape is not None:
        for axis, (got, want) in enumerate(zip(X.shape, shape, strict=True)):
            if want is not None and got != want:
                raise ValidationError(
                    f"{full}: expected shape {layout or _pretty(shape)}, got {tuple(X.shape)} "
                    f"(axis {axis} has {got}, expected {want})."
                )
    if X.shape[0] == 0 if X.ndim else False:
        raise ValidationError(f"{full}: got an empty array of shape {tuple(X.shape)}.")
    if dtype is not None and X.dtype != dtype:
        X = X.astype(dtype)
    if not allow_nonfinite and X.dtype.kind == "f" and not bool(xp.isfinite(X).all()):
        n_bad = int((~xp.isfinite(X)).sum())
        raise ValidationError(
            f"{full}: contains {n_bad} NaN or infinite value(s); clean or impute them first."
        )
    return X


def _pretty(shape: Sequence[int | None]) -> str:
    return "(" + ", ".join("n" if w is None else str(w) for w in shape) + ")"


def _wanted(ndim: int, shape: Sequence[int | None] | None, layout: str | None) -> str:
    """The expected shape in words: the layout if given, else the shape and its axes."""
    if layout:
        return layout
    if ndim == 2:
        if shape is not None and shape[1] is not None:
            return f"{_pretty(shape)} = (n_samples, n_features)"
        return "(n_samples, n_features)"
    if shape is not None and any(w is not None for w in shape):
        return _pretty(shape)
    return f"with {ndim} dimensions"


def _reshape_hint(got: tuple[int, ...], ndim: int, shape: Sequence[int | None] | None,
                  name: str) -> str:
    """``"; use X.reshape(...)"`` where a reshape gives the wanted dimensions, else ``""``."""
    width = shape[-1] if shape is not None else None
    size = int(np.prod(got)) if got else 1
    if ndim == 2 and len(got) <= 1:
        if width is None or size == width:
            return f"; for a single sample use {name}.reshape(1, -1)"
        if width == 1:
            return f"; for a single feature use {name}.reshape(-1, 1)"
        if size % width == 0:
            return (f"; each sample has {width} features: use {name}.reshape(-1, {width}) "
                    f"for {size // width} samples")
        return f"; each sample has {width} features"
    if len(got) > ndim >= 1:
        flat = int(np.prod(got[ndim - 1:]))
        if width is None or flat == width:
            lead = ", ".join([f"{name}.shape[{i}]" for i in range(ndim - 1)] + ["-1"])
            if ndim == 2:
                lead = f"len({name}), -1"
            return f"; flatten the trailing axes with {name}.reshape({lead})"
        return ""
    if len(got) == ndim - 1 and shape is not None and (width is None or got[-1] == width):
        return f"; for a single sample use {name}[None]"
    return ""


def check_random_state(random_state: Any, name: str = "random_state", owner: str | None = None):
    """Turn ``random_state`` into a :class:`numpy.random.Generator`.

    ``None`` gives a fresh unseeded generator; an int seeds one; a Generator is
    passed through.
    """
    if random_state is None or isinstance(random_state, (numbers.Integral, np.integer)):
        if isinstance(random_state, bool):
            raise ValidationError(f"{_name(owner, name)}: expected an int seed, got a bool.")
        if random_state is not None and random_state < 0:
            raise ValidationError(
                f"{_name(owner, name)}: expected a non-negative int seed, got {random_state}."
            )
        return np.random.default_rng(random_state)
    if isinstance(random_state, np.random.Generator):
        return random_state
    raise ValidationError(
        f"{_name(owner, name)}: expected None, an int seed or numpy.random.Generator, "
        f"got {type(random_state).__name__}."
    )


def check_pair(value: Any, name: str, owner: str | None = None,
               what: str = "positive int") -> tuple[int, int]:
    """A ``(height, width)`` pair of positive ints (numpy ints and arrays accepted)."""
    if isinstance(value, np.ndarray):
        value = value.tolist()
    if (
        isinstance(value, (str, bytes))
        or not isinstance(value, Sequence)
        or len(value) != 2
        or any(
            isinstance(v, bool) or not isinstance(v, (numbers.Integral, np.integer)) or v < 1
            for v in value
        )
    ):
        raise ValidationError(
            f"{_name(owner, name)}: expected a (height, width) pair of {what}s, got {value!r}."
        )
    return int(value[0]), int(value[1])


def check_int(value: Any, name: str, owner: str, low: int = 1) -> int:
    """An int (numpy ints accepted, bools not) that is at least ``low``."""
    if isinstance(value, bool) or not isinstance(value, (numbers.Integral, np.integer)):
        raise ValidationError(
            f"{owner}.{name}: expected an int, got {type(value).__name__} {value!r}."
        )
    if value < low:
        raise ValidationError(f"{owner}.{name}: must be >= {low}, got {value!r}.")
    return int(value)


def check_binary(X: Any, name: str, owner: str) -> None:
    """Raise :class:`ValidationError` unless every entry of ``X`` is exactly 0 or 1.

    ``X`` may be a numpy or a cupy array (the check runs where ``X`` lives).
    """
    bad = (X != 0) & (X != 1)
    n_bad = int(bad.sum())
    if n_bad:
        example = float(X[bad][0])
        raise ValidationError(
            f"{owner}.{name}: expected binary data (every entry 0 or 1), got {n_bad} other "
            f"value(s), e.g. {example!r}; binarise first, e.g. (X > 0.5).astype(float)."
        )
