"""Hypothesis strategies: the single source of random layer configurations, valid and invalid.

A `LayerConfig` names a layer, its constructor arguments (torch's names, so `getattr(torch.nn, cfg.layer)(
**cfg.kwargs)` builds the twin for the torch.nn layers), an input shape it accepts and the output shape the
textbook formula gives, computed here independently of the package. Each layer's strategies are referenced
by its entry in the op database (`reference.testing.conformance.database`), which sits above this module and
derives the facts the property tests need (`layer_configs(name)`, `LAYERS`, `PARAMETRIC_LAYERS`, ...,
`invalid_constructions()`, `wrong_ndim_shapes(cfg)`). The invalid side here: each layer's `*_invalid()`,
`channel_mismatch_shapes(cfg)`, `too_small_configs(name)` and `corrupted_state_dicts(state)`. Sizes are kept
tiny so that finite differences stay fast.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import numpy as np
from hypothesis import assume
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

# -- basics ---------------------------------------------------------------------------------------------

float_dtypes = st.sampled_from([np.dtype(np.float32), np.dtype(np.float64)])
integer_dtypes = hnp.integer_dtypes() | hnp.unsigned_integer_dtypes() | st.just(np.dtype(np.bool_))
seeds = st.integers(0, 2**32 - 1)


def pair(value) -> tuple[int, int]:
    """(a, b) from an int or a pair: torch's kernel_size/stride/padding convention (the tests' own copy)."""
    return (int(value[0]), int(value[1])) if isinstance(value, (tuple, list)) else (int(value), int(value))


def window_output_size(size: int, kernel: int, stride: int, padding: int, dilation: int = 1,
                       ceil_mode: bool = False) -> int:
    """floor((size + 2 padding - dilation (kernel - 1) - 1) / stride) + 1: torch's formula for conv and pooling.

    ceil_mode (pooling) rounds up instead, but never starts the last window past the input and its left padding."""
    span = size + 2 * padding - dilation * (kernel - 1) - 1
    out = -(-span // stride) + 1 if ceil_mode else span // stride + 1
    return out - 1 if ceil_mode and (out - 1) * stride >= size + padding else out


def int_or_pair(low: int, high: int) -> st.SearchStrategy:
    """An int, or a tuple of two ints, in [low, high]: both spellings torch accepts."""
    return st.integers(low, high) | st.tuples(st.integers(low, high), st.integers(low, high))


def finite_arrays(shape, dtype=np.float64, bound: float = 4.0) -> st.SearchStrategy:
    """Arrays of `shape` with finite entries in [-bound, bound] (hypothesis likes 0, ties and extremes)."""
    return hnp.arrays(dtype, shape, elements=st.floats(-bound, bound, width=np.dtype(dtype).itemsize * 8))


def integer_valued_arrays(shape, bound: int = 8) -> st.SearchStrategy:
    """float64 arrays of small integers: sums and products of these are exact, so identities hold with ==."""
    return hnp.arrays(np.float64, shape, elements=st.integers(-bound, bound).map(float))


# -- valid layer configurations -------------------------------------------------------------------------

@dataclass(frozen=True)
class LayerConfig:
    """A layer (class name in reference.numpy_nn), its constructor kwargs, an input shape and the output shape."""

    layer: str
    kwargs: dict = field(hash=False)
    input_shape: tuple[int, ...]
    output_shape: tuple[int, ...]


def _spatial_size(draw, kernel: int, padding: int, extra: int) -> int:
    """An input size the padded window fits in: size + 2 padding >= kernel."""
    smallest = max(1, kernel - 2 * padding)
    return draw(st.integers(smallest, smallest + extra))


@st.composite
def conv2d_configs(draw, max_batch=3, max_channels=4, max_kernel=4, max_stride=3, max_padding=2, extra=5):
    """Conv2d with any kernel/stride/padding (padding may exceed the kernel, as torch allows) and bias or not."""
    n, c_in, c_out = (draw(st.integers(1, m)) for m in (max_batch, max_channels, max_channels))
    kernel_size, stride = draw(int_or_pair(1, max_kernel)), draw(int_or_pair(1, max_stride))
    padding = draw(int_or_pair(0, max_padding))
    (kh, kw), (sh, sw), (ph, pw) = pair(kernel_size), pair(stride), pair(padding)
    h, w = _spatial_size(draw, kh, ph, extra), _spatial_size(draw, kw, pw, extra)
    kwargs = dict(in_channels=c_in, out_channels=c_out, kernel_size=kernel_size, stride=stride,
                  padding=padding, bias=draw(st.booleans()))
    out = (n, c_out, window_output_size(h, kh, sh, ph), window_output_size(w, kw, sw, pw))
    return LayerConfig("Conv2d", kwargs, (n, c_in, h, w), out)


@st.composite
def pool2d_configs(draw, layer="MaxPool2d", max_batch=3, max_channels=3, max_kernel=4, max_stride=3, extra=5,
                   max_padding=None):
    """MaxPool2d / AvgPool2d: stride None (= kernel) or given, padding at most half the kernel (torch's rule)."""
    n, c = draw(st.integers(1, max_batch)), draw(st.integers(1, max_channels))
    kernel_size = draw(int_or_pair(1, max_kernel))
    (kh, kw) = pair(kernel_size)
    stride = draw(st.none() | int_or_pair(1, max_stride))
    sh, sw = (kh, kw) if stride is None else pair(stride)
    top_h, top_w = (kh // 2, kw // 2) if max_padding is None else (min(kh // 2, max_padding), min(kw // 2, max_padding))
    padding = draw(st.integers(0, min(top_h, top_w)) | st.tuples(st.integers(0, top_h), st.integers(0, top_w)))
    ph, pw = pair(padding)
    h, w = _spatial_size(draw, kh, ph, extra), _spatial_size(draw, kw, pw, extra)
    kwargs = dict(kernel_size=kernel_size, stride=stride, padding=padding)
    out = (n, c, window_output_size(h, kh, sh, ph), window_output_size(w, kw, sw, pw))
    return LayerConfig(layer, kwargs, (n, c, h, w), out)


@st.composite
def adaptive_avg_pool2d_configs(draw, max_batch=3, max_channels=3, max_output=3, max_block=3):
    """AdaptiveAvgPool2d to an output size that divides the input size (the documented support)."""
    n, c = draw(st.integers(1, max_batch)), draw(st.integers(1, max_channels))
    output_size = draw(int_or_pair(1, max_output))
    ho, wo = pair(output_size)
    h, w = ho * draw(st.integers(1, max_block)), wo * draw(st.integers(1, max_block))
    return LayerConfig("AdaptiveAvgPool2d", dict(output_size=output_size), (n, c, h, w), (n, c, ho, wo))


@st.composite
def batch_norm2d_configs(draw, max_batch=3, max_channels=3, max_side=4):
    """BatchNorm2d with at least two values per channel (training needs them), eps and momentum varied."""
    n, c = draw(st.integers(1, max_batch)), draw(st.integers(1, max_channels))
    h, w = draw(st.integers(1, max_side)), draw(st.integers(1, max_side))
    if n * h * w < 2:
        n = 2
    kwargs = dict(num_features=c, eps=draw(st.sampled_from([1e-5, 1e-3, 0.1])),
                  momentum=draw(st.sampled_from([0.0, 0.1, 0.5, 1.0])))
    return LayerConfig("BatchNorm2d", kwargs, (n, c, h, w), (n, c, h, w))


@st.composite
def linear_configs(draw, max_batch=4, max_features=6):
    n, f_in, f_out = (draw(st.integers(1, m)) for m in (max_batch, max_features, max_features))
    kwargs = dict(in_features=f_in, out_features=f_out, bias=draw(st.booleans()))
    return LayerConfig("Linear", kwargs, (n, f_in), (n, f_out))


def _shapes(min_dims: int, max_dims: int = 4, max_side: int = 4) -> st.SearchStrategy:
    return hnp.array_shapes(min_dims=min_dims, max_dims=max_dims, min_side=1, max_side=max_side)


def relu_configs() -> st.SearchStrategy:
    return _shapes(1).map(lambda shape: LayerConfig("ReLU", {}, shape, shape))


def dropout_configs() -> st.SearchStrategy:
    ps = st.sampled_from([0.0, 0.2, 0.5, 0.9, 1.0])
    return st.builds(lambda shape, p: LayerConfig("Dropout", dict(p=p), shape, shape), _shapes(1), ps)


def dropout2d_configs() -> st.SearchStrategy:
    ps = st.sampled_from([0.0, 0.25, 0.5, 1.0])
    return st.builds(lambda shape, p: LayerConfig("Dropout2d", dict(p=p), shape, shape), _shapes(4, 4), ps)


def flatten_configs() -> st.SearchStrategy:
    """Flatten with the default start_dim=1: (N, d1, ..., dk) -> (N, d1 * ... * dk)."""
    return _shapes(2).map(lambda s: LayerConfig("Flatten", {}, s, (s[0], int(np.prod(s[1:])))))


@st.composite
def residual_block_configs(draw, max_batch=2, max_channels=3, max_side=4):
    """tiny_resnet's ResidualBlock: shape-preserving 3x3 same convolutions."""
    shape = (draw(st.integers(1, max_batch)), draw(st.integers(1, max_channels)),
             draw(st.integers(1, max_side)), draw(st.integers(1, max_side)))
    return LayerConfig("ResidualBlock", dict(channels=shape[1]), shape, shape)


@st.composite
def basic_block_configs(draw, max_batch=2, max_channels=3, max_side=5):
    """torchvision's BasicBlock, with a projection shortcut when stride or channels change."""
    n, inplanes, planes = draw(st.integers(2, max_batch)), draw(st.integers(1, max_channels)), \
        draw(st.integers(1, max_channels))
    stride = draw(st.integers(1, 2))
    h, w = draw(st.integers(2, max_side)), draw(st.integers(2, max_side))
    out = (n, planes, window_output_size(h, 3, stride, 1), window_output_size(w, 3, stride, 1))
    return LayerConfig("BasicBlock", dict(inplanes=inplanes, planes=planes, stride=stride), (n, inplanes, h, w), out)


# -- invalid configurations -----------------------------------------------------------------------------

@dataclass(frozen=True)
class InvalidConstruction:
    """Constructor arguments the layer must reject with a ValueError naming itself."""

    layer: str
    kwargs: dict = field(hash=False)
    reason: str


def _invalid(layer, reason, **kwargs):
    return st.fixed_dictionaries(kwargs).map(lambda kw: InvalidConstruction(layer, kw, reason))


SIZE, NON_POSITIVE = st.integers(1, 4), st.integers(-3, 0)


def conv2d_invalid() -> st.SearchStrategy[InvalidConstruction]:
    return st.one_of(
        _invalid("Conv2d", "kernel_size < 1", in_channels=SIZE, out_channels=SIZE, kernel_size=NON_POSITIVE),
        _invalid("Conv2d", "stride < 1", in_channels=SIZE, out_channels=SIZE, kernel_size=SIZE, stride=NON_POSITIVE),
        _invalid("Conv2d", "padding < 0", in_channels=SIZE, out_channels=SIZE, kernel_size=SIZE,
                 padding=st.integers(-3, -1)),
        _invalid("Conv2d", "in_channels < 1", in_channels=NON_POSITIVE, out_channels=SIZE, kernel_size=SIZE),
        _invalid("Conv2d", "out_channels < 1", in_channels=SIZE, out_channels=NON_POSITIVE, kernel_size=SIZE),
    )


def linear_invalid() -> st.SearchStrategy[InvalidConstruction]:
    return st.one_of(_invalid("Linear", "in_features < 1", in_features=NON_POSITIVE, out_features=SIZE),
                     _invalid("Linear", "out_features < 1", in_features=SIZE, out_features=NON_POSITIVE))


def pool2d_invalid(pool: str) -> st.SearchStrategy[InvalidConstruction]:
    """MaxPool2d / AvgPool2d: kernel or stride < 1, padding over half the kernel (torch's rule)."""
    return st.one_of(
        _invalid(pool, "kernel_size < 1", kernel_size=NON_POSITIVE),
        _invalid(pool, "stride < 1", kernel_size=SIZE, stride=NON_POSITIVE),
        st.integers(1, 5).flatmap(lambda k: _invalid(pool, "padding > kernel_size / 2", kernel_size=st.just(k),
                                                     padding=st.integers(k // 2 + 1, k + 2))),
    )


def adaptive_avg_pool2d_invalid() -> st.SearchStrategy[InvalidConstruction]:
    return _invalid("AdaptiveAvgPool2d", "output_size < 1", output_size=NON_POSITIVE)


def adaptive_max_pool2d_invalid() -> st.SearchStrategy[InvalidConstruction]:
    return _invalid("AdaptiveMaxPool2d", "output_size < 1", output_size=NON_POSITIVE)


def hardtanh_invalid() -> st.SearchStrategy[InvalidConstruction]:
    return _invalid("Hardtanh", "max_val <= min_val", min_val=st.just(1.0), max_val=st.sampled_from([1.0, 0.5, -2.0]))


def batch_norm2d_invalid() -> st.SearchStrategy[InvalidConstruction]:
    return st.one_of(
        _invalid("BatchNorm2d", "num_features < 1", num_features=NON_POSITIVE),
        _invalid("BatchNorm2d", "eps <= 0", num_features=SIZE, eps=st.floats(-1.0, 0.0)),
        _invalid("BatchNorm2d", "momentum outside [0, 1]", num_features=SIZE,
                 momentum=st.floats(1.001, 10.0) | st.floats(-10.0, -0.001)),
    )


def dropout_invalid(layer: str) -> st.SearchStrategy[InvalidConstruction]:
    return _invalid(layer, "p outside [0, 1]", p=st.floats(1.001, 10.0) | st.floats(-10.0, -0.001))


def channel_mismatch_shapes(cfg: LayerConfig) -> st.SearchStrategy[tuple[int, ...]]:
    """cfg's input shape with another size along dim 1 (only for CHANNEL_LAYERS)."""
    wanted = cfg.input_shape[1]
    return st.integers(1, wanted + 3).filter(lambda c: c != wanted).map(
        lambda c: cfg.input_shape[:1] + (c,) + cfg.input_shape[2:])


@st.composite
def too_small_configs(draw, name: str) -> LayerConfig:
    """A WINDOW_LAYERS config whose padded input is smaller than the kernel in H or W (output_shape unused)."""
    kernel = draw(st.integers(2, 5))
    padding = draw(st.integers(0, (kernel - 2) // 2))  # kernel - 2 padding >= 2: an input of 1 is too small
    small = draw(st.integers(1, kernel - 2 * padding - 1))
    big = kernel + draw(st.integers(0, 3))
    h, w = draw(st.sampled_from([(small, big), (big, small), (small, small)]))
    n, c = draw(st.integers(1, 2)), draw(st.integers(1, 3))
    if name == "Conv2d":
        kwargs = dict(in_channels=c, out_channels=2, kernel_size=kernel, padding=padding)
    else:
        kwargs = dict(kernel_size=kernel, padding=padding)
    return LayerConfig(name, kwargs, (n, c, h, w), ())


@st.composite
def corrupted_state_dicts(draw, state: dict) -> tuple[str, str, dict]:
    """(kind, key, bad copy of `state`): a key missing, an unexpected key, a wrong shape or a non-numeric array."""
    kinds = ["unexpected"] + (["missing", "wrong_shape", "non_numeric"] if state else [])
    kind = draw(st.sampled_from(kinds))
    bad = {key: np.array(value, copy=True) for key, value in state.items()}
    if kind == "unexpected":
        key = draw(st.sampled_from(["extra.weight", "bogus", "0.weight_", "running_mean_"]))
        bad[key] = np.zeros(3, dtype=np.float32)
        return kind, key, bad
    key = draw(st.sampled_from(sorted(state)))
    if kind == "missing":
        del bad[key]
    elif kind == "wrong_shape":
        shape = bad[key].shape
        new_shape = draw(st.sampled_from([shape + (1,), (2,) + shape] +
                                         ([shape[:-1] + (shape[-1] + 1,), shape[1:]] if shape else [])))
        bad[key] = np.zeros(new_shape, dtype=bad[key].dtype)
    else:
        bad[key] = np.full(bad[key].shape, "x")
    return kind, key, bad


# --- conformance strategies ---
# Configurations of the non-layer ops of the op database (reference.testing.conformance.database): plain dicts,
# so that a failing case prints as a copy-pasteable literal.

@st.composite
def cross_entropy_configs(draw, max_batch=6, max_classes=7):
    """CrossEntropyLoss: batch, classes, label smoothing and a logit scale up to 1e4 (log-sum-exp territory)."""
    return dict(batch=draw(st.integers(1, max_batch)), classes=draw(st.integers(2, max_classes)),
                label_smoothing=draw(st.sampled_from([0.0, 0.05, 0.1, 0.5, 1.0])),
                logit_scale=draw(st.sampled_from([1.0, 10.0, 1e2, 1e4])))


def _optimizer_common(draw, max_steps=6):
    """Two small parameters, a few steps, and the steps at which the second one gets no gradient (skipped)."""
    shapes = [draw(st.lists(st.integers(1, 4), min_size=1, max_size=3).map(tuple)) for _ in range(2)]
    steps = draw(st.integers(1, max_steps))
    skip = draw(st.lists(st.integers(0, steps - 1), max_size=2, unique=True))
    return dict(shapes=shapes, steps=steps, skip_steps=sorted(skip))


@st.composite
def sgd_configs(draw):
    """torch.optim.SGD's options: momentum, dampening, weight decay, Nesterov (momentum > 0, no dampening)."""
    nesterov = draw(st.booleans())
    momentum = draw(st.sampled_from([0.5, 0.9] if nesterov else [0.0, 0.5, 0.9]))
    dampening = 0.0 if nesterov else draw(st.sampled_from([0.0, 0.1, 0.5]))
    kwargs = dict(lr=draw(st.sampled_from([0.01, 0.1, 0.5])), momentum=momentum, dampening=dampening,
                  weight_decay=draw(st.sampled_from([0.0, 1e-4, 0.1])), nesterov=nesterov)
    return dict(optimizer="SGD", kwargs=kwargs, **_optimizer_common(draw))


@st.composite
def adam_configs(draw):
    """torch.optim.Adam's options: lr, betas, eps, L2 weight decay."""
    kwargs = dict(lr=draw(st.sampled_from([1e-3, 1e-2, 0.1])),
                  betas=draw(st.sampled_from([(0.9, 0.999), (0.5, 0.9), (0.0, 0.99)])),
                  eps=draw(st.sampled_from([1e-8, 1e-6, 1e-3])), weight_decay=draw(st.sampled_from([0.0, 1e-4, 0.1])))
    return dict(optimizer="Adam", kwargs=kwargs, **_optimizer_common(draw))


@st.composite
def step_lr_configs(draw):
    """StepLR over plain SGD: one optimizer step and one scheduler step per epoch, for up to 12 epochs."""
    schedule = dict(step_size=draw(st.integers(1, 4)), gamma=draw(st.sampled_from([0.1, 0.5, 0.9])))
    common = _optimizer_common(draw, max_steps=12)
    return dict(optimizer="SGD", kwargs=dict(lr=draw(st.sampled_from([0.1, 1.0]))), schedule=schedule, **common)


# --- every torch.nn argument ---
# Configurations over the arguments torch.nn's layers take beyond the plain ones above: dilation, groups
# (depthwise too), padding 'same'/'valid' and padding modes, unbatched input, ceil_mode, count_include_pad,
# divisor_override, adaptive sizes that do not divide or keep a size (None), BatchNorm's affine /
# track_running_stats / momentum=None, Linear on (*, F), Hardtanh and ReLU6, Flatten's dims. Output shapes
# come from torch's formulas, written here independently of the package. `torch_argument_configs(name)` draws
# one; `invalid_torch_arguments()` draws constructions torch itself rejects (a ValueError or TypeError naming
# the argument and its value).

def _unbatched(draw, cfg: LayerConfig) -> LayerConfig:
    """cfg, or cfg without its batch axis (torch's unbatched (C, H, W) input) half of the time."""
    if draw(st.booleans()):
        return LayerConfig(cfg.layer, cfg.kwargs, cfg.input_shape[1:], cfg.output_shape[1:])
    return cfg


def _conv_sides(draw, kernel, dilation, max_stride, max_padding):
    """(padding argument, stride, per-axis (before, after) padding) for int/pair, 'same' or 'valid' padding."""
    kind = draw(st.sampled_from(["number", "same", "valid"]))
    if kind == "same":  # stride 1; total d (k - 1) per axis, the odd pixel after (torch)
        totals = [d * (k - 1) for k, d in zip(kernel, dilation, strict=True)]
        return "same", 1, [(t // 2, t - t // 2) for t in totals]
    stride = draw(int_or_pair(1, max_stride))
    if kind == "valid":
        return "valid", stride, [(0, 0), (0, 0)]
    padding = draw(int_or_pair(0, max_padding))
    return padding, stride, [(p, p) for p in pair(padding)]


@st.composite
def conv2d_torch_configs(draw, max_groups=3, max_per_group=2, max_kernel=3, max_stride=2, max_dilation=2,
                         max_padding=2, extra=3):
    """Conv2d with dilation, groups (depthwise half the time), 'same'/'valid', a padding mode, maybe unbatched."""
    groups = draw(st.integers(1, max_groups))
    depthwise = draw(st.booleans())
    c_in, c_out = (groups * (1 if depthwise else draw(st.integers(1, max_per_group))) for _ in range(2))
    kernel_size, dilation = draw(int_or_pair(1, max_kernel)), draw(int_or_pair(1, max_dilation))
    kernel, dilations = pair(kernel_size), pair(dilation)
    padding, stride, sides = _conv_sides(draw, kernel, dilations, max_stride, max_padding)
    mode = draw(st.sampled_from(["zeros", "reflect", "replicate", "circular"]))
    sizes, out = [], []
    for k, d, s, (before, after) in zip(kernel, dilations, pair(stride), sides, strict=True):
        smallest = max(1, d * (k - 1) + 1 - before - after)
        if mode == "reflect":
            smallest = max(smallest, before + 1, after + 1)  # torch: reflect padding < size
        elif mode == "circular":
            smallest = max(smallest, before, after)  # torch: circular padding <= size
        size = draw(st.integers(smallest, smallest + extra))
        sizes.append(size)
        out.append((size + before + after - d * (k - 1) - 1) // s + 1)
    n = draw(st.integers(1, 2))
    kwargs = dict(in_channels=c_in, out_channels=c_out, kernel_size=kernel_size, stride=stride, padding=padding,
                  dilation=dilation, groups=groups, bias=draw(st.booleans()), padding_mode=mode)
    return _unbatched(draw, LayerConfig("Conv2d", kwargs, (n, c_in, *sizes), (n, c_out, *out)))


def _pool_sizes(draw, kernel, stride, padding, dilation, ceil_mode, extra):
    """Input sizes whose pooled size (floor formula) is at least 1, and the output sizes torch gives."""
    sizes, out = [], []
    for k, s, p, d in zip(kernel, stride, padding, dilation, strict=True):
        size = draw(st.integers(max(1, d * (k - 1) + 1 - 2 * p), max(1, d * (k - 1) + 1 - 2 * p) + extra))
        sizes.append(size)
        out.append(window_output_size(size, k, s, p, d, ceil_mode))
    return sizes, out


@st.composite
def pool2d_torch_configs(draw, layer="MaxPool2d", max_kernel=3, max_stride=3, max_dilation=2, extra=4):
    """MaxPool2d (dilation, ceil_mode) or AvgPool2d (ceil_mode, count_include_pad, divisor_override), maybe
    unbatched; return_indices is left to tests of its own (it changes what forward returns)."""
    kernel_size = draw(int_or_pair(1, max_kernel))
    kernel = pair(kernel_size)
    stride = draw(st.none() | int_or_pair(1, max_stride))
    strides = kernel if stride is None else pair(stride)
    padding = draw(st.tuples(st.integers(0, kernel[0] // 2), st.integers(0, kernel[1] // 2)))
    ceil_mode = draw(st.booleans())
    kwargs = dict(kernel_size=kernel_size, stride=stride, padding=padding, ceil_mode=ceil_mode)
    dilation = (1, 1)
    if layer == "MaxPool2d":
        dilation = pair(draw(int_or_pair(1, max_dilation)))
        kwargs["dilation"] = dilation
    else:
        kwargs["count_include_pad"] = draw(st.booleans())
        kwargs["divisor_override"] = draw(st.none() | st.sampled_from([-2, 1, 3]))
    sizes, out = _pool_sizes(draw, kernel, strides, padding, dilation, ceil_mode, extra)
    # A dilated window can fall entirely into the padding; torch then outputs -inf and sends the gradient to an
    # element outside the window (its start index wraps into the next row): not drawn.
    assume(all(all(any(0 <= i * s - p + j * d < size for j in range(k)) for i in range(o))
               for size, k, s, p, d, o in zip(sizes, kernel, strides, padding, dilation, out, strict=True)))
    n, c = draw(st.integers(1, 2)), draw(st.integers(1, 3))
    return _unbatched(draw, LayerConfig(layer, kwargs, (n, c, *sizes), (n, c, *out)))


@st.composite
def adaptive_pool2d_torch_configs(draw, layer="AdaptiveAvgPool2d", max_side=7, max_output=5, unbatched=True):
    """Adaptive pooling to any output size (smaller, larger, not dividing) or None (keep that size), on batched
    or (unbatched=True, half the time) unbatched input."""
    h, w = draw(st.integers(1, max_side)), draw(st.integers(1, max_side))
    size = st.integers(1, max_output)
    output_size = draw(size | st.tuples(size | st.none(), size | st.none()))
    ho, wo = (output_size, output_size) if isinstance(output_size, int) else output_size
    n, c = draw(st.integers(1, 2)), draw(st.integers(1, 3))
    out = (n, c, h if ho is None else ho, w if wo is None else wo)
    cfg = LayerConfig(layer, dict(output_size=output_size), (n, c, h, w), out)
    return _unbatched(draw, cfg) if unbatched else cfg


@st.composite
def batch_norm2d_torch_configs(draw, max_batch=3, max_channels=3, max_side=4):
    """BatchNorm2d with affine on or off, running statistics tracked or not, momentum None (cumulative) or not."""
    cfg = draw(batch_norm2d_configs(max_batch, max_channels, max_side))
    kwargs = dict(cfg.kwargs, momentum=draw(st.sampled_from([None, 0.0, 0.1, 1.0])), affine=draw(st.booleans()),
                  track_running_stats=draw(st.booleans()))
    return LayerConfig("BatchNorm2d", kwargs, cfg.input_shape, cfg.output_shape)


@st.composite
def linear_torch_configs(draw, max_features=5):
    """Linear on (*, in_features): no leading dim, one (a batch), or several."""
    f_in, f_out = draw(st.integers(1, max_features)), draw(st.integers(1, max_features))
    leading = draw(st.lists(st.integers(1, 3), max_size=3).map(tuple))
    kwargs = dict(in_features=f_in, out_features=f_out, bias=draw(st.booleans()))
    return LayerConfig("Linear", kwargs, (*leading, f_in), (*leading, f_out))


@st.composite
def hardtanh_configs(draw, layer="Hardtanh", min_dims=0):
    """Hardtanh with min_val < max_val (ReLU6: 0 and 6) on any shape, a 0-d array included (min_dims=1: the shapes
    the property tests' batch-axis checks need)."""
    shape = draw(hnp.array_shapes(min_dims=min_dims, max_dims=4, min_side=1, max_side=4))
    if layer == "ReLU6":
        return LayerConfig("ReLU6", {}, shape, shape)
    low = draw(st.sampled_from([-2.0, -1.0, -0.5, 0.0]))
    kwargs = dict(min_val=low, max_val=low + draw(st.sampled_from([0.25, 1.0, 2.0])))
    return LayerConfig("Hardtanh", kwargs, shape, shape)


@st.composite
def flatten_torch_configs(draw):
    """Flatten(start_dim, end_dim) with any valid pair of dims, negative ones included."""
    shape = draw(hnp.array_shapes(min_dims=1, max_dims=4, min_side=1, max_side=3))
    start = draw(st.integers(0, len(shape) - 1))
    end = draw(st.integers(start, len(shape) - 1))
    out = shape[:start] + (int(np.prod(shape[start : end + 1])),) + shape[end + 1 :]
    start_dim = start - len(shape) if draw(st.booleans()) else start
    end_dim = end - len(shape) if draw(st.booleans()) else end
    return LayerConfig("Flatten", dict(start_dim=start_dim, end_dim=end_dim), shape, out)


TORCH_ARGUMENT_CONFIGS = {
    "Conv2d": conv2d_torch_configs,
    "MaxPool2d": lambda: pool2d_torch_configs("MaxPool2d"),
    "AvgPool2d": lambda: pool2d_torch_configs("AvgPool2d"),
    "AdaptiveAvgPool2d": lambda: adaptive_pool2d_torch_configs("AdaptiveAvgPool2d"),
    "AdaptiveMaxPool2d": lambda: adaptive_pool2d_torch_configs("AdaptiveMaxPool2d"),
    "BatchNorm2d": batch_norm2d_torch_configs,
    "Linear": linear_torch_configs,
    "Hardtanh": lambda: hardtanh_configs("Hardtanh"),
    "ReLU6": lambda: hardtanh_configs("ReLU6"),
    "Flatten": flatten_torch_configs,
}


def with_return_indices(strategy: st.SearchStrategy[LayerConfig]) -> st.SearchStrategy[LayerConfig]:
    """A max-pool strategy's configurations with return_indices drawn too (the forward then returns (out,
    indices), so property tests that expect one array use the strategy without it)."""
    return st.tuples(strategy, st.booleans()).map(
        lambda drawn: replace(drawn[0], kwargs={**drawn[0].kwargs, "return_indices": drawn[1]}))


def torch_argument_configs(name: str) -> st.SearchStrategy[LayerConfig]:
    """Random valid configurations of `name` over every torch argument it takes (one of TORCH_ARGUMENT_CONFIGS)."""
    return TORCH_ARGUMENT_CONFIGS[name]()


@st.composite
def cross_entropy_torch_configs(draw, max_batch=4, max_classes=5):
    """CrossEntropyLoss over torch's arguments: per-class weight, ignore_index (some targets ignored),
    reduction, label smoothing, class-probability targets, extra dims (N, C, d1, ...) or an unbatched (C,)."""
    unbatched = draw(st.booleans()) and draw(st.booleans())
    extra = () if unbatched else draw(st.lists(st.integers(1, 3), max_size=2).map(tuple))
    return dict(batch=None if unbatched else draw(st.integers(1, max_batch)), classes=draw(st.integers(2, max_classes)),
                extra=extra, weighted=draw(st.booleans()), probabilities=draw(st.booleans()),
                ignore=draw(st.booleans()), reduction=draw(st.sampled_from(["mean", "sum", "none"])),
                label_smoothing=draw(st.sampled_from([0.0, 0.1, 0.5, 1.0])))


def invalid_torch_arguments() -> st.SearchStrategy[InvalidConstruction]:
    """Constructions torch rejects over the new arguments; `reason` starts with the offending argument's name."""
    size = st.integers(1, 4)
    return st.one_of(
        st.integers(2, 4).flatmap(lambda g: _invalid("Conv2d", "groups not dividing the channels",
                                                     in_channels=st.just(g + 1), out_channels=st.just(g),
                                                     kernel_size=size, groups=st.just(g))),
        _invalid("Conv2d", "dilation < 1", in_channels=size, out_channels=size, kernel_size=size,
                 dilation=st.integers(-2, 0)),
        _invalid("Conv2d", "padding 'same' with a stride", in_channels=size, out_channels=size, kernel_size=size,
                 stride=st.integers(2, 3), padding=st.just("same")),
        _invalid("Conv2d", "padding not a mode", in_channels=size, out_channels=size, kernel_size=size,
                 padding=st.sampled_from(["full", "SAME", ""])),
        _invalid("Conv2d", "padding_mode unknown", in_channels=size, out_channels=size, kernel_size=size,
                 padding_mode=st.sampled_from(["zero", "mirror", "wrap"])),
        _invalid("Conv2d", "kernel_size of three numbers", in_channels=size, out_channels=size,
                 kernel_size=st.tuples(size, size, size)),
        _invalid("MaxPool2d", "dilation < 1", kernel_size=size, dilation=st.integers(-2, 0)),
        _invalid("MaxPool2d", "stride not an int", kernel_size=size, stride=st.sampled_from([1.5, "2", (1, 2, 3)])),
        _invalid("AvgPool2d", "divisor_override = 0", kernel_size=size, divisor_override=st.just(0)),
        _invalid("AdaptiveMaxPool2d", "output_size < 1", output_size=st.integers(-3, 0)),
        _invalid("AdaptiveAvgPool2d", "output_size of three numbers", output_size=st.tuples(size, size, size)),
        _invalid("BatchNorm2d", "momentum NaN", num_features=size, momentum=st.just(float("nan"))),
        _invalid("Hardtanh", "max_val <= min_val", min_val=st.just(1.0), max_val=st.sampled_from([1.0, 0.5, -2.0])),
        _invalid("CrossEntropyLoss", "reduction unknown", reduction=st.sampled_from(["avg", "elementwise_mean", ""])),
        _invalid("CrossEntropyLoss", "label_smoothing outside [0, 1]",
                 label_smoothing=st.sampled_from([-0.1, 1.5, float("nan")])),
    )
