"""A third-party layer implementation, written the way a CS231n assignment would: plain loops, float64 only.

It is here to show the conformance engine judging code it has never seen. The math is pairs of functions
(`*_forward(...) -> (out, cache)` and `*_backward(dout, cache)`); the classes only hold parameters and follow
the layer contract (`reference.testing.conformance.protocol`). It has Conv2d, Linear, ReLU, MaxPool2d,
Flatten, Sequential, CrossEntropyLoss (without label smoothing) and SGD (momentum, weight decay), and nothing
else: no BatchNorm2d, Dropout, AvgPool2d or Adam, and no float32. What it lacks is reported as not implemented.

    python -m reference conform naive_layers          # from this folder
    pytest test_naive_layers.py                       # the same checks as pytest cases
"""

from __future__ import annotations

from collections import OrderedDict

import numpy as np

# -- the math, loop by loop --------------------------------------------------------------------------------------

def conv_forward_naive(x, w, b, stride, pad):
    """out[n, f, i, j] = sum over the window at (i, j) of x_padded * w[f], plus b[f]."""
    (sh, sw), (ph, pw) = stride, pad
    xp = np.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)))
    kh, kw = w.shape[2:]
    out_h, out_w = (xp.shape[2] - kh) // sh + 1, (xp.shape[3] - kw) // sw + 1
    out = np.zeros((x.shape[0], w.shape[0], out_h, out_w))
    for i in range(out_h):
        for j in range(out_w):
            window = xp[:, :, i * sh : i * sh + kh, j * sw : j * sw + kw]
            out[:, :, i, j] = np.tensordot(window, w, axes=([1, 2, 3], [1, 2, 3]))
    if b is not None:
        out += b[None, :, None, None]
    return out, (x, w, b, stride, pad)


def conv_backward_naive(dout, cache):
    x, w, b, (sh, sw), (ph, pw) = cache
    xp = np.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)))
    dxp, dw = np.zeros_like(xp), np.zeros_like(w)
    kh, kw = w.shape[2:]
    for i in range(dout.shape[2]):
        for j in range(dout.shape[3]):
            rows, cols = slice(i * sh, i * sh + kh), slice(j * sw, j * sw + kw)
            dw += np.tensordot(dout[:, :, i, j], xp[:, :, rows, cols], axes=([0], [0]))
            dxp[:, :, rows, cols] += np.tensordot(dout[:, :, i, j], w, axes=([1], [0]))
    db = None if b is None else dout.sum(axis=(0, 2, 3))
    return dxp[:, :, ph : ph + x.shape[2], pw : pw + x.shape[3]], dw, db


def max_pool_forward_naive(x, kernel, stride, pad):
    """The largest value of each window (padding never wins); the cache remembers which one it was."""
    (kh, kw), (sh, sw), (ph, pw) = kernel, stride, pad
    xp = np.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)), constant_values=-np.inf)
    out_h, out_w = (xp.shape[2] - kh) // sh + 1, (xp.shape[3] - kw) // sw + 1
    out = np.zeros((*x.shape[:2], out_h, out_w))
    winners = np.zeros((*x.shape[:2], out_h, out_w), dtype=np.int64)
    for i in range(out_h):
        for j in range(out_w):
            window = xp[:, :, i * sh : i * sh + kh, j * sw : j * sw + kw].reshape(*x.shape[:2], -1)
            winners[:, :, i, j] = window.argmax(axis=2)
            out[:, :, i, j] = window.max(axis=2)
    return out, (x.shape, winners, kernel, stride, pad)


def max_pool_backward_naive(dout, cache):
    shape, winners, (kh, kw), (sh, sw), (ph, pw) = cache
    dxp = np.zeros((*shape[:2], shape[2] + 2 * ph, shape[3] + 2 * pw))
    n_index, c_index = np.indices(shape[:2])
    for i in range(dout.shape[2]):
        for j in range(dout.shape[3]):
            r, c = np.divmod(winners[:, :, i, j], kw)
            np.add.at(dxp, (n_index, c_index, i * sh + r, j * sw + c), dout[:, :, i, j])
    return dxp[:, :, ph : ph + shape[2], pw : pw + shape[3]]


def softmax_loss(logits, y):
    """Mean cross-entropy and its gradient with respect to the logits."""
    shifted = logits - logits.max(axis=1, keepdims=True)
    log_probs = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
    n = logits.shape[0]
    dlogits = np.exp(log_probs)
    dlogits[np.arange(n), y] -= 1.0
    return -log_probs[np.arange(n), y].mean(), dlogits / n


# -- the classes: parameters, the contract, nothing else -----------------------------------------------------------

RNG = np.random.default_rng(0)  # initial weights (the conformance engine loads its own state anyway)


def _pair(value):
    return tuple(value) if isinstance(value, (tuple, list)) else (value, value)


def _require_4d(layer, x):
    if x.ndim != 4:
        raise NotImplementedError(f"{layer}: only batched (N, C, H, W) input, got shape {x.shape}")


class Parameter:
    def __init__(self, data):
        self.data, self.grad = data, None


class Module:
    """Children are the Module attributes, in the order they were set; parameters live in `self.params`."""

    def __init__(self):
        self.training, self.params = True, OrderedDict()

    def __call__(self, x):
        return self.forward(x)

    def named_modules(self, prefix=""):
        yield prefix, self
        for name, child in vars(self).items():
            if isinstance(child, Module):
                yield from child.named_modules(f"{prefix}.{name}" if prefix else name)

    def named_parameters(self):
        for prefix, module in self.named_modules():
            for name, param in module.params.items():
                yield (f"{prefix}.{name}" if prefix else name), param

    def parameters(self):
        return [param for _, param in self.named_parameters()]

    def state_dict(self):
        return OrderedDict((name, param.data.copy()) for name, param in self.named_parameters())

    def load_state_dict(self, state):
        mine = dict(self.named_parameters())
        if set(mine) != set(state):
            raise KeyError(f"{type(self).__name__}: expected keys {sorted(mine)}, got {sorted(state)}")
        for name, param in mine.items():
            param.data = np.array(state[name], dtype=np.float64)

    def train(self, mode=True):
        for _, module in self.named_modules():
            module.training = mode
        return self

    def eval(self):
        return self.train(False)

    def zero_grad(self):
        for param in self.parameters():
            param.grad = None

    def to(self, dtype):
        if np.dtype(dtype) != np.float64:
            raise NotImplementedError(f"{type(self).__name__}: float64 only, got {np.dtype(dtype)}")
        return self

    def _accumulate(self, name, grad):
        param = self.params[name]
        param.grad = grad if param.grad is None else param.grad + grad


class Conv2d(Module):
    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0, bias=True):
        super().__init__()
        self.stride, self.padding = _pair(stride), _pair(padding)
        kh, kw = _pair(kernel_size)
        scale = 1.0 / np.sqrt(in_channels * kh * kw)
        self.params["weight"] = Parameter(RNG.uniform(-scale, scale, (out_channels, in_channels, kh, kw)))
        if bias:
            self.params["bias"] = Parameter(RNG.uniform(-scale, scale, out_channels))

    def forward(self, x):
        _require_4d("Conv2d", x)
        bias = self.params["bias"].data if "bias" in self.params else None
        out, self.cache = conv_forward_naive(x, self.params["weight"].data, bias, self.stride, self.padding)
        return out

    def backward(self, dout):
        dx, dw, db = conv_backward_naive(dout, self.cache)
        self._accumulate("weight", dw)
        if db is not None:
            self._accumulate("bias", db)
        return dx


class Linear(Module):
    def __init__(self, in_features, out_features, bias=True):
        super().__init__()
        scale = 1.0 / np.sqrt(in_features)
        self.params["weight"] = Parameter(RNG.uniform(-scale, scale, (out_features, in_features)))
        if bias:
            self.params["bias"] = Parameter(RNG.uniform(-scale, scale, out_features))

    def forward(self, x):
        if x.ndim != 2:
            raise NotImplementedError(f"Linear: only (N, features) input, got shape {x.shape}")
        self.x = x
        out = x @ self.params["weight"].data.T
        return out + self.params["bias"].data if "bias" in self.params else out

    def backward(self, dout):
        self._accumulate("weight", dout.T @ self.x)
        if "bias" in self.params:
            self._accumulate("bias", dout.sum(axis=0))
        return dout @ self.params["weight"].data


class ReLU(Module):
    def forward(self, x):
        self.positive = x > 0
        return np.where(self.positive, x, 0.0)

    def backward(self, dout):
        return np.where(self.positive, dout, 0.0)


class MaxPool2d(Module):
    def __init__(self, kernel_size, stride=None, padding=0):
        super().__init__()
        self.kernel = _pair(kernel_size)
        self.stride = self.kernel if stride is None else _pair(stride)
        self.padding = _pair(padding)

    def forward(self, x):
        _require_4d("MaxPool2d", x)
        out, self.cache = max_pool_forward_naive(x, self.kernel, self.stride, self.padding)
        return out

    def backward(self, dout):
        return max_pool_backward_naive(dout, self.cache)


class Flatten(Module):
    def forward(self, x):
        self.shape = x.shape
        return x.reshape(x.shape[0], -1)

    def backward(self, dout):
        return dout.reshape(self.shape)


class Sequential(Module):
    def __init__(self, *layers):
        super().__init__()
        named = layers[0].items() if len(layers) == 1 and isinstance(layers[0], dict) else \
            ((str(i), layer) for i, layer in enumerate(layers))
        for name, layer in named:
            setattr(self, name, layer)

    def _layers(self):
        return [child for child in vars(self).values() if isinstance(child, Module)]

    def forward(self, x):
        for layer in self._layers():
            x = layer(x)
        return x

    def backward(self, dout):
        for layer in reversed(self._layers()):
            dout = layer.backward(dout)
        return dout


class CrossEntropyLoss:
    def __init__(self, label_smoothing=0.0):
        if label_smoothing:
            raise NotImplementedError(f"CrossEntropyLoss: no label smoothing, got {label_smoothing}")

    def __call__(self, logits, targets):
        loss, self.dlogits = softmax_loss(logits, targets)
        return np.asarray(loss)

    def backward(self, grad_loss=1.0):
        return self.dlogits * grad_loss


class SGD:
    """torch.optim.SGD's rule with momentum (the first step's buffer is the gradient) and L2 weight decay."""

    def __init__(self, params, lr, momentum=0.0, weight_decay=0.0):
        self.params, self.lr, self.momentum, self.weight_decay = list(params), lr, momentum, weight_decay
        self.state = {}

    def zero_grad(self):
        for param in self.params:
            param.grad = None

    def step(self):
        for i, param in enumerate(self.params):
            if param.grad is None:
                continue
            step = param.grad + self.weight_decay * param.data
            if self.momentum:
                slot = self.state.setdefault(i, {})
                slot["momentum_buffer"] = step.copy() if "momentum_buffer" not in slot else \
                    self.momentum * slot["momentum_buffer"] + step
                step = slot["momentum_buffer"]
            param.data -= self.lr * step
