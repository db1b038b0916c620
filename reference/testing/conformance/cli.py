"""`python -m reference conform MODULE`: the engine run by pytest on the package's own suite module.

Exit status: 0 when every check the namespace implements passes (known failures of the xfails file
included), 1 when one does not conform (FAIL, refused, crashed), 2 for a usage error found before any check
runs (module not importable, not a layer namespace, an unreadable xfails file, a report dir that is a file or
cannot be written, a bad -n or --max-examples, a --select glob that matches no check).
"""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

SUITE = Path(__file__).with_name("suite.py")
DEFAULT_MAX_EXAMPLES = 25


def _usage(message: str) -> int:
    print(f"python -m reference conform: error: {message}", file=sys.stderr)
    return 2


def jobs_problem(jobs: str | None) -> str | None:
    """Why `-n` is not a number of xdist workers ('auto', 'logical' or an integer >= 0), or None."""
    if jobs is None or jobs in ("auto", "logical") or (jobs.isdigit()):
        return None
    return f"-n {jobs}: expected 'auto', 'logical' or a number of worker processes >= 0"


def _unmatched_globs(module: str, dtypes, select) -> list[str]:
    from .engine import DEVICES, TIERS, checks
    from .plugin import glob_pattern

    ids = [check.id for check in checks(module, TIERS, tuple(dtypes), DEVICES)]
    return [glob for glob in select if not any(glob_pattern(glob).match(i) for i in ids)]


def _usage_problem(module, report_dir, xfails, jobs, dtypes, select, max_examples, timeout) -> str | None:
    """Why the command cannot run at all, or None."""
    from .namespace import UsageError, load_namespace

    try:
        load_namespace(module)
    except UsageError as error:
        return str(error)
    if xfails is not None and not Path(xfails).is_file():
        return f"--xfails {xfails}: no such file"
    if max_examples is not None and max_examples < 1:
        return f"--max-examples {max_examples}: expected at least 1"
    if timeout is not None and not timeout > 0:
        return f"--timeout {timeout}: expected a number of seconds > 0"
    unmatched = _unmatched_globs(module, dtypes, select)
    if unmatched:
        return (f"--select {' '.join(unmatched)}: matches no check (ids look like 'op-Conv2d-float64-cpu', "
                "'model-tiny_cnn[train]-float32-cpu')")
    from .report import writable_folder_problem

    return jobs_problem(jobs) or writable_folder_problem("--report-dir", report_dir)


def run_conform(module: str, report_dir: str = "reports/conformance", xfails: str | None = None,
                jobs: str | None = None, dtypes=("float64", "float32"), select=(), max_examples: int | None = None,
                timeout: float | None = None, skip_slow: bool = False) -> int:
    """Run every check of `module` in pytest (with `jobs` xdist workers) and write the report; the exit status.

    `max_examples` defaults to the namespace's MAX_EXAMPLES (an adapter of a slow framework) or 25; `timeout` is
    each check's time limit in seconds (default verdicts.CHECK_TIMEOUT); `skip_slow` leaves out the heavy checks
    (the torchvision-sized models of the model tier)."""
    sys.path.insert(0, os.getcwd())  # the namespace is named as `python -m` would import it, from here
    problem = _usage_problem(module, report_dir, xfails, jobs, dtypes, select, max_examples, timeout)
    if problem:
        return _usage(problem)
    import pytest

    from .namespace import load_namespace

    if max_examples is None:
        max_examples = getattr(load_namespace(module), "MAX_EXAMPLES", None) or DEFAULT_MAX_EXAMPLES
    os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, [os.getcwd(), os.environ.get("PYTHONPATH")]))  # workers
    with tempfile.TemporaryDirectory() as scratch:
        ini = Path(scratch) / "pytest.ini"
        ini.write_text("[pytest]\n")  # none of the caller's pytest configuration applies
        argv = [str(SUITE), "-c", str(ini), "--rootdir", str(SUITE.parent), "--noconftest", "-p", "no:cacheprovider",
                "-p", "reference.testing.conformance.plugin", "-q", "--tb=short", "-r", "fE",
                "-W", "ignore::pytest.PytestAssertRewriteWarning",  # hypothesis is imported before pytest starts
                "--impl", module, "--conformance-report", str(Path(report_dir).resolve()),
                "--conformance-dtypes", ",".join(dtypes), "--conformance-max-examples", str(max_examples)]
        argv += [arg for glob in select for arg in ("--conformance-select", glob)]
        argv += ["--conformance-xfails", str(Path(xfails).resolve())] if xfails else []
        argv += ["--conformance-timeout", str(timeout)] if timeout else []
        argv += ["--conformance-skip-slow"] if skip_slow else []
        argv += ["-n", str(jobs)] if jobs not in (None, "0", "1") else []
        status = int(pytest.main(argv))
    if status == pytest.ExitCode.NO_TESTS_COLLECTED:
        return _usage("no check selected (see --select)")
    return status if status in (0, 1) else 2
