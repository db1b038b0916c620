"""The accuracy gate: McNemar's exact test on paired per-example correctness, intervals, and the verdict.

Pure functions of arrays and numbers; the baseline files and the training live elsewhere.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.stats import binomtest

ALPHA = 0.01  # a drop below baseline is a regression when McNemar's one-sided p is below this
CONFIDENCE = 0.95

PASS = "pass"
NO_BASELINE = "no-baseline"
REGRESSION = "regression"
BELOW_FLOOR = "below-floor"
MISMATCH = "baseline-mismatch"
FAILING = (REGRESSION, BELOW_FLOOR, MISMATCH)


@dataclass(frozen=True)
class GateResult:
    """The verdict on one run and the numbers behind it (baseline fields None without a baseline)."""

    verdict: str
    accuracy: float
    n_test: int
    ci_low: float
    ci_high: float
    floor: float | None
    baseline: float | None = None
    delta: float | None = None
    p_value: float | None = None
    discordant: tuple[int, int] | None = None  # (b, c): baseline-only right, new-only right

    @property
    def failed(self) -> bool:
        return self.verdict in FAILING


def accuracy_interval(n_correct: int, n: int, confidence: float = CONFIDENCE) -> tuple[float, float]:
    """Wilson score interval of an accuracy `n_correct / n`."""
    ci = binomtest(int(n_correct), int(n)).proportion_ci(confidence_level=confidence, method="wilson")
    return float(ci.low), float(ci.high)


def mcnemar_exact(baseline_correct: np.ndarray, new_correct: np.ndarray) -> tuple[int, int, float]:
    """(b, c, p): b = baseline right / new wrong, c = baseline wrong / new right, one-sided p of "new is worse"."""
    baseline_correct = np.asarray(baseline_correct, dtype=bool)
    new_correct = np.asarray(new_correct, dtype=bool)
    b = int(np.sum(baseline_correct & ~new_correct))
    c = int(np.sum(~baseline_correct & new_correct))
    p = 1.0 if b + c == 0 else float(binomtest(c, b + c, 0.5, alternative="less").pvalue)
    return b, c, p


def gate(new_correct: np.ndarray, baseline_correct: np.ndarray | None, floor: float | None,
         alpha: float = ALPHA) -> GateResult:
    """Verdict on a run: below-floor beats everything, then regression (lower and p < alpha), then pass."""
    new_correct = np.asarray(new_correct, dtype=bool)
    n = len(new_correct)
    accuracy = float(new_correct.mean())
    low, high = accuracy_interval(int(new_correct.sum()), n)
    below_floor = floor is not None and accuracy < floor
    if baseline_correct is None:
        return GateResult(BELOW_FLOOR if below_floor else NO_BASELINE, accuracy, n, low, high, floor)
    baseline_correct = np.asarray(baseline_correct, dtype=bool)
    if len(baseline_correct) != n:
        return GateResult(MISMATCH, accuracy, n, low, high, floor)
    baseline = float(baseline_correct.mean())
    b, c, p = mcnemar_exact(baseline_correct, new_correct)
    if below_floor:
        verdict = BELOW_FLOOR
    elif accuracy < baseline and p < alpha:
        verdict = REGRESSION
    else:
        verdict = PASS
    return GateResult(verdict, accuracy, n, low, high, floor, baseline, accuracy - baseline, p, (b, c))


def encode_correct(correct: np.ndarray) -> str:
    """Per-example correctness as hex: bit i of the packed bytes (most significant first) is example i."""
    return np.packbits(np.asarray(correct, dtype=bool)).tobytes().hex()


def decode_correct(text: str, n: int) -> np.ndarray:
    """The boolean (n,) vector `encode_correct` wrote."""
    bits = np.unpackbits(np.frombuffer(bytes.fromhex(text), dtype=np.uint8))
    if len(bits) != 8 * ((n + 7) // 8) or bits[n:].any():
        raise ValueError(f"correctness bitmask of {len(bits)} bits does not encode {n} examples")
    return bits[:n].astype(bool)
