"""Central finite differences in float64 against a module's manual backward.

The loss is L = sum(module(x) * w) with w a fixed random array, so the upstream gradient is w itself and
every output element matters. The error of one tensor (the input or a parameter) is

    relative_error(a, n, allowance) = max_i max(|a_i - n_i| - allowance_i, 0) / max(max|a|, max|n|, 1e-12)

over the coordinates checked: the worst disagreement, scaled by the gradient's largest entry (so tiny
entries of a large gradient are not judged on their own). `allowance` discounts the central differences'
own rounding error: L is rounded to about eps_mach * sum|out * w|, so a difference quotient with step h
is uncertain by that over h, and by up to ~25 times that in a deep network (measured on resnet18 with
training-mode BatchNorm); we allow NOISE_FACTOR = 50 times it. Without it a gradient that is exactly zero (a conv
bias feeding a training-mode BatchNorm) would be judged on pure rounding noise. Equivalently:
|a_i - n_i| <= allowance_i + tol * max(|a|, |n|) for every coordinate, like `allclose`.

ReLU kinks and max-pool switches make networks only piecewise smooth: a kink within h of the point spoils
the central difference, while a smaller h means more rounding. So the quotient is taken with the steps
1e-5, 1e-6, 1e-7 in turn, and the first one that the next finer step confirms (the two agree within the
finer one's allowance) is used, with that allowance; where none is confirmed, the finest is used. The
choice never looks at the analytic gradient.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

TINY = 1e-12  # floor of the scale in relative_error
NOISE_FACTOR = 50  # allowance = NOISE_FACTOR * eps_mach * sum|out * w| / step (resnet18 in training mode shows ~25)
STEPS = (1e-5, 1e-6, 1e-7)  # central difference steps, coarse to fine


def relative_error(analytic: np.ndarray, numeric: np.ndarray, allowance=0.0) -> float:
    """max(|a - n| - allowance, 0) / max(max |a|, max |n|, 1e-12): 0 for identical arrays, ~1 for unrelated ones."""
    analytic, numeric = np.asarray(analytic, dtype=np.float64), np.asarray(numeric, dtype=np.float64)
    if analytic.size == 0:
        return 0.0
    scale = max(np.abs(analytic).max(), np.abs(numeric).max(), TINY)
    return float(np.maximum(np.abs(analytic - numeric) - allowance, 0.0).max() / scale)


def loss_rounding(out: np.ndarray, weights: np.ndarray) -> float:
    """NOISE_FACTOR times the rounding error of L = sum(out * w) (divide by a step for a quotient's)."""
    return NOISE_FACTOR * np.finfo(np.float64).eps * float(np.abs(out * weights).sum())


def numerical_gradient(f: Callable[[], float], array: np.ndarray, indices: np.ndarray, eps: float = 1e-6):
    """(f(a + eps e_i) - f(a - eps e_i)) / (2 eps) for each flat index i of `array` (perturbed in place, restored)."""
    if array.dtype != np.float64:
        raise TypeError(f"numerical_gradient needs float64 arrays, got {array.dtype}")
    grads = np.empty(len(indices))
    for k, index in enumerate(indices):
        grads[k] = _central_difference(f, array, index, eps)[0]
    return grads


def _central_difference(f, array, index, eps) -> tuple[float, float, float]:
    """(central difference quotient, f(a + eps e_i), f(a - eps e_i)), leaving `array` as it was."""
    original = array.flat[index]
    array.flat[index] = original + eps
    f_plus = float(f())
    array.flat[index] = original - eps
    f_minus = float(f())
    array.flat[index] = original
    return (f_plus - f_minus) / (2 * eps), f_plus, f_minus


def guarded_numerical_gradient(f, array, indices, rounding: float, steps=STEPS):
    """Central differences at `indices` with the first step the next finer one confirms (module docstring).

    `rounding` is the allowed rounding error of f. Returns the estimates and their allowances (rounding / step
    of the confirming, finer quotient; or of the finest step where no two successive ones agree)."""
    grads, allowances = np.empty(len(indices)), np.empty(len(indices))
    for k, index in enumerate(indices):
        coarse = _central_difference(f, array, index, steps[0])[0]
        for step in steps[1:]:
            finer = _central_difference(f, array, index, step)[0]
            if abs(finer - coarse) <= rounding / step:
                break
            coarse = finer
        grads[k], allowances[k] = coarse, rounding / step
    return grads, allowances


@dataclass(frozen=True)
class GradientCheck:
    """The comparison for one tensor: its name, the coordinates checked, both gradients and the allowances."""

    name: str
    indices: np.ndarray
    analytic: np.ndarray
    numeric: np.ndarray
    allowance: np.ndarray | float = 0.0

    @property
    def error(self) -> float:
        return relative_error(self.analytic, self.numeric, self.allowance)

    def describe(self) -> str:
        if not self.indices.size:
            return f"{self.name}: no coordinates"
        excess = np.abs(self.analytic - self.numeric) - self.allowance
        worst = int(np.argmax(excess))
        allowance = np.broadcast_to(self.allowance, self.indices.shape)[worst]
        return (f"{self.name}: relative error {self.error:.3e} over {self.indices.size} coordinates (worst at flat "
                f"index {self.indices[worst]}: analytic {self.analytic[worst]:.9e}, numeric "
                f"{self.numeric[worst]:.9e}, rounding allowance {allowance:.1e})")


def _pick(size: int, max_coords: int | None, rng: np.random.Generator) -> np.ndarray:
    if max_coords is None or size <= max_coords:
        return np.arange(size)
    return np.sort(rng.choice(size, max_coords, replace=False))


def check_module_gradients(module, x: np.ndarray, *, seed: int = 0, steps=STEPS,
                           max_coords: int | None = None, before_forward: Callable[[], None] | None = None,
                           ) -> list[GradientCheck]:
    """Compare module.backward with central differences for the input and every parameter (float64 only).

    `max_coords` checks a random subset of that many coordinates per tensor; `before_forward` runs before
    every forward (e.g. to re-seed a dropout generator so each evaluation draws the same mask).
    """
    if x.dtype != np.float64 or any(p.dtype != np.float64 for p in module.parameters()):
        raise TypeError("check_module_gradients needs a float64 input and a float64 module (module.double())")
    rng = np.random.default_rng(seed)
    x = x.copy()

    def forward() -> np.ndarray:
        if before_forward is not None:
            before_forward()
        return module(x)

    out = forward()
    weights = rng.standard_normal(out.shape)
    module.zero_grad()
    grad_x = module.backward(weights.copy())

    def loss() -> float:
        return float(np.sum(forward() * weights))

    rounding = loss_rounding(out, weights)
    tensors = [("input", x, grad_x)]
    for name, param in module.named_parameters():
        grad = np.zeros_like(param.data) if param.grad is None else param.grad
        tensors.append((name, param.data, grad))
    checks = []
    for name, array, grad in tensors:
        indices = _pick(array.size, max_coords, rng)
        numeric, allowance = guarded_numerical_gradient(loss, array, indices, rounding, steps)
        checks.append(GradientCheck(name, indices, grad.reshape(-1)[indices].copy(), numeric, allowance))
    return checks


def assert_gradients_match(module, x: np.ndarray, *, tol: float = 1e-6, context: str = "", **kwargs) -> None:
    """Fail with one line per tensor when any relative error (see `relative_error`) exceeds `tol`."""
    checks = check_module_gradients(module, x, **kwargs)
    if any(not check.error <= tol for check in checks):  # `not <=` also catches NaN
        lines = "\n".join(("  FAIL " if not c.error <= tol else "  ok   ") + c.describe() for c in checks)
        raise AssertionError(f"gradient check {context} (tolerance {tol:.0e}):\n{lines}")
