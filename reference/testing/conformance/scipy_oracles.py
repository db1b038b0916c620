"""Independent oracles from SciPy for convolution and pooling, float64, over every torch.nn argument.

- `scipy_conv2d` / `scipy_conv2d_backward`: convolution and its gradients from `scipy.signal.correlate` and
  `convolve`, group by group, with the kernel dilated by inserting zeros, the stride by subsampling (forward)
  or zero-insertion (backward), and the padding modes by `np.pad` (its adjoint folds each padded pixel's
  gradient onto the pixel it copies with `np.add.at`); 'same' puts the odd pixel of d (k - 1) after, as torch.
- `scipy_max_pool2d`: `scipy.ndimage.maximum_filter` with a dilated footprint anchored at the window's
  top-left, -inf padding (ceil_mode's last window: more -inf on the bottom/right).
- `scipy_avg_pool2d`: window sums as a correlation with a box, divided by `divisor_override` or by the same
  correlation of an indicator of what counts (the padded input with count_include_pad, the input without).
Output sizes come from `reference.testing.strategies.window_output_size` (the tests' own copy of torch's formula).
Unbatched (C, H, W) configurations run as a batch of one. Each oracle judges the results the op tier's runner
got from the implementation (`runners.layer_ours`), so this module needs nothing of the engine above it.
"""

from __future__ import annotations

import numpy as np
import scipy.ndimage
import scipy.signal

from reference.testing.compare import Where, assert_close
from reference.testing.strategies import pair, window_output_size

from .tolerances import SCIPY
from .verdicts import as_result

NP_PAD_MODES = {"zeros": "constant", "reflect": "reflect", "replicate": "edge", "circular": "wrap"}


def conv_sides(kwargs: dict, kernel) -> list[tuple[int, int]]:
    """Per-axis (before, after) padding of a Conv2d configuration: int/pair, 'valid' or 'same'."""
    padding = kwargs.get("padding", 0)
    if padding == "valid":
        return [(0, 0), (0, 0)]
    if padding == "same":
        totals = [d * (k - 1) for k, d in zip(kernel, pair(kwargs.get("dilation", 1)), strict=True)]
        return [(total // 2, total - total // 2) for total in totals]
    return [(p, p) for p in pair(padding)]


def _dilated(weight, dilation):
    """The kernel (O, C, kh, kw) with d - 1 zeros between its taps: a dilated correlation is a plain one with it."""
    (dh, dw), (o, c, kh, kw) = dilation, weight.shape
    spread = np.zeros((o, c, dh * (kh - 1) + 1, dw * (kw - 1) + 1), dtype=weight.dtype)
    spread[:, :, ::dh, ::dw] = weight
    return spread


def scipy_conv2d(x, weight, bias, stride, sides, dilation=(1, 1), groups=1, mode="zeros"):
    """(N, C, H, W) * (O, C/G, kh, kw): each output map a 3-D 'valid' correlation over its group's channels."""
    (sh, sw), kernel = stride, _dilated(weight, dilation)
    xp = np.pad(x, ((0, 0), (0, 0), *sides), mode=NP_PAD_MODES[mode])
    per_group, outputs = x.shape[1] // groups, weight.shape[0] // groups
    out = np.stack([np.stack([scipy.signal.correlate(xp[n, o // outputs * per_group:][:per_group], kernel[o],
                                                     mode="valid", method="direct")[0]
                              for o in range(weight.shape[0])]) for n in range(x.shape[0])])
    out = out[:, :, ::sh, ::sw]
    return out if bias is None else out + bias.reshape(1, -1, 1, 1)


def _fold(grad_padded, size, sides, mode):
    """Adjoint of np.pad along the last two axes: each padded pixel's gradient onto the input pixel it copies."""
    for axis, (length, (before, after)) in enumerate(zip(size, sides, strict=True), start=2):
        source = np.pad(np.arange(length), (before, after), mode=NP_PAD_MODES[mode]) if mode != "zeros" else \
            np.r_[np.full(before, -1), np.arange(length), np.full(after, -1)]  # -1: a zero pad, no source
        folded = np.zeros(grad_padded.shape[:axis] + (length,) + grad_padded.shape[axis + 1:])
        kept = source >= 0
        index = (slice(None),) * axis + (source[kept],)
        np.add.at(folded, index, np.compress(kept, grad_padded, axis=axis))
        grad_padded = folded
    return grad_padded


def scipy_conv2d_backward(x, weight, grad_out, stride, sides, dilation=(1, 1), groups=1, mode="zeros"):
    """(grad_x, grad_weight, grad_bias): grad_w = correlate(x_padded, g on the stride-1 grid) at the dilated taps,
    grad_x = fold(convolve(g on the stride-1 grid, dilated kernel))."""
    (sh, sw), kernel = stride, _dilated(weight, dilation)
    xp = np.pad(x, ((0, 0), (0, 0), *sides), mode=NP_PAD_MODES[mode])
    n_batch, o_out = x.shape[0], weight.shape[0]
    g = np.zeros((n_batch, o_out, xp.shape[2] - kernel.shape[2] + 1, xp.shape[3] - kernel.shape[3] + 1))
    g[:, :, ::sh, ::sw] = grad_out
    per_group, outputs = x.shape[1] // groups, o_out // groups

    def channel(o, c):
        return o // outputs * per_group + c  # input channel c of output o's group

    grad_kernel = np.array([[sum(scipy.signal.correlate(xp[n, channel(o, c)], g[n, o], mode="valid", method="direct")
                                 for n in range(n_batch)) for c in range(per_group)] for o in range(o_out)])
    grad_xp = np.zeros_like(xp)
    for n in range(n_batch):
        for o in range(o_out):
            for c in range(per_group):
                grad_xp[n, channel(o, c)] += scipy.signal.convolve(g[n, o], kernel[o, c], mode="full", method="direct")
    (dh, dw) = dilation
    return (_fold(grad_xp, x.shape[2:], sides, mode), grad_kernel[:, :, ::dh, ::dw],
            grad_out.sum(axis=(0, 2, 3)))


def _pool_geometry(kwargs: dict, size):
    """(kernel, stride, dilation, output size, per-axis (before, after) padding reaching ceil_mode's last window)."""
    kernel = pair(kwargs["kernel_size"])
    stride = kernel if kwargs.get("stride") is None else pair(kwargs["stride"])
    padding, dilation = pair(kwargs.get("padding", 0)), pair(kwargs.get("dilation", 1))
    out = [window_output_size(*axis, kwargs.get("ceil_mode", False))
           for axis in zip(size, kernel, stride, padding, dilation, strict=True)]
    sides = [(p, max(p, (o - 1) * s + d * (k - 1) + 1 - n - p))
             for n, k, s, p, d, o in zip(size, kernel, stride, padding, dilation, out, strict=True)]
    return kernel, stride, dilation, out, sides


def _subsampled(filtered, stride, out):
    (sh, sw), (ho, wo) = stride, out
    return filtered[:, :, : sh * (ho - 1) + 1 : sh, : sw * (wo - 1) + 1 : sw]


def scipy_max_pool2d(x, kwargs: dict):
    """Max over (dilated) windows: scipy.ndimage.maximum_filter with a footprint anchored at the top-left."""
    kernel, stride, dilation, out, sides = _pool_geometry(kwargs, x.shape[2:])
    xp = np.pad(x, ((0, 0), (0, 0), *sides), constant_values=-np.inf)
    spans = [d * (k - 1) + 1 for k, d in zip(kernel, dilation, strict=True)]
    footprint = np.zeros((1, 1, *spans), dtype=bool)
    footprint[:, :, :: dilation[0], :: dilation[1]] = True
    filtered = scipy.ndimage.maximum_filter(xp, footprint=footprint, origin=(0, 0, -(spans[0] // 2), -(spans[1] // 2)),
                                            mode="constant", cval=-np.inf)
    return _subsampled(filtered, stride, out)


def scipy_avg_pool2d(x, kwargs: dict):
    """Window sums (a box correlation) over divisor_override, or over the count of the window's pixels that torch
    counts: the same correlation of an indicator of the padded input (count_include_pad) or of the input."""
    kernel, stride, _, out, sides = _pool_geometry(kwargs, x.shape[2:])
    n, c = x.shape[:2]
    box = np.ones((1, *kernel))
    xp = np.pad(x, ((0, 0), (0, 0), *sides))
    windows = scipy.signal.correlate(xp.reshape(n * c, *xp.shape[2:]), box, mode="valid", method="direct")
    sums = _subsampled(windows.reshape(n, c, *windows.shape[1:]), stride, out)
    if kwargs.get("divisor_override") is not None:
        return sums / kwargs["divisor_override"]
    counted = np.zeros((1, *xp.shape[2:]))
    (top, _), (left, _) = sides
    h, w = x.shape[2:]
    if kwargs.get("count_include_pad", True):
        ph, pw = pair(kwargs.get("padding", 0))
        counted[:, : h + 2 * ph, : w + 2 * pw] = 1.0
    else:
        counted[:, top : top + h, left : left + w] = 1.0
    counts = scipy.signal.correlate(counted, box, mode="valid", method="direct")[None]
    return sums / _subsampled(counts, stride, out)


def _batched(array, unbatched: bool):
    return array[None] if unbatched else array


def conv2d_matches_scipy(results: dict, cfg, data: dict, where: Where) -> None:
    """The implementation's Conv2d `results` on the case `data` (float64: forward and every gradient) against
    scipy.signal.correlate / convolve (gradients only where the implementation has a backward)."""
    unbatched = len(cfg.input_shape) == 3
    x, grad_out, state = _batched(data["x"], unbatched), _batched(data["grad_out"], unbatched), data["state"]
    k = cfg.kwargs
    weight = state["weight"]
    geometry = (pair(k.get("stride", 1)), conv_sides(k, weight.shape[2:]), pair(k.get("dilation", 1)),
                k.get("groups", 1), k.get("padding_mode", "zeros"))
    expected = {"forward": scipy_conv2d(x, weight, state.get("bias"), *geometry)}
    if "grad[input]" in results:
        expected["grad[input]"], expected["grad[weight]"], bias = scipy_conv2d_backward(x, weight, grad_out, *geometry)
        if "bias" in state:
            expected["grad[bias]"] = bias
    for key, value in expected.items():
        value = value[0] if unbatched and key in ("forward", "grad[input]") else value  # back to (C, H, W)
        assert_close(as_result(results[key], value, key), value, SCIPY, where, f"scipy {key}")


SCIPY_POOLS = {"MaxPool2d": scipy_max_pool2d, "AvgPool2d": scipy_avg_pool2d}


def pool2d_matches_scipy(results: dict, cfg, data: dict, where: Where) -> None:
    """The implementation's MaxPool2d / AvgPool2d forward (float64) against scipy.ndimage.maximum_filter / a box
    correlation."""
    unbatched = len(cfg.input_shape) == 3
    expected = SCIPY_POOLS[cfg.layer](_batched(data["x"], unbatched), cfg.kwargs)
    expected = expected[0] if unbatched else expected
    assert_close(as_result(results["forward"], expected, "forward"), expected, SCIPY, where, "scipy forward")
