"""Exceptions raised by predcode.

Every error names the object and parameter at fault, what was expected, what
arrived and how to fix it, e.g.::

    ValidationError: PCN.gamma: must be > 0, got -0.1.
"""

from __future__ import annotations

__all__ = [
    "PredcodeError",
    "ValidationError",
    "BackendError",
    "NotFittedError",
    "DivergenceError",
]


class PredcodeError(Exception):
    """Base class of all predcode errors."""


class ValidationError(PredcodeError, ValueError):
    """A parameter or an input array is invalid (wrong shape, dtype, value, NaN)."""


class BackendError(PredcodeError, RuntimeError):
    """A backend is unavailable, or arrays live on a different device than expected."""


class NotFittedError(PredcodeError, AttributeError):
    """A model method needs learned state, but ``fit`` has not been called."""


class DivergenceError(PredcodeError, FloatingPointError):
    """An iterative scheme (settling, learning) diverged: the step size is too large."""
