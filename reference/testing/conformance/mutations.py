"""Deliberate bugs in `reference.numpy_nn`, each patched in with pytest's monkeypatch: every oracle the op
database names for a mutation must fail on it (so none of them is a check that cannot fail).

The modules look their functional math up at call time, so patching `reference.numpy_nn.functional` reaches
them; bugs inside one code path (a dilated convolution's taps, a grouped one's channel split, pooling's output
size) patch the private helper of that path in its functional module. Wrappers pass unknown arguments through,
so a mutant keeps working when a signature grows.
"""

from __future__ import annotations

import numpy as np


def _functional():
    import reference.numpy_nn.functional as F

    return F


def _flipped(weight):
    return np.ascontiguousarray(weight[:, :, ::-1, ::-1])


def conv_backward_with_flipped_kernel(monkeypatch):
    """conv2d's input gradient computed with the kernel rotated by 180 degrees (a true convolution)."""
    F = _functional()
    forward, backward = F.conv2d_forward, F.conv2d_backward

    def mutant_forward(x, weight, *args, **kwargs):
        out, cache = forward(x, weight, *args, **kwargs)
        return out, (cache, forward(x, _flipped(weight), *args, **kwargs)[1])

    def mutant_backward(grad_out, caches):
        cache, flipped = caches
        _, grad_weight, grad_bias = backward(grad_out, cache)
        return backward(grad_out, flipped)[0], grad_weight, grad_bias

    monkeypatch.setattr(F, "conv2d_forward", mutant_forward)
    monkeypatch.setattr(F, "conv2d_backward", mutant_backward)


def conv_forward_with_flipped_kernel(monkeypatch):
    """conv2d's forward as a convolution (kernel rotated) instead of torch's cross-correlation."""
    F = _functional()
    forward = F.conv2d_forward
    monkeypatch.setattr(F, "conv2d_forward", lambda x, weight, *args, **kwargs: forward(
        x, _flipped(weight), *args, **kwargs))


def batch_norm_with_unbiased_variance(monkeypatch):
    """Training-mode batch norm normalizing by the unbiased (n - 1) batch variance instead of the biased one."""
    F = _functional()
    forward = F.batch_norm2d_train_forward

    def mutant(x, weight, bias, *args, **kwargs):
        _, cache = forward(x, weight, bias, *args, **kwargs)
        eps = kwargs.get("eps", args[0] if args else 1e-5)
        x_hat = (x - x.mean(axis=(0, 2, 3), keepdims=True)) / np.sqrt(x.var(axis=(0, 2, 3), ddof=1, keepdims=True)
                                                                      + eps)
        scale = 1.0 if weight is None else weight.reshape(1, -1, 1, 1)
        shift = 0.0 if bias is None else bias.reshape(1, -1, 1, 1)
        return (scale * x_hat + shift).astype(x.dtype), cache

    monkeypatch.setattr(F, "batch_norm2d_train_forward", mutant)


def max_pool_argmax_off_by_one(monkeypatch):
    """Max-pool's gradient delivered one column to the right of the element the forward picked."""
    F = _functional()
    backward = F.max_pool2d_backward
    monkeypatch.setattr(F, "max_pool2d_backward", lambda grad_out, cache: np.roll(backward(grad_out, cache), 1, -1))


def max_pool_with_zero_padding(monkeypatch):
    """Max-pool padding with zeros instead of -inf: a corner window holding one real, negative pixel returns 0."""
    F = _functional()
    forward = F.max_pool2d_forward

    def mutant(x, kernel_size, stride=None, padding=0, *args, **kwargs):
        ph, pw = (padding, padding) if np.isscalar(padding) else padding
        padded = np.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)))
        return forward(padded, kernel_size, kernel_size if stride is None else stride, 0, *args, **kwargs)

    monkeypatch.setattr(F, "max_pool2d_forward", mutant)


def _adam_step(bias_correction2):
    """An Adam step dividing sqrt(v) by `bias_correction2(beta2, t)` (torch: sqrt(1 - beta2^t)), and the first
    moment by `bias_correction2`'s sibling for beta1 (torch: 1 - beta1^t); the buggy variants swap one of them."""
    def step(self, bias_correction1=lambda beta, t: 1.0 - beta ** t):
        beta1, beta2 = self.betas
        for i, param in enumerate(self.params):
            if param.grad is None:
                continue
            grad = param.grad + self.weight_decay * param.data
            state = self.state.setdefault(i, {"step": 0, "exp_avg": np.zeros_like(param.data),
                                              "exp_avg_sq": np.zeros_like(param.data)})
            state["step"] += 1
            state["exp_avg"] += (1.0 - beta1) * (grad - state["exp_avg"])
            state["exp_avg_sq"] *= beta2
            state["exp_avg_sq"] += (1.0 - beta2) * grad * grad
            denom = np.sqrt(state["exp_avg_sq"]) / bias_correction2(beta2, state["step"]) + self.eps
            param.data -= self.lr / bias_correction1(beta1, state["step"]) * state["exp_avg"] / denom
    return step


def adam_without_sqrt_in_bias_correction(monkeypatch):
    """Adam dividing sqrt(v) by (1 - beta2^t) instead of sqrt(1 - beta2^t)."""
    import reference.numpy_nn as nnp

    monkeypatch.setattr(nnp.Adam, "step", _adam_step(lambda beta, t: 1.0 - beta ** t))


def adam_bias_correction_off_by_one(monkeypatch):
    """Adam correcting both moments' bias with t + 1 instead of the step count t."""
    import reference.numpy_nn as nnp

    off_by_one = _adam_step(lambda beta, t: (1.0 - beta ** (t + 1)) ** 0.5)
    monkeypatch.setattr(nnp.Adam, "step", lambda self: off_by_one(self, lambda beta, t: 1.0 - beta ** (t + 1)))


def sgd_weight_decay_after_momentum(monkeypatch):
    """SGD adding weight_decay * param after the momentum buffer (decoupled) instead of to the gradient before it."""
    import reference.numpy_nn as nnp

    def mutant_step(self):
        for i, param in self._params_with_grad():
            buf = self.state.setdefault(i, {}).get("momentum_buffer")
            if buf is None:
                buf = self.state[i]["momentum_buffer"] = param.grad.copy()
            else:
                buf *= self.momentum
                buf += (1.0 - self.dampening) * param.grad
            param.data -= self.lr * (buf + self.weight_decay * param.data)

    monkeypatch.setattr(nnp.SGD, "step", mutant_step)


def step_lr_off_by_one(monkeypatch):
    """StepLR decaying one epoch early: at epochs step_size - 1, 2 step_size - 1, ..."""
    import reference.numpy_nn as nnp

    def mutant_step(self):
        self.last_epoch += 1
        if (self.last_epoch + 1) % self.step_size == 0:
            self.optimizer.lr *= self.gamma

    monkeypatch.setattr(nnp.StepLR, "step", mutant_step)


def label_smoothing_over_k_minus_1(monkeypatch):
    """Cross-entropy spreading the smoothing mass over the K - 1 other classes instead of all K (eps / (K - 1))."""
    F = _functional()
    forward = F.cross_entropy_forward

    def mutant(logits, targets, label_smoothing=0.0, *args, **kwargs):
        classes = logits.shape[1] if logits.ndim > 1 else logits.shape[0]
        return forward(logits, targets, min(1.0, label_smoothing * classes / (classes - 1)), *args, **kwargs)

    monkeypatch.setattr(F, "cross_entropy_forward", mutant)


def dropout_keeps_one_minus_p_squared(monkeypatch):
    """Dropout keeping each element with probability 1 - p^2 (still scaled by 1 / (1 - p))."""
    F = _functional()

    def mutant(x, p, rng):
        mask = (rng.random(x.shape) >= p * p).astype(x.dtype) * (1.0 / (1.0 - p) if p < 1.0 else 0.0)
        return x * mask, mask

    monkeypatch.setattr(F, "dropout_forward", mutant)


def dropout2d_masks_per_element(monkeypatch):
    """Dropout2d drawing one mask entry per element instead of one per (n, c) channel."""
    F = _functional()
    monkeypatch.setattr(F, "dropout2d_forward", F.dropout_forward)


def dropout_backward_without_scale(monkeypatch):
    """Dropout's backward passing the kept gradient unscaled (mask != 0) instead of times 1 / (1 - p)."""
    F = _functional()
    backward = F.dropout_backward
    monkeypatch.setattr(F, "dropout_backward", lambda grad_out, cache: backward(grad_out, (cache != 0).astype(
        cache.dtype)))


def init_bound_sqrt_3_too_wide(monkeypatch):
    """Linear and convolution weights and biases drawn from U(-sqrt(3 / fan_in), sqrt(3 / fan_in)) (unit variance
    scaled by fan-in) instead of torch's U(-1 / sqrt(fan_in), 1 / sqrt(fan_in))."""
    import reference.numpy_nn.layers as layers

    uniform = layers._uniform
    monkeypatch.setattr(layers, "_uniform", lambda rng, bound, shape, dtype: uniform(rng, bound * 3 ** 0.5, shape,
                                                                                     dtype))


def clip_gradient_at_bounds(monkeypatch):
    """Hardtanh (and ReLU6) passing the gradient at min_val and max_val (x in [min, max]) instead of blocking it."""
    F = _functional()
    forward = F.hardtanh_forward

    def mutant(x, min_val=-1.0, max_val=1.0):
        out, _ = forward(x, min_val, max_val)
        return out, (x >= x.dtype.type(min_val)) & (x <= x.dtype.type(max_val))

    monkeypatch.setattr(F, "hardtanh_forward", mutant)


def relu_gradient_at_zero(monkeypatch):
    """ReLU passing the gradient at x == 0 (x >= 0) instead of blocking it there."""
    F = _functional()
    forward = F.relu_forward
    monkeypatch.setattr(F, "relu_forward", lambda x: (forward(x)[0], ~(x < 0)))


def adaptive_max_pool_last_of_tied_maxima(monkeypatch):
    """Adaptive max-pool picking the last of tied maxima in a window instead of the first."""
    import reference.numpy_nn.functional.adaptive as adaptive

    picked = adaptive._picked
    monkeypatch.setattr(adaptive, "_picked", lambda window: window.shape[-1] - 1 - picked(window[..., ::-1]))


def dilated_max_pool_last_of_tied_maxima(monkeypatch):
    """A dilated max-pool picking the last of tied maxima in a window instead of the first (plain ones unchanged)."""
    import reference.numpy_nn.functional.pooling as pooling

    F = _functional()
    forward = F.max_pool2d_forward

    def mutant(x, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False):
        out, (argmax, *rest) = forward(x, kernel_size, stride, padding, dilation, ceil_mode)
        _, kernel, stride, pads, dilation, out_shape = rest
        if dilation == (1, 1):
            return out, (argmax, *rest)
        argmax, x_padded = argmax.copy(), pooling._pad(x, pads, -np.inf)
        for k, rows, columns in pooling._offsets(kernel, stride, out_shape[2:], dilation):
            argmax[x_padded[:, :, rows, columns] == out] = k  # later offsets overwrite: the last maximum wins
        return out, (argmax, *rest)

    monkeypatch.setattr(F, "max_pool2d_forward", mutant)


def max_pool_ignoring_nan(monkeypatch):
    """Max-pool skipping NaN (np.fmax semantics) where torch makes NaN the window's maximum."""
    F = _functional()
    forward = F.max_pool2d_forward

    def mutant(x, *args, **kwargs):
        return forward(np.where(np.isnan(x), -np.inf, x), *args, **kwargs)

    monkeypatch.setattr(F, "max_pool2d_forward", mutant)


def avg_pool_divisor_ceil_mode(monkeypatch):
    """Average pooling with ceil_mode dividing its last, partial window by the full kernel area."""
    import reference.numpy_nn.functional.pooling as pooling

    divisor = pooling._avg_divisor

    def mutant(x_shape, kernel, stride, padding, out_size, count_include_pad, dtype):
        full = divisor(x_shape, kernel, stride, padding, out_size, count_include_pad, dtype)
        return np.full_like(full, kernel[0] * kernel[1]) if count_include_pad else full

    monkeypatch.setattr(pooling, "_avg_divisor", mutant)


def dilated_conv_weight_gradient_shifted(monkeypatch):
    """A dilated convolution's weight gradient taken one tap off along the width (undilated ones unchanged)."""
    F = _functional()
    backward = F.conv2d_backward

    def mutant(grad_out, cache):
        grad_x, grad_weight, grad_bias = backward(grad_out, cache)
        dilation = cache[6]
        return grad_x, (np.roll(grad_weight, 1, axis=-1) if dilation != (1, 1) else grad_weight), grad_bias

    monkeypatch.setattr(F, "conv2d_backward", mutant)


def flatten_negative_end_dim_off_by_one(monkeypatch):
    """Flatten resolving a negative end_dim one axis early (end_dim=-1 stopping at the second to last)."""
    import reference.numpy_nn as nnp

    dims = nnp.Flatten._dims

    def mutant(self, x):
        start, end = dims(self, x)
        return (start, max(start, end - 1)) if self.end_dim < 0 else (start, end)

    monkeypatch.setattr(nnp.Flatten, "_dims", mutant)


def conv_dilation_offset_wrong(monkeypatch):
    """A dilated convolution's taps at offsets i + dilation instead of i * dilation (a typo that keeps shapes)."""
    import reference.numpy_nn.functional.conv as conv

    def mutant(size, out, kernel, stride, dilation, before):
        found = []
        for i in range(kernel):
            shift = i + dilation - before if dilation > 1 else i - before
            low, high = max(0, -(shift // stride)), min(out - 1, (size - 1 - shift) // stride)
            found.append((slice(low, high + 1), slice(low * stride + shift, high * stride + shift + 1, stride))
                         if low <= high else None)
        return found

    monkeypatch.setattr(conv, "_axis_taps", mutant)


def conv_groups_mixing_channels(monkeypatch):
    """A grouped convolution's forward giving channel c to group c % groups instead of c // (C / groups)."""
    import reference.numpy_nn.functional.conv as conv

    padded = conv._padded_channels_last

    def mutant(x, pads, groups=1):
        n, c, h, w = x.shape
        interleaved = x.reshape(n, c // groups, groups, h, w).transpose(0, 2, 1, 3, 4).reshape(x.shape)
        return padded(interleaved, pads, groups)

    monkeypatch.setattr(conv, "_padded_channels_last", mutant)


def conv_same_padding_odd_pixel_first(monkeypatch):
    """padding='same' with an odd total d (k - 1) putting the extra pixel before the input instead of after."""
    import reference.numpy_nn.functional.conv as conv

    same = conv.same_padding
    monkeypatch.setattr(conv, "same_padding", lambda *args: tuple((after, before) for before, after in same(*args)))


def pool_ceil_mode_drops_last_window(monkeypatch):
    """Pooling with ceil_mode=True sizing its output with floor, dropping the last (partial) window."""
    import reference.numpy_nn.functional.pooling as pooling

    size = pooling._axis_output_size
    monkeypatch.setattr(pooling, "_axis_output_size", lambda *args: size(*args[:-1], False))


def avg_pool_ignoring_count_include_pad(monkeypatch):
    """Average pooling dividing by the padded window (count_include_pad=True) whatever the argument says."""
    import reference.numpy_nn.functional.pooling as pooling

    divisor = pooling._avg_divisor
    monkeypatch.setattr(pooling, "_avg_divisor", lambda x_shape, kernel, stride, padding, out_size, count, dtype:
                        divisor(x_shape, kernel, stride, padding, out_size, True, dtype))


def max_pool_indices_flattened_over_batch_and_channels(monkeypatch):
    """return_indices counting over the flattened (N, C, H, W) array instead of each (H, W) plane."""
    F = _functional()
    indices = F.max_pool2d_indices

    def mutant(cache):
        flat = indices(cache)
        n, c, h, w = cache[1]
        return flat + (np.arange(n * c).reshape(n, c, 1, 1) * (h * w))

    monkeypatch.setattr(F, "max_pool2d_indices", mutant)


def batch_norm_momentum_none_as_default(monkeypatch):
    """BatchNorm2d(momentum=None) updating its running statistics with momentum 0.1, not the cumulative average."""
    import reference.numpy_nn as nnp

    forward = nnp.BatchNorm2d.forward

    def mutant(self, x):
        if self.momentum is not None:
            return forward(self, x)
        self.momentum = 0.1
        try:
            return forward(self, x)
        finally:
            self.momentum = None

    monkeypatch.setattr(nnp.BatchNorm2d, "forward", mutant)
