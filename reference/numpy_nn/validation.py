"""Input checks shared by the NumPy modules: each error names the layer, what it expected and what it got.

`layer` is the name in messages: a string, or the module itself (formatted only when an error is raised, so that
a module's repr costs nothing on the way through)."""

from __future__ import annotations

import numpy as np

_FLOAT_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))


class StateDictError(ValueError):
    """A state_dict does not fit the module (missing/unexpected keys, wrong shapes or dtypes)."""


def check_float_dtype(layer, x, expected: np.dtype | None = None) -> None:
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
    layer,
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
    if x.ndim and x.shape[0] == 0:
        raise ValueError(f"{layer}: expected a non-empty batch, got shape {x.shape}")
    if channels is not None and x.shape[1] != channels:
        raise ValueError(f"{layer}: expected input of shape {_expected_shape(x.ndim, channels)}, got {x.shape}")


def check_spatial_input(layer, x, dtype: np.dtype | None = None, channels: int | None = None) -> None:
    """Require a float (N, C, H, W) or unbatched (C, H, W) array, with `channels` channels when given."""
    check_float_dtype(layer, x, dtype)
    c = "C" if channels is None else str(channels)
    expected = f"expected input of shape (N, {c}, H, W) or ({c}, H, W)"
    if x.ndim not in (3, 4):
        raise ValueError(f"{layer}: {expected}, got {x.shape}")
    if x.ndim == 4 and x.shape[0] == 0:
        raise ValueError(f"{layer}: expected a non-empty batch, got shape {x.shape}")
    if channels is not None and x.shape[-3] != channels:
        raise ValueError(f"{layer}: {expected}, got {x.shape}")


def check_spatial_fits(layer, x: np.ndarray, kernel: tuple[int, int], padding: tuple[int, int],
                       dilation: tuple[int, int] = (1, 1)) -> None:
    """Require the padded input to be at least as large as the (dilated) kernel (else the output would be empty).

    `padding` is (ph, pw) on both sides or per side ((top, bottom), (left, right))."""
    sides = padding if isinstance(padding[0], tuple) else ((padding[0],) * 2, (padding[1],) * 2)
    padded = (x.shape[-2] + sum(sides[0]), x.shape[-1] + sum(sides[1]))
    span = tuple(d * (k - 1) + 1 for k, d in zip(kernel, dilation, strict=True))
    if padded[0] < span[0] or padded[1] < span[1]:
        dilated = f" with dilation {dilation}" if dilation != (1, 1) else ""
        raise ValueError(
            f"{layer}: input spatial size {x.shape[-2:]} with padding {padding} is smaller than "
            f"kernel {kernel}{dilated}; got input shape {x.shape}"
        )


def check_grad_out(layer, grad_out, expected_shape: tuple[int, ...] | None, dtype: np.dtype) -> None:
    """Require backward to follow a forward, with an upstream gradient of the output's shape and dtype."""
    if expected_shape is None:
        raise RuntimeError(f"{layer}.backward called before forward")
    check_float_dtype(f"{layer}.backward", grad_out, dtype)
    if grad_out.shape != expected_shape:
        raise ValueError(
            f"{layer}.backward: expected grad_out of shape {expected_shape} (the forward output), "
            f"got {grad_out.shape}"
        )


def check_positive_int(layer, name: str, value) -> None:
    """Constructor check for sizes such as channels or features."""
    if not is_int(value) or value < 1:
        raise ValueError(f"{layer}: {name} must be a positive int, got {value!r}")


def is_int(value) -> bool:
    """A Python or NumPy integer, not a bool."""
    return isinstance(value, (int, np.integer)) and not isinstance(value, (bool, np.bool_))


def int_pair(layer, name: str, value, minimum: int | None = None, lengths=(1, 2)) -> tuple[int, int]:
    """(a, b) from an int or a tuple/list of `lengths` ints, as torch's 2-D layers read their size arguments."""
    if isinstance(value, (tuple, list)) and len(value) in lengths and is_int(value[0]) and is_int(value[-1]):
        pair = (int(value[0]), int(value[-1]))
    elif is_int(value):
        pair = (int(value), int(value))
    else:
        spelled = " or ".join(map(str, lengths))
        raise TypeError(f"{layer}: {name} must be an int or a tuple of {spelled} ints, got {value!r}")
    if minimum is not None and min(pair) < minimum:
        raise ValueError(f"{layer}: {name} must be >= {minimum}, got {name}={value!r}")
    return pair


def check_choice(layer, name: str, value, choices) -> None:
    """A string option such as reduction or padding_mode: one of `choices`."""
    if not isinstance(value, str) or value not in choices:
        raise ValueError(f"{layer}: {name} must be one of {list(choices)}, got {name}={value!r}")


def check_real(layer, name: str, value, low=-np.inf, high=np.inf, low_open=False) -> float:
    """A real number in [low, high] ((low, high] with low_open), as a float; NaN is always refused."""
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise TypeError(f"{layer}: {name} must be a real number, got {value!r}")
    value = float(value)
    below = value <= low if low_open else value < low
    if np.isnan(value) or below or value > high:
        interval = f"{'(' if low_open else '['}{low}, {high}]"
        raise ValueError(f"{layer}: {name} must be in {interval}, got {name}={value!r}")
    return value


def _expected_shape(ndim: int, channels: int | None) -> str:
    names = {4: ["N", "C", "H", "W"], 2: ["N", "F"]}.get(ndim, ["N"] + [f"d{i}" for i in range(1, ndim)])
    if channels is not None:
        names[1] = str(channels)
    return "(" + ", ".join(names) + ")"


def check_device(layer, device) -> None:
    """torch's `device` argument: None or the CPU, where NumPy runs; any other device is not implemented."""
    if device is not None and str(device) != "cpu":
        raise NotImplementedError(f"{layer}: device={device!r} is not supported (NumPy layers run on the CPU)")
