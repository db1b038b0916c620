"""torch's own sample inputs for our ops, run through `reference.numpy_nn`: how much of torch.nn do we accept?

PyTorch describes each operator and module once (OpInfo in `common_methods_invocations.op_db`, ModuleInfo in
`common_modules.module_db`) with generators of sample inputs. Every sample of conv2d, max/avg/adaptive pooling,
batch norm, linear, relu/relu6/hardtanh, cross-entropy, dropout and flatten is run through the NumPy module or
functional that mirrors it, forward and backward (a seeded random upstream gradient), and lands in one bucket:
- `match`: ours and torch agree (forward, every gradient, buffers, indices) within float32/float64 tolerances;
- `mismatch`: ours ran and disagrees: a bug;
- `refused`: ours raised ValueError/TypeError/NotImplementedError naming the layer or function;
- `crashed`: any other exception, or a refusal that does not name the layer: a cryptic crash.
Dropout is random: its samples are judged on shape and statistics only (kept entries scaled by 1 / (1 - p),
whole channels for dropout2d, identity in eval). `torch.testing._internal` is private: where it is missing
(or its test dependency `expecttest` is) the test skips with the reason; it is imported only when the test runs.
"""

from __future__ import annotations

import collections
import sys

import numpy as np
import pytest
import torch

from reference import numpy_nn as nnp
from reference.numpy_nn import functional as F

DTYPES = {"float32": torch.float32, "float64": torch.float64}
TOLERANCE = {"float64": 1e-9, "float32": 1e-4}  # relative, and absolute on the scale max(1, max|expected|)
SUPPORTED_FRACTION = 0.95
CLEAR_ERRORS = (ValueError, TypeError, NotImplementedError)


class Mismatch(Exception):
    """Ours ran but disagrees with torch."""


def as_numpy(value):
    return value.detach().cpu().numpy().copy() if isinstance(value, torch.Tensor) else value


def compare(name, ours, theirs, dtype):
    """Raise Mismatch unless ours (NumPy) equals theirs (torch) within the dtype's tolerance (exact for ints)."""
    theirs = as_numpy(theirs)
    ours = np.asarray(ours)
    if ours.shape != np.shape(theirs):
        raise Mismatch(f"{name}: shape {ours.shape} vs torch {np.shape(theirs)}")
    if np.issubdtype(np.asarray(theirs).dtype, np.integer):
        if not np.array_equal(ours, theirs):
            raise Mismatch(f"{name}: integer values differ")
        return
    tol = TOLERANCE[dtype]
    scale = max(1.0, float(np.nanmax(np.abs(theirs), initial=0.0)))
    if not np.allclose(ours, theirs, rtol=tol, atol=tol * scale, equal_nan=True):
        raise Mismatch(f"{name}: max abs error {np.nanmax(np.abs(ours - theirs)):.3e} (scale {scale:.3g})")


def upstream(shape, dtype, seed=0):
    return np.random.default_rng(seed).standard_normal(shape).astype(dtype)


def torch_backward(out, grad, leaves):
    """Gradients of sum(out * grad) w.r.t. the leaves that require grad (None for the others)."""
    wanted = [leaf for leaf in leaves if isinstance(leaf, torch.Tensor) and leaf.requires_grad]
    grads = iter(torch.autograd.grad(out, wanted, torch.from_numpy(grad), allow_unused=True))
    return [next(grads) if isinstance(leaf, torch.Tensor) and leaf.requires_grad else None for leaf in leaves]


def leaf(value):
    """A fresh float leaf tensor requiring grad (ints and None pass through)."""
    if not isinstance(value, torch.Tensor):
        return value
    value = value.detach().clone()
    return value.requires_grad_(value.is_floating_point())


def check_module(module, torch_module, x, dtype, **torch_call):
    """Our module (state copied from torch's) against torch's: output(s), input and parameter gradients, buffers."""
    module.to(np.dtype(dtype)).load_state_dict(torch_module.state_dict())
    module.train(torch_module.training)
    x_torch = leaf(x)
    theirs = torch_module(x_torch, **torch_call)
    ours = module(as_numpy(x))
    theirs_out, ours_out = (theirs[0], ours[0]) if isinstance(theirs, tuple) else (theirs, ours)
    if isinstance(theirs, tuple):
        compare("indices", ours[1], theirs[1], dtype)
    compare("forward", ours_out, theirs_out, dtype)
    grad = upstream(theirs_out.shape, dtype)
    params = dict(torch_module.named_parameters())
    grads = torch_backward(theirs_out, grad, [x_torch, *params.values()])
    compare("grad[input]", module.backward(grad), grads[0], dtype)
    for (name, param), expected in zip(dict(module.named_parameters()).items(), grads[1:], strict=True):
        compare(f"grad[{name}]", param.grad, expected, dtype)
    for name, buffer in torch_module.named_buffers():
        compare(f"buffer[{name}]", dict(module.named_buffers())[name], buffer, dtype)


# -- OpInfo samples: one runner per op, calling our module or functional with the sample's own arguments --------

def _pool_kwargs(sample, names):
    kwargs = dict(zip(names, sample.args, strict=False))
    kwargs.update(sample.kwargs)
    if kwargs.get("stride") == ():  # torch reads an empty stride as "the kernel size"
        kwargs["stride"] = None
    return kwargs


def run_conv2d(sample, dtype):
    weight, bias = sample.args[0], sample.args[1] if len(sample.args) > 1 else sample.kwargs.get("bias")
    kwargs = {k: v for k, v in sample.kwargs.items() if k != "bias"}
    groups = kwargs.get("groups", 1)
    module = nnp.Conv2d(weight.shape[1] * groups, weight.shape[0], tuple(weight.shape[2:]), bias=bias is not None,
                        **kwargs)
    twin = torch.nn.Conv2d(weight.shape[1] * groups, weight.shape[0], tuple(weight.shape[2:]), bias=bias is not None,
                           **kwargs).to(DTYPES[dtype])
    with torch.no_grad():
        twin.weight.copy_(weight)
        if bias is not None:
            twin.bias.copy_(bias)
    check_module(module, twin, sample.input, dtype)


def run_max_pool2d(sample, dtype):
    kwargs = _pool_kwargs(sample, ["kernel_size", "stride", "padding", "dilation", "ceil_mode", "return_indices"])
    check_module(nnp.MaxPool2d(**kwargs), torch.nn.MaxPool2d(**kwargs), sample.input, dtype)


def run_avg_pool2d(sample, dtype):
    names = ["kernel_size", "stride", "padding", "ceil_mode", "count_include_pad", "divisor_override"]
    kwargs = _pool_kwargs(sample, names)
    check_module(nnp.AvgPool2d(**kwargs), torch.nn.AvgPool2d(**kwargs), sample.input, dtype)


def run_adaptive(ours, theirs, names):
    def run(sample, dtype):
        kwargs = _pool_kwargs(sample, names)
        check_module(ours(**kwargs), theirs(**kwargs), sample.input, dtype)
    return run


def run_batch_norm(sample, dtype):
    """torch.nn.functional.batch_norm through our functional forms and running-statistics update."""
    names = ["running_mean", "running_var", "weight", "bias", "training", "momentum", "eps"]
    kwargs = dict(zip(names, sample.args, strict=False)) | sample.kwargs
    training, momentum, eps = kwargs.get("training", False), kwargs.get("momentum", 0.1), kwargs.get("eps", 1e-5)
    leaves = [leaf(sample.input), leaf(kwargs.get("weight")), leaf(kwargs.get("bias"))]
    stats = [None if kwargs.get(k) is None else kwargs[k].detach().clone() for k in ("running_mean", "running_var")]
    mean, var = (as_numpy(s) for s in stats)  # copies: torch updates `stats` in place
    theirs = torch.nn.functional.batch_norm(leaves[0], *stats, leaves[1], leaves[2], training, momentum, eps)
    x, weight, bias = (as_numpy(t) for t in leaves)
    if training:
        out, cache = F.batch_norm2d_train_forward(x, weight, bias, eps)
        if mean is not None:
            mean, var = F.batch_norm_running_stats(mean, var, cache, x.size // x.shape[1], momentum)
    else:
        out, cache = F.batch_norm2d_eval_forward(x, weight, bias, mean, var, eps)
    compare("forward", out, theirs, dtype)
    grad = upstream(theirs.shape, dtype)
    for name, ours, expected in zip(["input", "weight", "bias"], F.batch_norm2d_backward(grad, cache),
                                    torch_backward(theirs, grad, leaves), strict=True):
        if expected is not None:
            compare(f"grad[{name}]", ours, expected, dtype)
    for name, ours, expected in zip(["running_mean", "running_var"], (mean, var), stats, strict=True):
        if expected is not None:
            compare(name, ours, expected, dtype)


def run_functional(forward, backward, torch_op):
    """Elementwise ops of one tensor with plain options, passed alike to both."""
    def run(sample, dtype):
        x = leaf(sample.input)
        theirs = torch_op(x, *sample.args, **sample.kwargs)
        out, cache = forward(as_numpy(x), *sample.args, **sample.kwargs)
        compare("forward", out, theirs, dtype)
        grad = upstream(theirs.shape, dtype)
        compare("grad[input]", backward(grad, cache), torch_backward(theirs, grad, [x])[0], dtype)
    return run


def run_linear(sample, dtype):
    leaves = [leaf(sample.input), leaf(sample.args[0]), leaf(sample.args[1] if len(sample.args) > 1 else None)]
    theirs = torch.nn.functional.linear(*leaves)
    out, cache = F.linear_forward(*(as_numpy(t) for t in leaves))
    compare("forward", out, theirs, dtype)
    grad = upstream(theirs.shape, dtype)
    for name, ours, expected in zip(["input", "weight", "bias"], F.linear_backward(grad, cache),
                                    torch_backward(theirs, grad, leaves), strict=True):
        if expected is not None:
            compare(f"grad[{name}]", ours, expected, dtype)


def run_hardtanh(sample, dtype):
    run_functional(F.hardtanh_forward, F.hardtanh_backward, torch.nn.functional.hardtanh)(sample, dtype)


def run_relu6(sample, dtype):
    leaves = [leaf(sample.input)]
    theirs = torch.nn.functional.relu6(leaves[0])
    out, cache = F.hardtanh_forward(as_numpy(leaves[0]), 0.0, 6.0)
    compare("forward", out, theirs, dtype)
    grad = upstream(theirs.shape, dtype)
    compare("grad[input]", F.hardtanh_backward(grad, cache), torch_backward(theirs, grad, leaves)[0], dtype)


def run_cross_entropy(sample, dtype):
    target = sample.args[0]
    kwargs = dict(sample.kwargs)
    logits = leaf(sample.input)
    theirs = torch.nn.functional.cross_entropy(logits, target, **kwargs)
    weight = as_numpy(kwargs.get("weight"))
    loss = nnp.CrossEntropyLoss(weight=weight, ignore_index=kwargs.get("ignore_index", -100),
                                reduction=kwargs.get("reduction", "mean"),
                                label_smoothing=kwargs.get("label_smoothing", 0.0))
    compare("forward", loss(as_numpy(logits), as_numpy(target)), theirs, dtype)
    grad = upstream(theirs.shape, dtype)
    compare("grad[input]", loss.backward(grad), torch_backward(theirs, grad, [logits])[0], dtype)


def run_dropout(module_class, channel_wise):
    def run(sample, dtype):
        p, training = sample.kwargs.get("p", 0.5), sample.kwargs.get("training", True)
        x = np.asarray(np.abs(as_numpy(sample.input)) + 1.0)  # nonzero: a kept entry shows
        module = module_class(p, rng=0).train(training)
        out = module(x)
        if out.shape != x.shape:
            raise Mismatch(f"forward: shape {out.shape} vs {x.shape}")
        kept = out != 0
        if not training or p == 0:
            compare("forward", out, torch.from_numpy(x), dtype)
        elif p == 1:
            compare("forward", out, torch.zeros(x.shape, dtype=DTYPES[dtype]), dtype)
        else:
            compare("kept entries", out[kept], torch.from_numpy(x[kept] / (1 - p)), dtype)
        if channel_wise and training and x.ndim >= 3 and not (kept == kept[:, :, :1, ...][..., :1]).all():
            raise Mismatch("dropout2d dropped part of a channel")
        grad = upstream(x.shape, dtype)
        compare("grad[input]", module.backward(grad), torch.from_numpy(np.where(kept, grad * (out / x), 0)), dtype)
    return run


def run_flatten(sample, dtype):
    start, end = sample.kwargs.get("start_dim", 0), sample.kwargs.get("end_dim", -1)  # torch.flatten's defaults
    x = leaf(sample.input)
    theirs = torch.flatten(x, start, end)
    module = nnp.Flatten(start, end)
    compare("forward", module(as_numpy(x)), theirs, dtype)
    grad = upstream(theirs.shape, dtype)
    compare("grad[input]", module.backward(grad), torch_backward(theirs, grad, [x])[0], dtype)


OP_RUNNERS = {
    "nn.functional.conv2d": run_conv2d,
    "nn.functional.max_pool2d": run_max_pool2d,
    "nn.functional.avg_pool2d": run_avg_pool2d,
    "nn.functional.adaptive_avg_pool2d": run_adaptive(nnp.AdaptiveAvgPool2d, torch.nn.AdaptiveAvgPool2d,
                                                      ["output_size"]),
    "nn.functional.adaptive_max_pool2d": run_adaptive(nnp.AdaptiveMaxPool2d, torch.nn.AdaptiveMaxPool2d,
                                                      ["output_size", "return_indices"]),
    "nn.functional.batch_norm": run_batch_norm,
    "nn.functional.linear": run_linear,
    "nn.functional.relu": run_functional(F.relu_forward, F.relu_backward, torch.nn.functional.relu),
    "nn.functional.relu6": run_relu6,
    "nn.functional.hardtanh": run_hardtanh,
    "nn.functional.cross_entropy": run_cross_entropy,
    "nn.functional.dropout": run_dropout(nnp.Dropout, channel_wise=False),
    "nn.functional.dropout2d": run_dropout(nnp.Dropout2d, channel_wise=True),
    "flatten": run_flatten,
}


# -- ModuleInfo samples: our module built with the same constructor arguments and torch's state ------------------

def _numpy_arguments(values):
    return [as_numpy(value) for value in values]


def run_module_sample(module_info, sample, dtype):
    cargs, ckwargs = sample.constructor_input.args, sample.constructor_input.kwargs
    theirs = module_info.module_cls(*cargs, **ckwargs).to(DTYPES[dtype])
    ours = getattr(nnp, module_info.module_cls.__name__)(*_numpy_arguments(cargs),
                                                        **dict(zip(ckwargs, _numpy_arguments(ckwargs.values()),
                                                                   strict=True)))
    inputs = list(sample.forward_input.args) + list(sample.forward_input.kwargs.values())
    if isinstance(ours, nnp.CrossEntropyLoss):
        logits, target = leaf(inputs[0]), inputs[1]
        expected = theirs(logits, target)
        compare("forward", ours(as_numpy(logits), as_numpy(target)), expected, dtype)
        grad = upstream(expected.shape, dtype)
        compare("grad[input]", ours.backward(grad), torch_backward(expected, grad, [logits])[0], dtype)
    else:
        check_module(ours, theirs, inputs[0], dtype)


MODULES = ["Conv2d", "MaxPool2d", "AvgPool2d", "AdaptiveAvgPool2d", "AdaptiveMaxPool2d", "BatchNorm2d", "Linear",
           "ReLU", "ReLU6", "Hardtanh", "CrossEntropyLoss"]


def databases():
    """torch's op_db and module_db, imported only when this (slow) test runs: importing torch.testing._internal
    changes global torch flags (it disables cuDNN/TF32 flags), which must not leak into other tests' workers."""
    try:
        from torch.testing._internal.common_methods_invocations import op_db
        from torch.testing._internal.common_modules import module_db
    except Exception as error:  # noqa: BLE001 - ImportError, or a missing test dependency raised inside torch
        pytest.skip(f"torch's sample inputs are not importable here: {error!r}")
    return op_db, module_db


def op_samples():
    """(label, runner, sample, dtype) for every OpInfo sample of OP_RUNNERS' ops and ModuleInfo sample of MODULES."""
    op_db, module_db = databases()
    for op in op_db:
        name = op.name + (f".{op.variant_test_name}" if op.variant_test_name else "")
        if name in OP_RUNNERS:
            for dtype, torch_dtype in DTYPES.items():
                for sample in op.sample_inputs("cpu", torch_dtype, requires_grad=False):
                    yield name, OP_RUNNERS[name], sample, dtype
    for info in module_db:
        if info.module_cls.__name__ in MODULES:
            for dtype, torch_dtype in DTYPES.items():
                for sample in info.module_inputs_func(info, device="cpu", dtype=torch_dtype, requires_grad=False,
                                                      training=True):
                    yield (f"nn.{info.module_cls.__name__}",
                           lambda s, d, info=info: run_module_sample(info, s, d), sample, dtype)


def names_the_layer(error, label) -> bool:
    """A clear refusal names the layer or function: our messages start with it (e.g. 'MaxPool2d(...)')."""
    message = str(error)
    own_names = [name for name in dir(nnp) + dir(F) if not name.startswith("_") and len(name) > 3]
    return any(name in message.split(":")[0] for name in own_names) or label.split(".")[-1] in message


def classify(label, runner, sample, dtype) -> tuple[str, str]:
    """(bucket, detail) of one sample."""
    try:
        runner(sample, dtype)
    except Mismatch as error:
        return "mismatch", str(error)
    except CLEAR_ERRORS as error:
        return ("refused" if names_the_layer(error, label) else "crashed"), f"{type(error).__name__}: {error}"
    except Exception as error:  # noqa: BLE001 - what we are counting
        return "crashed", f"{type(error).__name__}: {error}"
    return "match", ""


def tally(seed=0):
    """Counts per (op, dtype) and bucket, and the details of every sample not matching; torch's sample
    generators draw from its global generator, seeded here so that every run sees the same samples."""
    counts = collections.defaultdict(collections.Counter)
    details = collections.defaultdict(list)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        for label, runner, sample, dtype in op_samples():
            with np.errstate(all="ignore"):
                bucket, detail = classify(label, runner, sample, dtype)
            counts[(label, dtype)][bucket] += 1
            if bucket != "match":
                details[bucket].append(f"{label} [{dtype}] {detail}"[:300])
    return counts, details


def table(counts) -> str:
    buckets = ["match", "mismatch", "refused", "crashed"]
    lines = [f"{'op':40s} {'dtype':8s} " + " ".join(f"{b:>8s}" for b in buckets)]
    for (label, dtype), c in sorted(counts.items()):
        lines.append(f"{label:40s} {dtype:8s} " + " ".join(f"{c[b]:8d}" for b in buckets))
    total = sum(counts.values(), collections.Counter())
    lines.append(f"{'total':49s} " + " ".join(f"{total[b]:8d}" for b in buckets))
    return "\n".join(lines)


def test_without_torchs_private_sample_database_the_test_skips_with_the_reason(monkeypatch):
    """torch versions without torch.testing._internal's databases (or without expecttest) skip, never fail."""
    monkeypatch.setitem(sys.modules, "torch.testing._internal.common_methods_invocations", None)
    with pytest.raises(pytest.skip.Exception, match="torch's sample inputs are not importable here"):
        databases()


@pytest.mark.slow
def test_torch_sample_inputs_are_supported_and_match_torch():
    counts, details = tally()
    report = table(counts)
    print("\n" + report)
    total = sum(counts.values(), collections.Counter())
    judged = total["match"] + total["mismatch"] + total["refused"] + total["crashed"]
    assert judged > 1000, f"too few samples collected ({judged}): has torch's sample database changed?\n{report}"
    assert total["mismatch"] == 0, "mismatches:\n" + "\n".join(details["mismatch"][:20])
    assert total["crashed"] == 0, "cryptic crashes:\n" + "\n".join(details["crashed"][:20])
    assert total["match"] >= SUPPORTED_FRACTION * judged, (
        f"only {total['match']} of {judged} supported\n{report}\nrefused:\n" + "\n".join(details["refused"][:40]))
