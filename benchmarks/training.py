"""The datasets the epoch benchmarks need (MNIST skips with the fetch command when it is not on disk)."""

import pytest

from reference.data import DataError, load_dataset


def dataset_or_skip(name: str):
    """The dataset `name`; MNIST from $REFERENCE_DATA_DIR or ~/.cache/reference, else the test is skipped."""
    try:
        return load_dataset(name)
    except DataError as error:
        pytest.skip(f"{name} is not available ({error}); run: python -m reference fetch mnist")
