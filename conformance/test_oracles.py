"""Independent oracles (float64): SciPy for convolution and pooling, finite differences for every gradient.

For each differentiable op of the table, at one float64 point: torch's own gradients pass
`torch.autograd.gradcheck` and `gradgradcheck` (so torch is a trustworthy reference there), the NumPy
forward/backward pass gradcheck on their own (NumPy code wrapped as an autograd.Function, no torch math),
and NumPy's analytic gradients equal torch's at that same point.
"""

from __future__ import annotations

import pytest
from hypothesis import assume, given, note, settings
from hypothesis import strategies as st

from reference.testing.strategies import layer_configs, seeds

from .ops import OPS_BY_NAME
from .oracles import assert_conv2d_matches_scipy, assert_gradients_pass_gradcheck, assert_pool2d_matches_scipy

# gradcheck and gradgradcheck evaluate each op many times per example: a fifth of the profile's depth.
ORACLE_DEPTH = settings(max_examples=max(3, settings().max_examples // 5))
GRADIENT_OPS = ["Conv2d", "Linear", "ReLU", "MaxPool2d", "AvgPool2d", "AdaptiveAvgPool2d", "BatchNorm2d[train]",
                "BatchNorm2d[eval]", "Flatten", "BasicBlock[train]", "BasicBlock[eval]", "ResidualBlock",
                "CrossEntropyLoss"]


@given(cfg=layer_configs("Conv2d"), seed=seeds)
def test_conv2d_forward_and_gradients_match_scipy(cfg, seed):
    assert_conv2d_matches_scipy(cfg, seed)


@pytest.mark.parametrize("layer", ["MaxPool2d", "AvgPool2d"])
@given(data=st.data())
def test_pool2d_forward_matches_scipy(layer, data):
    assert_pool2d_matches_scipy(data.draw(layer_configs(layer), label="cfg"), data.draw(seeds, label="seed"))


@ORACLE_DEPTH
@pytest.mark.parametrize("name", GRADIENT_OPS)
@given(data=st.data())
def test_gradients_pass_gradcheck_and_numpy_equals_torch(name, data):
    op = OPS_BY_NAME[name]
    cfg, seed = data.draw(op.configs(), label="config"), data.draw(seeds, label="seed")
    if op.well_posed is not None:
        assume(op.well_posed(cfg, "float64"))
    note(f"assert_gradients_pass_gradcheck({name!r}, {cfg!r}, seed={seed})")
    assert_gradients_pass_gradcheck(name, cfg, seed)
