"""The engine judges implementations that misbehave and keeps going: NaN outputs, wrong shapes and dtypes, any
exception, a dropout without a mask, a call that hangs, a backward that is not implemented. Each check ends as one
verdict (pass, FAIL, refused, crashed, not implemented) with its reason, and the report is written whole."""

from __future__ import annotations

import json

import pytest
from hypothesis import Phase, settings

from reference.__main__ import main
from reference.testing import compare
from reference.testing.conformance import checks, verdicts
from reference.testing.conformance.engine import NotImplementedInNamespace
from reference.testing.conformance.report import write_report

BROKEN = '''"""reference.numpy_nn with layers that misbehave in every way the engine must survive."""
import time

import numpy as np

from reference import numpy_nn
from reference.numpy_nn import *  # noqa: F403


class Linear(numpy_nn.Linear):
    def forward(self, x):
        return np.full_like(super().forward(x), np.nan)


class ReLU(numpy_nn.ReLU):
    def forward(self, x):
        return np.append(super().forward(x), 0.0)


class Flatten(numpy_nn.Flatten):
    def forward(self, x):
        return super().forward(x).astype(np.float16)


class MaxPool2d(numpy_nn.MaxPool2d):
    def forward(self, x):
        return {"not": "an array"}


class AvgPool2d(numpy_nn.AvgPool2d):
    def forward(self, x):
        raise ValueError("AvgPool2d: this implementation refuses every input")


class AdaptiveAvgPool2d(numpy_nn.AdaptiveAvgPool2d):
    def forward(self, x):
        return 1 / 0


class Hardtanh(numpy_nn.Hardtanh):
    def forward(self, x):
        time.sleep(3600)


class Conv2d(numpy_nn.Conv2d):
    def backward(self, grad_out):
        raise NotImplementedError("this Conv2d has no backward")


class Dropout(numpy_nn.Module):
    """A dropout that exposes no mask."""

    def __init__(self, p=0.5, inplace=False):
        super().__init__()
        self.p, self._inner = p, numpy_nn.Dropout(p)

    def forward(self, x):
        self._inner.train(self.training)
        return self._inner.forward(x)

    def backward(self, grad_out):
        return self._inner.backward(grad_out)
'''

EXPECTED = {  # check id -> (verdict, words its reason must contain)
    "op-Linear-float64-cpu": ("FAIL", "worst element"),
    "op-ReLU-float64-cpu": ("crashed", "forward returned a ndarray of shape"),
    "op-Flatten-float64-cpu": ("crashed", "returned dtype float16, expected float64"),
    "op-MaxPool2d-float64-cpu": ("crashed", "forward returned a dict"),
    "op-AvgPool2d-float64-cpu": ("refused", "ValueError: AvgPool2d: this implementation refuses every input"),
    "op-AdaptiveAvgPool2d-float64-cpu": ("crashed", "ZeroDivisionError"),
    "op-Hardtanh-float64-cpu": ("crashed", "timed out"),
    "op-Dropout[mask]-float64-cpu": ("not implemented", "Dropout has no mask"),
    "trajectory-simple_cnn[sgd]-float64-cpu": ("not implemented", "exposes no mask"),
    "op-Conv2d-float64-cpu": ("pass", "forward only: this Conv2d has no backward"),
    "oracle-Conv2d[gradcheck]-float64-cpu": ("not implemented", "this Conv2d has no backward"),
    "op-SGD-float64-cpu": ("pass", ""),
}


@pytest.fixture
def broken_layers(tmp_path, monkeypatch):
    """The misbehaving namespace, importable as `broken_layers`, with a 10-second check time limit and 3 examples
    per check, not shrunk (as the CLI runs them)."""
    (tmp_path / "broken_layers.py").write_text(BROKEN)
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setattr(verdicts, "CHECK_TIMEOUT", 10.0)
    previous = settings()
    settings.register_profile("robustness", previous, max_examples=3, phases=[Phase.explicit, Phase.generate])
    settings.load_profile("robustness")
    yield "broken_layers"
    settings.register_profile("robustness-restored", previous)
    settings.load_profile("robustness-restored")


def run_recorded(found, parts):
    """Run each check as pytest would (a skip is not implemented), its records into parts/records.jsonl."""
    parts.mkdir(parents=True)
    lines = []
    compare.add_listener(lambda entry: lines.append(json.dumps(entry, default=float)))
    try:
        for check in found:
            try:
                check.run()
            except NotImplementedInNamespace:
                pass
            except (AssertionError, verdicts.Refused, verdicts.Crashed):
                pass
    finally:
        compare._listeners.pop()
    (parts / "records.jsonl").write_text("\n".join(lines) + "\n")


def test_every_misbehaviour_ends_in_its_verdict_and_the_report_is_written_whole(broken_layers, tmp_path):
    found = [check for check in checks(broken_layers, ("op", "oracle", "trajectory"), ("float64",), ("cpu",))
             if check.id in EXPECTED]
    assert {check.id for check in found} == set(EXPECTED)
    run_recorded(found, tmp_path / "report" / "parts")
    write_report(tmp_path / "report", exitstatus=1)
    rows = {row["id"]: row for row in json.loads((tmp_path / "report" / "conformance.json").read_text())["rows"]}
    for check_id, (verdict, words) in EXPECTED.items():
        assert rows[check_id]["verdict"] == verdict, (check_id, rows[check_id])
        assert words in rows[check_id]["reason"], (check_id, rows[check_id]["reason"])
    assert rows["op-Conv2d-float64-cpu"]["implemented"] == "forward only"
    assert rows["op-Linear-float64-cpu"]["worst_ratio"] == "inf"  # NaN against a number: strict JSON
    markdown = (tmp_path / "report" / "conformance.md").read_text()
    assert "| op | Hardtanh | float64 | cpu | yes | 0 | - | - | crashed | timed out" in markdown
    assert markdown.rstrip().endswith(")")  # the last line of the table's image, written whole


def test_an_unavailable_framework_makes_every_check_not_implemented(tmp_path, monkeypatch):
    (tmp_path / "absent_framework.py").write_text(
        'UNAVAILABLE = "Foo is not installed; install it with: pip install reference[foo]"\n'
        "class Conv2d:\n    def forward(self, x): ...\n    def backward(self, g): ...\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    found = checks("absent_framework", ("op", "model"), ("float64",), ("cpu",))
    for check in (found[0], found[-1]):
        with pytest.raises(NotImplementedInNamespace, match="Foo is not installed; install it with"):
            check.run()


@pytest.mark.parametrize(("args", "message"), [
    (["-n", "-1"], "-n -1: expected 'auto', 'logical' or a number of worker processes >= 0"),
    (["-n", "many"], "-n many: expected"),
    (["--select", "op-NoSuchLayer-*"], "--select op-NoSuchLayer-*: matches no check"),
    (["--max-examples", "0"], "--max-examples 0: expected at least 1"),
    (["--timeout", "0"], "--timeout 0.0: expected a number of seconds > 0"),
])
def test_bad_options_are_usage_errors_before_any_check_runs(args, message, capsys, tmp_path):
    assert main(["conform", "reference.numpy_nn", "--report-dir", str(tmp_path / "report"), *args]) == 2
    error = capsys.readouterr().err
    assert message in error and len(error.strip().splitlines()) == 1, error


def test_a_report_dir_that_is_a_file_or_not_writable_is_a_usage_error(capsys, tmp_path):
    (tmp_path / "a_file").write_text("")
    assert main(["conform", "reference.numpy_nn", "--report-dir", str(tmp_path / "a_file")]) == 2
    assert "is a file, expected a folder" in capsys.readouterr().err
    assert main(["conform", "reference.numpy_nn", "--report-dir", str(tmp_path / "a_file" / "below")]) == 2
    assert "cannot be written" in capsys.readouterr().err
