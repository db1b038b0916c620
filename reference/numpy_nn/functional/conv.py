"""2-D convolution (torch's cross-correlation) as patches plus one matrix product per direction, NCHW.

The forward copies a strided window view of the channels-last padded input into a (N, Ho, Wo, G, kh, kw, C/G)
array (one GEMM row per output pixel and group), so the convolution is a single GEMM against the flattened
filters (a stack of G GEMMs for grouped convolutions). The backward computes the patch gradients kernel offset
by kernel offset, one product per offset into one reused slab, and adds each slab back onto the pixels it came from
(never np.add.at).
Dilation only changes which pixels a window picks. Depthwise convolutions (one filter per channel) skip the
patches: kh*kw shifted multiply-adds over the channels-last input. Dilated convolutions (one group) skip them
too: one GEMM per kernel offset over only the output pixels whose tap lies inside the input, since a dilated
kernel on a small map mostly reads padding (5 of 9 taps at dilation 4 on 8x8, DeepLab's resnet50). So do
convolutions whose patches would be mostly padding and large enough to gain (ResNet's 3x3 convolutions on 4x4,
2x2 and 1x1 maps, as on 8x8 digits).

Outputs and input gradients are NCHW views of channels-last memory, the layout the GEMMs produce (like torch's
channels_last format): shapes and values are NCHW, and the next convolution's patches, the backward's
(N*Ho*Wo, O) gradient rows and the elementwise layers in between need no transposing copy.
"""

import functools

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from ..validation import check_float_dtype, int_pair, is_int
from ._utils import _channel_sum, _pair, _sides, _window_slices


def conv2d_output_size(h, w, kernel_size, stride=1, padding=0, dilation=1):
    """Output (Ho, Wo) of sliding a dilated window over (H, W): torch's floor formula.

    `padding` is an int, a pair or per-side ((top, bottom), (left, right))."""
    (kh, kw), (sh, sw), (dh, dw) = _pair(kernel_size), _pair(stride), _pair(dilation)
    (top, bottom), (left, right) = _sides(padding)
    return (h + top + bottom - dh * (kh - 1) - 1) // sh + 1, (w + left + right - dw * (kw - 1) - 1) // sw + 1


def same_padding(kernel_size, dilation=1):
    """torch's padding='same' as ((top, bottom), (left, right)): d (k - 1) per axis, the odd pixel at the end."""
    totals = [d * (k - 1) for k, d in zip(_pair(kernel_size), _pair(dilation), strict=True)]
    return tuple((total // 2, total - total // 2) for total in totals)


def conv2d_padding(padding, kernel_size, stride=1, dilation=1, owner="conv2d_forward"):
    """Per-side padding ((top, bottom), (left, right)) of torch's int, pair, 'valid' or 'same' (stride 1 only)."""
    if padding == "valid":
        return (0, 0), (0, 0)
    if padding == "same":
        if _pair(stride) != (1, 1):
            raise ValueError(f"{owner}: padding='same' is not supported for strided convolutions, got stride={stride}")
        return same_padding(kernel_size, dilation)
    if isinstance(padding, str):
        raise ValueError(f"{owner}: padding must be 'valid', 'same', an int or a pair of ints, got {padding!r}")
    return _sides(int_pair(owner, "padding", padding, minimum=0))


def _padded_channels_last(x, pads, groups=1):
    """x (N, C, H, W) zero-padded per side as a contiguous group-major, channels-last (G, N, H', W', C/G) array."""
    n, c, h, w = x.shape
    (top, bottom), (left, right) = pads
    x_padded = np.zeros((groups, n, h + top + bottom, w + left + right, c // groups), dtype=x.dtype)
    x_padded[:, :, top : top + h, left : left + w, :] = x.reshape(n, groups, c // groups, h, w).transpose(1, 0, 3, 4, 2)
    return x_padded


def _windows(x_padded, kernel_size, stride, dilation):
    """(..., Ho, Wo, C, kh, kw) view of the dilated windows of a (..., H', W', C) channels-last padded input."""
    (kh, kw), (sh, sw), (dh, dw) = kernel_size, stride, dilation
    span = (dh * (kh - 1) + 1, dw * (kw - 1) + 1)
    return sliding_window_view(x_padded, span, axis=(-3, -2))[..., ::sh, ::sw, :, ::dh, ::dw]


def _patches(x, kernel_size, stride, pads, dilation, groups=1):
    """Patches of x (N, C, H, W) as a contiguous (G, N, Ho, Wo, kh, kw, C/G) array: one GEMM row per group and pixel."""
    kh, kw = kernel_size
    windows = _windows(_padded_channels_last(x, pads, groups), kernel_size, stride, dilation)
    windows = windows.transpose(0, 1, 2, 3, 5, 6, 4)  # (G, N, Ho, Wo, kh, kw, C/G)
    if x.shape[1] > 1:
        return np.ascontiguousarray(windows)  # one copy, in runs of kw*C/G values
    # One channel (an input image): a copy per kernel offset moves runs of Wo values instead of kw, 3x faster.
    patches = np.empty(windows.shape, dtype=x.dtype)
    for i in range(kh):
        for j in range(kw):
            patches[..., i, j, :] = windows[..., i, j, :]
    return patches


def _add_patches(slab, x_shape, groups, kernel_size, out_size, stride, pads, dilation, dtype):
    """Adjoint of _patches, kernel offset by kernel offset -> (N, C, H, W).

    `slab(i, j)` is the (G, N, Ho, Wo, C/G) gradient of every patch entry taken at kernel offset (i, j); it adds
    onto the padded input's pixels in one shifted, strided slice (overlapping windows add up). The result is a
    view of channels-last memory when G = 1.
    """
    n, c, h, w = x_shape
    (top, bottom), (left, right) = pads
    grad_padded = np.zeros((groups, n, h + top + bottom, w + left + right, c // groups), dtype=dtype)
    for i in range(kernel_size[0]):
        for j in range(kernel_size[1]):
            rows, columns = _window_slices(i, j, out_size, stride, dilation)
            grad_padded[:, :, rows, columns] += slab(i, j)
    grad_x = grad_padded[:, :, top : top + h, left : left + w, :].transpose(1, 0, 4, 2, 3)  # (N, G, C/G, H, W)
    return grad_x.reshape(x_shape)


def im2col(x, kernel_size, stride, padding, dilation=1):
    """Patches of x (N, C, H, W) as (N, Ho, Wo, C, kh, kw): one row per output pixel (a view of _patches)."""
    args = _pair(kernel_size), _pair(stride), _sides(padding), _pair(dilation)
    return _patches(x, *args)[0].transpose(0, 1, 2, 5, 3, 4)


def col2im(cols, x_shape, kernel_size, stride, padding, dilation=1):
    """Adjoint of im2col: add every patch entry of cols (N, Ho, Wo, C, kh, kw) back onto its pixel of (N, C, H, W)."""
    grad_patches = cols.transpose(4, 5, 0, 1, 2, 3)[:, :, None]  # (kh, kw, 1, N, Ho, Wo, C)
    return _add_patches(lambda i, j: grad_patches[i, j], x_shape, 1, _pair(kernel_size), cols.shape[1:3],
                        _pair(stride), _sides(padding), _pair(dilation), cols.dtype)


def _check_conv(x, weight, bias, stride, padding, dilation, groups):
    """Validate conv2d_forward's arguments as torch does; returns (stride, per-side padding, dilation)."""
    name = "conv2d_forward"
    check_float_dtype(name, x)
    check_float_dtype(f"{name} weight", weight, x.dtype)
    if x.ndim != 4 or weight.ndim != 4:
        raise ValueError(f"{name}: expected x (N, C, H, W) and weight (O, C/groups, kh, kw), got {x.shape} and "
                         f"{weight.shape}")
    if not is_int(groups) or groups < 1 or x.shape[1] != weight.shape[1] * groups or weight.shape[0] % groups:
        raise ValueError(f"{name}: groups={groups!r} must be a positive int dividing the output channels "
                         f"{weight.shape[0]}, with input channels {x.shape[1]} = weight.shape[1] * groups")
    if bias is not None:
        check_float_dtype(f"{name} bias", bias, x.dtype)
        if bias.shape != weight.shape[:1]:
            raise ValueError(f"{name}: expected bias of shape {weight.shape[:1]}, got {bias.shape}")
    stride, dilation = int_pair(name, "stride", stride, 1), int_pair(name, "dilation", dilation, 1)
    pads = conv2d_padding(padding, weight.shape[2:], stride, dilation)
    out = conv2d_output_size(*x.shape[2:], weight.shape[2:], stride, pads, dilation)
    if x.shape[0] == 0 or min(out) < 1:
        raise ValueError(f"{name}: input {x.shape} with padding {padding} is too small for kernel "
                         f"{weight.shape[2:]} with dilation {dilation} (output size {out})")
    return stride, pads, dilation


def _is_depthwise(weight, groups):
    """One filter per channel: groups == in_channels == out_channels."""
    return groups > 1 and weight.shape[0] == groups and weight.shape[1] == 1


def conv2d_forward(x, weight, bias, stride=1, padding=0, dilation=1, groups=1):
    """x (N, C, H, W) cross-correlated with weight (O, C/groups, kh, kw), plus bias (O,) or None -> (N, O, Ho, Wo).

    Arguments as torch.nn.functional.conv2d: `padding` is an int, a pair, 'valid' or 'same' (stride 1)."""
    stride, pads, dilation = _check_conv(x, weight, bias, stride, padding, dilation, groups)
    n = x.shape[0]
    out_channels, _, kh, kw = weight.shape
    ho, wo = conv2d_output_size(*x.shape[2:], (kh, kw), stride, pads, dilation)
    if _is_depthwise(weight, groups):
        out, saved = _depthwise_forward(x, weight, stride, pads, dilation)
    elif _by_taps(x.shape, weight.shape, groups, stride, pads, dilation):
        out, saved = _tap_forward(x, weight, stride, pads, dilation)
    else:
        saved = _patches(x, (kh, kw), stride, pads, dilation, groups)  # (G, N, Ho, Wo, kh, kw, C/G)
        out = _group_rows_to_pixels(np.matmul(saved.reshape(groups, n * ho * wo, -1), _weight_columns(weight, groups)))
    if bias is not None:
        out += bias
    out = out.reshape(n, ho, wo, out_channels).transpose(0, 3, 1, 2)  # NCHW view, channels-last memory
    return out, (saved, x.shape, weight, bias is not None, stride, pads, dilation, groups, out.shape)


def _weight_columns(weight, groups):
    """Filters (O, C/G, kh, kw) as (G, kh*kw*C/G, O/G) columns in the patches' (kh, kw, C/G) order."""
    rows = weight.transpose(0, 2, 3, 1).reshape(groups, weight.shape[0] // groups, -1)
    return rows.transpose(0, 2, 1)


def _group_rows_to_pixels(stacked):
    """(G, M, O/G) per-group GEMM results -> (M, O) rows: free for one group, one copy for several."""
    groups, m, _ = stacked.shape
    return stacked[0] if groups == 1 else stacked.transpose(1, 0, 2).reshape(m, -1)


def _depthwise_forward(x, weight, stride, pads, dilation):
    """Depthwise convolution as kh*kw shifted, per-channel scaled adds over channels-last memory -> (M, C) rows."""
    x_padded = _padded_channels_last(x, pads)[0]  # (N, H', W', C)
    kh, kw = weight.shape[2:]
    out_size = conv2d_output_size(*x.shape[2:], (kh, kw), stride, pads, dilation)
    taps = _taps(weight)
    out = np.empty((x.shape[0], *out_size, x.shape[1]), dtype=x.dtype)
    product = np.empty_like(out)
    for i in range(kh):
        for j in range(kw):
            rows, columns = _window_slices(i, j, out_size, stride, dilation)
            if i == j == 0:
                np.multiply(x_padded[:, rows, columns, :], taps[i, j], out=out)
            else:
                out += np.multiply(x_padded[:, rows, columns, :], taps[i, j], out=product)
    return out.reshape(-1, x.shape[1]), x_padded


def _taps(weight):
    """Depthwise filters (C, 1, kh, kw) as contiguous (kh, kw, C): one contiguous per-channel vector per offset
    (broadcasting a strided one is 2x slower)."""
    return np.ascontiguousarray(weight[:, 0].transpose(1, 2, 0))


TAPS_MAX_READ = 0.75  # by taps when at most this share of the patch entries lies inside the input...
TAPS_MIN_SKIPPED = 4_000_000  # ...and the padding skipped is this many multiply-adds (per-offset GEMMs cost more)


@functools.lru_cache(maxsize=512)  # asked twice per layer and step with the same shapes
def _by_taps(x_shape, weight_shape, groups, stride, pads, dilation):
    """Computed kernel offset by kernel offset (see the module docstring): a dilated convolution with one group,
    or one whose windows mostly read padding, where that skips enough work to pay for a GEMM per offset.

    Measured at 1 thread, forward + backward against the patches: a 3x3 convolution on 1x1 maps (512 channels,
    batch 32; 8 of 9 taps read padding) 0.24x the time, on 2x2 maps (256) 0.57x, on 4x4 maps 0.76-0.85x; on
    8x8 maps 0.94x, on 16x16 maps 1.12x, and small channel counts on small maps 1.3-1.9x (hence the limits)."""
    if groups != 1:
        return False
    if dilation != (1, 1):
        return True
    (n, c, _, _), (out_channels, _, kh, kw) = x_shape, weight_shape
    out_size = conv2d_output_size(*x_shape[2:], (kh, kw), stride, pads, dilation)
    read = sum((rows.stop - rows.start) * (columns.stop - columns.start)
               for _, _, rows, columns, _, _ in _tap_slices(x_shape, out_size, weight_shape, stride, pads, dilation))
    entries = kh * kw * out_size[0] * out_size[1]
    return read <= TAPS_MAX_READ * entries and (entries - read) * n * c * out_channels >= TAPS_MIN_SKIPPED


def _axis_taps(size, out, kernel, stride, dilation, before):
    """Per kernel offset along one axis: (output slice, input slice) of the outputs whose tap lies inside the
    input (unpadded coordinates), or None where every tap of that offset reads padding."""
    found = []
    for i in range(kernel):
        shift = i * dilation - before  # output p reads input p * stride + shift
        low, high = max(0, -(shift // stride)), min(out - 1, (size - 1 - shift) // stride)  # ceil(-shift / stride)
        found.append((slice(low, high + 1), slice(low * stride + shift, high * stride + shift + 1, stride))
                     if low <= high else None)
    return found


def _tap_slices(x_shape, out_size, weight_shape, stride, pads, dilation):
    """[(i, j, output rows, output columns, input rows, input columns)] for each kernel offset reading the input."""
    (_, _, h, w), (kh, kw) = x_shape, weight_shape[2:]
    (top, _), (left, _) = pads
    rows = _axis_taps(h, out_size[0], kh, stride[0], dilation[0], top)
    columns = _axis_taps(w, out_size[1], kw, stride[1], dilation[1], left)
    return [(i, j, r[0], c[0], r[1], c[1]) for i, r in enumerate(rows) for j, c in enumerate(columns)
            if r is not None and c is not None]


def _tap_forward(x, weight, stride, pads, dilation):
    """Sum over kernel offsets of (pixels of x that offset reads) @ (that offset's filters) -> (M, O) rows."""
    n, c = x.shape[:2]
    out_size = conv2d_output_size(*x.shape[2:], weight.shape[2:], stride, pads, dilation)
    x_pixels = np.array(x.transpose(0, 2, 3, 1), order="C")  # (N, H, W, C), a copy the backward reads
    out = np.zeros((n, *out_size, weight.shape[0]), dtype=x.dtype)
    taps = {}  # (i, j) -> that offset's filters (O, C), copied only for the offsets that read the input
    for i, j, out_rows, out_columns, rows, columns in _tap_slices(x.shape, out_size, weight.shape, stride, pads,
                                                                  dilation):
        taps[i, j] = np.ascontiguousarray(weight[:, :, i, j])
        read = np.ascontiguousarray(x_pixels[:, rows, columns])
        out[:, out_rows, out_columns] += (read.reshape(-1, c) @ taps[i, j].T).reshape(*read.shape[:3], -1)
    return out.reshape(-1, weight.shape[0]), (x_pixels, taps)


def _tap_backward(grad_pixels, saved, x_shape, weight, stride, pads, dilation, input_grad):
    """(grad_x or None, grad_weight) of _tap_forward: per kernel offset, the same pixels, read and written back."""
    x_pixels, taps = saved
    n, c, h, w = x_shape
    grad_x = np.zeros((n, h, w, c), dtype=grad_pixels.dtype) if input_grad else None
    kh, kw = weight.shape[2:]
    grad_taps = np.zeros((kh, kw, *weight.shape[:2]), dtype=weight.dtype)  # offsets reading only padding keep 0
    for i, j, out_rows, out_columns, rows, columns in _tap_slices(x_shape, grad_pixels.shape[1:3], weight.shape,
                                                                  stride, pads, dilation):
        grad_read = np.ascontiguousarray(grad_pixels[:, out_rows, out_columns]).reshape(-1, weight.shape[0])
        read = np.ascontiguousarray(x_pixels[:, rows, columns])
        grad_taps[i, j] = grad_read.T @ read.reshape(-1, c)
        if input_grad:
            grad_x[:, rows, columns] += (grad_read @ taps[i, j]).reshape(read.shape)
    return None if grad_x is None else grad_x.transpose(0, 3, 1, 2), grad_taps.transpose(2, 3, 0, 1)


def _pixel_sum(x):
    """Per-channel sum (C,) of a contiguous channels-last (N, Ho, Wo, C) array: a matrix-vector product, which BLAS
    adds up in blocks (accurate in float32) and faster than a reduction over three axes."""
    rows = x.reshape(-1, x.shape[-1])
    return np.ones(rows.shape[0], dtype=x.dtype) @ rows


def conv2d_backward(grad_out, cache, input_grad=True):
    """grad_out (N, O, Ho, Wo) -> (grad_x, grad_weight, grad_bias or None) of conv2d_forward. input_grad=False
    skips grad_x (None), as torch does for an input that needs no gradient: the first layer's costs the most."""
    saved, x_shape, weight, has_bias, stride, pads, dilation, groups, out_shape = cache
    check_float_dtype("conv2d_backward", grad_out, weight.dtype)
    if grad_out.shape != out_shape:
        raise ValueError(f"conv2d_backward: expected grad_out of shape {out_shape}, got {grad_out.shape}")
    grad_bias = _channel_sum(grad_out) if has_bias else None
    # One row per output pixel, like the patches: free when grad_out is channels-last, else one copy.
    grad_pixels = np.ascontiguousarray(grad_out.transpose(0, 2, 3, 1))  # (N, Ho, Wo, O)
    if _is_depthwise(weight, groups):
        return (*_depthwise_backward(grad_pixels, saved, x_shape, weight, stride, pads, dilation, input_grad),
                grad_bias)
    if _by_taps(x_shape, weight.shape, groups, stride, pads, dilation):
        return (*_tap_backward(grad_pixels, saved, x_shape, weight, stride, pads, dilation, input_grad), grad_bias)
    _, n, ho, wo, kh, kw, group_channels = saved.shape
    out_channels = weight.shape[0]
    grad_rows = grad_pixels.reshape(n * ho * wo, groups, out_channels // groups).transpose(1, 0, 2)  # (G, M, O/G)
    grad_weight = np.matmul(grad_rows.transpose(0, 2, 1), saved.reshape(groups, n * ho * wo, -1))  # (G, O/G, K)
    grad_weight = grad_weight.reshape(out_channels, kh, kw, group_channels).transpose(0, 3, 1, 2)
    if not input_grad:
        return None, grad_weight, grad_bias
    # Per kernel offset, (M, O/G) @ (O/G, C/G) for every group into one reused (G, N, Ho, Wo, C/G) slab: a ninth
    # of the memory of all offsets' at once, which at 2 BLAS threads were written into freshly mapped pages (page
    # faults in both threads: in simple_cnn's second convolution 2.7-13.4 ms across processes, per offset 2.1-4.0).
    weight_per_offset = weight.reshape(groups, out_channels // groups, group_channels, kh * kw)
    slab = np.empty((groups, n * ho * wo, group_channels), dtype=grad_rows.dtype)

    def gradient_at(i, j):
        np.matmul(grad_rows, weight_per_offset[..., i * kw + j], out=slab)
        return slab.reshape(groups, n, ho, wo, group_channels)

    return (_add_patches(gradient_at, x_shape, groups, (kh, kw), (ho, wo), stride, pads, dilation, slab.dtype),
            grad_weight, grad_bias)


def _depthwise_backward(grad_pixels, x_padded, x_shape, weight, stride, pads, dilation, input_grad):
    """(grad_x or None, grad_weight) of _depthwise_forward: the same kh*kw shifted views, read and written back."""
    n, c, h, w = x_shape
    kh, kw = weight.shape[2:]
    (top, _), (left, _) = pads
    taps = _taps(weight)
    grad_padded = np.zeros_like(x_padded) if input_grad else None
    grad_weight = np.empty_like(weight)
    product = np.empty_like(grad_pixels)
    for i in range(kh):
        for j in range(kw):
            rows, columns = _window_slices(i, j, grad_pixels.shape[1:3], stride, dilation)
            grad_weight[:, 0, i, j] = _pixel_sum(np.multiply(grad_pixels, x_padded[:, rows, columns, :], out=product))
            if input_grad:
                grad_padded[:, rows, columns, :] += np.multiply(grad_pixels, taps[i, j], out=product)
    if grad_padded is None:
        return None, grad_weight
    return grad_padded[:, top : top + h, left : left + w, :].transpose(0, 3, 1, 2), grad_weight
