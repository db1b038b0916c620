"""The accuracy gate: new runs against the distribution of their baseline's runs, intervals, and the verdict.

Pure functions of arrays and numbers; the baseline files and the training live elsewhere.

Under "same code" (another seed, machine, BLAS kernel or thread count), a run's number of correct test
examples c is one more draw from the distribution the baseline's K runs c_1..c_K came from. Counts near
n are skewed (errors are rare events), so the gate works on Anscombe's variance-stabilized scale
y = asin(sqrt((c + 3/8) / (n + 3/4))), where a binomial count has sd 1/(2 sqrt(n)) whatever its accuracy and
the tails are close to normal. With m and s the mean and sample sd of the baseline runs' y (s at least the
binomial 1/(2 sqrt(n)): a few runs can agree by chance), S new runs (seeds) whose mean y is ȳ are a
regression when ȳ < m - z * s * sqrt(1/S + 1/K), z = Phi^-1(1 - ALPHA): a one-sided prediction bound
(sqrt(1/S + 1/K) carries the uncertainty of both means) with false-alarm rate about ALPHA per gated run.
More seeds on either side buy power. `calibration` measures it on real runs.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy.stats import binomtest, norm

ALPHA = 1e-3  # one-sided false-alarm rate of the regression bound per run
CONFIDENCE = 0.95

PASS = "pass"
NO_BASELINE = "no-baseline"
REGRESSION = "regression"
BELOW_FLOOR = "below-floor"
MISMATCH = "baseline-mismatch"
FAILING = (REGRESSION, BELOW_FLOOR, MISMATCH, NO_BASELINE)


@dataclass(frozen=True)
class GateResult:
    """The verdict on one run and the numbers behind it (baseline fields None without a baseline)."""

    verdict: str
    accuracy: float
    n_test: int
    ci_low: float
    ci_high: float
    floor: float | None
    baseline: float | None = None  # mean accuracy of the baseline's runs
    baseline_sd: float | None = None  # sample sd of the baseline runs' accuracies
    baseline_runs: int | None = None
    threshold: float | None = None  # the regression bound as an accuracy (exact for one run, about for S)
    delta: float | None = None  # accuracy - baseline
    p_value: float | None = None  # one-sided: how likely a run of the baseline's distribution scores this low
    newly_wrong: int | None = None  # test examples every baseline run got right and every new run got wrong

    @property
    def failed(self) -> bool:
        return self.verdict in FAILING


def accuracy_interval(n_correct: int, n: int, confidence: float = CONFIDENCE) -> tuple[float, float]:
    """Wilson score interval of an accuracy `n_correct / n`."""
    ci = binomtest(int(n_correct), int(n)).proportion_ci(confidence_level=confidence, method="wilson")
    return float(ci.low), float(ci.high)


def stabilized(counts, n: int):
    """Anscombe's arcsine transform of correct counts out of n: binomial sd 1/(2 sqrt(n)) at any accuracy."""
    return np.arcsin(np.sqrt((np.asarray(counts, dtype=float) + 0.375) / (n + 0.75)))


def spread(counts: np.ndarray, n: int):
    """The spread the gate assumes, on the stabilized scale: the runs' sample sd, at least the binomial one.
    `counts` (..., K): one spread per row."""
    values = stabilized(counts, n)
    sample = values.std(axis=-1, ddof=1) if values.shape[-1] > 1 else np.zeros(values.shape[:-1])
    return np.maximum(sample, 0.5 / math.sqrt(n))[()]


def regression_bound(counts: np.ndarray, n: int, alpha: float = ALPHA, runs: int = 1):
    """(mean, spread, lowest passing mean y of `runs` new runs) of the one-sided prediction bound at false-alarm
    rate alpha, on the stabilized scale (one per row of `counts` (..., K)); `lowest_count` turns the bound back
    into a count."""
    counts = np.asarray(counts)
    mean, sd = stabilized(counts, n).mean(axis=-1)[()], spread(counts, n)
    return mean, sd, mean + norm.ppf(alpha) * sd * math.sqrt(1.0 / runs + 1.0 / counts.shape[-1])


def lowest_count(bound: float, n: int) -> int:
    """The smallest correct count whose stabilized value is at least `bound`."""
    count = max(0, math.ceil((n + 0.75) * math.sin(max(bound, 0.0)) ** 2 - 0.375))
    while count > 0 and stabilized(count - 1, n) >= bound:
        count -= 1
    while count <= n and stabilized(count, n) < bound:
        count += 1
    return count


def gate(new_correct: np.ndarray, baseline_runs: np.ndarray | None, floor: float | None,
         alpha: float = ALPHA) -> GateResult:
    """Verdict on S new runs, (n,) or (S, n) correctness, against (K, n) baseline correctness: below-floor
    (their mean accuracy), regression (their mean stabilized accuracy), pass (or no baseline)."""
    new_correct = np.atleast_2d(np.asarray(new_correct, dtype=bool))
    runs, n = new_correct.shape
    counts_new = new_correct.sum(axis=1)
    accuracy = float(counts_new.mean()) / n
    low, high = accuracy_interval(int(counts_new.sum()), runs * n)
    below_floor = floor is not None and accuracy < floor
    if baseline_runs is None:
        return GateResult(BELOW_FLOOR if below_floor else NO_BASELINE, accuracy, n, low, high, floor)
    baseline_runs = np.atleast_2d(np.asarray(baseline_runs, dtype=bool))
    if baseline_runs.shape[1] != n:
        return GateResult(MISMATCH, accuracy, n, low, high, floor)
    counts = baseline_runs.sum(axis=1)
    mean, sd, bound = (float(value) for value in regression_bound(counts, n, alpha, runs))
    observed = float(stabilized(counts_new, n).mean())
    p = float(norm.cdf((observed - mean) / (sd * math.sqrt(1.0 / runs + 1.0 / len(counts)))))
    newly_wrong = int(np.sum(baseline_runs.all(axis=0) & ~new_correct.any(axis=0)))
    if below_floor:
        verdict = BELOW_FLOOR
    elif observed < bound:
        verdict = REGRESSION
    else:
        verdict = PASS
    accuracies = counts / n
    baseline_sd = float(accuracies.std(ddof=1)) if len(counts) > 1 else 0.0
    return GateResult(verdict, accuracy, n, low, high, floor, float(accuracies.mean()), baseline_sd, len(counts),
                      lowest_count(bound, n) / n, accuracy - float(accuracies.mean()), p, newly_wrong)


def encode_correct(correct: np.ndarray) -> str:
    """Per-example correctness as hex: bit i of the packed bytes (most significant first) is example i."""
    return np.packbits(np.asarray(correct, dtype=bool)).tobytes().hex()


def decode_correct(text: str, n: int) -> np.ndarray:
    """The boolean (n,) vector `encode_correct` wrote; ValueError for text that is not such a bitmask."""
    try:
        raw = bytes.fromhex(text)
    except (TypeError, ValueError):
        raise ValueError("correctness bitmask is not a hex string") from None
    bits = np.unpackbits(np.frombuffer(raw, dtype=np.uint8))
    if len(bits) != 8 * ((n + 7) // 8) or bits[n:].any():
        raise ValueError(f"correctness bitmask of {len(bits)} bits does not encode {n} examples")
    return bits[:n].astype(bool)
