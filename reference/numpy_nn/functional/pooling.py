"""2-D max and average pooling of NCHW arrays, built from kh*kw shifted strided views of the padded input.

Arguments and output sizes are torch's (dilation and ceil_mode for max pooling; ceil_mode, count_include_pad
and divisor_override for average pooling). With ceil_mode the last window may run past the padded input: the
input is padded further on the bottom/right (with -inf or 0) and those pixels never count.
"""

import numpy as np

from ..validation import check_float_dtype, int_pair, is_int
from ._utils import _in_layout_of, _masked, _window_slices


def _axis_output_size(size, kernel, stride, padding, dilation, ceil_mode):
    """torch's pooling output length along one axis (ceil_mode never starts a window past the input)."""
    span = size + 2 * padding - dilation * (kernel - 1) - 1
    out = (span + (stride - 1 if ceil_mode else 0)) // stride + 1
    if ceil_mode and (out - 1) * stride >= size + padding:
        out -= 1
    return out


def pool_output_size(h, w, kernel_size, stride, padding, dilation=1, ceil_mode=False):
    """Output (Ho, Wo) of pooling windows over (H, W), torch's formula (floor, or ceil with ceil_mode)."""
    pairs = (int_pair("pool_output_size", name, value) for name, value in
             (("kernel_size", kernel_size), ("stride", stride), ("padding", padding), ("dilation", dilation)))
    return output_size((h, w), *pairs, ceil_mode)


def output_size(size, kernel, stride, padding, dilation, ceil_mode):
    """pool_output_size for already checked pairs (the modules' and check_pool's fast path)."""
    return tuple(_axis_output_size(*axis, ceil_mode) for axis in zip(size, kernel, stride, padding, dilation,
                                                                       strict=True))


def check_pool(owner, x, kernel_size, stride, padding, dilation=1, ceil_mode=False):
    """Validate pooling arguments as torch does -> (kernel, stride, padding, dilation, (Ho, Wo)) as pairs.

    stride None means the kernel size; padding at most half the kernel; the output at least 1x1."""
    check_float_dtype(owner, x)
    if x.ndim != 4 or x.shape[0] == 0:
        raise ValueError(f"{owner}: expected x of shape (N, C, H, W) with N >= 1, got {x.shape}")
    kernel = int_pair(owner, "kernel_size", kernel_size, 1)
    stride = kernel if stride is None or stride == () else int_pair(owner, "stride", stride, 1)
    padding, dilation = int_pair(owner, "padding", padding, 0), int_pair(owner, "dilation", dilation, 1)
    if not isinstance(ceil_mode, (bool, np.bool_)):
        raise TypeError(f"{owner}: ceil_mode must be a bool, got {ceil_mode!r}")
    if any(2 * p > k for p, k in zip(padding, kernel, strict=True)):
        raise ValueError(f"{owner}: padding should be at most half of kernel_size, got padding={padding}, "
                         f"kernel_size={kernel}")
    out = output_size(x.shape[2:], kernel, stride, padding, dilation, ceil_mode)
    if min(out) < 1:
        raise ValueError(f"{owner}: input {x.shape} is too small for kernel_size={kernel}, padding={padding}, "
                         f"dilation={dilation} (output size {out})")
    return kernel, stride, padding, dilation, out


def _pads(x_shape, kernel, stride, padding, dilation, out_size):
    """Per-side padding ((top, bottom), (left, right)): `padding`, plus whatever ceil_mode's last window needs."""
    sides = []
    for size, k, s, p, d, out in zip(x_shape[2:], kernel, stride, padding, dilation, out_size, strict=True):
        sides.append((p, max(p, (out - 1) * s + d * (k - 1) + 1 - size - p)))
    return tuple(sides)


def _offsets(kernel_size, stride, out_size, dilation):
    """Yield (k, rows, columns) for every kernel offset k = i * kw + j, in row-major order."""
    kh, kw = kernel_size
    for i in range(kh):
        for j in range(kw):
            yield (i * kw + j, *_window_slices(i, j, out_size, stride, dilation))


def _pad(x, pads, value):
    """x (N, C, H, W) padded per side with a constant, in x's memory layout."""
    (n, c, h, w), ((top, bottom), (left, right)) = x.shape, pads
    if top == bottom == left == right == 0:
        return x
    x_padded = np.full_like(x, value, shape=(n, c, h + top + bottom, w + left + right))
    x_padded[:, :, top : top + h, left : left + w] = x
    return x_padded


def _zeros_padded(like, x_shape, pads, dtype):
    """Zero gradient buffer for an (N, C, H, W) input padded per side, in the memory layout of `like`."""
    (n, c, h, w), ((top, bottom), (left, right)) = x_shape, pads
    return np.zeros_like(like, dtype=dtype, shape=(n, c, h + top + bottom, w + left + right))


def _crop(x_padded, x_shape, pads):
    """Undo _pad: the (N, C, H, W) interior of a padded array (a view)."""
    ((top, _), (left, _)), (h, w) = pads, x_shape[2:]
    return x_padded[:, :, top : top + h, left : left + w]


def _check_grad(owner, grad_out, cache_out_shape, dtype):
    check_float_dtype(owner, grad_out, dtype)
    if grad_out.shape != cache_out_shape:
        raise ValueError(f"{owner}: expected grad_out of shape {cache_out_shape}, got {grad_out.shape}")


def max_pool2d_forward(x, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False):
    """Max over each (dilated) window of x (N, C, H, W), padding counting as -inf -> (N, C, Ho, Wo).

    Picks like torch CPU: the first maximum in row-major window order, or the last NaN if the window has one.
    """
    kernel, stride, padding, dilation, out_size = check_pool("max_pool2d_forward", x, kernel_size, stride, padding,
                                                             dilation, ceil_mode)
    (kh, kw), (sh, sw), (ph, pw), (dh, dw) = kernel, stride, padding, dilation
    pads = _pads(x.shape, kernel, stride, padding, dilation, out_size)
    x_padded = _pad(x, pads, -np.inf)
    windows = (x_padded[:, :, rows, columns] for _, rows, columns in _offsets(kernel, stride, out_size, dilation))
    out = np.array(next(windows), order="K")  # offset 0; x's memory layout, as every buffer below
    # Offset k = i * kw + j of the picked element per window. torch starts from the window's first in-bounds
    # element, so a window of -inf values hands its gradient to that element, never to the padding.
    index_type = np.min_scalar_type(kh * kw - 1)
    argmax = np.empty_like(out, dtype=index_type)
    first_row = np.maximum(-(-(ph - sh * np.arange(out_size[0])) // dh), 0)
    first_column = np.maximum(-(-(pw - sw * np.arange(out_size[1])) // dw), 0)
    argmax[...] = first_row[:, None] * kw + first_column
    taken = np.empty_like(out, dtype=bool)
    for k, window in enumerate(windows, start=1):
        np.greater(window, out, out=taken)  # never true for NaN: windows with a NaN are settled below
        np.maximum(out, window, out=out)  # NaN-propagating
        # Offsets only grow, so this sets argmax to k exactly where taken (a branch-free select: np.where and
        # masked copies are several times slower on random masks).
        np.maximum(argmax, taken * index_type.type(k), out=argmax)
    if np.isnan(out).any():  # rare: torch picks the last NaN of a window
        for k, rows, columns in _offsets(kernel, stride, out_size, dilation):
            argmax[np.isnan(x_padded[:, :, rows, columns])] = k
    return out, (argmax, x.shape, kernel, stride, pads, dilation, out.shape)


def max_pool2d_indices(cache):
    """torch's return_indices: the flat index h * W + w into its (H, W) plane of each picked element (int64)."""
    argmax, x_shape, (kh, kw), (sh, sw), ((top, _), (left, _)), (dh, dw), _ = cache
    ho, wo = argmax.shape[2:]
    i, j = np.divmod(argmax.astype(np.int64), kw)
    rows = (sh * np.arange(ho) - top)[:, None] + i * dh
    columns = sw * np.arange(wo) - left + j * dw
    return rows * x_shape[3] + columns


def max_pool2d_backward(grad_out, cache):
    """Send each output gradient (N, C, Ho, Wo) to its window's picked element; overlapping windows add up."""
    argmax, x_shape, kernel, stride, pads, dilation, out_shape = cache
    _check_grad("max_pool2d_backward", grad_out, out_shape, grad_out.dtype)
    grad_out = _in_layout_of(grad_out, argmax)
    grad_padded = _zeros_padded(argmax, x_shape, pads, grad_out.dtype)
    overlapping = any(s < d * (k - 1) + 1 for s, k, d in zip(stride, kernel, dilation, strict=True))
    for k, rows, columns in _offsets(kernel, stride, out_shape[2:], dilation):
        if overlapping:
            grad_padded[:, :, rows, columns] += _masked(grad_out, argmax == k)
        else:  # each input element is in one window at most: write in place instead of adding
            _masked(grad_out, argmax == k, out=grad_padded[:, :, rows, columns])
    return _crop(grad_padded, x_shape, pads)


def _avg_divisor(x_shape, kernel, stride, padding, out_size, count_include_pad, dtype):
    """torch's divisor per output pixel (Ho, Wo): the window clipped to the padded input, or to the input
    itself without count_include_pad."""
    counts = []
    for size, k, s, p, out in zip(x_shape[2:], kernel, stride, padding, out_size, strict=True):
        starts = s * np.arange(out) - p
        ends = np.minimum(starts + k, size + p)
        counts.append(ends - starts if count_include_pad else np.minimum(ends, size) - np.maximum(starts, 0))
    return np.multiply.outer(*counts).astype(dtype)


def avg_pool2d_forward(x, kernel_size, stride=None, padding=0, ceil_mode=False, count_include_pad=True,
                       divisor_override=None):
    """Mean over each window of x (N, C, H, W) -> (N, C, Ho, Wo), divided as torch divides (see _avg_divisor)."""
    kernel, stride, padding, _, out_size = check_pool("avg_pool2d_forward", x, kernel_size, stride, padding,
                                                      1, ceil_mode)
    if divisor_override is not None and (not is_int(divisor_override) or divisor_override == 0):
        raise ValueError(f"avg_pool2d_forward: divisor_override must be a nonzero int or None, "
                         f"got {divisor_override!r}")
    pads = _pads(x.shape, kernel, stride, padding, (1, 1), out_size)
    x_padded = _pad(x, pads, 0)
    out = np.zeros_like(x, shape=(*x.shape[:2], *out_size))
    for _, rows, columns in _offsets(kernel, stride, out_size, (1, 1)):
        out += x_padded[:, :, rows, columns]
    if divisor_override is None:
        divisor = _avg_divisor(x.shape, kernel, stride, padding, out_size, count_include_pad, x.dtype)
    else:
        divisor = x.dtype.type(divisor_override)
    out /= divisor
    return out, (x.shape, kernel, stride, pads, divisor, out.shape)


def avg_pool2d_backward(grad_out, cache):
    """Share each output gradient (N, C, Ho, Wo) among its window's pixels, each getting 1 / divisor of it."""
    x_shape, kernel, stride, pads, divisor, out_shape = cache
    _check_grad("avg_pool2d_backward", grad_out, out_shape, grad_out.dtype)
    grad_share = grad_out / divisor
    grad_padded = _zeros_padded(grad_out, x_shape, pads, grad_out.dtype)
    for _, rows, columns in _offsets(kernel, stride, out_shape[2:], (1, 1)):
        grad_padded[:, :, rows, columns] += grad_share
    return _crop(grad_padded, x_shape, pads)
