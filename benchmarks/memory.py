"""Peak memory of one call: bytes allocated above what was live when it started, NumPy and torch each by its own
allocator's bookkeeping (measured in a call of its own, never inside a timed round).

NumPy reports every array buffer to tracemalloc; torch's CPU allocator reports every allocation and free to its
profiler (`profile_memory`), in order, so the running sum's maximum is the peak. Memory a library keeps outside
its allocator (OpenBLAS's and oneDNN's own work buffers) is in neither count.
"""

from __future__ import annotations

import tracemalloc
import warnings

import numpy as np


def numpy_peak_bytes(fn) -> int:
    """The most bytes fn() had allocated at once through Python's and NumPy's allocators, beyond its start."""
    already = tracemalloc.is_tracing()
    if not already:
        tracemalloc.start()
    try:
        tracemalloc.reset_peak()
        start = tracemalloc.get_traced_memory()[0]
        fn()
        return max(0, tracemalloc.get_traced_memory()[1] - start)
    finally:
        if not already:
            tracemalloc.stop()


def torch_peak_bytes(fn) -> int | None:
    """The most bytes fn() had allocated at once through torch's CPU allocator, beyond its start; None where
    this torch's profiler gives no allocation events."""
    from torch.profiler import ProfilerActivity, profile

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "memory block allocated before profiling started": its free is not ours
        with profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof:
            fn()
    results = getattr(prof.profiler, "kineto_results", None)
    if results is None:
        return None
    events = sorted((event for event in results.events() if event.name() == "[memory]"),
                    key=lambda event: event.start_ns())
    if not events:
        return None
    return max(0, int(np.cumsum([event.nbytes() for event in events]).max()))
