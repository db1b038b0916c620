"""Moving data between NumPy and torch: inputs are always made on the CPU in NumPy, then moved to a device."""

from __future__ import annotations

import os
from collections.abc import Mapping

import numpy as np
import torch

TORCH_DTYPES = {"float32": torch.float32, "float64": torch.float64}


def torch_device(device: str) -> torch.device:
    """"cpu", or "cuda" mapped onto the visible GPUs by xdist worker number (gw0 -> cuda:0, gw1 -> cuda:1, ...)."""
    if device != "cuda":
        return torch.device(device)
    worker = os.environ.get("PYTEST_XDIST_WORKER", "gw0")
    index = int(worker[2:]) if worker[2:].isdigit() else 0
    return torch.device("cuda", index % max(torch.cuda.device_count(), 1))


def to_torch(array, device, dtype: torch.dtype | None = None, requires_grad: bool = False) -> torch.Tensor:
    """A tensor from a CPU NumPy array, moved to `device` (inputs are always generated on the CPU)."""
    tensor = torch.from_numpy(np.array(array, copy=True)).to(device)  # keeps 0-d arrays 0-d
    if dtype is not None and tensor.is_floating_point():
        tensor = tensor.to(dtype)
    return tensor.requires_grad_(requires_grad)


def cast_floats(data, dtype):
    """`data` (arrays, nested in dicts/lists/tuples) with every float array cast to `dtype`; the rest as is."""
    if isinstance(data, np.ndarray):
        return data.astype(dtype) if data.dtype.kind == "f" else data
    if isinstance(data, Mapping):
        return {key: cast_floats(value, dtype) for key, value in data.items()}
    if isinstance(data, (list, tuple)):
        return type(data)(cast_floats(value, dtype) for value in data)
    return data


def torch_state(module) -> dict:
    """A torch module's state_dict as float64 / int64 NumPy arrays on the CPU."""
    return {key: value.detach().cpu().numpy().copy() for key, value in module.state_dict().items()}
