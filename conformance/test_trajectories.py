"""Training-trajectory conformance: every zoo model, SGD (momentum, weight decay) and Adam, 20 steps on identical
batches in both frameworks from the same initial state, dropout off (p = 0 in both twins).

float64: loss, every parameter, the optimizer state (momentum buffers; Adam's exp_avg and exp_avg_sq) and the
batch-norm buffers within tolerance after every step. float32: the gap per step is measured against torch
float32's own drift from float64 and recorded in the report; the loss is asserted (see models.run_trajectory).
The zoo entry says which dtypes a model's trajectories run in.
"""

CONFORMANCE_TIERS = ("trajectory",)


def test_training_trajectory_matches_torch(check):
    check()
