"""`python -m reference calibrate`: measure the accuracy gate's false alarms and power, and derive hard floors.

False alarms: every model is trained with unchanged code on seeds the baseline never saw, on every emulated
"other machine" (`VARIANTS`: thread counts, torch's portable kernels, one-ulp jitter), and gated against its
committed baseline. Power: each realistic fault (`faults.FAULTS`) is injected into runs on several seeds and
must be flagged; and every clean gated run is gated again with `POWER_DROP` of its test answers turned wrong,
which measures the share of runs a regression of that size fails, with the runs' real spread.
Floors: the lowest clean accuracy minus `FLOOR_MARGIN_SD` binomial standard errors.
Runs execute as Ray tasks: on a Ray started here by default, or on a cluster (`--address` or $RAY_ADDRESS).
"""

from __future__ import annotations

import contextlib
import datetime
import functools
import json
import math
import os
import sys
import time
from collections import defaultdict
from dataclasses import dataclass, field

import numpy as np
from tqdm.auto import tqdm

from . import gate, zoo
from .accuracy import UsageError, check_options, plan_runs
from .baselines import BaselineError, baseline_path, default_baselines_dir, load_baseline, record_command, write_all
from .data import DataError, load_dataset
from .faults import FAULTS
from .report import ReportDir, ReportError

FLOOR_MARGIN_SD = 2.0  # a floor sits this many binomial standard errors below the lowest clean run
POWER_DROP = 0.015  # the accuracy drop (1.5 points) whose detection rate the power column reports
POWER_GOAL = 0.9  # the "drop caught" column: the smallest drop that fails at least this share of gated runs
FIRST_SEED = 1000  # clean runs use seeds the baselines (0..K-1) never saw
DEFAULT_FAULT_MODELS = ("tiny_cnn", "tiny_resnet")
MAX_RETRIES = 3  # a cell whose Ray worker dies (killed, out of memory, a node lost) runs again


@dataclass(frozen=True)
class Variant:
    """An emulated other machine: CPU threads, environment (read before torch loads) and one-ulp jitter."""

    threads: int = 1
    env: dict = field(default_factory=dict)
    jitter: bool = False


VARIANTS = {
    "1 thread": Variant(),
    "2 threads": Variant(threads=2),
    "ATen default kernels": Variant(env={"ATEN_CPU_CAPABILITY": "default"}),
    "one-ulp jitter": Variant(jitter=True),
}


@dataclass(frozen=True)
class Cell:
    """One training run of the calibration: a model on a seed, on a variant, with or without a fault."""

    model: str
    framework: str
    device: str
    seeds: tuple[int, ...]  # a gated run: its recipe's gate_seeds trainings, gated together
    variant: str = "1 thread"
    fault: str | None = None


def floor_from(lowest: float, n_test: int) -> float:
    """The hard floor below the lowest observed accuracy: FLOOR_MARGIN_SD binomial standard errors, rounded down."""
    margin = FLOOR_MARGIN_SD * math.sqrt(max(lowest * (1.0 - lowest), 1.0 / n_test) / n_test)
    return math.floor((lowest - margin) * 1000) / 1000


def run_calibration(*, dataset: str = "digits", models: list[str] | None = None, framework: str = "all",
                    device: str = "cpu", seeds: int = 20, variants: list[str] | None = None,
                    faults: list[str] | None = None, fault_models: list[str] | None = None, fault_seeds: int = 10,
                    jobs: int = 0, address: str | None = None, data_dir: str | None = None,
                    baselines_dir: str | None = None,
                    report_dir: str = "reports/calibration", update_floors: bool = False, quiet: bool = False) -> int:
    """Run the calibration, write its report, optionally record the floors; 0 when no false alarm was seen."""
    started = time.perf_counter()
    baselines_dir = baselines_dir or default_baselines_dir()
    variants = variants or list(VARIANTS)
    try:
        check_options(None, FIRST_SEED, seeds, 1, None)
        if jobs < 0 or fault_seeds < 0:
            raise UsageError(f"--jobs and --fault-seeds must be 0 or more, got {jobs} and {fault_seeds}")
        unknown = [v for v in variants if v not in VARIANTS] + [f for f in faults or () if f not in FAULTS]
        if unknown:
            raise UsageError(f"unknown variant or fault {unknown}; variants: {list(VARIANTS)}, faults: {list(FAULTS)}")
        runs = plan_runs(dataset, framework, device, models)
        data = load_dataset(dataset, data_dir)
        baselines = {run: _baseline(baselines_dir, data.name, run) for run in runs}
        output = ReportDir(report_dir, marker="calibration.json")  # last: the `with` below removes its staging
    except (UsageError, DataError, ReportError, BaselineError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    with output:
        cells = planned_cells(runs, data.name, variants, seeds, faults, fault_models, fault_seeds)
        outcomes = execute(cells, data.name, data_dir, jobs or len(os.sched_getaffinity(0)), quiet, address)
        summary = summarize(outcomes, baselines, data.name, len(data.y_test))
        write_calibration(output.staging, summary)
        output.publish()
        if update_floors and summary["false_alarms"]:
            print("floors not recorded: clean runs failed their gate, so the gate is not calibrated", file=sys.stderr)
        elif update_floors:
            record_floors(summary, baselines)
    print(markdown(summary))
    trainings = sum(len(cell.seeds) for cell in cells)
    print(f"report: {output.path / 'calibration.md'} ({len(cells)} gated runs, {trainings} trainings, in "
          f"{time.perf_counter() - started:.0f}s)")
    return 1 if summary["false_alarms"] else 0


def planned_cells(runs: list, dataset: str, variants: list[str], seeds: int, faults: list[str] | None,
                  fault_models: list[str] | None, fault_seeds: int) -> list[Cell]:
    """Every gated run of the sweep: `seeds` unseen ones per run and emulated machine, then `fault_seeds` per
    applicable fault on the fault models (all faults and DEFAULT_FAULT_MODELS when None)."""
    recipes = {run: zoo.spec(run[0]).recipes[dataset] for run in runs}
    cells = [Cell(*run, gated_seeds(FIRST_SEED, i, recipes[run].gate_seeds), variant)
             for run in runs for variant in variants for i in range(seeds)]
    fault_names = list(FAULTS) if faults is None else faults
    fault_models = list(DEFAULT_FAULT_MODELS) if fault_models is None else fault_models
    return cells + [Cell(*run, gated_seeds(0, i, recipes[run].gate_seeds), "1 thread", name)
                    for run in runs if run[0] in fault_models for name in fault_names
                    if FAULTS[name].applies(run[0], run[1], recipes[run]) for i in range(fault_seeds)]


def gated_seeds(first: int, index: int, count: int) -> tuple[int, ...]:
    """The seeds of the index-th gated run of `count` seeds from `first` on (runs never share a seed)."""
    return tuple(range(first + index * count, first + (index + 1) * count))


def _baseline(root, dataset: str, run: tuple[str, str, str]):
    """The committed baseline of a run; calibrating without one is an error naming the command that records it."""
    baseline = load_baseline(baseline_path(root, dataset, *run))
    if baseline is None:
        raise UsageError(f"no baseline for {run} on {dataset}; record it first: {record_command(dataset, *run)}")
    return baseline


def execute(cells: list[Cell], dataset: str, data_dir, jobs: int, quiet: bool,
            address: str | None = None) -> list[tuple[Cell, dict]]:
    """Train every cell as a Ray task: on the cluster at `address` (or $RAY_ADDRESS), else on a Ray started here
    with `jobs` CPUs (stopped afterwards); (cell, outcome) in cell order.

    A task asks for the CPUs its threads use (a CUDA cell also for a GPU), so at most `jobs` threads work at once
    here (more spin-wait in BLAS and OpenMP pools: many times slower), and runs in a worker started with its
    variant's environment (Ray's runtime_env: ATEN_CPU_CAPABILITY is read when the worker imports torch). A task
    whose worker dies is retried (MAX_RETRIES); each cell's outcome is its task's one result, so none is lost or
    counted twice. Results stream in with a progress bar."""
    import ray

    address = address or os.environ.get("RAY_ADDRESS") or None
    # "local": a Ray of our own, never one that happens to run on this machine (Ray's default would join it)
    ray.init(address=address or "local", num_cpus=None if address else jobs, include_dashboard=False,
             log_to_driver=False, logging_level="ERROR", configure_logging=False)
    try:
        train = ray.remote(max_retries=MAX_RETRIES)(train_cell)
        pending = {train.options(num_cpus=VARIANTS[cell.variant].threads, num_gpus=int(cell.device == "cuda"),
                                 runtime_env={"env_vars": dict(VARIANTS[cell.variant].env)})
                   .remote(cell, dataset, data_dir): cell for cell in cells}
        done = {}
        with tqdm(total=len(cells), desc="calibration (gated runs)", unit="run", disable=quiet,
                  mininterval=30) as bar:
            while pending:
                finished, _ = ray.wait(list(pending), num_returns=1)
                done[pending.pop(finished[0])] = ray.get(finished[0])
                bar.update()
    finally:
        ray.shutdown()
    return [(cell, done[cell]) for cell in cells]


@functools.cache
def _dataset(name: str, data_dir):
    return load_dataset(name, data_dir)


def train_cell(cell: Cell, dataset: str, data_dir) -> dict:
    """Train one cell's seeds (in a worker process): their accuracies, correctness bitmasks and divergences."""
    outcome = {"accuracies": [], "correct": [], "diverged": []}
    for seed in cell.seeds:
        accuracy, correct, diverged = _train_seed(cell, seed, dataset, data_dir)
        outcome["accuracies"].append(accuracy)
        outcome["correct"].append(gate.encode_correct(correct))
        outcome["diverged"] += [diverged] if diverged else []
    return outcome


def _train_seed(cell: Cell, seed: int, dataset: str, data_dir) -> tuple[float, np.ndarray, str | None]:
    """(accuracy, correctness, None) of one training of the cell, or (0, all wrong, why) when it diverged:
    the accuracy job fails such a run too."""
    from .train import train

    data = _dataset(dataset, data_dir)
    recipe = zoo.spec(cell.model).recipes[dataset]
    variant = VARIANTS[cell.variant]
    fault = FAULTS.get(cell.fault)
    if fault is not None:
        recipe = fault.recipe(recipe) if fault.recipe else recipe
        data = fault.data(data, seed) if fault.data else data
    try:
        with fault.applied() if fault else contextlib.nullcontext():
            result = train(cell.model, cell.framework, data, device=cell.device, seed=seed, recipe=recipe,
                           threads=variant.threads, jitter=seed if variant.jitter else None)
    except FloatingPointError as error:
        return 0.0, np.zeros(len(data.y_test), bool), str(error)
    return result.accuracy, result.correct, None


def summarize(outcomes: list[tuple[Cell, dict]], baselines: dict, dataset: str, n_test: int) -> dict:
    """Per run: clean accuracies by variant, false alarms, the derived floor, and each fault's detection."""
    rows = []
    for run, baseline in baselines.items():
        clean = [(c, o) for c, o in outcomes if (c.model, c.framework, c.device) == run and c.fault is None]
        accuracies = np.array([a for _, o in clean for a in o["accuracies"]])  # every training, one by one
        floor = floor_from(float(accuracies.min()), n_test)
        # The runs are gated as the accuracy job gates them: with the committed floor, or none. A floor derived
        # from these very runs lies below all of them by construction, so gating them with it would prove nothing.
        gating_floor = baseline.floor
        verdicts = [_verdict(o, baseline, gating_floor) for _, o in clean]
        gate_seeds = len(clean[0][0].seeds)
        threshold = gate.gate(np.ones((gate_seeds, n_test), bool), baseline.runs, None).threshold
        row = {"model": run[0], "framework": run[1], "device": run[2], "dataset": dataset,
               "baseline_mean": float(baseline.runs.mean()), "baseline_runs": len(baseline.runs),
               "gate_seeds": gate_seeds, "threshold": threshold, "committed_floor": baseline.floor, "floor": floor,
               "clean_runs": len(clean), "trainings": len(accuracies), "clean_mean": float(accuracies.mean()),
               "clean_sd": float(accuracies.std()), "lowest": float(accuracies.min()),
               "false_alarms": sum(v != gate.PASS for v in verdicts),
               "diverged": sum(len(o["diverged"]) for _, o in clean),
               "by_variant": _by_variant(clean), "faults": _faults(outcomes, run, baseline, gating_floor),
               **_power(clean, baseline, gating_floor, n_test)}
        rows.append(row)
    return {"created": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"), "alpha": gate.ALPHA,
            "floor_margin_sd": FLOOR_MARGIN_SD, "rows": rows, "false_alarms": sum(r["false_alarms"] for r in rows)}


def _verdict(outcome: dict, baseline, floor: float | None) -> str:
    return gate.gate(_correct(outcome, baseline.n_test), baseline.runs, floor).verdict


def _correct(outcome: dict, n_test: int) -> np.ndarray:
    """(S, n_test) correctness of a gated run's trainings, decoded from its record."""
    return np.stack([gate.decode_correct(text, n_test) for text in outcome["correct"]])


def _without_correct(correct: np.ndarray, dropped: int) -> np.ndarray:
    """(S, n) correctness with each row's first `dropped` correct answers turned wrong (all of them, if fewer).
    Which ones does not change the verdict: the gate judges counts and the mean accuracy."""
    if not dropped:
        return correct
    correct = correct.copy()
    for row in correct:
        row[np.flatnonzero(row)[:dropped]] = False
    return correct


def _power(clean: list, baseline, floor: float | None, n_test: int) -> dict:
    """The share of clean gated runs that fail once every training loses POWER_DROP of the test answers, and the
    smallest drop (in accuracy, whole answers) that fails at least POWER_GOAL of them."""
    runs = [_correct(o, n_test) for _, o in clean]

    def caught(dropped: int) -> float:
        return float(np.mean([gate.gate(_without_correct(correct, dropped), baseline.runs, floor).failed
                              for correct in runs]))

    dropped = 0
    while dropped < n_test and caught(dropped) < POWER_GOAL:
        dropped += 1
    return {"power_drop": POWER_DROP, "power": caught(round(POWER_DROP * n_test)),
            "drop_caught": dropped / n_test}


def _by_variant(clean: list) -> dict:
    groups = defaultdict(list)
    for cell, outcome in clean:
        groups[cell.variant] += outcome["accuracies"]
    return {variant: {"runs": len(a), "mean": float(np.mean(a)), "min": float(np.min(a)), "accuracies": a}
            for variant, a in groups.items()}


def _faults(outcomes: list, run: tuple, baseline, floor: float | None) -> dict:
    """Per fault applied to this run: gated runs, how many were flagged, the trainings' accuracies."""
    groups = defaultdict(list)
    for cell, outcome in outcomes:
        if (cell.model, cell.framework, cell.device) == run and cell.fault is not None:
            groups[cell.fault].append(outcome)
    faults = {}
    for name, found in groups.items():
        accuracies = [a for o in found for a in o["accuracies"]]
        detected = sum(_verdict(o, baseline, floor) in gate.FAILING for o in found)
        faults[name] = {"runs": len(found), "detected": detected, "diverged": sum(len(o["diverged"]) for o in found),
                        "mean": float(np.mean(accuracies)), "accuracies": accuracies,
                        "description": FAULTS[name].description}
    return faults


def record_floors(summary: dict, baselines: dict) -> None:
    """Write each run's derived floor into its baseline file (all files or none)."""
    documents = {}
    for row in summary["rows"]:
        baseline = baselines[(row["model"], row["framework"], row["device"])]
        document = dict(baseline.record)
        document["floor"] = {"accuracy": row["floor"], "lowest_observed": row["lowest"], "runs": row["trainings"],
                             "margin_sd": FLOOR_MARGIN_SD, "variants": list(row["by_variant"]),
                             "calibrated": summary["created"][:10]}
        documents[baseline.path] = document
    for path in write_all(documents):
        print(f"floor recorded: {path}")


def markdown(summary: dict) -> str:
    """The calibration tables: false alarms and floors per run, then detections per fault."""
    lines = ["| model | framework | gated runs x seeds | mean (sd) of one training | lowest | threshold | floor | "
             f"false alarms | caught at -{100 * POWER_DROP:g} points | drop caught in {POWER_GOAL:.0%} |",
             "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]
    for r in summary["rows"]:
        lines.append(f"| {r['model']} | {r['framework']} | {r['clean_runs']} x {r['gate_seeds']} | "
                     f"{r['clean_mean']:.4f} ({r['clean_sd']:.4f}) | {r['lowest']:.4f} | {r['threshold']:.4f} | "
                     f"{r['floor']:.3f} | {r['false_alarms']} | {r['power']:.0%} | "
                     f"{100 * r['drop_caught']:.1f} points |")
    faults = sorted({name for r in summary["rows"] for name in r["faults"]})
    if faults:
        lines += ["", "| fault | " + " | ".join(f"{r['model']} {r['framework']}" for r in summary["rows"]) + " |",
                  "| --- |" + " ---: |" * len(summary["rows"])]
        for name in faults:
            cells = [f"{f['detected']}/{f['runs']} ({f['mean']:.3f}{_diverged(f)})" if (f := r["faults"].get(name))
                     else "—" for r in summary["rows"]]
            lines.append(f"| {name}: {FAULTS[name].description} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _diverged(fault: dict) -> str:
    return f", {fault['diverged']} diverged" if fault["diverged"] else ""


def write_calibration(folder, summary: dict) -> None:
    """calibration.json, calibration.md and calibration.png (accuracy distributions with threshold and floor)."""
    from .plots import calibration_plot

    (folder / "calibration.json").write_text(json.dumps(summary, indent=1) + "\n")
    text = ["# Accuracy gate calibration", "",
            f"Clean runs: unchanged code, seeds from {FIRST_SEED} (the baselines never saw them), on every emulated "
            "machine; a gated run trains the recipe's gate_seeds seeds and a false alarm is any failing verdict. "
            f"Threshold: the regression bound on a gated run's mean (false-alarm rate {gate.ALPHA} per gated run). "
            f"Floor: the lowest single training's accuracy minus {FLOOR_MARGIN_SD:g} binomial standard errors. "
            f"Power: each clean gated run gated again with {100 * POWER_DROP:g}% of the test answers of each of its "
            f"trainings turned wrong; 'drop caught in {POWER_GOAL:.0%}' is the smallest such drop that fails that "
            "share of the gated runs. "
            "Faults: detected/gated runs (mean accuracy of the trainings; a diverged training, stopped by a "
            "non-finite loss, counts as accuracy 0).", "",
            markdown(summary), "", "![distributions](calibration.png)", ""]
    (folder / "calibration.md").write_text("\n".join(text))
    calibration_plot(summary, folder / "calibration.png")
