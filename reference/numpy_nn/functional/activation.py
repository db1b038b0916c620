"""ReLU and (inverted) dropout: elementwise and whole-channel masks."""

import numpy as np

from ._utils import _masked


def relu_forward(x):
    """max(x, 0) elementwise; NaN propagates as in torch."""
    return np.maximum(x, 0), x > 0


def relu_backward(grad_out, cache):
    """Pass the gradient where the input was positive; zero at x == 0, as torch."""
    return _masked(grad_out, cache)


def _apply_mask(x, p, rng, mask_shape):
    """Keep each mask entry with probability 1 - p and scale kept ones by 1 / (1 - p)."""
    scale = 1.0 / (1.0 - p) if p < 1.0 else 0.0  # p == 1 drops everything
    mask = (rng.random(mask_shape) >= p).astype(x.dtype) * scale
    return x * mask, mask


def dropout_forward(x, p, rng):
    """Zero each element of x with probability p (mask drawn from the np.random.Generator `rng`)."""
    return _apply_mask(x, p, rng, x.shape)


def dropout2d_forward(x, p, rng):
    """Zero whole channels of x (N, C, H, W) with probability p: one mask entry per (n, c)."""
    return _apply_mask(x, p, rng, x.shape[:2] + (1,) * (x.ndim - 2))


def dropout_backward(grad_out, cache):
    """Gradient of either dropout: the same scaled mask (broadcast over H, W for dropout2d)."""
    return grad_out * cache
