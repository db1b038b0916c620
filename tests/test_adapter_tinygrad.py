"""The tinygrad adapter: a fast subset of its conformance checks, and its own translations.

tinygrad schedules and compiles every new shape (about a second each), so the subset is small: an op in both dtypes
and an optimizer (a model and a trajectory are in the slow tier), and the adapter's translations. The full run:
`python -m reference conform reference.adapters.tinygrad --xfails reference/adapters/xfails/tinygrad.txt`.
"""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest

pytest.importorskip("tinygrad")
import reference.adapters.tinygrad as adapter  # noqa: E402

if adapter.UNAVAILABLE is not None:
    pytest.skip(adapter.UNAVAILABLE, allow_module_level=True)

from reference.testing.conformance import checks  # noqa: E402

FAST = ("op-Linear-float64-cpu", "op-Linear-float32-cpu", "op-SGD-float32-cpu")  # no known difference drawn
SLOW = ("model-tiny_cnn[train]-float64-cpu", "trajectory-tiny_cnn[sgd]-float32-cpu")  # a whole model: ~10-30 s


@pytest.fixture
def few_examples():
    """The adapter's MAX_EXAMPLES hypothesis examples per check (the engine's floor, 3), not the ci profile's 25:
    tinygrad compiles every new shape."""
    from hypothesis import settings

    previous = settings.get_current_profile_name()
    settings.register_profile("tinygrad-adapter", settings.get_profile(previous), max_examples=adapter.MAX_EXAMPLES)
    settings.load_profile("tinygrad-adapter")
    yield
    settings.load_profile(previous)


def _cases(ids, marks=()):
    return [pytest.param(c, id=c.id, marks=marks) for c in checks(adapter, devices=("cpu",)) if c.id in ids]


@pytest.mark.parametrize("check", _cases(FAST) + _cases(SLOW, pytest.mark.slow))
def test_conformance_subset(check, few_examples):
    check.run()


def test_subset_exists():
    assert {c.id for c in checks(adapter, devices=("cpu",))} >= {*FAST, *SLOW}


def test_unavailable_without_the_compiler():
    """No clang: the module still imports, UNAVAILABLE says to install it, and every constructor refuses."""
    code = "import reference.adapters.tinygrad as t; print(t.UNAVAILABLE)"
    env = {**os.environ, "CC": "no-such-compiler-for-tinygrad"}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True).stdout
    assert "apt-get install clang" in out


def test_constructors_refuse_when_unavailable(monkeypatch):
    monkeypatch.setattr(adapter, "UNAVAILABLE", "tinygrad is not installed")
    for build in (adapter.ReLU, lambda: adapter.Conv2d(1, 1, 3), adapter.CrossEntropyLoss,
                  lambda: adapter.SGD([np.zeros(1)], lr=0.1)):
        with pytest.raises(NotImplementedError, match="not installed"):
            build()


def test_state_dict_is_torchvisions():
    """torchvision's keys, shapes and (loaded) values; building and loading compiles nothing (parameters stay
    tinygrad's lazy initialisation until read)."""
    torch = pytest.importorskip("torch")
    torchvision = pytest.importorskip("torchvision")
    theirs = torchvision.models.resnet.BasicBlock(2, 4, 2, torch.nn.Sequential(
        torch.nn.Conv2d(2, 4, 1, stride=2, bias=False), torch.nn.BatchNorm2d(4))).double()
    ours = adapter.BasicBlock(2, 4, 2, adapter.Sequential(adapter.Conv2d(2, 4, 1, stride=2, bias=False),
                                                          adapter.BatchNorm2d(4)))
    assert [(k, tuple(p.shape)) for k, p in ours.named_parameters()] == \
        [(k, tuple(p.shape)) for k, p in theirs.named_parameters()]
    ours.to(np.float64).load_state_dict(theirs.state_dict())
    for key, value in theirs.state_dict().items():
        np.testing.assert_array_equal(ours.state_dict()[key], value.numpy())
        assert ours.state_dict()[key].dtype == value.numpy().dtype


@pytest.mark.parametrize("build, reason", [
    (lambda: adapter.Adam([np.zeros(1)], lr=0.1, weight_decay=1e-4), "no L2 weight_decay"),
    (lambda: adapter.SGD([np.zeros(1)], lr=0.1, momentum=0.9, dampening=0.1), "dampening"),
    (lambda: adapter.BatchNorm2d(3, momentum=None), "cumulative"),
    (lambda: adapter.AvgPool2d(2, divisor_override=3), "divisor_override"),
    (lambda: adapter.StepLR(None, 1), "no learning-rate scheduler"),
    (lambda: adapter.CrossEntropyLoss(weight=np.ones(3), label_smoothing=0.1), "no label smoothing"),
])
def test_refusals_name_what_tinygrad_lacks(build, reason):
    with pytest.raises(NotImplementedError, match=reason):
        build()


def test_dropout_mask_is_what_the_forward_dropped():
    """The mask (tinygrad's dropout of ones under the forward's seed) is the multiplier the forward applied."""
    layer = adapter.Dropout(0.5)
    x = np.arange(1.0, 25.0).reshape(4, 6)
    out = layer(x)
    assert set(np.unique(layer.mask)) == {0.0, 2.0}
    np.testing.assert_array_equal(out, x * layer.mask)
    np.testing.assert_array_equal(layer.backward(np.ones_like(x)), layer.mask)
    layer.eval()
    np.testing.assert_array_equal(layer(x), x)
    assert layer.mask is None


def test_dropout2d_only_as_the_identity():
    layer = adapter.Dropout2d(0.5)
    with pytest.raises(NotImplementedError, match="channel-wise"):
        layer(np.ones((2, 3, 2, 2)))


def test_adaptive_pooling_only_with_a_fixed_window():
    with pytest.raises(NotImplementedError, match="adaptive pooling"):
        adapter.AdaptiveAvgPool2d(3)(np.ones((1, 1, 4, 4)))
