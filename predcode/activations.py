"""Activation functions and their derivatives, written against an array namespace.

Each activation ``f`` comes with ``f'`` expressed through ``f(x)`` where that is
cheaper (``tanh' = 1 - tanh^2``, ``sigmoid' = s (1 - s)``), the form every
kernel uses.
"""

from __future__ import annotations

from typing import Any

from .validation import check_choice

__all__ = ["ACTIVATIONS", "ACTIVATION_CODES", "apply", "derivative", "check_activation"]

#: Supported activation names.
ACTIVATIONS = ("linear", "tanh", "sigmoid", "relu")
#: Integer codes used by compiled kernels (numba, CUDA).
ACTIVATION_CODES = {name: i for i, name in enumerate(ACTIVATIONS)}


def check_activation(name: Any, owner: str | None = None) -> str:
    """Validate an activation name."""
    return check_choice(name, "activation", ACTIVATIONS, owner)


def apply(name: str, x: Any, xp: Any) -> Any:
    """``f(x)`` for activation ``name``."""
    if name == "linear":
        return x.copy()
    if name == "tanh":
        return xp.tanh(x)
    if name == "sigmoid":
        return 0.5 * (1.0 + xp.tanh(0.5 * x))  # overflow-free logistic
    if name == "relu":
        return xp.maximum(x, 0)
    check_activation(name)
    raise AssertionError("unreachable")


def derivative(name: str, x: Any, fx: Any, xp: Any) -> Any:
    """``f'(x)`` for activation ``name``, given ``fx = f(x)``.

    For ReLU the derivative at 0 is taken as 0.
    """
    if name == "linear":
        return xp.ones_like(x)
    if name == "tanh":
        return 1.0 - fx * fx
    if name == "sigmoid":
        return fx * (1.0 - fx)
    if name == "relu":
        return (x > 0).astype(x.dtype)
    check_activation(name)
    raise AssertionError("unreachable")
