"""Independent oracles: SciPy for convolution and pooling, finite differences (torch.autograd.gradcheck) for
gradients of both the torch reference and the NumPy layers.

- `scipy_conv2d` / `scipy_conv2d_backward`: convolution and its two gradients from `scipy.signal.correlate`
  and `convolve` (stride by subsampling / zero-dilation), `scipy_max_pool2d` from `scipy.ndimage`,
  `scipy_avg_pool2d` as a correlation with a box kernel.
- `NumpyModuleFunction`: a NumPy module as a `torch.autograd.Function` (forward and backward are the NumPy
  code), so `torch.autograd.gradcheck` differentiates the NumPy forward numerically and compares it with the
  NumPy backward, with no torch math involved.
- `assert_gradcheck`: gradcheck as an assertion (AssertionError naming the subject) plus a recorded
  directional-derivative check (the same criterion: |analytic - numeric| <= atol + rtol |numeric|).
"""

from __future__ import annotations

import numpy as np
import scipy.ndimage
import scipy.signal
import torch
from torch.autograd.gradcheck import GradcheckError

from reference.numpy_nn import CrossEntropyLoss
from reference.testing.compare import Where, assert_close

from .harness import assert_matches_torch, to_torch
from .tolerances import tolerance

GRADCHECK_TOLERANCE = tolerance("oracle/gradcheck", "float64")
GRADCHECK = dict(eps=1e-6, atol=GRADCHECK_TOLERANCE.atol, rtol=GRADCHECK_TOLERANCE.rtol)


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
    box = np.full((c, kh, kw), 1.0 / (kh * kw))
    flat = x.reshape(n * c, 1, *x.shape[2:])
    out = scipy_conv2d(flat, box[:1].reshape(1, 1, kh, kw), None, stride, padding)
    return out.reshape(n, c, *out.shape[2:])


# -- NumPy code under torch.autograd.gradcheck ---------------------------------------------------------------------

class NumpyModuleFunction(torch.autograd.Function):
    """y = module(x) with the module's parameters as extra inputs; forward and backward are the NumPy code.

    backward reruns the NumPy forward at the saved inputs first, so the cache it differentiates always belongs
    to this point (gradcheck evaluates the function at perturbed points in between).
    """

    @staticmethod
    def forward(ctx, module, x, *params):
        ctx.module = module
        ctx.save_for_backward(x, *params)
        return torch.from_numpy(_run_forward(module, x, params).copy())

    @staticmethod
    def backward(ctx, grad_out):
        x, *params = ctx.saved_tensors
        module = ctx.module
        _run_forward(module, x, params)
        module.zero_grad()
        grad_x = module.backward(np.array(grad_out.detach().numpy(), copy=True))  # 0-d stays 0-d
        grads = [torch.from_numpy(np.array(p.grad, copy=True)) for p in module.parameters()]
        return (None, torch.from_numpy(np.array(grad_x, copy=True)), *grads)


def _run_forward(module, x, params):
    for param, value in zip(module.parameters(), params, strict=True):
        param.data = value.detach().numpy().copy()
    return module(x.detach().numpy().copy())


def numpy_as_torch_function(module):
    """A callable f(x, *params) -> tensor that torch.autograd.gradcheck can differentiate (float64 tensors)."""
    return lambda x, *params: NumpyModuleFunction.apply(module, x, *params)


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
        assert_close(analytic, numeric, GRADCHECK_TOLERANCE, where, stage + " u.J.v")
    check = torch.autograd.gradgradcheck if second_order else torch.autograd.gradcheck
    try:
        check(fn, inputs, fast_mode=True, **GRADCHECK)
    except GradcheckError as error:
        shapes = [tuple(t.shape) for t in inputs]
        raise AssertionError(f"{where.label(stage)}: {check.__name__} failed for input shapes {shapes}:\n{error}"
                             + (f"\nreproduce with:\n    {where.reproduce}" if where.reproduce else "")) from None


# -- the oracle checks (each test and each mutation test calls one of these) ----------------------------------

def _module_and_data(cfg, seed):
    rng = np.random.default_rng(seed)
    module = cfg.build(np.float64, seed=seed % 2**31)
    return module, rng.standard_normal(cfg.input_shape), rng.standard_normal(cfg.output_shape)


def _where(subject, call):
    return Where("oracle", subject, "float64", "cpu",
                 f"from conformance.oracles import *\nfrom reference.testing.strategies import LayerConfig\n{call}")


def assert_conv2d_matches_scipy(cfg, seed: int) -> None:
    """NumPy Conv2d forward and both gradients (float64) against scipy.signal.correlate / convolve."""
    where = _where("Conv2d", f"assert_conv2d_matches_scipy({cfg!r}, seed={seed})")
    module, x, grad_out = _module_and_data(cfg, seed)
    bias = None if module.bias is None else module.bias.data
    tol = tolerance("oracle/scipy", "float64")
    assert_close(module(x), scipy_conv2d(x, module.weight.data, bias, module.stride, module.padding), tol, where,
                 "scipy forward")
    grad_x = module.backward(grad_out)
    exp_x, exp_w, exp_b = scipy_conv2d_backward(x, module.weight.data, grad_out, module.stride, module.padding)
    assert_close(grad_x, exp_x, tol, where, "scipy grad[input]")
    assert_close(module.weight.grad, exp_w, tol, where, "scipy grad[weight]")
    if module.bias is not None:
        assert_close(module.bias.grad, exp_b, tol, where, "scipy grad[bias]")


SCIPY_POOLS = {"MaxPool2d": scipy_max_pool2d, "AvgPool2d": scipy_avg_pool2d}


def assert_pool2d_matches_scipy(cfg, seed: int) -> None:
    """NumPy MaxPool2d / AvgPool2d forward (float64) against scipy.ndimage.maximum_filter / a box correlation."""
    where = _where(cfg.layer, f"assert_pool2d_matches_scipy({cfg!r}, seed={seed})")
    module, x, _ = _module_and_data(cfg, seed)
    expected = SCIPY_POOLS[cfg.layer](x, module.kernel_size, module.stride, module.padding)
    assert_close(module(x), expected, tolerance("oracle/scipy", "float64"), where, "scipy forward")


class _LossAsModule:
    """CrossEntropyLoss with fixed targets seen as a parameter-free module of the logits (for gradcheck)."""

    def __init__(self, label_smoothing, targets):
        self.loss, self.targets = CrossEntropyLoss(label_smoothing), targets

    def parameters(self):
        return iter(())

    def zero_grad(self):
        pass

    def __call__(self, logits):
        return self.loss(logits, self.targets)

    def backward(self, grad):
        return self.loss.backward(float(grad))


def gradient_subjects(op, cfg, seed):
    """(torch function, NumPy function, float64 inputs) of one op-table entry at one point."""
    from .ops import torch_twin

    data = op.make_data(cfg, seed)
    if op.name == "CrossEntropyLoss":
        targets, smoothing = to_torch(data["targets"], "cpu"), cfg["label_smoothing"]

        def torch_loss(logits):
            return torch.nn.functional.cross_entropy(logits, targets, label_smoothing=smoothing)

        numpy_fn = numpy_as_torch_function(_LossAsModule(smoothing, data["targets"]))
        return torch_loss, numpy_fn, [to_torch(data["logits"], "cpu")]
    twin = torch_twin(cfg).double()
    twin.load_state_dict({k: to_torch(v, "cpu") for k, v in data["state"].items()})
    twin.train(op.training)
    names = [n for n, _ in twin.named_parameters()]

    def torch_module(x, *params):
        return torch.func.functional_call(twin, dict(zip(names, params, strict=True)), (x,))

    module = cfg.build(np.float64)
    module.load_state_dict(data["state"])
    module.train(op.training)
    params = [to_torch(p.data, "cpu") for p in module.parameters()]
    return torch_module, numpy_as_torch_function(module), [to_torch(data["x"], "cpu"), *params]


def assert_gradients_pass_gradcheck(name: str, cfg, seed: int) -> None:
    """torch's gradients pass gradcheck and gradgradcheck, NumPy's pass gradcheck, and NumPy == torch (float64)."""
    from .ops import OPS_BY_NAME

    op = OPS_BY_NAME[name]
    where = _where(name, f"assert_gradients_pass_gradcheck({name!r}, {cfg!r}, seed={seed})")
    torch_fn, numpy_fn, inputs = gradient_subjects(op, cfg, seed)
    assert_gradcheck(torch_fn, inputs, where, "gradcheck(torch)")
    assert_gradcheck(torch_fn, inputs, where, "gradgradcheck(torch)", second_order=True)
    assert_gradcheck(numpy_fn, inputs, where, "gradcheck(numpy)")
    assert_matches_torch(op, cfg, seed, "float64", "cpu", tier="oracle")
