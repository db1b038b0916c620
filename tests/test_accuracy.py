"""Accuracy gates: every zoo model trains on each of its datasets, per framework and device, and must not regress.

Cases are generated from the zoo's recipes. MNIST cases run only when selected: `pytest -m "accuracy and mnist"`
(`tox -e accuracy`) or REFERENCE_RUN_MNIST=1; they skip with the fetch command when the IDX files are missing.
"""

from __future__ import annotations

import functools
import os
from dataclasses import replace

import pytest

from reference import gate, zoo
from reference.accuracy import gate_run
from reference.baselines import baseline_path, default_baselines_dir, save_baseline
from reference.data import DataError, default_data_dir, find_idx_files, load_dataset
from reference.report import notes
from reference.train import train

pytestmark = pytest.mark.accuracy


def accuracy_cases():
    """(model, framework, device, dataset) for every recipe in the zoo, marked cuda / mnist where they apply."""
    for name in zoo.names():
        for dataset, recipe in zoo.spec(name).recipes.items():
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
    result = train(model, framework, dataset(dataset_name), device=device)
    record = gate_run(result, baseline_path(default_baselines_dir(), dataset_name, model, framework, device))
    assert record["verdict"] not in gate.FAILING, "\n".join(notes([record]))


def test_gate_flags_a_weakened_model_but_not_a_reseeded_one(tmp_path):
    """Real tiny_cnn runs on digits: one epoch at a tiny lr regresses (p tiny); seed 1 vs seed 0 is noise."""
    digits = dataset("digits")
    path = baseline_path(tmp_path, "digits", "tiny_cnn", "numpy", "cpu")
    save_baseline(path, train("tiny_cnn", "numpy", digits, seed=0))

    recipe = zoo.spec("tiny_cnn").recipes["digits"]
    weakened = train("tiny_cnn", "numpy", digits, seed=0, recipe=replace(recipe, epochs=1, lr=1e-3))
    record = gate_run(weakened, path)
    assert record["verdict"] == gate.BELOW_FLOOR
    assert record["p_value"] < 1e-6 and record["delta"] < -0.2

    no_floor = replace(weakened, recipe=replace(weakened.recipe, floor={}))
    assert gate_run(no_floor, path)["verdict"] == gate.REGRESSION

    reseeded = gate_run(train("tiny_cnn", "numpy", digits, seed=1), path)
    assert reseeded["verdict"] == gate.PASS, reseeded
    assert reseeded["p_value"] >= gate.ALPHA
