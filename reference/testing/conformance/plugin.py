"""The pytest side of the engine: `--impl`, the xfails file, selection, depth and the report.

Test functions that take a `check` argument (and are not parametrized with one already) get one case per check
of the namespace `--impl` (default reference.numpy_nn) in the tiers their module lists in `CONFORMANCE_TIERS`
(default: op, oracle, model, trajectory). Loaded with `-p reference.testing.conformance.plugin` (what
`python -m reference conform` does) or by importing these hooks into a conftest.py (the project's conformance/).

`--conformance-report DIR` writes DIR/conformance.json, conformance.md and the plots: every process appends
its records to DIR/parts/<worker>.jsonl as they happen (xdist workers each write their own file); the
controller (the process without `workerinput`) empties DIR/parts/ when it starts and merges the parts when the
session finishes.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import pytest

from .engine import ALL_TIERS, DEVICES, DTYPES, TIERS, checks
from .namespace import DEFAULT

WORKER_CRASH = re.compile(r"worker '[^']+' crashed while running")  # pytest-xdist's report of a dead worker


def pytest_addoption(parser):
    group = parser.getgroup("conformance")
    group.addoption("--impl", metavar="MODULE", default=DEFAULT,
                    help=f"the layer namespace the conformance checks judge (default {DEFAULT})")
    group.addoption("--conformance-report", metavar="DIR", default=None,
                    help="write the conformance report (JSON, Markdown, heatmap and trajectory plots) into DIR")
    group.addoption("--conformance-xfails", metavar="FILE", default=None,
                    help="known failures: one check id or glob (* and ?) per line, # comments")
    group.addoption("--conformance-select", metavar="GLOB", action="append", default=[],
                    help="run only the checks whose id matches (repeatable)")
    group.addoption("--conformance-dtypes", metavar="LIST", default=",".join(DTYPES),
                    help="comma-separated dtypes (default float64,float32)")
    group.addoption("--conformance-max-examples", metavar="N", type=int, default=None,
                    help="hypothesis examples per check (default: the hypothesis profile's)")
    group.addoption("--conformance-skip-slow", action="store_true",
                    help="leave out the heavy checks (the 25M-parameter torchvision models of the model tier)")
    group.addoption("--conformance-timeout", metavar="SECONDS", type=float, default=None,
                    help="time limit of one check in seconds (default 600): past it the check is crashed")


def glob_pattern(glob: str) -> re.Pattern:
    """A check-id glob: * and ? are wildcards, everything else (brackets included) is literal."""
    return re.compile("".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in glob) + r"\Z")


def read_xfails(path: str | Path) -> list[str]:
    """The ids / globs of an xfails file: one per line, blank lines and # comments ignored."""
    lines = Path(path).read_text().splitlines()
    return [line.split("#", 1)[0].strip() for line in lines if line.split("#", 1)[0].strip()]


def selected_checks(config, tiers=TIERS) -> list:
    """The checks of `--impl` in `tiers` that `--conformance-select` and `--conformance-dtypes` let through."""
    impl = config.getoption("--impl")
    dtypes = tuple(d.strip() for d in config.getoption("--conformance-dtypes").split(",") if d.strip())
    found = checks(impl, tiers, dtypes, DEVICES, require_all=impl == DEFAULT)
    globs = [glob_pattern(g) for g in config.getoption("--conformance-select")]
    skip_slow = config.getoption("--conformance-skip-slow")
    return [c for c in found if (not globs or any(g.match(c.id) for g in globs)) and not (skip_slow and c.slow)]


def _share_cores(config) -> None:
    """Under xdist, each worker gets cores / workers threads in torch's and the BLAS's pools: N workers each
    spinning pools of all cores oversubscribe the machine (tiny conformance cases suffer most)."""
    workers = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "0"))
    if not _is_worker(config) or workers <= 1:
        return
    import torch
    from threadpoolctl import threadpool_limits

    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    threads = max(1, cores // workers)
    threadpool_limits(limits=threads, user_api="blas")
    torch.set_num_threads(threads)


def pytest_configure(config):
    from .namespace import UsageError, load_namespace

    impl = config.getoption("--impl", default=DEFAULT)
    if impl != DEFAULT:
        try:
            load_namespace(impl)
        except UsageError as error:
            raise pytest.UsageError(f"--impl {impl}: {error}") from None
    _share_cores(config)
    timeout = config.getoption("--conformance-timeout", default=None)
    if timeout is not None:
        if not timeout > 0:
            raise pytest.UsageError(f"--conformance-timeout {timeout}: expected a number of seconds > 0")
        from . import verdicts

        verdicts.CHECK_TIMEOUT = timeout
    examples = config.getoption("--conformance-max-examples", default=None)
    if examples is not None:
        from hypothesis import HealthCheck, Phase, settings

        # No shrinking: a failure reports the first failing example (with its reproduction) instead of rerunning
        # the check hundreds of times for a minimal one, which a compiling framework would take minutes over.
        settings.register_profile("conformance", max_examples=examples, derandomize=True, deadline=None,
                                  database=None, suppress_health_check=[HealthCheck.too_slow],
                                  phases=[Phase.explicit, Phase.reuse, Phase.generate])
        settings.load_profile("conformance")
    directory = config.getoption("--conformance-report", default=None)
    if directory and not _is_worker(config):
        from .report import writable_folder_problem

        problem = writable_folder_problem("--conformance-report", directory)
        if problem:
            raise pytest.UsageError(problem)
    if directory:
        config.pluginmanager.register(ConformanceReport(config, Path(directory).resolve()), "conformance-report")


def pytest_generate_tests(metafunc):
    if "check" not in metafunc.fixturenames or any(
            "check" in mark.args[0] for mark in metafunc.definition.iter_markers("parametrize")):
        return
    markers = {line.split(":")[0].strip() for line in metafunc.config.getini("markers")}
    tiers = getattr(metafunc.module, "CONFORMANCE_TIERS", TIERS)

    def marks(check):
        return ([pytest.mark.cuda] if "cuda" in markers and check.device == "cuda" else []) + \
            ([pytest.mark.slow] if "slow" in markers and check.slow else [])

    metafunc.parametrize("check", [pytest.param(c, id=c.id, marks=marks(c))
                                   for c in selected_checks(metafunc.config, tiers)])


def pytest_collection_modifyitems(config, items):
    xfails = config.getoption("--conformance-xfails")
    if not xfails:
        return
    globs = [(g, glob_pattern(g)) for g in read_xfails(xfails)]
    for item in items:
        check = getattr(getattr(item, "callspec", None), "params", {}).get("check")
        matched = [g for g, pattern in globs if check is not None and pattern.match(check.id)]
        if matched:
            item.add_marker(pytest.mark.xfail(reason=f"known failure: {matched[0]} in {xfails}", strict=False))


def _is_worker(config) -> bool:
    return hasattr(config, "workerinput")


class ConformanceReport:
    """Collects the check records of this process into DIR/parts/; the controller merges them at the end."""

    def __init__(self, config, directory: Path):
        from reference.testing import compare

        self.config, self.directory, self.parts = config, directory, directory / "parts"
        self.namespace = config.getoption("--impl")
        name = config.workerinput["workerid"] if _is_worker(config) else "main"
        self.part_file = self.parts / f"{name}.jsonl"
        self.parts.mkdir(parents=True, exist_ok=True)
        if not _is_worker(config):
            for stale in self.parts.glob("*.jsonl"):
                stale.unlink()
        compare.add_listener(self.write)

    def write(self, entry: dict) -> None:
        with self.part_file.open("a") as stream:
            stream.write(json.dumps(entry, default=float) + "\n")

    def xfails(self) -> dict | None:
        """The xfails file's patterns, the selected check ids they match and the patterns that match none."""
        path = self.config.getoption("--conformance-xfails")
        if not path:
            return None
        ids = [c.id for c in selected_checks(self.config, tiers=ALL_TIERS)]
        patterns = read_xfails(path)
        matched = {p: [i for i in ids if glob_pattern(p).match(i)] for p in patterns}
        return dict(file=str(path), patterns=patterns, xfailed=sorted({i for hit in matched.values() for i in hit}),
                    unmatched=[p for p, hit in matched.items() if not hit])

    def pytest_runtest_logreport(self, report):
        """Controller: a check whose process died (an xdist worker killed by a crash in native code) left no
        verdict of its own; remember it as crashed."""
        if _is_worker(self.config) or not report.failed or not WORKER_CRASH.search(str(report.longrepr)):
            return
        check_id = report.nodeid.partition("[")[2][:-1]  # the parameter id, brackets of its own included
        tier, *subject, dtype, device = check_id.split("-") if check_id.count("-") >= 3 else ("", "", "", "")
        if not subject:
            return
        from reference.testing.compare import Where

        self.write(dict(vars(Where(tier, "-".join(subject), dtype, device)), stage=check_id, kind="outcome",
                        outcome="crashed", reason=_first_line(str(report.longrepr)), namespace=self.namespace))

    @pytest.hookimpl(trylast=True)
    def pytest_sessionfinish(self, session, exitstatus):
        if _is_worker(self.config):
            return
        from .report import write_report

        self.summary = self.xfails()
        self.written = write_report(self.directory, exitstatus=int(exitstatus), xfails=self.summary)

    def pytest_terminal_summary(self, terminalreporter):
        written = getattr(self, "written", None)
        if not written:
            return
        rows = json.loads((self.directory / "conformance.json").read_text())["rows"]
        not_conforming = [r for r in rows if r["verdict"] in ("FAIL", "refused", "crashed")]
        missing = {}  # reason -> the checks it applies to
        for r in rows:
            if r["verdict"] == "not implemented":
                missing.setdefault(r["reason"], []).append(f"{r['tier']} {r['subject']} {r['dtype']}")
        counts = ", ".join(f"{sum(r['verdict'] == v for r in rows)} {v}" for v in ("FAIL", "refused", "crashed"))
        terminalreporter.write_sep("-", "conformance")
        terminalreporter.write_line(f"{sum(r['verdict'] == 'pass' for r in rows)} checks pass, {counts}, "
                                    f"{sum(map(len, missing.values()))} not implemented")
        for r in not_conforming:
            terminalreporter.write_line(f"{r['verdict']} {r['id'] or r['subject']}: {r['reason'][:200]}")
        for reason, where in sorted(missing.items()):
            terminalreporter.write_line(f"not implemented ({reason}): {', '.join(where[:6])}"
                                        + (f" and {len(where) - 6} more" if len(where) > 6 else ""))
        unmatched = (getattr(self, "summary", None) or {}).get("unmatched")
        if unmatched:
            terminalreporter.write_line(f"xfails entries that match no check: {', '.join(unmatched)}")
        terminalreporter.write_line(f"report: {written}")


def _first_line(text: str) -> str:
    lines = [line for line in text.strip().splitlines() if line.strip()]
    return lines[0].strip() if lines else "the test process crashed"
