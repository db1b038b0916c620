"""Benchmark results as NumPy/torch ratios: per-case summaries, the JSON + Markdown report, the regression gate.

Each case is timed in rounds, a NumPy call and the same torch call back to back, so a noisy machine slows
both sides of a round alike; the ratio of a case is the median of its per-round ratios. The gate compares
ratios with a committed baseline (ratios are far less machine-dependent than absolute times). It fails on
whole training steps, epochs and op families (the geometric mean over all shapes of one op and direction);
single op shapes only warn: on a shared machine 2-6% of them move by more than 25% between two runs of the
same code (measured over 4 runs of 146 cases), while steps moved by 4% at most and op families by 23%.
"""

from __future__ import annotations

import json
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .data import atomic_write_bytes

TOLERANCE = 0.25  # a gated ratio regresses when it grows by more than 25% over the baseline
GATED_GROUPS = ("training step", "epoch", "op family")


def summarize(case: str, group: str, numpy_times, torch_times, *, totals: bool = False, **info) -> dict:
    """One report row: medians in seconds, and the median, quartiles and range of the per-round ratios.

    `numpy_times` may be empty (torch-only cases, e.g. CUDA); otherwise it pairs round by round with
    `torch_times`. With `totals`, the rounds are slices of one job (an epoch) and their sums are kept too.
    """
    numpy_times, torch_times = np.asarray(numpy_times, float), np.asarray(torch_times, float)
    row = {"case": case, "group": group, "rounds": len(torch_times), **info,
           "numpy_median_s": None, "torch_median_s": float(np.median(torch_times)), "ratio": None}
    if totals:
        row.update(numpy_total_s=float(numpy_times.sum()), torch_total_s=float(torch_times.sum()))
    if numpy_times.size:
        row.update(numpy_median_s=float(np.median(numpy_times)), **_spread(numpy_times / torch_times))
    return row


def _spread(ratios) -> dict:
    q1, median, q3 = np.percentile(ratios, [25, 50, 75])
    return {"ratio": float(median), "ratio_q1": float(q1), "ratio_q3": float(q3),
            "ratio_min": float(np.min(ratios)), "ratio_max": float(np.max(ratios))}


def op_families(rows: list[dict]) -> list[dict]:
    """One row per op and direction ("fwd conv2d"): the geometric mean of its cases' ratios, their spread."""
    families = defaultdict(list)
    for row in rows:
        if row["group"].startswith("op ") and row["ratio"] is not None:
            direction, op = row["case"].split()[:2]
            families[f"{direction} {op}"].append(row)
    return [{"case": f"{name}: geometric mean of {len(members)} shapes", "group": "op family",
             "models": sorted({model for row in members for model in row.get("models", ())}),
             "rounds": len(members), "numpy_median_s": None, "torch_median_s": None,
             **_spread([row["ratio"] for row in members]),
             "ratio": float(np.exp(np.mean(np.log([row["ratio"] for row in members]))))}
            for name, members in families.items()]


def _seconds(value) -> str:
    if value is None:
        return "—"
    for unit, scale in (("s", 1.0), ("ms", 1e-3), ("µs", 1e-6)):
        if value >= scale:
            return f"{value / scale:.3g} {unit}"
    return f"{value / 1e-6:.3g} µs"


def _absolute(row: dict, framework: str) -> str:
    """The median time per round, or Σ the total of a job timed in slices (an epoch)."""
    total = row.get(f"{framework}_total_s")
    return f"Σ {_seconds(total)}" if total is not None else _seconds(row[f"{framework}_median_s"])


def markdown_table(rows: list[dict]) -> str:
    """The rows as a Markdown table, in run order: case, models, absolute times, ratio and its spread."""
    lines = ["| case | models | NumPy | torch | NumPy/torch | IQR | min–max | rounds |",
             "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |"]
    for row in rows:
        if row["ratio"] is None:
            ratio = iqr = spread = "—"
        else:
            ratio = f"**{row['ratio']:.2f}**"
            iqr = f"{row['ratio_q1']:.2f}–{row['ratio_q3']:.2f}"
            spread = f"{row['ratio_min']:.2f}–{row['ratio_max']:.2f}"
        lines.append(f"| {row['case']} | {', '.join(row.get('models', ()))} | {_absolute(row, 'numpy')} | "
                     f"{_absolute(row, 'torch')} | {ratio} | {iqr} | {spread} | {row['rounds']} |")
    legend = ("NumPy, torch: median time per round (Σ: total of a job run in interleaved slices). NumPy/torch: "
              "median of the per-round ratios (op families: geometric mean over shapes); IQR and min–max: their "
              "spread (op families: over shapes; rounds = shapes).")
    return "\n".join(lines) + "\n\n" + legend


def write_report(rows: list[dict], folder: str | Path, meta: dict, verdict: str) -> tuple[Path, Path]:
    """Write `bench.json` (meta + rows) and `bench.md` (table + verdict) into `folder`; return both paths."""
    folder = Path(folder)
    payload = json.dumps({"meta": meta, "rows": rows}, indent=2) + "\n"
    json_path = atomic_write_bytes(folder / "bench.json", payload.encode())
    setup = ", ".join(f"{key}: {value}" for key, value in meta.items())
    markdown = f"# NumPy vs torch benchmarks\n\n{setup}\n\n{markdown_table(rows)}\n\n{verdict}\n"
    return json_path, atomic_write_bytes(folder / "bench.md", markdown.encode())


@dataclass(frozen=True)
class Regression:
    """A case whose ratio grew by more than the tolerance over its baseline."""

    case: str
    baseline: float
    current: float

    def __str__(self) -> str:
        change = self.current / self.baseline - 1.0
        return f"{self.case}: NumPy/torch {self.current:.2f} vs baseline {self.baseline:.2f} ({change:+.0%})"


def load_baseline(path: str | Path) -> dict[str, float]:
    """Baseline ratios by case from a baseline JSON file ({} when the file does not exist)."""
    path = Path(path)
    return json.loads(path.read_text())["ratios"] if path.exists() else {}


def find_regressions(rows: list[dict], baseline: dict[str, float], tolerance: float = TOLERANCE) -> list[Regression]:
    """Cases measured in `rows` whose ratio exceeds (1 + tolerance) times their baseline ratio."""
    return [Regression(row["case"], baseline[row["case"]], row["ratio"]) for row in rows
            if row["ratio"] is not None and row["case"] in baseline
            and row["ratio"] > (1.0 + tolerance) * baseline[row["case"]]]


def save_baseline(rows: list[dict], path: str | Path, meta: dict) -> Path:
    """Write the measured ratios into the baseline file, keeping baseline cases this run did not measure."""
    path = Path(path)
    measured = {row["case"]: round(row["ratio"], 4) for row in rows if row["ratio"] is not None}
    ratios = {**load_baseline(path), **measured}
    payload = json.dumps({"meta": meta, "tolerance": TOLERANCE, "ratios": ratios}, indent=2) + "\n"
    return atomic_write_bytes(path, payload.encode())


def gate_verdict(rows: list[dict], baseline: dict[str, float], tolerance: float = TOLERANCE) -> tuple[bool, str]:
    """(passed, text): regressions of gated rows fail; single op shapes beyond the tolerance only warn."""
    gated = [row for row in rows if row["group"] in GATED_GROUPS]
    regressions = find_regressions(gated, baseline, tolerance)
    warnings = find_regressions([row for row in rows if row["group"] not in GATED_GROUPS], baseline, tolerance)
    measured = [row["case"] for row in gated if row["ratio"] is not None]
    new = [case for case in measured if case not in baseline]
    lines = [f"Gate: {len(regressions)} regression(s) beyond +{tolerance:.0%} against the baseline "
             f"({len(measured) - len(new)} gated case(s) compared: training steps, epochs, op families)."]
    lines += [f"  REGRESSION {regression}" for regression in regressions]
    lines += [f"  warning (single op shape, not gated) {warning}" for warning in warnings]
    if new:
        lines.append(f"  no baseline for {len(new)} gated case(s): {', '.join(new)}")
    return not regressions, "\n".join(lines)
