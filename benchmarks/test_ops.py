"""Every NumPy op of the zoo, forward and backward, at the shapes the zoo trains with, next to its torch twin.

Cases come from recording one training forward of each zoo model (`zoo_ops.zoo_op_cases`). The torch side
runs with gradients enabled (forward) or replays the graph's backward (`torch.autograd.grad`), so both
sides keep and use what the backward needs. Convolutions are also timed forward and backward together.
"""

import numpy as np
import pytest
import torch

from benchmarks.zoo_ops import OPS, as_torch, zoo_op_cases

CASES = zoo_op_cases()
CONV_CASES = [case for case in CASES if case.op == "conv2d"]
pytestmark = pytest.mark.benchmark


def upstream_grad(out: np.ndarray) -> np.ndarray:
    """A random gradient for `out` in its memory layout, as the next layer's backward would return it."""
    grad = np.empty_like(out)
    grad[...] = np.random.default_rng(0).standard_normal(out.shape)
    return grad


@pytest.mark.parametrize("case", CASES, ids=[case.id for case in CASES])
def test_op_forward(bench, case):
    op = OPS[case.op]
    torch_args, _ = as_torch(case.args)
    bench.compare(f"fwd {case.label}", "op forward", lambda: op.forward(*case.args), lambda: op.torch(*torch_args),
                  models=case.models)


@pytest.mark.parametrize("case", CASES, ids=[case.id for case in CASES])
def test_op_backward(bench, case):
    op = OPS[case.op]
    out, cache = op.forward(*case.args)
    grad = upstream_grad(out)
    torch_args, leaves = as_torch(case.args)
    torch_out, torch_grad = op.torch(*torch_args), torch.from_numpy(grad)
    bench.compare(f"bwd {case.label}", "op backward", lambda: op.backward(grad, cache),
                  lambda: torch.autograd.grad(torch_out, leaves, torch_grad, retain_graph=True), models=case.models)


@pytest.mark.parametrize("case", CONV_CASES, ids=[case.id for case in CONV_CASES])
def test_conv_forward_and_backward(bench, case):
    op = OPS["conv2d"]
    grad = upstream_grad(op.forward(*case.args)[0])
    torch_args, leaves = as_torch(case.args)
    torch_grad = torch.from_numpy(grad)
    bench.compare(f"fwd+bwd {case.label}", "op forward+backward",
                  lambda: op.backward(grad, op.forward(*case.args)[1]),
                  lambda: torch.autograd.grad(op.torch(*torch_args), leaves, torch_grad), models=case.models,
                  min_rounds=15)
