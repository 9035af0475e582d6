"""Seeded, offline datasets with one shape convention: ``X`` is (n_samples, n_features)."""

from .digits import DATASETS, load_dataset, load_digits_split, load_mnist_subset, standardize

__all__ = ["DATASETS", "load_digits_split", "load_mnist_subset", "load_dataset", "standardize"]
