"""Stateless NumPy math: every op is a `*_forward(...) -> (out, cache)` and `*_backward(grad, cache)` pair."""

from .activation import dropout2d_forward, dropout_backward, dropout_forward, relu_backward, relu_forward
from .conv import col2im, conv2d_backward, conv2d_forward, conv2d_output_size, im2col
from .linear import flatten_backward, flatten_forward, linear_backward, linear_forward
from .loss import cross_entropy_backward, cross_entropy_forward
from .normalization import batch_norm2d_backward, batch_norm2d_eval_forward, batch_norm2d_train_forward
from .pooling import (
    adaptive_avg_pool2d_backward,
    adaptive_avg_pool2d_forward,
    avg_pool2d_backward,
    avg_pool2d_forward,
    max_pool2d_backward,
    max_pool2d_forward,
    pool_output_size,
)

__all__ = [
    "adaptive_avg_pool2d_backward",
    "adaptive_avg_pool2d_forward",
    "avg_pool2d_backward",
    "avg_pool2d_forward",
    "batch_norm2d_backward",
    "batch_norm2d_eval_forward",
    "batch_norm2d_train_forward",
    "col2im",
    "conv2d_backward",
    "conv2d_forward",
    "conv2d_output_size",
    "cross_entropy_backward",
    "cross_entropy_forward",
    "dropout2d_forward",
    "dropout_backward",
    "dropout_forward",
    "flatten_backward",
    "flatten_forward",
    "im2col",
    "linear_backward",
    "linear_forward",
    "max_pool2d_backward",
    "max_pool2d_forward",
    "pool_output_size",
    "relu_backward",
    "relu_forward",
]
