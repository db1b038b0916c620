"""Suite-wide pytest setup: hypothesis profiles, one thread per xdist worker, and CUDA tests skipping with
a reason where no GPU is visible."""

from __future__ import annotations

import os
import sys

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


def pytest_configure(config):
    """In an xdist worker use one BLAS/OpenMP thread: `-n auto` already runs a worker per core, and
    oversubscribed OpenBLAS spins made small products tens of times slower on a 2-core machine."""
    if not hasattr(config, "workerinput"):
        return
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    import numpy  # noqa: F401  (load the BLAS so that threadpoolctl can see and limit it)
    from threadpoolctl import threadpool_limits

    threadpool_limits(limits=1, user_api="blas")
    if "torch" in sys.modules:
        sys.modules["torch"].set_num_threads(1)


def pytest_collection_modifyitems(config, items):
    cuda_tests = [item for item in items if "cuda" in item.keywords]
    if cuda_tests and not cuda_available():
        skip = pytest.mark.skip(reason="no CUDA device visible to torch (torch.cuda.is_available() is False)")
        for item in cuda_tests:
            item.add_marker(skip)
