"""The accuracy job's inputs cannot fail silently: missing or damaged baselines, report folders, options and
concurrent writers each get a clear one-line error (exit 2, before any training) or a failing verdict."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from reference import accuracy, gate, zoo
from reference.__main__ import main
from reference.baselines import baseline_path, load_baseline, recipe_settings, write_all
from reference.report import ReportDir

ROOT = Path(__file__).resolve().parents[1]
# --jobs 1: training in this process, where the tests' monkeypatched accuracy.train is the one called
CHEAP = ["--models", "tiny_cnn", "--framework", "numpy", "--device", "cpu", "--quiet", "--epochs", "1", "--jobs", "1"]
RECIPE = zoo.spec("tiny_cnn").recipes["digits"]  # the recipe CHEAP trains (shortened to one epoch)


@pytest.fixture
def no_training(monkeypatch):
    """Training is an error: the checks under test must come before it."""
    def train(*args, **kwargs):
        raise AssertionError("training started before the input was checked")

    monkeypatch.setattr(accuracy, "train", train)


def run(tmp_path, *extra: str) -> int:
    return main(["accuracy", *CHEAP, "--baselines-dir", str(tmp_path / "baselines"),
                 "--report-dir", str(tmp_path / "report"), *extra])


def one_line_error(capsys) -> str:
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and err.startswith("error: "), err
    return err


def test_a_missing_baseline_fails_and_names_the_command_that_records_it(tmp_path, capsys):
    assert run(tmp_path) == 1
    out = capsys.readouterr().out
    assert "no-baseline" in out and "FAILED, no baseline" in out
    assert ("python -m reference accuracy --dataset digits --models tiny_cnn --framework numpy --device cpu "
            "--update-baselines") in out


def valid_document() -> dict:
    """A well-formed one-epoch tiny_cnn baseline document (5 runs, all examples right)."""
    mask = gate.encode_correct([True] * 450)
    return {"schema": 2, "model": "tiny_cnn", "framework": "numpy", "dataset": "digits", "device": "cpu",
            "n_test": 450, "recipe": recipe_settings(RECIPE), "recorded": {},
            "runs": [{"seed": seed, "n_correct": 450, "correct": mask} for seed in range(5)]}


def damaged(case: str) -> str:
    document = valid_document()
    if case == "truncated":
        return json.dumps(document)[:200]
    if case == "empty":
        return ""
    if case == "not an object":
        return "[1, 2, 3]"
    if case == "missing keys":
        del document["runs"]
    elif case == "bad hex":
        document["runs"][2]["correct"] = "xyz"
    elif case == "wrong example count":
        document["runs"][0]["correct"] = gate.encode_correct([True] * 449)
    elif case == "another test set":
        document.update(n_test=10)
        document["runs"] = [{"seed": 0, "n_correct": 10, "correct": gate.encode_correct([True] * 10)}]
    elif case == "another model":
        document["model"] = "tiny_resnet"
    elif case == "another framework":
        document["framework"] = "torch"
    elif case == "another dataset":
        document["dataset"] = "shapes"
    elif case == "another device":
        document["device"] = "cuda"
    elif case == "a mean its runs contradict":
        document["mean_accuracy"] = 7.0
    elif case == "a count its bitmask contradicts":
        document["runs"][1]["n_correct"] = 449
    elif case == "a floor that is not a number":
        document["floor"] = {"accuracy": 0.9, "lowest_observed": float("nan")}
    return json.dumps(document)


CASES = ["truncated", "empty", "not an object", "missing keys", "bad hex", "wrong example count", "another test set",
         "another model", "another framework", "another dataset", "another device", "a mean its runs contradict",
         "a count its bitmask contradicts", "a floor that is not a number"]
NAMED_FIELD = {"another model": "model", "another framework": "framework", "another dataset": "dataset",
               "another device": "device", "a mean its runs contradict": "mean_accuracy",
               "a count its bitmask contradicts": "n_correct", "a floor that is not a number": "floor.lowest_observed"}


@pytest.mark.parametrize("case", CASES)
def test_a_damaged_baseline_is_a_one_line_usage_error_before_training(tmp_path, capsys, no_training, case):
    path = baseline_path(tmp_path / "baselines", "digits", "tiny_cnn", "numpy", "cpu")
    path.parent.mkdir(parents=True)
    path.write_text(damaged(case))
    assert run(tmp_path) == 2
    error = one_line_error(capsys)
    assert str(path) in error and NAMED_FIELD.get(case, "") in error, error


@pytest.mark.parametrize("case", ["truncated", "bad hex"])
def test_update_baselines_replaces_a_damaged_baseline(tmp_path, capsys, case):
    path = baseline_path(tmp_path / "baselines", "digits", "tiny_cnn", "numpy", "cpu")
    path.parent.mkdir(parents=True)
    path.write_text(damaged(case))
    assert run(tmp_path, "--update-baselines") == 0
    assert "it will be replaced" in capsys.readouterr().err
    assert load_baseline(path).seeds == tuple(range(RECIPE.baseline_seeds))


@pytest.mark.parametrize(("options", "message"), [
    (["--seed", "-1"], "--seed must be in 0.."),
    (["--seed", str(2**32)], "--seed must be in 0.."),
    (["--seed", str(2**32 - 2), "--seeds", "3"], "--seed must be in 0.."),
    (["--seeds", "0"], "--seeds must be at least 1"),
    (["--threads", "-1"], "--threads must be 0"),
    (["--jitter", "-5"], "--jitter must be in 0.."),
    (["--update-baselines", "--seeds", "2"], f"needs --seeds {RECIPE.baseline_seeds} or more"),
])
def test_options_out_of_range_are_one_line_usage_errors(tmp_path, capsys, no_training, options, message):
    assert run(tmp_path, *options) == 2
    assert message in one_line_error(capsys)


def test_a_report_dir_that_is_a_file_is_a_usage_error(tmp_path, capsys, no_training):
    (tmp_path / "report").write_text("not a folder")
    assert run(tmp_path) == 2
    assert "is a file" in one_line_error(capsys)


def test_an_unwritable_report_dir_is_a_usage_error(tmp_path, capsys, no_training):
    (tmp_path / "plain-file").write_text("")
    assert main(["accuracy", *CHEAP, "--report-dir", str(tmp_path / "plain-file" / "report")]) == 2
    assert "cannot write there" in one_line_error(capsys)


def test_a_report_dir_holding_other_files_is_refused(tmp_path, capsys, no_training):
    (tmp_path / "report").mkdir()
    (tmp_path / "report" / "thesis.tex").write_text("precious")
    assert run(tmp_path) == 2
    assert "not a previous report" in one_line_error(capsys)
    assert (tmp_path / "report" / "thesis.tex").read_text() == "precious"


def test_fetch_into_a_data_dir_that_is_a_file_is_a_usage_error(tmp_path, capsys):
    (tmp_path / "data").write_text("")
    assert main(["fetch", "mnist", "--data-dir", str(tmp_path / "data")]) == 2
    assert "is a file" in one_line_error(capsys)


def test_concurrent_publishers_leave_one_whole_report(tmp_path):
    def publish(token: int):
        with ReportDir(tmp_path / "report") as output:
            for name in ("report.json", "report.md", "plot.png"):
                (output.staging / name).write_text(str(token))
            output.publish()

    threads = [threading.Thread(target=publish, args=(token,)) for token in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    contents = {path.read_text() for path in (tmp_path / "report").iterdir()}
    assert len(contents) == 1 and len(list((tmp_path / "report").iterdir())) == 3
    assert [path.name for path in tmp_path.iterdir()] == ["report"]  # no staging or replaced folders left


@pytest.mark.parametrize("command", ["accuracy", "calibrate"])
def test_missing_data_leaves_no_report_or_staging_folder(tmp_path, capsys, command):
    assert main([command, "--dataset", "mnist", "--data-dir", str(tmp_path / "no-data"), "--models", "mnist_cnn",
                 "--report-dir", str(tmp_path / "report")]) == 2
    assert "MNIST not found" in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []


def spawned_workers(pid: int) -> list[int]:
    """The multiprocessing workers among a process's children (Linux's /proc)."""
    children = Path(f"/proc/{pid}/task/{pid}/children")
    pids = children.read_text().split() if children.exists() else []
    return [int(child) for child in pids if b"spawn_main" in Path(f"/proc/{child}/cmdline").read_bytes()]


def running(pid: int) -> bool:
    """Whether a process exists and has not exited: a zombie (its parent gone, init not yet reaping it) has."""
    try:
        return "\nState:\tZ" not in Path(f"/proc/{pid}/status").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return False


@pytest.mark.parametrize("jobs", [1, 2])
def test_sigterm_mid_training_exits_and_removes_the_staging_folder(tmp_path, jobs):
    """In the command's process, or in worker processes: those are ended, not waited for (these trainings would
    take hours)."""
    if jobs > 1 and not Path(f"/proc/{os.getpid()}/task/{os.getpid()}/children").exists():
        pytest.skip("needs Linux's /proc/PID/task/PID/children to see the worker processes")
    env = {key: value for key, value in os.environ.items() if not key.startswith("PYTEST_")}
    command = [sys.executable, "-m", "reference", "accuracy", *CHEAP, "--epochs", "10000", "--report-dir",
               str(tmp_path / "report"), "--baselines-dir", str(tmp_path / "none"), "--jobs", str(jobs)]
    process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                               text=True)
    workers = []
    try:
        deadline = time.monotonic() + 120
        while process.poll() is None and time.monotonic() < deadline and not (
                list(tmp_path.glob(".report.*.staging")) and (jobs == 1 or len(spawned_workers(process.pid)) == jobs)):
            time.sleep(0.01)
        assert list(tmp_path.glob(".report.*.staging")), "no staging folder appeared"
        workers = spawned_workers(process.pid)
        assert len(workers) == (jobs if jobs > 1 else 0)
        process.send_signal(signal.SIGTERM)
        _, stderr = process.communicate(timeout=60)
    finally:
        for pid in [process.pid, *workers]:  # whatever is left: no training runs on after a failure
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
    assert process.returncode == 128 + signal.SIGTERM, stderr
    assert list(tmp_path.iterdir()) == []
    assert not [worker for worker in workers if running(worker)]


def test_two_accuracy_processes_into_one_report_dir_leave_one_runs_files(tmp_path):
    env = {key: value for key, value in os.environ.items() if not key.startswith("PYTEST_")}
    commands = [[sys.executable, "-m", "reference", "accuracy", *CHEAP, "--seed", str(seed), "--report-dir",
                 str(tmp_path / "report"), "--baselines-dir", str(tmp_path / "none")] for seed in (3, 4)]
    processes = [subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
                 for command in commands]
    assert [process.wait(timeout=300) for process in processes] == [1, 1]  # no baselines: both fail, both write
    report = json.loads((tmp_path / "report" / "report.json").read_text())
    seeds = report["runs"][0]["seeds"]  # the recipe's gate_seeds from 3 or from 4
    assert seeds[0] in (3, 4)
    label = f"| tiny_cnn | numpy | digits | cpu | {seeds[0]}-{seeds[-1]} |"
    assert label in (tmp_path / "report" / "report.md").read_text()
    assert sorted(path.name for path in tmp_path.iterdir()) == ["report"]


def test_update_baselines_writes_nothing_when_a_run_is_below_its_floor(tmp_path, capsys):
    paths = [baseline_path(tmp_path / "baselines", "digits", "tiny_cnn", framework, "cpu")
             for framework in ("numpy", "torch")]
    documents = {}
    for path, framework in zip(paths, ("numpy", "torch"), strict=True):
        document = valid_document() | {"framework": framework, "floor": {"accuracy": 0.999}}
        document["recipe"]["epochs"] = 1  # the floor belongs to this recipe, so updating keeps it
        documents[path] = document
    write_all(documents)
    before = [path.read_bytes() for path in paths]
    options = ["--framework", "all", "--update-baselines"]
    assert run(tmp_path, *options) == 1
    assert "baselines not updated" in capsys.readouterr().err
    assert [path.read_bytes() for path in paths] == before


def test_write_all_restores_every_file_when_one_replacement_fails(tmp_path, monkeypatch):
    paths = [tmp_path / "a.json", tmp_path / "b.json", tmp_path / "c.json"]
    write_all({path: {"old": path.name} for path in paths[:2]})
    before = {path: path.read_bytes() for path in paths[:2]}
    replace, calls = os.replace, []

    def failing_third(src, dst):
        calls.append(dst)
        if len(calls) == 3:
            raise OSError("disk full")
        replace(src, dst)

    monkeypatch.setattr(os, "replace", failing_third)
    with pytest.raises(OSError, match="disk full"):
        write_all({path: {"new": True} for path in paths})
    assert {path: path.read_bytes() for path in paths[:2]} == before and not paths[2].exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.json", "b.json"]  # no temporary file left behind


def test_a_diverged_training_run_is_a_one_line_failure(tmp_path, capsys, monkeypatch):
    def diverging(model, *args, **kwargs):
        raise FloatingPointError(f"{model} (numpy, cpu): non-finite loss nan at epoch 4, step 34")

    monkeypatch.setattr(accuracy, "train", diverging)
    assert run(tmp_path) == 1
    assert "training diverged: tiny_cnn (numpy, cpu): non-finite loss" in one_line_error(capsys)
    assert not (tmp_path / "report").exists()


def small_idx_dataset(folder: Path, seed: int) -> Path:
    """Four small IDX files in MNIST's layout (random pixels and labels): an `idx` dataset of one's own."""
    from reference.data import write_idx
    from reference.data.mnist import SPLIT_FILES

    rng = np.random.default_rng(seed)
    for split, (images, labels) in SPLIT_FILES.items():
        count = 64 if split == "train" else 20
        write_idx(folder / images, rng.integers(0, 256, (count, 28, 28), dtype=np.uint8))
        write_idx(folder / labels, rng.integers(0, 10, count, dtype=np.uint8))
    return folder


def test_an_idx_dataset_is_gated_only_against_baselines_recorded_on_the_same_files(tmp_path, capsys):
    mine, other = small_idx_dataset(tmp_path / "mine", 0), small_idx_dataset(tmp_path / "other", 1)
    options = ["accuracy", "--dataset", "idx", "--models", "mnist_cnn", "--framework", "numpy", "--device", "cpu",
               "--quiet", "--epochs", "1", "--baselines-dir", str(tmp_path / "baselines"),
               "--report-dir", str(tmp_path / "report")]
    assert main([*options, "--data-dir", str(mine), "--update-baselines"]) == 0
    assert "unverified" in capsys.readouterr().err
    assert main([*options, "--data-dir", str(other)]) == 2
    error = capsys.readouterr().err.strip().splitlines()[-1]
    assert error.startswith("error: ") and "mnist_cnn-numpy-cpu.json: recorded on other data" in error
    assert main([*options, "--data-dir", str(mine)]) in (0, 1)  # gated: a verdict, not a usage error
    assert "recorded on other data" not in capsys.readouterr().err
