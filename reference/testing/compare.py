"""The one comparison helper of the conformance suite: closeness against a reference, and a float32 error budget.

`assert_close(actual, expected, tol, where)` wraps `torch.testing.assert_close` (same criterion: every element
within atol + rtol * |expected|) and, on failure, names the op or model, the stage, both shapes and the worst
element, and appends a copy-pasteable reproduction. `assert_within_budget(ours32, theirs32, exact64, ...)`
judges a float32 result by its error against a float64 result: it may be at most `factor` times torch
float32's own error against the same float64 result, plus a floor of a few float32 ulps of the scale.

Each check is handed to the registered listeners as a plain dict (the conformance report collects them);
`not_recorded()` silences them, e.g. in mutation tests that are meant to fail.
"""

from __future__ import annotations

import itertools
import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

import numpy as np

FLOAT32_EPS = float(np.finfo(np.float32).eps)
TORCH_CHECK_MAX_SIZE = 1 << 16  # larger tensors that pass error_stats skip torch.testing.assert_close's own pass


@dataclass(frozen=True)
class Tolerance:
    """rtol/atol as in `torch.testing.assert_close`, with the reason it differs from torch's default."""

    rtol: float
    atol: float
    why: str = "torch's default for the dtype"

    def __str__(self) -> str:
        return f"rtol={self.rtol:.1e}, atol={self.atol:.1e}"


@dataclass(frozen=True)
class Budget:
    """float32 error budget: |ours - exact| <= factor * |torch32 - exact| + floor_ulps * eps32 * max(1, max|exact|).

    The floor is in ulps of 1 (or of the result's scale when that is larger): conformance inputs, weights and
    upstream gradients are O(1), so an ulp of 1 is the rounding unit of the intermediates even where a result
    is small (a cancelling sum) and torch happened to land within a fraction of an ulp of it."""

    factor: float = 4.0
    floor_ulps: float = 8.0
    why: str = "default budget"


_case_counter = itertools.count()


def new_case_id() -> str:
    """A label unique across processes (xdist workers) for one case: all checks of a case share it."""
    return f"{os.getpid()}-{next(_case_counter)}"


@dataclass
class Where:
    """What is being compared: tier (op, oracle, model, trajectory, device), subject, dtype, device, case."""

    tier: str
    subject: str
    dtype: str
    device: str = "cpu"
    reproduce: str = ""  # python snippet that re-runs exactly this case
    case: str = field(default_factory=new_case_id)

    def label(self, stage: str) -> str:
        return f"{self.tier} {self.subject} [{self.dtype}, {self.device}] {stage}"


# -- recording ----------------------------------------------------------------------------------------------

_listeners: list[Callable[[dict], None]] = []
_silenced = 0


def add_listener(listener: Callable[[dict], None]) -> None:
    """Call `listener(record)` after every check (the report plugin registers one per process)."""
    _listeners.append(listener)


@contextmanager
def not_recorded() -> Iterator[None]:
    """Checks inside the block reach no listener (for mutants, whose failures belong to no report)."""
    global _silenced
    _silenced += 1
    try:
        yield
    finally:
        _silenced -= 1


def record(where: Where, stage: str, kind: str, **values) -> None:
    """Hand one record (labels + values) to the listeners; `kind` is "tolerance", "budget", "trajectory", "flip"
    or "outcome" (a check's verdict)."""
    if _silenced or not _listeners:
        return
    entry = dict(tier=where.tier, subject=where.subject, dtype=where.dtype, device=where.device,
                 case=where.case, stage=stage, kind=kind, **values)
    for listener in list(_listeners):
        listener(entry)


# -- element-wise statistics --------------------------------------------------------------------------------

def as_numpy(value) -> np.ndarray:
    """A NumPy array from an array, a scalar or a torch tensor on any device."""
    if hasattr(value, "detach"):
        value = value.detach().cpu().numpy()
    return np.asarray(value)


@dataclass(frozen=True)
class ErrorStats:
    max_abs: float  # max |actual - expected|
    max_rel: float  # max |actual - expected| / |expected| over nonzero expected
    ratio: float  # max |actual - expected| / (atol + rtol |expected|): <= 1 passes
    worst_index: tuple[int, ...]  # where the ratio is largest
    mismatched: int  # elements over the tolerance
    size: int


def error_stats(actual, expected, tol: Tolerance) -> ErrorStats:
    """assert_close's criterion, element by element, in float64 (NaN == NaN and equal infinities count as equal).

    Written for few passes over memory: trajectories run it on every parameter of ResNet-18 at every step."""
    a = as_numpy(actual).astype(np.float64, copy=False)
    e = as_numpy(expected).astype(np.float64, copy=False)
    if a.shape != e.shape or a.size == 0:
        return ErrorStats(0.0, 0.0, 0.0 if a.shape == e.shape else np.inf, (), 0, a.size)
    shape, a, e = a.shape, a.reshape(-1), e.reshape(-1)
    with np.errstate(invalid="ignore", over="ignore", divide="ignore"):
        diff = np.subtract(a, e)
        np.abs(diff, out=diff)
        special = not np.isfinite(diff.max())  # NaN or inf around: equal ones count as equal, the rest as inf
        if special:
            diff[(a == e) | (np.isnan(a) & np.isnan(e))] = 0.0
            diff[np.isnan(diff)] = np.inf
        magnitude = np.abs(e)
        scratch = np.multiply(magnitude, tol.rtol)
        scratch += tol.atol
        ratio = np.divide(diff, scratch, out=scratch)
        if special or tol.atol <= 0:  # 0 / 0 where equal, x / 0 where not
            ratio[diff == 0] = 0.0
            ratio[np.isnan(ratio)] = np.inf
        worst = int(np.argmax(ratio))
        worst_ratio = float(ratio[worst])
        mismatched = int(np.count_nonzero(ratio > 1.0)) if worst_ratio > 1.0 else 0
        rel = np.divide(diff, magnitude, out=ratio)  # reuses the buffer: the ratio is done
        rel[(diff == 0) | (magnitude == 0) | np.isnan(rel)] = 0.0
        max_rel = float(rel.max())
    index = tuple(int(i) for i in np.unravel_index(worst, shape)) if shape else ()
    return ErrorStats(float(diff.max()), max_rel, worst_ratio, index, mismatched, int(a.size))


def _describe(value) -> str:
    value = as_numpy(value)
    return f"{tuple(value.shape)} {value.dtype}"


def _footer(where: Where) -> str:
    if not where.reproduce:
        return ""
    return "\nreproduce with:\n" + "\n".join("    " + line for line in where.reproduce.strip().splitlines())


def _closeness_message(actual, expected, tol: Tolerance, where: Where, stage: str, stats: ErrorStats) -> str:
    a, e = as_numpy(actual), as_numpy(expected)
    lines = [f"{where.label(stage)}: {stats.mismatched} of {stats.size} elements exceed {tol} ({tol.why})",
             f"  shapes: actual {_describe(a)}, expected {_describe(e)}"]
    if a.shape == e.shape and a.size:
        i = stats.worst_index
        diff = abs(float(a[i]) - float(e[i]))
        lines.append(f"  worst element at index {i}: actual {float(a[i])!r}, expected {float(e[i])!r}, "
                     f"|diff| {diff:.3e} vs allowed {tol.atol + tol.rtol * abs(float(e[i])):.3e} "
                     f"(ratio {stats.ratio:.3g})")
        lines.append(f"  max abs error {stats.max_abs:.3e}, max rel error {stats.max_rel:.3e}")
    return "\n".join(lines) + _footer(where)


def assert_close(actual, expected, tol: Tolerance, where: Where, stage: str) -> ErrorStats:
    """torch.testing.assert_close(actual, expected) with our message; records max abs/rel error and the ratio.

    error_stats applies the same criterion (|a - e| <= atol + rtol |e|, NaN == NaN); tensors over 2^16 elements
    that pass it are not handed to torch a second time (trajectories compare 11M-parameter models each step)."""
    import torch

    stats = error_stats(actual, expected, tol)
    record(where, stage, "tolerance", max_abs=stats.max_abs, max_rel=stats.max_rel, ratio=stats.ratio,
           rtol=tol.rtol, atol=tol.atol, size=stats.size, passed=stats.ratio <= 1.0)
    if stats.ratio <= 1.0 and stats.size > TORCH_CHECK_MAX_SIZE:
        return stats  # same criterion, already met: spare torch's second pass over a large tensor
    a, e = torch.as_tensor(as_numpy(actual)), torch.as_tensor(as_numpy(expected))
    message = _closeness_message(actual, expected, tol, where, stage, stats)
    torch.testing.assert_close(a, e, rtol=tol.rtol, atol=tol.atol, equal_nan=True,
                               msg=lambda torch_says: f"{message}\n\ntorch.testing.assert_close says: {torch_says}")
    if stats.ratio > 1.0:  # torch found them close where we did not: our criterion must be wrong, say so
        raise AssertionError(f"{where.label(stage)}: error_stats and torch.testing.assert_close disagree "
                             f"(ratio {stats.ratio}); this is a bug in reference.testing.compare")
    return stats


@dataclass(frozen=True)
class BudgetStats:
    ours: float  # max |ours32 - exact64|
    torch: float  # max |torch32 - exact64|
    allowed: float  # factor * torch + floor
    ratio: float  # ours / allowed: <= 1 passes


def _max_error(value: np.ndarray, exact: np.ndarray) -> float:
    """max |value - exact|, where equal values (NaN included, as torch returns for a mean over nothing) count 0
    and a NaN against a number counts inf."""
    with np.errstate(invalid="ignore"):
        same = (value == exact) | (np.isnan(value) & np.isnan(exact))
        diff = np.abs(value - exact)
    return float(np.where(same, 0.0, np.where(np.isnan(diff), np.inf, diff)).max())


def assert_within_budget(ours, theirs, exact, budget: Budget, where: Where, stage: str) -> BudgetStats:
    """float32 `ours` must be about as close to the float64 `exact` as torch's float32 `theirs` is."""
    o, t, x = (as_numpy(v).astype(np.float64) for v in (ours, theirs, exact))
    if not (o.shape == t.shape == x.shape):
        raise AssertionError(f"{where.label(stage)}: shapes differ: ours {o.shape}, torch {t.shape}, "
                             f"float64 {x.shape}" + _footer(where))
    if o.size == 0:
        return BudgetStats(0.0, 0.0, 0.0, 0.0)
    scale = max(1.0, float(np.max(np.abs(x)))) if np.all(np.isfinite(x)) else 1.0
    err_ours, err_torch = _max_error(o, x), _max_error(t, x)
    allowed = budget.factor * err_torch + budget.floor_ulps * FLOAT32_EPS * scale
    ratio = 0.0 if err_ours == 0 else (err_ours / allowed if allowed > 0 else np.inf)
    record(where, stage, "budget", ours=err_ours, torch=err_torch, allowed=allowed, ratio=ratio,
           factor=budget.factor, passed=ratio <= 1.0)
    if not ratio <= 1.0:
        index = np.unravel_index(int(np.argmax(np.abs(o - x))), o.shape) if o.ndim else ()
        raise AssertionError(
            f"{where.label(stage)}: float32 error budget exceeded ({budget.why}): "
            f"max |ours - float64| = {err_ours:.3e} > {budget.factor:g} x max |torch32 - float64| "
            f"({err_torch:.3e}) + {budget.floor_ulps:g} ulps of {scale:.3e} = {allowed:.3e} (ratio {ratio:.3g})\n"
            f"  shape {o.shape}; our worst element at index {tuple(int(i) for i in index)}: ours {o[index]!r}, "
            f"torch32 {t[index]!r}, float64 {x[index]!r}" + _footer(where))
    return BudgetStats(err_ours, err_torch, allowed, ratio)
