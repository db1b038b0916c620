"""Other machines, emulated: the accuracy gates rerun in subprocesses with another thread count, torch's portable
(non-vectorized) CPU kernels, or every initial parameter moved by one ulp. Each changes floating-point summation
order the way another CPU or BLAS does; every verdict must still pass. The digits tiny models run in the default
suite, 3 seeds per gated run against their baselines (the slow tier and `calibrate` gate the recipe's gate_seeds);
the whole matrix (every model, digits and shapes) is the slow tier (`tox -e machines`)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
VARIANTS = {
    "1 thread": (["--threads", "1"], {}),
    "2 threads": (["--threads", "2"], {}),
    "ATen default kernels": ([], {"ATEN_CPU_CAPABILITY": "default"}),
    "one-ulp jitter": (["--jitter", "1"], {}),
}
FAST = ("2 threads", "ATen default kernels", "one-ulp jitter")  # 1 thread is what the default accuracy tier runs


def machine_cases():
    for variant in VARIANTS:
        cores = [pytest.mark.cores(2)] if variant == "2 threads" else []  # its threads get cores of their own
        if variant in FAST:
            yield pytest.param(variant, "digits", ["--models", "tiny_cnn", "tiny_resnet", "--seeds", "3"], marks=cores,
                               id=f"{variant}-digits-tiny")
        yield pytest.param(variant, "digits", [], marks=[pytest.mark.slow, *cores], id=f"{variant}-digits-all")
        yield pytest.param(variant, "shapes", [], marks=[pytest.mark.slow, *cores], id=f"{variant}-shapes-all")


@pytest.mark.accuracy
@pytest.mark.parametrize(("variant", "dataset", "selection"), list(machine_cases()))
def test_gates_pass_on_an_emulated_other_machine(tmp_path, variant, dataset, selection):
    options, env = VARIANTS[variant]
    command = [sys.executable, "-m", "reference", "accuracy", "--dataset", dataset, "--device", "cpu", "--quiet",
               "--report-dir", str(tmp_path / "report"), *options, *selection]
    environment = {key: value for key, value in os.environ.items() if not key.startswith("PYTEST_")} | env
    result = subprocess.run(command, cwd=ROOT, env=environment, capture_output=True, text=True, timeout=1800)
    assert result.returncode == 0, f"{variant}: {' '.join(command)}\n{result.stdout}\n{result.stderr}"
