"""The Flax adapter (reference.adapters.flax): a few of its conformance checks in both dtypes, and its own
translations (layouts, padding forms, batch-norm momentum and bookkeeping, dropout masks, optimizer state,
refusals). Skipped where JAX/Flax/optax are not installed."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("flax", reason="the Flax adapter needs flax (pip install 'reference[jax]')")
pytest.importorskip("optax", reason="the Flax adapter needs optax (pip install 'reference[jax]')")

import torch  # noqa: E402
from hypothesis import Phase, settings  # noqa: E402

import reference.adapters.flax as F  # noqa: E402
from reference.testing.conformance import checks  # noqa: E402
from reference.testing.conformance.engine import NotImplementedInNamespace  # noqa: E402

RNG = np.random.default_rng(0)


@pytest.fixture(autouse=True, scope="module")
def one_torch_thread():
    """torch on one thread next to XLA's pool: on 2 shared cores, OpenMP's spinning barriers slow tiny torch
    backwards down 10-100x."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture
def few_examples():
    """3 hypothesis examples per check (each fresh configuration compiles its Flax graph once), not shrunk."""
    previous = settings()
    settings.register_profile("flax-adapter", previous, max_examples=3, phases=[Phase.explicit, Phase.generate])
    settings.load_profile("flax-adapter")
    yield
    settings.register_profile("flax-adapter-restored", previous)
    settings.load_profile("flax-adapter-restored")


CHECKS = ["op-Conv2d[args]-float64-cpu", "op-Linear-float32-cpu", "op-BatchNorm2d[eval]-float32-cpu",
          "op-CrossEntropyLoss[args]-float32-cpu", "model-tiny_cnn[train]-float64-cpu",
          "trajectory-tiny_cnn[sgd]-float64-cpu"]


@pytest.mark.parametrize("check_id", CHECKS)
def test_conformance_subset(check_id, few_examples):
    (check,) = [c for c in checks(F, dtypes=("float64", "float32"), devices=("cpu",)) if c.id == check_id]
    try:
        check.run()
    except NotImplementedInNamespace as reason:  # every drawn case refused: the check must not be empty here
        pytest.fail(f"{check_id}: nothing implemented: {reason}")


def test_module_attributes():
    assert F.UNAVAILABLE is None and F.FRAMEWORK and F.EXTRA == "jax"
    assert {"jax", "flax", "optax"} <= set(F.versions()) and isinstance(F.MAX_EXAMPLES, int)


def test_imports_and_refuses_without_flax(monkeypatch):
    """Without flax the module still imports; UNAVAILABLE says why and every class refuses with it."""
    monkeypatch.setitem(sys.modules, "flax", None)  # `import flax` now raises ImportError
    spec = importlib.util.spec_from_file_location("flax_adapter_without_flax", Path(F.__file__))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert "not installed" in module.UNAVAILABLE and "reference[jax]" in module.UNAVAILABLE
    for make in (lambda: module.Conv2d(1, 1, 1), lambda: module.CrossEntropyLoss(), lambda: module.SGD([], lr=0.1)):
        with pytest.raises(NotImplementedError, match="not installed"):
            make()


class _Param:
    def __init__(self):
        self.data, self.grad = np.zeros(2), None


def _torch_state(module) -> dict:
    return {key: value.detach().numpy().copy() for key, value in module.state_dict().items()}


@pytest.mark.parametrize("kwargs", [dict(padding="same", padding_mode="circular", kernel_size=(2, 3)),
                                    dict(padding=1, padding_mode="reflect", kernel_size=3, stride=2)])
def test_conv_padding_modes_match_torch(kwargs):
    """torch's circular / reflect padding by the 'same' amount is Flax's CIRCULAR / REFLECT padding."""
    twin = torch.nn.Conv2d(2, 3, **kwargs).double()
    ours = F.Conv2d(2, 3, **kwargs).to(np.float64)
    ours.load_state_dict(_torch_state(twin))
    x = RNG.standard_normal((2, 2, 5, 6))
    np.testing.assert_allclose(ours(x), twin(torch.from_numpy(x)).detach().numpy(), rtol=1e-12, atol=1e-12)
    assert ours.state_dict()["weight"].shape == (3, 2, *((2, 3) if kwargs["kernel_size"] == (2, 3) else (3, 3)))


@pytest.mark.parametrize("make, reason", [
    (lambda: F.Conv2d(1, 1, 3, padding=1, padding_mode="replicate"), "replicate"),
    (lambda: F.Conv2d(1, 1, 3, padding=2, padding_mode="circular"), "'same' amount"),
    (lambda: F.MaxPool2d(2, ceil_mode=True), "ceil_mode"),
    (lambda: F.MaxPool2d(2, dilation=2), "dilation"),
    (lambda: F.AvgPool2d(2, divisor_override=3), "divisor_override"),
    (lambda: F.BatchNorm2d(2, momentum=None), "momentum=None"),
    (lambda: F.Hardtanh(-2.0, 2.0), "hard_tanh"),
    (lambda: F.CrossEntropyLoss(weight=np.ones(3)), "weight"),
    (lambda: F.SGD([_Param()], lr=0.1, momentum=0.9, dampening=0.5), "dampening"),
    (lambda: F.Adam([_Param()], amsgrad=True), "amsgrad"),
])
def test_refusals_name_what_flax_lacks(make, reason):
    with pytest.raises(NotImplementedError, match=reason):
        make()


def test_adaptive_pool_translates_dividing_sizes_only():
    pool = F.AdaptiveAvgPool2d((2, None))
    x = RNG.standard_normal((1, 2, 4, 3))
    expected = torch.nn.AdaptiveAvgPool2d((2, None))(torch.from_numpy(x)).numpy()
    np.testing.assert_allclose(pool(x), expected, rtol=1e-12)
    with pytest.raises(NotImplementedError, match="divide"):
        pool(RNG.standard_normal((1, 2, 5, 3)))


def test_batch_norm_translations_and_its_known_difference():
    """Momentum m -> 1 - m and the running mean agree with torch; num_batches_tracked counts training forwards;
    the running variance is Flax's biased one (the documented difference, see the xfails file)."""
    twin = torch.nn.BatchNorm2d(3, momentum=0.3).double()
    ours = F.BatchNorm2d(3, momentum=0.3).to(np.float64)
    ours.load_state_dict(_torch_state(twin))
    x = RNG.standard_normal((4, 3, 2, 2))
    np.testing.assert_allclose(ours(x), twin(torch.from_numpy(x)).detach().numpy(), rtol=1e-12, atol=1e-12)
    state = ours.state_dict()
    np.testing.assert_allclose(state["running_mean"], twin.running_mean.numpy(), rtol=1e-12)
    assert state["num_batches_tracked"] == twin.num_batches_tracked.item() == 1
    biased, n = x.var(axis=(0, 2, 3)), 16
    np.testing.assert_allclose(state["running_var"], 0.7 + 0.3 * biased, rtol=1e-12)
    np.testing.assert_allclose(twin.running_var.numpy(), 0.7 + 0.3 * biased * n / (n - 1), rtol=1e-12)
    ours.eval()
    ours(x)
    assert ours.state_dict()["num_batches_tracked"] == 1


def test_dropout_mask_is_the_multiplier_flax_applied():
    drop = F.Dropout2d(0.5)
    x = RNG.standard_normal((3, 4, 2, 2)).astype(np.float32)
    out = drop(x)
    mask = drop.mask
    assert set(np.unique(mask)) <= {0.0, 2.0} and (mask == mask[:, :, :1, :1]).all()  # whole channels
    np.testing.assert_array_equal(out, x * mask)
    np.testing.assert_array_equal(drop.backward(np.ones_like(x)), mask)
    drop.eval()
    assert drop.mask is None and (drop(x) == x).all()


def test_optimizer_state_uses_torch_slot_names():
    """SGD's optax trace is torch's momentum_buffer (first step: gradient + weight decay), lr is writable, and
    StepLR's staircase schedule gives torch's learning rates."""
    linear = F.Linear(2, 1, bias=False).to(np.float64)
    linear.load_state_dict({"weight": np.array([[1.0, -2.0]])})
    (param,) = linear.parameters()
    sgd = F.SGD([param], lr=0.5, momentum=0.9, weight_decay=0.1)
    param.grad = np.array([[0.5, 0.5]])
    sgd.step()
    np.testing.assert_allclose(sgd.state[0]["momentum_buffer"], [[0.6, 0.3]], rtol=1e-12)
    np.testing.assert_allclose(linear.state_dict()["weight"], [[0.7, -2.15]], rtol=1e-12)
    schedule = F.StepLR(sgd, step_size=2, gamma=0.5)
    lrs = []
    for _ in range(5):
        schedule.step()
        lrs.append(sgd.lr)
    np.testing.assert_allclose(lrs, [0.5, 0.25, 0.25, 0.125, 0.125])


def test_adam_matches_torch_with_torch_slot_names():
    """optax's adam after add_decayed_weights is torch.optim.Adam (L2 weight decay); its count, mu and nu are
    torch's step, exp_avg and exp_avg_sq."""
    start, grads = RNG.standard_normal(3), RNG.standard_normal((3, 3))
    ours, theirs = _Param(), torch.nn.Parameter(torch.from_numpy(start.copy()))
    ours.data = start.copy()
    adam = F.Adam([ours], lr=0.1, betas=(0.5, 0.9), eps=1e-3, weight_decay=0.1)
    reference = torch.optim.Adam([theirs], lr=0.1, betas=(0.5, 0.9), eps=1e-3, weight_decay=0.1)
    for grad in grads:
        ours.grad, theirs.grad = grad.copy(), torch.from_numpy(grad.copy())
        adam.step()
        reference.step()
    np.testing.assert_allclose(ours.data, theirs.detach().numpy(), rtol=1e-12)
    slots, expected = adam.state[0], reference.state[theirs]
    assert slots["step"] == expected["step"].item() == 3
    for name in ("exp_avg", "exp_avg_sq"):
        np.testing.assert_allclose(slots[name], expected[name].numpy(), rtol=1e-12)
