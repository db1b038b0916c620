"""`python -m reference conform MODULE` on implementations it has never seen: a CS231n-style one without
BatchNorm2d or Dropout (examples/naive_layers.py) passes with those listed as not implemented; a copy of our
layers with a 0.1% error in one gradient fails and names the layer; known failures go in an xfails file;
usage errors exit 2."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from reference.__main__ import main

ROOT = Path(__file__).resolve().parent.parent
PERTURBED = '''"""reference.numpy_nn with Linear's weight gradient 0.1% too large."""
from reference.numpy_nn import *  # noqa: F403
from reference import numpy_nn


class Linear(numpy_nn.Linear):
    def backward(self, grad_out):
        grad_in = super().backward(grad_out)
        self.weight.grad *= 1.001
        return grad_in
'''


def conform(*args, cwd=ROOT, extra_path=None):
    """Run the CLI in a fresh process; (exit status, output, rows of conformance.json)."""
    env = {"OMP_NUM_THREADS": "1", **os.environ,  # tiny cases: one thread is fastest on shared cores
           "PYTHONPATH": os.pathsep.join(filter(None, [extra_path, os.environ.get("PYTHONPATH")]))}
    result = subprocess.run([sys.executable, "-m", "reference", "conform", *args], cwd=cwd, env=env,
                            capture_output=True, text=True, timeout=600)
    report_dir = Path(args[args.index("--report-dir") + 1])
    rows = json.loads((report_dir / "conformance.json").read_text())["rows"] if report_dir.exists() else []
    return result.returncode, result.stdout + result.stderr, rows


def verdicts(rows) -> dict:
    return {(row["tier"], row["subject"], row["dtype"]): row["verdict"] for row in rows}


def test_naive_example_passes_with_what_it_lacks_listed_as_not_implemented(tmp_path):
    status, output, rows = conform("examples.naive_layers", "--report-dir", str(tmp_path), "--max-examples", "3",
                                   "--dtypes", "float64", "--select", "op-*", "oracle-*", "model-*", "trajectory-tiny*")
    assert status == 0, output
    found = verdicts(rows)
    for subject in ("Conv2d", "Linear", "ReLU", "MaxPool2d", "Flatten", "SGD"):
        assert found[("op", subject, "float64")] == "pass", subject
    assert found[("model", "tiny_cnn[train]", "float64")] == "pass"
    assert found[("trajectory", "tiny_cnn[sgd]", "float64")] == "pass"
    for tier, subject in (("op", "BatchNorm2d[train]"), ("op", "Dropout[mask]"), ("op", "Dropout2d[eval]"),
                          ("model", "simple_cnn[train]"), ("trajectory", "tiny_cnn[adam]")):
        assert found[(tier, subject, "float64")] == "not implemented", subject
    markdown = (tmp_path / "conformance.md").read_text()
    assert "examples.naive_layers has no BatchNorm2d" in markdown
    assert "| op | BatchNorm2d[train] | float64 | cpu | no |" in markdown


def test_a_gradient_off_by_a_thousandth_fails_and_names_the_layer(tmp_path):
    (tmp_path / "perturbed_layers.py").write_text(PERTURBED)
    report = tmp_path / "report"
    status, output, rows = conform("perturbed_layers", "--report-dir", str(report), "--max-examples", "3",
                                   "--dtypes", "float64", "--select", "op-*", "model-tiny_cnn*", cwd=tmp_path,
                                   extra_path=str(ROOT))
    assert status == 1, output
    failed = {row["subject"] for row in rows if row["verdict"] == "FAIL"}
    assert failed == {"Linear", "Linear[args]", "tiny_cnn[train]", "tiny_cnn[eval]"}, failed
    assert "FAIL op-Linear-float64-cpu" in output and "grad[weight]" in output
    assert "reproduce('perturbed_layers', 'op-Linear-float64-cpu', config=LayerConfig(" in output
    assert verdicts(rows)[("op", "Conv2d", "float64")] == "pass"


def test_known_failures_in_an_xfails_file_pass_and_unmatched_entries_are_reported(tmp_path):
    (tmp_path / "perturbed_layers.py").write_text(PERTURBED)
    (tmp_path / "xfails.txt").write_text("# Linear's gradient is known to be off\nop-Linear-*  # both dtypes\n"
                                         "op-NoSuchLayer-float64-cpu\n")
    report = tmp_path / "report"
    status, output, rows = conform("perturbed_layers", "--report-dir", str(report), "--max-examples", "3",
                                   "--dtypes", "float64", "--select", "op-Linear-*", "op-ReLU-*", "--xfails",
                                   "xfails.txt", cwd=tmp_path, extra_path=str(ROOT))
    assert status == 0, output
    assert {row["subject"]: row["verdict"] for row in rows if row["subject"] == "Linear"} == {"Linear": "xfail"}
    assert "op-NoSuchLayer-float64-cpu" in output
    assert json.loads((report / "conformance.json").read_text())["meta"]["xfails"]["unmatched"] == [
        "op-NoSuchLayer-float64-cpu"]


@pytest.mark.parametrize(("args", "message"), [
    (["no_such_module_anywhere"], "cannot import 'no_such_module_anywhere'"),
    (["json"], "'json' is not a layer namespace"),
    (["reference.numpy_nn", "--xfails", "no/such/xfails.txt"], "no such file"),
])
def test_usage_errors_exit_2_with_the_reason(args, message, capsys, tmp_path):
    assert main(["conform", *args, "--report-dir", str(tmp_path)]) == 2
    assert message in capsys.readouterr().err


def test_checks_run_after_torch_testing_froze_the_cudnn_flags():
    """torch.testing._internal (imported by other tests in the same worker) forbids setting cuDNN flags directly;
    the engine sets them through cuDNN's context manager."""
    script = ("import torch.testing._internal.common_utils\n"
              "from reference.testing.conformance import checks\n"
              "found = checks('reference.numpy_nn', tiers=('op',), dtypes=('float64',), devices=('cpu',))\n"
              "next(c for c in found if c.subject == 'ReLU')()\n")
    result = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
