"""Suite-wide pytest setup: hypothesis profiles, and CUDA tests skipping with a reason where no GPU is visible."""

from __future__ import annotations

import os

import pytest
from hypothesis import HealthCheck, settings

settings.register_profile(
    "ci", max_examples=25, derandomize=True, deadline=None, print_blob=True,
    suppress_health_check=[HealthCheck.too_slow],
)
settings.register_profile("dev", max_examples=50, deadline=None, print_blob=True)
settings.register_profile(
    "thorough", max_examples=500, deadline=None, print_blob=True, suppress_health_check=[HealthCheck.too_slow],
)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))


def cuda_available() -> bool:
    """True when torch sees a CUDA device (imported lazily: most tests never need torch)."""
    import torch

    return torch.cuda.is_available()


def pytest_collection_modifyitems(config, items):
    cuda_tests = [item for item in items if "cuda" in item.keywords]
    if cuda_tests and not cuda_available():
        skip = pytest.mark.skip(reason="no CUDA device visible to torch (torch.cuda.is_available() is False)")
        for item in cuda_tests:
            item.add_marker(skip)
