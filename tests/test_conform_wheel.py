"""`parametrize_with_conformance` from an installed wheel, not the checkout: the package is built into a wheel,
installed into a folder of its own, and a user's test file elsewhere (no conftest, no pytest configuration of
ours) runs the checks on its own layers (examples/naive_layers.py)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path
from xml.etree import ElementTree

import pytest

ROOT = Path(__file__).resolve().parent.parent
USER_TEST = '''import os

import reference
from hypothesis import settings

import naive_layers
from reference.testing import parametrize_with_conformance

settings.register_profile("quick", max_examples=5, deadline=None)
settings.load_profile("quick")


def test_the_engine_is_the_installed_one():
    assert reference.__file__.startswith(os.environ["SITE"]), reference.__file__


@parametrize_with_conformance(naive_layers, tiers=("op", "model"), dtypes=("float64",), devices=("cpu",))
def test_naive_layers(check):
    check()
'''


def run(command, **kwargs):
    result = subprocess.run(command, capture_output=True, text=True, timeout=600, **kwargs)
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


@pytest.mark.slow  # builds and installs a wheel: ~15 s of packaging (tox -e slow)
def test_a_user_test_file_runs_the_checks_from_an_installed_wheel(tmp_path):
    source, dist, site, user = (tmp_path / name for name in ("source", "dist", "site", "user"))
    shutil.copytree(ROOT / "reference", source / "reference", ignore=shutil.ignore_patterns("__pycache__"))
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, source / name)
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check", "--no-input", "-q"]
    run([*pip, "wheel", "--no-deps", "--no-build-isolation", "-w", str(dist), str(source)])
    wheel = next(dist.glob("reference-*.whl"))
    run([*pip, "install", "--no-deps", "--target", str(site), str(wheel)])
    user.mkdir()
    shutil.copy(ROOT / "examples" / "naive_layers.py", user / "naive_layers.py")
    (user / "test_user.py").write_text(USER_TEST)
    env = {**os.environ, "PYTHONPATH": str(site), "SITE": str(site), "OMP_NUM_THREADS": "1"}
    run([sys.executable, "-m", "pytest", "test_user.py", "-q", "-p", "no:cacheprovider", "--junitxml", "results.xml",
         "-k", "installed or Conv2d-float64 or BatchNorm2d or tiny_cnn"], cwd=user, env=env)
    outcomes = junit_outcomes(user / "results.xml")
    assert outcomes.pop("test_the_engine_is_the_installed_one") == ("passed", "")
    implemented = {name: outcome for name, outcome in outcomes.items() if "BatchNorm2d" not in name}
    lacking = {name: outcome for name, outcome in outcomes.items() if "BatchNorm2d" in name}
    assert any("op-Conv2d-float64-cpu" in name for name in implemented), outcomes
    assert any("model-tiny_cnn" in name for name in implemented), outcomes
    assert all(outcome == ("passed", "") for outcome in implemented.values()), implemented
    assert lacking, "the selection names BatchNorm2d checks: naive_layers has no BatchNorm2d"
    for name, (outcome, message) in lacking.items():
        assert outcome == "skipped" and "not implemented: naive_layers has no BatchNorm2d" in message, (name, message)


def junit_outcomes(path: Path) -> dict[str, tuple[str, str]]:
    """{test name: (passed | skipped | failed, the skip or failure message)} from a JUnit XML file."""
    outcomes = {}
    for case in ElementTree.parse(path).iter("testcase"):
        verdict = next((child for child in case if child.tag in ("skipped", "failure", "error")), None)
        outcome = {"skipped": "skipped", None: "passed"}.get(getattr(verdict, "tag", None), "failed")
        outcomes[case.get("name")] = (outcome, "" if verdict is None else verdict.get("message", ""))
    return outcomes
