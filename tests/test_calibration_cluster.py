"""`calibrate --address`: the same sweep on a Ray cluster of two nodes on this machine (loopback), with one worker
process killed mid-run, gives every outcome once and the same accuracies, bit for bit, as a local run."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from reference import zoo

ROOT = Path(__file__).resolve().parents[1]
SWEEP = ["--models", "tiny_cnn", "--framework", "numpy", "--seeds", "2", "--variants", "1 thread", "one-ulp jitter",
         "--fault-seeds", "0", "--quiet"]
CELLS = 4  # 2 seeds x 2 variants gated runs of tiny_cnn's gate seeds
TRAININGS = CELLS * zoo.spec("tiny_cnn").recipes["digits"].gate_seeds


def calibrate(report: Path, *extra: str, **popen) -> subprocess.Popen:
    environment = {key: value for key, value in os.environ.items() if not key.startswith(("PYTEST_", "RAY_"))}
    environment["RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"] = "0"  # else Ray swaps 127.0.0.1 for this machine's public IP,
    # where a loopback-only cluster does not listen
    return subprocess.Popen([sys.executable, "-m", "reference", "calibrate", *SWEEP, "--report-dir", str(report),
                             *extra], cwd=ROOT, env=environment, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True, **popen)


def accuracies(report: Path) -> dict:
    (row,) = json.loads((report / "calibration.json").read_text())["rows"]
    assert row["clean_runs"] == CELLS and row["trainings"] == TRAININGS, row
    return {variant: entry["accuracies"] for variant, entry in row["by_variant"].items()}


def kill_one_training_worker(process: subprocess.Popen, timeout: float = 300.0) -> int:
    """SIGKILL the first Ray worker seen running a calibration cell; its PID."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and process.poll() is None:
        found = subprocess.run(["pgrep", "-f", "ray::train_cell"], capture_output=True, text=True).stdout.split()
        if found:
            os.kill(int(found[0]), signal.SIGKILL)
            return int(found[0])
        time.sleep(0.2)
    raise AssertionError(f"no Ray worker ran a calibration cell:\n{process.communicate()[0]}")


@pytest.mark.slow  # starts a two-node Ray cluster: ~1 minute
def test_a_cluster_with_a_killed_worker_gives_every_outcome_once_and_the_local_runs_accuracies(tmp_path):
    from ray.cluster_utils import Cluster

    local = calibrate(tmp_path / "local")
    assert local.wait(timeout=900) == 0, local.communicate()[0]
    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 1, "node_ip_address": "127.0.0.1"})
    try:
        cluster.add_node(num_cpus=1, node_ip_address="127.0.0.1")
        assert cluster.address.startswith("127.0.0.1:")
        remote = calibrate(tmp_path / "cluster", "--address", cluster.address)
        kill_one_training_worker(remote)
        output, _ = remote.communicate(timeout=900)
        assert remote.returncode == 0, output
    finally:
        cluster.shutdown()
    assert accuracies(tmp_path / "cluster") == accuracies(tmp_path / "local")
