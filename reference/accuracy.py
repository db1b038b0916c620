"""`python -m reference accuracy`: train the zoo on one dataset, gate each run against its baseline, report.

Exit status: 0 when every run passes, 1 on a regression or a floor miss, 2 on a usage error (unknown
model, no CUDA, MNIST not on disk: the message says how to fetch it).
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

from . import gate, zoo
from .baselines import baseline_path, default_baselines_dir, load_baseline, save_baseline
from .data import DataError, load_dataset
from .report import notes, run_record, text_table, write_report
from .train import train


class UsageError(Exception):
    """The command line asks for something that cannot run here."""


def resolve_device(device: str) -> str:
    """'auto' -> 'cuda' when torch sees a GPU, else 'cpu'; 'cuda' without a GPU is a usage error."""
    import torch

    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device == "cuda" and not torch.cuda.is_available():
        raise UsageError("--device cuda: torch sees no CUDA device (torch.cuda.is_available() is False)")
    return device


def plan_runs(dataset: str, framework: str, device: str, models: list[str] | None) -> list[tuple[str, str, str]]:
    """(model, framework, device) for each run: named models, or every model whose recipe covers dataset and device."""
    frameworks = zoo.FRAMEWORKS if framework == "all" else (framework,)
    names = models or [name for name in zoo.names() if dataset in zoo.spec(name).recipes]
    runs = []
    for name in names:
        try:
            recipes = zoo.spec(name).recipes
        except ValueError as error:
            raise UsageError(str(error)) from None
        if dataset not in recipes:
            raise UsageError(f"{name} has no training recipe for {dataset}; it trains on {list(recipes)}")
        for fw in frameworks:
            run_device = "cpu" if fw == "numpy" else device
            if models or run_device in recipes[dataset].devices:
                runs.append((name, fw, run_device))
    if not runs:
        raise UsageError(f"no zoo model trains on {dataset} with {framework} on {device}")
    return runs


def run_accuracy(args) -> int:
    """Train, gate, optionally update baselines, write the report and print the table; return the exit code."""
    started = time.perf_counter()
    try:
        if args.epochs is not None and args.epochs < 1:
            raise UsageError(f"--epochs must be at least 1, got {args.epochs}")
        runs = plan_runs(args.dataset, args.framework, resolve_device(args.device), args.models)
        data = load_dataset(args.dataset, args.data_dir)
    except (UsageError, DataError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    baselines_dir = Path(args.baselines_dir) if args.baselines_dir else default_baselines_dir()
    results, records = [], []
    for model, framework, device in runs:
        result = train(model, framework, data, device=device, seed=args.seed, epochs=args.epochs,
                       threads=args.threads or None, quiet=args.quiet)
        path = baseline_path(baselines_dir, data.name, model, framework, device)
        record = gate_run(result, path, update=args.update_baselines)
        results.append(result)
        records.append(record)
    written = write_report(args.report_dir, records, results, {data.name: data})
    print(text_table(records))
    for line in notes(records):
        print(line)
    updated = [r["baseline_file"] for r in records if r["baseline_updated"]]
    if updated:
        print(f"baselines updated: {', '.join(updated)}")
    print(f"report: {written[-1]} ({len(written)} files) in {time.perf_counter() - started:.0f}s")
    return 1 if any(failed(r, args.update_baselines) for r in records) else 0


def gate_run(result, path: Path, update: bool = False) -> dict:
    """Gate one trained run against the baseline at `path` (rewriting it when `update` and above the floor)."""
    baseline = load_baseline(path)
    floor = result.recipe.floor.get(result.framework)
    outcome = gate.gate(result.correct, None if baseline is None else baseline["correct"], floor)
    record = run_record(result, outcome, _display(path))
    record["baseline_updated"] = update and outcome.verdict != gate.BELOW_FLOOR
    if record["baseline_updated"]:
        save_baseline(path, result)
    return record


def failed(record: dict, updating: bool) -> bool:
    """Whether a run fails the job; when updating baselines only a floor miss does (the new baseline is accepted)."""
    if updating:
        return record["verdict"] == gate.BELOW_FLOOR
    return record["verdict"] in gate.FAILING


def _display(path: Path) -> str:
    """`path` relative to the working directory when it lies inside it, else absolute."""
    path = Path(path).absolute()
    return str(path.relative_to(Path.cwd())) if path.is_relative_to(Path.cwd()) else str(path)
