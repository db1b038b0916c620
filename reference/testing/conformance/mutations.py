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


def adam_without_sqrt_in_bias_correction(monkeypatch):
    """Adam dividing sqrt(v) by (1 - beta2^t) instead of sqrt(1 - beta2^t)."""
    import reference.numpy_nn as nnp

    def mutant_step(self):
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
            denom = np.sqrt(state["exp_avg_sq"]) / (1.0 - beta2 ** state["step"]) + self.eps
            param.data -= self.lr / (1.0 - beta1 ** state["step"]) * state["exp_avg"] / denom

    monkeypatch.setattr(nnp.Adam, "step", mutant_step)


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
