"""The conformance report: records merge into the compliance table (JSON, Markdown) and PNGs, and the xdist path
works end to end."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from reference.testing.conformance.report import write_report

ROOT = Path(__file__).resolve().parent.parent


def _record(subject, ratio, passed=True, kind="tolerance", dtype="float32", case="c1", **extra):
    values = dict(max_abs=ratio * 1e-5, max_rel=ratio * 1e-6, ratio=ratio, rtol=1.3e-6, atol=1e-5, size=4)
    if kind == "budget":
        values = dict(ours=1e-7, torch=1e-7, allowed=4e-7, ratio=ratio, factor=4.0)
    return dict(tier="op", subject=subject, dtype=dtype, device="cpu", case=case, stage="forward", kind=kind,
                passed=passed, **values, **extra)


def _outcome(subject, outcome, reason="", dtype="float32", device="cpu", **values):
    return dict(tier="op", subject=subject, dtype=dtype, device=device, case="o", kind="outcome",
                stage=f"op-{subject}-{dtype}-{device}", outcome=outcome, reason=reason, namespace="my_layers", **values)


def test_report_is_a_compliance_table_with_verdicts_and_what_is_not_implemented(tmp_path):
    parts = tmp_path / "parts"
    parts.mkdir()
    records = [_record("Conv2d", 0.5), _record("Conv2d", 0.01, case="c2"), _record("ReLU", 0.0),
               _record("Linear", 3.0, passed=False), _record("Conv2d", 0.7, kind="budget"),
               _record("Flatten", 2.0, passed=False),
               _outcome("Conv2d", "passed", examples=2), _outcome("ReLU", "passed", examples=1, unsupported=3,
                                                                  unsupported_reasons=["ReLU: no float16"]),
               _outcome("Linear", "failed", "op Linear [float32, cpu] forward: 2 of 4 elements exceed"),
               _outcome("Flatten", "failed", "AssertionError"),
               _outcome("BatchNorm2d[train]", "not implemented", "my_layers has no BatchNorm2d"),
               _outcome("Conv2d", "skipped", "no CUDA", device="cuda"),
               dict(tier="mutation", subject="Conv2d: flipped", dtype="float64", device="cpu", case="m1",
                    stage="torch", kind="mutation", caught=True),
               dict(tier="mutation", subject="Conv2d: flipped", dtype="float64", device="cpu", case="m2",
                    stage="scipy", kind="mutation", caught=False),
               dict(tier="trajectory", subject="tiny_cnn[sgd]", dtype="float64", device="cpu", case="t",
                    stage="sgd", kind="trajectory", param_gap=[1e-17, 2e-17, 4e-17], loss_gap=[0.0] * 3,
                    ratio=[1e-9] * 3, torch32_gap=None)]
    (parts / "gw0.jsonl").write_text("\n".join(json.dumps(r) for r in records[:5]) + "\n")
    (parts / "gw1.jsonl").write_text("\n".join(json.dumps(r) for r in records[5:]) + "\n")
    write_report(tmp_path, exitstatus=1, xfails=dict(file="xfails.txt", patterns=["op-Flatten-*", "op-Nope-*"],
                                                     xfailed=["op-Flatten-float32-cpu"], unmatched=["op-Nope-*"]))
    report = json.loads((tmp_path / "conformance.json").read_text())
    rows = {row["subject"]: row for row in report["rows"]}
    assert set(rows) == {"BatchNorm2d[train]", "Conv2d", "Flatten", "Linear", "ReLU"}  # no row for CUDA skips
    assert rows["Conv2d"]["cases"] == 2 and rows["Conv2d"]["worst_ratio"] == 0.5
    assert rows["Conv2d"]["budget_ratio"] == 0.7 and rows["Conv2d"]["verdict"] == "pass"
    assert rows["Linear"]["verdict"] == "FAIL" and rows["Flatten"]["verdict"] == "xfail"
    assert rows["ReLU"]["implemented"] == "partly" and "no float16" in rows["ReLU"]["reason"]
    missing = rows["BatchNorm2d[train]"]
    assert missing["verdict"] == "not implemented" and missing["implemented"] == "no"
    assert report["meta"]["no_device"] == 1 and report["meta"]["namespaces"] == ["my_layers"]
    markdown = (tmp_path / "conformance.md").read_text()
    assert "# Conformance of `my_layers` to PyTorch" in markdown
    assert ("| op | Linear | float32 | cpu | yes | 1 | 3 | - | FAIL | op Linear [float32, cpu] forward: 2 of 4 "
            "elements exceed |") in markdown
    assert "| op | BatchNorm2d[train] | float32 | cpu | no |" in markdown
    assert "my_layers has no BatchNorm2d" in markdown and "`op-Nope-*`" in markdown
    assert "| tiny_cnn[sgd] | sgd | float64 | cpu | 3 |" in markdown
    assert "Mutations: 1 of 2 planted bugs caught by the oracle meant for each (missed: Conv2d: flipped (scipy))" \
        in markdown
    for image in ("heatmap.png", "trajectories.png"):
        assert (tmp_path / image).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_report_option_merges_xdist_worker_parts(tmp_path):
    """`pytest conformance/... -n 2 --conformance-report DIR` from the repo root: workers write parts, the
    controller merges them into one report."""
    out = tmp_path / "report"
    command = [sys.executable, "-m", "pytest", "conformance/test_ops.py", "-n", "2", "-p", "no:cacheprovider",
               "-o", "addopts=", "-q", "--conformance-report", str(out),
               "-k", "(ReLU-float64 or Flatten-float64 or Linear-float64) and cpu"]
    env = {**os.environ, "HYPOTHESIS_PROFILE": "ci"}
    result = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
    parts = sorted(p.name for p in (out / "parts").glob("*.jsonl"))
    assert parts and all(name.startswith("gw") for name in parts), parts
    rows = json.loads((out / "conformance.json").read_text())["rows"]
    assert {row["subject"] for row in rows} == {"ReLU", "Flatten", "Linear"}
    assert all(row["verdict"] == "pass" and row["cases"] > 0 for row in rows)
    assert (out / "conformance.md").exists() and (out / "heatmap.png").exists()
