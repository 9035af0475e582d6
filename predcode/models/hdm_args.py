"""Checks shared by the estimators of hierarchical dynamic models (:class:`~predcode.DEM`,
:class:`~predcode.LAP`): the ``model`` parameter (an HDM, a zoo name or a saved zoo spec)
and the indices of the learned parameters and log-precision blocks."""

from __future__ import annotations

from typing import Any

import numpy as np

from ..exceptions import ValidationError
from .generalized import HDM
from .hdm_zoo import zoo_model

__all__: list[str] = []


def _as_hdm(model: Any, owner: str) -> HDM:
    """The HDM a ``model`` parameter names: an HDM, a zoo name or a zoo spec dict."""
    if isinstance(model, HDM):
        return model
    if isinstance(model, str):
        return zoo_model(model)
    if isinstance(model, dict) and "zoo" in model:
        return zoo_model(model["zoo"], **dict(model.get("params") or {}))
    if isinstance(model, dict) and "user" in model:
        raise ValidationError(
            f"{owner}.model: this DEM was saved with a user-built HDM (its f and g are "
            "Python callables, which .npz cannot hold); pass the same HDM: "
            "DEM.load(path, model=hdm)."
        )
    raise ValidationError(
        f"{owner}.model: expected an HDM (or the name of a zoo model, see "
        f"predcode.models.hdm_zoo.ZOO), got {type(model).__name__}."
    )


def _free_indices(model: HDM, learn_theta: Any, owner: str) -> np.ndarray:
    p = model.theta.size
    try:
        free = np.array([] if learn_theta is None else learn_theta, dtype=int).ravel()
    except (TypeError, ValueError):
        raise ValidationError(
            f"{owner}.learn_theta: expected parameter indices, got {learn_theta!r}."
        ) from None
    if free.size and (free.min() < 0 or free.max() >= p):
        raise ValidationError(
            f"{owner}.learn_theta: indices must lie in [0, {p}), got {free.tolist()}."
        )
    return free


def _h_indices(model: HDM, learn_h: Any, owner: str) -> np.ndarray:
    blocks = [] if learn_h is None else [tuple(b) for b in learn_h]
    for b in blocks:
        if b not in model.h_blocks:
            raise ValidationError(
                f"{owner}.learn_h: unknown block {b}; choose from {model.h_blocks}."
            )
    return np.array([model.h_blocks.index(b) for b in blocks], dtype=int)
