"""scikit-learn's 8x8 handwritten digits as a Dataset."""

from __future__ import annotations

import numpy as np

from .base import Dataset

SPLIT_RANDOM_STATE = 42
TEST_SIZE = 0.25


def load_digits_dataset(seed: int | None = None) -> Dataset:
    """Digits as float32 (N, 1, 8, 8) in [0, 1] (pixels / 16); stratified 75/25 split, 1347/450.

    `seed` replaces the split's canonical random_state 42 when given.
    """
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    digits = load_digits()
    x = (digits.images / 16.0).astype(np.float32).reshape(-1, 1, 8, 8)
    y = digits.target.astype(np.int64)
    random_state = SPLIT_RANDOM_STATE if seed is None else seed
    x_train, x_test, y_train, y_test = train_test_split(
        x, y, test_size=TEST_SIZE, random_state=random_state, stratify=y
    )
    return Dataset(x_train, y_train, x_test, y_test, name="digits", num_classes=10, input_shape=(1, 8, 8))
