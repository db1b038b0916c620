"""`python -m reference accuracy`: train the zoo on one dataset, gate each run against its baseline, report.

Exit status: 0 when every run passes, 1 on a regression, a floor miss, a missing baseline or a diverged
training run (non-finite loss), 2 on a usage
error found before any training (unknown model, no CUDA, MNIST not on disk, a damaged baseline, a report
folder that cannot be written, an option out of range): the message says what to do.
"""

from __future__ import annotations

import contextlib
import functools
import multiprocessing
import os
import sys
import time
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from pathlib import Path

import numpy as np
from tqdm.auto import tqdm

from . import gate, zoo
from .baselines import (
    Baseline,
    BaselineError,
    baseline_path,
    baseline_record,
    default_baselines_dir,
    load_baseline,
    recipe_settings,
    record_command,
    write_all,
)
from .data import DataError, load_dataset
from .environment import describe
from .report import ReportDir, ReportError, notes, run_record, text_table, write_report
from .train import train

MAX_SEED = 2**32 - 1  # numpy's and torch's seeds are 32-bit unsigned integers here
SIGNAL_POLL_SECONDS = 0.5  # how often a wait for trainings wakes to let a signal's handler run


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


def check_options(epochs: int | None, seed: int, seeds: int, threads: int, jitter: int | None) -> None:
    """UsageError for a numeric option out of range (before anything is loaded or trained); `seeds` is the
    largest number of seeds any run will train."""
    if epochs is not None and epochs < 1:
        raise UsageError(f"--epochs must be at least 1, got {epochs}")
    if seeds < 1:
        raise UsageError(f"--seeds must be at least 1, got {seeds}")
    if not 0 <= seed <= MAX_SEED - (seeds - 1):
        raise UsageError(f"--seed must be in 0..{MAX_SEED - (seeds - 1)} (with --seeds {seeds}), got {seed}")
    if threads < 0:
        raise UsageError(f"--threads must be 0 (the libraries' defaults) or more, got {threads}")
    if jitter is not None and not 0 <= jitter <= MAX_SEED:
        raise UsageError(f"--jitter must be in 0..{MAX_SEED}, got {jitter}")


def load_baselines(paths: dict[tuple, Path], n_test: int, updating: bool,
                   fingerprint: str | None = None) -> dict[tuple, Baseline | None]:
    """Every planned run's baseline, validated up front; a damaged one, or one recorded on other data (an `idx`
    dataset's files by their `fingerprint`), is a UsageError unless it is being replaced (`updating`), then it
    counts as absent."""
    baselines = {}
    for run, path in paths.items():
        try:
            baseline = load_baseline(path)
        except BaselineError as error:
            if not updating:
                raise UsageError(str(error)) from None
            print(f"note: {error} -- it will be replaced", file=sys.stderr)
            baseline = None
        if baseline is not None and baseline.n_test != n_test and not updating:
            raise UsageError(f"{path}: records {baseline.n_test} test examples, the test set has {n_test}; "
                             f"re-record it with: {record_command(*run)}")
        recorded_on = None if baseline is None else baseline.record.get("data_fingerprint")
        if baseline is not None and recorded_on != fingerprint and not updating:
            raise UsageError(f"{path}: recorded on other data (fingerprint {str(recorded_on)[:16]}, these files "
                             f"{str(fingerprint)[:16]}); gate against a baseline recorded on these files "
                             "(--baselines-dir), or record one with --update-baselines")
        baselines[run] = baseline
    return baselines


def run_accuracy(*, dataset: str = "digits", framework: str = "all", device: str = "auto",
                 models: list[str] | None = None, epochs: int | None = None, seed: int = 0, seeds: int | None = None,
                 data_dir: str | None = None, report_dir: str | Path = "reports/accuracy",
                 baselines_dir: str | Path | None = None, update_baselines: bool = False,
                 accept_regression: bool = False, threads: int = 1, jitter: int | None = None,
                 jobs: int = 1, quiet: bool = False) -> int:
    """Train seeds `seed`..`seed + seeds - 1` of each planned run (default: its recipe's gate_seeds, or
    baseline_seeds when updating), gate them together, optionally record them as the new baselines (all or
    none: none when the runs fail the baselines they would replace, unless `accept_regression`), write the report
    and print the table; return the exit code. CPU trainings run in `jobs` processes at once (0: one per core
    this process may use, or $REFERENCE_JOBS), each with `threads` threads."""
    started = time.perf_counter()
    baselines_dir = Path(baselines_dir) if baselines_dir else default_baselines_dir()
    try:
        if accept_regression and not update_baselines:
            raise UsageError("--accept-regression only applies to --update-baselines (it records a deliberate "
                             "regression as the new baseline)")
        runs = plan_runs(dataset, framework, resolve_device(device), models)
        counts = {run: seeds_of(run[0], dataset, seeds, update_baselines) for run in runs}
        check_options(epochs, seed, max(counts.values()), threads, jitter)
        jobs = resolve_jobs(jobs, threads)
        data = load_dataset(dataset, data_dir)
        paths = {(data.name, *run): baseline_path(baselines_dir, data.name, *run) for run in runs}
        baselines = load_baselines(paths, len(data.y_test), update_baselines, data.fingerprint)
        output = ReportDir(report_dir)  # last: its staging folder is removed only by the `with` below
    except (UsageError, DataError, ReportError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    with output:
        seeds_of_run = {key: range(seed, seed + counts[key[1:]]) for key in paths}
        try:
            trained = train_runs(data, dataset, data_dir, seeds_of_run, jobs, quiet, epochs=epochs,
                                 threads=threads or None, jitter=jitter)
        except FloatingPointError as error:
            print(f"error: training diverged: {error}; no report written", file=sys.stderr)
            return 1
        records = [gate_run(trained[key], baselines[key], _display(path)) for key, path in paths.items()]
        results = [trained[key][0] for key in paths]
        updated = (record_baselines(paths, trained, baselines, records, accept_regression, data.fingerprint)
                   if update_baselines else [])
        written = write_report(output.staging, records, results, {data.name: data})
        output.publish()
    print(text_table(records))
    for line in notes(records, updating=update_baselines):
        print(line)
    if updated:
        print(f"baselines updated: {', '.join(_display(path) for path in updated)}")
    print(f"report: {output.path / written[-1].name} ({len(written)} files) in {time.perf_counter() - started:.0f}s")
    if update_baselines:
        return 0 if updated else 1
    return 1 if any(record["verdict"] in gate.FAILING for record in records) else 0


def resolve_jobs(jobs: int, threads: int) -> int:
    """--jobs: as given, or for 0 $REFERENCE_JOBS, else as many trainings as the cores this process may use hold
    at `threads` threads each (one for 0 threads: the libraries' defaults take every core)."""
    if jobs < 0:
        raise UsageError(f"--jobs must be 0 (one per core) or more, got {jobs}")
    if jobs:
        return jobs
    from_environment = os.environ.get("REFERENCE_JOBS", "")
    if from_environment:
        if not from_environment.isdigit() or int(from_environment) < 1:
            raise UsageError(f"$REFERENCE_JOBS must be a positive integer, got {from_environment!r}")
        return int(from_environment)
    return max(1, len(os.sched_getaffinity(0)) // threads) if threads else 1


def train_runs(data, dataset: str, data_dir, seeds_of_run: dict, jobs: int, quiet: bool, **options) -> dict:
    """{(dataset, model, framework, device): [TrainResult per seed]}. With jobs > 1 the CPU trainings run in that
    many worker processes (spawned: no inherited thread pools) while CUDA ones run here; a training is seeded and
    runs its own thread count wherever it runs, so its result is the same bits either way."""
    tasks = [(key, s) for key, seeds in seeds_of_run.items() for s in seeds]
    pooled = [(key, s) for key, s in tasks if key[3] == "cpu"] if jobs > 1 and len(tasks) > 1 else []
    here = [task for task in tasks if task not in pooled]
    results = {}
    workers = min(jobs, len(pooled))
    with contextlib.ExitStack() as stack:
        if pooled:
            others = set(multiprocessing.active_children())
            pool = stack.enter_context(ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn")))
            stack.push(functools.partial(_stop_trainings, pool, others))
            futures = {pool.submit(_train_in_worker, key[1], key[2], dataset, data_dir, key[3], s, options): (key, s)
                       for key, s in pooled}
        for key, s in here:  # every training without workers, or the CUDA ones while the workers train
            results[key, s] = train(key[1], key[2], data, device=key[3], seed=s, quiet=quiet, **options)
        if pooled:
            bar = stack.enter_context(tqdm(total=len(pooled), desc=f"training ({workers} processes)", unit="run",
                                           leave=False, disable=True if quiet else None))
            for future in _as_completed(futures):
                key, s = futures[future]
                results[key, s] = future.result()
                bar.set_postfix_str(f"{key[1]} {key[2]} seed {s}: {results[key, s].accuracy:.4f}", refresh=False)
                bar.update()
    return {key: [results[key, s] for s in seeds] for key, seeds in seeds_of_run.items()}


def _as_completed(futures, poll_seconds: float = SIGNAL_POLL_SECONDS):
    """The futures as they finish, the wait waking every `poll_seconds`: the kernel may hand SIGTERM or Ctrl-C to
    another thread, and Python runs the handler only when the main thread runs, which a bare wait never does until
    a training ends (hours, for some)."""
    pending = set(futures)
    while pending:
        done, pending = wait(pending, timeout=poll_seconds, return_when=FIRST_COMPLETED)
        yield from done


def _stop_trainings(pool: ProcessPoolExecutor, others: set, error_type, error, traceback) -> None:
    """On an error, Ctrl-C or SIGTERM: start no new training and end the pool's workers (the child processes not
    among `others`, which lived before it): their results would be thrown away, so the command exits now rather
    than after its longest training."""
    if error_type is None:
        return
    pool.shutdown(wait=False, cancel_futures=True)
    for worker in set(multiprocessing.active_children()) - others:
        worker.terminate()


@functools.lru_cache(maxsize=2)
def _worker_dataset(dataset: str, data_dir):
    """A worker process loads (and, for MNIST, verifies) the dataset once, not once per training."""
    return load_dataset(dataset, data_dir)


def _train_in_worker(model: str, framework: str, dataset: str, data_dir, device: str, seed: int, options: dict):
    """One training in a worker process (no per-step progress bar: the command shows one bar over the runs)."""
    return train(model, framework, _worker_dataset(dataset, data_dir), device=device, seed=seed, quiet=True,
                 **options)


def seeds_of(model: str, dataset: str, seeds: int | None, updating: bool) -> int:
    """How many seeds a run trains: `seeds`, else its recipe's gate_seeds (baseline_seeds when updating). A
    committed baseline needs at least baseline_seeds runs (UsageError otherwise)."""
    recipe = zoo.spec(model).recipes[dataset]
    if not updating:
        return recipe.gate_seeds if seeds is None else seeds
    if seeds is not None and seeds < recipe.baseline_seeds:
        raise UsageError(f"--update-baselines records a distribution: {model} on {dataset} needs --seeds "
                         f"{recipe.baseline_seeds} or more, got {seeds}")
    return recipe.baseline_seeds if seeds is None else seeds


def gate_run(results: list, baseline: Baseline | None, baseline_file: str | None = None) -> dict:
    """The report record of one run's seeds (`train.TrainResult`s), gated together against `baseline`."""
    outcome = gate.gate(np.stack([result.correct for result in results]),
                        None if baseline is None else baseline.runs, None if baseline is None else baseline.floor)
    record = run_record(results, outcome, baseline_file)
    first = results[0]
    record["record_command"] = record_command(first.dataset, first.model_name, first.framework, first.device)
    return record


def record_baselines(paths: dict, trained: dict, baselines: dict, records: list[dict],
                     accept_regression: bool = False, data_fingerprint: str | None = None) -> list[Path]:
    """Write every run's new baseline, or none when the runs fail the baselines they would replace (a regression
    or a floor miss) or any trained seed is below its run's floor, unless `accept_regression`: then each such
    baseline records the verdict it was accepted over, and drops the floor calibrated for the old behaviour."""
    failing = [record for record in records if record["verdict"] in REPLACEMENT_BLOCKERS]
    below = [] if accept_regression else [result for key, results in trained.items() for result in results
                                          if result.accuracy < _kept_floor(baselines[key], results[0].recipe)]
    if failing and not accept_regression:
        for record in failing:
            print(f"baselines not updated: {record['model']} {record['framework']} on {record['dataset']} "
                  f"({record['device']}): the runs that would replace {record['baseline_file']} fail it "
                  f"({record['verdict']}: mean accuracy {record['accuracy']:.4f}, baseline {record['baseline']:.4f}, "
                  f"threshold {_format(record['threshold'])}, p = {_format(record['p_value'], '.3g')}); if the change "
                  "is deliberate, rerun with --accept-regression", file=sys.stderr)
    elif below:
        print(f"baselines not updated: {len(below)} run(s) below the hard floor of an unchanged recipe, e.g. "
              f"{below[0].model_name} {below[0].framework} seed {below[0].seed}: {below[0].accuracy:.4f}",
              file=sys.stderr)
    if (failing and not accept_regression) or below:
        for record in records:
            record["baseline_updated"] = False
        return []
    environment = {device: describe(device) for device in {key[3] for key in paths}}
    documents = {path: baseline_record(trained[key], environment[key[3]], baselines[key], accepted_regression(record),
                                       data_fingerprint)
                 for (key, path), record in zip(paths.items(), records, strict=True)}
    written = write_all(documents)
    for record in records:
        record["baseline_updated"] = True
    return written


REPLACEMENT_BLOCKERS = (gate.REGRESSION, gate.BELOW_FLOOR)  # verdicts that keep a baseline from being replaced


def accepted_regression(record: dict) -> dict | None:
    """What a baseline records of the regression it was accepted over (--accept-regression), or None when its
    runs passed the baseline they replace."""
    if record["verdict"] not in REPLACEMENT_BLOCKERS:
        return None
    return {"date": time.strftime("%Y-%m-%d"), "verdict": record["verdict"],
            "replaced_baseline_accuracy": record["baseline"], "accuracy": record["accuracy"],
            "threshold": record["threshold"], "p_value": record["p_value"]}


def _format(value, spec: str = ".4f") -> str:
    return "-" if value is None else format(value, spec)


def _kept_floor(baseline: Baseline | None, recipe) -> float:
    """The floor a re-recorded baseline keeps: the old one while the recipe is unchanged (else none: 0)."""
    if baseline is None or baseline.floor is None or baseline.recipe != recipe_settings(recipe):
        return 0.0
    return baseline.floor


def _display(path: Path) -> str:
    """`path` relative to the working directory when it lies inside it, else absolute."""
    path = Path(path).absolute()
    return str(path.relative_to(Path.cwd())) if path.is_relative_to(Path.cwd()) else str(path)
