"""The torch.nn arguments beyond the plain ones (strategies.TORCH_ARGUMENT_CONFIGS): dilation, groups, depthwise,
'same'/'valid', padding modes, unbatched input, ceil_mode, count_include_pad, divisor_override, adaptive sizes
that do not divide or keep a size, BatchNorm's affine / track_running_stats / momentum=None, Linear on (*, F),
Hardtanh/ReLU6, Flatten's dims, CrossEntropyLoss's weight / ignore_index / reduction / probability targets.

Each is checked on its own terms (torch's output-size formula, finite differences, exact adjoint identities,
dtype) and against its torch.nn twin with the same state, forward and backward.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import assume, given
from hypothesis import strategies as st

from reference import numpy_nn as nn
from reference.numpy_nn import functional as F
from reference.numpy_nn.random import seeded
from reference.testing import strategies as rst
from reference.testing.gradcheck import assert_gradients_match, numerical_gradient, relative_error

NAMES = list(rst.TORCH_ARGUMENT_CONFIGS)
# relative, and absolute on the scale max(1, max|torch|)
TOLERANCE = {np.dtype(np.float64): 1e-10, np.dtype(np.float32): 1e-4}


def assert_close_to_torch(ours, theirs, dtype, what):
    theirs = theirs.detach().numpy() if isinstance(theirs, torch.Tensor) else np.asarray(theirs)
    tol = TOLERANCE[np.dtype(dtype)]
    scale = max(1.0, float(np.abs(theirs).max(initial=0.0)))
    np.testing.assert_allclose(ours, theirs, rtol=tol, atol=tol * scale, err_msg=what)


def randomize_batch_norm(module, rng) -> None:
    """Non-trivial affine parameters and running statistics where the module has them."""
    if isinstance(module, nn.BatchNorm2d):
        c = module.num_features
        if module.weight is not None:
            module.weight.data = rng.uniform(0.5, 1.5, c).astype(module.weight.dtype)
        if module.bias is not None:
            module.bias.data = rng.standard_normal(c).astype(module.bias.dtype)
        if module.running_mean is not None:
            module.running_mean = rng.standard_normal(c).astype(module.running_mean.dtype)
            module.running_var = rng.uniform(0.5, 2.0, c).astype(module.running_var.dtype)


def build(cfg, dtype=np.float64, seed=0):
    """The numpy_nn layer a LayerConfig names, initialised from `seed`, in `dtype`."""
    with seeded(seed):
        return getattr(nn, cfg.layer)(**cfg.kwargs).to(dtype)


def built(cfg, dtype, seed, training=True):
    module = build(cfg, dtype, seed).train(training)
    randomize_batch_norm(module, np.random.default_rng(seed))
    return module


@pytest.mark.parametrize("name", NAMES)
@given(data=st.data(), dtype=rst.float_dtypes, training=st.booleans(), seed=rst.seeds)
def test_output_shape_and_dtype_follow_torchs_formula(name, data, dtype, training, seed):
    cfg = data.draw(rst.torch_argument_configs(name), label="config")
    module = built(cfg, dtype, seed, training)
    rng = np.random.default_rng(seed)
    out = module(rng.standard_normal(cfg.input_shape).astype(dtype))
    assert out.shape == cfg.output_shape and out.dtype == dtype
    grad_x = module.backward(rng.standard_normal(out.shape).astype(dtype))
    assert grad_x.shape == cfg.input_shape and grad_x.dtype == dtype
    for param_name, param in module.named_parameters():
        assert param.grad.shape == param.data.shape and param.grad.dtype == dtype, param_name


@pytest.mark.parametrize("name", NAMES)
@given(data=st.data(), training=st.booleans(), seed=rst.seeds)
def test_gradients_match_finite_differences(name, data, training, seed):
    cfg = data.draw(rst.torch_argument_configs(name), label="config")
    module = built(cfg, np.float64, seed, training)
    x = np.random.default_rng(seed).standard_normal(cfg.input_shape)
    assert_gradients_match(module, x, tol=1e-6, seed=seed, context=f"of {cfg}")


def torch_twin(cfg, module):
    twin = getattr(torch.nn, cfg.layer)(**cfg.kwargs).double()
    twin.load_state_dict({key: torch.from_numpy(np.array(value)) for key, value in module.state_dict().items()})
    return twin.train(module.training)


@pytest.mark.parametrize("name", NAMES)
@given(data=st.data(), dtype=rst.float_dtypes, training=st.booleans(), seed=rst.seeds)
def test_forward_backward_and_buffers_match_the_torch_twin(name, data, dtype, training, seed):
    cfg = data.draw(rst.torch_argument_configs(name), label="config")
    module = built(cfg, dtype, seed, training)
    twin = torch_twin(cfg, module).to(getattr(torch, np.dtype(dtype).name))
    rng = np.random.default_rng(seed)
    x, grad = rng.standard_normal(cfg.input_shape).astype(dtype), rng.standard_normal(cfg.output_shape).astype(dtype)
    x_torch = torch.from_numpy(x.copy()).requires_grad_()
    expected = twin(x_torch)
    expected.backward(torch.from_numpy(grad))
    assert_close_to_torch(module(x), expected, dtype, f"forward of {cfg}")
    assert_close_to_torch(module.backward(grad), x_torch.grad, dtype, f"input gradient of {cfg}")
    twin_parameters = dict(twin.named_parameters())
    for param_name, param in module.named_parameters():
        assert_close_to_torch(param.grad, twin_parameters[param_name].grad, dtype, f"{param_name} gradient of {cfg}")
    assert list(module.state_dict()) == list(twin.state_dict())
    for key, value in twin.state_dict().items():
        assert_close_to_torch(module.state_dict()[key], value, dtype, f"{key} of {cfg}")


@pytest.mark.parametrize("layer", ["MaxPool2d", "AdaptiveMaxPool2d"])
@given(data=st.data(), seed=rst.seeds)
def test_return_indices_are_torchs_and_pick_the_output(layer, data, seed):
    cfg = data.draw(rst.torch_argument_configs(layer), label="config")
    kwargs = dict(cfg.kwargs, return_indices=True)
    x = np.random.default_rng(seed).standard_normal(cfg.input_shape)
    out, indices = getattr(nn, layer)(**kwargs)(x)
    expected_out, expected_indices = getattr(torch.nn, layer)(**kwargs)(torch.from_numpy(x))
    np.testing.assert_array_equal(indices, expected_indices.numpy())
    np.testing.assert_array_equal(out, expected_out.numpy())
    planes = x.reshape(*x.shape[:-2], -1)
    np.testing.assert_array_equal(np.take_along_axis(planes, indices.reshape(*indices.shape[:-2], -1), -1),
                                  out.reshape(*out.shape[:-2], -1))


# -- exact adjoint identities (small integers in float64: both sides computed exactly) ------------------------

def conv_arguments(cfg):
    k = cfg.kwargs
    return k["stride"], k["padding"], k["dilation"], k["groups"]


@given(data=st.data(), cfg=rst.conv2d_torch_configs())
def test_grouped_dilated_conv_backward_is_the_exact_adjoint_of_the_forward(data, cfg):
    if len(cfg.input_shape) == 3 or cfg.kwargs["padding_mode"] != "zeros":  # the functional takes batches, zeros
        cfg = rst.LayerConfig(cfg.layer, dict(cfg.kwargs, padding_mode="zeros"), cfg.input_shape, cfg.output_shape)
    x_shape = cfg.input_shape if len(cfg.input_shape) == 4 else (1, *cfg.input_shape)
    k = cfg.kwargs
    weight_shape = (k["out_channels"], k["in_channels"] // k["groups"], *rst.pair(k["kernel_size"]))
    x = data.draw(rst.integer_valued_arrays(x_shape), label="x")
    weight = data.draw(rst.integer_valued_arrays(weight_shape), label="weight")
    out, cache = F.conv2d_forward(x, weight, None, *conv_arguments(cfg))
    y = data.draw(rst.integer_valued_arrays(out.shape), label="y")
    grad_x, grad_weight, _ = F.conv2d_backward(y, cache)
    assert np.vdot(out, y) == np.vdot(x, grad_x) == np.vdot(weight, grad_weight)


@pytest.mark.parametrize(("x_shape", "out_channels", "stride"), [
    ((2, 512, 1, 1), 512, 1),  # ResNet-18's last stage on 8x8 digits: 8 of 9 taps read padding
    ((4, 256, 2, 2), 256, 1),
    ((8, 256, 2, 2), 512, 2),  # the stride-2 entry into the 1x1 stage
    ((8, 128, 4, 4), 128, 1),
])
def test_convolutions_mostly_over_padding_match_torch_and_are_adjoint(x_shape, out_channels, stride):
    """The kernel-offset path that skips padding (chosen by size) gives torch's output and gradients."""
    from reference.numpy_nn.functional import conv

    rng = np.random.default_rng(sum(x_shape) + out_channels)
    x, weight = rng.standard_normal(x_shape), rng.standard_normal((out_channels, x_shape[1], 3, 3))
    bias = rng.standard_normal(out_channels)
    assert conv._by_taps(x_shape, weight.shape, 1, (stride, stride), ((1, 1), (1, 1)), (1, 1))
    out, cache = F.conv2d_forward(x, weight, bias, stride, 1)
    y = rng.standard_normal(out.shape)
    grad_x, grad_weight, grad_bias = F.conv2d_backward(y, cache)
    x_torch, weight_torch, bias_torch = (torch.from_numpy(a).requires_grad_() for a in (x, weight, bias))
    expected = torch.nn.functional.conv2d(x_torch, weight_torch, bias_torch, stride, 1)
    expected.backward(torch.from_numpy(y))
    assert_close_to_torch(out, expected, np.float64, "forward")
    for ours, theirs, what in ((grad_x, x_torch.grad, "input"), (grad_weight, weight_torch.grad, "weight"),
                               (grad_bias, bias_torch.grad, "bias")):
        assert_close_to_torch(ours, theirs, np.float64, f"{what} gradient")
    integers = [np.round(4 * a) for a in (x, weight, y)]
    out, cache = F.conv2d_forward(integers[0], integers[1], None, stride, 1)
    grad_x, grad_weight, _ = F.conv2d_backward(integers[2], cache)
    assert np.vdot(out, integers[2]) == np.vdot(integers[0], grad_x) == np.vdot(integers[1], grad_weight)


@given(data=st.data(), mode=st.sampled_from(["reflect", "replicate", "circular"]), h=st.integers(1, 5),
       w=st.integers(1, 5))
def test_pad2d_backward_is_the_exact_adjoint_of_the_padding(data, mode, h, w):
    limit = (lambda size: size - 1) if mode == "reflect" else (lambda size: size if mode == "circular" else 4)
    padding = tuple(data.draw(st.integers(0, limit(size)), label="pad") for size in (w, w, h, h))
    x = data.draw(rst.integer_valued_arrays((2, 2, h, w)), label="x")
    out, cache = F.pad2d_forward(x, padding, mode)
    expected = torch.nn.functional.pad(torch.from_numpy(x), padding, mode=mode).numpy()
    np.testing.assert_array_equal(out, expected)
    y = data.draw(rst.integer_valued_arrays(out.shape), label="y")
    assert np.vdot(out, y) == np.vdot(x, F.pad2d_backward(y, cache))


@pytest.mark.parametrize("layer", ["AvgPool2d", "AdaptiveAvgPool2d"])
@given(data=st.data())
def test_average_pooling_backward_is_the_adjoint_of_the_forward(layer, data):
    cfg = data.draw(rst.torch_argument_configs(layer), label="config")
    module = build(cfg)
    x = data.draw(rst.integer_valued_arrays(cfg.input_shape), label="x")
    y = data.draw(rst.integer_valued_arrays(cfg.output_shape), label="y")
    lhs, rhs = np.vdot(module(x), y), np.vdot(x, module.backward(y))
    assert lhs == pytest.approx(rhs, rel=1e-13, abs=1e-12)  # only the divisions round


@given(data=st.data())
def test_adaptive_max_pool_backward_is_the_adjoint_of_its_gather(data):
    """out = x[indices] and <z[indices], y> == <z, backward(y)> for any z, windows overlapping or not."""
    cfg = data.draw(rst.adaptive_pool2d_torch_configs("AdaptiveMaxPool2d"), label="config")
    x = data.draw(rst.integer_valued_arrays(cfg.input_shape, bound=2), label="x")  # ties abound
    z = data.draw(rst.integer_valued_arrays(cfg.input_shape), label="z")
    y = data.draw(rst.integer_valued_arrays(cfg.output_shape), label="y")
    module = nn.AdaptiveMaxPool2d(cfg.kwargs["output_size"], return_indices=True)
    _, indices = module(x)
    gathered = np.take_along_axis(z.reshape(*z.shape[:-2], -1), indices.reshape(*indices.shape[:-2], -1), -1)
    assert np.vdot(gathered, y) == np.vdot(z, module.backward(y))


# -- cross-entropy over torch's arguments ---------------------------------------------------------------------

def cross_entropy_case(cfg, seed, dtype=np.float64):
    """(logits, targets, loss kwargs) of a cross_entropy_torch_configs case."""
    rng = np.random.default_rng(seed)
    c = cfg["classes"]
    shape = (c,) if cfg["batch"] is None else (cfg["batch"], c, *cfg["extra"])
    logits = (3 * rng.standard_normal(shape)).astype(dtype)
    index_shape = () if cfg["batch"] is None else (cfg["batch"], *cfg["extra"])
    kwargs = dict(reduction=cfg["reduction"], label_smoothing=cfg["label_smoothing"])
    if cfg["weighted"]:
        kwargs["weight"] = rng.uniform(0.2, 2.0, c).astype(dtype)
    if cfg["probabilities"]:
        targets = rng.dirichlet(np.ones(c), size=index_shape)
        return logits, np.moveaxis(targets, -1, 0 if cfg["batch"] is None else 1).astype(dtype), kwargs
    targets = rng.integers(0, c, index_shape)
    if cfg["ignore"]:
        kwargs["ignore_index"] = int(rng.integers(0, c))
    return logits, targets, kwargs


def torch_cross_entropy(logits, targets, kwargs):
    logits_torch = torch.from_numpy(logits.copy()).requires_grad_()
    torch_kwargs = {k: torch.from_numpy(v) if isinstance(v, np.ndarray) else v for k, v in kwargs.items()}
    return logits_torch, torch.nn.functional.cross_entropy(logits_torch, torch.from_numpy(targets), **torch_kwargs)


@given(cfg=rst.cross_entropy_torch_configs(), dtype=rst.float_dtypes, seed=rst.seeds)
def test_cross_entropy_matches_torch_over_every_argument(cfg, dtype, seed):
    logits, targets, kwargs = cross_entropy_case(cfg, seed, dtype)
    loss = nn.CrossEntropyLoss(**kwargs)
    value = loss(logits, targets)
    logits_torch, expected = torch_cross_entropy(logits, targets, kwargs)
    grad_loss = np.random.default_rng(seed).uniform(0.5, 2.0, expected.shape).astype(dtype)
    expected.backward(torch.from_numpy(grad_loss))
    assert value.dtype == dtype and value.shape == tuple(expected.shape)
    assert_close_to_torch(value, expected, dtype, "loss")
    assert_close_to_torch(loss.backward(grad_loss), logits_torch.grad, dtype, "logits gradient")


@given(cfg=rst.cross_entropy_torch_configs(), seed=rst.seeds)
def test_cross_entropy_gradient_matches_finite_differences_over_every_argument(cfg, seed):
    logits, targets, kwargs = cross_entropy_case(cfg, seed)
    loss = nn.CrossEntropyLoss(**kwargs)
    out = loss(logits, targets)
    assume(np.isfinite(out).all())  # every target ignored under 'mean': NaN, as torch, with nothing to differentiate
    weights = np.random.default_rng(seed).uniform(0.5, 2.0, out.shape)
    analytic = loss.backward(weights)
    numeric = numerical_gradient(lambda: np.sum(loss(logits, targets) * weights), logits, np.arange(logits.size))
    # Each loss term is rounded on the scale of its log-sum-exp (~ max|logit| + log C), not of its (possibly tiny)
    # value: that rounding over the step 1e-6 is the quotient's own noise.
    lse_scale = np.abs(logits).max() + np.log(cfg["classes"])
    allowance = 50 * np.finfo(np.float64).eps * lse_scale * np.abs(weights).sum() / 1e-6
    assert relative_error(analytic.reshape(-1), numeric, allowance) <= 1e-6


# -- clear errors -----------------------------------------------------------------------------------------------

@given(case=rst.invalid_torch_arguments())
def test_invalid_torch_arguments_raise_an_error_naming_the_layer_argument_and_value(case):
    with pytest.raises((ValueError, TypeError)) as excinfo:
        getattr(nn, case.layer)(**case.kwargs)
    message = str(excinfo.value)
    argument = case.reason.split()[0]
    assert case.layer in message and argument in message, message
    assert str(case.kwargs[argument]) in message, f"the offending value {case.kwargs[argument]!r} is not in: {message}"


@pytest.mark.parametrize("make, x, fragments", [
    (lambda: nn.Flatten(2, 1), np.zeros((2, 4, 8, 8)), ["Flatten", "start_dim 2", "end_dim 1", "(2, 4, 8, 8)"]),
    (lambda: nn.Flatten(1, 5), np.zeros((2, 3)), ["Flatten", "out of range", "(2, 3)"]),
    (lambda: nn.Conv2d(1, 1, 3, padding=3, padding_mode="reflect", dtype=np.float64), np.zeros((1, 1, 3, 3)),
     ["pad2d_forward", "reflect", "(3, 3)"]),
    (lambda: nn.MaxPool2d(3, dilation=2), np.zeros((1, 1, 4, 4)), ["MaxPool2d", "(1, 1, 4, 4)", "(3, 3)"]),
    (lambda: nn.BatchNorm2d(2, track_running_stats=False, dtype=np.float64).eval(), np.zeros((1, 2, 1, 1)),
     ["BatchNorm2d", "more than 1 value per channel", "(1, 2, 1, 1)"]),
], ids=["flatten-reversed-dims", "flatten-out-of-range", "reflect-pad-too-big", "dilated-pool-too-small",
        "batch-stats-of-one-value"])
def test_unsupported_inputs_raise_value_errors_naming_the_layer_and_shape(make, x, fragments):
    with pytest.raises(ValueError) as excinfo:
        make()(x)
    for fragment in fragments:
        assert fragment in str(excinfo.value), str(excinfo.value)


@pytest.mark.parametrize("call, fragments", [
    (lambda: F.conv2d_forward(np.ones((1, 1, 4, 4)), np.ones((1, 1, 2, 2)), None, stride=-1), ["stride", "-1"]),
    (lambda: F.conv2d_forward(np.ones((1, 2, 4, 4)), np.ones((1, 1, 2, 2)), None), ["groups", "2"]),
    (lambda: F.conv2d_forward(np.ones((1, 1, 4, 4)), np.ones((1, 1, 2, 2)), None, 2, "same"), ["same", "stride"]),
    (lambda: F.max_pool2d_forward(np.ones((1, 1, 4, 4)), 2, -2), ["stride", "-2"]),
    (lambda: F.avg_pool2d_forward(np.ones((1, 1, 4, 4)), 3, 1, 2), ["padding", "half"]),
    (lambda: F.adaptive_avg_pool2d_forward(np.ones((1, 1, 8, 8)), (5, 0)), ["output_size", "(5, 0)"]),
    (lambda: F.adaptive_max_pool2d_forward(np.ones((1, 8, 8)), 2), ["(N, C, H, W)", "(1, 8, 8)"]),
    (lambda: F.linear_forward(np.ones(3), np.ones((2, 4)), None), ["(*, 4)", "(3,)"]),
    (lambda: F.cross_entropy_forward(np.zeros((2, 3)), np.array([0, -1])), ["[0, 2]", "[-1, 0]"]),
    (lambda: F.cross_entropy_forward(np.zeros((2, 3)), np.array([0, 1]), reduction="avg"), ["reduction", "avg"]),
    (lambda: F.batch_norm2d_train_forward(np.ones((2, 3, 2)), np.ones(2), None, 1e-5), ["weight", "(3,)", "(2,)"]),
    (lambda: F.hardtanh_forward(np.ones(3), 1.0, 0.0), ["min_val", "max_val"]),
    (lambda: F.pad2d_forward(np.ones((1, 1, 2, 2)), (1, 1, 1), "reflect"), ["(left, right, top, bottom)"]),
], ids=["conv-negative-stride", "conv-groups", "conv-same-strided", "pool-negative-stride", "avg-pool-padding",
        "adaptive-zero-size", "adaptive-unbatched", "linear-features", "cross-entropy-target-minus-one",
        "cross-entropy-reduction", "batch-norm-weight", "hardtanh-bounds", "pad-sides"])
def test_functional_api_rejects_bad_arguments_with_a_clear_error(call, fragments):
    with pytest.raises((ValueError, TypeError)) as excinfo:
        call()
    for fragment in fragments:
        assert fragment in str(excinfo.value), str(excinfo.value)


@pytest.mark.parametrize("forward, backward, args", [
    (F.conv2d_forward, F.conv2d_backward, (np.ones((1, 1, 4, 4)), np.ones((1, 1, 2, 2)), None)),
    (F.linear_forward, F.linear_backward, (np.ones((2, 3)), np.ones((4, 3)), None)),
    (F.max_pool2d_forward, F.max_pool2d_backward, (np.ones((1, 1, 4, 4)), 2)),
    (F.avg_pool2d_forward, F.avg_pool2d_backward, (np.ones((1, 1, 4, 4)), 2)),
    (F.adaptive_avg_pool2d_forward, F.adaptive_avg_pool2d_backward, (np.ones((1, 1, 5, 5)), 2)),
    (F.adaptive_max_pool2d_forward, F.adaptive_max_pool2d_backward, (np.ones((1, 1, 5, 5)), 2)),
    (F.relu_forward, F.relu_backward, (np.ones((2, 3)),)),
    (F.batch_norm2d_train_forward, F.batch_norm2d_backward, (np.ones((2, 3, 2)), None, None, 1e-5)),
], ids=["conv", "linear", "max-pool", "avg-pool", "adaptive-avg", "adaptive-max", "relu", "batch-norm"])
def test_functional_backward_rejects_an_upstream_gradient_of_another_shape(forward, backward, args):
    out, cache = forward(*args)
    with pytest.raises(ValueError, match="grad_out of shape"):
        backward(np.ones(out.shape + (1,)), cache)


def test_linear_on_one_sample_without_batch_axis_matches_torch():
    """The weight gradient of a 1-D input is the outer product (not a scalar), as torch's."""
    rng = np.random.default_rng(0)
    x, weight, grad = rng.standard_normal(3), rng.standard_normal((4, 3)), rng.standard_normal(4)
    out, cache = F.linear_forward(x, weight, None)
    grad_x, grad_weight, _ = F.linear_backward(grad, cache)
    x_torch, weight_torch = torch.from_numpy(x).requires_grad_(), torch.from_numpy(weight).requires_grad_()
    torch.nn.functional.linear(x_torch, weight_torch).backward(torch.from_numpy(grad))
    np.testing.assert_allclose(grad_weight, weight_torch.grad.numpy(), rtol=1e-12)
    np.testing.assert_allclose(grad_x, x_torch.grad.numpy(), rtol=1e-12)


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("probabilities", [False, True], ids=["indices", "probabilities"])
def test_cross_entropy_with_negative_class_weights_matches_torch(reduction, probabilities):
    """torch accepts negative class weights (its own samples use them): loss and gradient follow the formula."""
    rng = np.random.default_rng(0)
    logits, weight = rng.standard_normal((3, 4)), np.array([-1.5, 0.7, -0.2, 2.0])
    targets = rng.dirichlet(np.ones(4), size=3) if probabilities else np.array([0, 2, 3])
    kwargs = dict(weight=weight, reduction=reduction)
    loss = nn.CrossEntropyLoss(**kwargs)
    value = loss(logits, targets)
    logits_torch, expected = torch_cross_entropy(logits, targets, kwargs)
    grad_loss = rng.uniform(0.5, 2.0, expected.shape)
    expected.backward(torch.from_numpy(grad_loss))
    assert_close_to_torch(value, expected, np.float64, "loss")
    assert_close_to_torch(loss.backward(grad_loss), logits_torch.grad, np.float64, "logits gradient")


@pytest.mark.parametrize("make, fragment", [
    (lambda: nn.Conv2d(1, 1, 1, device="cuda"), "device='cuda'"),
    (lambda: nn.Linear(1, 1, device="cuda:0"), "device='cuda:0'"),
    (lambda: nn.BatchNorm2d(1, device="mps"), "device='mps'"),
    (lambda: nn.Dropout(0.5, True), "inplace=True"),
    (lambda: nn.CrossEntropyLoss(size_average=True), "size_average=True"),
], ids=["conv-device", "linear-device", "batch-norm-device", "dropout-inplace", "cross-entropy-size-average"])
def test_torch_arguments_not_implemented_raise_not_implemented_error_naming_them(make, fragment):
    with pytest.raises(NotImplementedError, match=fragment):
        make()


def test_the_cpu_device_and_inplace_activations_are_accepted_as_torch():
    assert nn.Conv2d(1, 1, 1, device="cpu").weight.shape == (1, 1, 1, 1)
    x = np.array([-1.0, 0.5, 7.0])
    out = nn.ReLU6(inplace=True)(x)
    assert out is x and list(x) == [0.0, 0.5, 6.0]


@pytest.mark.parametrize(("x_shape", "weight_shape", "groups"), [
    ((2, 3, 9, 9), (4, 3, 3, 3), 1),  # patches and one GEMM
    ((2, 512, 1, 1), (512, 512, 3, 3), 1),  # kernel offsets over the pixels they read
    ((2, 6, 7, 7), (6, 1, 3, 3), 6),  # depthwise
])
def test_conv_backward_without_the_input_gradient_gives_the_same_parameter_gradients(x_shape, weight_shape, groups):
    rng = np.random.default_rng(sum(x_shape))
    x, weight, bias = (rng.standard_normal(shape) for shape in (x_shape, weight_shape, weight_shape[:1]))
    out, cache = F.conv2d_forward(x, weight, bias, 1, 1, 1, groups)
    y = rng.standard_normal(out.shape)
    grad_x, grad_weight, grad_bias = F.conv2d_backward(y, cache)
    skipped = F.conv2d_backward(y, cache, input_grad=False)
    assert grad_x.shape == x_shape and skipped[0] is None
    np.testing.assert_array_equal(skipped[1], grad_weight)
    np.testing.assert_array_equal(skipped[2], grad_bias)
