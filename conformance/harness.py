"""The generic runner of the conformance suite: one call checks any op-table entry against torch.

`assert_matches_torch(op, config, seed, dtype, device)` generates the inputs once on the CPU (NumPy, from
`seed`), runs the NumPy implementation and the torch reference on them, compares every named result
(forward output, gradient of each input, parameter and buffer) with the op's tolerance from
`conformance/tolerances.py`, and in float32 also holds our result to the error budget against torch's
float64 result on the same (float32-rounded) inputs. A failure names op, stage, shapes and the worst
element and prints a snippet that reruns the case.
"""

from __future__ import annotations

import os
from collections.abc import Mapping

import numpy as np
import torch

from reference.testing.compare import Where, as_numpy, assert_close, assert_within_budget

from .tolerances import EXACT, budget, tolerance

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


def randomize_batch_norm(module, state: dict, rng: np.random.Generator) -> dict:
    """A copy of `state` whose BatchNorm entries are random: affine weights and running statistics away from
    their trivial 1/0 initial values (so eval mode and the affine gradients are exercised)."""
    from reference.numpy_nn import BatchNorm2d

    state = dict(state)
    for prefix, sub in module.named_modules():
        if isinstance(sub, BatchNorm2d):
            key = (prefix + ".") if prefix else ""
            c = sub.num_features
            state[key + "weight"] = rng.uniform(0.5, 1.5, c)
            state[key + "bias"] = rng.normal(0.0, 0.5, c)
            state[key + "running_mean"] = rng.normal(0.0, 0.5, c)
            state[key + "running_var"] = rng.uniform(0.5, 2.0, c)
            state[key + "num_batches_tracked"] = np.array(rng.integers(0, 5), dtype=np.int64)
    return state


def compare_results(ours: dict, theirs: dict, where: Where, tol_key: str | None = None) -> None:
    """assert_close on every named result both sides produced (keys starting with "_" are side data)."""
    keys_ours = {k for k in ours if not k.startswith("_")}
    keys_theirs = {k for k in theirs if not k.startswith("_")}
    if keys_ours != keys_theirs:
        raise AssertionError(f"{where.label('results')}: results differ in what they contain: only NumPy has "
                             f"{sorted(keys_ours - keys_theirs)}, only torch has {sorted(keys_theirs - keys_ours)}")
    tol = tolerance(tol_key or where.subject, where.dtype, where.device)
    for key in sorted(keys_ours, key=_stage_order):
        a, e = as_numpy(ours[key]), as_numpy(theirs[key])
        assert_close(a, e, tol if a.dtype.kind == "f" else EXACT, where, key)


def check_budget(ours: dict, theirs: dict, exact: dict, where: Where, tol_key: str | None = None) -> None:
    """float32: every float result's error against float64 within the budget set by torch's float32 error."""
    spent = budget(tol_key or where.subject)
    for key in sorted(ours, key=_stage_order):
        if key.startswith("_") or as_numpy(ours[key]).dtype.kind != "f":
            continue
        assert_within_budget(ours[key], theirs[key], exact[key], spent, where, key)


def _stage_order(key: str):
    """forward first, then input gradients, then the rest: the first failure reported is the earliest."""
    return (0 if key.startswith("forward") else 1 if key.startswith("grad[input") else 2, key)


def reproduction(op_name: str, config, seed: int, dtype: str, device: str) -> str:
    return (f"from conformance.ops import reproduce\n"
            f"from reference.testing.strategies import LayerConfig\n"
            f"reproduce({op_name!r}, {config!r}, seed={seed}, dtype={dtype!r}, device={device!r})")


def assert_matches_torch(op, config, seed: int, dtype: str, device: str = "cpu", tier: str = "op") -> None:
    """Run one op-table entry on one configuration in NumPy and torch; compare all results (and the budget)."""
    where = Where(tier, op.name, dtype, device, reproduction(op.name, config, seed, dtype, device))
    data = cast_floats(op.make_data(config, seed), np.dtype(dtype))
    ours = op.numpy(config, data)
    theirs = op.torch(config, data, ours, torch_device(device), TORCH_DTYPES[dtype])
    compare_results(ours, theirs, where)
    if dtype == "float32":
        exact = op.torch(config, cast_floats(data, np.float64), cast_floats(ours, np.float64),
                         torch.device("cpu"), torch.float64)
        check_budget(ours, theirs, exact, where)
