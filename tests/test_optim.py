"""Optimizers and the schedule: constructor validation, descent on a quadratic, zero_grad, StepLR's lr sequence.
(Equality with torch.optim step by step is conformance/'s job.)"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from reference import numpy_nn as nn
from reference.numpy_nn import Parameter


def params(*shapes, dtype=np.float64, seed=0):
    rng = np.random.default_rng(seed)
    return [Parameter(rng.standard_normal(shape).astype(dtype)) for shape in shapes]


@pytest.mark.parametrize("make, fragment", [
    (lambda p: nn.SGD(p, lr=-0.1), "learning rate"),
    (lambda p: nn.SGD(p, lr=0.1, momentum=-0.5), "momentum"),
    (lambda p: nn.SGD(p, lr=0.1, weight_decay=-1e-4), "weight_decay"),
    (lambda p: nn.SGD(p, lr=0.1, nesterov=True), "Nesterov"),
    (lambda p: nn.SGD(p, lr=0.1, momentum=0.9, dampening=0.1, nesterov=True), "Nesterov"),
    (lambda p: nn.SGD([], lr=0.1), "empty parameter list"),
    (lambda p: nn.Adam(p, lr=-1e-3), "learning rate"),
    (lambda p: nn.Adam(p, eps=-1e-8), "epsilon"),
    (lambda p: nn.Adam(p, betas=(1.0, 0.999)), "beta parameter at index 0"),
    (lambda p: nn.Adam(p, betas=(0.9, -0.1)), "beta parameter at index 1"),
    (lambda p: nn.Adam(p, weight_decay=-1.0), "weight_decay"),
    (lambda p: nn.Adam([]), "empty parameter list"),
    (lambda p: nn.StepLR(nn.SGD(p, lr=0.1), step_size=0), "step_size"),
    (lambda p: nn.StepLR(nn.SGD(p, lr=0.1), step_size=-2), "step_size"),
    (lambda p: nn.StepLR(nn.SGD(p, lr=0.1), step_size=1.5), "step_size"),
    (lambda p: nn.SGD(p, lr=float("nan")), "learning rate"),
    (lambda p: nn.Adam(p, lr=float("nan")), "learning rate"),
    (lambda p: nn.SGD(p, lr="0.1"), "learning rate"),
    (lambda p: nn.SGD(p, lr=0.1, momentum=float("nan")), "momentum"),
    (lambda p: nn.SGD(p, lr=0.1, weight_decay=float("nan")), "weight_decay"),
    (lambda p: nn.SGD(p, lr=0.1, dampening=float("nan")), "dampening"),
    (lambda p: nn.Adam(p, eps=float("nan")), "epsilon"),
    (lambda p: nn.Adam(p, betas=(float("nan"), 0.9)), "beta parameter at index 0"),
    (lambda p: nn.Adam(p, betas=(0.9,)), "betas"),
    (lambda p: nn.Adam(p, weight_decay=float("nan")), "weight_decay"),
    (lambda p: nn.StepLR(nn.SGD(p, lr=0.1), step_size=1, gamma=float("nan")), "gamma"),
], ids=["sgd-lr", "sgd-momentum", "sgd-wd", "sgd-nesterov-no-momentum", "sgd-nesterov-dampening", "sgd-empty",
        "adam-lr", "adam-eps", "adam-beta1", "adam-beta2", "adam-wd", "adam-empty", "steplr-0", "steplr-negative",
        "steplr-float", "sgd-lr-nan", "adam-lr-nan", "sgd-lr-string", "sgd-momentum-nan", "sgd-wd-nan",
        "sgd-dampening-nan", "adam-eps-nan", "adam-beta1-nan", "adam-betas-one", "adam-wd-nan", "steplr-gamma-nan"])
def test_invalid_optimizer_arguments_raise_value_error_saying_which(make, fragment):
    with pytest.raises(ValueError, match=fragment):
        make(params((2,)))


@given(lr=st.floats(max_value=-1e-12, allow_infinity=True) | st.just(float("nan")))
def test_a_negative_or_nan_learning_rate_is_rejected_by_every_optimizer(lr):
    for make in (nn.SGD, nn.Adam):
        with pytest.raises(ValueError, match="learning rate"):
            make(params((2,)), lr=lr)


@pytest.mark.parametrize("make, option", [
    (lambda p: nn.SGD(p, lr=0.1, maximize=True), "maximize=True"),
    (lambda p: nn.SGD(p, lr=0.1, foreach=True), "foreach=True"),
    (lambda p: nn.Adam(p, amsgrad=True), "amsgrad=True"),
    (lambda p: nn.Adam(p, decoupled_weight_decay=True), "decoupled_weight_decay=True"),
    (lambda p: nn.StepLR(nn.SGD(p, lr=0.1), step_size=1, last_epoch=3), "last_epoch=3"),
], ids=["sgd-maximize", "sgd-foreach", "adam-amsgrad", "adam-decoupled", "steplr-last-epoch"])
def test_torch_options_not_implemented_raise_not_implemented_error_naming_them(make, option):
    with pytest.raises(NotImplementedError, match=option):
        make(params((2,)))


def test_step_lr_rejects_something_that_is_not_an_optimizer():
    with pytest.raises(TypeError, match="not an Optimizer"):
        nn.StepLR(object(), step_size=1)


OPTIMIZERS = {
    "sgd": dict(cls=nn.SGD, lr=0.1),
    "sgd-momentum": dict(cls=nn.SGD, lr=0.05, momentum=0.9),
    "sgd-nesterov": dict(cls=nn.SGD, lr=0.05, momentum=0.9, nesterov=True),
    "sgd-dampening-wd": dict(cls=nn.SGD, lr=0.05, momentum=0.5, dampening=0.5, weight_decay=1e-3),
    "adam": dict(cls=nn.Adam, lr=0.05),
    "adam-wd": dict(cls=nn.Adam, lr=0.05, betas=(0.8, 0.99), weight_decay=1e-3),
}


def quadratic(ps, scales):
    """f = sum_i scale_i * |p_i - 1|^2 / 2 with its gradient written into .grad."""
    value = 0.0
    for p, scale in zip(ps, scales, strict=True):
        value += 0.5 * scale * float(np.sum((p.data - 1.0) ** 2))
        p.grad = scale * (p.data - 1.0)
    return value


@pytest.mark.parametrize("kind", OPTIMIZERS)
@given(seed=st.integers(0, 2**16), scales=st.tuples(st.floats(0.5, 2.0), st.floats(0.5, 2.0)))
def test_a_few_steps_decrease_a_convex_quadratic(kind, seed, scales):
    kwargs = dict(OPTIMIZERS[kind])
    ps = params((3,), (2, 2), seed=seed)
    optimizer = kwargs.pop("cls")(ps, **kwargs)
    start = quadratic(ps, scales)
    values = []
    for _ in range(20):
        optimizer.step()
        values.append(quadratic(ps, scales))
    assert values[-1] < 0.5 * start
    assert values[0] < start  # the very first step already descends


@pytest.mark.parametrize("kind", OPTIMIZERS)
def test_zero_grad_drops_gradients_and_step_then_leaves_parameters_alone(kind):
    kwargs = dict(OPTIMIZERS[kind])
    ps = params((3,), (2,))
    optimizer = kwargs.pop("cls")(ps, **kwargs)
    quadratic(ps, (1.0, 1.0))
    optimizer.step()
    optimizer.zero_grad()
    assert all(p.grad is None for p in ps)
    before = [p.data.copy() for p in ps]
    optimizer.step()
    for p, old in zip(ps, before, strict=True):
        np.testing.assert_array_equal(p.data, old)


@pytest.mark.parametrize("kind", OPTIMIZERS)
def test_parameters_without_gradient_are_skipped_and_get_no_state(kind):
    kwargs = dict(OPTIMIZERS[kind])
    ps = params((3,), (2,))
    optimizer = kwargs.pop("cls")(ps, **kwargs)
    ps[0].grad = np.ones(3)
    frozen = ps[1].data.copy()
    optimizer.step()
    np.testing.assert_array_equal(ps[1].data, frozen)
    assert 1 not in optimizer.state


def test_module_zero_grad_sets_every_gradient_to_none_like_torch():
    model = nn.Sequential(nn.Linear(3, 2, dtype=np.float64), nn.ReLU(), nn.Linear(2, 1, dtype=np.float64))
    model(np.ones((2, 3)))
    model.backward(np.ones((2, 1)))
    assert all(p.grad is not None for p in model.parameters())
    model.zero_grad()
    assert all(p.grad is None for p in model.parameters())


def test_backward_accumulates_parameter_gradients_until_zero_grad():
    layer = nn.Linear(3, 2, dtype=np.float64)
    x = np.random.default_rng(0).standard_normal((4, 3))
    layer(x)
    layer.backward(np.ones((4, 2)))
    once = layer.weight.grad.copy()
    layer(x)
    layer.backward(np.ones((4, 2)))
    np.testing.assert_allclose(layer.weight.grad, 2 * once, rtol=1e-15)


@given(step_size=st.integers(1, 4), gamma=st.sampled_from([0.1, 0.5, 0.9]), lr=st.sampled_from([1.0, 0.05]))
def test_step_lr_multiplies_lr_by_gamma_every_step_size_epochs(step_size, gamma, lr):
    optimizer = nn.SGD(params((1,)), lr=lr)
    scheduler = nn.StepLR(optimizer, step_size=step_size, gamma=gamma)
    seen = []
    for _ in range(3 * step_size + 1):
        seen.append(scheduler.get_last_lr()[0])
        scheduler.step()
    expected = [lr * gamma ** (epoch // step_size) for epoch in range(3 * step_size + 1)]
    np.testing.assert_allclose(seen, expected, rtol=1e-12)
    assert optimizer.lr == scheduler.get_last_lr()[0]
