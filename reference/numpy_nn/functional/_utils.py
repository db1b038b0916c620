"""Small helpers shared by the functional layers."""

import numpy as np


def _pair(value):
    """(a, b) from an int or a pair of ints: torch's convention for kernel_size, stride and padding."""
    if isinstance(value, (tuple, list)):
        first, second = value
        return int(first), int(second)
    return int(value), int(value)


def _sides(padding):
    """Per-side padding ((top, bottom), (left, right)) from an int, a pair (ph, pw) or per-side pairs."""
    if isinstance(padding, (tuple, list)) and isinstance(padding[0], (tuple, list)):
        (top, bottom), (left, right) = padding
        return (int(top), int(bottom)), (int(left), int(right))
    ph, pw = _pair(padding)
    return (ph, ph), (pw, pw)


def _window_slices(i, j, out_size, stride, dilation=(1, 1)):
    """Row and column slices of a padded input that pick, for kernel offset (i, j), one pixel per output window
    (stride and dilation as pairs)."""
    (ho, wo), (sh, sw), (dh, dw) = out_size, stride, dilation
    return slice(i * dh, i * dh + sh * (ho - 1) + 1, sh), slice(j * dw, j * dw + sw * (wo - 1) + 1, sw)


def _masked(values, mask, out=None):
    """values where mask is True, else exactly 0 (as torch), e.g. a gradient routed through ReLU or max-pool.

    A multiply by the boolean mask is 10-20x faster than np.where, but NaN or inf times 0 is NaN where torch
    gives 0: values holding those take the np.where path. Without `out` the result takes the mask's memory layout
    (values of another layout are copied into it first: cheaper than a multiply in short strided loops).
    """
    if out is None:
        values = _in_layout_of(values, mask)
    if np.isfinite(values).all():
        return np.multiply(values, mask, out=out)
    if out is None:
        return np.where(mask, values, 0)
    out[...] = np.where(mask, values, 0)
    return out


def _channel_sum(x):
    """Per-channel sum (C,) of x (N, C, *): over the batch, then the last axis, then the next-to-last, ...

    Each stage adds a short run of numbers, so float32 stays accurate and fast in either memory layout; one
    reduction over N*H*W channels-last values adds them one by one (20x the rounding error, and slow).
    """
    x = x.sum(axis=0)
    while x.ndim > 1:
        x = x.sum(axis=-1)
    return x


def _in_layout_of(values, reference):
    """values in the memory layout of `reference` (same shape): as is when it already is, else one copy.

    Elementwise work between arrays of different layouts runs in short strided loops, 2-6x slower.
    """
    out = np.empty_like(reference, dtype=values.dtype)
    if out.strides == values.strides:
        return values
    out[...] = values
    return out
