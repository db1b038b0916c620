"""2-D convolution (torch's cross-correlation) as patches plus one matrix product per direction, NCHW.

The forward copies a strided window view of the channels-last padded input into a (N, Ho, Wo, kh, kw, C) array
(one GEMM row per output pixel), so the convolution is a single GEMM against the flattened filters. The backward
computes the patch gradients kernel offset by kernel offset in one stacked product and adds each contiguous
slab back onto the pixels it came from (never np.add.at).

Outputs and input gradients are NCHW views of channels-last memory, the layout the GEMMs produce (like torch's
channels_last format): shapes and values are NCHW, and the next convolution's patches, the backward's
(N*Ho*Wo, O) gradient rows and the elementwise layers in between need no transposing copy.
"""

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from ._utils import _channel_sum, _pair, _window_slices


def conv2d_output_size(h, w, kernel_size, stride, padding):
    """Output (Ho, Wo) of sliding a window over (H, W): torch's floor formula (dilation 1)."""
    (kh, kw), (sh, sw), (ph, pw) = _pair(kernel_size), _pair(stride), _pair(padding)
    return (h + 2 * ph - kh) // sh + 1, (w + 2 * pw - kw) // sw + 1


def _patches(x, kernel_size, stride, padding):
    """Patches of x (N, C, H, W) as a contiguous (N, Ho, Wo, kh, kw, C) array: one GEMM row per output pixel."""
    n, c, h, w = x.shape
    (kh, kw), (sh, sw), (ph, pw) = _pair(kernel_size), _pair(stride), _pair(padding)
    x_padded = np.zeros((n, h + 2 * ph, w + 2 * pw, c), dtype=x.dtype)
    x_padded[:, ph : ph + h, pw : pw + w, :] = x.transpose(0, 2, 3, 1)
    windows = sliding_window_view(x_padded, (kh, kw), axis=(1, 2))[:, ::sh, ::sw]  # (N, Ho, Wo, C, kh, kw) view
    if c > 1:
        return np.ascontiguousarray(windows.transpose(0, 1, 2, 4, 5, 3))  # one copy, in runs of kw*C values
    # One channel (an input image): a copy per kernel offset moves runs of Wo values instead of kw, 3x faster.
    patches = np.empty((n, *windows.shape[1:3], kh, kw, c), dtype=x.dtype)
    for i in range(kh):
        for j in range(kw):
            patches[:, :, :, i, j] = windows[..., i, j]
    return patches


def _add_patches(grad_patches, x_shape, stride, padding):
    """Adjoint of _patches for offset-major (kh, kw, N, Ho, Wo, C) gradients -> (N, C, H, W), channels-last memory.

    Slab (i, j) holds the gradient of every patch entry taken at kernel offset (i, j); it adds onto the
    padded input's pixels in one shifted, strided slice (overlapping windows add up).
    """
    n, c, h, w = x_shape
    kh, kw, _, ho, wo, _ = grad_patches.shape
    ph, pw = _pair(padding)
    grad_padded = np.zeros((n, h + 2 * ph, w + 2 * pw, c), dtype=grad_patches.dtype)
    for i in range(kh):
        for j in range(kw):
            rows, columns = _window_slices(i, j, (ho, wo), stride)
            grad_padded[:, rows, columns, :] += grad_patches[i, j]
    return grad_padded[:, ph : ph + h, pw : pw + w, :].transpose(0, 3, 1, 2)


def im2col(x, kernel_size, stride, padding):
    """Patches of x (N, C, H, W) as (N, Ho, Wo, C, kh, kw): one row per output pixel (a view of _patches)."""
    return _patches(x, kernel_size, stride, padding).transpose(0, 1, 2, 5, 3, 4)


def col2im(cols, x_shape, kernel_size, stride, padding):
    """Adjoint of im2col: add every patch entry of cols (N, Ho, Wo, C, kh, kw) back onto its pixel of (N, C, H, W)."""
    return _add_patches(cols.transpose(4, 5, 0, 1, 2, 3), x_shape, stride, padding)


def _weight_rows(weight):
    """Filters (O, C, kh, kw) as (O, kh*kw*C) rows in the patches' (kh, kw, C) order."""
    return weight.transpose(0, 2, 3, 1).reshape(weight.shape[0], -1)


def conv2d_forward(x, weight, bias, stride=1, padding=0):
    """x (N, C, H, W) cross-correlated with weight (O, C, kh, kw), plus bias (O,) or None -> (N, O, Ho, Wo)."""
    n = x.shape[0]
    out_channels, _, kh, kw = weight.shape
    patches = _patches(x, (kh, kw), stride, padding)
    ho, wo = patches.shape[1:3]
    out = patches.reshape(n * ho * wo, -1) @ _weight_rows(weight).T  # (N*Ho*Wo, O)
    if bias is not None:
        out += bias
    out = out.reshape(n, ho, wo, out_channels).transpose(0, 3, 1, 2)  # NCHW view, channels-last memory
    return out, (patches, x.shape, weight, bias is not None, stride, padding)


def conv2d_backward(grad_out, cache):
    """grad_out (N, O, Ho, Wo) -> (grad_x, grad_weight, grad_bias or None) of conv2d_forward."""
    patches, x_shape, weight, has_bias, stride, padding = cache
    n, ho, wo, kh, kw, in_channels = patches.shape
    out_channels = weight.shape[0]
    # One row per output pixel, like the patches: free when grad_out is channels-last, else one copy.
    grad_rows = grad_out.transpose(0, 2, 3, 1).reshape(n * ho * wo, out_channels)
    grad_bias = _channel_sum(grad_out) if has_bias else None
    grad_weight = grad_rows.T @ patches.reshape(n * ho * wo, -1)  # (O, kh*kw*C)
    grad_weight = grad_weight.reshape(out_channels, kh, kw, in_channels).transpose(0, 3, 1, 2)
    # (N*Ho*Wo, O) @ (O, C) for every kernel offset in one stacked product, offset-major, so that each slab
    # _add_patches adds is one contiguous (N, Ho, Wo, C) block.
    weight_per_offset = weight.transpose(2, 3, 0, 1).reshape(kh * kw, out_channels, in_channels)
    grad_patches = np.matmul(grad_rows, weight_per_offset).reshape(kh, kw, n, ho, wo, in_channels)
    return _add_patches(grad_patches, x_shape, stride, padding), grad_weight, grad_bias
