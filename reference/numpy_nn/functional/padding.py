"""Non-zero padding of NCHW arrays ('reflect', 'replicate', 'circular'), as Conv2d's padding_mode applies it.

Every padded pixel copies one input pixel, row and column independently, so the padding is the linear map
x -> R x C^T with 0/1 source matrices R (H', H) and C (W', W); its adjoint folds each padded pixel's gradient
back onto the pixel it copies: R^T g C.
"""

import numpy as np

from ..validation import check_choice, check_float_dtype, int_pair

PAD_MODES = {"reflect": "reflect", "replicate": "edge", "circular": "wrap"}  # torch's name -> np.pad's


def _check_pad(x, padding, mode):
    """Validate as torch.nn.functional.pad: reflect pads < size, circular pads <= size; per-side ints >= 0."""
    name = "pad2d_forward"
    check_float_dtype(name, x)
    check_choice(name, "mode", mode, PAD_MODES)
    if x.ndim != 4:
        raise ValueError(f"{name}: expected x of shape (N, C, H, W), got {x.shape}")
    if not isinstance(padding, (tuple, list)) or len(padding) != 4:
        raise ValueError(f"{name}: padding must be (left, right, top, bottom), got {padding!r}")
    (left, right), (top, bottom) = int_pair(name, "padding", padding[:2], 0), int_pair(name, "padding", padding[2:], 0)
    h, w = x.shape[2:]
    too_big = {"reflect": lambda pad, size: pad >= size, "circular": lambda pad, size: pad > size}.get(mode)
    if too_big and any(too_big(pad, size) for pad, size in ((left, w), (right, w), (top, h), (bottom, h))):
        limit = "smaller than" if mode == "reflect" else "at most"
        raise ValueError(f"{name}: {mode} padding {tuple(padding)} must be {limit} the input size {(h, w)} "
                         f"(input shape {x.shape})")
    return (top, bottom), (left, right)


def pad2d_forward(x, padding, mode):
    """x (N, C, H, W) padded by (left, right, top, bottom) in `mode` ('reflect', 'replicate', 'circular'),
    as torch.nn.functional.pad."""
    rows, columns = _check_pad(x, padding, mode)
    out = np.pad(x, ((0, 0), (0, 0), rows, columns), mode=PAD_MODES[mode])
    return out, (x.shape, rows, columns, mode, out.shape)


def _source_matrix(size, sides, mode, dtype):
    """0/1 matrix (size + pads, size) whose row p marks the input position that padded position p copies."""
    source = np.pad(np.arange(size), sides, mode=PAD_MODES[mode])
    return (source[:, None] == np.arange(size)).astype(dtype)


def pad2d_backward(grad_out, cache):
    """Fold the gradient of every padded pixel back onto the input pixel it copies -> (N, C, H, W)."""
    x_shape, rows, columns, mode, out_shape = cache
    check_float_dtype("pad2d_backward", grad_out)
    if grad_out.shape != out_shape:
        raise ValueError(f"pad2d_backward: expected grad_out of shape {out_shape}, got {grad_out.shape}")
    row_source = _source_matrix(x_shape[2], rows, mode, grad_out.dtype)
    column_source = _source_matrix(x_shape[3], columns, mode, grad_out.dtype)
    return row_source.T @ grad_out @ column_source
