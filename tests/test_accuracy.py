"""Accuracy gates: every zoo model trains on each of its datasets, per framework and device, and must not regress.

Cases are generated from the zoo's recipes. MNIST cases run only when selected: `pytest -m "accuracy and mnist"`
(`tox -e accuracy`) or REFERENCE_RUN_MNIST=1; they skip with the fetch command when the IDX files are missing.
"""

from __future__ import annotations

import functools
import os

import pytest

from reference import gate, zoo
from reference.accuracy import gate_run
from reference.baselines import baseline_path, default_baselines_dir, load_baseline, record_command
from reference.data import DataError, default_data_dir, find_idx_files, load_dataset
from reference.report import notes
from reference.train import train

pytestmark = pytest.mark.accuracy


def accuracy_cases():
    """(model, framework, device, dataset) for every recipe in the zoo but `idx`'s, marked cuda / mnist where they
    apply."""
    for name in zoo.names():
        for dataset, recipe in zoo.spec(name).recipes.items():
            if dataset == "idx":
                continue  # a user's own IDX files: gated only against the baselines that user records
            for framework in zoo.FRAMEWORKS:
                for device in recipe.devices:
                    if framework == "numpy" and device != "cpu":
                        continue
                    marks = [pytest.mark.cuda] if device == "cuda" else []
                    marks += [pytest.mark.mnist] if dataset == "mnist" else []
                    yield pytest.param(name, framework, device, dataset, marks=marks,
                                       id=f"{name}-{framework}-{device}-{dataset}")


def mnist_selected(config) -> bool:
    """MNIST training runs in its own tier: a `-m` expression naming mnist, or REFERENCE_RUN_MNIST=1."""
    return "mnist" in (config.getoption("markexpr") or "") or os.environ.get("REFERENCE_RUN_MNIST") == "1"


@functools.cache
def dataset(name: str):
    """Each dataset loaded once per process (MNIST from $REFERENCE_DATA_DIR or ~/.cache/reference)."""
    return load_dataset(name)


@pytest.mark.parametrize(("model", "framework", "device", "dataset_name"), list(accuracy_cases()))
def test_accuracy_does_not_regress(request, model, framework, device, dataset_name):
    if dataset_name == "mnist":
        if not mnist_selected(request.config):
            pytest.skip("MNIST accuracy runs in its own tier: tox -e accuracy (pytest -m 'accuracy and mnist') "
                        "or REFERENCE_RUN_MNIST=1")
        try:
            find_idx_files(default_data_dir())
        except DataError as error:
            pytest.skip(str(error))
    baseline = load_baseline(baseline_path(default_baselines_dir(), dataset_name, model, framework, device))
    assert baseline is not None, f"no baseline: {record_command(dataset_name, model, framework, device)}"
    seeds = range(zoo.spec(model).recipes[dataset_name].gate_seeds)
    record = gate_run([train(model, framework, dataset(dataset_name), device=device, seed=s) for s in seeds], baseline)
    assert record["verdict"] not in gate.FAILING, "\n".join(notes([record]))


def committed_tiny_cnn_baseline():
    return load_baseline(baseline_path(default_baselines_dir(), "digits", "tiny_cnn", "numpy", "cpu"))


def test_gate_flags_a_one_epoch_model_against_the_committed_distribution():
    record = gate_run([train("tiny_cnn", "numpy", dataset("digits"), epochs=1)], committed_tiny_cnn_baseline())
    assert record["verdict"] in (gate.REGRESSION, gate.BELOW_FLOOR), record["verdict"]
    assert record["p_value"] < 1e-6 and record["delta"] < -0.1


def test_gate_passes_a_seed_the_baseline_never_saw():
    record = gate_run([train("tiny_cnn", "numpy", dataset("digits"), seed=4242)], committed_tiny_cnn_baseline())
    assert record["verdict"] == gate.PASS, notes([record])
    assert record["p_value"] >= gate.ALPHA
