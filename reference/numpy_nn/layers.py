"""Thin NumPy layers mirroring `torch.nn`: they validate input, hold parameters and call the functional math.

Pooling layers live in `pooling.py`, batch normalization in `normalization.py`.
"""

from __future__ import annotations

import math

import numpy as np

from . import functional as F
from .module import Module, Parameter
from .random import as_generator
from .validation import (
    check_choice,
    check_device,
    check_float_dtype,
    check_grad_out,
    check_input,
    check_positive_int,
    check_real,
    check_spatial_fits,
    check_spatial_input,
    int_pair,
)

PADDING_MODES = ("zeros", "reflect", "replicate", "circular")


def _uniform(rng: np.random.Generator, bound: float, shape: tuple[int, ...], dtype) -> np.ndarray:
    """torch's default init for conv/linear: U(-1/sqrt(fan_in), 1/sqrt(fan_in)) for weights and biases."""
    return rng.uniform(-bound, bound, size=shape).astype(dtype)


def without_trailing_defaults(*args_and_defaults):
    """The given values up to the last one that differs from its default: calls with torch's defaults read as
    before the argument existed (benchmarks record functional calls positionally)."""
    def is_default(value, default):
        return value is default or (not isinstance(value, np.ndarray) and default is not None and value == default)

    values = [value for value, _ in args_and_defaults]
    while args_and_defaults and is_default(*args_and_defaults[-1]):
        args_and_defaults, values = args_and_defaults[:-1], values[:-1]
    return tuple(values)


class _CachedLayer(Module):
    """A layer whose backward needs what its last forward computed; spatial layers also take unbatched input."""

    _cache = None
    _out_shape: tuple[int, ...] | None = None
    _out_dtype: np.dtype | None = None
    _unbatched = False  # the last forward's input was (C, H, W): run as a batch of one

    def _save(self, out: np.ndarray, cache) -> np.ndarray:
        if self._unbatched:
            out = out[0]
        self._cache, self._out_shape, self._out_dtype = cache, out.shape, out.dtype
        return out

    def _saved(self, grad_out: np.ndarray):
        check_grad_out(type(self).__name__, grad_out, self._out_shape, self._out_dtype)
        return self._cache

    def _spatial_input(self, x, dtype=None, channels: int | None = None) -> np.ndarray:
        """Check an (N, C, H, W) or (C, H, W) input and return it as (N, C, H, W)."""
        check_spatial_input(self, x, dtype, channels)
        self._unbatched = x.ndim == 3
        return x[None] if self._unbatched else x

    def _batched(self, grad: np.ndarray) -> np.ndarray:
        """An upstream gradient shaped like the last output, as the batched functional backward wants it."""
        return grad[None] if self._unbatched else grad

    def _as_given(self, grad_x: np.ndarray) -> np.ndarray:
        """An input gradient in the shape the last input had."""
        return grad_x[0] if self._unbatched else grad_x


class Conv2d(_CachedLayer):
    """2-D cross-correlation over (N, C, H, W) or (C, H, W), as `torch.nn.Conv2d` (all its arguments)."""

    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0, dilation=1, groups=1, bias=True,
                 padding_mode="zeros", *, rng=None, device=None, dtype=np.float32):
        super().__init__()
        check_device("Conv2d", device)
        for name, value in (("in_channels", in_channels), ("out_channels", out_channels), ("groups", groups)):
            check_positive_int("Conv2d", name, value)
        if in_channels % groups or out_channels % groups:
            raise ValueError(f"Conv2d: in_channels={in_channels} and out_channels={out_channels} must be divisible "
                             f"by groups={groups}")
        self.in_channels, self.out_channels, self.groups = in_channels, out_channels, groups
        self.kernel_size = int_pair("Conv2d", "kernel_size", kernel_size, 1, lengths=(2,))
        self.stride = int_pair("Conv2d", "stride", stride, 1)
        self.dilation = int_pair("Conv2d", "dilation", dilation, 1)
        check_choice("Conv2d", "padding_mode", padding_mode, PADDING_MODES)
        self.padding_mode = padding_mode
        if isinstance(padding, str):
            check_choice("Conv2d", "padding", padding, ("same", "valid"))
            F.conv2d_padding(padding, self.kernel_size, self.stride, self.dilation, owner="Conv2d")
            self.padding = padding
        else:
            self.padding = int_pair("Conv2d", "padding", padding, 0)
        rng = as_generator(rng)
        shape = (out_channels, in_channels // groups, *self.kernel_size)
        bound = 1.0 / math.sqrt(shape[1] * self.kernel_size[0] * self.kernel_size[1])
        self.weight = Parameter(_uniform(rng, bound, shape, dtype))
        self._parameters["bias"] = Parameter(_uniform(rng, bound, (out_channels,), dtype)) if bias else None

    def _sides(self):
        """Per-side padding ((top, bottom), (left, right)) of the padding argument."""
        return F.conv2d_padding(self.padding, self.kernel_size, self.stride, self.dilation, owner="Conv2d")

    def forward(self, x):
        x = self._spatial_input(x, self.dtype, self.in_channels)
        (top, bottom), (left, right) = sides = self._sides()
        check_spatial_fits(self, x, self.kernel_size, sides if isinstance(self.padding, str) else self.padding,
                           self.dilation)
        padding = self.padding
        self._pad_cache = None
        if self.padding_mode != "zeros":  # torch pads first, then convolves without padding
            x, self._pad_cache = F.pad2d_forward(x, (left, right, top, bottom), self.padding_mode)
            padding = (0, 0)
        bias = None if self.bias is None else self.bias.data
        args = without_trailing_defaults((self.stride, None), (padding, None), (self.dilation, (1, 1)),
                                         (self.groups, 1))
        return self._save(*F.conv2d_forward(x, self.weight.data, bias, *args))

    def backward(self, grad_out):
        """The input's gradient (None when `needs_input_grad` is False); adds the parameters' to their `.grad`."""
        cache = self._saved(grad_out)
        grad_x, grad_weight, grad_bias = F.conv2d_backward(self._batched(grad_out), cache, self.needs_input_grad)
        self.weight.accumulate_grad(grad_weight)
        if self.bias is not None:
            self.bias.accumulate_grad(grad_bias)
        if grad_x is None:
            return None
        if self._pad_cache is not None:
            grad_x = F.pad2d_backward(grad_x, self._pad_cache)
        return self._as_given(grad_x)

    def extra_repr(self):
        text = f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, stride={self.stride}"
        for name, default in (("padding", (0, 0)), ("dilation", (1, 1)), ("groups", 1), ("padding_mode", "zeros")):
            if getattr(self, name) != default:
                text += f", {name}={getattr(self, name)!r}"
        return text + f", bias={self.bias is not None}"


class Linear(_CachedLayer):
    """y = x W^T + b on (*, in_features), as `torch.nn.Linear`."""

    def __init__(self, in_features, out_features, bias=True, *, rng=None, device=None, dtype=np.float32):
        super().__init__()
        check_device("Linear", device)
        check_positive_int("Linear", "in_features", in_features)
        check_positive_int("Linear", "out_features", out_features)
        self.in_features, self.out_features = in_features, out_features
        rng = as_generator(rng)
        bound = 1.0 / math.sqrt(in_features)
        self.weight = Parameter(_uniform(rng, bound, (out_features, in_features), dtype))
        self._parameters["bias"] = Parameter(_uniform(rng, bound, (out_features,), dtype)) if bias else None

    def forward(self, x):
        check_float_dtype(self, x, self.dtype)
        if x.ndim < 1 or x.shape[-1] != self.in_features:
            raise ValueError(f"{self!r}: expected input of shape (*, {self.in_features}), got {x.shape}")
        check_input(self, x)
        bias = None if self.bias is None else self.bias.data
        return self._save(*F.linear_forward(x, self.weight.data, bias))

    def backward(self, grad_out):
        grad_x, grad_weight, grad_bias = F.linear_backward(grad_out, self._saved(grad_out))
        self.weight.accumulate_grad(grad_weight)
        if self.bias is not None:
            self.bias.accumulate_grad(grad_bias)
        return grad_x

    def extra_repr(self):
        return f"in_features={self.in_features}, out_features={self.out_features}, bias={self.bias is not None}"


class _Elementwise(_CachedLayer):
    """An elementwise activation of any shape; `inplace=True` also writes the result into the input, as torch."""

    def __init__(self, inplace=False):
        super().__init__()
        self.inplace = bool(inplace)

    def _run(self, x, forward, *args):
        check_float_dtype(type(self).__name__, x)
        check_input(type(self).__name__, x)
        out, cache = forward(x, *args)
        if self.inplace:
            x[...] = out
            out = x
        return self._save(out, cache)


class ReLU(_Elementwise):
    """max(x, 0) elementwise; the gradient at exactly 0 is 0, as in torch."""

    def forward(self, x):
        return self._run(x, F.relu_forward)

    def backward(self, grad_out):
        return F.relu_backward(grad_out, self._saved(grad_out))


class Hardtanh(_Elementwise):
    """x clipped to [min_val, max_val]; the gradient is 1 strictly inside and 0 elsewhere, as torch."""

    def __init__(self, min_val=-1.0, max_val=1.0, inplace=False):
        super().__init__(inplace)
        self.min_val, self.max_val = check_real(type(self).__name__, "min_val", min_val), \
            check_real(type(self).__name__, "max_val", max_val)
        if not self.max_val > self.min_val:
            raise ValueError(f"{type(self).__name__}: max_val must be greater than min_val, got min_val={min_val}, "
                             f"max_val={max_val}")

    def forward(self, x):
        return self._run(x, F.hardtanh_forward, self.min_val, self.max_val)

    def backward(self, grad_out):
        return F.hardtanh_backward(grad_out, self._saved(grad_out))

    def extra_repr(self):
        return f"min_val={self.min_val}, max_val={self.max_val}"


class ReLU6(Hardtanh):
    """min(max(x, 0), 6): Hardtanh(0, 6), as torch (MobileNetV2's activation)."""

    def __init__(self, inplace=False):
        super().__init__(0.0, 6.0, inplace)

    def extra_repr(self):
        return ""


class _DropoutBase(_CachedLayer):
    def __init__(self, p=0.5, inplace=False, *, rng=None):
        super().__init__()
        if not 0.0 <= p <= 1.0:
            raise ValueError(f"{type(self).__name__}: p must be in [0, 1], got {p}")
        if inplace:
            raise NotImplementedError(f"{type(self).__name__}: inplace={inplace!r} is not supported")
        self.p = float(p)
        self.rng = as_generator(rng)

    def backward(self, grad_out):
        cache = self._saved(grad_out)
        return grad_out if cache is None else F.dropout_backward(grad_out, cache)

    @property
    def mask(self):
        """The multiplier the last forward applied (0 dropped, 1/(1-p) kept; (N, C, 1, 1) for Dropout2d), None in
        eval mode: public, so that another framework's dropout can be driven to drop the same units."""
        return self._cache

    def extra_repr(self):
        return f"p={self.p}"


class Dropout(_DropoutBase):
    """Zeroes elements with probability p in training and scales the rest by 1/(1-p); identity in eval."""

    def forward(self, x):
        check_float_dtype(self, x)
        check_input(self, x)
        if not self.training:
            return self._save(x, None)
        return self._save(*F.dropout_forward(x, self.p, self.rng))


class Dropout2d(_DropoutBase):
    """Zeroes whole channels of (N, C, H, W) with probability p in training; identity in eval. A 3-D input is
    (N, C, L), as torch's dropout2d currently reads it (torch warns that this will change)."""

    def forward(self, x):
        check_float_dtype(self, x)
        if x.ndim not in (3, 4):
            raise ValueError(f"{self!r}: expected input of shape (N, C, H, W) or (N, C, L), got {x.shape}")
        check_input(self, x)
        if not self.training:
            return self._save(x, None)
        return self._save(*F.dropout2d_forward(x, self.p, self.rng))
