"""Committed accuracy baselines: one JSON file per (dataset, model, framework, device), written atomically.

A baseline holds the accuracy, the test-set size, the settings it was trained with and the per-example
correctness vector (hex bitmask, see `gate.encode_correct`) that McNemar's test pairs new runs against.
"""

from __future__ import annotations

import json
import platform
from dataclasses import asdict
from pathlib import Path

import numpy as np

from . import gate
from .data import atomic_write_bytes

SCHEMA_VERSION = 1


def default_baselines_dir() -> Path:
    """The checkout's `baselines/` next to the package when it exists, else `./baselines`."""
    checkout = Path(__file__).resolve().parent.parent / "baselines"
    return checkout if checkout.is_dir() else Path("baselines")


def baseline_path(root: str | Path, dataset: str, model: str, framework: str, device: str) -> Path:
    """`<root>/<dataset>/<model>-<framework>-<device>.json`."""
    return Path(root) / dataset / f"{model}-{framework}-{device}.json"


def load_baseline(path: str | Path) -> dict | None:
    """The baseline record at `path` with its `correct` vector decoded, or None when there is none."""
    path = Path(path)
    if not path.is_file():
        return None
    record = json.loads(path.read_text())
    record["correct"] = gate.decode_correct(record["correct"], record["n_test"])
    return record


def save_baseline(path: str | Path, result) -> Path:
    """Write the baseline of a `train.TrainResult` to `path` atomically (temp file + os.replace)."""
    correct = result.correct
    record = {
        "schema": SCHEMA_VERSION,
        "model": result.model_name,
        "framework": result.framework,
        "dataset": result.dataset,
        "device": result.device,
        "accuracy": float(correct.mean()),
        "n_test": int(len(correct)),
        "n_correct": int(correct.sum()),
        "settings": {"epochs": result.epochs, "seed": result.seed, "threads": result.threads,
                     "recipe": _recipe_settings(result.recipe), "versions": package_versions()},
        "correct": gate.encode_correct(correct),
    }
    return atomic_write_bytes(path, (json.dumps(record, indent=2) + "\n").encode())


def _recipe_settings(recipe) -> dict:
    """The recipe's training hyper-parameters (floors and devices are policy, not settings)."""
    settings = asdict(recipe)
    settings.pop("floor")
    settings.pop("devices")
    return settings


def package_versions() -> dict[str, str]:
    """Versions of Python and of the packages that change numerics."""
    import torch

    from . import __version__

    return {"python": platform.python_version(), "numpy": np.__version__, "torch": torch.__version__,
            "reference": __version__}
