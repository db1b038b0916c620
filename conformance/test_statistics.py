"""Statistics conformance: what the implementation draws at random against torch's distributions (dropout's keep
rate and whole-channel masks, each layer's initial parameters), by binomial and Kolmogorov-Smirnov tests with a
stated false-alarm rate (reference.testing.conformance.statistics)."""

CONFORMANCE_TIERS = ("statistics",)


def test_draws_match_torch_in_distribution(check):
    check()
