"""The op table (OpInfo style): every NumPy layer, loss, optimizer and schedule, described once as data.

An `OpInfo` names the op, the hypothesis strategy of its configurations, how to make its inputs from a seed,
and how to run it in NumPy and in torch; each run returns a dict of named results ("forward",
"grad[input]", "grad[weight]", "buffer[running_mean]", "step3:param[0]", ...). The generic tests in
test_ops.py loop over `OPS` for every dtype and device, so a new layer costs one entry here (plus one
tolerance row). `reproduce(name, config, seed, dtype, device)` reruns one case.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace

import numpy as np
import torch
from hypothesis import strategies as st

import reference.numpy_nn as nnp
from reference.testing import strategies as S

from .harness import TORCH_DTYPES, assert_matches_torch, randomize_batch_norm, to_torch, torch_device


@dataclass(frozen=True)
class OpInfo:
    name: str
    configs: Callable[[], st.SearchStrategy]  # random configurations (a LayerConfig or a plain dict)
    make_data: Callable  # (config, seed) -> inputs as float64 NumPy arrays (cast to the dtype by the runner)
    numpy: Callable  # (config, data) -> results
    torch: Callable  # (config, data, numpy_results, device, torch dtype) -> results
    dtypes: tuple[str, ...] = ("float64", "float32")
    well_posed: Callable | None = None  # (config, dtype) -> False for cases excluded in that dtype (with reason)
    training: bool = True  # module mode of layer entries (the oracles rebuild the twins from the LayerConfig)


# -- layers and blocks: the NumPy module and its torch.nn twin, same state, same input, same upstream grad ----

def torch_twin(cfg: S.LayerConfig) -> torch.nn.Module:
    """The torch module a LayerConfig describes (torch.nn by name; the zoo's and torchvision's blocks)."""
    if cfg.layer == "ResidualBlock":
        from reference.zoo.torch_nn import ResidualBlock

        return ResidualBlock(**cfg.kwargs)
    if cfg.layer == "BasicBlock":
        from torchvision.models.resnet import BasicBlock

        inplanes, planes, stride = cfg.kwargs["inplanes"], cfg.kwargs["planes"], cfg.kwargs.get("stride", 1)
        downsample = None
        if stride != 1 or inplanes != planes:
            downsample = torch.nn.Sequential(torch.nn.Conv2d(inplanes, planes, 1, stride=stride, bias=False),
                                             torch.nn.BatchNorm2d(planes))
        return BasicBlock(inplanes, planes, stride, downsample)
    return getattr(torch.nn, cfg.layer)(**cfg.kwargs)


def module_data(cfg: S.LayerConfig, seed: int) -> dict:
    rng = np.random.default_rng(seed)
    module = cfg.build(np.float64, seed=seed % 2**31)
    state = randomize_batch_norm(module, module.state_dict(), rng)
    return dict(state=state, x=rng.standard_normal(cfg.input_shape), grad_out=rng.standard_normal(cfg.output_shape))


def module_numpy(training: bool):
    def run(cfg, data):
        module = cfg.build(data["x"].dtype)
        module.load_state_dict(data["state"])
        module.train(training)
        results = {"forward": module(data["x"])}
        results["grad[input]"] = module.backward(data["grad_out"])
        results.update({f"grad[{n}]": p.grad for n, p in module.named_parameters()})
        results.update({f"buffer[{n}]": b for n, b in module.named_buffers()})
        return results
    return run


def module_torch(training: bool):
    def run(cfg, data, ours, device, dtype):
        module = torch_twin(cfg).to(device=device, dtype=dtype)
        module.load_state_dict({k: to_torch(v, device) for k, v in data["state"].items()})
        module.train(training)
        x = to_torch(data["x"], device, dtype, requires_grad=True)
        out = module(x)
        out.backward(to_torch(data["grad_out"], device, dtype))
        results = {"forward": out, "grad[input]": x.grad}
        results.update({f"grad[{n}]": p.grad for n, p in module.named_parameters()})
        results.update({f"buffer[{n}]": b for n, b in module.named_buffers()})
        return results
    return run


def layer(name: str, training: bool = True, suffix: str = "", configs=None, well_posed=None) -> OpInfo:
    """A module-twin entry: `name` is the class in reference.numpy_nn and torch.nn (or a block)."""
    return OpInfo(name + suffix, configs or (lambda: S.layer_configs(name)), module_data,
                  module_numpy(training), module_torch(training), well_posed=well_posed, training=training)


def batch_norm_well_conditioned(cfg, dtype) -> bool:
    """float32 and a training-mode BatchNorm fed by a convolution: at least 4 values per channel.

    With 2 values per channel x_hat is +-(1 - O(eps / d^2)) and the backward is a near-total cancellation
    (condition number ~ d^2 / eps ~ 1e5 for eps = 1e-5), so in float32 both frameworks return rounding noise
    of ~1e-3 relative and a comparison would test noise, not conformance. float64 runs every configuration.
    """
    n, _, h, w = cfg.output_shape
    return dtype != "float32" or n * h * w >= 4


def _with_p(p):
    return lambda cfg: replace(cfg, kwargs={**cfg.kwargs, "p": p})


# -- dropout driven by the NumPy mask: torch's own formula (input * keep / (1 - p)) given the same mask ------

def dropout_mask_data(cfg, seed):
    rng = np.random.default_rng(seed)
    return dict(x=rng.standard_normal(cfg.input_shape), grad_out=rng.standard_normal(cfg.output_shape),
                mask_seed=np.array(seed % 2**31))


def dropout_mask_numpy(cfg, data):
    module = getattr(nnp, cfg.layer)(**cfg.kwargs, rng=int(data["mask_seed"]))
    out = module(data["x"])
    return {"forward": out, "grad[input]": module.backward(data["grad_out"]), "_mask": module._cache}


def dropout_mask_torch(cfg, data, ours, device, dtype):
    p = cfg.kwargs["p"]
    keep = to_torch(as_float(ours["_mask"]) != 0, device)  # which elements (or channels) the NumPy layer kept
    noise = keep.to(dtype) / (1.0 - p) if p < 1.0 else torch.zeros_like(keep, dtype=dtype)  # at::dropout's noise
    x = to_torch(data["x"], device, dtype, requires_grad=True)
    out = x * noise
    out.backward(to_torch(data["grad_out"], device, dtype))
    return {"forward": out, "grad[input]": x.grad}


def as_float(array):
    return np.asarray(array, dtype=np.float64)


# -- cross-entropy ------------------------------------------------------------------------------------------

def cross_entropy_data(cfg, seed):
    rng = np.random.default_rng(seed)
    n, k = cfg["batch"], cfg["classes"]
    return dict(logits=rng.standard_normal((n, k)) * cfg["logit_scale"], targets=rng.integers(0, k, n),
                grad_loss=np.array(rng.uniform(0.5, 2.0)))


def cross_entropy_numpy(cfg, data):
    loss_fn = nnp.CrossEntropyLoss(label_smoothing=cfg["label_smoothing"])
    loss = loss_fn(data["logits"], data["targets"])
    return {"forward": loss, "grad[input]": loss_fn.backward(float(data["grad_loss"]))}


def cross_entropy_torch(cfg, data, ours, device, dtype):
    logits = to_torch(data["logits"], device, dtype, requires_grad=True)
    loss = torch.nn.functional.cross_entropy(logits, to_torch(data["targets"], device),
                                             label_smoothing=cfg["label_smoothing"])
    loss.backward(to_torch(data["grad_loss"], device, dtype))
    return {"forward": loss, "grad[input]": logits.grad}


# -- optimizers and the schedule: the same parameters and gradient sequence, state compared at every step ---

def optimizer_data(cfg, seed):
    rng = np.random.default_rng(seed)
    shapes = [tuple(s) for s in cfg["shapes"]]
    grads = [[None if (i == 1 and k in cfg["skip_steps"]) else rng.standard_normal(s) for i, s in enumerate(shapes)]
             for k in range(cfg["steps"])]
    return dict(params=[rng.standard_normal(s) for s in shapes], grads=grads)


_STATE_KEYS = {"SGD": ("momentum_buffer",), "Adam": ("step", "exp_avg", "exp_avg_sq")}


def _optimizer_results(results, k, params, state_of, keys, lr):
    for i, param in enumerate(params):
        results[f"step{k}:param[{i}]"] = param
        for key in keys:
            value = state_of(i).get(key)
            if value is not None:
                results[f"step{k}:{key}[{i}]"] = np.asarray(value, dtype=np.float64) if key == "step" else value
    results[f"step{k}:lr"] = np.asarray(lr, dtype=np.float64)


def optimizer_numpy(cfg, data):
    params = [nnp.Parameter(p.copy()) for p in data["params"]]
    opt = getattr(nnp, cfg["optimizer"])(params, **cfg["kwargs"])
    sched = nnp.StepLR(opt, **cfg["schedule"]) if cfg.get("schedule") else None
    results = {}
    for k, grads in enumerate(data["grads"]):
        opt.zero_grad()
        for param, grad in zip(params, grads, strict=True):
            if grad is not None:
                param.grad = grad.copy()
        opt.step()
        if sched:
            sched.step()
        _optimizer_results(results, k, [p.data.copy() for p in params],
                           lambda i: {key: _copy(v) for key, v in opt.state.get(i, {}).items()},
                           _STATE_KEYS[cfg["optimizer"]], opt.lr)
    return results


def _copy(value):
    return value.copy() if isinstance(value, np.ndarray) else value


def optimizer_torch(cfg, data, ours, device, dtype):
    params = [torch.nn.Parameter(to_torch(p, device, dtype)) for p in data["params"]]
    opt = getattr(torch.optim, cfg["optimizer"])(params, **cfg["kwargs"])
    sched = torch.optim.lr_scheduler.StepLR(opt, **cfg["schedule"]) if cfg.get("schedule") else None
    results = {}
    for k, grads in enumerate(data["grads"]):
        opt.zero_grad()
        for param, grad in zip(params, grads, strict=True):
            if grad is not None:
                param.grad = to_torch(grad, device, dtype)
        opt.step()
        if sched:
            sched.step()
        _optimizer_results(results, k, [p.detach().clone() for p in params],
                           lambda i: {key: _state_value(v) for key, v in opt.state[params[i]].items()},
                           _STATE_KEYS[cfg["optimizer"]], opt.param_groups[0]["lr"])
    return results


def _state_value(value):
    if isinstance(value, torch.Tensor):
        value = value.detach().clone()
        return value.cpu().double().numpy() if value.ndim == 0 else value  # Adam's step: a 0-d float tensor
    return value


# -- the table ------------------------------------------------------------------------------------------------

def _layer_with(name, training=True, suffix="", map_config=None):
    configs = None if map_config is None else (lambda: S.layer_configs(name).map(map_config))
    return layer(name, training, suffix, configs)


OPS = [
    layer("Conv2d"),
    layer("Linear"),
    layer("ReLU"),
    layer("MaxPool2d"),
    layer("AvgPool2d"),
    layer("AdaptiveAvgPool2d"),
    layer("BatchNorm2d", training=True, suffix="[train]"),
    layer("BatchNorm2d", training=False, suffix="[eval]"),
    _layer_with("Dropout", training=True, suffix="[p=0]", map_config=_with_p(0.0)),
    _layer_with("Dropout2d", training=True, suffix="[p=0]", map_config=_with_p(0.0)),
    layer("Dropout", training=False, suffix="[eval]"),
    layer("Dropout2d", training=False, suffix="[eval]"),
    OpInfo("Dropout[mask]", lambda: S.layer_configs("Dropout"), dropout_mask_data, dropout_mask_numpy,
           dropout_mask_torch),
    OpInfo("Dropout2d[mask]", lambda: S.layer_configs("Dropout2d"), dropout_mask_data, dropout_mask_numpy,
           dropout_mask_torch),
    layer("Flatten"),
    layer("BasicBlock", training=True, suffix="[train]", well_posed=batch_norm_well_conditioned),
    layer("BasicBlock", training=False, suffix="[eval]"),
    layer("ResidualBlock"),
    OpInfo("CrossEntropyLoss", S.cross_entropy_configs, cross_entropy_data, cross_entropy_numpy,
           cross_entropy_torch),
    OpInfo("SGD", S.sgd_configs, optimizer_data, optimizer_numpy, optimizer_torch),
    OpInfo("Adam", S.adam_configs, optimizer_data, optimizer_numpy, optimizer_torch),
    OpInfo("StepLR", S.step_lr_configs, optimizer_data, optimizer_numpy, optimizer_torch),
]
OPS_BY_NAME = {op.name: op for op in OPS}


def reproduce(name: str, config, seed: int, dtype: str = "float64", device: str = "cpu") -> None:
    """Rerun one case of the op table (what a failure message prints)."""
    assert_matches_torch(OPS_BY_NAME[name], config, seed, dtype, device)


__all__ = ["OPS", "OPS_BY_NAME", "OpInfo", "reproduce", "torch_twin", "TORCH_DTYPES", "torch_device"]
