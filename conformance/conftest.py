"""Conformance-suite setup: strict torch numerics and the report (thread pools: see the root conftest).

`pytest conformance --conformance-report DIR` writes DIR/conformance.json, conformance.md, heatmap.png and
trajectories.png. Every process appends its comparison records to DIR/parts/<worker>.jsonl as they happen
(xdist workers each write their own file); the controller (the process without `workerinput`) empties
DIR/parts/ when it starts and merges the parts when the session finishes.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest


def pytest_addoption(parser):
    group = parser.getgroup("conformance")
    group.addoption("--conformance-report", metavar="DIR", default=None,
                    help="write the conformance report (JSON, Markdown, heatmap and trajectory plots) into DIR")


def _is_worker(config) -> bool:
    return hasattr(config, "workerinput")


class ConformanceReport:
    """Collects comparison records of this process into DIR/parts/; the controller merges them at the end."""

    def __init__(self, config, directory: Path):
        self.config, self.directory = config, directory
        self.parts = directory / "parts"
        name = config.workerinput["workerid"] if _is_worker(config) else "main"
        self.part_file = self.parts / f"{name}.jsonl"
        self.parts.mkdir(parents=True, exist_ok=True)
        if not _is_worker(config):
            for stale in self.parts.glob("*.jsonl"):
                stale.unlink()
        from reference.testing import compare

        compare.add_listener(self.write)

    def write(self, entry: dict) -> None:
        with self.part_file.open("a") as stream:
            stream.write(json.dumps(entry, default=float) + "\n")

    @pytest.hookimpl(trylast=True)
    def pytest_sessionfinish(self, session, exitstatus):
        if _is_worker(self.config):
            return
        from .report import write_report

        self.written = write_report(self.directory, exitstatus=int(exitstatus))

    def pytest_terminal_summary(self, terminalreporter):
        written = getattr(self, "written", None)
        if written:
            terminalreporter.write_sep("-", f"conformance report: {written}")


def pytest_configure(config):
    directory = config.getoption("--conformance-report", default=None)
    if directory:
        config.pluginmanager.register(ConformanceReport(config, Path(directory).resolve()), "conformance-report")


@pytest.fixture(autouse=True, scope="session")
def strict_torch_numerics():
    """Conformance compares float32 with float32: no TF32 on CUDA, deterministic cuDNN algorithms."""
    import torch

    saved = (torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32,
             torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark)
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    torch.backends.cudnn.deterministic = True
    torch.backends.cudnn.benchmark = False
    yield
    (torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32,
     torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark) = saved
