"""Where a run happened: CPU and its vector ISA, BLAS and its kernel, threads, GPU and library versions.

Recorded with every baseline and report, because each of these changes floating-point summation order and
so every trained model a little (the gate is built to tolerate that; the record says what was tolerated).
"""

from __future__ import annotations

import os
import platform

import numpy as np

ISA_FLAGS = ("avx512f", "avx2", "fma", "avx", "sse4_2", "neon", "asimd", "sve")


def cpu_model() -> str:
    """The CPU's model name (from /proc/cpuinfo on Linux), else platform's processor string."""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def cpu_isa() -> list[str]:
    """The vector instruction sets among ISA_FLAGS that the CPU reports (Linux; empty elsewhere)."""
    try:
        with open("/proc/cpuinfo") as f:
            flags = next((line.split(":", 1)[1].split() for line in f if line.startswith(("flags", "Features"))), [])
    except OSError:
        return []
    return [flag for flag in ISA_FLAGS if flag in flags]


def blas() -> dict:
    """NumPy's BLAS: library, version and the kernel it chose (OpenBLAS's coretype)."""
    from threadpoolctl import threadpool_info

    numpy_blas = [info for info in threadpool_info() if info["user_api"] == "blas" and "numpy" in info["filepath"]]
    if not numpy_blas:
        return {"library": "unknown"}
    info = numpy_blas[0]
    return {"library": info["internal_api"], "version": info.get("version"), "kernel": info.get("architecture")}


def describe(device: str = "cpu") -> dict:
    """The whole record: machine, BLAS, torch's CPU kernels, GPU (for cuda), versions, environment knobs.

    Thread counts are the caller's to add: training sets its own (see `train.train`)."""
    import torch

    from . import __version__

    record = {
        "cpu": cpu_model(),
        "isa": cpu_isa(),
        "cores": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count(),
        "blas": blas(),
        "torch_cpu_capability": torch.backends.cpu.get_cpu_capability(),
        "gpu": torch.cuda.get_device_name(torch.device(device)) if device.startswith("cuda") else None,
        "versions": {"python": platform.python_version(), "numpy": np.__version__, "torch": torch.__version__,
                     "reference": __version__},
        "env": {key: value for key, value in sorted(os.environ.items())
                if key.startswith(("OPENBLAS_", "MKL_", "OMP_", "ATEN_", "CUBLAS_"))},
    }
    return record
