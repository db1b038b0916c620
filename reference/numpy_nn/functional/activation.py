"""ReLU, hardtanh (ReLU6 is hardtanh(0, 6)) and (inverted) dropout: elementwise and whole-channel masks."""

import numpy as np

from ..validation import check_float_dtype
from ._utils import _masked


def relu_forward(x):
    """max(x, 0) elementwise; NaN propagates as in torch. The cache marks where the gradient passes: everywhere but
    x <= 0 (torch's threshold_backward blocks exactly those, so a NaN input passes its gradient)."""
    check_float_dtype("relu_forward", x)
    return np.maximum(x, 0), np.logical_not(x <= 0)


def relu_backward(grad_out, cache):
    """Pass the gradient where the input was positive (or NaN); zero at x == 0, as torch."""
    _check_grad("relu_backward", grad_out, cache)
    return _masked(grad_out, cache)


def hardtanh_forward(x, min_val=-1.0, max_val=1.0):
    """x clipped to [min_val, max_val] elementwise (NaN propagates); the cache marks where the slope is 1. At a NaN
    input torch's gradient depends on the element's position (0 in its vectorized loop, passed in the scalar tail:
    measured, torch 2.14); this port takes 0, the vectorized answer."""
    check_float_dtype("hardtanh_forward", x)
    if not min_val <= max_val:
        raise ValueError(f"hardtanh_forward: min_val must be <= max_val, got min_val={min_val}, max_val={max_val}")
    low, high = x.dtype.type(min_val), x.dtype.type(max_val)
    out = np.clip(x, low, high)  # one SIMD pass, 3x faster than maximum then minimum
    inside = out == x  # and not at a bound: strictly inside (NaN compares unequal, so its slope is 0)
    inside &= out != low
    inside &= out != high
    return out, inside


def hardtanh_backward(grad_out, cache):
    """Pass the gradient strictly inside (min_val, max_val); zero at and beyond the bounds, as torch."""
    _check_grad("hardtanh_backward", grad_out, cache)
    return _masked(grad_out, cache)


def _check_grad(owner, grad_out, mask):
    check_float_dtype(owner, grad_out)
    if grad_out.shape != mask.shape:
        raise ValueError(f"{owner}: expected grad_out of shape {mask.shape}, got {grad_out.shape}")


def _apply_mask(x, p, rng, mask_shape):
    """Keep each mask entry with probability 1 - p and scale kept ones by 1 / (1 - p)."""
    check_float_dtype("dropout_forward", x)
    if not 0.0 <= p <= 1.0:
        raise ValueError(f"dropout_forward: p must be in [0, 1], got {p}")
    scale = 1.0 / (1.0 - p) if p < 1.0 else 0.0  # p == 1 drops everything
    mask = (rng.random(mask_shape) >= p).astype(x.dtype) * scale
    return x * mask, mask


def dropout_forward(x, p, rng):
    """Zero each element of x with probability p (mask drawn from the np.random.Generator `rng`)."""
    return _apply_mask(x, p, rng, x.shape)


def dropout2d_forward(x, p, rng):
    """Zero whole channels of x (N, C, *) with probability p: one mask entry per (n, c).

    For 3-D input this is torch's current dropout2d behaviour ((N, C, L), with a deprecation warning there)."""
    if x.ndim < 2:
        raise ValueError(f"dropout2d_forward: expected x of shape (N, C, *), got {x.shape}")
    return _apply_mask(x, p, rng, x.shape[:2] + (1,) * (x.ndim - 2))


def dropout_backward(grad_out, cache):
    """Gradient of either dropout: the same scaled mask (broadcast over H, W for dropout2d)."""
    check_float_dtype("dropout_backward", grad_out)
    if grad_out.ndim != cache.ndim or any(m not in (1, g) for m, g in zip(cache.shape, grad_out.shape, strict=True)):
        raise ValueError(f"dropout_backward: grad_out of shape {grad_out.shape} does not fit the mask {cache.shape}")
    return grad_out * cache
