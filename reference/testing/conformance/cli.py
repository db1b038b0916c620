"""`python -m reference conform MODULE`: the engine run by pytest on the package's own suite module.

Exit status: 0 when every check the namespace implements passes (known failures of the xfails file
included), 1 when one fails, 2 for a usage error (module not importable, not a layer namespace, an unreadable
xfails file, -n without pytest-xdist, no check selected).
"""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

SUITE = Path(__file__).with_name("suite.py")


def _usage(message: str) -> int:
    print(f"python -m reference conform: error: {message}", file=sys.stderr)
    return 2


def _usage_problem(module: str, xfails: str | None, jobs: str | None) -> str | None:
    """Why the command cannot run at all, or None."""
    from .namespace import UsageError, load_namespace

    try:
        load_namespace(module)
    except UsageError as error:
        return str(error)
    if xfails is not None and not Path(xfails).is_file():
        return f"--xfails {xfails}: no such file"
    return None


def run_conform(module: str, report_dir: str = "reports/conformance", xfails: str | None = None,
                jobs: str | None = None, dtypes=("float64", "float32"), select=(), max_examples: int = 25) -> int:
    """Run every check of `module` in pytest (with `jobs` xdist workers) and write the report; the exit status."""
    sys.path.insert(0, os.getcwd())  # the namespace is named as `python -m` would import it, from here
    problem = _usage_problem(module, xfails, jobs)
    if problem:
        return _usage(problem)
    import pytest

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
        argv += ["-n", str(jobs)] if jobs not in (None, "0", "1") else []
        status = int(pytest.main(argv))
    if status == pytest.ExitCode.NO_TESTS_COLLECTED:
        return _usage("no check selected (see --select)")
    return status if status in (0, 1) else 2
