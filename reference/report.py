"""The accuracy report: one record per run, report.json, report.md, the stdout table and the plots.

A report folder is written as a whole (`ReportDir`): its files go into a staging folder beside it, which
then takes its place, so two runs writing one folder never leave files of both side by side.
"""

from __future__ import annotations

import contextlib
import datetime
import json
import os
import shutil
import uuid
from pathlib import Path

from . import gate
from .data import atomic_write_bytes
from .environment import describe

COLUMNS = ("model", "framework", "dataset", "device", "seeds", "accuracy (95% CI)", "baseline (sd, runs)",
           "threshold", "p-value", "verdict", "seconds")


class ReportError(Exception):
    """The report folder cannot be used; the message names it and why."""


class ReportDir:
    """A report folder replaced as a whole: write into `staging`, then `publish()` (a context manager that
    removes the staging folder when the block fails). Checked when created, before any work is done."""

    def __init__(self, path: str | Path, marker: str = "report.json"):
        self.path = Path(path)
        if self.path.exists() and not self.path.is_dir():
            raise ReportError(f"--report-dir {self.path} is a file; expected a folder (new, empty or a previous "
                              "report)")
        if self.path.is_dir() and any(self.path.iterdir()) and not (self.path / marker).exists():
            raise ReportError(f"--report-dir {self.path} holds files but no {marker}: it is not a previous report, "
                              "and publishing would replace it; choose a new or empty folder")
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self.staging = self.path.parent / f".{self.path.name}.{uuid.uuid4().hex}.staging"
            self.staging.mkdir()
        except OSError as error:
            raise ReportError(f"--report-dir {self.path}: cannot write there ({error.strerror or error})") from None

    def __enter__(self) -> ReportDir:
        return self

    def __exit__(self, *exc_info) -> None:
        shutil.rmtree(self.staging, ignore_errors=True)

    def publish(self, attempts: int = 100) -> Path:
        """Put the staging folder in the report folder's place; a folder another run published in between is
        moved aside and removed, so the survivor is always one run's complete report."""
        replaced = []
        try:
            for _ in range(attempts):
                try:
                    os.rename(self.staging, self.path)  # POSIX: succeeds onto a missing or empty folder
                    return self.path
                except OSError:
                    aside = self.path.with_name(f".{self.path.name}.{uuid.uuid4().hex}.old")
                    with contextlib.suppress(FileNotFoundError):
                        os.rename(self.path, aside)
                        replaced.append(aside)
            raise ReportError(f"--report-dir {self.path}: could not replace it in {attempts} attempts")
        finally:
            for aside in replaced:
                shutil.rmtree(aside, ignore_errors=True)


def run_record(results: list, outcome: gate.GateResult, baseline_file: str | None = None) -> dict:
    """The JSON record of one gated run (its seeds' `train.TrainResult`s): what was trained, how each seed
    scored, and the gate's verdict on them together. `accuracy` is their mean; `history` the first seed's."""
    first = results[0]
    return {
        "model": first.model_name,
        "framework": first.framework,
        "dataset": first.dataset,
        "device": first.device,
        "accuracy": outcome.accuracy,
        "n_test": outcome.n_test,
        "ci_low": outcome.ci_low,
        "ci_high": outcome.ci_high,
        "epochs": first.epochs,
        "seed": first.seed,
        "seeds": [result.seed for result in results],
        "accuracies": [result.accuracy for result in results],
        "threads": first.threads,
        "jitter": first.jitter,
        "train_seconds": sum(result.train_seconds for result in results),
        "baseline": outcome.baseline,
        "baseline_sd": outcome.baseline_sd,
        "baseline_runs": outcome.baseline_runs,
        "baseline_file": baseline_file,
        "threshold": outcome.threshold,
        "delta": outcome.delta,
        "p_value": outcome.p_value,
        "newly_wrong": outcome.newly_wrong,
        "floor": outcome.floor,
        "verdict": outcome.verdict,
        "correct": [gate.encode_correct(result.correct) for result in results],
        "history": first.history,
    }


def table_rows(records: list[dict]) -> list[tuple[str, ...]]:
    """One row of display strings per record, in COLUMNS order."""

    def number(value, spec):
        return "-" if value is None else format(value, spec)

    def baseline(r):
        if r["baseline"] is None:
            return "-"
        return f"{r['baseline']:.4f} ({r['baseline_sd']:.4f}, {r['baseline_runs']})"

    def seeds(r):
        return str(r["seeds"][0]) if len(r["seeds"]) == 1 else f"{r['seeds'][0]}-{r['seeds'][-1]}"

    return [
        (r["model"], r["framework"], r["dataset"], r["device"], seeds(r),
         f"{r['accuracy']:.4f} [{r['ci_low']:.4f}, {r['ci_high']:.4f}]", baseline(r), number(r["threshold"], ".4f"),
         number(r["p_value"], ".3g"), r["verdict"], f"{r['train_seconds']:.1f}")
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


def notes(records: list[dict], updating: bool = False) -> list[str]:
    """Lines explaining the verdicts that need action (no baseline, regression, floor, mismatch, no floor)."""
    lines = []
    for r in records:
        name = f"{r['model']} ({r['framework']}, {r['dataset']}, {r['device']}, seeds {r['seeds']})"
        if r["verdict"] == gate.NO_BASELINE and not updating:
            lines.append(f"{name}: FAILED, no baseline: a run is only gated against a recorded distribution; "
                         f"record one with `{r['record_command']}`")
        elif r["verdict"] == gate.REGRESSION:
            lines.append(f"{name}: regression, mean accuracy {r['accuracy']:.4f} is below the threshold "
                         f"{r['threshold']:.4f} of its baseline ({r['baseline']:.4f} over {r['baseline_runs']} "
                         f"runs, sd {r['baseline_sd']:.4f}; p={r['p_value']:.2g} < {gate.ALPHA}); "
                         f"{r['newly_wrong']} examples every baseline run got right are wrong in every seed")
        elif r["verdict"] == gate.BELOW_FLOOR:
            lines.append(f"{name}: mean accuracy {r['accuracy']:.4f} is below the hard floor {r['floor']}")
        elif r["verdict"] == gate.MISMATCH:
            lines.append(f"{name}: the baseline has a different test-set size; re-record it with "
                         f"`{r['record_command']}`")
        if r["baseline"] is not None and r["floor"] is None and not updating:
            lines.append(f"{name}: note: its baseline has no hard floor yet (python -m reference calibrate "
                         "--update-floors derives one)")
    return lines


def write_report(report_dir: str | Path, records: list[dict], results: list, datasets: dict,
                 plots: bool = True) -> list[Path]:
    """Write report.json, report.md and (with `plots`) the PNGs into `report_dir`; return the paths written."""
    report_dir = Path(report_dir)
    summary = {
        "created": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "alpha": gate.ALPHA,
        "confidence": gate.CONFIDENCE,
        "environment": describe(records[0]["device"] if records else "cpu"),
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
             "Verdicts: each run's seeds together against the distribution of its baseline's runs (regression "
             f"below the threshold, a one-sided bound with false-alarm rate {gate.ALPHA} per gated run) and its "
             "hard floor. Accuracy: the seeds' mean with a 95% Wilson interval; baseline: mean accuracy (sd, runs).",
             "", markdown_table(records), ""]
    parts += [f"- {line}" for line in notes(records)]
    parts += ["", *[f"![{path.stem}]({path.name})" for path in images], ""]
    return "\n".join(parts)
