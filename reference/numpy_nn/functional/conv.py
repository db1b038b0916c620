"""2-D convolution (torch's cross-correlation) as im2col plus one matrix product per direction, NCHW.

im2col copies the kh*kw shifted, strided views of the padded input into a patch array, one row per output
pixel, so the convolution is a single GEMM against the flattened filters. col2im is its exact adjoint: the
same kh*kw views, added back into a zero padded buffer (never np.add.at).
"""

import numpy as np

from ._utils import _pair, _window_slices


def conv2d_output_size(h, w, kernel_size, stride, padding):
    """Output (Ho, Wo) of sliding a window over (H, W): torch's floor formula (dilation 1)."""
    (kh, kw), (sh, sw), (ph, pw) = _pair(kernel_size), _pair(stride), _pair(padding)
    return (h + 2 * ph - kh) // sh + 1, (w + 2 * pw - kw) // sw + 1


def im2col(x, kernel_size, stride, padding):
    """Patches of x (N, C, H, W) as a contiguous (N, Ho, Wo, C, kh, kw) array: one GEMM row per output pixel."""
    n, c, h, w = x.shape
    (kh, kw), (ph, pw) = _pair(kernel_size), _pair(padding)
    out_size = conv2d_output_size(h, w, kernel_size, stride, padding)
    # Channels-last padded copy: each shifted view below is then copied in runs of C contiguous values,
    # about twice as fast as reshaping a sliding_window_view of the NCHW input.
    x_padded = np.zeros((n, h + 2 * ph, w + 2 * pw, c), dtype=x.dtype)
    x_padded[:, ph : ph + h, pw : pw + w, :] = x.transpose(0, 2, 3, 1)
    cols = np.empty((n, *out_size, c, kh, kw), dtype=x.dtype)
    for i in range(kh):
        for j in range(kw):
            rows, columns = _window_slices(i, j, out_size, stride)
            cols[..., i, j] = x_padded[:, rows, columns, :]
    return cols


def col2im(cols, x_shape, kernel_size, stride, padding):
    """Adjoint of im2col: add every patch entry of cols (N, Ho, Wo, C, kh, kw) back onto its pixel of (N, C, H, W).

    cols may be any strided view; slabs cols[..., i, j] with contiguous channels make the adds fastest.
    """
    n, c, h, w = x_shape
    (kh, kw), (ph, pw) = _pair(kernel_size), _pair(padding)
    out_size = cols.shape[1:3]
    grad_padded = np.zeros((n, h + 2 * ph, w + 2 * pw, c), dtype=cols.dtype)
    for i in range(kh):
        for j in range(kw):
            rows, columns = _window_slices(i, j, out_size, stride)
            grad_padded[:, rows, columns, :] += cols[..., i, j]
    return np.ascontiguousarray(grad_padded[:, ph : ph + h, pw : pw + w, :].transpose(0, 3, 1, 2))


def conv2d_forward(x, weight, bias, stride=1, padding=0):
    """x (N, C, H, W) cross-correlated with weight (O, C, kh, kw), plus bias (O,) or None -> (N, O, Ho, Wo)."""
    n = x.shape[0]
    out_channels, _, kh, kw = weight.shape
    cols = im2col(x, (kh, kw), stride, padding)
    ho, wo = cols.shape[1:3]
    out = cols.reshape(n * ho * wo, -1) @ weight.reshape(out_channels, -1).T  # (N*Ho*Wo, O)
    if bias is not None:
        out += bias
    out = np.ascontiguousarray(out.reshape(n, ho, wo, out_channels).transpose(0, 3, 1, 2))
    return out, (cols, x.shape, weight, bias is not None, stride, padding)


def conv2d_backward(grad_out, cache):
    """grad_out (N, O, Ho, Wo) -> (grad_x, grad_weight, grad_bias or None) of conv2d_forward."""
    cols, x_shape, weight, has_bias, stride, padding = cache
    n, ho, wo, in_channels, kh, kw = cols.shape
    out_channels = weight.shape[0]
    # Rows ordered (n, ho, wo) like the patches: one transposing copy, then every product is a plain GEMM.
    grad_out_mat = np.ascontiguousarray(grad_out.transpose(0, 2, 3, 1)).reshape(n * ho * wo, out_channels)
    grad_bias = grad_out.sum(axis=(0, 2, 3)) if has_bias else None
    grad_weight = (grad_out_mat.T @ cols.reshape(n * ho * wo, -1)).reshape(weight.shape)
    # The (N*Ho*Wo, O) @ (O, C) product for all kernel offsets at once, stacked offset-major so that each
    # slab col2im adds is one contiguous (N, Ho, Wo, C) block.
    weight_per_offset = weight.transpose(2, 3, 0, 1).reshape(kh * kw, out_channels, in_channels)
    grad_cols = np.matmul(grad_out_mat, weight_per_offset).reshape(kh, kw, n, ho, wo, in_channels)
    grad_x = col2im(grad_cols.transpose(2, 3, 4, 5, 0, 1), x_shape, (kh, kw), stride, padding)
    return grad_x, grad_weight, grad_bias
