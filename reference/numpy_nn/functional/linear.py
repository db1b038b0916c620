"""Fully connected layer y = x W^T + b (torch's weight layout) on inputs (*, in_features)."""

import math

from ..validation import check_float_dtype


def linear_forward(x, weight, bias):
    """x (*, in_features), weight (out_features, in_features), bias (out_features,) or None -> (*, out_features)."""
    check_float_dtype("linear_forward", x)
    check_float_dtype("linear_forward weight", weight, x.dtype)
    if weight.ndim != 2 or x.ndim < 1 or x.shape[-1] != weight.shape[1]:
        raise ValueError(f"linear_forward: expected x (*, {weight.shape[-1]}) and weight (out_features, "
                         f"in_features), got x {x.shape} and weight {weight.shape}")
    if bias is not None:
        check_float_dtype("linear_forward bias", bias, x.dtype)
        if bias.shape != weight.shape[:1]:
            raise ValueError(f"linear_forward: expected bias of shape {weight.shape[:1]}, got {bias.shape}")
    out = x @ weight.T
    if bias is not None:
        out = out + bias
    return out, (x, weight, bias is not None, out.shape)


def linear_backward(grad_out, cache):
    """grad_out (*, out_features) -> (grad_x, grad_weight, grad_bias or None); the leading dims are all samples."""
    x, weight, has_bias, out_shape = cache
    check_float_dtype("linear_backward", grad_out, weight.dtype)
    if grad_out.shape != out_shape:
        raise ValueError(f"linear_backward: expected grad_out of shape {out_shape}, got {grad_out.shape}")
    samples = math.prod(x.shape[:-1])
    grad_rows, x_rows = grad_out.reshape(samples, weight.shape[0]), x.reshape(samples, weight.shape[1])
    grad_bias = grad_rows.sum(axis=0) if has_bias else None
    return grad_out @ weight, grad_rows.T @ x_rows, grad_bias
