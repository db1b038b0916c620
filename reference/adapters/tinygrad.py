"""tinygrad's own layers as a layer namespace: `python -m reference conform reference.adapters.tinygrad`.

Every layer is tinygrad's (`tinygrad.nn.Conv2d`, `BatchNorm`, `Linear`, Tensor's pooling, activations, dropout and
losses, `tinygrad.nn.optim`'s SGD and Adam), run lazily on tinygrad's CPU device (kernels compiled by clang).
The adapter only translates:
- arrays: NumPy in and out; a module's parameters and buffers are NumPy arrays (its state_dict, torch's keys and
  shapes) handed to tinygrad as tensors at each forward;
- gradients: tinygrad's autodiff (`Tensor.gradient`) of the whole composition, built at the forward against an
  upstream-gradient buffer that `backward(grad_out)` fills: one backward per forward;
- conventions: the padding forms, unbatched inputs, adaptive pooling windows, the loss functions by argument, the
  dropout mask (tinygrad's dropout of ones under the same seed), the optimizer state slots (see each class).
Layout and argument conventions already agree (NCHW, OIHW, torch's BatchNorm momentum and unbiased running
variance), so most layers are handed their torch arguments unchanged. Whatever tinygrad lacks raises
NotImplementedError naming it.
"""

from __future__ import annotations

import math
import os
import shutil
from collections import OrderedDict
from collections.abc import Mapping

import numpy as np

from reference.adapters import not_installed
from reference.adapters._blocks import basic_block_layers, bottleneck_layers

FRAMEWORK = "tinygrad"
EXTRA = "tinygrad"
# tinygrad schedules and compiles every new shape (1-5 s per example on 2 cores): the engine's floor of 3 examples
# per drawn check. The model tier (whole zoo models, not drawn) takes most of a full run regardless.
MAX_EXAMPLES = 3

try:
    from tinygrad import Tensor, dtypes
    from tinygrad import nn as tnn
    from tinygrad.helpers import Context, resolve_pool_pads
    from tinygrad.nn import optim as toptim
except ImportError as error:  # the adapter imports without its framework; every class then refuses
    UNAVAILABLE: str | None = not_installed(FRAMEWORK, EXTRA, error)
else:
    _CC = os.environ.get("CC", "clang")  # tinygrad's CPU device compiles its kernels with $CC (default clang)
    UNAVAILABLE = None if shutil.which(_CC) else (
        f"tinygrad's CPU device compiles its kernels with {_CC!r}, which is not installed; install clang "
        "(apt-get install clang) or set CC to a C compiler")

FLOAT_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))


def versions() -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return {"tinygrad": version("tinygrad")}
    except PackageNotFoundError:
        return {}


def _available() -> None:
    if UNAVAILABLE is not None:
        raise NotImplementedError(UNAVAILABLE)


def _refuse(owner: str, **options) -> None:
    """torch arguments tinygrad has no counterpart for: each must keep its torch default (given here)."""
    for name, (value, default) in options.items():
        if value is not default and value != default:
            raise NotImplementedError(f"{owner}: tinygrad has no {name}={value!r} (only torch's default {default!r})")


def _tensor(array) -> Tensor:
    """A tinygrad tensor holding a copy of a NumPy array (its dtype kept)."""
    return Tensor(np.array(array, copy=True, order="C"))


def _numpy_dtype(dtype) -> np.dtype:
    return np.dtype(np.float64) if dtype == dtypes.float64 else np.dtype(np.float32)


def _float_input(owner: str, x) -> np.ndarray:
    x = np.asarray(x)
    if x.dtype not in FLOAT_DTYPES:
        raise TypeError(f"{owner}: expected a float32 or float64 array, got {x.dtype}")
    return x


# -- parameters and the module base ----------------------------------------------------------------------------

class Parameter:
    """A trainable NumPy array (`data`) and its accumulated gradient (`grad`). Until first read or loaded, `data` is
    tinygrad's initialisation of the layer (a lazy tensor: realized only if it is read)."""

    __slots__ = ("_data", "_init", "_dtype", "grad")

    def __init__(self, init: Tensor):
        self._data, self._init, self._dtype, self.grad = None, init, np.dtype(np.float32), None

    @property
    def data(self) -> np.ndarray:
        if self._data is None:
            self._data, self._init = self._init.numpy().astype(self._dtype), None
        return self._data

    @data.setter
    def data(self, value: np.ndarray) -> None:
        self._data, self._init = value, None

    @property
    def shape(self) -> tuple[int, ...]:
        return tuple(self._init.shape) if self._data is None else self._data.shape

    @property
    def dtype(self) -> np.dtype:
        return self._dtype if self._data is None else self._data.dtype

    def _cast(self, dtype: np.dtype) -> None:
        if self._data is None:
            self._dtype = dtype
        else:
            self._data = self._data.astype(dtype)
        if self.grad is not None:
            self.grad = self.grad.astype(dtype)

    def __repr__(self) -> str:
        return f"Parameter(shape={self.shape}, dtype={self.dtype})"


class Module:
    """torch.nn.Module's interface over NumPy state; subclasses build their tinygrad graph in `_graph`.

    forward(x) hands every parameter and buffer to tinygrad, builds the graph of the whole composition, builds its
    gradient (tinygrad's autodiff) against an upstream-gradient buffer, realizes the output and the updated buffers
    and returns the output; backward(grad_out) fills that buffer and realizes the gradients."""

    _layer = None  # the tinygrad layer object whose tensors are this module's parameters and buffers

    def __init__(self) -> None:
        _available()
        object.__setattr__(self, "_parameters", OrderedDict())
        object.__setattr__(self, "_buffers", OrderedDict())
        object.__setattr__(self, "_modules", OrderedDict())
        object.__setattr__(self, "training", True)
        object.__setattr__(self, "_tape", None)
        object.__setattr__(self, "_bound", {})

    def __setattr__(self, name: str, value) -> None:
        if isinstance(value, Parameter):
            self._parameters[name] = value
        elif isinstance(value, Module):
            self._modules[name] = value
        else:
            object.__setattr__(self, name, value)

    def __getattr__(self, name: str):
        for registry in ("_parameters", "_buffers", "_modules"):
            table = self.__dict__.get(registry)
            if table is not None and name in table:
                return table[name]
        raise AttributeError(f"{type(self).__name__} has no attribute {name!r}")

    # -- traversal, modes, state ------------------------------------------------------------------------------
    def named_modules(self, prefix: str = ""):
        yield prefix, self
        for name, child in self._modules.items():
            yield from child.named_modules(f"{prefix}.{name}" if prefix else name)

    def modules(self):
        return (module for _, module in self.named_modules())

    def children(self):
        return iter(self._modules.values())

    def named_parameters(self):
        for prefix, module in self.named_modules():
            for name, param in module._parameters.items():
                yield (f"{prefix}.{name}" if prefix else name), param

    def parameters(self):
        return (param for _, param in self.named_parameters())

    def named_buffers(self):
        for prefix, module in self.named_modules():
            for name, buf in module._buffers.items():
                yield (f"{prefix}.{name}" if prefix else name), buf

    def train(self, mode: bool = True):
        for module in self.modules():
            object.__setattr__(module, "training", bool(mode))
        return self

    def eval(self):
        return self.train(False)

    def zero_grad(self) -> None:
        for param in self.parameters():
            param.grad = None

    def _entries(self):
        """(key, module, local name, is_parameter) in torch's state_dict order."""
        for prefix, module in self.named_modules():
            for table, is_param in ((module._parameters, True), (module._buffers, False)):
                for name in table:
                    yield (f"{prefix}.{name}" if prefix else name), module, name, is_param

    def state_dict(self) -> OrderedDict:
        return OrderedDict((key, np.array(module._parameters[name].data if is_param else module._buffers[name],
                                          copy=True)) for key, module, name, is_param in self._entries())

    def load_state_dict(self, state_dict: Mapping, strict: bool = True):
        """Copy arrays (or torch tensors) in, all or nothing, keeping each target's dtype."""
        entries = {key: (module, name, is_param) for key, module, name, is_param in self._entries()}
        problems = []
        if strict and (missing := [key for key in entries if key not in state_dict]):
            problems.append(f"missing keys: {missing}")
        if strict and (unexpected := [key for key in state_dict if key not in entries]):
            problems.append(f"unexpected keys: {unexpected}")
        converted = {}
        for key in entries.keys() & state_dict.keys():
            module, name, is_param = entries[key]
            value = state_dict[key]
            value = np.asarray(value.detach().cpu().numpy() if hasattr(value, "detach") else value)
            target = module._parameters[name] if is_param else module._buffers[name]
            if value.shape != tuple(target.shape):
                problems.append(f"{key}: expected shape {tuple(target.shape)}, got {value.shape}")
            else:
                converted[key] = value.astype(target.dtype, copy=True)
        if problems:
            raise ValueError(f"{type(self).__name__}.load_state_dict: {'; '.join(problems)} (module left unchanged)")
        for key, value in converted.items():
            module, name, is_param = entries[key]
            if is_param:
                module._parameters[name].data = value
            else:
                module._buffers[name] = value
        return self

    def to(self, dtype):
        """float32 or float64: tinygrad's CPU device computes in either (a float64 tensor stays float64)."""
        dtype = np.dtype(dtype)
        if dtype not in FLOAT_DTYPES:
            raise NotImplementedError(f"{type(self).__name__}.to: float32 or float64 only, got {dtype}")
        for module in self.modules():
            for param in module._parameters.values():
                param._cast(dtype)
            for name, buf in module._buffers.items():
                if buf.dtype in FLOAT_DTYPES:
                    module._buffers[name] = buf.astype(dtype)
        return self

    def float(self):
        return self.to(np.float32)

    def double(self):
        return self.to(np.float64)

    # -- running: tinygrad's graph, tinygrad's gradient ----------------------------------------------------------
    def _bind(self) -> None:
        """Hand this module's parameters (and buffers) to tinygrad: fresh tensors, set on its layer object."""
        bound = {name: _tensor(param.data) for name, param in self._parameters.items()}
        object.__setattr__(self, "_bound", bound)
        for name, tensor in bound.items():
            if self._layer is not None:
                setattr(self._layer, name, tensor)

    def _graph(self, x: Tensor):
        raise NotImplementedError

    def _updated(self) -> list:
        """Tensors the forward writes besides its output (running statistics, dropout masks), realized with it."""
        return []

    def _unbind(self) -> None:
        """Copy what the forward updated back into NumPy."""

    def __call__(self, x):
        return self.forward(x)

    def forward(self, x):
        x = _float_input(type(self).__name__, x)
        modules = list({id(m): m for m in self.modules()}.values())
        for module in modules:
            module._bind()
        scalar = x.ndim == 0  # tinygrad holds no 0-d buffer: a 1-element one, viewed as 0-d
        x_t = _tensor(x.reshape(1) if scalar else x)
        result = self._graph(x_t.reshape(()) if scalar else x_t)
        out, indices = result if isinstance(result, tuple) else (result, None)
        bound = [(module._parameters[name], tensor) for module in modules for name, tensor in module._bound.items()]
        tape = _Tape(out, [x_t, *(tensor for _, tensor in bound)])
        Tensor.realize(out, *([] if indices is None else [indices]), *(t for m in modules for t in m._updated()))
        for module in modules:
            module._unbind()
        object.__setattr__(self, "_tape", (tape, [param for param, _ in bound], x.shape))
        value = out.numpy()
        # torch's indices are int64 (tinygrad's int32): the same flat positions within each (H, W) plane
        return value if indices is None else (value, indices.numpy().astype(np.int64))

    def backward(self, grad_out):
        """The gradient w.r.t. the last forward's input; parameter gradients are added to `param.grad`."""
        if self._tape is None:
            raise RuntimeError(f"{type(self).__name__}.backward called before forward")
        tape, params, shape = self._tape
        object.__setattr__(self, "_tape", None)
        grad_x, *grads = tape.gradients(grad_out)
        for param, grad in zip(params, grads, strict=True):
            param.grad = grad if param.grad is None else param.grad + grad
        return grad_x.reshape(shape)

    def extra_repr(self) -> str:
        return ""

    def __repr__(self) -> str:
        if not self._modules:
            return f"{type(self).__name__}({self.extra_repr()})"
        body = "\n".join(f"  ({name}): " + repr(child).replace("\n", "\n  ") for name, child in self._modules.items())
        return f"{type(self).__name__}(\n{body}\n)"


class _Tape:
    """tinygrad's gradient of `out` w.r.t. `inputs`, built before `out` is realized (its graph is then still
    there) against an upstream-gradient buffer; `gradients(upstream)` fills the buffer and realizes them (once)."""

    def __init__(self, out: Tensor, inputs: list):
        self.upstream = Tensor.empty(*out.shape, dtype=out.dtype).contiguous().realize()
        self.grads = out.gradient(*inputs, gradient=self.upstream) if inputs else []

    def gradients(self, upstream) -> list[np.ndarray]:
        if self.grads is None:
            raise RuntimeError("backward called twice for one forward: run the forward again")
        dtype = _numpy_dtype(self.upstream.dtype)
        self.upstream.assign(_tensor(np.broadcast_to(np.asarray(upstream, dtype=dtype), self.upstream.shape))).realize()
        grads, self.grads = self.grads, None
        if grads:
            Tensor.realize(*grads)
        return [grad.numpy() for grad in grads]


# -- layers ------------------------------------------------------------------------------------------------------

class Conv2d(Module):
    """tinygrad.nn.Conv2d. Translated: padding 'valid' is 0; padding_mode other than 'zeros' pads with tinygrad's
    Tensor.pad(mode=...) by the layer's own padding, then convolves unpadded (torch's definition); an unbatched
    (C, H, W) input gets a batch axis."""

    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0, dilation=1, groups=1, bias=True,
                 padding_mode="zeros", device=None, dtype=None):
        super().__init__()
        _refuse("Conv2d", device=(device, None), dtype=(dtype, None))
        if padding_mode not in ("zeros", "reflect", "replicate", "circular"):
            raise ValueError(f"Conv2d: padding_mode must be 'zeros', 'reflect', 'replicate' or 'circular', got "
                             f"{padding_mode!r}")
        if isinstance(padding, str) and padding not in ("same", "valid"):
            raise ValueError(f"Conv2d: padding must be 'same', 'valid' or numbers, got {padding!r}")
        self.padding_mode = padding_mode
        padding = 0 if padding == "valid" else padding  # torch's 'valid' is no padding
        self._layer = tnn.Conv2d(in_channels, out_channels, kernel_size, stride, padding, dilation, groups, bias)
        self.weight = Parameter(self._layer.weight)
        if bias:
            self.bias = Parameter(self._layer.bias)

    def _graph(self, x):
        layer = self._layer
        unbatched = x.ndim == 3  # tinygrad convolves batched input only
        x = x.unsqueeze(0) if unbatched else x
        if self.padding_mode == "zeros":
            out = layer(x)
        else:  # torch: F.pad(x, the layer's padding, mode) and an unpadded convolution
            pads = resolve_pool_pads(layer.padding, 2)
            out = x.pad(tuple(pads), mode=self.padding_mode).conv2d(layer.weight, layer.bias, layer.groups,
                                                                    layer.stride, layer.dilation, 0)
        return out.squeeze(0) if unbatched else out


class Linear(Module):
    """tinygrad.nn.Linear on (*, in_features)."""

    def __init__(self, in_features, out_features, bias=True, device=None, dtype=None):
        super().__init__()
        _refuse("Linear", device=(device, None), dtype=(dtype, None))
        self._layer = tnn.Linear(in_features, out_features, bias)
        self.weight = Parameter(self._layer.weight)
        if bias:
            self.bias = Parameter(self._layer.bias)

    def _graph(self, x):
        return self._layer(x)


class ReLU(Module):
    def __init__(self, inplace=False):
        super().__init__()
        _refuse("ReLU", inplace=(inplace, False))

    def _graph(self, x):
        return x.relu()


class ReLU6(Module):
    def __init__(self, inplace=False):
        super().__init__()
        _refuse("ReLU6", inplace=(inplace, False))

    def _graph(self, x):
        return x.relu6()


class Hardtanh(Module):
    def __init__(self, min_val=-1.0, max_val=1.0, inplace=False, min_value=None, max_value=None):
        super().__init__()
        _refuse("Hardtanh", inplace=(inplace, False), min_value=(min_value, None), max_value=(max_value, None))
        if max_val <= min_val:
            raise ValueError(f"Hardtanh: max_val ({max_val}) must be greater than min_val ({min_val})")
        self.min_val, self.max_val = min_val, max_val

    def _graph(self, x):
        return x.hardtanh(self.min_val, self.max_val)


class MaxPool2d(Module):
    """Tensor.max_pool2d (its indices: int64 as torch's)."""

    def __init__(self, kernel_size, stride=None, padding=0, dilation=1, return_indices=False, ceil_mode=False):
        super().__init__()
        self.kernel_size, self.stride, self.padding, self.dilation = kernel_size, stride, padding, dilation
        self.return_indices, self.ceil_mode = return_indices, ceil_mode

    def _graph(self, x):
        return x.max_pool2d(self.kernel_size, self.stride, self.dilation, self.padding, self.ceil_mode,
                            self.return_indices)


class AvgPool2d(Module):
    """Tensor.avg_pool2d; tinygrad has no divisor_override."""

    def __init__(self, kernel_size, stride=None, padding=0, ceil_mode=False, count_include_pad=True,
                 divisor_override=None):
        super().__init__()
        _refuse("AvgPool2d", divisor_override=(divisor_override, None))
        self.kernel_size, self.stride, self.padding = kernel_size, stride, padding
        self.ceil_mode, self.count_include_pad = ceil_mode, count_include_pad

    def _graph(self, x):
        return x.avg_pool2d(self.kernel_size, self.stride, 1, self.padding, self.ceil_mode, self.count_include_pad)


def _adaptive_window(owner: str, output_size, x) -> tuple[int, int]:
    """tinygrad has no adaptive pooling: where the output size divides the input size the adaptive windows are the
    fixed windows kernel = stride = input // output (None keeps a size: a window of 1); otherwise refused."""
    sizes = output_size if isinstance(output_size, (tuple, list)) else (output_size, output_size)
    window = []
    for size, out in zip(x.shape[-2:], sizes, strict=True):
        out = size if out is None else out
        if size % out:
            raise NotImplementedError(f"{owner}: tinygrad has no adaptive pooling; only output sizes that divide the "
                                      f"input size (a fixed window) translate to its pooling, got {size} -> {out}")
        window.append(size // out)
    return tuple(window)


class AdaptiveAvgPool2d(Module):
    """Tensor.avg_pool2d with the fixed window of a dividing output size (see _adaptive_window)."""

    def __init__(self, output_size):
        super().__init__()
        self.output_size = output_size

    def _graph(self, x):
        window = _adaptive_window("AdaptiveAvgPool2d", self.output_size, x)
        return x.avg_pool2d(window, window)


class AdaptiveMaxPool2d(Module):
    """Tensor.max_pool2d with the fixed window of a dividing output size (see _adaptive_window)."""

    def __init__(self, output_size, return_indices=False):
        super().__init__()
        self.output_size, self.return_indices = output_size, return_indices

    def _graph(self, x):
        window = _adaptive_window("AdaptiveMaxPool2d", self.output_size, x)
        return x.max_pool2d(window, window, return_indices=self.return_indices)


class BatchNorm2d(Module):
    """tinygrad.nn.BatchNorm2d: torch's momentum convention and unbiased running variance already; tinygrad has no
    cumulative average (momentum=None). Running statistics start at tinygrad's zeros / ones / 0."""

    def __init__(self, num_features, eps=1e-5, momentum=0.1, affine=True, track_running_stats=True, device=None,
                 dtype=None):
        super().__init__()
        _refuse("BatchNorm2d", device=(device, None), dtype=(dtype, None))
        if momentum is None:
            raise NotImplementedError("BatchNorm2d: tinygrad's BatchNorm has no cumulative moving average "
                                      "(momentum=None)")
        self.num_features, self.eps, self.momentum = num_features, eps, momentum
        self.affine, self.track_running_stats = affine, track_running_stats
        self._layer = tnn.BatchNorm2d(num_features, eps, affine, track_running_stats, momentum)
        if affine:
            self.weight = Parameter(self._layer.weight)
            self.bias = Parameter(self._layer.bias)
        if track_running_stats:
            self._buffers.update(running_mean=np.zeros(num_features, np.float32),
                                 running_var=np.ones(num_features, np.float32),
                                 num_batches_tracked=np.array(0, dtype=np.int64))

    def _bind(self):
        super()._bind()
        if self.track_running_stats:
            self._layer.running_mean = _tensor(self._buffers["running_mean"])
            self._layer.running_var = _tensor(self._buffers["running_var"])
            # a 0-d count: a view of a 1-element tensor (tinygrad holds no 0-d buffer to assign to)
            self._layer.num_batches_tracked = _tensor(self._buffers["num_batches_tracked"].reshape(1)).reshape(())

    def _graph(self, x):
        with Context(TRAINING=int(self.training)):
            return self._layer(x)

    def _updated(self):
        layer = self._layer
        return [layer.running_mean, layer.running_var, layer.num_batches_tracked] if self._tracking() else []

    def _tracking(self) -> bool:
        return self.training and self.track_running_stats

    def _unbind(self):
        if self._tracking():
            layer = self._layer
            self._buffers.update(running_mean=layer.running_mean.numpy(), running_var=layer.running_var.numpy(),
                                 num_batches_tracked=np.array(layer.num_batches_tracked.numpy(), dtype=np.int64))


_SEEDS = np.random.default_rng()  # the seeds dropout reseeds tinygrad's RNG with


class Dropout(Module):
    """Tensor.dropout. `mask` is tinygrad's dropout of ones under the seed the forward's dropout drew with (each
    training forward reseeds tinygrad's RNG, Tensor.manual_seed, from the adapter's generator)."""

    def __init__(self, p=0.5, inplace=False):
        super().__init__()
        _refuse(type(self).__name__, inplace=(inplace, False))
        if not 0.0 <= p <= 1.0:
            raise ValueError(f"{type(self).__name__}: p must be in [0, 1], got {p}")
        self.p = p
        self._mask_t, self._mask = None, None

    @property
    def mask(self):
        return self._mask

    def _graph(self, x):
        self._mask_t = None
        with Context(TRAINING=int(self.training)):
            if not self.training:
                return x.dropout(self.p)
            seed = int(_SEEDS.integers(2**31))
            Tensor.manual_seed(seed)
            out = x.dropout(self.p)
            Tensor.manual_seed(seed)  # the same draw, on ones: 0 where dropped, 1 / (1 - p) where kept
            self._mask_t = x.ones_like().dropout(self.p)
        return out

    def _updated(self):
        return [] if self._mask_t is None else [self._mask_t]

    def _unbind(self):
        self._mask = None if self._mask_t is None else self._mask_t.numpy()


class Dropout2d(Dropout):
    """tinygrad has no channel-wise dropout: only where it is the identity (eval mode, or p = 0) is this layer
    tinygrad's dropout (then also the identity); a training forward with p > 0 is refused."""

    def _graph(self, x):
        self._mask_t = None
        if self.training and self.p > 0:
            raise NotImplementedError("Dropout2d: tinygrad has no channel-wise dropout (whole channels zeroed); only "
                                      "eval mode or p=0 (the identity) is supported")
        with Context(TRAINING=int(self.training)):
            if self.training:  # p = 0: tinygrad's dropout keeps every channel
                self._mask_t = Tensor.ones(*x.shape[:2], *([1] * (x.ndim - 2)), dtype=x.dtype).dropout(self.p)
            return x.dropout(self.p)


class Flatten(Module):
    def __init__(self, start_dim=1, end_dim=-1):
        super().__init__()
        self.start_dim, self.end_dim = start_dim, end_dim

    def _graph(self, x):
        return x.flatten(self.start_dim, self.end_dim)


class Identity(Module):
    def __init__(self, *args, **kwargs):
        super().__init__()

    def _graph(self, x):
        return x


class Sequential(Module):
    """Modules applied in order, named "0", "1", ... or by an OrderedDict, in one tinygrad graph."""

    def __init__(self, *modules):
        super().__init__()
        named = list(modules[0].items()) if len(modules) == 1 and isinstance(modules[0], Mapping) else \
            [(str(index), module) for index, module in enumerate(modules)]
        for name, module in named:
            if not isinstance(module, Module):
                raise TypeError(f"Sequential: {name!r} is a {type(module).__name__}, not a module of this namespace")
            self._modules[name] = module

    def __getitem__(self, index):
        return list(self._modules.values())[index]

    def __len__(self):
        return len(self._modules)

    def __iter__(self):
        return iter(self._modules.values())

    def _graph(self, x):
        for module in self._modules.values():
            x = module._graph(x)
        return x


# -- blocks: tinygrad graphs of the namespace's layers ----------------------------------------------------------

class ResidualBlock(Module):
    """y = relu(x + conv2(relu(conv1(x)))) with 3x3 same-padding convolutions (tiny_resnet's block)."""

    def __init__(self, channels):
        super().__init__()
        self.conv1 = Conv2d(channels, channels, 3, padding=1)
        self.conv2 = Conv2d(channels, channels, 3, padding=1)

    def _graph(self, x):
        return (x + self.conv2._graph(self.conv1._graph(x).relu())).relu()


class BasicBlock(Module):
    """torchvision's BasicBlock (its constructor and state_dict keys)."""

    expansion = 1

    def __init__(self, inplanes, planes, stride=1, downsample=None, groups=1, base_width=64, dilation=1,
                 norm_layer=None):
        super().__init__()
        _refuse("BasicBlock", norm_layer=(norm_layer, None))
        basic_block_layers(self, Conv2d, BatchNorm2d, inplanes, planes, stride, downsample, groups, base_width,
                           dilation)

    def _graph(self, x):
        out = self.bn2._graph(self.conv2._graph(self.bn1._graph(self.conv1._graph(x)).relu()))
        shortcut = self.downsample._graph(x) if "downsample" in self._modules else x
        return (out + shortcut).relu()


class Bottleneck(Module):
    """torchvision's Bottleneck (ResNet-50; ResNeXt with groups and base_width)."""

    expansion = 4

    def __init__(self, inplanes, planes, stride=1, downsample=None, groups=1, base_width=64, dilation=1,
                 norm_layer=None):
        super().__init__()
        _refuse("Bottleneck", norm_layer=(norm_layer, None))
        bottleneck_layers(self, Conv2d, BatchNorm2d, inplanes, planes, stride, downsample, groups, base_width,
                          dilation)

    def _graph(self, x):
        out = self.bn1._graph(self.conv1._graph(x)).relu()
        out = self.bn2._graph(self.conv2._graph(out)).relu()
        out = self.bn3._graph(self.conv3._graph(out))
        shortcut = self.downsample._graph(x) if "downsample" in self._modules else x
        return (out + shortcut).relu()


def _conv_norm_relu6(in_channels, out_channels, kernel_size, stride=1, groups=1):
    """torchvision's Conv2dNormActivation as MobileNetV2 builds it (conv without bias, batch norm, ReLU6)."""
    return Sequential(Conv2d(in_channels, out_channels, kernel_size, stride, (kernel_size - 1) // 2, groups=groups,
                             bias=False), BatchNorm2d(out_channels), ReLU6())


class InvertedResidual(Module):
    """torchvision's MobileNetV2 block (its constructor and state_dict keys)."""

    def __init__(self, inp, oup, stride, expand_ratio, norm_layer=None):
        super().__init__()
        _refuse("InvertedResidual", norm_layer=(norm_layer, None))
        if stride not in (1, 2):
            raise ValueError(f"stride should be 1 or 2 instead of {stride}")
        hidden = int(round(inp * expand_ratio))
        self.stride, self.out_channels = stride, oup
        self.use_res_connect = stride == 1 and inp == oup
        expansion = [_conv_norm_relu6(inp, hidden, 1)] if expand_ratio != 1 else []
        self.conv = Sequential(*expansion, _conv_norm_relu6(hidden, hidden, 3, stride, groups=hidden),
                               Conv2d(hidden, oup, 1, bias=False), BatchNorm2d(oup))

    def _graph(self, x):
        out = self.conv._graph(x)
        return x + out if self.use_res_connect else out


# -- the loss -----------------------------------------------------------------------------------------------------

class CrossEntropyLoss:
    """tinygrad's losses by torch's arguments: Tensor.cross_entropy (class indices or probabilities, label
    smoothing, reduction); with ignore_index, Tensor.sparse_categorical_crossentropy (classes moved to the last
    axis, as it takes them); with a per-class weight, Tensor.nll_loss of Tensor.log_softmax (torch's definition of
    the weighted loss), which has no label smoothing and no probability targets."""

    def __init__(self, weight=None, size_average=None, ignore_index=-100, reduce=None, reduction="mean",
                 label_smoothing=0.0):
        _available()
        _refuse("CrossEntropyLoss", size_average=(size_average, None), reduce=(reduce, None))
        if reduction not in ("mean", "sum", "none"):
            raise ValueError(f"CrossEntropyLoss: {reduction} is not a valid value for reduction")
        if not 0.0 <= label_smoothing <= 1.0:
            raise ValueError(f"CrossEntropyLoss: label_smoothing must be between 0.0 and 1.0, got {label_smoothing}")
        if weight is not None and label_smoothing > 0:
            raise NotImplementedError("CrossEntropyLoss: tinygrad's weighted loss (Tensor.nll_loss) has no label "
                                      "smoothing (weight with label_smoothing > 0)")
        self.weight = None if weight is None else np.asarray(weight)
        self.ignore_index, self.reduction, self.label_smoothing = int(ignore_index), reduction, float(label_smoothing)
        self._tape = None

    def __call__(self, logits, targets):
        return self.forward(logits, targets)

    def forward(self, logits, targets):
        logits = _float_input("CrossEntropyLoss", logits)
        targets = np.asarray(targets)
        probabilities = targets.dtype.kind == "f"
        x, y = _tensor(logits), _tensor(targets.reshape(1) if targets.ndim == 0 else targets)
        y = y.reshape(()) if targets.ndim == 0 else y
        if self.weight is not None:
            if probabilities:
                raise NotImplementedError("CrossEntropyLoss: tinygrad's weighted loss (Tensor.nll_loss) takes class "
                                          "indices only (weight with class-probability targets)")
            unbatched = logits.ndim == 1  # nll_loss takes classes on axis 1: an unbatched (C,) gets a batch axis
            xb, yb = (x.unsqueeze(0), y.unsqueeze(0)) if unbatched else (x, y)
            loss = xb.log_softmax(1).nll_loss(yb, _tensor(self.weight.astype(logits.dtype)), self.ignore_index,
                                              self.reduction)
            loss = loss.squeeze(0) if unbatched and self.reduction == "none" else loss
        elif self.ignore_index != -100 and not probabilities:
            last = x if logits.ndim <= 2 else x.permute(0, *range(2, logits.ndim), 1)  # its classes: the last axis
            loss = last.sparse_categorical_crossentropy(y, self.ignore_index, self.label_smoothing, self.reduction)
        else:
            loss = x.cross_entropy(y, self.reduction, self.label_smoothing)
        self._tape = _Tape(loss, [x])
        loss.realize()
        return np.asarray(loss.numpy())

    def backward(self, grad_loss=1.0):
        """The gradient w.r.t. the last forward's logits (grad_loss: a scalar, or one per element for 'none')."""
        if self._tape is None:
            raise RuntimeError("CrossEntropyLoss.backward called before forward")
        tape, self._tape = self._tape, None
        return tape.gradients(grad_loss)[0]


# -- optimizers ---------------------------------------------------------------------------------------------------


class _Optimizer:
    """A tinygrad optimizer over tinygrad copies of the parameters' arrays: each step hands it the gradients, steps
    it and writes the parameters back in place. tinygrad steps every parameter at once (a parameter without a
    gradient, which torch skips, is refused). It is built with tinygrad's default float set to the parameters'
    dtype (tinygrad stores the learning rate in it)."""

    def __init__(self, params, build):
        _available()
        self.params = list(params)
        if not self.params:
            raise ValueError("optimizer got an empty parameter list")
        self.dtype = np.result_type(*(np.asarray(p.data).dtype for p in self.params))
        self._tensors = [_tensor(np.asarray(p.data, dtype=self.dtype)) for p in self.params]
        with Context(DEFAULT_FLOAT="float64" if self.dtype == np.float64 else "float32"):
            self._optimizer = build(self._tensors)

    @property
    def lr(self) -> float:
        return float(self._optimizer.lr.numpy()[0])

    @lr.setter
    def lr(self, value: float) -> None:
        self._optimizer.lr.assign(Tensor([value], dtype=self._optimizer.lr.dtype)).realize()

    def zero_grad(self) -> None:
        for param in self.params:
            param.grad = None

    def step(self) -> None:
        missing = [i for i, param in enumerate(self.params) if param.grad is None]
        if missing:
            raise NotImplementedError(f"{type(self).__name__}: tinygrad's optimizers update every parameter at each "
                                      f"step; parameters {missing} have no gradient (torch skips them)")
        for param, tensor in zip(self.params, self._tensors, strict=True):
            tensor.assign(_tensor(np.asarray(param.data, dtype=self.dtype)))  # the arrays are the truth
            tensor.grad = _tensor(np.asarray(param.grad, dtype=self.dtype))
        with Context(TRAINING=1):  # tinygrad's optimizers step in training mode only
            self._optimizer.step()
        for param, tensor in zip(self.params, self._tensors, strict=True):
            param.data[...] = tensor.numpy()

    def _slot(self, tensor) -> np.ndarray:
        # tinygrad keeps optimizer state in OPTIM_DTYPE (float32 by default): its values, in the parameters' dtype
        return tensor.numpy().astype(self.dtype)


class SGD(_Optimizer):
    """tinygrad.nn.optim.SGD: torch's rule (L2 weight decay added to the gradient, the first momentum buffer is the
    gradient, Nesterov); tinygrad has no dampening. State: its momentum buffers as torch's momentum_buffer."""

    def __init__(self, params, lr=1e-3, momentum=0.0, dampening=0.0, weight_decay=0.0, nesterov=False, *,
                 maximize=False, foreach=None, differentiable=False, fused=None):
        _available()
        _refuse("SGD", dampening=(dampening, 0.0), maximize=(maximize, False),
                differentiable=(differentiable, False))  # foreach / fused: torch's kernel choices, same math
        if lr < 0 or momentum < 0 or weight_decay < 0:
            raise ValueError(f"SGD: invalid lr, momentum or weight_decay ({lr}, {momentum}, {weight_decay})")
        if nesterov and momentum <= 0:
            raise ValueError("Nesterov momentum requires a momentum and zero dampening")
        self.momentum = momentum
        super().__init__(params, lambda tensors: toptim.SGD(tensors, lr=lr, momentum=momentum,
                                                            weight_decay=weight_decay, nesterov=nesterov))

    @property
    def state(self) -> dict:
        if not self.momentum:
            return {}
        return {i: {"momentum_buffer": self._slot(buf)} for i, buf in enumerate(self._optimizer.b)}


class Adam(_Optimizer):
    """tinygrad.nn.optim.Adam (decoupled_weight_decay=True: tinygrad's AdamW, which is torch's AdamW rule).

    torch.optim.Adam's weight_decay adds weight_decay * param to the gradient (L2); tinygrad's Adam has no weight
    decay and its AdamW decays decoupled, so Adam(weight_decay > 0) is refused. State: exp_avg / exp_avg_sq are its
    m / v; tinygrad counts steps as beta2^t (one count for all parameters): step = log(beta2^t) / log(beta2)."""

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0, amsgrad=False, *,
                 foreach=None, maximize=False, capturable=False, differentiable=False, fused=None,
                 decoupled_weight_decay=False):
        _available()
        _refuse("Adam", amsgrad=(amsgrad, False), maximize=(maximize, False), capturable=(capturable, False),
                differentiable=(differentiable, False))  # foreach / fused: torch's kernel choices, same math
        if weight_decay and not decoupled_weight_decay:
            raise NotImplementedError(f"Adam: tinygrad's Adam has no L2 weight_decay (torch adds weight_decay * param "
                                      f"to the gradient; tinygrad's AdamW decays decoupled), got {weight_decay}")
        beta1, beta2 = betas
        if not (0.0 <= beta1 < 1.0 and 0.0 <= beta2 < 1.0) or lr < 0 or eps < 0 or weight_decay < 0:
            raise ValueError(f"Adam: invalid lr, betas, eps or weight_decay ({lr}, {betas}, {eps}, {weight_decay})")
        self.betas = (float(beta1), float(beta2))
        if decoupled_weight_decay:
            build = lambda tensors: toptim.AdamW(tensors, lr, beta1, beta2, eps, weight_decay)  # noqa: E731
        else:
            build = lambda tensors: toptim.Adam(tensors, lr, beta1, beta2, eps)  # noqa: E731
        super().__init__(params, build)
        self._steps = 0

    def step(self) -> None:
        super().step()
        self._steps += 1

    @property
    def state(self) -> dict:
        if not self._steps:
            return {}
        opt = self._optimizer
        beta, power = next(((b, t) for b, t in ((self.betas[1], opt.b2_t), (self.betas[0], opt.b1_t)) if 0 < b < 1),
                           (None, None))
        if beta is None:
            raise NotImplementedError("Adam: with betas of 0 tinygrad's step count (beta^t) is not recoverable")
        step = float(round(math.log(float(power.numpy()[0])) / math.log(beta)))
        return {i: {"step": step, "exp_avg": self._slot(m), "exp_avg_sq": self._slot(v)}
                for i, (m, v) in enumerate(zip(opt.m, opt.v, strict=True))}


class StepLR:
    """tinygrad ships no learning-rate scheduler."""

    def __init__(self, optimizer, step_size, gamma=0.1, last_epoch=-1):
        _available()
        raise NotImplementedError("StepLR: tinygrad ships no learning-rate scheduler (torch.optim.lr_scheduler."
                                  "StepLR)")

    def step(self) -> None:  # pragma: no cover - never constructed
        raise NotImplementedError
