"""Stateless NumPy math: every op is a `*_forward(...) -> (out, cache)` and `*_backward(grad, cache)` pair.

Each forward validates its arguments as the torch.nn.functional twin does (argument names and positional
order are torch's) and raises a clear error otherwise; each backward checks its upstream gradient's shape.
"""

from .activation import (
    dropout2d_forward,
    dropout_backward,
    dropout_forward,
    hardtanh_backward,
    hardtanh_forward,
    relu_backward,
    relu_forward,
)
from .adaptive import (
    adaptive_avg_pool2d_backward,
    adaptive_avg_pool2d_forward,
    adaptive_max_pool2d_backward,
    adaptive_max_pool2d_forward,
    adaptive_max_pool2d_indices,
)
from .conv import col2im, conv2d_backward, conv2d_forward, conv2d_output_size, conv2d_padding, im2col
from .linear import linear_backward, linear_forward
from .loss import cross_entropy_backward, cross_entropy_forward
from .normalization import (
    batch_norm2d_backward,
    batch_norm2d_eval_forward,
    batch_norm2d_train_forward,
    batch_norm_running_stats,
)
from .padding import pad2d_backward, pad2d_forward
from .pooling import (
    avg_pool2d_backward,
    avg_pool2d_forward,
    max_pool2d_backward,
    max_pool2d_forward,
    max_pool2d_indices,
    pool_output_size,
)

__all__ = [
    "adaptive_avg_pool2d_backward",
    "adaptive_avg_pool2d_forward",
    "adaptive_max_pool2d_backward",
    "adaptive_max_pool2d_forward",
    "adaptive_max_pool2d_indices",
    "avg_pool2d_backward",
    "avg_pool2d_forward",
    "batch_norm2d_backward",
    "batch_norm2d_eval_forward",
    "batch_norm2d_train_forward",
    "batch_norm_running_stats",
    "col2im",
    "conv2d_backward",
    "conv2d_forward",
    "conv2d_output_size",
    "conv2d_padding",
    "cross_entropy_backward",
    "cross_entropy_forward",
    "dropout2d_forward",
    "dropout_backward",
    "dropout_forward",
    "hardtanh_backward",
    "hardtanh_forward",
    "im2col",
    "linear_backward",
    "linear_forward",
    "max_pool2d_backward",
    "max_pool2d_forward",
    "max_pool2d_indices",
    "pad2d_backward",
    "pad2d_forward",
    "pool_output_size",
    "relu_backward",
    "relu_forward",
]
