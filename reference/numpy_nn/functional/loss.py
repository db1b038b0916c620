"""Cross-entropy with torch's label smoothing, stable for large logits via log-sum-exp."""

import numpy as np


def cross_entropy_forward(logits, targets, label_smoothing=0.0):
    """Mean over the batch of (1-eps)*NLL + eps*mean_k(-log p_k); logits (N, K), targets (N,) int.

    Returns a 0-d array of the logits' dtype."""
    n, k = logits.shape
    shifted = logits - logits.max(axis=1, keepdims=True)  # log-sum-exp trick: no overflow
    log_probs = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
    nll = -log_probs[np.arange(n), targets]
    smooth = -log_probs.mean(axis=1)
    # Without smoothing, leave the smoothing term out rather than multiply it by 0: a -inf logit (a masked
    # class) makes it inf, and 0 * inf would turn torch's finite loss into NaN.
    per_sample = nll if label_smoothing == 0 else (1.0 - label_smoothing) * nll + label_smoothing * smooth
    loss = np.asarray(per_sample.mean(), dtype=logits.dtype)
    return loss, (np.exp(log_probs), targets, label_smoothing)


def cross_entropy_backward(cache, grad_loss=1.0):
    """Gradient w.r.t. logits (N, K): (softmax - smoothed one-hot) / N, scaled by grad_loss."""
    probs, targets, label_smoothing = cache
    n, k = probs.shape
    grad = probs - label_smoothing / k
    grad[np.arange(n), targets] -= 1.0 - label_smoothing
    return grad * (float(grad_loss) / n)
