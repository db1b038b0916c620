"""Random module states for tests: batch norms away from their trivial initial values (the project's one
randomiser, for the property tests and the conformance engine alike)."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np


def randomize_batch_norm(state: Mapping, rng: np.random.Generator) -> dict:
    """A copy of a state_dict (NumPy arrays) whose batch norms are random: affine weights and running statistics
    away from their trivial 1/0 values, so that eval mode and the affine gradients are exercised.

    Batch norms are found by their buffers' names (`<prefix>running_var`), so this works on any implementation's
    state_dict and on torch's (as NumPy arrays); entries a batch norm lacks (affine=False) are left out."""
    state = dict(state)
    for key in list(state):
        if not key.endswith("running_var"):
            continue
        prefix, c = key[: -len("running_var")], np.shape(state[key])[0]
        values = dict(weight=rng.uniform(0.5, 1.5, c), bias=rng.normal(0.0, 0.5, c),
                      running_mean=rng.normal(0.0, 0.5, c), running_var=rng.uniform(0.5, 2.0, c),
                      num_batches_tracked=np.array(rng.integers(0, 5), dtype=np.int64))
        state.update({prefix + name: value for name, value in values.items() if prefix + name in state})
    return state
