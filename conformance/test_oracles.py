"""Independent oracles (float64): SciPy for convolution and pooling, finite differences for every gradient.

For each differentiable subject of the op database, at one float64 point: torch's own gradients pass
`torch.autograd.gradcheck` and `gradgradcheck` (so torch is a trustworthy reference there), the
implementation's forward/backward pass gradcheck on their own (its code wrapped as an autograd.Function, no
torch math), and its analytic gradients equal torch's at that same point.
"""

CONFORMANCE_TIERS = ("oracle",)


def test_oracle_agrees(check):
    check()
