"""BatchNorm2d mirroring `torch.nn.BatchNorm2d`: affine or not, running statistics tracked or not, momentum or
a cumulative average (momentum=None)."""

from __future__ import annotations

import numpy as np

from . import functional as F
from .layers import _CachedLayer
from .module import Parameter
from .validation import check_device, check_float_dtype, check_input, check_positive_int, check_real


class BatchNorm2d(_CachedLayer):
    """Per-channel batch normalization of (N, C, H, W); running statistics updated exactly as torch (unbiased
    variance). Without tracked statistics (track_running_stats=False) every forward uses the batch's own."""

    def __init__(self, num_features, eps=1e-5, momentum=0.1, affine=True, track_running_stats=True, device=None,
                 dtype=np.float32, *, bias=True):
        super().__init__()
        check_device("BatchNorm2d", device)
        check_positive_int("BatchNorm2d", "num_features", num_features)
        self.eps = check_real("BatchNorm2d", "eps", eps, 0.0, low_open=True)
        self.momentum = None if momentum is None else check_real("BatchNorm2d", "momentum", momentum, 0.0, 1.0)
        self.num_features, self.affine, self.track_running_stats = num_features, bool(affine), bool(track_running_stats)
        self._parameters["weight"] = Parameter(np.ones(num_features, dtype=dtype)) if affine else None
        self._parameters["bias"] = Parameter(np.zeros(num_features, dtype=dtype)) if affine and bias else None
        tracked = track_running_stats
        self.register_buffer("running_mean", np.zeros(num_features, dtype=dtype) if tracked else None)
        self.register_buffer("running_var", np.ones(num_features, dtype=dtype) if tracked else None)
        self.register_buffer("num_batches_tracked", np.array(0, dtype=np.int64) if tracked else None)

    @property
    def dtype(self):
        """The parameters' dtype, or the running statistics' without affine parameters (None if neither)."""
        return super().dtype or (None if self.running_mean is None else self.running_mean.dtype)

    def forward(self, x):
        check_float_dtype(self, x, self.dtype)
        check_input(self, x, ndim=4, channels=self.num_features)
        weight = None if self.weight is None else self.weight.data
        bias = None if self.bias is None else self.bias.data
        if not self.training and self.track_running_stats:
            return self._save(*F.batch_norm2d_eval_forward(x, weight, bias, self.running_mean, self.running_var,
                                                           self.eps))
        count = x.shape[0] * x.shape[2] * x.shape[3]
        if count < 2:
            raise ValueError(f"{self!r}: expected more than 1 value per channel when training, "
                             f"got input shape {x.shape}")
        out, cache = F.batch_norm2d_train_forward(x, weight, bias, self.eps)
        if self.training and self.track_running_stats:
            self.num_batches_tracked = np.asarray(self.num_batches_tracked + 1)  # a 0-d array, as registered
            factor = 1.0 / float(self.num_batches_tracked) if self.momentum is None else self.momentum
            self.running_mean, self.running_var = F.batch_norm_running_stats(
                self.running_mean, self.running_var, cache, count, factor)
        return self._save(out, cache)

    def backward(self, grad_out):
        grad_x, grad_weight, grad_bias = F.batch_norm2d_backward(grad_out, self._saved(grad_out))
        if self.weight is not None:
            self.weight.accumulate_grad(grad_weight)
        if self.bias is not None:
            self.bias.accumulate_grad(grad_bias)
        return grad_x

    def extra_repr(self):
        return (f"{self.num_features}, eps={self.eps}, momentum={self.momentum}, affine={self.affine}, "
                f"track_running_stats={self.track_running_stats}")
