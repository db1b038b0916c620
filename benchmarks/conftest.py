"""Benchmark harness: NumPy and torch timed round by round in one run, the ratio report and the regression gate.

`bench.compare(case, numpy_fn, torch_fn)` runs pytest-benchmark on the NumPy call and times the torch call
just before each round (pytest-benchmark's per-round `setup`), so both see the same machine load. At the
end of the session the ratios go to `reports/bench/bench.{json,md}`, the table is printed, and the run fails
when a gated ratio (training step, epoch, op family) worsened by more than 25% against `baselines/bench.json`
(`--update-bench-baseline` rewrites the baseline instead).
"""

from __future__ import annotations

import gc
import os
import platform
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from reference import benchmarking

ROWS = pytest.StashKey[list]()
SUMMARY = pytest.StashKey[tuple]()
BLAS_LIMIT = pytest.StashKey[object]()


def pytest_addoption(parser):
    group = parser.getgroup("bench", "NumPy vs torch ratio benchmarks")
    group.addoption("--update-bench-baseline", action="store_true",
                    help="write this run's ratios into the baseline file instead of gating against it")
    group.addoption("--bench-baseline", default="baselines/bench.json", help="baseline ratios (rootdir-relative)")
    group.addoption("--bench-report-dir", default="reports/bench", help="where bench.json / bench.md go")
    group.addoption("--bench-threads", type=int, default=1,
                    help="threads for both torch and NumPy's BLAS (default 1: stable ratios on a shared machine; "
                         "0: each library's own default)")
    group.addoption("--bench-seconds", type=float, default=0.5,
                    help="time budget per op case (rounds = budget / one round's time, 5 to 200)")


def pytest_configure(config):
    config.stash[ROWS] = []
    threads = config.getoption("--bench-threads", None)
    if threads:
        from threadpoolctl import threadpool_limits

        torch.set_num_threads(threads)
        config.stash[BLAS_LIMIT] = threadpool_limits(threads, user_api="blas")


def _threads() -> dict:
    from threadpoolctl import threadpool_info

    blas = [info["num_threads"] for info in threadpool_info()
            if info["user_api"] == "blas" and "numpy" in info["filepath"]]  # NumPy's own, not SciPy's
    return {"torch_threads": torch.get_num_threads(), "numpy_blas_threads": blas[0] if blas else None}


class Bench:
    """Times NumPy and torch callables alternately and records one report row per case."""

    def __init__(self, benchmark, rows: list, seconds: float):
        self.benchmark, self.rows, self.seconds = benchmark, rows, seconds

    def compare(self, case: str, group: str, numpy_fn, torch_fn, *, models=(), rounds=None, min_rounds=5, warmup=2,
                totals=False, **info):
        """Round by round: time torch_fn, then numpy_fn (pytest-benchmark); record the per-round ratios.

        Without `rounds`, as many rounds as fit in the --bench-seconds budget, at least `min_rounds`, at most 200.
        """
        for _ in range(warmup):
            numpy_fn(), torch_fn()
        if rounds is None:
            start = time.perf_counter()
            numpy_fn(), torch_fn()
            rounds = int(np.clip(self.seconds / (time.perf_counter() - start), min_rounds, max(min_rounds, 200)))
        torch_times = []

        def time_torch():
            start = time.perf_counter()
            torch_fn()
            torch_times.append(time.perf_counter() - start)

        self.benchmark.group = group
        self.benchmark.extra_info.update(case=case, models=list(models))
        gc.collect()
        self.benchmark.pedantic(numpy_fn, setup=time_torch, rounds=rounds)
        if not self.benchmark.disabled:
            self.rows.append(benchmarking.summarize(case, group, self.benchmark.stats.stats.data, torch_times,
                                                    totals=totals, models=list(models), **info))

    def torch_only(self, case: str, group: str, torch_fn, *, rounds: int, warmup: int, **info):
        """Time torch_fn alone with pytest-benchmark (e.g. a CUDA step, synchronized): a row without a ratio."""
        self.benchmark.group = group
        self.benchmark.extra_info.update(case=case)
        self.benchmark.pedantic(torch_fn, rounds=rounds, warmup_rounds=warmup)
        if not self.benchmark.disabled:
            self.record(case, group, self.benchmark.stats.stats.data, **info)

    def record(self, case: str, group: str, torch_times, **info):
        """Record torch-only times measured by the caller (seconds per round)."""
        self.rows.append(benchmarking.summarize(case, group, [], torch_times, **info))


@pytest.fixture
def bench(benchmark, request):
    return Bench(benchmark, request.config.stash[ROWS], request.config.getoption("--bench-seconds"))


def _meta() -> dict:
    return {"machine": f"{platform.machine()} {os.cpu_count()} CPUs", "python": platform.python_version(),
            "numpy": np.__version__, "torch": torch.__version__, **_threads(),
            "date": time.strftime("%Y-%m-%d %H:%M")}


def pytest_sessionfinish(session, exitstatus):
    config = session.config
    rows = config.stash.get(ROWS, [])
    if not rows:
        return
    rows = rows + benchmarking.op_families(rows)
    root = Path(config.rootpath)
    baseline_path = root / config.getoption("--bench-baseline")
    if config.getoption("--update-bench-baseline"):
        path = benchmarking.save_baseline(rows, baseline_path, _meta())
        passed, verdict = True, f"Baseline updated: {path} ({len(rows)} case(s) measured)."
    else:
        passed, verdict = benchmarking.gate_verdict(rows, benchmarking.load_baseline(baseline_path))
    report_dir = root / config.getoption("--bench-report-dir")
    json_path, md_path = benchmarking.write_report(rows, report_dir, _meta(), verdict)
    config.stash[SUMMARY] = (benchmarking.markdown_table(rows), verdict, json_path, md_path)
    if not passed and session.exitstatus == pytest.ExitCode.OK:
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


@pytest.hookimpl(trylast=True)  # after pytest-benchmark's own tables: the ratio table ends the output
def pytest_terminal_summary(terminalreporter, exitstatus, config):
    if SUMMARY not in config.stash:
        return
    table, verdict, json_path, md_path = config.stash[SUMMARY]
    terminalreporter.section("NumPy / torch ratios")
    terminalreporter.write_line(table)
    terminalreporter.write_line("")
    terminalreporter.write_line(verdict)
    terminalreporter.write_line(f"report: {md_path} and {json_path}")
