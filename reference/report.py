"""The accuracy report: one record per run, report.json, report.md, the stdout table and the plots.

Every file goes into the report folder through a temporary file and `os.replace`.
"""

from __future__ import annotations

import datetime
import json
from pathlib import Path

from . import gate
from .baselines import package_versions
from .data import atomic_write_bytes

COLUMNS = ("model", "framework", "dataset", "device", "accuracy (95% CI)", "baseline", "delta", "p-value",
           "verdict", "seconds")


def run_record(result, outcome: gate.GateResult, baseline_file: str | None = None) -> dict:
    """The JSON record of one run: what was trained, how it scored, and the gate's verdict."""
    return {
        "model": result.model_name,
        "framework": result.framework,
        "dataset": result.dataset,
        "device": result.device,
        "accuracy": outcome.accuracy,
        "n_test": outcome.n_test,
        "ci_low": outcome.ci_low,
        "ci_high": outcome.ci_high,
        "epochs": result.epochs,
        "seed": result.seed,
        "train_seconds": result.train_seconds,
        "baseline": outcome.baseline,
        "baseline_file": baseline_file,
        "delta": outcome.delta,
        "p_value": outcome.p_value,
        "discordant": list(outcome.discordant) if outcome.discordant else None,
        "floor": outcome.floor,
        "verdict": outcome.verdict,
        "history": result.history,
    }


def table_rows(records: list[dict]) -> list[tuple[str, ...]]:
    """One row of display strings per record, in COLUMNS order."""

    def number(value, spec):
        return "-" if value is None else format(value, spec)

    return [
        (r["model"], r["framework"], r["dataset"], r["device"],
         f"{r['accuracy']:.4f} [{r['ci_low']:.4f}, {r['ci_high']:.4f}]", number(r["baseline"], ".4f"),
         number(r["delta"], "+.4f"), number(r["p_value"], ".3g"), r["verdict"], f"{r['train_seconds']:.1f}")
        for r in records
    ]


def text_table(records: list[dict]) -> str:
    """The results as an aligned plain-text table (what the CLI prints)."""
    rows = [COLUMNS, *table_rows(records)]
    widths = [max(len(row[i]) for row in rows) for i in range(len(COLUMNS))]
    lines = ["  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip() for row in rows]
    lines.insert(1, "  ".join("-" * width for width in widths))
    return "\n".join(lines)


def markdown_table(records: list[dict]) -> str:
    """The results as one Markdown table."""
    lines = ["| " + " | ".join(COLUMNS) + " |", "|" + "---|" * len(COLUMNS)]
    lines += ["| " + " | ".join(row) + " |" for row in table_rows(records)]
    return "\n".join(lines)


def notes(records: list[dict]) -> list[str]:
    """Lines explaining the verdicts that need action (no baseline, regression, floor, mismatch)."""
    lines = []
    for r in records:
        name = f"{r['model']} ({r['framework']}, {r['dataset']}, {r['device']})"
        if r["verdict"] == gate.NO_BASELINE and not r.get("baseline_updated"):
            lines.append(f"{name}: no baseline yet; record one with `python -m reference accuracy --dataset "
                         f"{r['dataset']} --models {r['model']} --framework {r['framework']} --device {r['device']} "
                         "--update-baselines`")
        elif r["verdict"] == gate.REGRESSION:
            b, c = r["discordant"]
            lines.append(f"{name}: regression, {r['delta']:+.4f} below baseline; McNemar b={b} c={c}, "
                         f"p={r['p_value']:.2g} < {gate.ALPHA}")
        elif r["verdict"] == gate.BELOW_FLOOR:
            lines.append(f"{name}: accuracy {r['accuracy']:.4f} is below the hard floor {r['floor']}")
        elif r["verdict"] == gate.MISMATCH:
            lines.append(f"{name}: the baseline has a different test-set size; re-record it with --update-baselines")
    return lines


def write_report(report_dir: str | Path, records: list[dict], results: list, datasets: dict,
                 plots: bool = True) -> list[Path]:
    """Write report.json, report.md and (with `plots`) the PNGs into `report_dir`; return the paths written."""
    report_dir = Path(report_dir)
    summary = {
        "created": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "alpha": gate.ALPHA,
        "confidence": gate.CONFIDENCE,
        "versions": package_versions(),
        "failed": any(r["verdict"] in gate.FAILING for r in records),
        "runs": records,
    }
    written = [atomic_write_bytes(report_dir / "report.json", (json.dumps(summary, indent=2) + "\n").encode())]
    images = []
    if plots:
        from .plots import write_plots

        images = write_plots(report_dir, records, results, datasets)
        written += images
    written.append(atomic_write_bytes(report_dir / "report.md", markdown_report(records, images).encode()))
    return written


def markdown_report(records: list[dict], images: list[Path]) -> str:
    """report.md: the table, the notes, and links to the plots."""
    parts = ["# Accuracy report", "",
             f"Verdicts: McNemar's exact test against the baseline (regression when lower with p < {gate.ALPHA}) "
             "and the model's hard floor. Intervals are 95% Wilson intervals.", "", markdown_table(records), ""]
    parts += [f"- {line}" for line in notes(records)]
    parts += ["", *[f"![{path.stem}]({path.name})" for path in images], ""]
    return "\n".join(parts)
