"""Output shapes of every layer against torch's formula, gradient shapes, and invalid configurations."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from reference import numpy_nn as nn
from reference.numpy_nn import functional as F
from reference.testing import strategies as rst
from reference.testing.conformance import database as db
from reference.testing.conformance.namespace import numpy_layer


@pytest.mark.parametrize("name", db.LAYERS)
@given(data=st.data(), dtype=rst.float_dtypes, training=st.booleans(), seed=rst.seeds)
def test_layer_output_shape_matches_formula(name, data, dtype, training, seed):
    cfg = data.draw(db.layer_configs(name), label="config")
    module = numpy_layer(cfg, dtype, seed).train(training)
    x = np.random.default_rng(seed).standard_normal(cfg.input_shape).astype(dtype)
    assert module(x).shape == cfg.output_shape


@pytest.mark.parametrize("name", db.LAYERS)
@given(data=st.data(), seed=rst.seeds)
def test_backward_returns_gradients_shaped_like_input_and_parameters(name, data, seed):
    cfg = data.draw(db.layer_configs(name), label="config")
    module = numpy_layer(cfg, np.float64, seed)
    rng = np.random.default_rng(seed)
    out = module(rng.standard_normal(cfg.input_shape))
    grad_x = module.backward(rng.standard_normal(out.shape))
    assert grad_x.shape == cfg.input_shape
    for param_name, param in module.named_parameters():
        assert param.grad is not None, f"{name}.{param_name} received no gradient"
        assert param.grad.shape == param.data.shape, param_name


@given(cfg=rst.conv2d_configs())
def test_conv2d_output_size_function_matches_formula(cfg):
    h, w = cfg.input_shape[2:]
    k = cfg.kwargs
    assert F.conv2d_output_size(h, w, k["kernel_size"], k["stride"], k["padding"]) == cfg.output_shape[2:]


@given(cfg=rst.pool2d_configs())
def test_pool_output_size_function_matches_formula(cfg):
    h, w = cfg.input_shape[2:]
    k = cfg.kwargs
    stride = k["kernel_size"] if k["stride"] is None else k["stride"]
    assert F.pool_output_size(h, w, k["kernel_size"], stride, k["padding"]) == cfg.output_shape[2:]


@given(cfg=rst.conv2d_configs())
def test_im2col_has_one_patch_row_per_output_pixel(cfg):
    k = cfg.kwargs
    x = np.zeros(cfg.input_shape)
    cols = F.im2col(x, k["kernel_size"], k["stride"], k["padding"])
    n, c = cfg.input_shape[:2]
    assert cols.shape == (n, *cfg.output_shape[2:], c, *rst.pair(k["kernel_size"]))


@given(case=db.invalid_constructions())
def test_invalid_constructor_arguments_raise_value_error_naming_layer_and_argument(case):
    with pytest.raises(ValueError) as excinfo:
        getattr(nn, case.layer)(**case.kwargs)
    message = str(excinfo.value)
    argument = case.reason.split()[0]
    bad_value = case.kwargs[argument]
    assert case.layer in message and argument in message, message
    assert str(bad_value) in message, f"the offending value {bad_value!r} is not in: {message}"


@pytest.mark.parametrize("name", db.WINDOW_LAYERS)
@given(data=st.data())
def test_input_smaller_than_kernel_raises_value_error_naming_layer_kernel_and_shape(name, data):
    cfg = data.draw(rst.too_small_configs(name), label="config")
    module = numpy_layer(cfg, np.float32)
    with pytest.raises(ValueError) as excinfo:
        module(np.zeros(cfg.input_shape, dtype=np.float32))
    message = str(excinfo.value)
    assert name in message and str(cfg.input_shape) in message, message
    assert str(rst.pair(cfg.kwargs["kernel_size"])) in message, message


def test_basic_block_without_downsample_rejects_a_shape_change():
    block = nn.BasicBlock(2, 3)
    with pytest.raises(ValueError, match="BasicBlock.*downsample"):
        block(np.zeros((2, 2, 4, 4), dtype=np.float32))


def adaptive_window_bounds(size: int, out: int) -> list[tuple[int, int]]:
    """torch's adaptive windows along one axis (our own copy): [floor(i size / out), ceil((i + 1) size / out))."""
    return [((i * size) // out, -(-((i + 1) * size) // out)) for i in range(out)]


@pytest.mark.parametrize("layer, reduce", [("AdaptiveAvgPool2d", np.mean), ("AdaptiveMaxPool2d", np.max)])
@given(h=st.integers(1, 9), w=st.integers(1, 9), out=st.tuples(st.integers(1, 6) | st.none(), st.integers(1, 6)),
       seed=rst.seeds)
def test_adaptive_pools_reduce_torchs_windows_for_any_output_size(layer, reduce, h, w, out, seed):
    """Sizes that do not divide, outputs larger than the input and None (keep that size) all pool torch's windows."""
    x = np.random.default_rng(seed).standard_normal((2, 3, h, w))
    got = getattr(nn, layer)(out)(x)
    ho, wo = h if out[0] is None else out[0], out[1]
    assert got.shape == (2, 3, ho, wo)
    for i, (top, bottom) in enumerate(adaptive_window_bounds(h, ho)):
        for j, (left, right) in enumerate(adaptive_window_bounds(w, wo)):
            np.testing.assert_allclose(got[:, :, i, j], reduce(x[:, :, top:bottom, left:right], axis=(2, 3)),
                                       rtol=1e-12, atol=1e-12)
