"""The generic runner: one call checks an op of the database, on one configuration, against torch.

`assert_matches_torch(nn, subject, config, seed, dtype, device)` makes the inputs once on the CPU (NumPy,
from `seed`), runs the implementation under test (the layer namespace `nn`) and the torch reference on them,
compares every named result (forward output, gradient of each input, parameter and buffer) with the
subject's tolerance, and in float32 also holds the result to the error budget against torch's float64 result
on the same (float32-rounded) inputs; where torch float32 is itself out of tolerance of that float64 result and
ours is not close to it, the float64 value is the reference (`arbitrated`). A failure names op, stage, shapes and
the worst element, and prints the snippet that reruns the case against the same namespace.
"""

from __future__ import annotations

from contextlib import contextmanager

import numpy as np
import torch

from reference.testing.compare import (
    Budget,
    Tolerance,
    Where,
    as_numpy,
    assert_close,
    assert_within_budget,
    error_stats,
    record,
)

from .regimes import GAUSSIAN
from .tensors import TORCH_DTYPES, cast_floats, torch_device
from .tolerances import EXACT
from .verdicts import FORWARD_ONLY, as_result, implementation


def compare_results(ours: dict, theirs: dict, where: Where, tol: Tolerance) -> None:
    """assert_close on every named result both sides produced (keys starting with "_" are side data). Results of
    the wrong shape, dtype or type make the implementation Crashed; for a forward-only implementation (its
    backward raised NotImplementedError) the gradients are left out."""
    keys_ours = {k for k in ours if not k.startswith("_")}
    keys_theirs = {k for k in theirs if not k.startswith("_") and not (FORWARD_ONLY in ours and k.startswith("grad["))}
    if keys_ours != keys_theirs:
        raise AssertionError(f"{where.label('results')}: results differ in what they contain: only the "
                             f"implementation has {sorted(keys_ours - keys_theirs)}, only torch has "
                             f"{sorted(keys_theirs - keys_ours)}" + _footer(where))
    failures = []
    for key in sorted(keys_ours, key=_stage_order):
        e = as_numpy(theirs[key])
        a = as_result(ours[key], e, f"{where.label(key)}")
        try:
            assert_close(a, e, tol if a.dtype.kind == "f" else EXACT, where, key)
        except AssertionError as error:  # every result is compared: one difference must not hide another
            failures.append((key, error))
    if failures:
        also = [key for key, _ in failures[1:]]
        raise AssertionError(f"{failures[0][1]}" + (f"\nalso differing: {', '.join(also)}" if also else "")) from None


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


def arbitrated(ours: dict, theirs: dict, exact: dict, tol) -> dict:
    """torch float32's results, except elements where torch float32 is itself out of tolerance against torch
    float64 and ours is not close to torch float32 either: there the float64 value (rounded to float32) is the
    reference.

    A whole model in float32 has ~1e6 ReLU inputs and max-pool windows; one of them lands within rounding error
    of a kink (0, or a near-tie) in one framework often enough, and its gradient then routes differently in
    that framework only (measured: torchvision resnet18, seed 1, train: torch float32's conv1 gradient 5e-3
    relative from float64 while NumPy's is 6e-6). Deep float32 chains also flip a kink the same way in both
    float32 frameworks, away from float64 (torchvision resnet50 with dilation, eval, seeds 1 and 2: NumPy and
    torch float32 agree, both 15-35x the tolerance from float64): then torch float32 stays the reference.
    Forward outputs are continuous and never differ this way. A flip of the implementation alone is not
    forgiven: each element must match torch float32 or, where torch flipped, float64.
    """
    result = {}
    for key, value in theirs.items():
        t, e = as_numpy(value), as_numpy(exact[key])
        o = as_numpy(ours.get(key, t)).astype(np.float64)
        if key.startswith("_") or t.dtype.kind != "f" or o.shape != t.shape or error_stats(t, e, tol).ratio <= 1.0:
            result[key] = value  # (results that differ in shape or presence fail in compare_results)
            continue
        t64 = t.astype(np.float64)
        off = np.abs(t64 - e) > tol.atol + tol.rtol * np.abs(e)
        ours_off = ~(np.abs(o - t64) <= tol.atol + tol.rtol * np.abs(t64))  # NaN counts as off
        result[key] = np.where(off & ours_off, e, t).astype(t.dtype)
    return result


def run_implementation(nn, subject, config, data: dict, where: Where) -> dict:
    """The implementation's results for one case (its exceptions become verdicts, see `verdicts`); a forward-only
    implementation's case is recorded as such."""
    from .runners import runners

    with implementation(f"{where.subject} of {nn.__name__}"):
        ours = runners(subject)[1](nn, config, data)
    note_forward_only(ours, where)
    return ours


def note_forward_only(ours: dict, where: Where) -> None:
    """Record that a case compared the forward results only (the implementation's backward is not implemented)."""
    if FORWARD_ONLY in ours:
        record(where, "forward only", "forward only", reason=ours[FORWARD_ONLY])


def assert_matches_torch(nn, subject, config, seed: int, dtype: str, device: str = "cpu", tier: str = "op",
                         reproduce: str = "", label: str | None = None, regime: str = GAUSSIAN) -> None:
    """Run one subject of the op database on one configuration, its input in the value `regime`, in `nn` and in
    torch; compare all results (recorded under `label`, default the subject's name)."""
    from .runners import runners

    make_data, _, run_torch = runners(subject)
    where = Where(tier, label or subject.name, dtype, device, reproduce)
    data = cast_floats(make_data(config, seed, regime), np.dtype(dtype))
    ours = run_implementation(nn, subject, config, data, where)
    theirs = run_torch(config, data, ours, torch_device(device), TORCH_DTYPES[dtype])
    if dtype != "float32":
        compare_results(ours, theirs, where, subject.tolerance(dtype))
        return
    exact = run_torch(config, cast_floats(data, np.float64), cast_floats(ours, np.float64), torch.device("cpu"),
                      torch.float64)
    compare_results(ours, arbitrated(ours, theirs, exact, subject.tolerance(dtype)), where, subject.tolerance(dtype))
    check_budget(ours, theirs, exact, where, subject.op.budget)


def assert_matches_scipy(nn, subject, config, seed: int, where: Where, regime: str = GAUSSIAN) -> None:
    """The subject's SciPy oracle (float64, CPU) on the implementation's results for one configuration."""
    from .runners import layer_data

    data = layer_data(config, seed, regime)
    subject.op.scipy(run_implementation(nn, subject, config, data, where), config, data, where)
