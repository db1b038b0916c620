"""Loss modules mirroring `torch.nn` (forward takes logits and targets; backward needs no upstream gradient)."""

from __future__ import annotations

import numpy as np

from . import functional as F
from .validation import check_float_dtype


class CrossEntropyLoss:
    """Mean cross-entropy on logits (N, K) with int targets (N,), optional label smoothing, as torch."""

    def __init__(self, label_smoothing: float = 0.0):
        if not 0.0 <= label_smoothing <= 1.0:
            raise ValueError(f"CrossEntropyLoss: label_smoothing must be in [0, 1], got {label_smoothing}")
        self.label_smoothing = float(label_smoothing)
        self._cache = None

    def __call__(self, logits: np.ndarray, targets: np.ndarray) -> np.ndarray:
        return self.forward(logits, targets)

    def forward(self, logits: np.ndarray, targets: np.ndarray) -> np.ndarray:
        check_float_dtype("CrossEntropyLoss", logits)
        if logits.ndim != 2 or logits.shape[0] == 0:
            raise ValueError(f"CrossEntropyLoss: expected logits of shape (N, K) with N >= 1, got {logits.shape}")
        targets = np.asarray(targets)
        if not np.issubdtype(targets.dtype, np.integer) or targets.shape != (logits.shape[0],):
            raise ValueError(f"CrossEntropyLoss: expected integer targets of shape ({logits.shape[0]},), "
                             f"got dtype {targets.dtype} shape {targets.shape}")
        if targets.min() < 0 or targets.max() >= logits.shape[1]:
            raise ValueError(f"CrossEntropyLoss: targets must be class indices in [0, {logits.shape[1] - 1}], "
                             f"got range [{targets.min()}, {targets.max()}]")
        loss, self._cache = F.cross_entropy_forward(logits, targets, self.label_smoothing)
        return loss

    def backward(self, grad_loss: float = 1.0) -> np.ndarray:
        """Gradient of the (mean) loss w.r.t. the logits of the last forward."""
        if self._cache is None:
            raise RuntimeError("CrossEntropyLoss.backward called before forward")
        return F.cross_entropy_backward(self._cache, grad_loss)
