"""The project's own conformance suite: the public engine (`reference.testing.conformance`) run on
`--impl` (default `reference.numpy_nn`), tier by tier, plus the tests of the engine's oracles and report."""
