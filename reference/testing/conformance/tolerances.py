"""Default tolerances of the conformance engine; rows that differ live on their op or zoo entry, with a reason.

torch.testing.assert_close's defaults are float64 rtol 1e-7 / atol 1e-7 and float32 rtol 1.3e-6 / atol 1e-5.
Every other row says why it differs. Never widen a row to make a red run green without writing the reason.
"""

from __future__ import annotations

from reference.testing.compare import Budget, Tolerance

F64 = Tolerance(1e-7, 1e-7)
F32 = Tolerance(1.3e-6, 1e-5)
DEFAULT = {"float64": F64, "float32": F32}  # the same sums in another order: NumPy's pairwise/BLAS vs torch's kernels
EXACT = Tolerance(0.0, 0.0, "integers (num_batches_tracked, Adam's step) must match exactly")

# float32 error budget: |ours32 - exact64| <= factor * |torch32 - exact64| + floor_ulps * eps32 * max(1, |exact64|).
# The floor (8 float32 ulps of 1) keeps a lucky torch result (within a fraction of an ulp of float64, which
# happens for sums that cancel) from failing an equally sound NumPy result; see Budget's docstring.
DEFAULT_BUDGET = Budget(4.0, 8.0, "NumPy float32 may be at most 4x as far from float64 as torch float32 is, "
                                  "plus 8 ulps of max(1, |result|)")

# Trajectories, float64: 20 optimizer steps compound the per-step differences (measured growth below 2x per step;
# worst gap 2e-13 on simple_cnn + Adam), still far inside torch's float64 default.
# float32 asserts the loss only (see models.run_trajectory): at step 1 with the model's float32 row, then with
# rtol 2e-2, because kink flips (a ReLU input or max-pool near-tie within rounding of its kink, routed
# differently in one framework) are legitimate and SGD with momentum amplifies them: measured a 2.3e-3 relative
# loss gap at step 15 (simple_cnn + SGD; an earlier conv2d summation order) while torch float32's parameters
# stayed within 5e-7 of torch float64's. 2e-2 still catches an update that is off by O(1) (a loss ~2.3 moves
# by ~0.1 in 20 such steps).
TRAJECTORY = {"float64": F64, "float32": Tolerance(2e-2, 1e-5, "loss only: float32 kink flips")}

# Independent oracles, float64 only: scipy.signal.correlate/convolve ('direct' sums) and scipy.ndimage.
SCIPY = F64
# Finite differences (torch.autograd.gradcheck, and the recorded u.J.v version of it): gradcheck's own defaults.
# Central differences with eps 1e-6 in float64 are good to ~1e-9 plus the op's curvature; a wrong gradient is
# off by O(1), so 1e-3 / 1e-5 hides nothing.
GRADCHECK = Tolerance(1e-3, 1e-5, "gradcheck's defaults (finite differences)")


def row(rows, dtype: str) -> Tolerance:
    """The tolerance of `dtype` in a {dtype: Tolerance} mapping (None: torch's defaults)."""
    rows = DEFAULT if rows is None else rows
    if dtype not in rows:
        raise KeyError(f"no tolerance for {dtype}: the entry's rows cover {sorted(rows)}")
    return rows[dtype]
