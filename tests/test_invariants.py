"""Invariants of the layers: linearity, equivariance, conservation, normalization, and exact adjoint identities.

Adjoint identities use small-integer float64 arrays, so both sides are computed exactly and compared with ==
(no finite differences, no tolerance) wherever no division is involved.
"""

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


def window_args(cfg):
    """(kernel, stride, padding) pairs of a conv or pool config (a pool's stride None means the kernel)."""
    k = cfg.kwargs
    kernel = rst.pair(k["kernel_size"])
    stride = kernel if k.get("stride") is None else rst.pair(k["stride"])
    return kernel, stride, rst.pair(k["padding"])


def conv_weight_shape(cfg):
    return (cfg.kwargs["out_channels"], cfg.kwargs["in_channels"], *rst.pair(cfg.kwargs["kernel_size"]))


# -- convolution -------------------------------------------------------------------------------------------

@given(data=st.data(), cfg=rst.conv2d_configs(), a=st.integers(-3, 3), b=st.integers(-3, 3))
def test_conv2d_is_linear_in_its_input(data, cfg, a, b):
    kernel, stride, padding = window_args(cfg)
    x1, x2 = (data.draw(rst.integer_valued_arrays(cfg.input_shape)) for _ in range(2))
    weight = data.draw(rst.integer_valued_arrays(conv_weight_shape(cfg)))
    conv = lambda x: F.conv2d_forward(x, weight, None, stride, padding)[0]  # noqa: E731
    np.testing.assert_array_equal(conv(a * x1 + b * x2), a * conv(x1) + b * conv(x2))


@given(data=st.data(), cfg=rst.conv2d_configs(), a=st.integers(-3, 3), b=st.integers(-3, 3))
def test_conv2d_is_linear_in_its_weights_and_adds_the_bias(data, cfg, a, b):
    kernel, stride, padding = window_args(cfg)
    x = data.draw(rst.integer_valued_arrays(cfg.input_shape))
    w1, w2 = (data.draw(rst.integer_valued_arrays(conv_weight_shape(cfg))) for _ in range(2))
    bias = data.draw(rst.integer_valued_arrays((cfg.kwargs["out_channels"],)))
    conv = lambda w, bias=None: F.conv2d_forward(x, w, bias, stride, padding)[0]  # noqa: E731
    np.testing.assert_array_equal(conv(a * w1 + b * w2), a * conv(w1) + b * conv(w2))
    np.testing.assert_array_equal(conv(w1, bias), conv(w1) + bias.reshape(1, -1, 1, 1))


def _shift(x, dy, dx):
    return np.roll(x, (dy, dx), axis=(2, 3))


@pytest.mark.parametrize("layer", db.WINDOW_LAYERS)
@given(data=st.data(), seed=rst.seeds)
def test_window_layers_are_translation_equivariant_away_from_borders(layer, data, seed):
    """Shifting the input by (s*dy, s*dx) shifts the output by (dy, dx) wherever no window wrapped around."""
    strategy = rst.conv2d_configs(max_padding=0) if layer == "Conv2d" else rst.pool2d_configs(layer, max_padding=0)
    cfg = data.draw(strategy, label="config")
    module = numpy_layer(cfg, np.float64, seed)
    (sh, sw), (ho, wo) = window_args(cfg)[1], cfg.output_shape[2:]
    dy, dx = data.draw(st.integers(0, ho - 1), label="dy"), data.draw(st.integers(0, wo - 1), label="dx")
    x = data.draw(rst.integer_valued_arrays(cfg.input_shape), label="x")
    out, out_shifted = module(x), module(_shift(x, sh * dy, sw * dx))
    np.testing.assert_allclose(out_shifted[:, :, dy:, dx:], out[:, :, : ho - dy, : wo - dx], rtol=1e-12, atol=1e-12)


# -- exact adjoint identities ------------------------------------------------------------------------------

@given(data=st.data(), cfg=rst.conv2d_configs())
def test_col2im_is_the_exact_adjoint_of_im2col(data, cfg):
    kernel, stride, padding = window_args(cfg)
    x = data.draw(rst.integer_valued_arrays(cfg.input_shape), label="x")
    cols_shape = F.im2col(np.zeros(cfg.input_shape), kernel, stride, padding).shape
    y = data.draw(rst.integer_valued_arrays(cols_shape), label="y")
    lhs = np.vdot(F.im2col(x, kernel, stride, padding), y)
    rhs = np.vdot(x, F.col2im(y, cfg.input_shape, kernel, stride, padding))
    assert lhs == rhs


@given(data=st.data(), cfg=rst.conv2d_configs())
def test_conv2d_backward_is_the_exact_adjoint_of_the_forward_in_input_and_weights(data, cfg):
    kernel, stride, padding = window_args(cfg)
    x = data.draw(rst.integer_valued_arrays(cfg.input_shape), label="x")
    weight = data.draw(rst.integer_valued_arrays(conv_weight_shape(cfg)), label="weight")
    y = data.draw(rst.integer_valued_arrays(cfg.output_shape), label="y")
    out, cache = F.conv2d_forward(x, weight, None, stride, padding)
    grad_x, grad_weight, grad_bias = F.conv2d_backward(y, cache)
    assert np.vdot(out, y) == np.vdot(x, grad_x) == np.vdot(weight, grad_weight)
    assert grad_bias is None


@given(data=st.data(), cfg=rst.linear_configs())
def test_linear_backward_is_the_exact_adjoint_of_the_forward(data, cfg):
    f_in, f_out = cfg.kwargs["in_features"], cfg.kwargs["out_features"]
    x = data.draw(rst.integer_valued_arrays(cfg.input_shape))
    weight = data.draw(rst.integer_valued_arrays((f_out, f_in)))
    y = data.draw(rst.integer_valued_arrays(cfg.output_shape))
    out, cache = F.linear_forward(x, weight, None)
    grad_x, grad_weight, _ = F.linear_backward(y, cache)
    assert np.vdot(out, y) == np.vdot(x, grad_x) == np.vdot(weight, grad_weight)


@given(data=st.data(), cfg=rst.pool2d_configs("AvgPool2d"))
def test_avg_pool_backward_is_the_adjoint_of_the_forward(data, cfg):
    kernel, stride, padding = window_args(cfg)
    x = data.draw(rst.integer_valued_arrays(cfg.input_shape), label="x")
    y = data.draw(rst.integer_valued_arrays(cfg.output_shape), label="y")
    out, cache = F.avg_pool2d_forward(x, kernel, stride, padding)
    lhs, rhs = np.vdot(out, y), np.vdot(x, F.avg_pool2d_backward(y, cache))
    assert lhs == pytest.approx(rhs, rel=1e-13, abs=1e-12)  # only the division by kh*kw rounds


@given(data=st.data(), cfg=rst.adaptive_avg_pool2d_configs())
def test_adaptive_avg_pool_backward_is_the_adjoint_of_the_forward(data, cfg):
    x = data.draw(rst.integer_valued_arrays(cfg.input_shape), label="x")
    y = data.draw(rst.integer_valued_arrays(cfg.output_shape), label="y")
    out, cache = F.adaptive_avg_pool2d_forward(x, cfg.kwargs["output_size"])
    lhs, rhs = np.vdot(out, y), np.vdot(x, F.adaptive_avg_pool2d_backward(y, cache))
    assert lhs == pytest.approx(rhs, rel=1e-13, abs=1e-12)


def picked_indices(x, kernel, stride, padding):
    """Oracle: flat index into x of the element torch's max pool picks per window (first max, row-major)."""
    (n, c, h, w), (kh, kw), (sh, sw), (ph, pw) = x.shape, kernel, stride, padding
    ho, wo = rst.window_output_size(h, kh, sh, ph), rst.window_output_size(w, kw, sw, pw)
    picked = np.empty((n, c, ho, wo), dtype=np.int64)
    for a, b, i, j in np.ndindex(n, c, ho, wo):
        best = None
        for r in range(i * sh - ph, i * sh - ph + kh):
            for q in range(j * sw - pw, j * sw - pw + kw):
                if 0 <= r < h and 0 <= q < w and (best is None or x[a, b, r, q] > x[a, b, best[0], best[1]]):
                    best = (r, q)
        picked[a, b, i, j] = np.ravel_multi_index((a, b, *best), x.shape)
    return picked


@given(data=st.data(), cfg=rst.pool2d_configs("MaxPool2d"))
def test_max_pool_picks_the_first_maximum_and_its_backward_is_the_adjoint_of_that_gather(data, cfg):
    """out = x[picked] and <z[picked], y> == <z, max_pool2d_backward(y)> for any z (small ints: ties abound)."""
    kernel, stride, padding = window_args(cfg)
    x = data.draw(rst.integer_valued_arrays(cfg.input_shape, bound=2), label="x")
    z = data.draw(rst.integer_valued_arrays(cfg.input_shape), label="z")
    y = data.draw(rst.integer_valued_arrays(cfg.output_shape), label="y")
    picked = picked_indices(x, kernel, stride, padding)
    out, cache = F.max_pool2d_forward(x, kernel, stride, padding)
    np.testing.assert_array_equal(out, x.reshape(-1)[picked])
    grad_x = F.max_pool2d_backward(y, cache)
    assert np.vdot(z.reshape(-1)[picked], y) == np.vdot(z, grad_x)


# -- conservation and normalization ------------------------------------------------------------------------

@given(data=st.data(), cfg=rst.pool2d_configs("MaxPool2d"))
def test_max_pool_backward_conserves_gradient_mass_per_channel(data, cfg):
    x = data.draw(rst.finite_arrays(cfg.input_shape), label="x")
    grad_out = data.draw(rst.integer_valued_arrays(cfg.output_shape), label="grad_out")
    module = numpy_layer(cfg, np.float64)
    module(x)
    grad_x = module.backward(grad_out)
    np.testing.assert_array_equal(grad_x.sum(axis=(2, 3)), grad_out.sum(axis=(2, 3)))


@given(data=st.data(), cfg=rst.pool2d_configs("AvgPool2d", max_padding=0))
def test_avg_pool_without_padding_backward_conserves_gradient_mass_per_channel(data, cfg):
    module = numpy_layer(cfg, np.float64)
    module(np.zeros(cfg.input_shape))
    grad_out = data.draw(rst.integer_valued_arrays(cfg.output_shape), label="grad_out")
    np.testing.assert_allclose(module.backward(grad_out).sum(axis=(2, 3)), grad_out.sum(axis=(2, 3)), atol=1e-12)


@given(n=st.integers(1, 5), k=st.integers(1, 7), smoothing=st.floats(0.0, 1.0), dtype=rst.float_dtypes,
       scale=st.sampled_from([1.0, 30.0, 1e3]), seed=rst.seeds)
def test_cross_entropy_gradient_rows_sum_to_zero(n, k, smoothing, dtype, scale, seed):
    rng = np.random.default_rng(seed)
    logits = (scale * rng.standard_normal((n, k))).astype(dtype)
    loss = nn.CrossEntropyLoss(label_smoothing=smoothing)
    value = loss(logits, rng.integers(0, k, n))
    grad = loss.backward()
    assert np.isfinite(value) and value >= 0
    np.testing.assert_allclose(grad.sum(axis=1), 0.0, atol=10 * np.finfo(dtype).eps)


@given(data=st.data(), cfg=rst.batch_norm2d_configs(), dtype=rst.float_dtypes, seed=rst.seeds)
def test_batch_norm_training_output_has_per_channel_mean_beta_and_variance_gamma_squared(data, cfg, dtype, seed):
    """Per channel: mean = beta and variance = gamma^2 * var / (var + eps), var the biased batch variance."""
    rng = np.random.default_rng(seed)
    c = cfg.input_shape[1]
    offset, spread = rng.normal(0, 10, (1, c, 1, 1)), rng.uniform(0.1, 10, (1, c, 1, 1))
    x = (offset + spread * rng.standard_normal(cfg.input_shape)).astype(dtype)
    module = numpy_layer(cfg, dtype)
    gamma, beta = data.draw(st.sampled_from([(1.0, 0.0), (2.5, -1.0), (-0.5, 3.0)]), label="gamma, beta")
    module.weight.data[:], module.bias.data[:] = gamma, beta
    out = module(x).astype(np.float64)
    var = x.astype(np.float64).var(axis=(0, 2, 3))
    tol = 1e-10 if dtype == np.float64 else 1e-4
    np.testing.assert_allclose(out.mean(axis=(0, 2, 3)), beta, atol=tol * (1 + abs(gamma)))
    np.testing.assert_allclose(out.var(axis=(0, 2, 3)), gamma**2 * var / (var + cfg.kwargs["eps"]), rtol=tol * 10)


@given(cfg=rst.batch_norm2d_configs(), seed=rst.seeds)
def test_batch_norm_training_updates_running_stats_with_momentum_and_unbiased_variance(cfg, seed):
    x = np.random.default_rng(seed).standard_normal(cfg.input_shape)
    module = numpy_layer(cfg, np.float64)
    module(x)
    m = cfg.kwargs["momentum"]
    np.testing.assert_allclose(module.running_mean, m * x.mean(axis=(0, 2, 3)), atol=1e-12)
    np.testing.assert_allclose(module.running_var, (1 - m) + m * x.var(axis=(0, 2, 3), ddof=1), atol=1e-12)
    assert int(module.num_batches_tracked) == 1


@given(cfg=rst.batch_norm2d_configs(), seed=rst.seeds)
def test_batch_norm_eval_is_a_fixed_affine_map_that_leaves_running_stats_alone(cfg, seed):
    rng = np.random.default_rng(seed)
    module = numpy_layer(cfg, np.float64).eval()
    c = cfg.input_shape[1]
    module.running_mean, module.running_var = rng.standard_normal(c), rng.uniform(0.5, 2.0, c)
    before = module.state_dict()
    x = rng.standard_normal(cfg.input_shape)
    expected = (x - module.running_mean.reshape(1, -1, 1, 1)) / np.sqrt(module.running_var + cfg.kwargs["eps"]).reshape(
        1, -1, 1, 1)
    np.testing.assert_allclose(module(x), expected, rtol=1e-12, atol=1e-12)
    for key, value in module.state_dict().items():
        np.testing.assert_array_equal(value, before[key], err_msg=key)


# -- residual blocks ---------------------------------------------------------------------------------------

@given(cfg=rst.residual_block_configs(), seed=rst.seeds)
def test_residual_block_with_zeroed_residual_weights_is_relu_of_identity(cfg, seed):
    block = numpy_layer(cfg, np.float64, seed)
    block.conv2.weight.data[...] = 0.0
    block.conv2.bias.data[...] = 0.0
    rng = np.random.default_rng(seed)
    x, grad_out = rng.standard_normal(cfg.input_shape), rng.standard_normal(cfg.input_shape)
    np.testing.assert_array_equal(block(x), np.maximum(x, 0))
    np.testing.assert_array_equal(block.backward(grad_out), np.where(x > 0, grad_out, 0))
    assert not block.conv1.weight.grad.any(), "conv1 cannot matter when conv2 is zero"


@given(channels=st.integers(1, 3), side=st.integers(1, 4), training=st.booleans(), seed=rst.seeds)
def test_basic_block_with_zeroed_last_batch_norm_is_relu_of_identity(channels, side, training, seed):
    """torchvision's zero_init_residual: bn2.weight = 0 makes the block relu(x) in either mode."""
    cfg = rst.LayerConfig("BasicBlock", dict(inplanes=channels, planes=channels), (2, channels, side, side),
                          (2, channels, side, side))
    block = numpy_layer(cfg, np.float64, seed).train(training)
    block.bn2.weight.data[...] = 0.0
    x = np.random.default_rng(seed).standard_normal((2, channels, side, side))
    np.testing.assert_array_equal(block(x), np.maximum(x, 0))


# -- elementwise layers ------------------------------------------------------------------------------------

@given(data=st.data(), cfg=rst.dropout_configs() | rst.dropout2d_configs(), seed=rst.seeds)
def test_dropout_keeps_or_zeroes_scaled_by_inverse_keep_probability_and_backward_uses_the_same_mask(data, cfg, seed):
    module = numpy_layer(cfg, np.float64, seed)
    x = np.random.default_rng(seed).uniform(0.5, 1.5, cfg.input_shape)  # nonzero, so kept entries show
    out = module(x)
    p = cfg.kwargs["p"]
    kept = out != 0
    if p < 1:
        np.testing.assert_allclose(out[kept], x[kept] / (1 - p), rtol=1e-15)
    else:
        assert not kept.any()
    if cfg.layer == "Dropout2d":  # whole channels
        assert (kept == kept[:, :, :1, :1]).all()
    grad = module.backward(np.ones_like(x))
    np.testing.assert_array_equal(grad != 0, kept)
    np.testing.assert_array_equal(module.eval()(x), x)


@given(cfg=rst.relu_configs(), seed=rst.seeds)
def test_relu_is_idempotent_and_its_gradient_is_zero_at_zero(cfg, seed):
    x = np.random.default_rng(seed).integers(-2, 3, cfg.input_shape).astype(np.float64)
    relu = nn.ReLU()
    out = relu(x)
    np.testing.assert_array_equal(nn.ReLU()(out), out)
    np.testing.assert_array_equal(relu.backward(np.ones_like(x)), (x > 0).astype(np.float64))
