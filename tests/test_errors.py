"""Bad input gets a clear error naming the layer, what it expected and what it got; NaN/inf propagate as in torch.

Shapes are ValueErrors, dtypes and non-arrays TypeErrors, a backward with no forward a RuntimeError. Never an
AssertionError, an IndexError or NumPy's own broadcasting message. (Bad state_dicts: test_state_dict.py.)
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from reference import numpy_nn as nn
from reference.testing import strategies as rst
from reference.testing.conformance import database as db
from reference.testing.conformance.namespace import numpy_layer

# Blocks validate their input through their first convolution, whose message names it.
NAMED_AS = {"ResidualBlock": "Conv2d", "BasicBlock": "Conv2d"}
# Linear takes (*, in_features): the expected shape it names for a wrong feature count.
EXPECTED_SHAPE = {"Linear": "(*, {channels}"}
NUMPY_INTERNALS = ("could not be broadcast", "operands could not", "cannot reshape", "out of bounds", "axis ")


def assert_clear(excinfo, cfg_or_layer, *fragments) -> None:
    """The message names the layer (or the sublayer that checks for it) and every fragment; no NumPy internals."""
    layer = getattr(cfg_or_layer, "layer", cfg_or_layer)
    message = str(excinfo.value)
    assert layer in message or NAMED_AS.get(layer, layer) in message, f"layer {layer} not named in: {message}"
    for fragment in fragments:
        assert str(fragment) in message, f"{fragment!r} not in: {message}"
    assert not any(internal in message for internal in NUMPY_INTERNALS), message


def built(data, name, dtype=np.float32):
    cfg = data.draw(db.layer_configs(name), label="config")
    return cfg, numpy_layer(cfg, dtype, seed=0)


@pytest.mark.parametrize("name", [name for name in db.LAYERS if set(range(7)) - set(db.NDIM[name])])
@given(data=st.data())
def test_input_of_wrong_rank_raises_value_error_naming_layer_and_shape(name, data):
    cfg, module = built(data, name)
    shape = data.draw(db.wrong_ndim_shapes(cfg), label="shape")
    with pytest.raises(ValueError) as excinfo:
        module(np.zeros(shape, dtype=np.float32))
    assert_clear(excinfo, cfg, "expected", shape)


@pytest.mark.parametrize("layer", ["ReLU", "ReLU6", "Hardtanh", "Dropout"])
@given(shape=rst.hnp.array_shapes(min_dims=0, max_dims=6, min_side=1, max_side=2), training=st.booleans())
def test_elementwise_layers_take_every_rank_a_0d_array_included(layer, shape, training):
    """torch's elementwise layers have no rank to get wrong: ours accept 0-d to 6-d alike (no error)."""
    module = getattr(nn, layer)().train(training)
    x = np.ones(shape, dtype=np.float32)
    out = module(x)
    assert out.shape == shape and module.backward(np.ones(shape, dtype=np.float32)).shape == shape


@pytest.mark.parametrize("name", db.CHANNEL_LAYERS)
@given(data=st.data())
def test_input_with_wrong_channel_count_raises_value_error_naming_expected_and_given_shape(name, data):
    cfg, module = built(data, name)
    shape = data.draw(rst.channel_mismatch_shapes(cfg), label="shape")
    with pytest.raises(ValueError) as excinfo:
        module(np.zeros(shape, dtype=np.float32))
    expected = EXPECTED_SHAPE.get(name, "(N, {channels}").format(channels=db.insisted_channels(cfg))
    assert_clear(excinfo, cfg, expected, shape)


@pytest.mark.parametrize("name", db.LAYERS)
@given(data=st.data(), dtype=rst.integer_dtypes)
def test_integer_input_raises_type_error_naming_the_dtype(name, data, dtype):
    cfg, module = built(data, name)
    with pytest.raises(TypeError) as excinfo:
        module(np.zeros(cfg.input_shape, dtype=dtype))
    assert_clear(excinfo, cfg, "float32 or float64", dtype)


@pytest.mark.parametrize("name", db.PARAMETRIC_LAYERS)
@given(data=st.data(), module_dtype=rst.float_dtypes)
def test_input_dtype_other_than_the_parameters_raises_type_error_naming_both(name, data, module_dtype):
    cfg, module = built(data, name, module_dtype)
    other = np.float64 if module_dtype == np.float32 else np.float32
    with pytest.raises(TypeError) as excinfo:
        module(np.zeros(cfg.input_shape, dtype=other))
    assert_clear(excinfo, cfg, np.dtype(other), module_dtype)


@pytest.mark.parametrize("name", db.LAYERS)
@given(data=st.data())
def test_empty_batch_raises_value_error_naming_the_shape(name, data):
    cfg, module = built(data, name)
    shape = (0,) + cfg.input_shape[1:]
    with pytest.raises(ValueError) as excinfo:
        module(np.zeros(shape, dtype=np.float32))
    assert_clear(excinfo, cfg, shape)


@pytest.mark.parametrize("name", db.LAYERS)
@given(data=st.data(), kind=st.sampled_from(["list", "tensor", "float"]))
def test_non_ndarray_input_raises_type_error_naming_what_was_given(name, data, kind):
    cfg, module = built(data, name)
    if kind == "tensor":
        import torch

        value, type_name = torch.zeros(cfg.input_shape), "Tensor"
    else:
        value, type_name = (np.zeros(cfg.input_shape).tolist(), "list") if kind == "list" else (1.5, "float")
    with pytest.raises(TypeError) as excinfo:
        module(value)
    assert_clear(excinfo, cfg, "numpy.ndarray", type_name)


@pytest.mark.parametrize("name", db.LAYERS)
@given(data=st.data())
def test_backward_before_forward_raises_runtime_error_naming_the_layer(name, data):
    cfg, module = built(data, name)
    with pytest.raises(RuntimeError) as excinfo:
        module.backward(np.zeros(cfg.output_shape, dtype=np.float32))
    assert_clear(excinfo, cfg.layer, "before forward")


@pytest.mark.parametrize("name", db.LAYERS)
@given(data=st.data())
def test_grad_out_of_wrong_shape_raises_value_error_naming_expected_and_given_shape(name, data):
    cfg, module = built(data, name)
    module(np.ones(cfg.input_shape, dtype=np.float32))
    wrong = data.draw(st.sampled_from([
        cfg.output_shape + (1,), cfg.output_shape[:-1], (cfg.output_shape[0] + 1,) + cfg.output_shape[1:],
        (1,) + cfg.output_shape[1:], cfg.output_shape[:-1] + (cfg.output_shape[-1] + 2,),
    ]).filter(lambda s: s != cfg.output_shape), label="grad_out shape")
    with pytest.raises(ValueError) as excinfo:
        module.backward(np.zeros(wrong, dtype=np.float32))
    assert_clear(excinfo, cfg.layer, cfg.output_shape, wrong)


@pytest.mark.parametrize("name", db.LAYERS)
@given(data=st.data(), kind=st.sampled_from(["float64", "int64", "list"]))
def test_grad_out_of_wrong_dtype_or_type_raises_type_error(name, data, kind):
    cfg, module = built(data, name)
    module(np.ones(cfg.input_shape, dtype=np.float32))
    grad_out = np.zeros(cfg.output_shape, dtype=kind) if kind != "list" else np.zeros(cfg.output_shape).tolist()
    with pytest.raises(TypeError) as excinfo:
        module.backward(grad_out)
    assert_clear(excinfo, cfg.layer)


# -- losses ------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("logits, targets, fragment", [
    (np.zeros((2, 3, 1), np.float32), np.zeros(2, np.int64), "(2, 3, 1)"),
    (np.zeros((0, 3), np.float32), np.zeros(0, np.int64), "(0, 3)"),
    (np.zeros((2, 3), np.float32), np.zeros(3, np.int64), "(3,)"),
    (np.zeros((2, 3), np.float32), np.zeros(2, np.float32), "float32"),
    (np.zeros((2, 3), np.float32), np.array([0, 3]), "[0, 3]"),
    (np.zeros((2, 3), np.float32), np.array([-1, 0]), "[-1, 0]"),
], ids=["rank", "empty", "target-shape", "float-targets", "target-too-big", "target-negative"])
def test_cross_entropy_rejects_bad_logits_or_targets_with_value_error(logits, targets, fragment):
    with pytest.raises(ValueError) as excinfo:
        nn.CrossEntropyLoss()(logits, targets)
    assert_clear(excinfo, "CrossEntropyLoss", fragment)


@pytest.mark.parametrize("logits", [np.zeros((2, 3), np.int64), [[0.0, 1.0]]], ids=["int", "list"])
def test_cross_entropy_rejects_non_float_logits_with_type_error(logits):
    with pytest.raises(TypeError) as excinfo:
        nn.CrossEntropyLoss()(logits, np.zeros(len(logits), np.int64))
    assert_clear(excinfo, "CrossEntropyLoss")


def test_cross_entropy_backward_before_forward_raises_runtime_error():
    with pytest.raises(RuntimeError, match="CrossEntropyLoss.backward called before forward"):
        nn.CrossEntropyLoss().backward()


# -- NaN and inf -------------------------------------------------------------------------------------------

NON_FINITE_LAYERS = [name for name in db.LAYERS if name not in ("ResidualBlock", "BasicBlock")]


def _windows_covering(index, size, kernel, stride, padding):
    """Output positions along one axis whose window covers input position `index`."""
    out = rst.window_output_size(size, kernel, stride, padding)
    return [i for i in range(out) if i * stride - padding <= index < i * stride - padding + kernel]


def affected_outputs(cfg, pos, training) -> np.ndarray:
    """Oracle: the outputs that depend on input element `pos` (boolean, output-shaped)."""
    mask = np.zeros(cfg.output_shape, dtype=bool)
    elementwise_layers = ("ReLU", "ReLU6", "Hardtanh", "Dropout", "Dropout2d", "Flatten")
    if cfg.layer in elementwise_layers or (cfg.layer == "BatchNorm2d" and not training):
        elementwise = np.zeros(cfg.input_shape, dtype=bool)
        elementwise[pos] = True
        return elementwise.reshape(cfg.output_shape)
    if cfg.layer == "Linear":
        mask[pos[0]] = True
    elif cfg.layer == "BatchNorm2d":  # training: the batch statistics of the channel
        mask[:, pos[1]] = True
    elif cfg.layer in ("AdaptiveAvgPool2d", "AdaptiveMaxPool2d"):  # torch's windows [floor(iH/Ho), ceil((i+1)H/Ho))
        rows, cols = ([i for i in range(out) if i * size // out <= p < -(-(i + 1) * size // out)]
                      for p, size, out in zip(pos[2:], cfg.input_shape[2:], cfg.output_shape[2:], strict=True))
        mask[pos[0], pos[1], np.ix_(rows, cols)[0], np.ix_(rows, cols)[1]] = True
    else:  # Conv2d (every output channel) and the pools (the same channel)
        k = cfg.kwargs
        kernel, padding = rst.pair(k["kernel_size"]), rst.pair(k["padding"])
        stride = kernel if k.get("stride") is None else rst.pair(k["stride"])
        rows = _windows_covering(pos[2], cfg.input_shape[2], kernel[0], stride[0], padding[0])
        cols = _windows_covering(pos[3], cfg.input_shape[3], kernel[1], stride[1], padding[1])
        channels = slice(None) if cfg.layer == "Conv2d" else pos[1]
        mask[pos[0], channels, np.ix_(rows, cols)[0], np.ix_(rows, cols)[1]] = True
    return mask


@pytest.mark.parametrize("value", [np.nan, np.inf], ids=["nan", "inf"])
@pytest.mark.parametrize("name", NON_FINITE_LAYERS)
@given(data=st.data(), training=st.booleans(), dtype=rst.float_dtypes, seed=rst.seeds)
def test_non_finite_input_makes_exactly_the_outputs_that_depend_on_it_non_finite(
        name, value, data, training, dtype, seed):
    cfg = data.draw(db.layer_configs(name), label="config")
    module = numpy_layer(cfg, dtype, seed).train(training)
    x = np.random.default_rng(seed).uniform(0.5, 1.5, cfg.input_shape).astype(dtype)  # positive: ReLU passes
    pos = data.draw(st.tuples(*(st.integers(0, size - 1) for size in cfg.input_shape)), label="position")
    x[pos] = value
    with np.errstate(invalid="ignore", over="ignore"):  # inf - inf = NaN is the point here
        out = module(x)
    expected = affected_outputs(cfg, pos, training)
    if name in ("ReLU6", "Hardtanh") and np.isinf(value):
        expected[...] = False  # +inf is clipped to max_val, as torch does; NaN stays NaN
    bad = np.isnan(out) if np.isnan(value) else ~np.isfinite(out)
    np.testing.assert_array_equal(bad, expected)
    assert np.isfinite(out[~expected]).all()


@given(data=st.data(), cfg=rst.pool2d_configs("MaxPool2d"), seed=rst.seeds)
def test_max_pool_picks_nan_and_sends_its_windows_gradient_there(data, cfg, seed):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(cfg.input_shape)
    pos = data.draw(st.tuples(*(st.integers(0, size - 1) for size in cfg.input_shape)), label="position")
    x[pos] = np.nan
    module = numpy_layer(cfg, np.float64)
    out = module(x)
    covering = affected_outputs(cfg, pos, True)
    assert np.isnan(out[covering]).all() and np.isfinite(out[~covering]).all()
    grad_out = rng.uniform(1, 2, cfg.output_shape)
    assert module.backward(grad_out)[pos] == pytest.approx(grad_out[covering].sum(), rel=1e-12)


@given(data=st.data(), cfg=rst.pool2d_configs("MaxPool2d"))
def test_max_pool_never_picks_minus_inf_when_the_window_has_a_finite_value(data, cfg):
    x = data.draw(rst.hnp.arrays(np.float64, cfg.input_shape, elements=st.sampled_from([-np.inf, 0.0, 1.0])))
    module = numpy_layer(cfg, np.float64)
    out = module(x)
    all_minus_inf = np.zeros(cfg.output_shape, dtype=bool)
    for pos in zip(*np.nonzero(x > -np.inf), strict=True):
        all_minus_inf |= affected_outputs(cfg, pos, True)
    np.testing.assert_array_equal(out == -np.inf, ~all_minus_inf)
    grad = module.backward(np.ones(cfg.output_shape))
    assert grad.sum() == out.size  # every window hands its gradient to some input element, never to padding


@pytest.mark.parametrize("value, at_target, smoothing, expected", [
    (np.nan, False, 0.0, "nan"), (np.inf, False, 0.0, "nan"), (np.inf, True, 0.1, "nan"),
    (-np.inf, True, 0.0, "inf"), (-np.inf, False, 0.1, "inf"), (-np.inf, False, 0.0, "finite"),
])
def test_cross_entropy_of_non_finite_logits_behaves_as_torch(value, at_target, smoothing, expected):
    """NaN or +inf give NaN; -inf at the target gives inf; -inf elsewhere masks that class (finite loss)
    unless label smoothing gives the class weight, then inf."""
    logits = np.array([[0.5, -0.25, 1.0], [0.0, 2.0, -1.0]])
    targets = np.array([1, 0])
    logits[0, 1 if at_target else 2] = value
    with np.errstate(invalid="ignore"):
        loss = nn.CrossEntropyLoss(label_smoothing=smoothing)(logits, targets)
    if expected == "finite":
        masked = nn.CrossEntropyLoss()(np.array([[0.5, -0.25]]), np.array([1]))
        assert loss == pytest.approx((masked + nn.CrossEntropyLoss()(logits[1:], targets[1:])) / 2)
    else:
        assert np.isnan(loss) if expected == "nan" else loss == np.inf
