"""state_dict / load_state_dict: torch's keys and order, copies out and in, round trips, and all-or-nothing loads."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from reference import numpy_nn as nn
from reference import zoo
from reference.numpy_nn import StateDictError
from reference.testing import strategies as rst
from reference.testing.conformance import database as db
from reference.testing.conformance.namespace import numpy_layer, torch_twin


def snapshot(module) -> dict:
    """Copies of every parameter and buffer, read directly (not through state_dict)."""
    arrays = {name: np.array(p.data, copy=True) for name, p in module.named_parameters()}
    arrays.update({f"buffer:{name}": np.array(b, copy=True) for name, b in module.named_buffers()})
    return arrays


def assert_same_arrays(before: dict, after: dict) -> None:
    assert list(before) == list(after)
    for key in before:
        assert before[key].dtype == after[key].dtype and before[key].shape == after[key].shape, key
        np.testing.assert_array_equal(before[key], after[key], err_msg=key)


@pytest.mark.parametrize("name", db.LAYERS)
@given(data=st.data(), dtype=rst.float_dtypes)
def test_state_dict_keys_shapes_and_order_are_the_torch_twins(name, data, dtype):
    cfg = data.draw(db.layer_configs(name), label="config")
    module = numpy_layer(cfg, dtype)
    twin = torch_twin(cfg)
    state, expected = module.state_dict(), twin.state_dict()
    assert list(state) == list(expected)
    assert [value.shape for value in state.values()] == [tuple(value.shape) for value in expected.values()]
    assert [n for n, _ in module.named_parameters()] == [n for n, _ in twin.named_parameters()]
    for key, value in state.items():
        assert isinstance(value, np.ndarray), key
        assert value.dtype == (np.int64 if key.endswith("num_batches_tracked") else dtype), key


@pytest.mark.parametrize("name", db.LAYERS)
@given(data=st.data(), seed=rst.seeds)
def test_state_dict_round_trip_reproduces_outputs_and_state(name, data, seed):
    cfg = data.draw(db.layer_configs(name), label="config")
    source, target = numpy_layer(cfg, np.float64, seed), numpy_layer(cfg, np.float64, seed + 1)
    x = np.random.default_rng(seed).standard_normal(cfg.input_shape)
    source(x)  # training step: BatchNorm running statistics move away from their defaults
    target.load_state_dict(source.state_dict())
    assert_same_arrays(snapshot(source), snapshot(target))
    np.testing.assert_array_equal(source.eval()(x), target.eval()(x))


@pytest.mark.parametrize("name", db.PARAMETRIC_LAYERS)
@given(data=st.data())
def test_state_dict_returns_copies_and_load_copies_in(name, data):
    cfg = data.draw(db.layer_configs(name), label="config")
    module = numpy_layer(cfg, np.float64)
    before = snapshot(module)
    state = module.state_dict()
    for value in state.values():
        value += 1
    assert_same_arrays(before, snapshot(module))
    module.load_state_dict(state)
    for value in state.values():
        value += 1  # mutating the loaded dict afterwards must not reach the module either
    for key, value in module.state_dict().items():
        np.testing.assert_array_equal(value, np.asarray(state[key]) - 1, err_msg=key)


@given(data=st.data(), source_dtype=rst.float_dtypes, target_dtype=rst.float_dtypes)
def test_load_state_dict_keeps_the_modules_dtype(data, source_dtype, target_dtype):
    cfg = data.draw(rst.batch_norm2d_configs() | rst.conv2d_configs(), label="config")
    target = numpy_layer(cfg, target_dtype)
    target.load_state_dict(numpy_layer(cfg, source_dtype, seed=1).state_dict())
    for key, value in target.state_dict().items():
        assert value.dtype == (np.int64 if key.endswith("num_batches_tracked") else target_dtype), key


def _check_failed_load(module, kind, key, bad):
    before = snapshot(module)
    with pytest.raises(StateDictError) as excinfo:
        module.load_state_dict(bad)
    message = str(excinfo.value)
    assert type(module).__name__ in message and key in message, message
    if kind == "wrong_shape":
        assert str(bad[key].shape) in message and str(module.state_dict()[key].shape) in message, message
    if kind == "non_numeric":
        assert str(bad[key].dtype) in message, message
    assert_same_arrays(before, snapshot(module))
    assert isinstance(excinfo.value, ValueError)


@pytest.mark.parametrize("name", db.LAYERS)
@given(data=st.data())
def test_bad_state_dict_raises_naming_module_key_and_shapes_and_leaves_module_unchanged(name, data):
    cfg = data.draw(db.layer_configs(name), label="config")
    module = numpy_layer(cfg, np.float32)
    state = numpy_layer(cfg, np.float32, seed=1).state_dict()
    kind, key, bad = data.draw(rst.corrupted_state_dicts(state), label="bad")
    _check_failed_load(module, kind, key, bad)


@pytest.mark.parametrize("name", ["tiny_resnet", "simple_cnn"])
@given(data=st.data())
def test_bad_state_dict_leaves_a_zoo_model_unchanged(name, data):
    model = zoo.build(name, "numpy", seed=0)
    kind, key, bad = data.draw(rst.corrupted_state_dicts(zoo.build(name, "numpy", seed=1).state_dict()), label="bad")
    _check_failed_load(model, kind, key, bad)


@given(data=st.data())
def test_non_strict_load_skips_missing_and_unexpected_keys_but_not_wrong_shapes(data):
    cfg = data.draw(rst.batch_norm2d_configs(), label="config")
    module, source = numpy_layer(cfg, np.float64), numpy_layer(cfg, np.float64, seed=1)
    source.weight.data[:] = 2.0
    state = source.state_dict()
    del state["running_mean"]
    state["extra"] = np.zeros(1)
    module.load_state_dict(state, strict=False)
    np.testing.assert_array_equal(module.weight.data, 2.0)
    np.testing.assert_array_equal(module.running_mean, 0.0)
    state["bias"] = np.zeros(cfg.input_shape[1] + 1)
    with pytest.raises(StateDictError, match="bias"):
        module.load_state_dict(state, strict=False)


def test_batch_norm_step_counter_stays_a_zero_dim_int64_array():
    bn = nn.BatchNorm2d(2, dtype=np.float64)
    for _ in range(2):
        bn(np.random.default_rng(0).standard_normal((2, 2, 3, 3)))
    counter = dict(bn.named_buffers())["num_batches_tracked"]
    assert isinstance(counter, np.ndarray) and counter.shape == () and counter.dtype == np.int64 and counter == 2
