"""`python -m reference calibrate`: false alarms on emulated machines, floors below every clean run, faults
that change what they claim to change, and the report."""

from __future__ import annotations

import json
import math
import shutil
from types import SimpleNamespace

import numpy as np
import pytest

from reference import gate, zoo
from reference.baselines import baseline_path, default_baselines_dir, load_baseline
from reference.calibration import POWER_DROP, _power, floor_from, run_calibration
from reference.faults import FAULTS
from reference.numpy_nn import functional as F


def test_floor_is_two_binomial_standard_errors_below_the_lowest_run_rounded_down():
    assert floor_from(0.96, 450) == math.floor((0.96 - 2 * math.sqrt(0.96 * 0.04 / 450)) * 1000) / 1000 == 0.941
    assert floor_from(1.0, 450) < 1.0  # a perfect run still leaves a margin


def copy_baselines(tmp_path, *runs):
    for framework in runs:
        source = baseline_path(default_baselines_dir(), "digits", "tiny_cnn", framework, "cpu")
        target = baseline_path(tmp_path / "baselines", "digits", "tiny_cnn", framework, "cpu")
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(source, target)
    return tmp_path / "baselines"


def test_calibration_counts_false_alarms_derives_floors_and_detects_a_fault(tmp_path, capsys, monkeypatch):
    baselines = copy_baselines(tmp_path, "numpy")
    path = baseline_path(baselines, "digits", "tiny_cnn", "numpy", "cpu")
    path.write_text(json.dumps({k: v for k, v in json.loads(path.read_text()).items() if k != "floor"}))
    gated_floors = []
    real_gate = gate.gate
    monkeypatch.setattr(gate, "gate", lambda *args, **kwargs: gated_floors.append(args[2]) or real_gate(*args))
    code = run_calibration(models=["tiny_cnn"], framework="numpy", seeds=1, variants=["1 thread", "one-ulp jitter"],
                           faults=["one-epoch", "relu-grad-unmasked"], fault_seeds=1, jobs=1, baselines_dir=baselines,
                           report_dir=tmp_path / "calibration", update_floors=True, quiet=True)
    assert code == 0, capsys.readouterr()
    summary = json.loads((tmp_path / "calibration" / "calibration.json").read_text())
    (row,) = summary["rows"]
    gate_seeds = zoo.spec("tiny_cnn").recipes["digits"].gate_seeds  # one gated run per variant:
    assert row["clean_runs"] == 2 and row["gate_seeds"] == gate_seeds and row["trainings"] == 2 * gate_seeds
    assert row["false_alarms"] == 0 and set(row["by_variant"]) == {"1 thread", "one-ulp jitter"}
    clean = [a for variant in row["by_variant"].values() for a in variant["accuracies"]]
    assert row["lowest"] == min(clean) and row["floor"] == floor_from(min(clean), 450)  # clean trainings only:
    assert min(clean) > max(row["faults"]["one-epoch"]["accuracies"])  # a fault's runs would drag the floor down
    assert row["committed_floor"] is None and set(gated_floors) == {None}  # gated as the accuracy job gates: with
    # the committed floor (none here), never one derived from the runs being gated
    assert row["faults"]["one-epoch"]["detected"] == row["faults"]["one-epoch"]["runs"] == 1
    unmasked = row["faults"]["relu-grad-unmasked"]  # it makes training diverge: still a detection
    assert unmasked["detected"] == unmasked["runs"] == 1 and unmasked["diverged"] >= 1
    assert (tmp_path / "calibration" / "calibration.png").stat().st_size > 0
    assert f"| tiny_cnn | numpy | 2 x {gate_seeds} |" in (tmp_path / "calibration" / "calibration.md").read_text()
    assert 0 <= row["power"] <= 1 and 0 < row["drop_caught"] < 0.1 and row["power_drop"] == POWER_DROP
    stored = load_baseline(baseline_path(baselines, "digits", "tiny_cnn", "numpy", "cpu"))
    assert stored.floor == row["floor"] and stored.record["floor"]["runs"] == 2 * gate_seeds


def test_power_is_the_share_of_clean_runs_failing_after_the_drop_and_the_drop_caught_in_90_percent():
    """Ten baseline runs at 440/450 and four clean runs at 434-440: after losing k answers a run fails exactly when
    its count falls below the lowest count that passes (found by asking the gate), so the shares are known."""
    n, counts = 450, (434, 436, 438, 440)
    correct = [np.arange(n) < count for count in counts]
    baseline = SimpleNamespace(runs=np.stack([np.arange(n) < 440] * 10), n_test=n)
    passing = min(count for count in range(n + 1)
                  if not gate.gate(np.arange(n) < count, baseline.runs, None).failed)
    clean = [(None, {"correct": [gate.encode_correct(row)]}) for row in correct]
    result = _power(clean, baseline, None, n)
    dropped = round(POWER_DROP * n)
    expected = np.mean([count - dropped < passing for count in counts])
    assert 0 < expected < 1 and result["power"] == expected  # the drop fails some runs and not others
    assert result["drop_caught"] == (max(counts) - passing + 1) / n  # 90% of four runs: all four, the best last
    assert _power(clean, baseline, 0.99, n)["drop_caught"] == 0.0  # a floor above every run fails them all


def test_calibration_without_a_baseline_is_a_usage_error_naming_the_record_command(tmp_path, capsys):
    code = run_calibration(models=["tiny_cnn"], framework="numpy", seeds=1, baselines_dir=tmp_path / "none",
                           report_dir=tmp_path / "calibration", quiet=True)
    assert code == 2 and "--update-baselines" in capsys.readouterr().err


def test_faults_apply_only_where_they_change_something():
    sgd, adam = zoo.spec("tiny_cnn").recipes["digits"], zoo.spec("simple_cnn").recipes["shapes"]
    assert FAULTS["dropped-residual"].applies("tiny_resnet", "numpy", sgd)
    assert not FAULTS["dropped-residual"].applies("tiny_cnn", "numpy", sgd)
    assert not FAULTS["relu-grad-unmasked"].applies("tiny_cnn", "torch", sgd)
    assert FAULTS["momentum-lost"].applies("tiny_cnn", "torch", sgd)
    assert not FAULTS["momentum-lost"].applies("simple_cnn", "numpy", adam)


def test_code_faults_patch_the_reference_only_inside_their_block():
    x = np.array([[-1.0, 2.0]])
    out, cache = F.relu_forward(x)
    with FAULTS["relu-grad-unmasked"].applied():
        np.testing.assert_array_equal(F.relu_backward(np.ones_like(x), cache), [[1.0, 1.0]])
    np.testing.assert_array_equal(F.relu_backward(np.ones_like(x), cache), [[0.0, 1.0]])


@pytest.mark.parametrize("seed", [0, 1])
def test_label_noise_changes_five_percent_of_the_labels_to_other_classes(seed):
    from reference.data import load_dataset

    digits = load_dataset("digits")
    noisy = FAULTS["label-noise-5%"].data(digits, seed)
    changed = noisy.y_train != digits.y_train
    assert changed.sum() == round(0.05 * len(digits.y_train)) and noisy.y_test is digits.y_test
