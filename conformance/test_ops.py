"""Op conformance: every entry of the op table against torch, for random configurations, per dtype and device.

Forward output, the gradient of every input and parameter, and BatchNorm's running statistics and
num_batches_tracked are compared with the op's row of conformance/tolerances.py; in float32 our error
against a float64 result must also stay within the budget set by torch's own float32 error.
"""

from __future__ import annotations

import pytest
from hypothesis import assume, given, note
from hypothesis import strategies as st

from reference.testing.strategies import seeds

from .harness import assert_matches_torch, reproduction
from .ops import OPS

DEVICES = ["cpu", pytest.param("cuda", marks=pytest.mark.cuda)]
CASES = [pytest.param(op, dtype, id=f"{op.name}-{dtype}") for op in OPS for dtype in op.dtypes]


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize(("op", "dtype"), CASES)
@given(data=st.data())
def test_op_matches_torch(op, dtype, device, data):
    config = data.draw(op.configs(), label="config")
    seed = data.draw(seeds, label="seed")
    if op.well_posed is not None:
        assume(op.well_posed(config, dtype))
    note(reproduction(op.name, config, seed, dtype, device))
    assert_matches_torch(op, config, seed, dtype, device)
