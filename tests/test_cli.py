"""The command line: `python -m reference --help` lists the subcommands, `models` lists the zoo."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from reference import zoo

ROOT = Path(__file__).resolve().parents[1]


def run_cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "reference", *args], cwd=ROOT, capture_output=True, text=True,
                          timeout=120)


def test_help_lists_the_subcommands():
    result = run_cli("--help")
    assert result.returncode == 0, result.stderr
    for command in ("accuracy", "calibrate", "fetch", "models"):
        assert command in result.stdout


@pytest.mark.parametrize("command", ["accuracy", "calibrate", "fetch"])
def test_each_subcommand_has_help(command):
    result = run_cli(command, "--help")
    assert result.returncode == 0, result.stderr
    assert "--data-dir" in result.stdout


def test_models_lists_every_zoo_model_with_its_input_shape():
    result = run_cli("models")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    for name in zoo.names():
        line = next((line for line in lines if line.split()[:1] == [name]), None)
        assert line is not None, f"{name} missing from:\n{result.stdout}"
        assert str(zoo.spec(name).input_shape) in line


def test_no_subcommand_is_a_usage_error():
    result = run_cli()
    assert result.returncode == 2 and "usage" in result.stderr.lower()


def test_a_reader_that_stops_early_ends_the_output_without_a_traceback():
    read, write = os.pipe()
    os.close(read)  # like `reference models | head -0`: every write meets a closed pipe
    try:
        result = subprocess.run([sys.executable, "-m", "reference", "models"], cwd=ROOT, stdout=write,
                                stderr=subprocess.PIPE, text=True, timeout=120)
    finally:
        os.close(write)
    assert result.returncode == 128 + signal.SIGPIPE and result.stderr == ""
