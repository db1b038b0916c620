"""Input checks shared by the NumPy modules: each error names the layer, what it expected and what it got."""

from __future__ import annotations

import numpy as np

_FLOAT_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))


class StateDictError(ValueError):
    """A state_dict does not fit the module (missing/unexpected keys, wrong shapes or dtypes)."""


def check_float_dtype(layer: str, x, expected: np.dtype | None = None) -> None:
    """Require a float32/float64 ndarray, and the parameters' dtype when `expected` is given."""
    if not isinstance(x, np.ndarray):
        raise TypeError(f"{layer}: expected a numpy.ndarray, got {type(x).__name__}")
    if x.dtype not in _FLOAT_DTYPES:
        raise TypeError(f"{layer}: expected a float32 or float64 array, got dtype {x.dtype}")
    if expected is not None and x.dtype != expected:
        raise TypeError(
            f"{layer}: input dtype {x.dtype} does not match the parameters' dtype {expected}; "
            f"convert the input or call .to(np.{x.dtype}) on the module"
        )


def check_input(
    layer: str,
    x: np.ndarray,
    *,
    ndim: int | None = None,
    min_ndim: int | None = None,
    channels: int | None = None,
) -> None:
    """Check rank, a non-empty batch and the channel (dim 1) count of an input."""
    if ndim is not None and x.ndim != ndim:
        raise ValueError(f"{layer}: expected input of shape {_expected_shape(ndim, channels)}, got {x.shape}")
    if min_ndim is not None and x.ndim < min_ndim:
        raise ValueError(f"{layer}: expected input with at least {min_ndim} dims, got shape {x.shape}")
    if x.shape[0] == 0:
        raise ValueError(f"{layer}: expected a non-empty batch, got shape {x.shape}")
    if channels is not None and x.shape[1] != channels:
        raise ValueError(f"{layer}: expected input of shape {_expected_shape(x.ndim, channels)}, got {x.shape}")


def check_spatial_fits(layer: str, x: np.ndarray, kernel: tuple[int, int], padding: tuple[int, int]) -> None:
    """Require the padded input to be at least as large as the kernel (else the output would be empty)."""
    padded = (x.shape[2] + 2 * padding[0], x.shape[3] + 2 * padding[1])
    if padded[0] < kernel[0] or padded[1] < kernel[1]:
        raise ValueError(
            f"{layer}: input spatial size {x.shape[2:]} with padding {padding} is smaller than "
            f"kernel {kernel}; got input shape {x.shape}"
        )


def check_grad_out(layer: str, grad_out, expected_shape: tuple[int, ...] | None, dtype: np.dtype) -> None:
    """Require backward to follow a forward, with an upstream gradient of the output's shape and dtype."""
    if expected_shape is None:
        raise RuntimeError(f"{layer}.backward called before forward")
    check_float_dtype(f"{layer}.backward", grad_out, dtype)
    if grad_out.shape != expected_shape:
        raise ValueError(
            f"{layer}.backward: expected grad_out of shape {expected_shape} (the forward output), "
            f"got {grad_out.shape}"
        )


def check_positive_int(layer: str, name: str, value) -> None:
    """Constructor check for sizes such as channels or features."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ValueError(f"{layer}: {name} must be a positive int, got {value!r}")


def _expected_shape(ndim: int, channels: int | None) -> str:
    names = {4: ["N", "C", "H", "W"], 2: ["N", "F"]}.get(ndim, ["N"] + [f"d{i}" for i in range(1, ndim)])
    if channels is not None:
        names[1] = str(channels)
    return "(" + ", ".join(names) + ")"
