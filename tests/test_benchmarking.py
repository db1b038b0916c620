"""The benchmark regression gate: a gated ratio that worsened by more than 25% against the baseline fails the run."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from reference import benchmarking

ROOT = Path(__file__).resolve().parents[1]


def row(case: str, numpy_times, torch_times, group: str = "training step") -> dict:
    return benchmarking.summarize(case, group, numpy_times, torch_times)


def test_summary_ratio_is_the_median_of_per_round_ratios_with_its_spread():
    summary = row("op", [2.0, 3.0, 8.0], [1.0, 1.0, 2.0])
    assert summary["ratio"] == 3.0 and summary["ratio_min"] == 2.0 and summary["ratio_max"] == 4.0
    assert summary["numpy_median_s"] == 3.0 and summary["torch_median_s"] == 1.0 and summary["rounds"] == 3


def test_op_family_is_the_geometric_mean_of_its_shapes():
    rows = [row(f"fwd conv2d x={n}", [r], [1.0], "op forward") for n, r in enumerate([0.5, 2.0, 1.0])]
    rows.append(row("bwd conv2d x=0", [3.0], [1.0], "op backward"))
    families = {family["case"]: family for family in benchmarking.op_families(rows)}
    assert set(families) == {"fwd conv2d: geometric mean of 3 shapes", "bwd conv2d: geometric mean of 1 shapes"}
    assert families["fwd conv2d: geometric mean of 3 shapes"]["ratio"] == pytest.approx(1.0)


def test_gate_fails_on_gated_regressions_and_only_warns_on_single_op_shapes():
    rows = [row("slower", [1.3], [1.0]), row("within", [1.2], [1.0]), row("new", [9.0], [1.0]),
            row("one op shape", [5.0], [1.0], "op forward"), benchmarking.summarize("cuda only", "cuda", [], [1.0])]
    baseline = {"slower": 1.0, "within": 1.0, "one op shape": 1.0, "not run": 1.0}
    passed, verdict = benchmarking.gate_verdict(rows, baseline)
    assert not passed and "REGRESSION slower: NumPy/torch 1.30 vs baseline 1.00 (+30%)" in verdict
    assert "REGRESSION within" not in verdict and "warning (single op shape, not gated) one op shape" in verdict
    assert "no baseline for 1 gated case(s): new" in verdict
    assert benchmarking.gate_verdict(rows[1:], baseline)[0]  # the op shape alone does not fail the run


def test_saved_baseline_keeps_cases_the_run_did_not_measure(tmp_path):
    path = tmp_path / "bench.json"
    benchmarking.save_baseline([row("a", [2.0], [1.0]), row("b", [3.0], [1.0])], path, {})
    benchmarking.save_baseline([row("a", [1.5], [1.0])], path, {})
    assert benchmarking.load_baseline(path) == {"a": 1.5, "b": 3.0}
    assert benchmarking.load_baseline(tmp_path / "missing.json") == {}


def run_bench(tmp_path: Path, *options: str) -> subprocess.CompletedProcess:
    """The ReLU forward cases through the real `tox -e bench` command line, gated against tmp_path/bench.json."""
    command = [sys.executable, "-m", "pytest", "benchmarks", "-p", "no:xdist", "-m", "benchmark", "--benchmark-only",
               "-o", "addopts=", "-q", "-k", "test_op_forward and relu", "--bench-seconds", "0.01",
               "--bench-baseline", str(tmp_path / "bench.json"), "--bench-report-dir", str(tmp_path / "report"),
               *options]
    env = {key: value for key, value in os.environ.items() if not key.startswith("PYTEST_")}  # not an xdist worker
    return subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)


@pytest.mark.slow
def test_bench_run_fails_against_a_doctored_baseline(tmp_path):
    updated = run_bench(tmp_path, "--update-bench-baseline")
    assert updated.returncode == 0, updated.stdout + updated.stderr
    measured = benchmarking.load_baseline(tmp_path / "bench.json")
    family = next(case for case in measured if case.startswith("fwd relu: geometric mean"))
    assert all(case.startswith("fwd relu") for case in measured)

    doctored = {case: ratio / 1000 for case, ratio in measured.items()}  # NumPy "was" 1000x faster
    (tmp_path / "bench.json").write_text(json.dumps({"ratios": doctored}))
    failed = run_bench(tmp_path)
    assert failed.returncode == 1, failed.stdout + failed.stderr
    assert f"REGRESSION {family}:" in failed.stdout
    report = json.loads((tmp_path / "report" / "bench.json").read_text())
    assert {row["case"] for row in report["rows"]} == set(measured)
