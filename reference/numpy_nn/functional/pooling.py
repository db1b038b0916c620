"""2-D max, average and adaptive average pooling of NCHW arrays, built from kh*kw shifted strided views."""

import numpy as np

from ._utils import _in_layout_of, _masked, _pair, _window_slices
from .conv import conv2d_output_size


def pool_output_size(h, w, kernel_size, stride, padding):
    """Output (Ho, Wo) of pooling windows over (H, W): the convolution floor formula (torch's ceil_mode=False)."""
    return conv2d_output_size(h, w, kernel_size, stride, padding)


def _offsets(kernel_size, stride, out_size):
    """Yield (k, rows, columns) for every kernel offset k = i * kw + j, in row-major order."""
    kh, kw = kernel_size
    for i in range(kh):
        for j in range(kw):
            yield (i * kw + j, *_window_slices(i, j, out_size, stride))


def _pad(x, padding, value):
    """x (N, C, H, W) padded by (ph, pw) on both sides of H and W with a constant, in x's memory layout."""
    (n, c, h, w), (ph, pw) = x.shape, padding
    if ph == pw == 0:
        return x
    x_padded = np.full_like(x, value, shape=(n, c, h + 2 * ph, w + 2 * pw))
    x_padded[:, :, ph : ph + h, pw : pw + w] = x
    return x_padded


def _zeros_padded(like, x_shape, padding, dtype):
    """Zero gradient buffer for an (N, C, H, W) input padded by (ph, pw), in the memory layout of `like`."""
    (n, c, h, w), (ph, pw) = x_shape, padding
    return np.zeros_like(like, dtype=dtype, shape=(n, c, h + 2 * ph, w + 2 * pw))


def _crop(x_padded, padding):
    """Undo _pad: the (N, C, H, W) interior of a padded array (a view)."""
    ph, pw = padding
    return x_padded[:, :, ph : x_padded.shape[2] - ph, pw : x_padded.shape[3] - pw]


def max_pool2d_forward(x, kernel_size, stride, padding):
    """Max over each window of x (N, C, H, W), padding counting as -inf -> (N, C, Ho, Wo).

    Picks like torch CPU: the first maximum in row-major window order, or the last NaN if the window has one.
    """
    n, c, h, w = x.shape
    (kh, kw), (sh, sw), (ph, pw) = _pair(kernel_size), _pair(stride), _pair(padding)
    out_size = pool_output_size(h, w, kernel_size, stride, padding)
    x_padded = _pad(x, (ph, pw), -np.inf)
    windows = (x_padded[:, :, rows, columns] for _, rows, columns in _offsets((kh, kw), stride, out_size))
    out = np.array(next(windows), order="K")  # offset 0; x's memory layout, as every buffer below
    # Offset k = i * kw + j of the picked element per window. torch starts from the window's first in-bounds
    # element, so a window of -inf values hands its gradient to that element, never to the padding.
    index_type = np.min_scalar_type(kh * kw - 1)
    argmax = np.empty_like(out, dtype=index_type)
    first_row = np.maximum(ph - sh * np.arange(out_size[0]), 0)
    first_column = np.maximum(pw - sw * np.arange(out_size[1]), 0)
    argmax[...] = first_row[:, None] * kw + first_column
    taken = np.empty_like(out, dtype=bool)
    for k, window in enumerate(windows, start=1):
        np.greater(window, out, out=taken)  # never true for NaN: windows with a NaN are settled below
        np.maximum(out, window, out=out)  # NaN-propagating
        # Offsets only grow, so this sets argmax to k exactly where taken (a branch-free select: np.where and
        # masked copies are several times slower on random masks).
        np.maximum(argmax, taken * index_type.type(k), out=argmax)
    if np.isnan(out).any():  # rare: torch picks the last NaN of a window
        for k, rows, columns in _offsets((kh, kw), stride, out_size):
            argmax[np.isnan(x_padded[:, :, rows, columns])] = k
    return out, (argmax, x.shape, (kh, kw), stride, (ph, pw))


def max_pool2d_backward(grad_out, cache):
    """Send each output gradient (N, C, Ho, Wo) to its window's picked element; overlapping windows add up."""
    argmax, x_shape, kernel_size, stride, padding = cache
    grad_out = _in_layout_of(grad_out, argmax)
    grad_padded = _zeros_padded(argmax, x_shape, padding, grad_out.dtype)
    overlapping = any(s < k for s, k in zip(_pair(stride), kernel_size, strict=True))
    for k, rows, columns in _offsets(kernel_size, stride, grad_out.shape[2:]):
        if overlapping:
            grad_padded[:, :, rows, columns] += _masked(grad_out, argmax == k)
        else:  # each input element is in one window at most: write in place instead of adding
            _masked(grad_out, argmax == k, out=grad_padded[:, :, rows, columns])
    return _crop(grad_padded, padding)


def avg_pool2d_forward(x, kernel_size, stride, padding):
    """Mean over each window of x (N, C, H, W) -> (N, C, Ho, Wo); zero padding counts (count_include_pad=True)."""
    (kh, kw), padding = _pair(kernel_size), _pair(padding)
    out_size = pool_output_size(*x.shape[2:], kernel_size, stride, padding)
    x_padded = _pad(x, padding, 0)
    out = np.zeros_like(x, shape=(*x.shape[:2], *out_size))
    for _, rows, columns in _offsets((kh, kw), stride, out_size):
        out += x_padded[:, :, rows, columns]
    out /= kh * kw
    return out, (x.shape, (kh, kw), stride, padding)


def avg_pool2d_backward(grad_out, cache):
    """Share each output gradient (N, C, Ho, Wo) equally among its window's kh*kw pixels (padding included)."""
    x_shape, (kh, kw), stride, padding = cache
    grad_share = grad_out / (kh * kw)
    grad_padded = _zeros_padded(grad_out, x_shape, padding, grad_out.dtype)
    for _, rows, columns in _offsets((kh, kw), stride, grad_out.shape[2:]):
        grad_padded[:, :, rows, columns] += grad_share
    return _crop(grad_padded, padding)


def adaptive_avg_pool2d_forward(x, output_size):
    """Average x (N, C, H, W) over equal blocks down to output_size (Ho, Wo), which must divide (H, W).

    (1, 1) is global average pooling. When the sizes divide, torch's adaptive windows are exactly average
    pooling with kernel = stride = (H / Ho, W / Wo), so the cache is avg_pool2d's.
    """
    (h, w), (ho, wo) = x.shape[2:], _pair(output_size)
    return avg_pool2d_forward(x, (h // ho, w // wo), (h // ho, w // wo), 0)


def adaptive_avg_pool2d_backward(grad_out, cache):
    """Spread each output gradient (N, C, Ho, Wo) evenly over its (H / Ho, W / Wo) block."""
    return avg_pool2d_backward(grad_out, cache)
