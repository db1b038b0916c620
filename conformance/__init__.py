"""NumPy-against-PyTorch conformance suite: op table, model twins, trajectories, oracles, one tolerance table."""
