"""Model conformance: every zoo model's NumPy twin against its torch twin, and resnet18 against torchvision.

Same state (copied with zoo.copy_state, batch-norm statistics randomized), same batch, same dropout masks
(training mode: torch's dropout driven by NumPy's mask; eval: identity); logits, loss, the input gradient,
every parameter gradient and every buffer compared per dtype and device.
"""

from __future__ import annotations

import pytest

from reference import zoo

from .models import assert_model_matches, assert_torchvision_resnet18_matches

DEVICES = ["cpu", pytest.param("cuda", marks=pytest.mark.cuda)]
DTYPES = ["float64", "float32"]


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("mode", ["train", "eval"])
@pytest.mark.parametrize("name", zoo.names())
def test_zoo_model_matches_torch_twin(name, mode, dtype, device):
    assert_model_matches(name, mode, dtype, device)


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("mode", ["train", "eval"])
def test_resnet18_matches_torchvision_resnet18(mode, dtype, device):
    assert_torchvision_resnet18_matches(mode, dtype, device)
