"""Benchmark results: NumPy/torch ratios, the working tree against a reference revision, report and gate.

Each case is timed in rounds: torch, the reference revision's NumPy code (with `--against REV`) and the working
tree's NumPy code back to back, so a noisy machine slows every side of a round alike. A case's ratio is the
median of its per-round NumPy/torch ratios (reported, never gated: it depends on the machine); its change is
the median of the per-round tree/revision ratios. The gate compares only code with code measured in the same
run, like `asv continuous`: it fails when a training step, an epoch or an op family (the geometric mean over
one op's shapes and direction) got slower than MIN_CHANGE and than NOISE_SE standard errors of its own spread.
"""

from __future__ import annotations

import importlib.util
import io
import json
import math
import subprocess
import sys
import tarfile
from collections import defaultdict
from pathlib import Path

import numpy as np

from .data import atomic_write_bytes

MIN_CHANGE = 0.10  # a slowdown below 10% is never a regression
NOISE_SE = 3.0  # ...nor one within 3 standard errors of the case's own round-to-round spread
GATED_GROUPS = ("training step", "epoch", "op family")
AGAINST_PACKAGE = "reference_against"  # the module name the reference revision's package is imported as


def summarize(case: str, group: str, numpy_times, torch_times, *, against_times=(), totals: bool = False,
              **info) -> dict:
    """One report row: medians in seconds, the NumPy/torch ratio and, with `against_times`, the change.

    `numpy_times` may be empty (torch-only cases, e.g. CUDA); otherwise it pairs round by round with
    `torch_times` (and `against_times`). With `totals`, the rounds are slices of one job (an epoch) and their
    sums are kept too."""
    numpy_times, torch_times = np.asarray(numpy_times, float), np.asarray(torch_times, float)
    against_times = np.asarray(against_times, float)
    row = {"case": case, "group": group, "rounds": len(torch_times), **info, "numpy_median_s": None,
           "torch_median_s": float(np.median(torch_times)), "ratio": None, "change": None}
    if totals:
        row.update(numpy_total_s=float(numpy_times.sum()), torch_total_s=float(torch_times.sum()))
    if numpy_times.size:
        row.update(numpy_median_s=float(np.median(numpy_times)), **_spread(numpy_times / torch_times))
    if against_times.size:
        log_change = np.log(numpy_times / against_times)
        q1, q3 = np.percentile(log_change, [25, 75])
        se = 1.2533 * (q3 - q1) / 1.349 / math.sqrt(len(log_change))  # the median's, from a robust sd estimate
        row.update(against_median_s=float(np.median(against_times)), change=float(np.exp(np.median(log_change))),
                   change_se=float(se))
    return row


def _spread(ratios) -> dict:
    q1, median, q3 = np.percentile(ratios, [25, 50, 75])
    return {"ratio": float(median), "ratio_q1": float(q1), "ratio_q3": float(q3),
            "ratio_min": float(np.min(ratios)), "ratio_max": float(np.max(ratios))}


def op_families(rows: list[dict]) -> list[dict]:
    """One row per op and direction ("fwd conv2d"): geometric means of its cases' ratios and changes."""
    families = defaultdict(list)
    for row in rows:
        if row["group"].startswith("op ") and row["ratio"] is not None:
            direction, op = row["case"].split()[:2]
            families[f"{direction} {op}"].append(row)
    result = []
    for name, members in families.items():
        row = {"case": f"{name}: geometric mean of {len(members)} shapes", "group": "op family",
               "models": sorted({model for row in members for model in row.get("models", ())}),
               "rounds": len(members), "numpy_median_s": None, "torch_median_s": None,
               **_spread([row["ratio"] for row in members]), "ratio": _geomean([row["ratio"] for row in members]),
               "change": None}
        changes = [row["change"] for row in members if row["change"] is not None]
        if len(changes) == len(members):
            logs = np.log(changes)
            se = float(np.std(logs, ddof=1) / math.sqrt(len(logs))) if len(logs) > 1 else members[0]["change_se"]
            row.update(change=_geomean(changes), change_se=se)
        result.append(row)
    return result


def _geomean(values) -> float:
    return float(np.exp(np.mean(np.log(values))))


def tolerance(row: dict) -> float:
    """The change above which a row is a regression: MIN_CHANGE, or NOISE_SE standard errors if larger."""
    return math.exp(max(math.log1p(MIN_CHANGE), NOISE_SE * row["change_se"])) - 1.0


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


def _mebibytes(row: dict) -> str:
    """Peak memory of one call, NumPy / torch, where the case measured it."""
    if row.get("numpy_peak_bytes") is None and row.get("torch_peak_bytes") is None:
        return "—"
    sides = [row.get(f"{framework}_peak_bytes") for framework in ("numpy", "torch")]
    return " / ".join("?" if side is None else f"{side / 2**20:.3g}" for side in sides)


def markdown_table(rows: list[dict]) -> str:
    """The rows as a Markdown table, in run order: case, models, times, ratio and its spread, change, memory."""
    lines = ["| case | models | NumPy | torch | NumPy/torch | IQR | min–max | vs --against | rounds | peak MiB |",
             "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]
    for row in rows:
        if row["ratio"] is None:
            ratio = iqr = spread = "—"
        else:
            ratio = f"**{row['ratio']:.2f}**"
            iqr = f"{row['ratio_q1']:.2f}–{row['ratio_q3']:.2f}"
            spread = f"{row['ratio_min']:.2f}–{row['ratio_max']:.2f}"
        change = "—" if row.get("change") is None else f"{row['change'] - 1:+.1%} (±{tolerance(row):.0%})"
        lines.append(f"| {row['case']} | {', '.join(row.get('models', ()))} | {_absolute(row, 'numpy')} | "
                     f"{_absolute(row, 'torch')} | {ratio} | {iqr} | {spread} | {change} | {row['rounds']} | "
                     f"{_mebibytes(row)} |")
    legend = ("NumPy, torch: median time per round (Σ: total of a job run in interleaved slices). NumPy/torch: "
              "median of the per-round ratios (op families: geometric mean over shapes); IQR and min–max: their "
              "spread (op families: over shapes; rounds = shapes). vs --against: the working tree's time over the "
              "reference revision's, measured in the same rounds (± the regression tolerance). peak MiB: NumPy / "
              "torch, the most memory one call had allocated at once beyond what was live before it (NumPy's "
              "through tracemalloc, torch's through its profiler; ?: not measurable with this torch).")
    return "\n".join(lines) + "\n\n" + legend


def write_report(rows: list[dict], folder: str | Path, meta: dict, verdict: str) -> tuple[Path, Path]:
    """Write `bench.json` (meta + rows) and `bench.md` (table + verdict) into `folder`; return both paths."""
    folder = Path(folder)
    payload = json.dumps({"meta": meta, "rows": rows}, indent=2) + "\n"
    json_path = atomic_write_bytes(folder / "bench.json", payload.encode())
    setup = ", ".join(f"{key}: {value}" for key, value in meta.items())
    markdown = f"# NumPy vs torch benchmarks\n\n{setup}\n\n{markdown_table(rows)}\n\n{verdict}\n"
    return json_path, atomic_write_bytes(folder / "bench.md", markdown.encode())


def gate_verdict(rows: list[dict], against: str | None) -> tuple[bool, str]:
    """(passed, text): gated rows slower than their tolerance fail; single op shapes only warn."""
    if against is None:
        return True, "Gate: off (no --against REV): ratios are reported, nothing is compared."
    compared = [row for row in rows if row.get("change") is not None]
    gated = [row for row in compared if row["group"] in GATED_GROUPS]
    slower = [row for row in compared if row["change"] - 1.0 > tolerance(row)]
    regressions = [row for row in slower if row["group"] in GATED_GROUPS]
    uncompared = [row for row in rows if row.get("change") is None and row["ratio"] is not None]
    missing = [row for row in uncompared if row["group"] in GATED_GROUPS]
    lines = [f"Gate: {len(regressions)} regression(s) and {len(missing)} gated case(s) not compared against "
             f"{against} ({len(gated)} gated case(s) compared in this run: training steps, epochs, op families; "
             f"tolerance: {MIN_CHANGE:.0%} or {NOISE_SE:g} standard errors of the case's own spread)."]
    lines += [f"  {'REGRESSION' if row in regressions else 'warning (single op shape, not gated)'} {row['case']}: "
              f"{row['change'] - 1:+.0%} vs {against} (tolerance {tolerance(row):.0%})" for row in slower]
    lines += [f"  {'NOT COMPARED (a gated case)' if row in missing else 'not compared (single op shape)'} "
              f"{row['case']}: {row.get('not_compared') or _why_uncompared(row)}" for row in uncompared]
    return not regressions and not missing, "\n".join(lines)


def _why_uncompared(row: dict) -> str:
    """Why a row has no change against the revision: an op family with uncompared shapes, or the case itself."""
    if row["group"] == "op family":
        return "some of its shapes were not compared (listed)"
    return "not timed for the revision"


def load_revision(against: str, root: str | Path, scratch: str | Path):
    """The `reference` package of a git revision of the checkout at `root` (extracted into the folder
    `scratch`), or of a folder holding a `reference/` package, imported under the name AGAINST_PACKAGE;
    ValueError when `against` is neither."""
    folder = Path(against)
    if not (folder / "reference" / "__init__.py").is_file():
        folder = Path(scratch)
        archive = subprocess.run(["git", "archive", "--format=tar", against, "reference"], cwd=root,
                                 capture_output=True)
        if archive.returncode != 0:
            raise ValueError(f"--against {against}: neither a folder holding reference/ nor a git revision of "
                             f"{root} ({archive.stderr.decode().strip()})")
        with tarfile.open(fileobj=io.BytesIO(archive.stdout)) as tar:
            tar.extractall(folder, **({"filter": "data"} if hasattr(tarfile, "data_filter") else {}))
    package = folder / "reference"
    for name in [name for name in sys.modules if name.split(".")[0] == AGAINST_PACKAGE]:
        del sys.modules[name]  # a revision loaded before
    spec = importlib.util.spec_from_file_location(AGAINST_PACKAGE, package / "__init__.py",
                                                  submodule_search_locations=[str(package)])
    module = importlib.util.module_from_spec(spec)
    sys.modules[AGAINST_PACKAGE] = module
    spec.loader.exec_module(module)
    for name in ("numpy_nn", "zoo", "train"):  # what the benchmarks build their callables from
        importlib.import_module(f"{AGAINST_PACKAGE}.{name}")
    return module
