"""Value regimes: the inputs an op is checked on beside Gaussian draws, where implementations actually differ.

Like OpInfo's sample inputs with `low`/`high`/`exclude_zero` and array-api-tests' special cases, each op of the
database declares the regimes that matter to it and every tier that compares against torch draws them: exact ties
in pooling windows (which of the tied elements gets the gradient), values exactly at an activation's bounds (is
the gradient passed there?), zeros, NaN and +-inf where torch defines the result, a constant channel (batch-norm
variance 0), and extreme logits for cross-entropy. Each regime maps (rng, shape, config) to a float64 array; the
harness casts it to the check's dtype (every value here is exact in float32).
"""

from __future__ import annotations

import numpy as np

GAUSSIAN = "gaussian"


def gaussian(rng, shape, config):
    """N(0, 1): no two values equal, none on a kink."""
    return rng.standard_normal(shape)


def ties(rng, shape, config):
    """Integers in {-1, 0, 1}: most pooling windows hold tied maxima (and zeros: ReLU's kink)."""
    return rng.integers(-1, 2, shape).astype(np.float64)


def bounds(rng, shape, config):
    """About half the values exactly at an activation's bounds (ReLU 0, ReLU6 0 and 6, Hardtanh min_val and
    max_val), the rest N(0, 2) on either side."""
    kwargs = getattr(config, "kwargs", {})
    edges = {"ReLU6": (0.0, 6.0), "Hardtanh": (kwargs.get("min_val", -1.0), kwargs.get("max_val", 1.0))}
    edge_values = np.array(edges.get(getattr(config, "layer", ""), (0.0,)))
    x = 2.0 * rng.standard_normal(shape)
    at_edge = rng.random(shape) < 0.5
    return np.where(at_edge, rng.choice(edge_values, size=shape), x)


def zeros(rng, shape, config):
    """All zeros: every window tied, every ReLU on its kink, every batch-norm channel constant."""
    return np.zeros(shape)


def nonfinite(rng, shape, config):
    """N(0, 1) with about a quarter of the values NaN, +inf or -inf (IEEE propagation, as torch defines it)."""
    x = rng.standard_normal(shape)
    special = rng.random(shape) < 0.25
    return np.where(special, rng.choice(np.array([np.nan, np.inf, -np.inf]), size=shape), x)


def infinite(rng, shape, config):
    """N(0, 1) with about a quarter of the values +inf or -inf: for ops whose NaN gradient torch leaves undefined
    (Hardtanh and ReLU6 pass it in their scalar loop and block it in the vectorized one)."""
    x = rng.standard_normal(shape)
    special = rng.random(shape) < 0.25
    return np.where(special, rng.choice(np.array([np.inf, -np.inf]), size=shape), x)


def constant_channel(rng, shape, config):
    """N(0, 1) with one channel (axis 1) constant at 1.5: batch-norm variance exactly 0 (sums of 1.5 are exact)."""
    x = rng.standard_normal(shape)
    if len(shape) >= 2:
        x[:, rng.integers(shape[1])] = 1.5
    return x


def extreme(rng, shape, config):
    """Logits of magnitude ~1e4 with the largest tied in some rows: exp() overflows unless the log-sum-exp is
    shifted, and ties split the softmax exactly."""
    x = 1e4 * rng.standard_normal(shape)
    if len(shape) >= 2 and shape[1] >= 2:
        rows = rng.random(shape[0]) < 0.5
        x[rows, 1] = x[rows].max(axis=1)  # a tie with the row's largest logit
    return x


REGIMES = {GAUSSIAN: gaussian, "ties": ties, "bounds": bounds, "zeros": zeros, "nonfinite": nonfinite,
           "infinite": infinite, "constant channel": constant_channel, "extreme": extreme}
FINITE = (GAUSSIAN, "ties", "bounds", "zeros", "constant channel", "extreme")  # what finite-precision oracles take


def values(regime: str, rng, shape, config) -> np.ndarray:
    """The input of `shape` drawn in `regime` (KeyError naming the regimes otherwise)."""
    if regime not in REGIMES:
        raise KeyError(f"unknown value regime {regime!r}; the regimes are {sorted(REGIMES)}")
    return REGIMES[regime](rng, tuple(shape), config)
