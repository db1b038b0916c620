"""The benchmark report and its regression gate: the working tree against a reference revision measured in the
same rounds; no number recorded on another machine is ever compared."""

from __future__ import annotations

import math
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from reference import benchmarking

ROOT = Path(__file__).resolve().parents[1]


def row(case: str, numpy_times, torch_times, group: str = "training step", against_times=(), **info) -> dict:
    return benchmarking.summarize(case, group, numpy_times, torch_times, against_times=against_times, **info)


def test_summary_ratio_is_the_median_of_per_round_ratios_with_its_spread():
    summary = row("op", [2.0, 3.0, 8.0], [1.0, 1.0, 2.0])
    assert summary["ratio"] == 3.0 and summary["ratio_min"] == 2.0 and summary["ratio_max"] == 4.0
    assert summary["numpy_median_s"] == 3.0 and summary["torch_median_s"] == 1.0 and summary["rounds"] == 3
    assert summary["change"] is None


def test_change_is_the_median_of_per_round_tree_over_revision_ratios():
    summary = row("op", [2.0, 3.3, 8.0, 1.0, 1.0], [1.0] * 5, against_times=[2.0, 3.0, 4.0, 1.0, 0.5])
    assert summary["change"] == pytest.approx(1.1)  # per-round ratios 1, 1.1, 2, 1, 2
    steady = row("op", [1.2] * 9, [1.0] * 9, against_times=[1.0] * 9)
    assert steady["change"] == pytest.approx(1.2) and steady["change_se"] == 0.0


def test_the_standard_error_of_the_change_shrinks_with_the_square_root_of_the_rounds():
    pattern = [1.0, 1.1, 0.9, 1.05]
    few = row("op", pattern * 4, [1.0] * 16, against_times=[1.0] * 16)
    many = row("op", pattern * 64, [1.0] * 256, against_times=[1.0] * 256)
    assert few["change_se"] > 0 and many["change_se"] == pytest.approx(few["change_se"] / 4)


def test_op_family_is_the_geometric_mean_of_its_shapes():
    rows = [row(f"fwd conv2d x={n}", [r], [1.0], "op forward", [1.0]) for n, r in enumerate([0.5, 2.0, 1.0])]
    rows.append(row("bwd conv2d x=0", [3.0], [1.0], "op backward"))
    families = {family["case"]: family for family in benchmarking.op_families(rows)}
    assert set(families) == {"fwd conv2d: geometric mean of 3 shapes", "bwd conv2d: geometric mean of 1 shapes"}
    assert families["fwd conv2d: geometric mean of 3 shapes"]["ratio"] == pytest.approx(1.0)
    assert families["fwd conv2d: geometric mean of 3 shapes"]["change"] == pytest.approx(1.0)
    assert families["bwd conv2d: geometric mean of 1 shapes"]["change"] is None  # not measured against a revision


def test_tolerance_is_the_minimum_change_or_three_standard_errors():
    assert benchmarking.tolerance({"change_se": 0.001}) == pytest.approx(benchmarking.MIN_CHANGE)
    assert benchmarking.tolerance({"change_se": 0.1}) == pytest.approx(math.exp(0.3) - 1)


def test_peak_memory_counts_what_a_call_holds_at_once_not_what_it_allocates_in_total():
    import numpy as np
    import torch

    from benchmarks.memory import numpy_peak_bytes, torch_peak_bytes

    def numpy_two_at_once():
        first = np.ones(2**20, dtype=np.float64)  # 8 MiB
        second = first * 2.0  # 16 MiB live
        del first, second
        third = np.ones(2**20, dtype=np.float64)  # freed and reallocated: still 16 MiB at most
        return float(third[0])

    def torch_two_at_once():
        first = torch.ones(2**20, dtype=torch.float64)
        second = first * 2.0
        del first, second
        return float(torch.ones(2**20, dtype=torch.float64)[0])

    assert 16 * 2**20 <= numpy_peak_bytes(numpy_two_at_once) < 17 * 2**20
    assert 16 * 2**20 <= torch_peak_bytes(torch_two_at_once) < 17 * 2**20  # torch 2.11 to 2.14 report it


def test_the_table_shows_each_sides_peak_memory_where_measured():
    measured = row("step", [2.0], [1.0], numpy_peak_bytes=3 * 2**20, torch_peak_bytes=None)
    table = benchmarking.markdown_table([measured, row("fwd conv2d", [1.0], [1.0], "op forward")])
    assert "| 3 / ? |" in table and table.splitlines()[3].endswith("| — |")


def test_gate_fails_on_gated_slowdowns_and_only_warns_on_single_op_shapes():
    quiet = [1.0] * 9
    rows = [row("slower step", [1.5] * 9, quiet, against_times=quiet),
            row("same step", [1.02] * 9, quiet, against_times=quiet),
            row("new step", [1.0] * 9, quiet),
            row("one op shape", [3.0] * 9, quiet, "op forward", quiet)]
    passed, verdict = benchmarking.gate_verdict(rows, "main")
    assert not passed and "REGRESSION slower step: +50% vs main" in verdict
    assert "same step" not in verdict and "warning (single op shape, not gated) one op shape" in verdict
    assert "NOT COMPARED (a gated case) new step: not timed for the revision" in verdict
    assert benchmarking.gate_verdict([rows[1], rows[3]], "main")[0]  # the op shape alone does not fail the run
    assert benchmarking.gate_verdict(rows, None) == (True, benchmarking.gate_verdict([], None)[1])


def test_gate_fails_when_a_gated_case_could_not_be_compared_and_says_why():
    quiet = [1.0] * 9
    rows = [row("same step", [1.0] * 9, quiet, against_times=quiet),
            row("renamed step", [1.0] * 9, quiet, not_compared="not in the --against revision (TypeError: x)"),
            row("new op shape", [1.0] * 9, quiet, "op forward", not_compared="not in the --against revision")]
    passed, verdict = benchmarking.gate_verdict(rows, "main")
    assert not passed and "1 gated case(s) not compared" in verdict
    assert "NOT COMPARED (a gated case) renamed step: not in the --against revision (TypeError: x)" in verdict
    assert "not compared (single op shape) new op shape: not in the --against revision" in verdict
    assert benchmarking.gate_verdict([rows[0], rows[2]], "main")[0]  # an uncompared op shape only warns


def test_a_noisy_case_needs_a_larger_change_to_fail():
    noisy = row("noisy step", [1.15, 0.9, 1.4, 1.0, 1.3, 0.95, 1.25], [1.0] * 7, against_times=[1.0] * 7)
    assert benchmarking.tolerance(noisy) > benchmarking.MIN_CHANGE
    assert benchmarking.gate_verdict([noisy], "main")[0]


def test_a_revision_loads_from_git_or_from_a_folder_under_its_own_name(tmp_path):
    from_git = benchmarking.load_revision("HEAD", ROOT, tmp_path / "git")
    assert from_git.__name__ == benchmarking.AGAINST_PACKAGE and hasattr(from_git.numpy_nn.functional, "conv2d_forward")
    shutil.copytree(ROOT / "reference", tmp_path / "folder" / "reference")
    from_folder = benchmarking.load_revision(str(tmp_path / "folder"), ROOT, tmp_path / "unused")
    assert Path(from_folder.__file__).is_relative_to(tmp_path / "folder")
    assert Path(from_folder.numpy_nn.functional.__file__).is_relative_to(tmp_path / "folder")
    with pytest.raises(ValueError, match="neither a folder holding reference/ nor a git revision"):
        benchmarking.load_revision("no-such-revision", ROOT, tmp_path / "bad")


SLOW_CONV_BACKWARD = '''
import time

from reference.numpy_nn import functional

original = functional.conv2d_backward


def slower(*args, **kwargs):
    """conv2d_backward taking 1.5x its time: a realistic slowdown of the working tree."""
    start = time.perf_counter()
    result = original(*args, **kwargs)
    until = time.perf_counter() + 0.5 * (time.perf_counter() - start)
    while time.perf_counter() < until:
        pass
    return result


functional.conv2d_backward = slower
'''


def run_bench(tmp_path: Path, *options: str) -> subprocess.CompletedProcess:
    """The conv and tiny-model cases through the real `tox -e bench` command line, against a copy of this tree."""
    shutil.copytree(ROOT / "reference", tmp_path / "against" / "reference", dirs_exist_ok=True)
    command = [sys.executable, "-m", "pytest", "benchmarks", "-p", "no:xdist", "-m", "benchmark", "--benchmark-only",
               "-o", "addopts=", "-q", "-k", "conv2d or (step and tiny_cnn)", "--bench-seconds", "0.05",
               "--against", str(tmp_path / "against"), "--bench-report-dir", str(tmp_path / "report"), *options]
    env = {key: value for key, value in os.environ.items() if not key.startswith("PYTEST_")}  # not an xdist worker
    env["PYTHONPATH"] = os.pathsep.join([str(tmp_path), env.get("PYTHONPATH", "")])
    return subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=1200)


@pytest.mark.slow
def test_bench_gate_passes_unchanged_code_and_catches_a_1_5x_slower_conv_backward(tmp_path):
    unchanged = run_bench(tmp_path)
    assert unchanged.returncode == 0, unchanged.stdout[-3000:] + unchanged.stderr[-3000:]
    assert "Gate: 0 regression(s)" in unchanged.stdout
    (tmp_path / "slow_conv_backward.py").write_text(SLOW_CONV_BACKWARD)
    slowed = run_bench(tmp_path, "-p", "slow_conv_backward")
    assert slowed.returncode == 1, slowed.stdout[-3000:] + slowed.stderr[-3000:]
    assert "REGRESSION bwd conv2d: geometric mean" in slowed.stdout
