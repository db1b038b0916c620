"""The accuracy job's outputs: baseline files (distributions, written all or none), report.json / report.md /
PNGs, and the CLI's exit codes."""

from __future__ import annotations

import functools
import json

import pytest

from reference import accuracy, gate, zoo
from reference.__main__ import main
from reference.accuracy import gate_run
from reference.baselines import baseline_path, baseline_record, default_baselines_dir, load_baseline, write_all
from reference.data import load_dataset
from reference.environment import describe
from reference.report import COLUMNS, ReportDir, write_report
from reference.train import train

RECORD_FIELDS = {"model", "framework", "dataset", "device", "accuracy", "n_test", "epochs", "seed", "train_seconds",
                 "baseline", "verdict", "ci_low", "ci_high", "p_value", "delta", "floor", "history", "threshold",
                 "baseline_sd", "baseline_runs", "correct"}
PLOTS = ("learning_curves", "confusion_matrices", "accuracy_vs_baseline", "misclassified", "first_layer_filters",
         "first_layer_feature_maps")


@functools.cache
def one_epoch_runs():
    """tiny_cnn trained one epoch on digits in each framework (cheap, real models for the plots)."""
    digits = load_dataset("digits")
    return digits, [train("tiny_cnn", framework, digits, epochs=1) for framework in ("numpy", "torch")]


@functools.cache
def one_epoch_seeds(framework: str = "numpy"):
    """Five one-epoch tiny_cnn runs (seeds 0-4): a small baseline distribution."""
    digits = load_dataset("digits")
    return [train("tiny_cnn", framework, digits, epochs=1, seed=seed) for seed in range(5)]


def test_baseline_round_trips_runs_settings_and_where_they_were_recorded(tmp_path):
    runs = one_epoch_seeds()
    path = baseline_path(tmp_path, "digits", "tiny_cnn", "numpy", "cpu")
    assert write_all({path: baseline_record(runs, describe())}) == [path]
    stored = load_baseline(path)
    assert stored.seeds == (0, 1, 2, 3, 4) and stored.n_test == 450 and stored.floor is None
    for row, run in zip(stored.runs, runs, strict=True):
        assert (row == run.correct).all()
    assert stored.recipe["epochs"] == 1 and stored.recipe["lr"] == runs[0].recipe.lr
    recorded = stored.record["recorded"]
    assert recorded["threads"] == 1 and recorded["versions"]["numpy"] and recorded["cpu"]
    assert {"library", "kernel"} <= set(recorded["blas"]) and "torch_cpu_capability" in recorded
    assert load_baseline(tmp_path / "missing.json") is None


def test_re_recording_keeps_the_floor_only_for_an_unchanged_recipe(tmp_path):
    runs = one_epoch_seeds()
    path = tmp_path / "b.json"
    write_all({path: baseline_record(runs, {}) | {"floor": {"accuracy": 0.5}}})
    previous = load_baseline(path)
    assert previous.floor == 0.5
    assert baseline_record(runs, {}, previous)["floor"] == {"accuracy": 0.5}
    other_recipe = [train("tiny_cnn", "numpy", load_dataset("digits"), epochs=2, seed=seed) for seed in range(2)]
    assert "floor" not in baseline_record(other_recipe, {}, previous)


def test_gate_run_against_a_distribution(tmp_path):
    path = tmp_path / "b.json"
    write_all({path: baseline_record(one_epoch_seeds(), describe())})  # seeds 0-4
    baseline = load_baseline(path)
    unseen = train("tiny_cnn", "numpy", load_dataset("digits"), epochs=1, seed=7)
    record = gate_run([unseen], baseline)
    assert record["verdict"] == gate.PASS and record["baseline_runs"] == 5
    assert record["threshold"] < min(baseline.runs.mean(axis=1))
    committed = load_baseline(baseline_path(default_baselines_dir(), "digits", "tiny_cnn", "numpy", "cpu"))
    flagged = gate_run([unseen], committed)  # one epoch against the full recipe's ten runs
    assert flagged["verdict"] in gate.FAILING and flagged["p_value"] < 1e-10
    assert gate_run([unseen], None)["verdict"] == gate.NO_BASELINE


def test_report_files_hold_every_run(tmp_path):
    digits, runs = one_epoch_runs()
    records = [gate_run([run], None) for run in runs]
    with ReportDir(tmp_path / "report") as output:
        written = write_report(output.staging, records, runs, {"digits": digits})
        output.publish()
    names = {path.name for path in written}
    assert names == {"report.json", "report.md", *(f"{name}.png" for name in PLOTS)}
    assert sorted(path.name for path in (tmp_path / "report").iterdir()) == sorted(names)
    for path in (tmp_path / "report").iterdir():
        assert path.stat().st_size > 0

    report = json.loads((tmp_path / "report" / "report.json").read_text())
    assert [r["framework"] for r in report["runs"]] == ["numpy", "torch"]
    for record in report["runs"]:
        assert RECORD_FIELDS <= set(record)
        assert record["ci_low"] <= record["accuracy"] <= record["ci_high"] and record["n_test"] == 450
    assert report["failed"] is True  # no baselines
    assert report["environment"]["versions"]["torch"]

    markdown = (tmp_path / "report" / "report.md").read_text()
    assert "| " + " | ".join(COLUMNS) + " |" in markdown
    assert sum(line.startswith("| tiny_cnn |") for line in markdown.splitlines()) == 2
    assert "FAILED, no baseline" in markdown


def accuracy_args(tmp_path, *extra: str) -> list[str]:
    return ["accuracy", "--models", "tiny_cnn", "--framework", "numpy", "--device", "cpu", "--quiet",
            "--baselines-dir", str(tmp_path / "baselines"), "--report-dir", str(tmp_path / "report"), *extra]


def test_cli_records_baselines_then_gates_against_them(tmp_path, capsys):
    recipe = zoo.spec("tiny_cnn").recipes["digits"]
    three_epochs = ("--epochs", "3")  # the recipe shortened: its seed counts, a tenth of the time
    assert main(accuracy_args(tmp_path, *three_epochs, "--update-baselines")) == 0  # baseline_seeds, from 0
    out = capsys.readouterr().out
    assert "no-baseline" in out and "baselines updated" in out
    stored = load_baseline(tmp_path / "baselines" / "digits" / "tiny_cnn-numpy-cpu.json")
    assert stored.seeds == tuple(range(recipe.baseline_seeds)) and stored.recipe["epochs"] == 3

    assert main(accuracy_args(tmp_path, *three_epochs, "--seed", "100")) == 0  # gate_seeds, from 100
    assert " pass " in capsys.readouterr().out
    report = json.loads((tmp_path / "report" / "report.json").read_text())
    assert report["runs"][0]["seeds"] == list(range(100, 100 + recipe.gate_seeds))
    assert len(report["runs"][0]["correct"]) == recipe.gate_seeds
    assert main(accuracy_args(tmp_path, "--epochs", "1")) == 1  # far below the recorded distribution
    report = json.loads((tmp_path / "report" / "report.json").read_text())
    assert report["runs"][0]["verdict"] == gate.REGRESSION and report["runs"][0]["p_value"] < 1e-10


def test_trainings_in_worker_processes_give_the_same_bits_as_in_one_process(tmp_path, monkeypatch):
    def report(jobs: str) -> list[dict]:
        main(["accuracy", "--models", "tiny_cnn", "--device", "cpu", "--quiet", "--epochs", "2", "--seeds", "1",
              "--report-dir", str(tmp_path / jobs), "--jobs", jobs])  # 2 epochs: below the floor, exit 1
        return json.loads((tmp_path / jobs / "report.json").read_text())["runs"]

    alone = report("1")

    def in_this_process(*args, **kwargs):
        raise AssertionError("with --jobs 2 every CPU training runs in a worker process")

    monkeypatch.setattr(accuracy, "train", in_this_process)
    parallel = report("2")
    assert [run["framework"] for run in parallel] == ["numpy", "torch"]
    for one, other in zip(alone, parallel, strict=True):
        assert one["correct"] == other["correct"] and one["accuracies"] == other["accuracies"]
        assert [epoch["loss"] for epoch in one["history"]] == [epoch["loss"] for epoch in other["history"]]


def test_update_baselines_refuses_runs_that_fail_the_baseline_they_would_replace(tmp_path, capsys):
    path = baseline_path(tmp_path / "baselines", "digits", "tiny_cnn", "numpy", "cpu")
    path.parent.mkdir(parents=True)
    path.write_bytes(baseline_path(default_baselines_dir(), "digits", "tiny_cnn", "numpy", "cpu").read_bytes())
    before = path.read_bytes()
    assert main(accuracy_args(tmp_path, "--epochs", "1", "--update-baselines")) == 1
    error = capsys.readouterr().err
    assert "baselines not updated: tiny_cnn numpy on digits (cpu)" in error and "below-floor" in error
    assert "--accept-regression" in error and path.read_bytes() == before

    assert main(accuracy_args(tmp_path, "--epochs", "1", "--update-baselines", "--accept-regression")) == 0
    accepted = load_baseline(path).record["accepted_regression"]
    assert accepted["verdict"] == gate.BELOW_FLOOR and accepted["p_value"] < 1e-10
    assert accepted["accuracy"] < accepted["replaced_baseline_accuracy"] - 0.3


def test_accept_regression_without_update_baselines_is_a_usage_error(tmp_path, capsys):
    assert main(accuracy_args(tmp_path, "--accept-regression")) == 2
    assert "--accept-regression only applies to --update-baselines" in capsys.readouterr().err


def test_cli_gates_the_seeds_of_a_run_together(tmp_path, capsys):
    assert main(accuracy_args(tmp_path, "--epochs", "1", "--seeds", "2", "--seed", "10")) == 1  # no baseline
    report = json.loads((tmp_path / "report" / "report.json").read_text())
    (record,) = report["runs"]
    assert record["seeds"] == [10, 11] and record["accuracy"] == pytest.approx(sum(record["accuracies"]) / 2)
    assert "| 10-11 |" in (tmp_path / "report" / "report.md").read_text()


def test_cli_without_mnist_files_is_a_usage_error_naming_the_fetch_command(tmp_path, capsys):
    assert main(["accuracy", "--dataset", "mnist", "--device", "cpu", "--data-dir", str(tmp_path)]) == 2
    assert f"python -m reference fetch mnist --data-dir {tmp_path}" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (["--models", "nope"], "unknown model 'nope'"),
        (["--models", "mnist_cnn"], "mnist_cnn has no training recipe for digits"),
        (["--epochs", "0"], "--epochs must be at least 1"),
        (["--jobs", "-1"], "--jobs must be 0 (one per core) or more"),
    ],
)
def test_cli_usage_errors_exit_2(tmp_path, capsys, options, message):
    assert main(["accuracy", "--report-dir", str(tmp_path), *options]) == 2
    assert message in capsys.readouterr().err


def test_default_plan_follows_the_zoo_recipes():
    from reference.accuracy import plan_runs

    digits_models = ("tiny_cnn", "tiny_resnet", "tiny_mobilenet", "resnet18")
    assert plan_runs("digits", "all", "cpu", None) == [
        (model, framework, "cpu") for model in digits_models for framework in ("numpy", "torch")
    ]
    assert plan_runs("mnist", "all", "cpu", None) == [("mnist_cnn", "numpy", "cpu"), ("mnist_cnn", "torch", "cpu")]
    assert ("resnet18", "torch", "cuda") in plan_runs("mnist", "torch", "cuda", None)
