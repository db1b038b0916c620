"""dtype follows the input: float32 stays float32 and float64 stays float64 through every layer's forward and
backward, every zoo model, the loss, and the optimizers' updates and state (no silent NumPy 2 promotion)."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from reference import numpy_nn as nn
from reference import zoo
from reference.testing import strategies as rst
from reference.testing.conformance import database as db
from reference.testing.conformance.namespace import numpy_layer

DTYPES = [np.float32, np.float64]


def assert_module_arrays_have_dtype(module, dtype) -> None:
    for name, param in module.named_parameters():
        assert param.data.dtype == dtype, name
        assert param.grad is None or param.grad.dtype == dtype, f"{name}.grad"
    for name, buf in module.named_buffers():
        expected = np.int64 if name.endswith("num_batches_tracked") else dtype
        assert isinstance(buf, np.ndarray) and buf.dtype == expected, name


@pytest.mark.parametrize("name", db.LAYERS)
@given(data=st.data(), dtype=rst.float_dtypes, training=st.booleans(), seed=rst.seeds)
def test_layer_forward_and_backward_keep_the_input_dtype(name, data, dtype, training, seed):
    cfg = data.draw(db.layer_configs(name), label="config")
    module = numpy_layer(cfg, dtype, seed).train(training)
    rng = np.random.default_rng(seed)
    out = module(rng.standard_normal(cfg.input_shape).astype(dtype))
    assert out.dtype == dtype
    assert module.backward(rng.standard_normal(out.shape).astype(dtype)).dtype == dtype
    assert_module_arrays_have_dtype(module, dtype)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", [pytest.param(name, marks=[pytest.mark.slow] if zoo.spec(name).quirks.slow else [])
                                  for name in zoo.names()])
def test_zoo_model_forward_backward_and_state_keep_the_dtype(name, dtype):
    model = zoo.build(name, "numpy", seed=0).to(dtype)
    c, h, w = zoo.spec(name).input_shape
    x = np.random.default_rng(0).standard_normal((2, c, h, w)).astype(dtype)
    out = model(x)
    assert out.dtype == dtype and out.shape == (2, zoo.spec(name).num_classes)
    loss = nn.CrossEntropyLoss(label_smoothing=0.1)
    assert loss(out, np.array([0, 1])).dtype == dtype
    assert model.backward(loss.backward()).dtype == dtype
    assert_module_arrays_have_dtype(model, dtype)
    assert all(value.dtype in (dtype, np.int64) for value in model.state_dict().values())


def test_zoo_models_are_float32_by_default():
    for name in zoo.names():
        assert {p.dtype for p in zoo.build(name, "numpy").parameters()} == {np.dtype(np.float32)}, name


@given(dtype=rst.float_dtypes, n=st.integers(1, 4), k=st.integers(1, 5), smoothing=st.sampled_from([0.0, 0.3]),
       grad_loss=st.sampled_from([1.0, np.float64(0.5), np.float32(2.0)]))
def test_cross_entropy_loss_and_gradient_keep_the_logits_dtype(dtype, n, k, smoothing, grad_loss):
    loss = nn.CrossEntropyLoss(label_smoothing=smoothing)
    value = loss(np.ones((n, k), dtype=dtype), np.zeros(n, dtype=np.int64))
    assert value.dtype == dtype and value.shape == ()
    assert loss.backward(grad_loss).dtype == dtype


OPTIMIZERS = {
    "sgd": lambda params: nn.SGD(params, lr=0.1),
    "sgd-momentum-wd": lambda params: nn.SGD(params, lr=0.1, momentum=0.9, weight_decay=1e-2),
    "sgd-nesterov-dampening": lambda params: nn.SGD(params, lr=0.1, momentum=0.9, nesterov=True),
    "sgd-dampening": lambda params: nn.SGD(params, lr=0.1, momentum=0.5, dampening=0.3),
    "adam": lambda params: nn.Adam(params, lr=1e-2),
    "adam-wd": lambda params: nn.Adam(params, lr=1e-2, betas=(0.8, 0.9), eps=1e-6, weight_decay=1e-2),
}


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("kind", OPTIMIZERS)
def test_optimizer_updates_and_state_keep_the_parameter_dtype(kind, dtype):
    model = zoo.build("tiny_cnn", "numpy", seed=0).to(dtype)
    optimizer = OPTIMIZERS[kind](model.parameters())
    scheduler = nn.StepLR(optimizer, step_size=1, gamma=0.5)
    rng = np.random.default_rng(0)
    loss = nn.CrossEntropyLoss()
    for _ in range(3):
        optimizer.zero_grad()
        loss(model(rng.standard_normal((4, 1, 8, 8)).astype(dtype)), rng.integers(0, 10, 4))
        model.backward(loss.backward())
        optimizer.step()
        scheduler.step()
    assert_module_arrays_have_dtype(model, dtype)
    for index, state in optimizer.state.items():
        for key, value in state.items():
            if isinstance(value, np.ndarray):
                assert value.dtype == dtype, (index, key)


@pytest.mark.parametrize("target", DTYPES)
@pytest.mark.parametrize("name", ["tiny_resnet", "simple_cnn"])
def test_to_casts_parameters_gradients_and_float_buffers(name, target):
    model = zoo.build(name, "numpy").to(np.float64 if target == np.float32 else np.float32)
    c, h, w = zoo.spec(name).input_shape
    out = model(np.zeros((2, c, h, w), dtype=model.dtype))
    model.backward(np.ones_like(out))
    assert model.to(target) is model
    assert_module_arrays_have_dtype(model, target)


@pytest.mark.parametrize("dtype", [np.float16, np.int32, np.complex128])
def test_to_rejects_dtypes_other_than_float32_and_float64(dtype):
    with pytest.raises(TypeError, match="float32 or float64"):
        nn.Conv2d(1, 1, 1).to(dtype)
