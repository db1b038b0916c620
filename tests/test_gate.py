"""The accuracy gate's statistics: McNemar's exact test, Wilson intervals, verdicts, correctness bitmasks."""

from __future__ import annotations

import math

import numpy as np
import pytest

from reference import gate


def paired(both: int, b: int, c: int, neither: int) -> tuple[np.ndarray, np.ndarray]:
    """(baseline_correct, new_correct) with the given counts of each agreement pattern, shuffled."""
    baseline = np.array([1] * both + [1] * b + [0] * c + [0] * neither, dtype=bool)
    new = np.array([1] * both + [0] * b + [1] * c + [0] * neither, dtype=bool)
    order = np.random.default_rng(0).permutation(len(baseline))
    return baseline[order], new[order]


@pytest.mark.parametrize(
    ("b", "c", "expected"),
    [
        (0, 0, 1.0),  # no discordant pairs: no evidence
        (5, 0, 0.5**5),  # P(X <= 0 | n=5)
        (7, 0, 0.5**7),
        (10, 2, (1 + 12 + 66) / 2**12),  # P(X <= 2 | n=12)
        (3, 3, (1 + 6 + 15 + 20) / 2**6),  # P(X <= 3 | n=6)
        (0, 4, 1.0),  # only improvements
    ],
)
def test_mcnemar_exact_matches_hand_computed_binomial_tails(b, c, expected):
    baseline, new = paired(400, b, c, 30)
    found_b, found_c, p = gate.mcnemar_exact(baseline, new)
    assert (found_b, found_c) == (b, c)
    assert p == pytest.approx(expected, rel=1e-12)


def test_wilson_interval_matches_the_closed_form():
    k, n, z = 437, 450, 1.959963984540054
    phat = k / n
    center = (phat + z**2 / (2 * n)) / (1 + z**2 / n)
    half = z / (1 + z**2 / n) * math.sqrt(phat * (1 - phat) / n + z**2 / (4 * n**2))
    low, high = gate.accuracy_interval(k, n)
    assert (low, high) == pytest.approx((center - half, center + half), abs=1e-9)


def test_wilson_interval_of_a_perfect_score_stays_inside_0_1():
    low, high = gate.accuracy_interval(200, 200)
    assert 0.98 < low < 1.0 and high == pytest.approx(1.0)


def test_a_significant_drop_is_a_regression():
    baseline, new = paired(420, 8, 0, 22)
    result = gate.gate(new, baseline, floor=0.5)
    assert result.verdict == gate.REGRESSION and result.failed
    assert result.discordant == (8, 0) and result.p_value == pytest.approx(0.5**8)
    assert result.delta == pytest.approx(-8 / 450)


def test_a_drop_inside_noise_passes():
    baseline, new = paired(420, 5, 0, 25)  # p = 1/32 > 0.01
    result = gate.gate(new, baseline, floor=0.5)
    assert result.verdict == gate.PASS and not result.failed


def test_an_improvement_passes():
    baseline, new = paired(400, 0, 20, 30)
    assert gate.gate(new, baseline, floor=0.5).verdict == gate.PASS


def test_the_floor_is_enforced_with_and_without_a_baseline():
    baseline, new = paired(100, 0, 0, 100)  # accuracy 0.5, identical to baseline
    assert gate.gate(new, baseline, floor=0.6).verdict == gate.BELOW_FLOOR
    assert gate.gate(new, None, floor=0.6).verdict == gate.BELOW_FLOOR


def test_no_baseline_passes_and_reports_no_comparison():
    result = gate.gate(np.ones(10, dtype=bool), None, floor=0.9)
    assert result.verdict == gate.NO_BASELINE and not result.failed
    assert result.baseline is None and result.p_value is None and result.delta is None


def test_a_baseline_of_another_test_set_size_is_a_mismatch():
    result = gate.gate(np.ones(10, dtype=bool), np.ones(12, dtype=bool), floor=None)
    assert result.verdict == gate.MISMATCH and result.failed


@pytest.mark.parametrize("n", [1, 7, 8, 9, 450, 10000])
def test_correctness_bitmask_round_trips(n):
    correct = np.random.default_rng(n).random(n) < 0.9
    text = gate.encode_correct(correct)
    assert len(text) == 2 * math.ceil(n / 8)
    np.testing.assert_array_equal(gate.decode_correct(text, n), correct)


def test_correctness_bitmask_of_the_wrong_length_is_rejected():
    text = gate.encode_correct(np.ones(16, dtype=bool))
    with pytest.raises(ValueError, match="does not encode 9 examples"):
        gate.decode_correct(text, 9)
    with pytest.raises(ValueError, match="does not encode 20 examples"):
        gate.decode_correct(text, 20)
