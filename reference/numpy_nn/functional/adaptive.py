"""Adaptive average and max pooling of NCHW arrays to any output size, with torch's windows.

Output row i pools input rows [floor(i H / Ho), ceil((i + 1) H / Ho)) (columns alike): windows may differ in
size and overlap when the sizes do not divide. When they divide, the windows are exactly average pooling with
kernel = stride = H / Ho, which is faster; otherwise the sums run window row by window row, then column by
column (Ho + Wo slices, not Ho * Wo).
"""

import numpy as np

from ..validation import check_float_dtype, is_int
from .pooling import _check_grad, avg_pool2d_backward, avg_pool2d_forward


def adaptive_output_size(owner, x, output_size):
    """(Ho, Wo) from an int or a pair whose None entries keep the input size, checked >= 1."""
    check_float_dtype(owner, x)
    if x.ndim != 4 or x.shape[0] == 0:
        raise ValueError(f"{owner}: expected x of shape (N, C, H, W) with N >= 1, got {x.shape}")
    items = tuple(output_size) if isinstance(output_size, (tuple, list)) else (output_size, output_size)
    if len(items) != 2 or not all(item is None or is_int(item) for item in items):
        raise TypeError(f"{owner}: output_size must be an int or a pair of ints or None, got {output_size!r}")
    size = tuple(int(x.shape[2 + axis] if item is None else item) for axis, item in enumerate(items))
    if min(size) < 1:
        raise ValueError(f"{owner}: output_size must be >= 1, got {output_size!r}")
    return size


def adaptive_windows(size, out):
    """torch's adaptive windows along one axis: (starts, ends) with [floor(i size / out), ceil((i+1) size / out))."""
    i = np.arange(out)
    return (i * size) // out, -(-(i + 1) * size // out)


def _window_pairs(size, out):
    return list(zip(*adaptive_windows(size, out), strict=True))


def adaptive_avg_pool2d_forward(x, output_size):
    """Average x (N, C, H, W) over torch's adaptive windows -> (N, C, Ho, Wo); (1, 1) is global average pooling."""
    (h, w), (ho, wo) = x.shape[2:], adaptive_output_size("adaptive_avg_pool2d_forward", x, output_size)
    if h % ho == 0 and w % wo == 0:
        return avg_pool2d_forward(x, (h // ho, w // wo), (h // ho, w // wo), 0)
    rows, columns = _window_pairs(h, ho), _window_pairs(w, wo)
    row_sums = np.stack([x[:, :, start:end].sum(axis=2) for start, end in rows], axis=2)  # (N, C, Ho, W)
    sums = np.stack([row_sums[..., start:end].sum(axis=3) for start, end in columns], axis=3)
    counts = np.multiply.outer(*(np.diff(pairs, axis=1)[:, 0] for pairs in (np.array(rows), np.array(columns))))
    out = sums / counts.astype(x.dtype)
    return out, ("windows", x.shape, rows, columns, counts.astype(x.dtype), out.shape)


def adaptive_avg_pool2d_backward(grad_out, cache):
    """Spread each output gradient (N, C, Ho, Wo) evenly over its window (overlapping windows add up)."""
    if cache[0] != "windows":
        return avg_pool2d_backward(grad_out, cache)
    _, x_shape, rows, columns, counts, out_shape = cache
    _check_grad("adaptive_avg_pool2d_backward", grad_out, out_shape, grad_out.dtype)
    share = grad_out / counts
    grad_rows = np.zeros((*out_shape[:3], x_shape[3]), dtype=grad_out.dtype)  # (N, C, Ho, W)
    for j, (start, end) in enumerate(columns):
        grad_rows[..., start:end] += share[..., j : j + 1]
    grad_x = np.zeros(x_shape, dtype=grad_out.dtype)
    for i, (start, end) in enumerate(rows):
        grad_x[:, :, start:end] += grad_rows[:, :, i : i + 1]
    return grad_x


def _picked(window):
    """Index into the last axis of each row's pick: the first maximum, or the last NaN if there is one (torch CPU)."""
    nan = np.isnan(window)
    last_nan = window.shape[-1] - 1 - np.argmax(nan[..., ::-1], axis=-1)
    return np.where(nan.any(axis=-1), last_nan, np.argmax(window, axis=-1))


def adaptive_max_pool2d_forward(x, output_size):
    """Max of x (N, C, H, W) over torch's adaptive windows -> (N, C, Ho, Wo); the cache holds torch's indices."""
    (h, w), (ho, wo) = x.shape[2:], adaptive_output_size("adaptive_max_pool2d_forward", x, output_size)
    out = np.empty((*x.shape[:2], ho, wo), dtype=x.dtype)
    indices = np.empty(out.shape, dtype=np.int64)  # flat h * W + w into the (H, W) plane, as torch returns
    for i, (top, bottom) in enumerate(_window_pairs(h, ho)):
        for j, (left, right) in enumerate(_window_pairs(w, wo)):
            window = x[:, :, top:bottom, left:right].reshape(*x.shape[:2], -1)
            pick = _picked(window)
            out[:, :, i, j] = np.take_along_axis(window, pick[..., None], axis=-1)[..., 0]
            indices[:, :, i, j] = (top + pick // (right - left)) * w + left + pick % (right - left)
    return out, (indices, x.shape)


def adaptive_max_pool2d_indices(cache):
    """torch's return_indices: flat h * W + w into the (H, W) plane of each picked element (int64)."""
    return cache[0]


def adaptive_max_pool2d_backward(grad_out, cache):
    """Send each output gradient to its window's picked element; elements picked by several windows add up."""
    indices, x_shape = cache
    _check_grad("adaptive_max_pool2d_backward", grad_out, indices.shape, grad_out.dtype)
    planes, plane_size = x_shape[0] * x_shape[1], x_shape[2] * x_shape[3]
    flat = (np.arange(planes).reshape(x_shape[:2])[..., None, None] * plane_size + indices).ravel()
    grad = np.bincount(flat, weights=grad_out.ravel(), minlength=planes * plane_size)
    return grad.astype(grad_out.dtype).reshape(x_shape)
