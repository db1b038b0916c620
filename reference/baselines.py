"""Committed accuracy baselines: one JSON file per (dataset, model, framework, device) holding a distribution.

A baseline holds K runs of the same recipe with different seeds (each run's per-example correctness as a hex
bitmask, see `gate.encode_correct`), where they were recorded (`environment.describe`), and the hard floor
that `python -m reference calibrate --update-floors` derived from many more runs. Files are validated when
loaded and written all or none: a damaged file is a `BaselineError`, never a pass, and so is one that disagrees
with itself (a count or mean its bitmasks contradict, a number that is not finite) or with its file name (a
model, framework, dataset or device other than the file's).
"""

from __future__ import annotations

import contextlib
import datetime
import json
import math
import os
import uuid
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from . import gate

SCHEMA_VERSION = 2
REQUIRED_KEYS = ("schema", "model", "framework", "dataset", "device", "n_test", "recipe", "runs")


class BaselineError(Exception):
    """A baseline file is damaged or unreadable; the message names it and the command that re-records it."""


@dataclass(frozen=True)
class Baseline:
    """A loaded, validated baseline: the (K, n_test) correctness of its runs and its floor (None: none yet)."""

    path: Path
    runs: np.ndarray
    seeds: tuple[int, ...]
    recipe: dict
    floor: float | None
    record: dict

    @property
    def n_test(self) -> int:
        return self.runs.shape[1]


def default_baselines_dir() -> Path:
    """The checkout's `baselines/` next to the package when it exists, else `./baselines`."""
    checkout = Path(__file__).resolve().parent.parent / "baselines"
    return checkout if checkout.is_dir() else Path("baselines")


def baseline_path(root: str | Path, dataset: str, model: str, framework: str, device: str) -> Path:
    """`<root>/<dataset>/<model>-<framework>-<device>.json`."""
    return Path(root) / dataset / f"{model}-{framework}-{device}.json"


def record_command(dataset: str, model: str, framework: str, device: str) -> str:
    """The command that (re-)records one baseline."""
    return (f"python -m reference accuracy --dataset {dataset} --models {model} --framework {framework} "
            f"--device {device} --update-baselines")


def load_baseline(path: str | Path) -> Baseline | None:
    """The validated baseline at `path`, None when there is no file; BaselineError when it is damaged."""
    path = Path(path)
    if not path.exists():
        return None
    try:
        record = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError) as error:
        raise BaselineError(f"{path}: cannot read it ({error})") from None
    except json.JSONDecodeError as error:
        raise BaselineError(f"{path}: not valid JSON ({error.msg} at line {error.lineno}); "
                            "re-record it with --update-baselines") from None
    return _validated(path, record)


def _validated(path: Path, record) -> Baseline:
    """The Baseline a parsed JSON document describes, or BaselineError naming the first problem."""
    def fail(problem: str):
        raise BaselineError(f"{path}: {problem}; re-record it with --update-baselines")

    if not isinstance(record, dict):
        fail(f"expected a JSON object, found {type(record).__name__}")
    if record.get("schema") != SCHEMA_VERSION:
        fail(f"schema {record.get('schema')!r}, this version reads schema {SCHEMA_VERSION}")
    missing = [key for key in REQUIRED_KEYS if key not in record]
    if missing:
        fail(f"missing key(s) {', '.join(missing)}")
    n_test = record["n_test"]
    if not isinstance(n_test, int) or isinstance(n_test, bool) or n_test < 1:
        fail(f"n_test must be a positive integer, found {n_test!r}")
    runs = record["runs"]
    if not isinstance(runs, list) or not runs:
        fail("runs must be a non-empty list")
    rows, seeds = [], []
    for index, run in enumerate(runs):
        if not isinstance(run, dict) or not {"seed", "n_correct", "correct"} <= set(run):
            fail(f"run {index} must be an object with seed, n_correct and correct")
        try:
            correct = gate.decode_correct(run["correct"], n_test)
        except ValueError as error:
            fail(f"run {index}: {error}")
        if int(correct.sum()) != run["n_correct"]:
            fail(f"run {index}: n_correct {run['n_correct']!r} but its bitmask has {int(correct.sum())} correct")
        rows.append(correct)
        seeds.append(run["seed"])
    floor = record.get("floor")
    if floor is not None and not (isinstance(floor, dict) and isinstance(floor.get("accuracy"), float)
                                  and 0.0 <= floor["accuracy"] <= 1.0):
        fail(f"floor must be an object with an accuracy in [0, 1], found {floor!r}")
    field = next((name for name, value in _numbers(record) if not math.isfinite(value)), None)
    if field is not None:
        fail(f"field {field} is not a finite number")
    mean = float(np.mean([row.mean() for row in rows]))
    if "mean_accuracy" in record and not math.isclose(record["mean_accuracy"], mean, rel_tol=0.0, abs_tol=1e-9):
        fail(f"field mean_accuracy says {record['mean_accuracy']!r}, its runs' bitmasks say {mean!r}")
    named = _named_run(path)
    for key, expected in zip(("dataset", "model", "framework", "device"), named or (), strict=False):
        if record[key] != expected:
            fail(f"field {key} says {record[key]!r}, but the file is the baseline of {key} {expected!r}")
    return Baseline(path, np.stack(rows), tuple(seeds), record["recipe"],
                    None if floor is None else floor["accuracy"], record)


def _numbers(value, where: str = ""):
    """(field path, value) of every float in a parsed JSON document (JSON's NaN and Infinity parse as floats)."""
    if isinstance(value, float):
        yield where, value
    elif isinstance(value, dict):
        for key, item in value.items():
            yield from _numbers(item, f"{where}.{key}" if where else key)
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _numbers(item, f"{where}[{index}]")


def _named_run(path: Path) -> tuple[str, str, str, str] | None:
    """(dataset, model, framework, device) a file named `<dataset>/<model>-<framework>-<device>.json` is the
    baseline of (see `baseline_path`), or None for another name."""
    parts = path.stem.rsplit("-", 2)
    if len(parts) != 3 or parts[1] not in ("numpy", "torch") or parts[2] not in ("cpu", "cuda"):
        return None
    return (path.parent.name, *parts)


def recipe_settings(recipe) -> dict:
    """A recipe's training hyper-parameters as recorded in a baseline (devices and seed counts are policy)."""
    settings = asdict(recipe)
    for policy in ("devices", "baseline_seeds", "gate_seeds"):
        settings.pop(policy, None)
    return settings


def baseline_record(results: list, environment: dict, previous: Baseline | None = None,
                    accepted_regression: dict | None = None, data_fingerprint: str | None = None) -> dict:
    """The JSON document of a baseline from the `train.TrainResult`s of one run's K seeds.

    The floor of `previous` is kept when the recipe is unchanged (it was calibrated for that recipe), unless the
    runs regressed against it and that was accepted (`accepted_regression`, the gate's verdict, is recorded); an
    unverified dataset's files are named by their `data_fingerprint`."""
    first = results[0]
    recipe = recipe_settings(first.recipe)
    record = {
        "schema": SCHEMA_VERSION,
        "model": first.model_name,
        "framework": first.framework,
        "dataset": first.dataset,
        "device": first.device,
        "n_test": int(len(first.correct)),
        "recipe": recipe,
        "recorded": {"date": datetime.date.today().isoformat(), "threads": first.threads, **environment},
        "mean_accuracy": float(np.mean([r.accuracy for r in results])),
        "runs": [{"seed": r.seed, "n_correct": int(r.correct.sum()), "correct": gate.encode_correct(r.correct)}
                 for r in results],
    }
    if data_fingerprint is not None:
        record["data_fingerprint"] = data_fingerprint
    if accepted_regression is not None:  # a deliberate change: the old floor was calibrated for other behaviour
        record["accepted_regression"] = accepted_regression
    elif previous is not None and previous.recipe == recipe and "floor" in previous.record:
        record["floor"] = previous.record["floor"]
    return record


def write_all(documents: dict[Path, dict]) -> list[Path]:
    """Write every JSON document or none: all go to temporary files first, then replace their targets; if a
    replacement fails, the targets already replaced get their previous content back."""
    staged = {}
    try:
        for path, document in documents.items():
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex}.part")
            tmp.write_text(json.dumps(document, indent=2) + "\n")
            staged[path] = tmp
        previous = {path: path.read_bytes() if path.exists() else None for path in staged}
        done = []
        try:
            for path, tmp in staged.items():
                os.replace(tmp, path)
                done.append(path)
        except BaseException:
            for path in done:
                if previous[path] is None:
                    path.unlink()
                else:
                    path.write_bytes(previous[path])
            raise
    finally:
        for tmp in staged.values():
            with contextlib.suppress(FileNotFoundError):
                tmp.unlink()
    return list(staged)
