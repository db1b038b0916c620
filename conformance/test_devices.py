"""Device agreement: torch on CUDA against torch on the CPU, op by op and model by model.

Inputs are generated once on the CPU (NumPy) and moved to the device, so both devices see bitwise-identical
inputs; TF32 is off and cuDNN deterministic (conformance/conftest.py). The NumPy-against-CUDA checks themselves
are the "cuda" parametrizations of test_ops.py, test_models.py and test_trajectories.py.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import assume, given
from hypothesis import strategies as st

from reference import zoo
from reference.testing.compare import Where
from reference.testing.strategies import seeds

from .harness import TORCH_DTYPES, cast_floats, compare_results, torch_device
from .models import BATCH, batch, numpy_step, torch_step, twins
from .ops import OPS

pytestmark = pytest.mark.cuda
CASES = [pytest.param(op, dtype, id=f"{op.name}-{dtype}") for op in OPS for dtype in op.dtypes]


@pytest.mark.parametrize(("op", "dtype"), CASES)
@given(data=st.data())
def test_torch_cuda_matches_torch_cpu_per_op(op, dtype, data):
    config, seed = data.draw(op.configs(), label="config"), data.draw(seeds, label="seed")
    if op.well_posed is not None:
        assume(op.well_posed(config, dtype))
    inputs = cast_floats(op.make_data(config, seed), np.dtype(dtype))
    ours = op.numpy(config, inputs)  # side data (dropout masks) both devices are driven with
    on_cpu = op.torch(config, inputs, ours, torch.device("cpu"), TORCH_DTYPES[dtype])
    on_cuda = op.torch(config, inputs, ours, torch_device("cuda"), TORCH_DTYPES[dtype])
    where = Where("device", op.name, dtype, "cuda", f"# {op.name}: config {config!r}, seed {seed}")
    compare_results(on_cuda, on_cpu, where)


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("mode", ["train", "eval"])
@pytest.mark.parametrize("name", zoo.names())
def test_torch_cuda_matches_torch_cpu_per_model(name, mode, dtype):
    numpy_model, on_cpu = twins(name, dtype, "cpu")
    _, on_cuda = twins(name, dtype, "cuda")
    x, y = batch(name, BATCH[name], seed=0)
    x = x.astype(dtype)
    training = mode == "train"
    masks = numpy_step(numpy_model, x, y, training)["_masks"]  # both devices drop the units NumPy dropped
    where = Where("device", f"{name}[{mode}]", dtype, "cuda", f"# model {name}, mode {mode}, dtype {dtype}")
    cpu = torch_step(on_cpu, x, y, training, masks, torch.device("cpu"), TORCH_DTYPES[dtype])
    cuda = torch_step(on_cuda, x, y, training, masks, torch_device("cuda"), TORCH_DTYPES[dtype])
    compare_results(cuda, cpu, where, tol_key=f"model/{name}")
