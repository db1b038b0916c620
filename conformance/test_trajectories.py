"""Training-trajectory conformance: every zoo model, SGD (momentum, weight decay) and Adam, 20 steps on identical
batches in both frameworks from the same initial state, dropout off (p = 0 in both twins).

float64: loss, every parameter, the optimizer state (momentum buffers; Adam's exp_avg and exp_avg_sq) and the
batch-norm buffers within tolerance after every step. float32: the gap per step is measured against torch
float32's own drift from float64 and recorded in the report; the loss is asserted (see run_trajectory).
"""

from __future__ import annotations

import pytest

from reference import zoo

from .models import OPTIMIZERS, TRAJECTORY_STEPS, run_trajectory

DEVICES = ["cpu", pytest.param("cuda", marks=pytest.mark.cuda)]
# float32 trajectories of resnet18 (11M parameters) would double the tier's time for a measurement only.
CASES = [pytest.param(name, dtype, id=f"{name}-{dtype}") for name in zoo.names() for dtype in ("float64", "float32")
         if not (name == "resnet18" and dtype == "float32")]


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("optimizer", list(OPTIMIZERS))
@pytest.mark.parametrize(("name", "dtype"), CASES)
def test_training_trajectory_matches_torch(name, dtype, optimizer, device):
    history = run_trajectory(name, optimizer, dtype, device)
    assert len(history["param_gap"]) == TRAJECTORY_STEPS >= 20
