"""Independent oracles: finite differences (torch.autograd.gradcheck) for the gradients of both the torch reference
and the implementation under test (SciPy's oracles for convolution and pooling are in `scipy_oracles`).

- `NamespaceFunction`: the implementation's module as a `torch.autograd.Function` (forward and backward are
  its code), so `torch.autograd.gradcheck` differentiates its forward numerically and compares that with its
  backward, with no torch math involved.
- `assert_gradcheck`: gradcheck as an assertion naming the subject, plus a recorded directional-derivative
  check (the same criterion: |analytic - numeric| <= atol + rtol |numeric|).
"""

from __future__ import annotations

import numpy as np
import torch
from torch.autograd.gradcheck import GradcheckError

from reference.testing.compare import Where, assert_close

from .runners import first_output, upstream_loss_gradient
from .tensors import to_torch
from .tolerances import GRADCHECK
from .verdicts import implementation

GRADCHECK_OPTIONS = dict(eps=1e-6, atol=GRADCHECK.atol, rtol=GRADCHECK.rtol)


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
        with implementation(f"{type(self.module).__name__} (forward)"):
            self.module.load_state_dict({**self.state, **{n: p.detach().numpy().copy()
                                                           for n, p in zip(self.names, params, strict=True)}})
            return first_output(self.module(x.detach().numpy().copy()))

    def gradients(self, grad_out):
        with implementation(f"{type(self.module).__name__} (backward)"):
            self.module.zero_grad()
            grad_x = self.module.backward(grad_out)
            grads = dict(self.module.named_parameters())
            return grad_x, [grads[name].grad for name in self.names]


class _LossUnderTest:
    """A CrossEntropyLoss of the namespace with fixed targets, seen as a parameter-free function of the logits."""

    def __init__(self, loss, targets):
        self.loss, self.targets = loss, targets

    def evaluate(self, logits, params):
        with implementation("CrossEntropyLoss (forward)"):
            return np.asarray(self.loss(logits.detach().numpy().copy(), self.targets.copy()))

    def gradients(self, grad_out):
        with implementation("CrossEntropyLoss (backward)"):
            return self.loss.backward(upstream_loss_gradient(grad_out)), []


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
    from .namespace import build_layer, torch_twin
    from .runners import cross_entropy_data, cross_entropy_loss, layer_data, prepared, torch_cross_entropy

    if subject.op.kind == "loss":
        data = cross_entropy_data(cfg, seed)
        torch_loss = torch_cross_entropy(cfg, data, "cpu", torch.float64)
        with implementation("CrossEntropyLoss"):
            loss = cross_entropy_loss(nn, cfg, data)
        return torch_loss, as_torch_function(_LossUnderTest(loss, data["targets"])), [to_torch(data["logits"], "cpu")]
    data = layer_data(cfg, seed)
    twin = torch_twin(cfg).double()
    twin.load_state_dict({k: to_torch(v, "cpu") for k, v in data["state"].items()})
    twin.train(subject.variant.training)
    names = [n for n, _ in twin.named_parameters()]

    def torch_module(x, *params):
        return first_output(torch.func.functional_call(twin, dict(zip(names, params, strict=True)), (x,)))

    with implementation(subject.name):
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
