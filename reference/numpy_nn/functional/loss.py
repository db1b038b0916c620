"""Cross-entropy as torch.nn.functional.cross_entropy, stable for large logits via log-sum-exp.

Logits (N, C, d1, ...) are handled as M = N*d1*... rows of C classes (an unbatched (C,) as one row). Every
variant is a loss per row of the form -sum_c a_c log p_c with coefficients a (negative only where a class
weight is, which torch allows):
- class-index targets t: a = (1 - eps) w_t onehot(t) + eps w / C, and a = 0 for rows whose t is ignore_index;
  'mean' divides by the sum of w_t over the rows not ignored (torch's weighted mean);
- class-probability targets q: a = w ((1 - eps) q + eps / C); 'mean' divides by M.
The gradient of -sum_c a_c log softmax(z)_c is (sum_c a_c) softmax(z) - a, so one backward serves all.
"""

import numpy as np

from ..validation import check_choice, check_float_dtype, check_real, is_int

REDUCTIONS = ("mean", "sum", "none")


def _as_rows(array, classes_axis=True):
    """(N, C, d1, ...) -> (N*d1*..., C) with the class axis last; (C,) -> (1, C). Targets (N, d1, ...) -> (M,)."""
    if not classes_axis:
        return array.reshape(-1)
    if array.ndim <= 2:
        return array.reshape(-1, array.shape[-1])
    return np.moveaxis(array, 1, -1).reshape(-1, array.shape[1])


def _check(logits, targets, label_smoothing, weight, ignore_index, reduction):
    """Validate as torch does; returns (targets as an array, whether they are class probabilities)."""
    name = "cross_entropy_forward"
    check_float_dtype(name, logits)
    check_real(name, "label_smoothing", label_smoothing, 0.0, 1.0)
    check_choice(name, "reduction", reduction, REDUCTIONS)
    if not is_int(ignore_index):
        raise TypeError(f"{name}: ignore_index must be an int, got {ignore_index!r}")
    if logits.ndim == 0 or logits.size == 0:
        raise ValueError(f"{name}: expected logits of shape (N, C, d1, ...) or (C,) with N, C >= 1, got {logits.shape}")
    classes = logits.shape[1] if logits.ndim > 1 else logits.shape[0]
    if weight is not None:
        check_float_dtype(f"{name} weight", weight)
        if weight.shape != (classes,):
            raise ValueError(f"{name}: expected weight of shape ({classes},), got {weight.shape}")
    targets = np.asarray(targets)
    if targets.dtype.kind == "f":
        if targets.shape != logits.shape:
            raise ValueError(f"{name}: float (class-probability) targets must have the logits' shape {logits.shape}, "
                             f"got dtype {targets.dtype} shape {targets.shape}")
        if ignore_index >= 0:
            raise ValueError(f"{name}: ignore_index={ignore_index} is not supported for class-probability targets")
        return targets.astype(logits.dtype, copy=False), True
    index_shape = logits.shape[:1] + logits.shape[2:] if logits.ndim > 1 else ()
    if targets.dtype.kind not in "iu" or targets.shape != index_shape:
        raise ValueError(f"{name}: expected integer class targets of shape {index_shape} (or class probabilities "
                         f"of shape {logits.shape}), got dtype {targets.dtype} shape {targets.shape}")
    low, high = (targets.min(), targets.max()) if targets.size else (0, 0)
    counted = targets if low != ignore_index and high != ignore_index else targets[targets != ignore_index]
    if counted.size and (counted.min() < 0 or counted.max() >= classes):
        raise ValueError(f"{name}: targets must be class indices in [0, {classes - 1}] or ignore_index="
                         f"{ignore_index}, got range [{counted.min()}, {counted.max()}]")
    return targets, False


def _log_softmax(rows):
    shifted = rows - rows.max(axis=1, keepdims=True)  # log-sum-exp trick: no overflow
    return shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))


def cross_entropy_forward(logits, targets, label_smoothing=0.0, weight=None, ignore_index=-100, reduction="mean"):
    """Cross-entropy of logits (N, C, d1, ...) or (C,) against class indices (N, d1, ...) or class probabilities
    shaped like the logits, with torch's weight, ignore_index, label smoothing and reduction.

    Returns the loss in the logits' dtype: 0-d, or (N, d1, ...) per element with reduction='none'."""
    targets, probabilities = _check(logits, targets, label_smoothing, weight, ignore_index, reduction)
    eps = float(label_smoothing)
    log_probs = _log_softmax(_as_rows(logits))
    m, classes = log_probs.shape
    w = np.ones(classes, dtype=logits.dtype) if weight is None else weight.astype(logits.dtype)
    if probabilities:
        coefficients = w * ((1.0 - eps) * _as_rows(targets) + eps / classes)
        per_row, count, rows = -(coefficients * log_probs).sum(axis=1), m, coefficients
    else:
        t = _as_rows(targets, classes_axis=False)
        kept = t != ignore_index
        every = kept.all()
        t = t if every else np.where(kept, t, 0)  # an ignored row's stand-in class: its terms are zeroed below
        w_t = w[t] if every else np.where(kept, w[t], 0).astype(logits.dtype)
        # The gathered term alone when eps is 0: a -inf logit (a masked class) makes the smoothing term inf, and
        # 0 * inf would turn torch's finite loss into NaN.
        per_row = -(1.0 - eps) * w_t * log_probs[np.arange(m), t]
        if eps > 0:
            per_row = per_row - (log_probs * w).sum(axis=1) * (eps / classes)
        per_row = per_row if every else np.where(kept, per_row, 0)
        count, rows = w_t.sum(), (t, None if every else kept, w_t, w, eps)
    element_shape = logits.shape[:1] + logits.shape[2:] if logits.ndim > 1 else ()
    loss = _reduce(per_row.astype(logits.dtype), count, reduction, element_shape)
    return loss, (np.exp(log_probs), rows, count, reduction, logits.shape, loss.shape)


def _reduce(per_row, count, reduction, shape):
    """'none': per element of `shape`; 'sum'; 'mean': the sum over `count` (NaN when nothing counts, as torch)."""
    if reduction == "none":
        return per_row.reshape(shape)
    total = per_row.sum()
    if reduction == "mean":
        total = total / count if count else per_row.dtype.type(np.nan)
    return np.asarray(total, dtype=per_row.dtype)


def _index_gradient(probs, t, kept, w_t, w, eps):
    """(sum_c a_c) softmax - a for class-index targets, without building the coefficients a."""
    classes = probs.shape[1]
    total = (1.0 - eps) * w_t + ((eps / classes) * w.sum() if kept is None else (eps / classes) * w.sum() * kept)
    grad = probs * total[:, None]
    grad[np.arange(len(t)), t] -= (1.0 - eps) * w_t
    if eps > 0:
        grad -= (w * (eps / classes)) if kept is None else kept[:, None] * (w * (eps / classes))
    return grad


def cross_entropy_backward(cache, grad_loss=1.0):
    """Gradient w.r.t. the logits: ((sum_c a_c) softmax - a) per row, scaled by grad_loss (and 1 / count for
    'mean'); grad_loss is a scalar, or an array of the loss's shape for reduction='none'."""
    probs, rows, count, reduction, logits_shape, loss_shape = cache
    grad_loss = np.asarray(grad_loss, dtype=probs.dtype)
    if grad_loss.shape not in ((), loss_shape):
        raise ValueError(f"cross_entropy_backward: expected grad_loss of shape {loss_shape} or a scalar, "
                         f"got {grad_loss.shape}")
    if reduction == "mean":  # nothing counted (every row ignored): the loss is NaN, its gradient 0 (torch)
        grad_loss = grad_loss / count if count else np.zeros_like(grad_loss)
    scale = grad_loss.reshape(-1, 1) if grad_loss.ndim else grad_loss
    if isinstance(rows, tuple):  # class indices
        grad = _index_gradient(probs, *rows) * scale
        if rows[1] is not None:  # ignored rows get exactly 0, as torch masks them (even for NaN logits)
            grad[~rows[1]] = 0
    else:
        grad = (probs * rows.sum(axis=1, keepdims=True) - rows) * scale
    grad = grad.astype(probs.dtype, copy=False)
    if len(logits_shape) <= 2:
        return grad.reshape(logits_shape)
    return np.moveaxis(grad.reshape(logits_shape[0], *logits_shape[2:], logits_shape[1]), -1, 1)
