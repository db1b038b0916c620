"""Small helpers shared by the functional layers."""

import numpy as np


def _pair(value):
    """(a, b) from an int or a pair of ints: torch's convention for kernel_size, stride and padding."""
    if isinstance(value, (tuple, list)):
        first, second = value
        return int(first), int(second)
    return int(value), int(value)


def _window_slices(i, j, out_size, stride):
    """Row and column slices of a padded input that pick, for kernel offset (i, j), one pixel per output window."""
    (ho, wo), (sh, sw) = out_size, _pair(stride)
    return slice(i, i + sh * (ho - 1) + 1, sh), slice(j, j + sw * (wo - 1) + 1, sw)


def _masked(values, mask, out=None):
    """values where mask is True, else exactly 0 (as torch), e.g. a gradient routed through ReLU or max-pool.

    A multiply by the boolean mask is 10-20x faster than np.where, but NaN or inf times 0 is NaN where torch
    gives 0: values holding those take the np.where path.
    """
    if np.isfinite(values).all():
        return np.multiply(values, mask, out=out)
    if out is None:
        return np.where(mask, values, 0)
    out[...] = np.where(mask, values, 0)
    return out


def _channel_sum(x):
    """Per-channel sum (C,) of x (N, C, H, W): over the batch, then the columns, then the rows.

    Each stage adds a short run of numbers, so float32 stays accurate and fast in either memory layout; one
    reduction over N*H*W channels-last values adds them one by one (20x the rounding error, and slow).
    """
    return x.sum(axis=0).sum(axis=2).sum(axis=1)


def _in_layout_of(values, reference):
    """values in the memory layout of `reference` (same shape): as is when it already is, else one copy.

    Elementwise work between arrays of different layouts runs in short strided loops, 2-6x slower.
    """
    out = np.empty_like(reference, dtype=values.dtype)
    if out.strides == values.strides:
        return values
    out[...] = values
    return out
