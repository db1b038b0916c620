"""The accuracy job's outputs: baseline files (atomic), report.json / report.md / PNGs, and the CLI's exit codes."""

from __future__ import annotations

import functools
import json
import os
from dataclasses import replace

import numpy as np
import pytest

from reference import gate
from reference.__main__ import main
from reference.accuracy import gate_run
from reference.baselines import baseline_path, load_baseline, save_baseline
from reference.data import load_dataset
from reference.report import COLUMNS, write_report
from reference.train import train

RECORD_FIELDS = {"model", "framework", "dataset", "device", "accuracy", "n_test", "epochs", "seed", "train_seconds",
                 "baseline", "verdict", "ci_low", "ci_high", "p_value", "delta", "floor", "history"}
PLOTS = ("learning_curves", "confusion_matrices", "accuracy_vs_baseline", "misclassified", "first_layer_filters",
         "first_layer_feature_maps")


@functools.cache
def one_epoch_runs():
    """tiny_cnn trained one epoch on digits in each framework (cheap, real models for the plots)."""
    digits = load_dataset("digits")
    return digits, [train("tiny_cnn", framework, digits, epochs=1) for framework in ("numpy", "torch")]


def test_baseline_round_trips_correctness_and_settings(tmp_path):
    _, (run, _) = one_epoch_runs()
    path = save_baseline(baseline_path(tmp_path, "digits", "tiny_cnn", "numpy", "cpu"), run)
    assert path == tmp_path / "digits" / "tiny_cnn-numpy-cpu.json"
    stored = load_baseline(path)
    np.testing.assert_array_equal(stored["correct"], run.correct)
    assert stored["accuracy"] == run.accuracy and stored["n_test"] == 450
    assert stored["settings"]["epochs"] == 1 and stored["settings"]["seed"] == 0
    assert stored["settings"]["recipe"]["lr"] == run.recipe.lr and "numpy" in stored["settings"]["versions"]
    assert load_baseline(tmp_path / "missing.json") is None


def test_baseline_update_is_atomic(tmp_path, monkeypatch):
    _, (run, _) = one_epoch_runs()
    path = save_baseline(tmp_path / "b.json", run)
    before = path.read_bytes()

    def crash(*args):
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", crash)
    with pytest.raises(OSError, match="disk full"):
        save_baseline(path, replace(run, predictions=np.zeros_like(run.predictions)))
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["b.json"]  # no temporary file left behind


def test_gate_run_updates_only_when_asked_and_above_the_floor(tmp_path):
    _, (run, _) = one_epoch_runs()
    path = tmp_path / "b.json"
    assert gate_run(run, path)["verdict"] == gate.BELOW_FLOOR and not path.exists()
    assert not gate_run(run, path, update=True)["baseline_updated"] and not path.exists()
    no_floor = replace(run, recipe=replace(run.recipe, floor={}))
    record = gate_run(no_floor, path, update=True)
    assert record["verdict"] == gate.NO_BASELINE and record["baseline_updated"] and path.exists()
    again = gate_run(no_floor, path)
    assert again["verdict"] == gate.PASS and again["p_value"] == 1.0 and again["delta"] == 0.0


def test_report_files_hold_every_run(tmp_path):
    digits, runs = one_epoch_runs()
    records = [gate_run(run, tmp_path / f"{run.framework}.json") for run in runs]
    written = write_report(tmp_path / "report", records, runs, {"digits": digits})
    names = {path.name for path in written}
    assert names == {"report.json", "report.md", *(f"{name}.png" for name in PLOTS)}
    for path in written:
        assert path.stat().st_size > 0
    assert not [p for p in (tmp_path / "report").iterdir() if p.name.startswith(".")]

    report = json.loads((tmp_path / "report" / "report.json").read_text())
    assert [r["framework"] for r in report["runs"]] == ["numpy", "torch"]
    for record in report["runs"]:
        assert RECORD_FIELDS <= set(record)
        assert record["ci_low"] <= record["accuracy"] <= record["ci_high"] and record["n_test"] == 450
    assert report["failed"] is True  # one epoch is below tiny_cnn's floor

    markdown = (tmp_path / "report" / "report.md").read_text()
    assert "| " + " | ".join(COLUMNS) + " |" in markdown
    assert sum(line.startswith("| tiny_cnn |") for line in markdown.splitlines()) == 2
    assert "below the hard floor" in markdown


def accuracy_args(tmp_path, *extra: str) -> list[str]:
    return ["accuracy", "--models", "tiny_cnn", "--framework", "numpy", "--device", "cpu", "--quiet",
            "--baselines-dir", str(tmp_path / "baselines"), "--report-dir", str(tmp_path / "report"), *extra]


def test_cli_records_baselines_then_gates_against_them(tmp_path, capsys):
    assert main(accuracy_args(tmp_path, "--update-baselines")) == 0
    out = capsys.readouterr().out
    assert "no-baseline" in out and "baselines updated" in out
    assert (tmp_path / "baselines" / "digits" / "tiny_cnn-numpy-cpu.json").is_file()

    assert main(accuracy_args(tmp_path)) == 0
    assert " pass " in capsys.readouterr().out
    assert main(accuracy_args(tmp_path, "--epochs", "1")) == 1  # far below the baseline and the floor
    report = json.loads((tmp_path / "report" / "report.json").read_text())
    assert report["runs"][0]["verdict"] == gate.BELOW_FLOOR and report["runs"][0]["p_value"] < 1e-10


def test_cli_without_mnist_files_is_a_usage_error_naming_the_fetch_command(tmp_path, capsys):
    assert main(["accuracy", "--dataset", "mnist", "--device", "cpu", "--data-dir", str(tmp_path)]) == 2
    assert f"python -m reference fetch mnist --data-dir {tmp_path}" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (["--models", "nope"], "unknown model 'nope'"),
        (["--models", "mnist_cnn"], "mnist_cnn has no training recipe for digits"),
        (["--epochs", "0"], "--epochs must be at least 1"),
    ],
)
def test_cli_usage_errors_exit_2(tmp_path, capsys, options, message):
    assert main(["accuracy", "--report-dir", str(tmp_path), *options]) == 2
    assert message in capsys.readouterr().err


def test_default_plan_follows_the_zoo_recipes():
    from reference.accuracy import plan_runs

    digits_models = ("tiny_cnn", "tiny_resnet", "resnet18")
    assert plan_runs("digits", "all", "cpu", None) == [
        (model, framework, "cpu") for model in digits_models for framework in ("numpy", "torch")
    ]
    assert plan_runs("mnist", "all", "cpu", None) == [("mnist_cnn", "numpy", "cpu"), ("mnist_cnn", "torch", "cpu")]
    assert ("resnet18", "torch", "cuda") in plan_runs("mnist", "torch", "cuda", None)
