"""The `Dataset` record every loader returns, the data error type and the default data folder."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np


class DataError(Exception):
    """A data folder or file is missing, malformed or fails its checksum; the message says how to fix it."""


@dataclass(frozen=True, eq=False)
class Dataset:
    """Train/test arrays: x float32 (N, C, H, W), y int64 (N,); `mean`/`std` are per channel, already applied."""

    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    name: str
    num_classes: int
    input_shape: tuple[int, int, int]
    mean: tuple[float, ...] | None = None
    std: tuple[float, ...] | None = None
    fingerprint: str | None = None  # SHA-256 of the files of an unverified dataset (`idx`); None: a known one


def default_data_dir() -> Path:
    """`$REFERENCE_DATA_DIR` when set, else `~/.cache/reference`."""
    env = os.environ.get("REFERENCE_DATA_DIR")
    if env:
        return Path(env).expanduser()
    return Path.home() / ".cache" / "reference"
