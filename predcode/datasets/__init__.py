"""Seeded, offline datasets with one shape convention: ``X`` is (n_samples, n_features)."""

from .bars import (
    BARS_ENTROPY_BITS,
    bar_assignment,
    bar_templates,
    bars_distribution,
    make_bars,
    make_shifter,
    shifter_distribution,
)
from .digits import DATASETS, load_dataset, load_digits_split, load_mnist_subset, standardize
from .masks import block_size, multiblock_masks
from .natural import (
    BUNDLED_IMAGES,
    NATURAL_IMAGES,
    PatchSampler,
    dog_filter,
    gaussian_window,
    load_natural_images,
    preprocess,
    split_modules,
    whiten,
)
from .stimuli import bar, bars_of_increasing_length, grating, orientation_contrast

__all__ = [
    "DATASETS",
    "load_digits_split",
    "load_mnist_subset",
    "load_dataset",
    "standardize",
    "multiblock_masks",
    "block_size",
    "NATURAL_IMAGES",
    "BUNDLED_IMAGES",
    "load_natural_images",
    "dog_filter",
    "whiten",
    "preprocess",
    "gaussian_window",
    "PatchSampler",
    "split_modules",
    "bar",
    "bars_of_increasing_length",
    "grating",
    "orientation_contrast",
    "BARS_ENTROPY_BITS",
    "bar_templates",
    "make_bars",
    "bars_distribution",
    "make_shifter",
    "shifter_distribution",
    "bar_assignment",
]
