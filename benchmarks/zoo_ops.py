"""The ops the zoo really runs: every functional call of each model's training forward at its recipe's batch size.

`zoo_op_cases()` runs one forward and loss of every zoo model that trains (NumPy, training mode) with the
functional layer calls recorded, and returns each distinct call once (op, arguments, which models make it).
`torchvision_conv_cases()` does the same for the convolutions with groups or dilation of the models that are
checked but never trained (torchvision's mobilenet_v2, resnext50_32x4d, resnet50 with dilation) at their
model-tier input, 2x3x64x64. `OPS` pairs each NumPy op with its torch.nn.functional twin, so a case can be
replayed in both frameworks.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from contextlib import contextmanager
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as tF

from reference import numpy_nn, zoo
from reference.numpy_nn import functional as F


@dataclass(frozen=True)
class Op:
    """A NumPy forward/backward pair (names in `reference.numpy_nn.functional`) and the torch function taking
    the same arguments (arrays as tensors)."""

    forward: str
    backward: str
    torch: Callable
    backward_takes_cache_first: bool = False

    def functions(self, package) -> tuple[Callable, Callable]:
        """(forward(*args) -> (out, cache), backward(grad_out, cache)) from a `reference` package (this
        checkout's, or the --against revision's)."""
        functional = package.numpy_nn.functional
        forward, backward = getattr(functional, self.forward), getattr(functional, self.backward)
        if self.backward_takes_cache_first:
            return forward, lambda grad, cache: backward(cache, grad)
        return forward, backward


OPS = {
    "conv2d": Op("conv2d_forward", "conv2d_backward", tF.conv2d),
    "linear": Op("linear_forward", "linear_backward", tF.linear),
    "relu": Op("relu_forward", "relu_backward", torch.relu),
    "hardtanh": Op("hardtanh_forward", "hardtanh_backward", tF.hardtanh),  # ReLU6 (tiny_mobilenet)
    "max_pool2d": Op("max_pool2d_forward", "max_pool2d_backward", tF.max_pool2d),
    "avg_pool2d": Op("avg_pool2d_forward", "avg_pool2d_backward", tF.avg_pool2d),
    "adaptive_avg_pool2d": Op("adaptive_avg_pool2d_forward", "adaptive_avg_pool2d_backward", tF.adaptive_avg_pool2d),
    "batch_norm2d_train": Op("batch_norm2d_train_forward", "batch_norm2d_backward",
                             lambda x, weight, bias, eps: tF.batch_norm(x, None, None, weight, bias, True, 0.0, eps)),
    "dropout": Op("dropout_forward", "dropout_backward", lambda x, p, rng: tF.dropout(x, p, True)),
    "dropout2d": Op("dropout2d_forward", "dropout_backward", lambda x, p, rng: tF.dropout2d(x, p, True)),
    "cross_entropy": Op("cross_entropy_forward", "cross_entropy_backward",
                        lambda logits, targets, ls: tF.cross_entropy(logits, targets, label_smoothing=ls),
                        backward_takes_cache_first=True),
}


@dataclass
class OpCase:
    """One distinct call of an op: its recorded arguments and the zoo models that make it."""

    op: str
    args: tuple
    models: list[str]

    def _arguments(self) -> dict:
        bound = inspect.signature(getattr(F, OPS[self.op].forward)).bind(*self.args).arguments
        return {name: _describe(value) for name, value in bound.items() if not isinstance(value, np.random.Generator)}

    @property
    def label(self) -> str:
        """e.g. `conv2d x=64x32x14x14 weight=64x32x3x3 bias=64 stride=1x1 padding=1x1` (generators left out)."""
        return " ".join([self.op, *(f"{name}={value}" for name, value in self._arguments().items())])

    @property
    def id(self) -> str:
        """The label without argument names, for test ids and `-k`: `conv2d-64x32x14x14-64x32x3x3-64-1x1-1x1`."""
        return "-".join([self.op, *self._arguments().values()])


def _describe(value) -> str:
    if isinstance(value, np.ndarray):
        return "x".join(map(str, value.shape))
    if isinstance(value, tuple):
        return "x".join(map(str, value))
    return str(value)


@contextmanager
def _recording(calls: list[tuple[str, tuple]]):
    """Replace each F.<op>_forward by a wrapper appending (op, args) to `calls`; restore them afterwards."""
    originals = {op: getattr(F, OPS[op].forward) for op in OPS}

    def recorder(op, forward):
        def record(*args):
            calls.append((op, args))
            return forward(*args)
        return record

    for op, forward in originals.items():
        setattr(F, OPS[op].forward, recorder(op, forward))
    try:
        yield
    finally:
        for op, forward in originals.items():
            setattr(F, OPS[op].forward, forward)


def trained_models() -> list[str]:
    """The zoo models with a training recipe (torchvision's big models are checked, never trained)."""
    return [name for name in zoo.names() if zoo.spec(name).recipes]


def model_batch(name: str, seed: int = 0, batch_size: int | None = None, input_shape=None):
    """A random float32 batch (x, y) of model `name` at its default recipe's batch size (or the one given)."""
    entry = zoo.spec(name)
    batch_size = batch_size or entry.recipes[entry.default_dataset].batch_size
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((batch_size, *(input_shape or entry.input_shape)), dtype=np.float32)
    return x, rng.integers(0, entry.num_classes, batch_size)


def _record_model(cases: dict, label: str, model, x, y) -> None:
    """Add each distinct functional call of one training forward and loss of `model` to `cases`."""
    calls: list[tuple[str, tuple]] = []
    with _recording(calls):
        numpy_nn.CrossEntropyLoss()(model.train()(x), y)
    for op, args in calls:
        case = cases.setdefault(OpCase(op, args, []).label, OpCase(op, args, []))
        if label not in case.models:
            case.models.append(label)


def zoo_op_cases() -> list[OpCase]:
    """Each distinct functional call of the training forward passes of the zoo models that train, in first-use
    order."""
    cases: dict[str, OpCase] = {}
    for name in trained_models():
        _record_model(cases, name, zoo.build(name, "numpy"), *model_batch(name))
    return list(cases.values())


def conv_kind(case: OpCase) -> str | None:
    """'depthwise' (one filter per channel), 'grouped' or 'dilated' for a conv2d case; None for a plain one."""
    arguments = inspect.signature(F.conv2d_forward).bind(*case.args).arguments
    groups, dilation = arguments.get("groups", 1), arguments.get("dilation", 1)
    if groups > 1:
        return "depthwise" if groups == arguments["x"].shape[1] == arguments["weight"].shape[0] else "grouped"
    return "dilated" if dilation not in (1, (1, 1)) else None


def torchvision_conv_cases() -> list[OpCase]:
    """The distinct conv2d calls with groups or dilation of one training forward of each zoo model (and variant)
    that has no training recipe, at its model-tier batch and input (2x3x64x64)."""
    cases: dict[str, OpCase] = {}
    for name in zoo.names():
        spec = zoo.spec(name)
        if spec.recipes:
            continue
        for label, variant in [(name, None), *spec.quirks.variants.items()]:
            options = variant.options if variant else {}
            batch_size, shape = (variant.batch, variant.input_shape) if variant else (spec.quirks.batch, None)
            _record_model(cases, label, zoo.build(name, "numpy", **options),
                          *model_batch(name, batch_size=batch_size, input_shape=shape))
    return [case for case in cases.values() if case.op == "conv2d" and conv_kind(case)]


def as_torch(args: tuple) -> tuple[tuple, list[torch.Tensor]]:
    """The arguments with arrays as tensors, and the float tensors (leaves requiring grad) among them."""
    converted, leaves = [], []
    for value in args:
        if isinstance(value, np.ndarray):
            value = torch.from_numpy(value.copy())
            if value.is_floating_point():
                leaves.append(value.requires_grad_())
        converted.append(value)
    return tuple(converted), leaves
