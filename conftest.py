"""Suite-wide pytest setup: hypothesis profiles, one thread per xdist worker, CUDA tests skipping with a reason
where no GPU is visible, and the slow tier skipping unless selected."""

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
    """Under xdist, give each worker cores / workers threads in torch's and the BLAS's pools. N workers each
    spinning pools of all cores oversubscribe the machine (measured on 2 cores with 2 workers: a tiny
    batch-norm step 0.1 ms alone vs 47 ms oversubscribed; an (8, 4608) x (4608, 512) GEMM 5 ms vs 166 ms)."""
    workers = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "0"))
    if not hasattr(config, "workerinput") or workers <= 1:
        return
    threads = max(1, len(os.sched_getaffinity(0)) // workers)
    os.environ.setdefault("OMP_NUM_THREADS", str(threads))
    os.environ.setdefault("REFERENCE_JOBS", str(threads))  # the accuracy command's parallel trainings, likewise
    import numpy  # noqa: F401  (load the BLAS so that threadpoolctl can see and limit it)
    from threadpoolctl import threadpool_limits

    threadpool_limits(limits=threads, user_api="blas")
    if "torch" in sys.modules:
        sys.modules["torch"].set_num_threads(threads)


@pytest.fixture(autouse=True)
def reserved_cores(request, tmp_path_factory):
    """Under xdist, each test holds a core token while it runs, and a test marked `cores(n)` (a subprocess with n
    threads of its own) holds n: it starts when n - 1 other workers are between tests, and they wait for it. So a
    2-thread emulated machine gets the cores it asks for instead of spinning beside another worker's test
    (measured on 2 cores: 101 s oversubscribed). Tokens are lock files in the session's shared temporary folder,
    taken under one mutex so that a waiting test is not starved; max(cores, workers) tokens, one per worker home."""
    workers = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "0"))
    if workers <= 1:
        yield
        return
    import fcntl

    marker = request.node.get_closest_marker("cores")
    tokens = max(len(os.sched_getaffinity(0)), workers)
    home = int(os.environ["PYTEST_XDIST_WORKER"][2:])
    wanted = [(home + k) % tokens for k in range(min(marker.args[0] if marker else 1, tokens))]
    folder = tmp_path_factory.getbasetemp().parent
    held = []
    with open(folder / "cores.mutex", "a") as mutex:
        fcntl.flock(mutex, fcntl.LOCK_EX)
        for index in wanted:
            held.append(open(folder / f"core-{index}.lock", "a"))  # noqa: SIM115  (closed below)
            fcntl.flock(held[-1], fcntl.LOCK_EX)
        fcntl.flock(mutex, fcntl.LOCK_UN)
    try:
        yield
    finally:
        for token in held:
            token.close()  # closing releases the lock


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_make_scheduler(config, log):
    """`-n` without `--dist` schedules by work stealing: a worker that runs out of tests takes half of another's
    queue, so the long trainings do not leave one worker finishing alone (on 2 cores: 275 s against 294 s for
    xdist's default even split, measured back to back). An explicit `--dist` is obeyed."""
    explicit = any(arg == "-d" or arg.startswith("--dist") for arg in config.invocation_params.args)
    if config.getvalue("dist") != "load" or explicit:
        return None
    from xdist.scheduler import WorkStealingScheduling

    return WorkStealingScheduling(config, log)


def slow_selected(config) -> bool:
    """The slow tier runs when a `-m` expression names it (`tox -e slow`) or REFERENCE_RUN_SLOW=1."""
    return "slow" in (config.getoption("markexpr") or "") or os.environ.get("REFERENCE_RUN_SLOW") == "1"


def pytest_collection_modifyitems(config, items):
    cuda_tests = [item for item in items if "cuda" in item.keywords]
    if cuda_tests and not cuda_available():
        skip = pytest.mark.skip(reason="no CUDA device visible to torch (torch.cuda.is_available() is False)")
        for item in cuda_tests:
            item.add_marker(skip)
    if not slow_selected(config):
        skip = pytest.mark.skip(reason="slow tier: tox -e slow (pytest -m slow) or REFERENCE_RUN_SLOW=1")
        for item in items:
            if "slow" in item.keywords:
                item.add_marker(skip)
