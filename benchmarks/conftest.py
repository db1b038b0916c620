"""Benchmark harness: NumPy and torch timed round by round in one run, the ratio report, and the regression gate
against a reference revision measured in the same rounds (`--against REV`, like `asv continuous`).

`bench.compare(case, group, numpy_fn, torch_fn, against=make)` runs pytest-benchmark on the NumPy call and
times the torch call, and `make(<the --against revision's reference package>)` (the same NumPy callable built
from the old code), just before each round (pytest-benchmark's per-round `setup`), so all see the same machine
load. At the end of the session the table goes to `reports/bench/bench.{json,md}` and the run fails when a
training step, an epoch or an op family got slower than the revision beyond its tolerance.
"""

from __future__ import annotations

import gc
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from reference import benchmarking
from reference.environment import describe

ROWS = pytest.StashKey[list]()
SUMMARY = pytest.StashKey[tuple]()
BLAS_LIMIT = pytest.StashKey[object]()
AGAINST = pytest.StashKey[object]()
SCRATCH = pytest.StashKey[str]()


def pytest_addoption(parser):
    group = parser.getgroup("bench", "NumPy vs torch ratio benchmarks")
    group.addoption("--against", metavar="REV", default=None,
                    help="time the NumPy code of git revision REV (or of a folder holding reference/) in the same "
                         "rounds as the working tree's, and fail on a slowdown beyond the measured noise")
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
    against = config.getoption("--against", None)
    if against:
        config.stash[SCRATCH] = tempfile.mkdtemp(prefix="reference-against-")
        try:
            config.stash[AGAINST] = benchmarking.load_revision(against, config.rootpath, config.stash[SCRATCH])
        except ValueError as error:
            raise pytest.UsageError(str(error)) from None


def pytest_unconfigure(config):
    if SCRATCH in config.stash:
        shutil.rmtree(config.stash[SCRATCH], ignore_errors=True)


class Bench:
    """Times NumPy (tree and --against revision) and torch callables alternately; one report row per case."""

    def __init__(self, benchmark, rows: list, seconds: float, against_package=None):
        self.benchmark, self.rows, self.seconds, self.against_package = benchmark, rows, seconds, against_package

    def _against_fn(self, make, case: str):
        """(the revision's NumPy callable `make(package)` builds, None), or (None, why it could not be built): not
        in that revision, or an API it does not have. The gate lists the reason and fails on gated cases."""
        if self.against_package is None:
            return None, None
        if make is None:
            return None, "the case times no revision code"
        try:
            return make(self.against_package), None
        except Exception as error:  # any failure of the old code to build the case: reported, never dropped
            return None, f"not in the --against revision ({type(error).__name__}: {error})"

    def compare(self, case: str, group: str, numpy_fn, torch_fn, *, against=None, models=(), rounds=None,
                min_rounds=5, warmup=2, totals=False, **info):
        """Round by round: time torch_fn, then the revision's callable (`against(package)`), then numpy_fn
        (pytest-benchmark); record per-round ratios. Without `rounds`, as many rounds as fit in the
        --bench-seconds budget, at least `min_rounds`, at most 200."""
        against_fn, not_compared = self._against_fn(against, case)
        if not_compared:
            info["not_compared"] = not_compared
        sides = [numpy_fn, torch_fn] + ([against_fn] if against_fn else [])
        for _ in range(warmup):
            for fn in sides:
                fn()
        if rounds is None:
            start = time.perf_counter()
            for fn in sides:
                fn()
            rounds = int(np.clip(self.seconds / (time.perf_counter() - start), min_rounds, max(min_rounds, 200)))
        torch_times, against_times = [], []
        # With several threads each timed call follows an untimed call of its own side: torch's OpenMP threads and
        # OpenBLAS's keep spinning on the cores after a call returns and slow whatever runs next (measured on 2
        # cores: NumPy's tiny_cnn step 6.5 ms right after a 2-thread torch step, 0.96 ms after its own, 0.88 ms
        # back to back; pauses between the sides did not help: a sleeping pool wakes slowly and unevenly).
        primed = torch.get_num_threads() > 1

        def time_others():
            for fn, times in ((torch_fn, torch_times), (against_fn, against_times)):
                if fn is not None:
                    if primed:
                        fn()
                    start = time.perf_counter()
                    fn()
                    times.append(time.perf_counter() - start)
            if primed:
                numpy_fn()

        self.benchmark.group = group
        self.benchmark.extra_info.update(case=case, models=list(models))
        gc.collect()
        self.benchmark.pedantic(numpy_fn, setup=time_others, rounds=rounds)
        if not self.benchmark.disabled:
            self.rows.append(benchmarking.summarize(case, group, self.benchmark.stats.stats.data, torch_times,
                                                    against_times=against_times, totals=totals,
                                                    models=list(models), **info))

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
    config = request.config
    return Bench(benchmark, config.stash[ROWS], config.getoption("--bench-seconds"), config.stash.get(AGAINST, None))


def _meta(config) -> dict:
    environment = describe()
    return {"machine": f"{environment['cpu']} ({environment['cores']} cores)", "blas": environment["blas"],
            "torch_cpu_capability": environment["torch_cpu_capability"], **environment["versions"],
            "threads": config.getoption("--bench-threads"), "against": config.getoption("--against"),
            "date": time.strftime("%Y-%m-%d %H:%M")}


def pytest_sessionfinish(session, exitstatus):
    config = session.config
    rows = config.stash.get(ROWS, [])
    if not rows:
        return
    rows = rows + benchmarking.op_families(rows)
    passed, verdict = benchmarking.gate_verdict(rows, config.getoption("--against"))
    report_dir = Path(config.rootpath) / config.getoption("--bench-report-dir")
    json_path, md_path = benchmarking.write_report(rows, report_dir, _meta(config), verdict)
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
