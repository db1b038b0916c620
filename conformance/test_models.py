"""Model conformance: every zoo model (and variant: resnet18 as torchvision builds it) built from the namespace
against its torch twin.

Same state (batch-norm statistics randomized), same batch, same dropout masks (training mode: torch's dropout
driven by the implementation's mask; eval: identity); logits, loss, the input gradient, every parameter
gradient and every buffer compared per dtype and device.
"""

CONFORMANCE_TIERS = ("model",)


def test_zoo_model_matches_torch_twin(check):
    check()
