"""Loss modules mirroring `torch.nn` (forward takes logits and targets; backward needs no upstream gradient)."""

from __future__ import annotations

import numpy as np

from . import functional as F
from .layers import without_trailing_defaults
from .validation import check_choice, check_float_dtype, check_real, is_int


class CrossEntropyLoss:
    """Cross-entropy of logits (N, C, d1, ...) or (C,) against class indices or class probabilities, with torch's
    arguments: per-class `weight`, `ignore_index`, `reduction` ('mean', 'sum', 'none') and `label_smoothing`.

    The deprecated size_average and reduce are not supported (use reduction)."""

    def __init__(self, weight=None, size_average=None, ignore_index=-100, reduce=None, reduction="mean",
                 label_smoothing=0.0):
        if size_average is not None or reduce is not None:
            raise NotImplementedError(f"CrossEntropyLoss: size_average={size_average!r} and reduce={reduce!r} are "
                                      f"deprecated in torch and not supported; use reduction=")
        if weight is not None:
            if not isinstance(weight, np.ndarray):
                raise TypeError(f"CrossEntropyLoss: weight must be a numpy.ndarray of per-class weights (torch's first "
                                f"argument; pass label_smoothing= by keyword), got {weight!r}")
            check_float_dtype("CrossEntropyLoss weight", weight)
            if weight.ndim != 1:
                raise ValueError(f"CrossEntropyLoss: weight must have shape (C,), got {weight.shape}")
        if not is_int(ignore_index):
            raise TypeError(f"CrossEntropyLoss: ignore_index must be an int, got {ignore_index!r}")
        check_choice("CrossEntropyLoss", "reduction", reduction, F.loss.REDUCTIONS)
        self.label_smoothing = check_real("CrossEntropyLoss", "label_smoothing", label_smoothing, 0.0, 1.0)
        self.weight, self.ignore_index, self.reduction = weight, int(ignore_index), reduction
        self._cache = None

    def __call__(self, logits: np.ndarray, targets: np.ndarray) -> np.ndarray:
        return self.forward(logits, targets)

    def forward(self, logits: np.ndarray, targets: np.ndarray) -> np.ndarray:
        check_float_dtype("CrossEntropyLoss", logits)
        weight = None if self.weight is None else self.weight.astype(logits.dtype, copy=False)
        args = without_trailing_defaults((self.label_smoothing, None), (weight, None), (self.ignore_index, -100),
                                         (self.reduction, "mean"))
        try:
            loss, self._cache = F.cross_entropy_forward(logits, targets, *args)
        except (ValueError, TypeError) as error:  # name the module, as every layer's error does
            raise type(error)(str(error).replace("cross_entropy_forward", "CrossEntropyLoss")) from None
        return loss

    def backward(self, grad_loss=1.0) -> np.ndarray:
        """Gradient of the loss w.r.t. the logits of the last forward (grad_loss: a scalar, or an array of the
        loss's shape with reduction='none')."""
        if self._cache is None:
            raise RuntimeError("CrossEntropyLoss.backward called before forward")
        return F.cross_entropy_backward(self._cache, grad_loss)

    def __repr__(self) -> str:
        return f"CrossEntropyLoss(ignore_index={self.ignore_index}, reduction={self.reduction!r}, " \
               f"label_smoothing={self.label_smoothing})"
