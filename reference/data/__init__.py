"""Datasets for the zoo: sklearn digits, MNIST (IDX files) and synthetic shapes, as NCHW float32 arrays."""

from __future__ import annotations

import os

from .base import DataError, Dataset, default_data_dir
from .digits import load_digits_dataset
from .idx import atomic_write_bytes, read_idx, write_idx
from .mnist import fetch_mnist, find_idx_files, idx_fingerprint, load_idx, load_mnist, mnist_dataset, read_mnist_idx
from .synthetic import SHAPE_NAMES, make_shapes_dataset

DATASET_NAMES = ("digits", "mnist", "shapes", "idx")

__all__ = [
    "DATASET_NAMES",
    "SHAPE_NAMES",
    "DataError",
    "Dataset",
    "atomic_write_bytes",
    "default_data_dir",
    "fetch_mnist",
    "find_idx_files",
    "idx_fingerprint",
    "load_dataset",
    "load_digits_dataset",
    "load_idx",
    "load_mnist",
    "make_shapes_dataset",
    "mnist_dataset",
    "read_idx",
    "read_mnist_idx",
    "write_idx",
]


def load_dataset(name: str, data_dir: str | os.PathLike | None = None, seed: int = 0) -> Dataset:
    """The dataset called `name`; `data_dir` locates MNIST (or the files of `idx`), `seed` generates shapes (digits'
    split is fixed)."""
    if name == "digits":
        return load_digits_dataset()
    if name == "mnist":
        return load_mnist(data_dir)
    if name == "shapes":
        return make_shapes_dataset(seed=seed)
    if name == "idx":
        return load_idx(data_dir)
    raise ValueError(f"unknown dataset {name!r}; expected one of: {', '.join(DATASET_NAMES)}")
