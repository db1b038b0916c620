"""Batch normalization over (N, C, H, W): per-channel statistics, training and evaluation forms."""

from typing import NamedTuple

import numpy as np

from ._utils import _channel_sum


class BatchNormCache(NamedTuple):
    """What the backward pass needs; `mean` and `var` are the per-channel statistics the forward used."""

    x_hat: np.ndarray  # normalized input (N, C, H, W)
    weight: np.ndarray  # (C,)
    inv_std: np.ndarray  # 1 / sqrt(var + eps), (C,)
    mean: np.ndarray  # batch mean (training) or running mean (evaluation), (C,)
    var: np.ndarray  # biased batch variance (training) or running variance (evaluation), (C,)
    training: bool


def _per_channel(v):
    """View a (C,) vector as (1, C, 1, 1) so it broadcasts over (N, C, H, W)."""
    return v.reshape(1, -1, 1, 1)


def _normalize(x, weight, bias, mean, var, eps, training):
    """Shared forward: out = weight * (x - mean) / sqrt(var + eps) + bias, per channel."""
    inv_std = 1.0 / np.sqrt(var + eps)
    x_hat = (x - _per_channel(mean)) * _per_channel(inv_std)
    out = _per_channel(weight) * x_hat + _per_channel(bias)
    return out, BatchNormCache(x_hat, weight, inv_std, mean, var, training)


def batch_norm2d_train_forward(x, weight, bias, eps):
    """Normalize x (N, C, H, W) with its own per-channel mean and biased variance, then scale and shift."""
    count = x.size // x.shape[1]
    mean = _channel_sum(x) / count
    var = _channel_sum(np.square(x - _per_channel(mean))) / count
    return _normalize(x, weight, bias, mean, var, eps, training=True)


def batch_norm2d_eval_forward(x, weight, bias, running_mean, running_var, eps):
    """Normalize x (N, C, H, W) with stored running statistics: a fixed per-channel affine map."""
    return _normalize(x, weight, bias, running_mean, running_var, eps, training=False)


def batch_norm2d_backward(grad_out, cache):
    """Gradients (grad_x, grad_weight, grad_bias) for either forward; training mode also
    differentiates through the batch mean and variance (the compact closed form)."""
    x_hat, weight, inv_std = cache.x_hat, cache.weight, cache.inv_std
    grad_bias = _channel_sum(grad_out)
    grad_weight = _channel_sum(grad_out * x_hat)
    scale = _per_channel(weight * inv_std)
    if not cache.training:
        return grad_out * scale, grad_weight, grad_bias
    count = grad_out.size // grad_out.shape[1]
    centered = grad_out - _per_channel(grad_bias / count) - x_hat * _per_channel(grad_weight / count)
    return scale * centered, grad_weight, grad_bias
