"""The generic runner: one call checks an op of the database, on one configuration, against torch.

`assert_matches_torch(nn, subject, config, seed, dtype, device)` makes the inputs once on the CPU (NumPy,
from `seed`), runs the implementation under test (the layer namespace `nn`) and the torch reference on them,
compares every named result (forward output, gradient of each input, parameter and buffer) with the
subject's tolerance, and in float32 also holds the result to the error budget against torch's float64 result
on the same (float32-rounded) inputs. A failure names op, stage, shapes and the worst element, and prints the
snippet that reruns the case against the same namespace.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from contextlib import contextmanager

import numpy as np
import torch

from reference.testing.compare import Budget, Tolerance, Where, as_numpy, assert_close, assert_within_budget

from .tolerances import EXACT

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


def compare_results(ours: dict, theirs: dict, where: Where, tol: Tolerance) -> None:
    """assert_close on every named result both sides produced (keys starting with "_" are side data)."""
    keys_ours = {k for k in ours if not k.startswith("_")}
    keys_theirs = {k for k in theirs if not k.startswith("_")}
    if keys_ours != keys_theirs:
        raise AssertionError(f"{where.label('results')}: results differ in what they contain: only the "
                             f"implementation has {sorted(keys_ours - keys_theirs)}, only torch has "
                             f"{sorted(keys_theirs - keys_ours)}" + _footer(where))
    for key in sorted(keys_ours, key=_stage_order):
        a, e = as_numpy(ours[key]), as_numpy(theirs[key])
        assert_close(a, e, tol if a.dtype.kind == "f" else EXACT, where, key)


def check_budget(ours: dict, theirs: dict, exact: dict, where: Where, budget: Budget) -> None:
    """float32: every float result's error against float64 within the budget set by torch's float32 error."""
    for key in sorted(ours, key=_stage_order):
        if key.startswith("_") or as_numpy(ours[key]).dtype.kind != "f":
            continue
        assert_within_budget(ours[key], theirs[key], exact[key], budget, where, key)


def _footer(where: Where) -> str:
    return f"\nreproduce with:\n    {where.reproduce}" if where.reproduce else ""


def _stage_order(key: str):
    """forward first, then input gradients, then the rest: the first failure reported is the earliest."""
    return (0 if key.startswith("forward") else 1 if key.startswith("grad[input") else 2, key)


@contextmanager
def strict_torch_numerics():
    """Conformance compares float32 with float32: no TF32 on CUDA, deterministic cuDNN algorithms (through cuDNN's
    own context manager, which also works after torch.testing's `disable_global_flags`)."""
    saved = torch.backends.cuda.matmul.allow_tf32
    torch.backends.cuda.matmul.allow_tf32 = False
    try:
        with torch.backends.cudnn.flags(enabled=torch.backends.cudnn.enabled, benchmark=False, deterministic=True,
                                        allow_tf32=False):
            yield
    finally:
        torch.backends.cuda.matmul.allow_tf32 = saved


def assert_matches_torch(nn, subject, config, seed: int, dtype: str, device: str = "cpu", tier: str = "op",
                         reproduce: str = "", label: str | None = None) -> None:
    """Run one subject of the op database on one configuration in `nn` and in torch; compare all results
    (recorded under `label`, default the subject's name)."""
    from .runners import runners

    make_data, run_ours, run_torch = runners(subject)
    where = Where(tier, label or subject.name, dtype, device, reproduce)
    data = cast_floats(make_data(config, seed), np.dtype(dtype))
    try:
        ours = run_ours(nn, config, data)
    except AssertionError as error:  # e.g. an output of the wrong shape: name the subject, add the reproduction
        raise AssertionError(f"{where.label('forward')}: {error}" + _footer(where)) from None
    theirs = run_torch(config, data, ours, torch_device(device), TORCH_DTYPES[dtype])
    compare_results(ours, theirs, where, subject.tolerance(dtype))
    if dtype == "float32":
        exact = run_torch(config, cast_floats(data, np.float64), cast_floats(ours, np.float64), torch.device("cpu"),
                          torch.float64)
        check_budget(ours, theirs, exact, where, subject.op.budget)
