"""Merge the per-process check records into conformance.json, conformance.md and two PNG plots.

The compliance table has one row per check, i.e. per (tier, op or model, dtype, device): implemented?, cases,
the worst error / tolerance ratio (<= 1 passes) and where it occurred, the worst float32 budget ratio, and the
verdict (pass, FAIL, xfail: a known failure declared in the xfails file, not implemented). The Markdown is
ready to paste into a README. Trajectory records (the gap between the frameworks at every training step)
get their own table and plot.
"""

from __future__ import annotations

import json
import math
import tempfile
from collections import defaultdict
from pathlib import Path

from reference.data import atomic_write_bytes

from .verdicts import CRASHED, FAIL, NOT_IMPLEMENTED, PASS, REFUSED

TIERS = ("op", "oracle", "model", "trajectory", "statistics", "device")
VERDICTS = (PASS, FAIL, REFUSED, CRASHED, "xfail", "XPASS", NOT_IMPLEMENTED)
OUTCOME_VERDICTS = {"passed": PASS, "failed": FAIL, REFUSED: REFUSED, CRASHED: CRASHED}
REASON_WIDTH = 120  # characters of a verdict's reason in the Markdown table (the JSON keeps it whole)


def writable_folder_problem(option: str, folder: str | Path) -> str | None:
    """Why `folder` cannot be a report folder (it is a file, or cannot be created or written), or None."""
    path = Path(folder)
    if path.exists() and not path.is_dir():
        return f"{option} {folder}: is a file, expected a folder"
    try:
        path.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=path):
            pass
    except OSError as error:
        return f"{option} {folder}: cannot be written ({error.strerror or error})"
    return None


def load_records(parts: Path) -> list[dict]:
    """Every record of DIR/parts/*.jsonl; a line that is not JSON (a worker killed mid-write) is skipped."""
    records = []
    for part in sorted(parts.glob("*.jsonl")):
        with part.open() as stream:
            for line in stream:
                try:
                    records.append(json.loads(line))
                except ValueError:
                    continue
    return records


def _finite(value):
    """A float for JSON: non-finite ones as strings ("inf", "nan"), which strict JSON readers accept."""
    return value if value is None or math.isfinite(value) else str(value)


def _sortable(value) -> float:
    """A ratio as a number to sort by: None as 0, NaN as inf (a NaN result is as bad as it gets)."""
    if value is None:
        return 0.0
    value = float(value)
    return math.inf if math.isnan(value) else value


def _verdict(outcome: dict | None, entries: list[dict], xfailed: set[str]) -> str:
    if outcome is None:
        return PASS if all(e["passed"] for e in entries) else FAIL
    verdict = OUTCOME_VERDICTS.get(outcome["outcome"], outcome["outcome"])
    if outcome["stage"] in xfailed and verdict in (FAIL, REFUSED, CRASHED):
        return "xfail"
    if outcome["stage"] in xfailed and verdict == PASS:
        return "XPASS"
    return verdict


def summarize(records: list[dict], xfailed: set[str] = frozenset()) -> list[dict]:
    """One row per (tier, subject, dtype, device) that ran or is not implemented (CUDA without a device: none)."""
    groups, outcomes, forward_only = defaultdict(list), {}, {}
    for entry in records:
        key = (entry["tier"], entry["subject"], entry["dtype"], entry["device"])
        if entry["kind"] in ("tolerance", "budget"):
            groups[key].append(entry)
        elif entry["kind"] == "forward only":
            forward_only[key] = entry["reason"]
        elif entry["kind"] == "outcome" and entry["outcome"] != "skipped":
            outcomes[key] = entry
    rows = []
    for key in sorted(groups.keys() | outcomes.keys(), key=_order):
        entries, outcome = groups.get(key, []), outcomes.get(key) or {}
        closeness = [e for e in entries if e["kind"] == "tolerance"]
        worst = max(closeness, key=lambda e: _sortable(e["ratio"]), default=None)
        worst_budget = max((e for e in entries if e["kind"] == "budget"), key=lambda e: _sortable(e["ratio"]),
                           default=None)
        verdict = _verdict(outcome or None, entries, xfailed)
        unsupported = outcome.get("unsupported", 0)
        implemented = ("no" if verdict == NOT_IMPLEMENTED else "forward only" if key in forward_only
                       else "partly" if unsupported else "yes")
        reasons = [outcome.get("reason", ""), *outcome.get("unsupported_reasons", [])]
        if key in forward_only:
            reasons.append(f"forward only: {forward_only[key]}")
        rows.append(dict(
            tier=key[0], subject=key[1], dtype=key[2], device=key[3], id=outcome.get("stage", ""),
            implemented=implemented, cases=outcome.get("examples") or len({e["case"] for e in entries}),
            unsupported=unsupported, checks=len(entries), max_abs=max((e["max_abs"] for e in closeness), default=0.0),
            max_rel=max((e["max_rel"] for e in closeness), default=0.0),
            rtol=worst["rtol"] if worst else None, atol=worst["atol"] if worst else None,
            worst_ratio=worst["ratio"] if worst else None, worst_stage=worst["stage"] if worst else "",
            budget_ratio=worst_budget["ratio"] if worst_budget else None,
            budget_stage=worst_budget["stage"] if worst_budget else "", verdict=verdict,
            reason="; ".join(filter(None, reasons)),
        ))
    return rows


def _order(key):
    tier, subject, dtype, device = key
    return (TIERS.index(tier) if tier in TIERS else 99, subject, dtype, device)


def trajectories(records: list[dict]) -> list[dict]:
    runs = [e for e in records if e["kind"] == "trajectory"]
    return sorted(runs, key=lambda e: (e["subject"], e["stage"], e["dtype"], e["device"]))


def _growth_per_step(gaps: list[float]) -> float | None:
    """Geometric mean of gap[k+1] / gap[k] over the steps where both are nonzero (1.0: no growth)."""
    pairs = [(a, b) for a, b in zip(gaps, gaps[1:], strict=False) if a > 0 and b > 0]
    if not pairs:
        return None
    return math.exp(sum(math.log(b / a) for a, b in pairs) / len(pairs))


def _fmt(value, spec=".2e"):
    if value is None:
        return "-"
    if isinstance(value, str):
        return value
    return format(value, spec)


def _headline(rows, meta) -> list[str]:
    counts = defaultdict(int)
    for row in rows:
        counts[row["verdict"]] += 1
    namespaces = ", ".join(f"`{n}`" for n in meta.get("namespaces", [])) or "the implementation"
    lines = [f"# Conformance of {namespaces} to PyTorch", "",
             " · ".join(f"**{verdict}**: {counts[verdict]}" for verdict in VERDICTS if counts[verdict])
             + f" (checks; pytest exit status {meta['exitstatus']})"]
    if meta.get("no_device"):
        lines.append(f"{meta['no_device']} CUDA checks did not run: no CUDA device was visible to torch.")
    mutations = meta.get("mutations")
    if mutations:
        lines.append(f"Mutations: {mutations['caught']} of {mutations['planted']} planted bugs caught by the oracle "
                     "meant for each" + (f" (missed: {', '.join(mutations['missed'])})" if mutations["missed"] else "")
                     + ".")
    xfails = meta.get("xfails") or {}
    if xfails.get("unmatched"):
        lines.append(f"Entries of the xfails file `{xfails['file']}` that match no check: "
                     + ", ".join(f"`{p}`" for p in xfails["unmatched"]) + ".")
    return lines + ["", "Ratio = worst |ours - torch| / (atol + rtol |torch|) over all results of all cases (<= 1 "
                    "passes); budget = worst float32 error against float64 over the allowance set by torch's own "
                    "float32 error (<= 1 passes). Verdicts: pass; FAIL (numbers differ); refused (raised ValueError "
                    "or TypeError on an input torch accepts); crashed (raised anything else, returned the wrong "
                    "shape, dtype or type, or timed out); not implemented.", ""]


def _mutations(records: list[dict]) -> dict | None:
    """How many planted bugs (mutation x oracle) the oracles caught, from conformance/test_mutations.py's records."""
    if not records:
        return None
    missed = sorted(f"{e['subject']} ({e['stage']})" for e in records if not e["caught"])
    return dict(planted=len(records), caught=len(records) - len(missed), missed=missed)


def _clipped(text: str, width: int = REASON_WIDTH) -> str:
    text = " ".join(text.replace("|", "/").split())
    return text if len(text) <= width else text[: width - 3] + "..."


def _markdown(rows, runs, meta) -> str:
    lines = _headline(rows, meta) + [
        "| tier | op / model | dtype | device | implemented | cases | worst error / tolerance | float32 budget "
        "| verdict | why |", "|---|---|---|---|---|---:|---:|---:|---|---|"]
    lines += [f"| {r['tier']} | {r['subject']} | {r['dtype']} | {r['device']} | {r['implemented']} | {r['cases']} | "
              f"{_fmt(r['worst_ratio'], '.3g')} | {_fmt(r['budget_ratio'], '.3g')} | {r['verdict']} | "
              f"{_clipped(r['reason'])} |" for r in rows]
    explained = [r for r in rows if r["verdict"] not in (PASS, "XPASS") or r["implemented"] != "yes"]
    if explained:
        lines += ["", "## Not passed, not implemented and partly implemented", ""]
        lines += [f"- {r['tier']} {r['subject']} [{r['dtype']}, {r['device']}] {r['verdict']}"
                  f" ({r['implemented']}): {r['reason']}" for r in explained]
    ran = sorted((r for r in rows if r["checks"]),
                 key=lambda r: -max(_sortable(r["worst_ratio"]), _sortable(r["budget_ratio"])))
    lines += ["", "## Closest to tolerance", "",
              "| tier | subject | dtype | device | max abs err | max rel err | rtol / atol | worst ratio | at "
              "| budget ratio | at |", "|---|---|---|---|---:|---:|---|---:|---|---:|---|"]
    for r in ran:
        tol = f"{_fmt(r['rtol'], '.1e')} / {_fmt(r['atol'], '.1e')}" if r["rtol"] is not None else "-"
        lines.append(f"| {r['tier']} | {r['subject']} | {r['dtype']} | {r['device']} | {_fmt(r['max_abs'])} | "
                     f"{_fmt(r['max_rel'])} | {tol} | {_fmt(r['worst_ratio'], '.3g')} | {r['worst_stage']} | "
                     f"{_fmt(r['budget_ratio'], '.3g')} | {r['budget_stage']} |")
    lines += _trajectory_lines(runs) + _flip_lines(meta.get("kink_flips", []))
    for image, caption in (("heatmap.png", "error / tolerance heatmap"), ("trajectories.png", "gap per training step")):
        if image in meta.get("images", ()):
            lines += ["", f"![{caption}]({image})", ""]
    for problem in meta.get("image_errors", ()):
        lines += ["", f"(a plot could not be drawn: {problem})"]
    return "\n".join(lines)


def _trajectory_lines(runs) -> list[str]:
    if not runs:
        return []
    lines = ["", "## Training trajectories", "",
             "Max |ours - torch| over all parameters after each step (same init, same batches, dropout off). "
             "growth/step is the geometric mean of gap[k+1] / gap[k]; torch32 gap is torch float32 against "
             "torch float64 (the float32 noise floor).", "",
             "| model | optimizer | dtype | device | steps | gap step 1 | gap step 10 | gap last | growth/step "
             "| worst ratio | torch32 gap last |", "|---|---|---|---|---:|---:|---:|---:|---:|---:|---:|"]
    for run in runs:
        gaps, torch_gap = run["param_gap"], run.get("torch32_gap")
        lines.append(f"| {run['subject']} | {run['stage']} | {run['dtype']} | {run['device']} | {len(gaps)} | "
                     f"{_fmt(gaps[0])} | {_fmt(gaps[min(9, len(gaps) - 1)])} | {_fmt(gaps[-1])} | "
                     f"{_fmt(_growth_per_step(gaps), '.3f')} | {_fmt(max(run['ratio']), '.3g')} | "
                     f"{_fmt(torch_gap[-1] if torch_gap else None)} |")
    return lines


def _flip_lines(flips) -> list[str]:
    if not flips:
        return []
    return ["", "## float32 kink flips (seed retried)", "",
            "float32 took the other side of a ReLU / max-pool kink than torch float32 and float64 did; forward and "
            "buffers agreed, so the case moved on to the next seed (models.FLIP_RETRIES).", ""] + [
        f"- {f['subject']} [{f['dtype']}, {f['device']}]: {', '.join(f['gradients'][:6])}"
        + (" ..." if len(f["gradients"]) > 6 else "") for f in flips]


def _heatmap(rows, path: Path) -> None:
    """One cell per (op or model) x (dtype, device, check): the worst error / tolerance, log colour, 1 = limit."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np
    from matplotlib.colors import LogNorm

    subjects = sorted({(r["tier"], r["subject"]) for r in rows}, key=lambda s: (_order((*s, "", "")), s[1]))
    columns = [(dtype, device, key) for dtype, device in sorted({(r["dtype"], r["device"]) for r in rows})
               for key in ("worst_ratio", "budget_ratio") if any(
                   isinstance(r[key], (int, float)) for r in rows if (r["dtype"], r["device"]) == (dtype, device))]
    grid = np.full((len(subjects), len(columns)), np.nan)
    for r in rows:
        for j, (dtype, device, key) in enumerate(columns):
            if (r["dtype"], r["device"]) == (dtype, device) and isinstance(r[key], (int, float)):
                grid[subjects.index((r["tier"], r["subject"])), j] = r[key]
    fig, ax = plt.subplots(figsize=(3 + 1.6 * len(columns), 1.2 + 0.3 * len(subjects)))
    shown = np.ma.masked_invalid(np.clip(grid, 1e-6, 10.0))
    cmap = plt.get_cmap("RdYlGn_r").with_extremes(bad="#eeeeee")  # grey: not measured (no float64 budget)
    image = ax.imshow(shown, cmap=cmap, norm=LogNorm(vmin=1e-6, vmax=10.0), aspect="auto")
    labels = {"worst_ratio": "error / tolerance", "budget_ratio": "float32 budget"}
    ax.set_xticks(range(len(columns)), [f"{d} {dev}\n{labels[k]}" for d, dev, k in columns], fontsize=8)
    ax.set_yticks(range(len(subjects)), [f"{t}: {s}" for t, s in subjects], fontsize=8)
    ax.xaxis.tick_top()
    for i in range(grid.shape[0]):
        for j in range(grid.shape[1]):
            if not np.isnan(grid[i, j]):
                ax.text(j, i, f"{grid[i, j]:.2g}", ha="center", va="center", fontsize=7,
                        fontweight="bold" if grid[i, j] > 1 else "normal")
    ax.set_title("worst error / allowance per op and model (<= 1 passes; red = close to or over the limit)",
                 fontsize=9, pad=28)
    fig.colorbar(image, ax=ax, shrink=0.6, label="ratio (log scale)")
    fig.savefig(path, dpi=100, bbox_inches="tight")
    plt.close(fig)


def _trajectory_plot(runs, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    models = sorted({r["subject"] for r in runs})
    fig, axes = plt.subplots(1, len(models), figsize=(4.2 * len(models), 3.6), squeeze=False)
    for ax, model in zip(axes[0], models, strict=True):
        for run in (r for r in runs if r["subject"] == model):
            steps = range(1, len(run["param_gap"]) + 1)
            line, = ax.semilogy(steps, [max(g, 1e-18) for g in run["param_gap"]],
                                label=f"{run['stage']} {run['dtype']} {run['device']}")
            if run.get("torch32_gap"):
                ax.semilogy(steps, [max(g, 1e-18) for g in run["torch32_gap"]], ls=":", color=line.get_color(),
                            label=f"torch32 vs torch64 ({run['stage']})")
        ax.set_title(model)
        ax.set_xlabel("step")
        ax.set_ylabel("max |param gap|")
        ax.legend(fontsize=6)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def write_report(directory: Path, exitstatus: int = 0, xfails: dict | None = None) -> Path:
    """Merge DIR/parts/*.jsonl into DIR/conformance.json, .md, heatmap.png and trajectories.png; the JSON and
    Markdown are always written whole (atomically), whatever the records hold and even if a plot fails.

    `xfails`: {"file", "patterns", "xfailed" (check ids), "unmatched" (patterns)} from the xfails file."""
    directory = Path(directory)
    records = load_records(directory / "parts")
    rows = summarize(records, set((xfails or {}).get("xfailed", ())))
    runs = trajectories(records)
    outcomes = [e for e in records if e["kind"] == "outcome"]
    meta = dict(records=len(records), cases=len({e["case"] for e in records if e["kind"] != "outcome"}),
                exitstatus=exitstatus, namespaces=sorted({e["namespace"] for e in outcomes}),
                no_device=sum(e["outcome"] == "skipped" for e in outcomes), xfails=xfails,
                kink_flips=[e for e in records if e["kind"] == "flip"], images=[], image_errors=[],
                mutations=_mutations([e for e in records if e["kind"] == "mutation"]))
    measured = [r for r in rows if r["checks"]]
    for image, draw, data in (("heatmap.png", _heatmap, measured), ("trajectories.png", _trajectory_plot, runs)):
        if not data:
            continue
        try:
            draw(data, directory / image)
            meta["images"].append(image)
        except Exception as error:  # a plot is a picture of the table: its failure must not cost the table
            meta["image_errors"].append(f"{image}: {type(error).__name__}: {error}")
    payload = json_safe(dict(meta=meta, rows=rows, trajectories=runs))
    atomic_write_bytes(directory / "conformance.json",
                       json.dumps(payload, indent=1, default=str, allow_nan=False).encode())
    atomic_write_bytes(directory / "conformance.md", _markdown(rows, runs, meta).encode())
    return directory / "conformance.md"


def json_safe(value):
    """`value` with every non-finite float (nested in dicts and lists) as a string: strict JSON."""
    if isinstance(value, float):
        return _finite(value)
    if isinstance(value, dict):
        return {key: json_safe(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(item) for item in value]
    return value
