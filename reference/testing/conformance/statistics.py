"""The statistics tier: what an implementation draws at random, judged by statistical tests against torch.

The op tier drives torch's dropout with the implementation's own mask, and every tier loads torch's initial state,
so neither can see a dropout that keeps units at the wrong rate or an initialisation from the wrong
distribution. Here:
- dropout's keep rate: a two-sided binomial test on the kept elements of a large all-ones input, and every kept
  output exactly 1 / (1 - p);
- dropout2d's masks: each (n, c) channel kept or dropped whole, and the channels' keep rate by a binomial test;
- each parametric layer's initial parameters: inside torch's bounds, and the same distribution as torch's
  own initialisation of the same layer (two-sample Kolmogorov-Smirnov test); constant ones (batch norm's) exact.
Every test has false-alarm rate ALPHA (one in a million per test, so about ten per million runs of the tier);
its p-value is recorded as the ratio log(p) / log(ALPHA) (<= 1 passes, 1 at p = ALPHA).
"""

from __future__ import annotations

import math

import numpy as np

from reference.testing.compare import Where, record

from .namespace import construct
from .verdicts import as_result, implementation

ALPHA = 1e-6  # false-alarm rate of each test
DROPOUT_ELEMENTS = (200, 500)  # 100,000 elements: a keep rate off by 0.01 is ~6 standard errors at p = 0.5
DROPOUT2D_SHAPE = (400, 50, 3, 3)  # 20,000 channels
P_VALUES = (0.1, 0.5, 0.9)
INIT_LAYERS = {  # layer -> constructor arguments with enough parameters for the test to have power
    "Conv2d": dict(in_channels=32, out_channels=64, kernel_size=3),  # 18,432 weights, 64 biases
    "Linear": dict(in_features=300, out_features=100),  # 30,000 weights, 100 biases
    "BatchNorm2d": dict(num_features=16),
}


def _ratio(p_value: float) -> float:
    """log(p) / log(ALPHA): 0 at p = 1, 1 at p = ALPHA, above 1 below it."""
    return math.log(max(p_value, 1e-300)) / math.log(ALPHA)


def _record_test(where: Where, stage: str, observed: float, expected: float, p_value: float) -> None:
    record(where, stage, "tolerance", max_abs=abs(observed - expected), max_rel=abs(observed - expected) /
           max(abs(expected), 1e-300), ratio=_ratio(p_value), rtol=ALPHA, atol=0.0, size=1, passed=p_value >= ALPHA)


def _layer(nn, name: str, dtype: str, **kwargs):
    with implementation(f"{name} of {nn.__name__}"):
        module = construct(getattr(nn, name), name, **kwargs)
        module.to(np.dtype(dtype))
        return module


def _forward(module, x, what: str) -> np.ndarray:
    with implementation(what):
        module.train(True)
        out = module(x.copy())
    return as_result(out, x, f"{what} forward")


def dropout_keep_rate(nn, name: str, dtype: str, where: Where) -> None:
    """Dropout(p) keeps each element with probability 1 - p and scales what it keeps by 1 / (1 - p)."""
    from scipy.stats import binomtest

    x = np.ones(DROPOUT_ELEMENTS, dtype=dtype)
    for p in P_VALUES:
        out = _forward(_layer(nn, name, dtype, p=p), x, f"{name}(p={p})")
        kept = out != 0
        scale = np.asarray(1.0 / (1.0 - p), dtype=dtype)
        if not np.allclose(out[kept], scale, rtol=1e-6, atol=0.0):
            raise AssertionError(f"{where.label(f'p={p}')}: kept elements are {np.unique(out[kept])[:5]}, expected "
                                 f"1 / (1 - p) = {float(scale)!r}")
        _assert_rate(where, f"keep rate p={p}", int(kept.sum()), kept.size, 1.0 - p, binomtest)


def dropout2d_channel_masks(nn, name: str, dtype: str, where: Where) -> None:
    """Dropout2d(p) keeps or drops each (n, c) channel whole, channels with probability 1 - p."""
    from scipy.stats import binomtest

    x = np.ones(DROPOUT2D_SHAPE, dtype=dtype)
    for p in P_VALUES:
        out = _forward(_layer(nn, name, dtype, p=p), x, f"{name}(p={p})")
        kept = out != 0
        whole = kept.all(axis=(2, 3)) | ~kept.any(axis=(2, 3))
        if not whole.all():
            n, c = np.argwhere(~whole)[0]
            raise AssertionError(f"{where.label(f'p={p}')}: {int((~whole).sum())} channels are partly dropped "
                                 f"(first: n={n}, c={c}); Dropout2d keeps or drops whole channels")
        channels = kept.all(axis=(2, 3))
        _assert_rate(where, f"channel keep rate p={p}", int(channels.sum()), channels.size, 1.0 - p, binomtest)


def _assert_rate(where, stage, kept: int, total: int, expected: float, binomtest) -> None:
    p_value = binomtest(kept, total, expected).pvalue
    _record_test(where, stage, kept / total, expected, p_value)
    if p_value < ALPHA:
        raise AssertionError(f"{where.label(stage)}: kept {kept} of {total} ({kept / total:.4f}), expected rate "
                             f"{expected:.4f}: binomial test p = {p_value:.3g} < {ALPHA:g} (its false-alarm rate)")


def initial_parameters(nn, name: str, dtype: str, where: Where) -> None:
    """The layer's initial parameters and buffers come from torch's distributions: constants exactly, random ones
    inside torch's bounds and not distinguishable from torch's own draws (two-sample KS test)."""
    import torch
    from scipy.stats import ks_2samp

    kwargs = INIT_LAYERS[name]
    with implementation(f"{name} of {nn.__name__}"):
        ours = {key: np.asarray(value) for key, value in _layer(nn, name, dtype, **kwargs).state_dict().items()}
    twin = getattr(torch.nn, name)(**kwargs)
    theirs = {key: value.detach().numpy().astype(dtype if value.is_floating_point() else value.numpy().dtype)
              for key, value in twin.state_dict().items()}
    if ours.keys() != theirs.keys():
        raise AssertionError(f"{where.label('state')}: keys {sorted(ours)}, torch's {sorted(theirs)}")
    for key, expected in theirs.items():
        actual = as_result(ours[key], expected, key)
        if np.ptp(expected) == 0:  # a constant (ones, zeros, a counter): exactly that
            if not np.array_equal(actual, expected):
                raise AssertionError(f"{where.label(key)}: initialised to {np.unique(actual)[:5]}, torch's is "
                                     f"{float(expected.flat[0])!r} everywhere")
            continue
        bound = 1.0 / math.sqrt(_fan_in(kwargs, name))  # torch's U(-b, b) for weights and biases alike
        if np.max(np.abs(actual)) > bound * (1 + 1e-6):
            raise AssertionError(f"{where.label(key)}: |values| up to {np.max(np.abs(actual)):.4g}, torch's "
                                 f"U(-b, b) has b = 1/sqrt(fan_in) = {bound:.4g}")
        p_value = ks_2samp(actual.ravel().astype(np.float64), expected.ravel()).pvalue
        _record_test(where, f"{key} distribution", float(np.std(actual)), float(np.std(expected)), p_value)
        if p_value < ALPHA:
            raise AssertionError(f"{where.label(key)}: initial values differ in distribution from torch's "
                                 f"(two-sample KS p = {p_value:.3g} < {ALPHA:g}; std {np.std(actual):.4g} vs "
                                 f"{np.std(expected):.4g})")


def _fan_in(kwargs: dict, name: str) -> int:
    """Inputs feeding one output: in_channels * kh * kw of a convolution, in_features of a linear layer."""
    if name == "Conv2d":
        return kwargs["in_channels"] * kwargs["kernel_size"] ** 2
    return kwargs["in_features"]


STATISTICS = {  # subject -> (the op it draws, the test)
    "Dropout[rate]": ("Dropout", dropout_keep_rate),
    "Dropout2d[channels]": ("Dropout2d", dropout2d_channel_masks),
    **{f"{name}[init]": (name, initial_parameters) for name in INIT_LAYERS},
}
