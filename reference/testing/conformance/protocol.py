"""The layer contract as code: what an implementation must offer for the conformance engine to judge it.

A *layer namespace* is an importable module whose attributes are layer classes named and constructed as in
`torch.nn` (`Conv2d(in_channels, out_channels, kernel_size, stride=1, padding=0, bias=True)`, `MaxPool2d(
kernel_size, stride=None, padding=0)`, `BatchNorm2d(num_features, eps=1e-5, momentum=0.1)`, ...), plus, where
it has them, `CrossEntropyLoss(label_smoothing=0.0)`, `SGD(params, lr, momentum=0, dampening=0,
weight_decay=0, nesterov=False)`, `Adam(params, lr, betas, eps, weight_decay)` and `StepLR(optimizer,
step_size, gamma)`. Every name is optional: what a namespace lacks is reported as not implemented.
Arrays are NumPy, NCHW; state_dict keys and shapes are those of the torch twin.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any, Protocol, runtime_checkable

import numpy as np


@runtime_checkable
class Parameter(Protocol):
    """A trainable array and its accumulated gradient (None until a backward, or after zero_grad)."""

    data: np.ndarray
    grad: np.ndarray | None


@runtime_checkable
class Layer(Protocol):
    """Every layer, block and model: torch.nn.Module's interface with a manual backward."""

    def __call__(self, x: np.ndarray) -> np.ndarray: ...

    def forward(self, x: np.ndarray) -> np.ndarray: ...

    def backward(self, grad_out: np.ndarray) -> np.ndarray:
        """The gradient w.r.t. the last forward's input; parameter gradients are added to `param.grad`."""
        ...

    def train(self, mode: bool = True) -> Any: ...

    def eval(self) -> Any: ...

    def zero_grad(self) -> None: ...

    def parameters(self) -> Iterator[Parameter]: ...

    def named_parameters(self) -> Iterator[tuple[str, Parameter]]:
        """(name, parameter) with the names of the state_dict keys."""
        ...

    def state_dict(self) -> Mapping[str, np.ndarray]:
        """Parameters and buffers, keys and shapes as the torch twin's."""
        ...

    def load_state_dict(self, state_dict: Mapping[str, np.ndarray]) -> Any:
        """Copy arrays in, keeping the module's dtype."""
        ...

    def to(self, dtype: Any) -> Any:
        """Cast to float32 or float64 (raise NotImplementedError for a dtype the implementation lacks)."""
        ...


@runtime_checkable
class Model(Layer, Protocol):
    """A model built from a namespace's layers: its sub-modules by name, as torch's `named_modules()`."""

    def named_modules(self) -> Iterator[tuple[str, Any]]: ...


@runtime_checkable
class RandomLayer(Layer, Protocol):
    """Dropout and Dropout2d: the drop probability, writable, and the mask the last forward applied.

    `mask` is the multiplier of the last training-mode forward (0 where dropped, 1 / (1 - p) where kept),
    broadcastable to the input ((N, C, 1, 1) for Dropout2d), and None in eval mode: the engine drives torch's
    dropout with it so that both frameworks drop the same units."""

    p: float

    @property
    def mask(self) -> np.ndarray | None: ...


@runtime_checkable
class Loss(Protocol):
    """CrossEntropyLoss: mean loss of logits (N, K) against integer targets (N,), and its logits gradient."""

    def __call__(self, logits: np.ndarray, targets: np.ndarray) -> np.ndarray: ...

    def backward(self, grad_loss: float = 1.0) -> np.ndarray: ...


@runtime_checkable
class Optimizer(Protocol):
    """SGD and Adam over objects with `.data` (updated in place) and `.grad` (None: skipped), as torch.optim.

    Where it has a `state` attribute it is compared too: a mapping from parameter position to named slots
    (`momentum_buffer`; `step`, `exp_avg`, `exp_avg_sq`), like torch's `optimizer.state_dict()["state"]`."""

    lr: float

    def step(self) -> None: ...

    def zero_grad(self) -> None: ...


@runtime_checkable
class Scheduler(Protocol):
    """StepLR: one step() per epoch, multiplying the optimizer's `lr` by gamma every step_size epochs."""

    def step(self) -> None: ...


def missing_members(obj: object, protocol: type) -> list[str]:
    """The members of `protocol` (methods and attributes) that `obj` lacks: empty when it satisfies it."""
    return sorted(name for name in protocol_members(protocol) if not hasattr(obj, name))


def protocol_members(protocol: type) -> set[str]:
    """The names a protocol class and its protocol bases declare (`__call__` included)."""
    names: set[str] = set()
    for base in protocol.__mro__:
        if getattr(base, "_is_protocol", False) and base is not Protocol:
            names.update(name for name in vars(base) if not name.startswith("_") or name == "__call__")
            names.update(getattr(base, "__annotations__", {}))
    return names
