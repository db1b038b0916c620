"""Op conformance: every subject of the op database against torch, for random configurations, per dtype and device.

Forward output, the gradient of every input and parameter, and BatchNorm's running statistics and
num_batches_tracked are compared with the subject's tolerance; in float32 the error against a float64 result
must also stay within the budget set by torch's own float32 error.
"""

CONFORMANCE_TIERS = ("op",)


def test_op_matches_torch(check):
    check()
