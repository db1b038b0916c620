"""Thin NumPy layers mirroring `torch.nn`: they validate input, hold parameters and call the functional math."""

from __future__ import annotations

import math

import numpy as np

from . import functional as F
from .functional._utils import _pair
from .module import Module, Parameter
from .random import as_generator
from .validation import (
    check_float_dtype,
    check_grad_out,
    check_input,
    check_positive_int,
    check_spatial_fits,
)


def _uniform(rng: np.random.Generator, bound: float, shape: tuple[int, ...], dtype) -> np.ndarray:
    """torch's default init for conv/linear: U(-1/sqrt(fan_in), 1/sqrt(fan_in)) for weights and biases."""
    return rng.uniform(-bound, bound, size=shape).astype(dtype)


class _CachedLayer(Module):
    """A layer whose backward needs what its last forward computed."""

    _cache = None
    _out_shape: tuple[int, ...] | None = None
    _out_dtype: np.dtype | None = None

    def _save(self, out: np.ndarray, cache) -> np.ndarray:
        self._cache, self._out_shape, self._out_dtype = cache, out.shape, out.dtype
        return out

    def _saved(self, grad_out: np.ndarray):
        check_grad_out(type(self).__name__, grad_out, self._out_shape, self._out_dtype)
        return self._cache

    def _check_nchw(self, x: np.ndarray, channels: int | None = None) -> None:
        check_float_dtype(repr(self), x, self.dtype)
        check_input(repr(self), x, ndim=4, channels=channels)


class Conv2d(_CachedLayer):
    """2-D cross-correlation over (N, C, H, W), as `torch.nn.Conv2d` (groups=1, dilation=1)."""

    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0, bias=True, *, rng=None,
                 dtype=np.float32):
        super().__init__()
        check_positive_int("Conv2d", "in_channels", in_channels)
        check_positive_int("Conv2d", "out_channels", out_channels)
        self.in_channels, self.out_channels = in_channels, out_channels
        self.kernel_size, self.stride, self.padding = _pair(kernel_size), _pair(stride), _pair(padding)
        if min(self.kernel_size) < 1 or min(self.stride) < 1 or min(self.padding) < 0:
            raise ValueError(f"Conv2d: kernel_size and stride must be >= 1 and padding >= 0, got "
                             f"kernel_size={self.kernel_size}, stride={self.stride}, padding={self.padding}")
        rng = as_generator(rng)
        shape = (out_channels, in_channels, *self.kernel_size)
        bound = 1.0 / math.sqrt(in_channels * self.kernel_size[0] * self.kernel_size[1])
        self.weight = Parameter(_uniform(rng, bound, shape, dtype))
        self._parameters["bias"] = Parameter(_uniform(rng, bound, (out_channels,), dtype)) if bias else None

    def forward(self, x):
        self._check_nchw(x, self.in_channels)
        check_spatial_fits(repr(self), x, self.kernel_size, self.padding)
        bias = None if self.bias is None else self.bias.data
        return self._save(*F.conv2d_forward(x, self.weight.data, bias, self.stride, self.padding))

    def backward(self, grad_out):
        grad_x, grad_weight, grad_bias = F.conv2d_backward(grad_out, self._saved(grad_out))
        self.weight.accumulate_grad(grad_weight)
        if self.bias is not None:
            self.bias.accumulate_grad(grad_bias)
        return grad_x

    def extra_repr(self):
        return (f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, "
                f"stride={self.stride}, padding={self.padding}, bias={self.bias is not None}")


class Linear(_CachedLayer):
    """y = x W^T + b on (N, in_features), as `torch.nn.Linear`."""

    def __init__(self, in_features, out_features, bias=True, *, rng=None, dtype=np.float32):
        super().__init__()
        check_positive_int("Linear", "in_features", in_features)
        check_positive_int("Linear", "out_features", out_features)
        self.in_features, self.out_features = in_features, out_features
        rng = as_generator(rng)
        bound = 1.0 / math.sqrt(in_features)
        self.weight = Parameter(_uniform(rng, bound, (out_features, in_features), dtype))
        self._parameters["bias"] = Parameter(_uniform(rng, bound, (out_features,), dtype)) if bias else None

    def forward(self, x):
        check_float_dtype(repr(self), x, self.dtype)
        check_input(repr(self), x, ndim=2, channels=self.in_features)
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


class ReLU(_CachedLayer):
    """max(x, 0) elementwise; the gradient at exactly 0 is 0, as in torch."""

    def forward(self, x):
        check_float_dtype("ReLU", x)
        check_input("ReLU", x, min_ndim=1)
        return self._save(*F.relu_forward(x))

    def backward(self, grad_out):
        return F.relu_backward(grad_out, self._saved(grad_out))


class _Pool2d(_CachedLayer):
    """Shared constructor checks of max and average pooling (torch's: padding at most half the kernel)."""

    def __init__(self, kernel_size, stride=None, padding=0):
        super().__init__()
        self.kernel_size = _pair(kernel_size)
        self.stride = self.kernel_size if stride is None else _pair(stride)
        self.padding = _pair(padding)
        if min(self.kernel_size) < 1 or min(self.stride) < 1 or min(self.padding) < 0:
            raise ValueError(f"{type(self).__name__}: kernel_size and stride must be >= 1 and padding >= 0, "
                             f"got {self!r}")
        if any(2 * p > k for p, k in zip(self.padding, self.kernel_size, strict=True)):
            raise ValueError(f"{type(self).__name__}: padding should be at most half of kernel_size, got {self!r}")

    def _check_pool_input(self, x):
        self._check_nchw(x)
        check_spatial_fits(repr(self), x, self.kernel_size, self.padding)

    def extra_repr(self):
        return f"kernel_size={self.kernel_size}, stride={self.stride}, padding={self.padding}"


class MaxPool2d(_Pool2d):
    """Max over windows (floor mode); the gradient goes to the element torch picks (first max, NaN wins)."""

    def forward(self, x):
        self._check_pool_input(x)
        return self._save(*F.max_pool2d_forward(x, self.kernel_size, self.stride, self.padding))

    def backward(self, grad_out):
        return F.max_pool2d_backward(grad_out, self._saved(grad_out))


class AvgPool2d(_Pool2d):
    """Mean over windows, zero padding counted in the divisor (torch's count_include_pad=True)."""

    def forward(self, x):
        self._check_pool_input(x)
        return self._save(*F.avg_pool2d_forward(x, self.kernel_size, self.stride, self.padding))

    def backward(self, grad_out):
        return F.avg_pool2d_backward(grad_out, self._saved(grad_out))


class AdaptiveAvgPool2d(_CachedLayer):
    """Average pooling to a fixed output size that divides the input size ((1, 1) is global pooling)."""

    def __init__(self, output_size):
        super().__init__()
        self.output_size = _pair(output_size)
        if min(self.output_size) < 1:
            raise ValueError(f"AdaptiveAvgPool2d: output_size must be >= 1, got {output_size!r}")

    def forward(self, x):
        self._check_nchw(x)
        if x.shape[2] % self.output_size[0] or x.shape[3] % self.output_size[1]:
            raise ValueError(f"{self!r}: output size {self.output_size} must divide the input size "
                             f"{x.shape[2:]}; got input shape {x.shape}")
        return self._save(*F.adaptive_avg_pool2d_forward(x, self.output_size))

    def backward(self, grad_out):
        return F.adaptive_avg_pool2d_backward(grad_out, self._saved(grad_out))

    def extra_repr(self):
        return f"output_size={self.output_size}"


class BatchNorm2d(_CachedLayer):
    """Per-channel batch normalization; running statistics updated exactly as torch (unbiased variance)."""

    def __init__(self, num_features, eps=1e-5, momentum=0.1, *, dtype=np.float32):
        super().__init__()
        check_positive_int("BatchNorm2d", "num_features", num_features)
        if not 0.0 <= momentum <= 1.0 or eps <= 0:
            raise ValueError(f"BatchNorm2d: need 0 <= momentum <= 1 and eps > 0, got momentum={momentum}, eps={eps}")
        self.num_features, self.eps, self.momentum = num_features, float(eps), float(momentum)
        self.weight = Parameter(np.ones(num_features, dtype=dtype))
        self.bias = Parameter(np.zeros(num_features, dtype=dtype))
        self.register_buffer("running_mean", np.zeros(num_features, dtype=dtype))
        self.register_buffer("running_var", np.ones(num_features, dtype=dtype))
        self.register_buffer("num_batches_tracked", np.array(0, dtype=np.int64))

    def forward(self, x):
        self._check_nchw(x, self.num_features)
        if not self.training:
            return self._save(*F.batch_norm2d_eval_forward(
                x, self.weight.data, self.bias.data, self.running_mean, self.running_var, self.eps))
        count = x.shape[0] * x.shape[2] * x.shape[3]
        if count < 2:
            raise ValueError(f"{self!r}: expected more than 1 value per channel when training, "
                             f"got input shape {x.shape}")
        out, cache = F.batch_norm2d_train_forward(x, self.weight.data, self.bias.data, self.eps)
        m = self.momentum
        self.running_mean = (1.0 - m) * self.running_mean + m * cache.mean
        self.running_var = (1.0 - m) * self.running_var + (m * count / (count - 1)) * cache.var
        self.num_batches_tracked = np.asarray(self.num_batches_tracked + 1)  # stays a 0-d array, as registered
        return self._save(out, cache)

    def backward(self, grad_out):
        grad_x, grad_weight, grad_bias = F.batch_norm2d_backward(grad_out, self._saved(grad_out))
        self.weight.accumulate_grad(grad_weight)
        self.bias.accumulate_grad(grad_bias)
        return grad_x

    def extra_repr(self):
        return f"{self.num_features}, eps={self.eps}, momentum={self.momentum}"


class _DropoutBase(_CachedLayer):
    def __init__(self, p=0.5, *, rng=None):
        super().__init__()
        if not 0.0 <= p <= 1.0:
            raise ValueError(f"{type(self).__name__}: p must be in [0, 1], got {p}")
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
        check_float_dtype(repr(self), x)
        check_input(repr(self), x, min_ndim=1)
        if not self.training:
            return self._save(x, None)
        return self._save(*F.dropout_forward(x, self.p, self.rng))


class Dropout2d(_DropoutBase):
    """Zeroes whole channels of (N, C, H, W) with probability p in training; identity in eval."""

    def forward(self, x):
        self._check_nchw(x)
        if not self.training:
            return self._save(x, None)
        return self._save(*F.dropout2d_forward(x, self.p, self.rng))
