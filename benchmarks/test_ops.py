"""Every NumPy op of the zoo, forward and backward, at the shapes the zoo trains with, next to its torch twin.

Cases come from recording one training forward of each zoo model (`zoo_ops.zoo_op_cases`). The torch side
runs with gradients enabled (forward) or replays the graph's backward (`torch.autograd.grad`), so both
sides keep and use what the backward needs. Convolutions are also timed forward and backward together, and so
are the depthwise, grouped and dilated convolutions of torchvision's mobilenet_v2, resnext50_32x4d and resnet50
with dilation at 2x3x64x64 (`zoo_ops.torchvision_conv_cases`), each kind its own op family in the report.
"""

import copy

import numpy as np
import pytest
import torch

import reference
from benchmarks.zoo_ops import OPS, as_torch, conv_kind, torchvision_conv_cases, zoo_op_cases

CASES = zoo_op_cases()
CONV_CASES = [case for case in CASES if case.op == "conv2d"]
TORCHVISION_CONV_CASES = torchvision_conv_cases()
pytestmark = pytest.mark.benchmark


def upstream_grad(out: np.ndarray) -> np.ndarray:
    """A random gradient for `out` in its memory layout, as the next layer's backward would return it."""
    grad = np.empty_like(out)
    grad[...] = np.random.default_rng(0).standard_normal(out.shape)
    return grad


def forward_call(case):
    """package -> a call of that package's forward of `case` on a copy of its arguments."""
    def make(package):
        forward, _ = OPS[case.op].functions(package)
        args = copy.deepcopy(case.args)
        return lambda: forward(*args)
    return make


def backward_call(case, grad: np.ndarray, with_forward: bool = False):
    """package -> a call of that package's backward of `case` (after its forward, `with_forward`)."""
    def make(package):
        forward, backward = OPS[case.op].functions(package)
        args = copy.deepcopy(case.args)
        if with_forward:
            return lambda: backward(grad, forward(*args)[1])
        cache = forward(*args)[1]
        return lambda: backward(grad, cache)
    return make


@pytest.mark.parametrize("case", CASES, ids=[case.id for case in CASES])
def test_op_forward(bench, case):
    op, make = OPS[case.op], forward_call(case)
    torch_args, _ = as_torch(case.args)
    bench.compare(f"fwd {case.label}", "op forward", make(reference), lambda: op.torch(*torch_args), against=make,
                  models=case.models)


@pytest.mark.parametrize("case", CASES, ids=[case.id for case in CASES])
def test_op_backward(bench, case):
    op = OPS[case.op]
    forward, _ = op.functions(reference)
    grad = upstream_grad(forward(*case.args)[0])
    torch_args, leaves = as_torch(case.args)
    torch_out, torch_grad = op.torch(*torch_args), torch.from_numpy(grad)
    make = backward_call(case, grad)
    bench.compare(f"bwd {case.label}", "op backward", make(reference),
                  lambda: torch.autograd.grad(torch_out, leaves, torch_grad, retain_graph=True), against=make,
                  models=case.models)


def compare_conv_forward_and_backward(bench, case, name: str):
    """Time conv2d forward + backward of `case` in both frameworks (and the --against revision); row `name`."""
    op = OPS["conv2d"]
    forward, _ = op.functions(reference)
    grad = upstream_grad(forward(*case.args)[0])
    torch_args, leaves = as_torch(case.args)
    torch_grad = torch.from_numpy(grad)
    make = backward_call(case, grad, with_forward=True)
    bench.compare(name, "op forward+backward", make(reference),
                  lambda: torch.autograd.grad(op.torch(*torch_args), leaves, torch_grad), against=make,
                  models=case.models, min_rounds=15)


@pytest.mark.parametrize("case", CONV_CASES, ids=[case.id for case in CONV_CASES])
def test_conv_forward_and_backward(bench, case):
    compare_conv_forward_and_backward(bench, case, f"fwd+bwd {case.label}")


@pytest.mark.parametrize("case", TORCHVISION_CONV_CASES, ids=[case.id for case in TORCHVISION_CONV_CASES])
def test_torchvision_conv_forward_and_backward(bench, case):
    """The family of a case is its kind: "fwd+bwd conv2d[depthwise]", "[grouped]" or "[dilated]"."""
    compare_conv_forward_and_backward(bench, case, f"fwd+bwd conv2d[{conv_kind(case)}] {case.label[len('conv2d '):]}")
