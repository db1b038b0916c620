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
from collections import defaultdict
from pathlib import Path

from reference.data import atomic_write_bytes

TIERS = ("op", "oracle", "model", "trajectory", "device")
NOT_IMPLEMENTED = "not implemented"


def load_records(parts: Path) -> list[dict]:
    records = []
    for part in sorted(parts.glob("*.jsonl")):
        with part.open() as stream:
            records.extend(json.loads(line) for line in stream if line.strip())
    return records


def _finite(value):
    return value if value is None or math.isfinite(value) else str(value)


def _verdict(outcome: dict | None, entries: list[dict], xfailed: set[str]) -> str:
    if outcome is None:
        return "pass" if all(e["passed"] for e in entries) else "FAIL"
    if outcome["outcome"] == "failed":
        return "xfail" if outcome["stage"] in xfailed else "FAIL"
    if outcome["outcome"] == "passed":
        return "XPASS" if outcome["stage"] in xfailed else "pass"
    return outcome["outcome"]


def summarize(records: list[dict], xfailed: set[str] = frozenset()) -> list[dict]:
    """One row per (tier, subject, dtype, device) that ran or is not implemented (CUDA without a device: none)."""
    groups, outcomes = defaultdict(list), {}
    for entry in records:
        key = (entry["tier"], entry["subject"], entry["dtype"], entry["device"])
        if entry["kind"] in ("tolerance", "budget"):
            groups[key].append(entry)
        elif entry["kind"] == "outcome" and entry["outcome"] != "skipped":
            outcomes[key] = entry
    rows = []
    for key in sorted(groups.keys() | outcomes.keys(), key=_order):
        entries, outcome = groups.get(key, []), outcomes.get(key)
        closeness = [e for e in entries if e["kind"] == "tolerance"]
        worst = max(closeness, key=lambda e: e["ratio"], default=None)
        worst_budget = max((e for e in entries if e["kind"] == "budget"), key=lambda e: e["ratio"], default=None)
        verdict = _verdict(outcome, entries, xfailed)
        refused = (outcome or {}).get("refused", 0)
        rows.append(dict(
            tier=key[0], subject=key[1], dtype=key[2], device=key[3], id=(outcome or {}).get("stage", ""),
            implemented="no" if verdict == NOT_IMPLEMENTED else "partly" if refused else "yes",
            cases=(outcome or {}).get("examples") or len({e["case"] for e in entries}), refused=refused,
            checks=len(entries), max_abs=max((e["max_abs"] for e in closeness), default=0.0),
            max_rel=max((e["max_rel"] for e in closeness), default=0.0),
            rtol=worst["rtol"] if worst else None, atol=worst["atol"] if worst else None,
            worst_ratio=worst["ratio"] if worst else None, worst_stage=worst["stage"] if worst else "",
            budget_ratio=worst_budget["ratio"] if worst_budget else None,
            budget_stage=worst_budget["stage"] if worst_budget else "", verdict=verdict,
            reason="; ".join(filter(None, [(outcome or {}).get("reason", "")] + (outcome or {}).get("refusals", []))),
        ))
    return [{k: _finite(v) if isinstance(v, float) else v for k, v in row.items()} for row in rows]


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
             " · ".join(f"**{verdict}**: {counts[verdict]}" for verdict in ("pass", "FAIL", "xfail", "XPASS",
                                                                              NOT_IMPLEMENTED) if counts[verdict])
             + f" (checks; pytest exit status {meta['exitstatus']})"]
    if meta.get("no_device"):
        lines.append(f"{meta['no_device']} CUDA checks did not run: no CUDA device was visible to torch.")
    xfails = meta.get("xfails") or {}
    if xfails.get("unmatched"):
        lines.append(f"Entries of the xfails file `{xfails['file']}` that match no check: "
                     + ", ".join(f"`{p}`" for p in xfails["unmatched"]) + ".")
    return lines + ["", "Ratio = worst |ours - torch| / (atol + rtol |torch|) over all results of all cases (<= 1 "
                    "passes); budget = worst float32 error against float64 over the allowance set by torch's own "
                    "float32 error (<= 1 passes).", ""]


def _markdown(rows, runs, meta) -> str:
    lines = _headline(rows, meta) + [
        "| tier | op / model | dtype | device | implemented | cases | worst error / tolerance | float32 budget "
        "| verdict |", "|---|---|---|---|---|---:|---:|---:|---|"]
    lines += [f"| {r['tier']} | {r['subject']} | {r['dtype']} | {r['device']} | {r['implemented']} | {r['cases']} | "
              f"{_fmt(r['worst_ratio'], '.3g')} | {_fmt(r['budget_ratio'], '.3g')} | {r['verdict']} |" for r in rows]
    missing = [r for r in rows if r["verdict"] in (NOT_IMPLEMENTED, "FAIL", "xfail") or r["implemented"] == "partly"]
    if missing:
        lines += ["", "## Not implemented, failed and partly implemented", ""]
        lines += [f"- {r['tier']} {r['subject']} [{r['dtype']}, {r['device']}] {r['verdict']}: {r['reason']}"
                  for r in missing]
    ran = sorted((r for r in rows if r["checks"]),
                 key=lambda r: -max(r["worst_ratio"] or 0.0, r["budget_ratio"] or 0.0))
    lines += ["", "## Closest to tolerance", "",
              "| tier | subject | dtype | device | max abs err | max rel err | rtol / atol | worst ratio | at "
              "| budget ratio | at |", "|---|---|---|---|---:|---:|---|---:|---|---:|---|"]
    for r in ran:
        tol = f"{_fmt(r['rtol'], '.1e')} / {_fmt(r['atol'], '.1e')}" if r["rtol"] is not None else "-"
        lines.append(f"| {r['tier']} | {r['subject']} | {r['dtype']} | {r['device']} | {_fmt(r['max_abs'])} | "
                     f"{_fmt(r['max_rel'])} | {tol} | {_fmt(r['worst_ratio'], '.3g')} | {r['worst_stage']} | "
                     f"{_fmt(r['budget_ratio'], '.3g')} | {r['budget_stage']} |")
    lines += _trajectory_lines(runs) + _flip_lines(meta.get("kink_flips", []))
    if ran:
        lines += ["", "![error / tolerance heatmap](heatmap.png)", ""]
    if runs:
        lines += ["![gap per training step](trajectories.png)", ""]
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
    """Merge DIR/parts/*.jsonl into DIR/conformance.json, .md, heatmap.png and trajectories.png.

    `xfails`: {"file", "patterns", "xfailed" (check ids), "unmatched" (patterns)} from the xfails file."""
    directory = Path(directory)
    records = load_records(directory / "parts")
    rows = summarize(records, set((xfails or {}).get("xfailed", ())))
    runs = trajectories(records)
    outcomes = [e for e in records if e["kind"] == "outcome"]
    meta = dict(records=len(records), cases=len({e["case"] for e in records if e["kind"] != "outcome"}),
                exitstatus=exitstatus, namespaces=sorted({e["namespace"] for e in outcomes}),
                no_device=sum(e["outcome"] == "skipped" for e in outcomes), xfails=xfails,
                kink_flips=[e for e in records if e["kind"] == "flip"])
    payload = dict(meta=meta, rows=rows, trajectories=runs)
    atomic_write_bytes(directory / "conformance.json", json.dumps(payload, indent=1, default=str).encode())
    atomic_write_bytes(directory / "conformance.md", _markdown(rows, runs, meta).encode())
    measured = [r for r in rows if r["checks"]]
    if measured:
        _heatmap(measured, directory / "heatmap.png")
    if runs:
        _trajectory_plot(runs, directory / "trajectories.png")
    return directory / "conformance.md"
