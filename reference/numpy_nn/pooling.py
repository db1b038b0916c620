"""Pooling layers mirroring `torch.nn`: max, average, adaptive average and adaptive max, batched or unbatched."""

from __future__ import annotations

import numpy as np

from . import functional as F
from .functional.pooling import output_size
from .layers import _CachedLayer, without_trailing_defaults
from .validation import int_pair, is_int


class _Pool2d(_CachedLayer):
    """Shared constructor checks of max and average pooling (torch's: padding at most half the kernel)."""

    def __init__(self, kernel_size, stride=None, padding=0, ceil_mode=False):
        super().__init__()
        name = type(self).__name__
        self.kernel_size = int_pair(name, "kernel_size", kernel_size, 1)
        self.stride = self.kernel_size if stride is None else int_pair(name, "stride", stride, 1)
        self.padding = int_pair(name, "padding", padding, 0)
        if not isinstance(ceil_mode, (bool, np.bool_)):
            raise TypeError(f"{name}: ceil_mode must be a bool, got {ceil_mode!r}")
        self.ceil_mode = bool(ceil_mode)
        if any(2 * p > k for p, k in zip(self.padding, self.kernel_size, strict=True)):
            raise ValueError(f"{name}: padding should be at most half of kernel_size, got padding={padding}, "
                             f"kernel_size={kernel_size}")

    def _pool_input(self, x, dilation=(1, 1)):
        """Check an (N, C, H, W) or (C, H, W) input whose pooled size is at least 1x1; return it batched."""
        x = self._spatial_input(x)
        given = x.shape[1:] if self._unbatched else x.shape
        out = output_size(x.shape[2:], self.kernel_size, self.stride, self.padding, dilation, self.ceil_mode)
        if min(out) < 1:
            raise ValueError(f"{self!r}: input spatial size {x.shape[2:]} with padding {self.padding} is smaller "
                             f"than kernel {self.kernel_size}; got input shape {given}")
        return x

    def extra_repr(self):
        return (f"kernel_size={self.kernel_size}, stride={self.stride}, padding={self.padding}"
                + (", ceil_mode=True" if self.ceil_mode else ""))


class MaxPool2d(_Pool2d):
    """Max over (dilated) windows; the gradient goes to the element torch picks (first max, NaN wins).

    With return_indices=True the forward returns (out, indices), torch's flat h * W + w per (n, c) plane."""

    def __init__(self, kernel_size, stride=None, padding=0, dilation=1, return_indices=False, ceil_mode=False):
        super().__init__(kernel_size, stride, padding, ceil_mode)
        self.dilation = int_pair("MaxPool2d", "dilation", dilation, 1)
        self.return_indices = bool(return_indices)

    def forward(self, x):
        x = self._pool_input(x, self.dilation)
        args = without_trailing_defaults((self.kernel_size, None), (self.stride, None), (self.padding, None),
                                         (self.dilation, (1, 1)), (self.ceil_mode, False))
        out = self._save(*F.max_pool2d_forward(x, *args))
        if self.return_indices:
            return out, self._as_given(F.max_pool2d_indices(self._cache))
        return out

    def backward(self, grad_out):
        cache = self._saved(grad_out)
        return self._as_given(F.max_pool2d_backward(self._batched(grad_out), cache))

    def extra_repr(self):
        dilation = f", dilation={self.dilation}" if self.dilation != (1, 1) else ""
        return super().extra_repr() + dilation


class AvgPool2d(_Pool2d):
    """Mean over windows, divided as torch divides (count_include_pad, divisor_override, ceil_mode)."""

    def __init__(self, kernel_size, stride=None, padding=0, ceil_mode=False, count_include_pad=True,
                 divisor_override=None):
        super().__init__(kernel_size, stride, padding, ceil_mode)
        if divisor_override is not None and (not is_int(divisor_override) or divisor_override == 0):
            raise ValueError(f"AvgPool2d: divisor_override must be a nonzero int or None, got {divisor_override!r}")
        self.count_include_pad, self.divisor_override = bool(count_include_pad), divisor_override

    def forward(self, x):
        x = self._pool_input(x)
        args = without_trailing_defaults((self.kernel_size, None), (self.stride, None), (self.padding, None),
                                         (self.ceil_mode, False), (self.count_include_pad, True),
                                         (self.divisor_override, None))
        return self._save(*F.avg_pool2d_forward(x, *args))

    def backward(self, grad_out):
        cache = self._saved(grad_out)
        return self._as_given(F.avg_pool2d_backward(self._batched(grad_out), cache))


class _AdaptivePool2d(_CachedLayer):
    """Pooling to a fixed output size: an int, or a pair whose None entries keep the input's size."""

    def __init__(self, output_size):
        super().__init__()
        name = type(self).__name__
        items = tuple(output_size) if isinstance(output_size, (tuple, list)) else (output_size, output_size)
        if len(items) != 2 or not all(item is None or is_int(item) for item in items):
            raise TypeError(f"{name}: output_size must be an int or a pair of ints or None, got {output_size!r}")
        if any(item is not None and item < 1 for item in items):
            raise ValueError(f"{name}: output_size must be >= 1, got output_size={output_size!r}")
        self.output_size = output_size if isinstance(output_size, (tuple, list)) else (output_size, output_size)

    def extra_repr(self):
        return f"output_size={self.output_size}"


class AdaptiveAvgPool2d(_AdaptivePool2d):
    """Average pooling over torch's adaptive windows to any output size ((1, 1) is global average pooling)."""

    def forward(self, x):
        return self._save(*F.adaptive_avg_pool2d_forward(self._spatial_input(x), self.output_size))

    def backward(self, grad_out):
        cache = self._saved(grad_out)
        return self._as_given(F.adaptive_avg_pool2d_backward(self._batched(grad_out), cache))


class AdaptiveMaxPool2d(_AdaptivePool2d):
    """Max pooling over torch's adaptive windows to any output size; (out, indices) with return_indices=True."""

    def __init__(self, output_size, return_indices=False):
        super().__init__(output_size)
        self.return_indices = bool(return_indices)

    def forward(self, x):
        out = self._save(*F.adaptive_max_pool2d_forward(self._spatial_input(x), self.output_size))
        if self.return_indices:
            return out, self._as_given(F.adaptive_max_pool2d_indices(self._cache))
        return out

    def backward(self, grad_out):
        cache = self._saved(grad_out)
        return self._as_given(F.adaptive_max_pool2d_backward(self._batched(grad_out), cache))


__all__ = ["MaxPool2d", "AvgPool2d", "AdaptiveAvgPool2d", "AdaptiveMaxPool2d"]
