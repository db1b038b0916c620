"""Independent oracles: SciPy for convolution and pooling, finite differences (torch.autograd.gradcheck) for
the gradients of both the torch reference and the implementation under test.

- `scipy_conv2d` / `scipy_conv2d_backward`: convolution and its two gradients from `scipy.signal.correlate`
  and `convolve` (stride by subsampling / zero-dilation), `scipy_max_pool2d` from `scipy.ndimage`,
  `scipy_avg_pool2d` as a correlation with a box kernel.
- `NamespaceFunction`: the implementation's module as a `torch.autograd.Function` (forward and backward are
  its code), so `torch.autograd.gradcheck` differentiates its forward numerically and compares that with its
  backward, with no torch math involved.
- `assert_gradcheck`: gradcheck as an assertion naming the subject, plus a recorded directional-derivative
  check (the same criterion: |analytic - numeric| <= atol + rtol |numeric|).
"""

from __future__ import annotations

import numpy as np
import scipy.ndimage
import scipy.signal
import torch
from torch.autograd.gradcheck import GradcheckError

from reference.testing.compare import Where, assert_close

from .harness import to_torch
from .tolerances import GRADCHECK, SCIPY

GRADCHECK_OPTIONS = dict(eps=1e-6, atol=GRADCHECK.atol, rtol=GRADCHECK.rtol)


# -- SciPy ------------------------------------------------------------------------------------------------------

def _pair(v):
    return (int(v[0]), int(v[1])) if isinstance(v, (tuple, list)) else (int(v), int(v))


def _pad(x, padding, value=0.0):
    ph, pw = _pair(padding)
    return np.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)), constant_values=value)


def scipy_conv2d(x, weight, bias, stride, padding):
    """(N, C, H, W) * (O, C, kh, kw): each output map is a 3-D 'valid' correlation over (C, H, W), subsampled."""
    (sh, sw) = _pair(stride)
    xp = _pad(x, padding)
    out = np.stack([np.stack([scipy.signal.correlate(xp[n], weight[o], mode="valid", method="direct")[0]
                              for o in range(weight.shape[0])]) for n in range(x.shape[0])])
    out = out[:, :, ::sh, ::sw]
    return out if bias is None else out + bias.reshape(1, -1, 1, 1)


def _dilate(grad_out, full_shape, stride):
    """Put each strided output gradient back on the stride-1 grid of 'valid' positions (zeros in between)."""
    (sh, sw) = _pair(stride)
    n, o, ho, wo = grad_out.shape
    dilated = np.zeros((n, o, *full_shape), dtype=grad_out.dtype)
    dilated[:, :, : sh * (ho - 1) + 1 : sh, : sw * (wo - 1) + 1 : sw] = grad_out
    return dilated


def scipy_conv2d_backward(x, weight, grad_out, stride, padding):
    """(grad_x, grad_weight, grad_bias): grad_w = correlate(x_pad, g_dilated), grad_x = convolve(g_dilated, w)."""
    (ph, pw) = _pair(padding)
    kh, kw = weight.shape[2:]
    xp = _pad(x, padding)
    g = _dilate(grad_out, (xp.shape[2] - kh + 1, xp.shape[3] - kw + 1), stride)
    n_batch, c_in, o_out = x.shape[0], x.shape[1], weight.shape[0]
    grad_w = np.array([[sum(scipy.signal.correlate(xp[n, c], g[n, o], mode="valid", method="direct")
                            for n in range(n_batch)) for c in range(c_in)] for o in range(o_out)])
    grad_xp = np.array([[sum(scipy.signal.convolve(g[n, o], weight[o, c], mode="full", method="direct")
                             for o in range(o_out)) for c in range(c_in)] for n in range(n_batch)])
    grad_x = grad_xp[:, :, ph : ph + x.shape[2], pw : pw + x.shape[3]]
    return grad_x, grad_w, grad_out.sum(axis=(0, 2, 3))


def scipy_max_pool2d(x, kernel_size, stride, padding):
    """Max over windows: scipy.ndimage.maximum_filter anchored at the window's top-left, -inf padding."""
    (kh, kw), (sh, sw) = _pair(kernel_size), _pair(stride)
    xp = _pad(x, padding, -np.inf)
    filtered = scipy.ndimage.maximum_filter(xp, size=(1, 1, kh, kw), origin=(0, 0, -(kh // 2), -(kw // 2)),
                                            mode="constant", cval=-np.inf)
    ho, wo = (xp.shape[2] - kh) // sh + 1, (xp.shape[3] - kw) // sw + 1
    return filtered[:, :, : sh * (ho - 1) + 1 : sh, : sw * (wo - 1) + 1 : sw]


def scipy_avg_pool2d(x, kernel_size, stride, padding):
    """Mean over windows, zero padding counted: a correlation with a (kh, kw) box of 1 / (kh kw), subsampled."""
    (kh, kw) = _pair(kernel_size)
    n, c = x.shape[:2]
    box = np.full((1, 1, kh, kw), 1.0 / (kh * kw))
    out = scipy_conv2d(x.reshape(n * c, 1, *x.shape[2:]), box, None, stride, padding)
    return out.reshape(n, c, *out.shape[2:])


def _module_and_data(nn, cfg, seed):
    """The implementation's float64 module with the seeded state of the op tier, an input and an upstream grad."""
    from .namespace import build_layer
    from .runners import layer_data, prepared

    data = layer_data(cfg, seed)
    return prepared(build_layer(nn, cfg), np.float64, data["state"], True), data


def conv2d_matches_scipy(nn, cfg, seed: int, where: Where) -> None:
    """Conv2d forward and both gradients (float64) against scipy.signal.correlate / convolve."""
    module, data = _module_and_data(nn, cfg, seed)
    x, grad_out, state = data["x"], data["grad_out"], data["state"]
    stride, padding = cfg.kwargs.get("stride", 1), cfg.kwargs.get("padding", 0)
    grads = {name: param for name, param in module.named_parameters()}
    assert_close(module(x.copy()), scipy_conv2d(x, state["weight"], state.get("bias"), stride, padding), SCIPY,
                 where, "scipy forward")
    grad_x = module.backward(grad_out.copy())
    exp_x, exp_w, exp_b = scipy_conv2d_backward(x, state["weight"], grad_out, stride, padding)
    assert_close(grad_x, exp_x, SCIPY, where, "scipy grad[input]")
    assert_close(grads["weight"].grad, exp_w, SCIPY, where, "scipy grad[weight]")
    if "bias" in grads:
        assert_close(grads["bias"].grad, exp_b, SCIPY, where, "scipy grad[bias]")


SCIPY_POOLS = {"MaxPool2d": scipy_max_pool2d, "AvgPool2d": scipy_avg_pool2d}


def pool2d_matches_scipy(nn, cfg, seed: int, where: Where) -> None:
    """MaxPool2d / AvgPool2d forward (float64) against scipy.ndimage.maximum_filter / a box correlation."""
    module, data = _module_and_data(nn, cfg, seed)
    kernel = cfg.kwargs["kernel_size"]
    stride = cfg.kwargs.get("stride") or kernel
    expected = SCIPY_POOLS[cfg.layer](data["x"], kernel, stride, cfg.kwargs.get("padding", 0))
    assert_close(module(data["x"].copy()), expected, SCIPY, where, "scipy forward")


# -- the implementation's code under torch.autograd.gradcheck -------------------------------------------------------

class NamespaceFunction(torch.autograd.Function):
    """y = module(x) with the module's parameters as extra inputs; forward and backward are the module's code.

    Every evaluation loads the parameters (and the base state's buffers) with load_state_dict, so that a
    training-mode batch norm starts from the same running statistics each time; backward reruns the forward
    at its saved inputs first, so that the cache it differentiates belongs to this point."""

    @staticmethod
    def forward(ctx, subject, x, *params):
        ctx.subject = subject
        ctx.save_for_backward(x, *params)
        return torch.from_numpy(np.array(subject.evaluate(x, params), copy=True))

    @staticmethod
    def backward(ctx, grad_out):
        x, *params = ctx.saved_tensors
        subject = ctx.subject
        subject.evaluate(x, params)
        grad_x, grads = subject.gradients(np.array(grad_out.detach().numpy(), copy=True))  # 0-d stays 0-d
        return (None, torch.from_numpy(np.array(grad_x, copy=True)),
                *(torch.from_numpy(np.array(g, copy=True)) for g in grads))


class _ModuleUnderTest:
    """A module of the namespace with a base state, evaluated at given input and parameter values."""

    def __init__(self, module, state: dict, names: list[str]):
        self.module, self.state, self.names = module, state, names

    def evaluate(self, x, params):
        self.module.load_state_dict({**self.state, **{n: p.detach().numpy().copy()
                                                       for n, p in zip(self.names, params, strict=True)}})
        return self.module(x.detach().numpy().copy())

    def gradients(self, grad_out):
        self.module.zero_grad()
        grad_x = self.module.backward(grad_out)
        grads = dict(self.module.named_parameters())
        return grad_x, [grads[name].grad for name in self.names]


class _LossUnderTest:
    """A CrossEntropyLoss of the namespace with fixed targets, seen as a parameter-free function of the logits."""

    def __init__(self, loss, targets):
        self.loss, self.targets = loss, targets

    def evaluate(self, logits, params):
        return np.asarray(self.loss(logits.detach().numpy().copy(), self.targets.copy()))

    def gradients(self, grad_out):
        return self.loss.backward(float(grad_out)), []


def as_torch_function(under_test):
    """A callable f(x, *params) -> tensor that torch.autograd.gradcheck can differentiate (float64 tensors)."""
    return lambda x, *params: NamespaceFunction.apply(under_test, x, *params)


def directional_error(fn, inputs, seed: int = 0, eps: float = 1e-6):
    """(analytic, numeric) of u . J v for random u, v: backward's answer and central differences along v."""
    gen = torch.Generator().manual_seed(seed)
    inputs = [t.detach().requires_grad_(True) for t in inputs]
    out = fn(*inputs)
    u = torch.randn(out.shape, generator=gen, dtype=out.dtype)
    grads = torch.autograd.grad(out, inputs, u, allow_unused=True)
    directions = [torch.randn(t.shape, generator=gen, dtype=t.dtype) for t in inputs]
    analytic = sum(float((g * v).sum()) for g, v in zip(grads, directions, strict=True) if g is not None)
    with torch.no_grad():
        plus = fn(*[t + eps * v for t, v in zip(inputs, directions, strict=True)])
        minus = fn(*[t - eps * v for t, v in zip(inputs, directions, strict=True)])
    numeric = float((u * (plus - minus)).sum() / (2 * eps))
    return np.array(analytic), np.array(numeric)


def assert_gradcheck(fn, inputs, where: Where, stage: str, second_order: bool = False) -> None:
    """torch.autograd.gradcheck (or gradgradcheck) as an AssertionError naming the subject; records u.J.v too."""
    inputs = tuple(t.detach().to(torch.float64).requires_grad_(True) for t in inputs)
    if not second_order:
        analytic, numeric = directional_error(fn, inputs)
        assert_close(analytic, numeric, GRADCHECK, where, stage + " u.J.v")
    check = torch.autograd.gradgradcheck if second_order else torch.autograd.gradcheck
    try:
        check(fn, inputs, fast_mode=True, **GRADCHECK_OPTIONS)
    except GradcheckError as error:
        shapes = [tuple(t.shape) for t in inputs]
        raise AssertionError(f"{where.label(stage)}: {check.__name__} failed for input shapes {shapes}:\n{error}"
                             + (f"\nreproduce with:\n    {where.reproduce}" if where.reproduce else "")) from None


def gradient_subjects(nn, subject, cfg, seed):
    """(torch function, the implementation's function, float64 inputs) of one database subject at one point."""
    from .namespace import build_layer, construct, torch_twin
    from .runners import cross_entropy_data, layer_data, prepared

    if subject.op.kind == "loss":
        data = cross_entropy_data(cfg, seed)
        targets, smoothing = to_torch(data["targets"], "cpu"), cfg["label_smoothing"]
        loss = construct(nn.CrossEntropyLoss, "CrossEntropyLoss", label_smoothing=smoothing)

        def torch_loss(logits):
            return torch.nn.functional.cross_entropy(logits, targets, label_smoothing=smoothing)

        return torch_loss, as_torch_function(_LossUnderTest(loss, data["targets"])), [to_torch(data["logits"], "cpu")]
    data = layer_data(cfg, seed)
    twin = torch_twin(cfg).double()
    twin.load_state_dict({k: to_torch(v, "cpu") for k, v in data["state"].items()})
    twin.train(subject.variant.training)
    names = [n for n, _ in twin.named_parameters()]

    def torch_module(x, *params):
        return torch.func.functional_call(twin, dict(zip(names, params, strict=True)), (x,))

    module = prepared(build_layer(nn, cfg), np.float64, data["state"], subject.variant.training)
    under_test = _ModuleUnderTest(module, data["state"], names)
    return torch_module, as_torch_function(under_test), [to_torch(data["x"], "cpu"),
                                                         *(to_torch(data["state"][n], "cpu") for n in names)]


def gradients_pass_gradcheck(nn, subject, cfg, seed: int, where: Where) -> None:
    """torch's gradients pass gradcheck and gradgradcheck, the implementation's pass gradcheck, and the two agree
    at that point (the op tier's comparison in float64)."""
    from .harness import assert_matches_torch

    torch_fn, ours_fn, inputs = gradient_subjects(nn, subject, cfg, seed)
    assert_gradcheck(torch_fn, inputs, where, "gradcheck(torch)")
    assert_gradcheck(torch_fn, inputs, where, "gradgradcheck(torch)", second_order=True)
    assert_gradcheck(ours_fn, inputs, where, "gradcheck(implementation)")
    assert_matches_torch(nn, subject, cfg, seed, "float64", "cpu", tier=where.tier, reproduce=where.reproduce,
                         label=where.subject)
