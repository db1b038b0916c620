"""Layers that hold their torch.nn twin: the plumbing the torch.compile and ONNX Runtime adapters share.

Each layer object holds a torch module (`.torch`): torch.nn's own layer, torchvision's BasicBlock / Bottleneck /
InvertedResidual, or `reference.zoo.torch_nn.ResidualBlock`. Containers compose their children's torch modules
(`Sequential` holds a `torch.nn.Sequential` of them), so a zoo model built from an adapter is one torch module,
which the adapter runs as a whole (compiled, or exported to ONNX). Parameters are `TwinParameter`s whose `.data`
and `.grad` are NumPy views of the torch tensors; state_dict, load_state_dict, train/eval and `to` are torch's.
How a layer runs (forward, backward, the dropout mask) is the adapter's: `layer_classes(Base)` builds the
namespace's classes over an adapter's `Base(TwinModule)`.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterator, Mapping

import numpy as np
import torch

TORCH_DTYPES = {np.dtype(np.float32): torch.float32, np.dtype(np.float64): torch.float64}
TORCH_LAYERS = ("Conv2d", "Linear", "ReLU", "ReLU6", "Hardtanh", "MaxPool2d", "AvgPool2d", "AdaptiveAvgPool2d",
                "AdaptiveMaxPool2d", "BatchNorm2d", "Dropout", "Dropout2d", "Flatten", "Identity")


class TwinParameter:
    """A parameter of a torch module as the engine sees it: `.data` and `.grad` NumPy views of its tensors.

    Assigning `.data` copies into the tensor (optimizers update in place or by assignment); assigning `.grad`
    replaces the tensor's gradient. The tensor is looked up by name on each access, so `to(dtype)` is seen."""

    __slots__ = ("_owner", "_name")

    def __init__(self, owner: torch.nn.Module, name: str):
        self._owner, self._name = owner, name

    @property
    def tensor(self) -> torch.nn.Parameter:
        return self._owner._parameters[self._name]

    @property
    def data(self) -> np.ndarray:
        return self.tensor.detach().numpy()

    @data.setter
    def data(self, value) -> None:
        with torch.no_grad():
            self.tensor.copy_(torch.from_numpy(np.array(value, copy=True)))

    @property
    def grad(self) -> np.ndarray | None:
        grad = self.tensor.grad
        return None if grad is None else grad.detach().numpy()

    @grad.setter
    def grad(self, value) -> None:
        self.tensor.grad = None if value is None else torch.from_numpy(np.array(value, dtype=self.dtype, copy=True))

    @property
    def shape(self) -> tuple[int, ...]:
        return tuple(self.tensor.shape)

    @property
    def dtype(self) -> np.dtype:
        return self.data.dtype

    def __repr__(self) -> str:
        return f"TwinParameter({self._name}, shape={self.shape}, dtype={self.dtype})"


def to_tensor(array) -> torch.Tensor:
    """A CPU tensor holding a copy of a NumPy array (0-d stays 0-d)."""
    return torch.from_numpy(np.array(array, copy=True))


def to_numpy(tensor):
    """A NumPy copy of a tensor (or of each tensor of a tuple, e.g. a pool's (output, indices))."""
    if isinstance(tensor, tuple):
        return tuple(to_numpy(t) for t in tensor)
    return tensor.detach().numpy().copy()


class TwinModule:
    """A layer holding its torch twin; `forward` / `backward` are the adapter's (subclasses of this class).

    `children`: the namespace objects of the torch module's children, by name (a container's); the children
    nobody gave (a block's own convolutions) are wrapped in the adapter's generic class."""

    def __init__(self, module: torch.nn.Module, children: Mapping[str, TwinModule] | None = None):
        given = {id(child.torch): child for child in (children or {}).values()}
        self.torch = module
        self._children = OrderedDict((name, given.get(id(child)) or _generic(type(self))(child))
                                     for name, child in module.named_children())

    # -- calling ----------------------------------------------------------------------------------------------
    def __call__(self, x):
        return self.forward(x)

    def forward(self, x):
        raise NotImplementedError(f"{type(self).__name__}: the adapter defines forward")

    def backward(self, grad_out):
        raise NotImplementedError(f"{type(self).__name__}: the adapter defines backward")

    # -- structure --------------------------------------------------------------------------------------------
    def __getattr__(self, name: str):
        children = self.__dict__.get("_children", {})
        if name in children:
            return children[name]
        raise AttributeError(f"{type(self).__name__} has no attribute {name!r}")

    def named_modules(self, prefix: str = "") -> Iterator[tuple[str, TwinModule]]:
        yield prefix, self
        for name, child in self._children.items():
            yield from child.named_modules(f"{prefix}.{name}" if prefix else name)

    def modules(self) -> Iterator[TwinModule]:
        return (module for _, module in self.named_modules())

    def children(self) -> Iterator[TwinModule]:
        return iter(self._children.values())

    def named_parameters(self) -> Iterator[tuple[str, TwinParameter]]:
        """(name, parameter) in torch's order, names as the state_dict keys."""
        for prefix, module in self.torch.named_modules():
            for name, param in module._parameters.items():
                if param is not None:
                    yield (f"{prefix}.{name}" if prefix else name), TwinParameter(module, name)

    def parameters(self) -> Iterator[TwinParameter]:
        return (param for _, param in self.named_parameters())

    def named_buffers(self) -> Iterator[tuple[str, np.ndarray]]:
        return ((name, buffer.detach().numpy()) for name, buffer in self.torch.named_buffers())

    # -- state, modes, dtype ----------------------------------------------------------------------------------
    def state_dict(self) -> OrderedDict[str, np.ndarray]:
        return OrderedDict((key, to_numpy(value)) for key, value in self.torch.state_dict().items())

    def load_state_dict(self, state_dict: Mapping, strict: bool = True):
        """torch's load_state_dict (copies into the tensors, keeping their dtype) from NumPy arrays or tensors."""
        return self.torch.load_state_dict({key: torch.as_tensor(np.asarray(value) if not torch.is_tensor(value)
                                                                else value) for key, value in state_dict.items()},
                                          strict=strict)

    @property
    def training(self) -> bool:
        return self.torch.training

    def train(self, mode: bool = True) -> TwinModule:
        self.torch.train(mode)
        return self

    def eval(self) -> TwinModule:
        return self.train(False)

    def zero_grad(self) -> None:
        self.torch.zero_grad(set_to_none=True)

    def to(self, dtype) -> TwinModule:
        """float32 or float64, as torch's `module.to(dtype)`."""
        dtype = np.dtype(dtype)
        if dtype not in TORCH_DTYPES:
            raise NotImplementedError(f"{type(self).__name__}.to: {dtype}: the layer contract has float32 and float64")
        self.torch.to(TORCH_DTYPES[dtype])
        return self

    def float(self) -> TwinModule:
        return self.to(np.float32)

    def double(self) -> TwinModule:
        return self.to(np.float64)

    @property
    def dtype(self) -> np.dtype | None:
        return next((param.dtype for param in self.parameters()), None)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.torch!r})"


def _generic(base: type) -> type:
    """The adapter's generic class (its first TwinModule subclass in the MRO that defines forward)."""
    return next(cls for cls in base.__mro__ if "forward" in vars(cls) and issubclass(cls, TwinModule))


def is_dropout(module: torch.nn.Module) -> bool:
    return isinstance(module, torch.nn.modules.dropout._DropoutNd)


def dropouts(module: torch.nn.Module) -> list[str]:
    """The names of the dropout modules inside `module` (itself included, as "") that drop something (p > 0)."""
    return [name for name, child in module.named_modules() if is_dropout(child) and child.p > 0]


# -- the namespace's classes: torch's constructors over an adapter's base class ---------------------------------

class _TorchLayer:
    """torch.nn.<name>(*args, **kwargs): torch's arguments, defaults and validation."""

    torch_name = ""

    def __init__(self, *args, **kwargs):
        super().__init__(getattr(torch.nn, self.torch_name)(*args, **kwargs))


class _Dropout(_TorchLayer):
    """p (writable: the engine switches dropout off) and `mask`, the multiplier of the last training forward."""

    _mask = None

    @property
    def p(self) -> float:
        return self.torch.p

    @p.setter
    def p(self, value: float) -> None:
        self.torch.p = value

    @property
    def mask(self) -> np.ndarray | None:
        return self._mask if self.training else None


class _Sequential:
    """Modules applied in order, named "0", "1", ... or by an OrderedDict; holds a torch.nn.Sequential of theirs."""

    def __init__(self, *modules):
        named = list(modules[0].items()) if len(modules) == 1 and isinstance(modules[0], Mapping) else \
            [(str(index), module) for index, module in enumerate(modules)]
        for name, module in named:
            if not isinstance(module, TwinModule):
                raise TypeError(f"Sequential: {name!r} is a {type(module).__name__}, not a layer of this namespace")
        super().__init__(torch.nn.Sequential(OrderedDict((name, module.torch) for name, module in named)),
                         OrderedDict(named))

    def __getitem__(self, index: int) -> TwinModule:
        return list(self._children.values())[index]

    def __len__(self) -> int:
        return len(self._children)

    def __iter__(self) -> Iterator[TwinModule]:
        return iter(self._children.values())


def _torch_of(value):
    """A namespace module's torch module (a block's downsample); anything else as given."""
    return value.torch if isinstance(value, TwinModule) else value


def _norm_layer(norm_layer):
    """torchvision's norm_layer argument: None, a torch class, or a class of this namespace (its torch module)."""
    if isinstance(norm_layer, type) and issubclass(norm_layer, TwinModule):
        return lambda channels: norm_layer(channels).torch
    return norm_layer


class _BasicBlock:
    """torchvision.models.resnet.BasicBlock with its constructor arguments; downsample a namespace module."""

    def __init__(self, inplanes, planes, stride=1, downsample=None, groups=1, base_width=64, dilation=1,
                 norm_layer=None):
        from torchvision.models.resnet import BasicBlock

        block = BasicBlock(inplanes, planes, stride, _torch_of(downsample), groups, base_width, dilation,
                           _norm_layer(norm_layer))
        super().__init__(block, {"downsample": downsample} if isinstance(downsample, TwinModule) else None)


class _Bottleneck:
    """torchvision.models.resnet.Bottleneck with its constructor arguments; downsample a namespace module."""

    def __init__(self, inplanes, planes, stride=1, downsample=None, groups=1, base_width=64, dilation=1,
                 norm_layer=None):
        from torchvision.models.resnet import Bottleneck

        block = Bottleneck(inplanes, planes, stride, _torch_of(downsample), groups, base_width, dilation,
                           _norm_layer(norm_layer))
        super().__init__(block, {"downsample": downsample} if isinstance(downsample, TwinModule) else None)


class _InvertedResidual:
    """torchvision.models.mobilenetv2.InvertedResidual(inp, oup, stride, expand_ratio, norm_layer=None)."""

    def __init__(self, inp, oup, stride, expand_ratio, norm_layer=None):
        from torchvision.models.mobilenetv2 import InvertedResidual

        super().__init__(InvertedResidual(inp, oup, stride, expand_ratio, _norm_layer(norm_layer)))


class _ResidualBlock:
    """The zoo's tiny_resnet block, y = relu(x + conv2(relu(conv1(x)))): reference.zoo.torch_nn.ResidualBlock."""

    def __init__(self, channels):
        from reference.zoo.torch_nn import ResidualBlock

        super().__init__(ResidualBlock(channels))


BLOCKS = {"Sequential": _Sequential, "BasicBlock": _BasicBlock, "Bottleneck": _Bottleneck,
          "InvertedResidual": _InvertedResidual, "ResidualBlock": _ResidualBlock}


def layer_classes(base: type[TwinModule], **specials: type) -> dict[str, type]:
    """The namespace's layer classes over the adapter's `base`: {name: class}, torch's constructors.

    `specials`: name -> a mixin of the adapter's placed before the shared one (e.g. Dropout's mask logic)."""
    classes = {}
    for name in (*TORCH_LAYERS, *BLOCKS):
        shared = BLOCKS.get(name) or (_Dropout if name in ("Dropout", "Dropout2d") else _TorchLayer)
        bases = (*((specials[name],) if name in specials else ()), shared, base)
        doc = (shared.__doc__ if name in BLOCKS else f"torch.nn.{name}, run by {base.__module__}")
        classes[name] = type(name, bases, {"torch_name": name, "__module__": base.__module__, "__qualname__": name,
                                           "__doc__": doc})
    return classes


def unavailable_classes(reason: str, *others: str) -> dict[str, type]:
    """Stand-ins for the layers (and `others`) whose constructors raise NotImplementedError(reason): the framework
    cannot run here."""
    def refuse(self, *args, **kwargs):
        raise NotImplementedError(reason)

    return {name: type(name, (), {"__init__": refuse, "forward": refuse, "backward": refuse, "__doc__": reason})
            for name in (*TORCH_LAYERS, *BLOCKS, *others)}
