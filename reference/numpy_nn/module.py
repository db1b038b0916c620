"""The NumPy `Module` base class: parameter and buffer registration, state_dict, modes, dtype moves.

It mirrors `torch.nn.Module` closely enough that a state_dict copies between the twins with no renaming.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterator, Mapping

import numpy as np

from .validation import StateDictError, check_float_dtype, check_grad_out, check_input

FLOAT_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))


class Parameter:
    """A trainable array (`data`) and its accumulated gradient (`grad`, None until a backward)."""

    __slots__ = ("data", "grad")

    def __init__(self, data: np.ndarray):
        self.data = data
        self.grad: np.ndarray | None = None

    @property
    def shape(self) -> tuple[int, ...]:
        return self.data.shape

    @property
    def dtype(self) -> np.dtype:
        return self.data.dtype

    def accumulate_grad(self, grad: np.ndarray) -> None:
        """Add `grad` to the stored gradient, as autograd accumulates into `.grad`."""
        if self.grad is None:
            self.grad = grad.copy()
        else:
            self.grad += grad

    def __repr__(self) -> str:
        return f"Parameter(shape={self.data.shape}, dtype={self.data.dtype})"


class Module:
    """Base class of every NumPy layer and model: subclasses define `forward` and `backward`."""

    # False: nothing wants the gradient of the last input, and a layer whose input gradient is costly (Conv2d)
    # returns None from `backward` instead, as torch skips it for an input that does not require grad.
    needs_input_grad = True

    def __init__(self) -> None:
        object.__setattr__(self, "_parameters", OrderedDict())
        object.__setattr__(self, "_buffers", OrderedDict())
        object.__setattr__(self, "_modules", OrderedDict())
        object.__setattr__(self, "training", True)

    # -- registration -------------------------------------------------------------------------
    def __setattr__(self, name: str, value) -> None:
        if isinstance(value, Parameter) or (value is None and name in self._parameters):
            self._parameters[name] = value
        elif isinstance(value, Module):
            self._modules[name] = value
        elif name in self._buffers:
            self._buffers[name] = value
        else:
            object.__setattr__(self, name, value)

    def __getattr__(self, name: str):
        for registry in ("_parameters", "_buffers", "_modules"):
            table = self.__dict__.get(registry)
            if table is not None and name in table:
                return table[name]
        raise AttributeError(f"{type(self).__name__} has no attribute {name!r}")

    def register_buffer(self, name: str, array: np.ndarray | None) -> None:
        """Register persistent state that is not trained (e.g. BatchNorm running statistics); None (absent, as
        torch's BatchNorm without tracked statistics) is left out of state_dict, named_buffers and `to`."""
        self._buffers[name] = array

    # -- calling ------------------------------------------------------------------------------
    def forward(self, x: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def backward(self, grad_out: np.ndarray) -> np.ndarray:
        """Return the gradient w.r.t. the last forward's input; add parameter gradients to `.grad`."""
        raise NotImplementedError

    def __call__(self, x: np.ndarray) -> np.ndarray:
        return self.forward(x)

    # -- traversal ----------------------------------------------------------------------------
    def named_modules(self, prefix: str = "") -> Iterator[tuple[str, Module]]:
        yield prefix, self
        for name, child in self._modules.items():
            yield from child.named_modules(f"{prefix}.{name}" if prefix else name)

    def modules(self) -> Iterator[Module]:
        for _, module in self.named_modules():
            yield module

    def children(self) -> Iterator[Module]:
        yield from self._modules.values()

    def named_parameters(self) -> Iterator[tuple[str, Parameter]]:
        for prefix, module in self.named_modules():
            for name, param in module._parameters.items():
                if param is not None:
                    yield (f"{prefix}.{name}" if prefix else name), param

    def parameters(self) -> Iterator[Parameter]:
        for _, param in self.named_parameters():
            yield param

    def named_buffers(self) -> Iterator[tuple[str, np.ndarray]]:
        for prefix, module in self.named_modules():
            for name, buf in module._buffers.items():
                if buf is not None:
                    yield (f"{prefix}.{name}" if prefix else name), buf

    # -- modes and gradients ------------------------------------------------------------------
    def train(self, mode: bool = True) -> Module:
        for module in self.modules():
            object.__setattr__(module, "training", mode)
        return self

    def eval(self) -> Module:
        return self.train(False)

    def zero_grad(self) -> None:
        """Drop every parameter gradient (torch's default `set_to_none=True`)."""
        for param in self.parameters():
            param.grad = None

    # -- state --------------------------------------------------------------------------------
    def _state_entries(self) -> Iterator[tuple[str, Module, str, bool]]:
        """(key, owner, local name, is_parameter) in torch's state_dict order."""
        for prefix, module in self.named_modules():
            for name, param in module._parameters.items():
                if param is not None:
                    yield (f"{prefix}.{name}" if prefix else name), module, name, True
            for name, buf in module._buffers.items():
                if buf is not None:
                    yield (f"{prefix}.{name}" if prefix else name), module, name, False

    def state_dict(self) -> OrderedDict[str, np.ndarray]:
        """Copies of every parameter and buffer, keyed and ordered as the PyTorch twin's."""
        state = OrderedDict()
        for key, module, name, is_param in self._state_entries():
            value = module._parameters[name].data if is_param else module._buffers[name]
            state[key] = np.array(value, copy=True)
        return state

    def load_state_dict(self, state_dict: Mapping, strict: bool = True) -> None:
        """Copy arrays (or torch tensors) into this module; all or nothing, keeping each target's dtype."""
        entries = {key: (module, name, is_param) for key, module, name, is_param in self._state_entries()}
        missing = [key for key in entries if key not in state_dict]
        unexpected = [key for key in state_dict if key not in entries]
        problems = []
        if strict and missing:
            problems.append(f"missing keys: {missing}")
        if strict and unexpected:
            problems.append(f"unexpected keys: {unexpected}")
        converted = {}
        for key in entries.keys() & state_dict.keys():
            module, name, is_param = entries[key]
            target = module._parameters[name].data if is_param else module._buffers[name]
            value = _as_numpy(state_dict[key])
            if value.shape != target.shape:
                problems.append(f"{key}: expected shape {target.shape}, got {value.shape}")
            elif not (np.issubdtype(value.dtype, np.number) or value.dtype == np.bool_):
                problems.append(f"{key}: expected a numeric array, got dtype {value.dtype}")
            else:
                converted[key] = value.astype(target.dtype, copy=True)
        if problems:
            raise StateDictError(
                f"{type(self).__name__}.load_state_dict: " + "; ".join(problems) + " (module left unchanged)"
            )
        for key, value in converted.items():
            module, name, is_param = entries[key]
            if is_param:
                module._parameters[name].data = value
            else:
                module._buffers[name] = value

    def to(self, dtype) -> Module:
        """Cast floating parameters, gradients and buffers to float32 or float64 (like `module.to(dtype)`)."""
        dtype = np.dtype(dtype)
        if dtype not in FLOAT_DTYPES:
            raise TypeError(f"{type(self).__name__}.to: expected float32 or float64, got {dtype}")
        for module in self.modules():
            for param in module._parameters.values():
                if param is not None:
                    param.data = param.data.astype(dtype)
                    if param.grad is not None:
                        param.grad = param.grad.astype(dtype)
            for name, buf in module._buffers.items():
                if buf is not None and buf.dtype in FLOAT_DTYPES:
                    module._buffers[name] = buf.astype(dtype)
        return self

    def float(self) -> Module:
        return self.to(np.float32)

    def double(self) -> Module:
        return self.to(np.float64)

    @property
    def dtype(self) -> np.dtype | None:
        """The dtype of the first parameter (None for parameter-free modules)."""
        return next((p.dtype for p in self.parameters()), None)

    # -- display ------------------------------------------------------------------------------
    def extra_repr(self) -> str:
        return ""

    def __repr__(self) -> str:
        if not self._modules:
            return f"{type(self).__name__}({self.extra_repr()})"
        lines = [f"{type(self).__name__}("]
        for name, child in self._modules.items():
            child_lines = repr(child).splitlines()
            lines.append(f"  ({name}): {child_lines[0]}")
            lines.extend("  " + line for line in child_lines[1:])
        lines.append(")")
        return "\n".join(lines)


def _as_numpy(value) -> np.ndarray:
    """An ndarray view of a NumPy array, scalar or torch tensor (duck-typed: no torch import here)."""
    if hasattr(value, "detach"):
        value = value.detach().cpu().numpy()
    return np.asarray(value)


class Sequential(Module):
    """Modules applied in order, named "0", "1", ... or by an OrderedDict, as in `torch.nn.Sequential`."""

    def __init__(self, *modules: Module):
        super().__init__()
        if len(modules) == 1 and isinstance(modules[0], Mapping):
            named = list(modules[0].items())
        else:
            named = [(str(index), module) for index, module in enumerate(modules)]
        for name, module in named:
            if not isinstance(module, Module):
                raise TypeError(f"Sequential: {name!r} is a {type(module).__name__}, expected a numpy_nn Module")
            self._modules[name] = module

    def __getitem__(self, index: int) -> Module:
        return list(self._modules.values())[index]

    def __len__(self) -> int:
        return len(self._modules)

    def __iter__(self) -> Iterator[Module]:
        return iter(self._modules.values())

    def forward(self, x: np.ndarray) -> np.ndarray:
        for module in self._modules.values():
            x = module(x)
        return x

    def backward(self, grad_out: np.ndarray) -> np.ndarray:
        for module in reversed(self._modules.values()):
            grad_out = module.backward(grad_out)
        return grad_out


def input_layer(model: Module) -> Module | None:
    """The layer that alone reads `model`'s input: the first leaf of nested plain Sequentials (None when the model
    is not one; any other container may read its input in several places)."""
    layer = model
    while type(layer) is Sequential:
        if not len(layer):
            return None
        layer = layer[0]
    return None if layer is model else layer


class Identity(Module):
    """Returns its input unchanged (used where a twin drops a layer, e.g. the small-image stem's pool)."""

    def forward(self, x: np.ndarray) -> np.ndarray:
        return x

    def backward(self, grad_out: np.ndarray) -> np.ndarray:
        return grad_out


class Flatten(Module):
    """Flattens dims `start_dim..end_dim` into one, as `torch.nn.Flatten` (default: all but the batch)."""

    def __init__(self, start_dim: int = 1, end_dim: int = -1):
        super().__init__()
        for name, value in (("start_dim", start_dim), ("end_dim", end_dim)):
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
                raise TypeError(f"Flatten: {name} must be an int, got {value!r}")
        self.start_dim = start_dim
        self.end_dim = end_dim
        self._input_shape: tuple[int, ...] | None = None
        self._output: tuple[tuple[int, ...], np.dtype] = (None, None)  # shape and dtype of the last output

    def _dims(self, x: np.ndarray) -> tuple[int, int]:
        """start_dim and end_dim as non-negative axes of x (a 0-d input counts as 1-d, as torch), checked."""
        ndim = max(x.ndim, 1)
        if not (-ndim <= self.start_dim < ndim and -ndim <= self.end_dim < ndim):
            raise ValueError(f"{self!r}: dims out of range for input of shape {x.shape} (expected in "
                             f"[{-ndim}, {ndim - 1}])")
        start, end = self.start_dim % ndim, self.end_dim % ndim
        if start > end:
            raise ValueError(f"{self!r}: start_dim {self.start_dim} comes after end_dim {self.end_dim} "
                             f"for input of shape {x.shape}")
        return start, end

    def forward(self, x: np.ndarray) -> np.ndarray:
        check_float_dtype("Flatten", x)
        check_input("Flatten", x)
        start, end = self._dims(x)
        self._input_shape = x.shape
        out = x.reshape(x.shape[:start] + (-1,) + x.shape[end + 1 :]) if x.ndim else x.reshape(1)
        self._output = (out.shape, out.dtype)
        return out

    def backward(self, grad_out: np.ndarray) -> np.ndarray:
        check_grad_out("Flatten", grad_out, *self._output)
        return grad_out.reshape(self._input_shape)

    def extra_repr(self) -> str:
        return f"start_dim={self.start_dim}, end_dim={self.end_dim}"
