"""The conformance engine's element-wise statistics (reference.testing.compare.error_stats) against a plain
element-by-element reading of their definitions, and its pass/fail count against torch.isclose."""

from __future__ import annotations

import math

import numpy as np
import torch
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from reference.testing.compare import Tolerance, error_stats

SPECIAL = [0.0, -0.0, 1.0, -2.5, 1e-300, 1e300, math.nan, math.inf, -math.inf]
VALUES = st.one_of(st.sampled_from(SPECIAL), st.floats(-1e6, 1e6))
TOLERANCES = st.sampled_from([Tolerance(1e-7, 1e-7), Tolerance(1.3e-6, 1e-5), Tolerance(1e-3, 0.0)])


@st.composite
def pairs(draw):
    """(actual, expected) of one shape: independent values, or expected nudged by a few ulps or a relative error."""
    expected = draw(hnp.arrays(np.float64, hnp.array_shapes(max_dims=3, max_side=5), elements=VALUES))
    nudge = draw(st.sampled_from(["independent", "ulps", "relative"]))
    if nudge == "independent":
        actual = draw(hnp.arrays(np.float64, expected.shape, elements=VALUES))
    elif nudge == "ulps":
        actual = np.nextafter(expected, math.inf)
    else:
        actual = expected * (1 + draw(st.floats(-1e-3, 1e-3)))
    return actual, expected


def by_element(actual, expected, tol):
    """(max_abs, max_rel, ratio) read off the definitions one element at a time: equal values (NaN with NaN, an
    infinity with itself) differ by 0, others by |a - e| or inf; the relative error counts only nonzero expected
    values and no NaN quotient."""
    diffs, rels, ratios = [0.0], [0.0], [0.0]
    for a, e in zip(actual.ravel().tolist(), expected.ravel().tolist(), strict=True):
        equal = a == e or (math.isnan(a) and math.isnan(e))
        diff = 0.0 if equal else abs(a - e)
        diff = math.inf if math.isnan(diff) else diff
        diffs.append(diff)
        if diff and e and not math.isnan(e) and not (math.isinf(diff) and math.isinf(e)):
            rels.append(diff / abs(e))
        allowed = tol.atol + tol.rtol * abs(e)
        ratios.append(0.0 if diff == 0 else diff / allowed if allowed and math.isfinite(diff) else math.inf)
    return max(diffs), max(rels), max(ratios)


@given(pair=pairs(), tol=TOLERANCES)
def test_error_stats_agree_with_their_definitions_and_torch_isclose(pair, tol):
    actual, expected = pair
    stats = error_stats(actual, expected, tol)
    max_abs, max_rel, ratio = by_element(actual, expected, tol)
    assert (stats.max_abs, stats.size) == (max_abs, actual.size)
    assert stats.max_rel == max_rel
    assert stats.ratio == ratio or math.isclose(stats.ratio, ratio, rel_tol=1e-12)
    close = torch.isclose(torch.from_numpy(actual), torch.from_numpy(expected), rtol=tol.rtol, atol=tol.atol,
                          equal_nan=True)
    assert stats.mismatched == (int((~close).sum()) if ratio > 1.0 else 0)
