"""Batch normalization over (N, C, *): per-channel statistics, training and evaluation forms.

weight and bias may be None (torch's affine=False): the output is then the normalized input itself.
"""

from typing import NamedTuple

import numpy as np

from ..validation import check_float_dtype
from ._utils import _channel_sum


class BatchNormCache(NamedTuple):
    """What the backward pass needs; `mean` and `var` are the per-channel statistics the forward used."""

    x_hat: np.ndarray  # normalized input (N, C, *)
    weight: np.ndarray | None  # (C,), None without affine parameters
    inv_std: np.ndarray  # 1 / sqrt(var + eps), (C,)
    mean: np.ndarray  # batch mean (training) or running mean (evaluation), (C,)
    var: np.ndarray  # biased batch variance (training) or running variance (evaluation), (C,)
    training: bool
    has_bias: bool = True


def _per_channel(v, ndim):
    """View a (C,) vector as (1, C, 1, ...) so it broadcasts over an (N, C, *) array of `ndim` dims."""
    return v.reshape(1, -1, *(1,) * (ndim - 2))


def _check(owner, x, **vectors):
    """x (N, C, *) of float dtype; every given per-channel vector (C,) of x's dtype (None allowed)."""
    check_float_dtype(owner, x)
    if x.ndim < 2 or x.shape[0] == 0:
        raise ValueError(f"{owner}: expected x of shape (N, C, *) with N >= 1, got {x.shape}")
    for name, vector in vectors.items():
        if vector is not None:
            check_float_dtype(f"{owner} {name}", vector, x.dtype)
            if vector.shape != (x.shape[1],):
                raise ValueError(f"{owner}: expected {name} of shape ({x.shape[1]},), got {vector.shape}")


def _normalize(x, weight, bias, mean, var, eps, training, centered=None):
    """Shared forward: out = weight * (x - mean) / sqrt(var + eps) + bias, per channel. `centered`: x - mean
    when the caller has it (a scratch array, overwritten). Steps after the first allocation run in place: a
    fresh array of a few MB costs its page faults on every call."""
    inv_std = 1.0 / np.sqrt(var + x.dtype.type(eps))
    x_hat = x - _per_channel(mean, x.ndim) if centered is None else centered
    x_hat *= _per_channel(inv_std, x.ndim)
    if weight is None:
        out = x_hat if bias is None else x_hat + _per_channel(bias, x.ndim)
    else:
        out = np.multiply(x_hat, _per_channel(weight, x.ndim))
        if bias is not None:
            out += _per_channel(bias, x.ndim)
    return out, BatchNormCache(x_hat, weight, inv_std, mean, var, training, bias is not None)


def batch_norm2d_train_forward(x, weight, bias, eps):
    """Normalize x (N, C, *) with its own per-channel mean and biased variance, then scale and shift."""
    _check("batch_norm2d_train_forward", x, weight=weight, bias=bias)
    count = x.size // x.shape[1]
    if count < 2:
        raise ValueError(f"batch_norm2d_train_forward: expected more than 1 value per channel when training, "
                         f"got input shape {x.shape}")
    mean = _channel_sum(x) / count
    centered = x - _per_channel(mean, x.ndim)
    var = _channel_sum(np.square(centered)) / count
    return _normalize(x, weight, bias, mean, var, eps, training=True, centered=centered)


def batch_norm2d_eval_forward(x, weight, bias, running_mean, running_var, eps):
    """Normalize x (N, C, *) with stored running statistics: a fixed per-channel affine map."""
    _check("batch_norm2d_eval_forward", x, weight=weight, bias=bias, running_mean=running_mean,
           running_var=running_var)
    return _normalize(x, weight, bias, running_mean, running_var, eps, training=False)


def batch_norm_running_stats(running_mean, running_var, cache, count, momentum):
    """torch's update of the running statistics after a training forward over `count` values per channel:
    a `momentum` step toward the batch mean and the unbiased batch variance."""
    return ((1.0 - momentum) * running_mean + momentum * cache.mean,
            (1.0 - momentum) * running_var + (momentum * count / (count - 1)) * cache.var)


def batch_norm2d_backward(grad_out, cache):
    """Gradients (grad_x, grad_weight, grad_bias) for either forward (None for absent affine parameters);
    training mode also differentiates through the batch mean and variance (the compact closed form)."""
    x_hat, weight, inv_std = cache.x_hat, cache.weight, cache.inv_std
    check_float_dtype("batch_norm2d_backward", grad_out, x_hat.dtype)
    if grad_out.shape != x_hat.shape:
        raise ValueError(f"batch_norm2d_backward: expected grad_out of shape {x_hat.shape}, got {grad_out.shape}")
    grad_bias = _channel_sum(grad_out)
    scratch = grad_out * x_hat
    grad_weight = _channel_sum(scratch)
    scale = _per_channel(inv_std if weight is None else weight * inv_std, grad_out.ndim)
    if not cache.training:
        return scale * grad_out, grad_weight if weight is not None else None, grad_bias if cache.has_bias else None
    count = grad_out.size // grad_out.shape[1]
    grad_x = grad_out - _per_channel(grad_bias / count, grad_out.ndim)
    grad_x -= np.multiply(x_hat, _per_channel(grad_weight / count, grad_out.ndim), out=scratch)
    grad_x *= scale
    return grad_x, grad_weight if weight is not None else None, grad_bias if cache.has_bias else None
