"""The accuracy gate's statistics: the regression bound against a baseline distribution, its false-alarm rate
and power on simulated runs, Wilson intervals, verdicts, correctness bitmasks."""

from __future__ import annotations

import math

import numpy as np
import pytest

from reference import gate

N = 450  # the digits test set


def runs(counts, n: int = N, seed: int = 0) -> np.ndarray:
    """(K, n) correctness with the given numbers of correct examples, errors at random places."""
    rng = np.random.default_rng(seed)
    rows = np.ones((len(counts), n), dtype=bool)
    for row, count in zip(rows, counts, strict=True):
        row[rng.choice(n, n - count, replace=False)] = False
    return rows


def test_regression_bound_matches_the_closed_form():
    counts = [440, 442, 438, 441, 439]  # they agree more than binomially: the binomial spread is used
    mean, sd, bound = gate.regression_bound(np.array(counts), N, alpha=0.001)
    y = [math.asin(math.sqrt((c + 3 / 8) / (N + 3 / 4))) for c in counts]
    z = 3.090232306167813  # standard normal 0.999 quantile
    assert mean == pytest.approx(sum(y) / 5) and sd == pytest.approx(1 / (2 * math.sqrt(N)))
    assert bound == pytest.approx(mean - z * sd * math.sqrt(1 + 1 / 5))
    lowest = gate.lowest_count(bound, N)
    assert math.asin(math.sqrt((lowest + 3 / 8) / (N + 3 / 4))) >= bound
    assert math.asin(math.sqrt((lowest - 1 + 3 / 8) / (N + 3 / 4))) < bound


def test_spread_is_the_sample_sd_when_runs_disagree_more_than_binomially():
    counts = np.array([440, 420, 445, 430, 415])
    y = np.arcsin(np.sqrt((counts + 3 / 8) / (N + 3 / 4)))
    assert gate.spread(counts, N) == pytest.approx(np.std(y, ddof=1))


def test_a_run_at_the_threshold_passes_and_one_below_it_is_a_regression():
    baseline = runs([440, 442, 438, 441, 439])
    threshold = gate.gate(np.ones(N, bool), baseline, floor=None).threshold
    at = round(threshold * N)
    assert gate.gate(runs([at])[0], baseline, floor=None).verdict == gate.PASS
    below = gate.gate(runs([at - 1])[0], baseline, floor=None)
    assert below.verdict == gate.REGRESSION and below.failed and below.p_value < gate.ALPHA
    assert below.threshold == pytest.approx(threshold) and below.baseline_runs == 5


def simulated_false_alarm_rate(accuracy: float, runs_per_baseline: int, trials: int, seed: int,
                               new_runs: int = 1) -> float:
    """How often new runs drawn from the same binomial distribution as their K baseline runs are flagged."""
    rng = np.random.default_rng(seed)
    baselines = rng.binomial(N, accuracy, size=(trials, runs_per_baseline))
    new = rng.binomial(N, accuracy, size=(trials, new_runs))
    return float(np.mean(gate.stabilized(new, N).mean(axis=1) < gate.regression_bound(baselines, N, runs=new_runs)[2]))


def test_rows_of_counts_get_the_bound_of_each_row():
    rows = np.array([[440, 442, 438, 441, 439], [430, 420, 445, 430, 415]])
    for row, bound in zip(rows, gate.regression_bound(rows, N)[2], strict=True):
        assert bound == pytest.approx(gate.regression_bound(row, N)[2])


@pytest.mark.parametrize(("accuracy", "k"), [(0.977, 5), (0.95, 3), (0.995, 5)])
def test_false_alarm_rate_of_same_distribution_runs_is_at_most_alpha(accuracy, k):
    rate = simulated_false_alarm_rate(accuracy, k, trials=200_000, seed=1)
    assert rate <= gate.ALPHA, rate  # measured 2e-4 to 6e-4; the Monte Carlo sd of the rate is 7e-5


@pytest.mark.parametrize(("drop_se", "low", "high"), [(2, 0.0, 0.15), (5, 0.4, 0.7), (8, 0.9, 1.0)])
def test_power_grows_with_the_drop_in_binomial_standard_errors(drop_se, low, high):
    """Measured power of one run against a 5-run baseline at digits' accuracy: the price of a 0.1% false-alarm
    rate on 450 test images is that a drop is flagged reliably only from about 8 standard errors (5.6 pp)."""
    rng = np.random.default_rng(2)
    p, k, trials = 0.977, 5, 2000
    baselines = rng.binomial(N, p, size=(trials, k))
    new = rng.binomial(N, p - drop_se * math.sqrt(p * (1 - p) / N), size=trials)
    flagged = np.mean(gate.stabilized(new, N) < gate.regression_bound(baselines, N)[2])
    assert low <= flagged <= high, flagged


def test_several_new_runs_are_gated_on_their_mean_with_a_narrower_bound():
    baseline = runs([440, 442, 438, 441, 439, 440, 437, 443, 439, 441])
    one = gate.gate(np.ones(N, bool), baseline, floor=None)
    three = gate.gate(np.ones((3, N), bool), baseline, floor=None)
    assert one.threshold < three.threshold < 440 / N
    mean, sd, bound = gate.regression_bound(baseline.sum(axis=1), N, alpha=gate.ALPHA, runs=3)
    assert bound == pytest.approx(mean - 3.090232306167813 * sd * math.sqrt(1 / 3 + 1 / 10))
    mixed = gate.gate(runs([431, 430, 445], seed=3), baseline, floor=None)  # judged on the mean, not the worst
    assert mixed.verdict == gate.PASS and mixed.accuracy == pytest.approx((431 + 430 + 445) / 3 / N)


def test_false_alarm_rate_of_five_seed_runs_against_twenty_seed_baselines_is_at_most_alpha():
    rate = simulated_false_alarm_rate(0.977, 20, trials=200_000, seed=4, new_runs=5)
    assert rate <= gate.ALPHA, rate


@pytest.mark.parametrize(("drop_se", "low", "high"), [(2, 0.45, 0.75), (3, 0.9, 1.0)])
def test_five_seeds_against_twenty_buy_power(drop_se, low, high):
    """What the tiny models' gate_seeds = 5, baseline_seeds = 20 buy when the spread is binomial (its upper end
    in practice): a drop of 3 binomial standard errors (2.1 points on digits) is flagged about 19 times in 20,
    one of 2 (1.4 points) about 6 in 10 (3 seeds against 10: 7 and 3 in 10)."""
    rng = np.random.default_rng(5)
    trials, p = 2000, 0.977
    drop = drop_se * math.sqrt(p * (1 - p) / N)
    baselines, new = rng.binomial(N, p, size=(trials, 20)), rng.binomial(N, p - drop, size=(trials, 5))
    flagged = np.mean(gate.stabilized(new, N).mean(axis=1) < gate.regression_bound(baselines, N, runs=5)[2])
    assert low <= flagged <= high, flagged


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


def test_an_improvement_passes():
    assert gate.gate(runs([449])[0], runs([430, 431, 429, 432, 430]), floor=0.5).verdict == gate.PASS


def test_the_floor_is_enforced_with_and_without_a_baseline():
    half = runs([225])[0]
    assert gate.gate(half, runs([225, 225, 225]), floor=0.6).verdict == gate.BELOW_FLOOR
    assert gate.gate(half, None, floor=0.6).verdict == gate.BELOW_FLOOR


def test_no_baseline_fails_and_reports_no_comparison():
    result = gate.gate(np.ones(10, dtype=bool), None, floor=0.9)
    assert result.verdict == gate.NO_BASELINE and result.failed
    assert result.baseline is None and result.p_value is None and result.threshold is None


def test_a_baseline_of_another_test_set_size_is_a_mismatch():
    result = gate.gate(np.ones(10, dtype=bool), np.ones((3, 12), dtype=bool), floor=None)
    assert result.verdict == gate.MISMATCH and result.failed


def test_newly_wrong_counts_examples_every_baseline_run_got_right():
    baseline = np.ones((3, 8), dtype=bool)
    baseline[0, 0] = False  # example 0 is not always right
    new = np.array([0, 0, 0, 1, 1, 1, 1, 1], dtype=bool)
    assert gate.gate(new, baseline, floor=None).newly_wrong == 2


@pytest.mark.parametrize("n", [1, 7, 8, 9, 450, 10000])
def test_correctness_bitmask_round_trips(n):
    correct = np.random.default_rng(n).random(n) < 0.9
    text = gate.encode_correct(correct)
    assert len(text) == 2 * math.ceil(n / 8)
    np.testing.assert_array_equal(gate.decode_correct(text, n), correct)


def test_correctness_bitmask_of_the_wrong_length_or_not_hex_is_rejected():
    text = gate.encode_correct(np.ones(16, dtype=bool))
    with pytest.raises(ValueError, match="does not encode 9 examples"):
        gate.decode_correct(text, 9)
    with pytest.raises(ValueError, match="does not encode 20 examples"):
        gate.decode_correct(text, 20)
    with pytest.raises(ValueError, match="not a hex string"):
        gate.decode_correct("zz" + text[2:], 16)
