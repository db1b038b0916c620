"""How the op tier makes an op's inputs and runs both sides: the implementation under test and torch.

Each kind of op has three runners: `make_data(config, seed, regime)` (float64 NumPy inputs, cast to the dtype by the
harness), `ours(nn, config, data)` and `torch(config, data, ours, device, dtype)`; each run returns a dict
of named results ("forward", "grad[input]", "grad[weight]", "buffer[running_mean]", "step3:param[0]", ...).
Keys starting with "_" are side data (the dropout mask torch is driven with). Only the protocol of
`protocol.py` is used on the implementation's objects.
"""

from __future__ import annotations

import numpy as np
import torch

from reference.testing.states import randomize_batch_norm

from .namespace import build_layer, construct, torch_twin
from .protocol import Layer, Optimizer, RandomLayer, missing_members
from .regimes import GAUSSIAN, values
from .tensors import to_torch, torch_state
from .verdicts import FORWARD_ONLY, Crashed


def runners(subject):
    """(make_data, ours, torch) of a database subject."""
    kind = subject.op.kind
    if kind == "layer":
        if subject.variant.driven_by_mask:
            return layer_data, mask_ours, mask_torch
        return layer_data, layer_ours(subject.variant.training), layer_torch(subject.variant.training)
    if kind == "loss":
        return cross_entropy_data, cross_entropy_ours, cross_entropy_torch
    return optimizer_data, optimizer_ours, optimizer_torch


def require(obj, protocol, what: str):
    """`obj`, or Crashed naming what it lacks of `protocol` (NotImplementedError for RandomLayer)."""
    missing = missing_members(obj, protocol)
    if missing and protocol is RandomLayer:
        raise NotImplementedError(f"{what} has no {' / '.join(missing)}: the mask of its last forward is needed "
                                  "to drive torch's dropout (see reference.testing.conformance.protocol)")
    if missing:
        raise Crashed(f"{what} lacks {missing} of the {protocol.__name__} protocol "
                      "(reference.testing.conformance.protocol)")
    return obj


def with_gradients(results: dict, backward) -> dict:
    """`results` and the gradients `backward()` returns (a dict), or `results` marked forward-only when the
    implementation's backward raises NotImplementedError (its gradients are then not compared)."""
    try:
        return {**results, **backward()}
    except NotImplementedError as error:
        return {**results, FORWARD_ONLY: str(error) or "backward raises NotImplementedError"}


# -- layers: the module and its torch twin, same state, same input, same upstream gradient ---------------------

def layer_data(config, seed: int, regime: str = GAUSSIAN) -> dict:
    """The torch twin's initial state (seeded; batch norms randomised), an input in the value `regime` and an
    upstream gradient."""
    rng = np.random.default_rng(seed)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        state = torch_state(torch_twin(config).double())
    state = randomize_batch_norm(state, rng)
    return dict(state=state, x=values(regime, rng, config.input_shape, config),
                grad_out=rng.standard_normal(config.output_shape))


def prepared(module, dtype, state: dict, training: bool):
    """The implementation's module in `dtype`, loaded with `state`, in the given mode."""
    require(module, Layer, type(module).__name__)
    module.to(dtype)
    module.load_state_dict(state)
    module.train(training)
    return module


def parameter_gradients(module) -> dict:
    return {f"grad[{name}]": param.grad for name, param in module.named_parameters()}


def buffers(module) -> dict:
    """The state_dict entries that are not parameters, by name."""
    parameters = {name for name, _ in module.named_parameters()}
    return {f"buffer[{key}]": value for key, value in module.state_dict().items() if key not in parameters}


def first_output(out):
    """A pool's output without the indices return_indices=True adds (they have no gradient)."""
    return out[0] if isinstance(out, tuple) else out


def forward_results(out) -> dict:
    """{"forward": output} and, for a pool built with return_indices=True (an (out, indices) pair), "indices"."""
    return {"forward": out[0], "indices": out[1]} if isinstance(out, tuple) else {"forward": out}


def layer_ours(training: bool):
    def run(nn, config, data):
        module = prepared(build_layer(nn, config), data["x"].dtype, data["state"], training)
        results = forward_results(module(data["x"].copy()))
        if np.shape(results["forward"]) != data["grad_out"].shape:  # no backward for an output of another shape
            raise Crashed(f"forward returned a {type(results['forward']).__name__} of shape "
                          f"{np.shape(results['forward'])}, expected {data['grad_out'].shape} (torch's output-size "
                          "formula)")
        results = with_gradients(results, lambda: {"grad[input]": module.backward(data["grad_out"].copy()),
                                                   **parameter_gradients(module)})
        return {**results, **buffers(module)}
    return run


def layer_torch(training: bool):
    def run(config, data, ours, device, dtype):
        module = torch_twin(config).to(device=device, dtype=dtype)
        module.load_state_dict({k: to_torch(v, device) for k, v in data["state"].items()})
        module.train(training)
        x = to_torch(data["x"], device, dtype, requires_grad=True)
        results = forward_results(module(x))
        results["forward"].backward(to_torch(data["grad_out"], device, dtype))
        results["grad[input]"] = x.grad
        results.update({f"grad[{n}]": p.grad for n, p in module.named_parameters()})
        results.update({f"buffer[{n}]": b for n, b in module.named_buffers()})
        return results
    return run


# -- dropout driven by the layer's mask: torch's own formula (input * keep / (1 - p)) given the same mask --------

def mask_ours(nn, config, data):
    module = prepared(build_layer(nn, config), data["x"].dtype, data["state"], True)
    require(module, RandomLayer, config.layer)
    results = {"forward": module(data["x"].copy())}
    results = with_gradients(results, lambda: {"grad[input]": module.backward(data["grad_out"].copy())})
    if module.mask is None:
        raise Crashed(f"{config.layer}.mask is None after a training-mode forward")
    return {**results, "_mask": module.mask}


def mask_torch(config, data, ours, device, dtype):
    p = config.kwargs["p"]
    keep = to_torch(np.asarray(ours["_mask"], dtype=np.float64) != 0, device)  # the elements (channels) kept
    noise = keep.to(dtype) / (1.0 - p) if p < 1.0 else torch.zeros_like(keep, dtype=dtype)  # at::dropout's noise
    x = to_torch(data["x"], device, dtype, requires_grad=True)
    out = x * noise
    out.backward(to_torch(data["grad_out"], device, dtype))
    return {"forward": out, "grad[input]": x.grad}


# -- cross-entropy ------------------------------------------------------------------------------------------------
# Configurations are cross_entropy_configs' (batch, classes, label smoothing, logit scale) or, over every torch
# argument, cross_entropy_torch_configs' (extra dims or an unbatched (C,), per-class weight, ignore_index,
# reduction, class-probability targets); absent keys take torch's defaults.

def cross_entropy_data(config, seed: int, regime: str = GAUSSIAN) -> dict:
    """Logits (Gaussian times the configuration's scale, or in the value `regime`), targets, the upstream gradient
    (a scalar, or one per element for reduction='none') and, for the torch-argument configurations, the per-class
    weight and ignore_index."""
    rng = np.random.default_rng(seed)
    n, k, extra = config["batch"], config["classes"], tuple(config.get("extra", ()))
    logits_shape, index_shape = ((k,), ()) if n is None else ((n, k, *extra), (n, *extra))
    logits = values(regime, rng, logits_shape, config) * (config.get("logit_scale", 3.0) if regime == GAUSSIAN else 1)
    targets, grad_loss = rng.integers(0, k, index_shape), np.array(rng.uniform(0.5, 2.0))
    data = dict(logits=logits, targets=targets, grad_loss=grad_loss, kwargs={})
    if "reduction" not in config:
        return data
    if config["probabilities"]:  # class probabilities shaped like the logits (classes on axis 1, or 0 unbatched)
        data["targets"] = np.moveaxis(rng.dirichlet(np.ones(k), size=index_shape), -1, 0 if n is None else 1)
    if config["reduction"] == "none":
        data["grad_loss"] = rng.uniform(0.5, 2.0, index_shape)
    kwargs = dict(weight=rng.uniform(0.2, 2.0, k) if config["weighted"] else None, reduction=config["reduction"])
    if config["ignore"] and not config["probabilities"]:  # a class that occurs: those targets are ignored
        kwargs["ignore_index"] = int(rng.integers(0, k))
    return {**data, "kwargs": kwargs}


def cross_entropy_ours(nn, config, data):
    loss_fn = cross_entropy_loss(nn, config, data)
    results = {"forward": loss_fn(data["logits"].copy(), data["targets"].copy())}
    return with_gradients(results, lambda: {"grad[input]": loss_fn.backward(upstream_loss_gradient(data["grad_loss"]))})


def cross_entropy_loss(nn, config, data):
    """The namespace's CrossEntropyLoss with the case's arguments (arrays copied)."""
    kwargs = {key: np.copy(value) if isinstance(value, np.ndarray) else value for key, value in data["kwargs"].items()}
    return construct(nn.CrossEntropyLoss, "CrossEntropyLoss", label_smoothing=config["label_smoothing"], **kwargs)


def upstream_loss_gradient(grad_loss: np.ndarray):
    """A Python float for a scalar loss (what a training loop passes), else a copy of the per-element array."""
    return float(grad_loss) if grad_loss.ndim == 0 else grad_loss.copy()


def cross_entropy_torch(config, data, ours, device, dtype):
    logits = to_torch(data["logits"], device, dtype, requires_grad=True)
    loss = torch_cross_entropy(config, data, device, dtype)(logits)
    loss.backward(to_torch(data["grad_loss"], device, dtype))
    return {"forward": loss, "grad[input]": logits.grad}


def torch_cross_entropy(config, data, device, dtype):
    """logits -> torch's cross-entropy loss with the case's targets and arguments."""
    targets = to_torch(data["targets"], device, dtype)
    kwargs = {key: to_torch(value, device, dtype) if isinstance(value, np.ndarray) else value
              for key, value in data["kwargs"].items()}
    return lambda logits: torch.nn.functional.cross_entropy(logits, targets, label_smoothing=config["label_smoothing"],
                                                            **kwargs)


# -- optimizers and the schedule: the same parameters and gradient sequence, state compared at every step --------

class Param:
    """A parameter as optimizers see it: `.data` updated in place, `.grad` None (skipped) or an array."""

    __slots__ = ("data", "grad")

    def __init__(self, data: np.ndarray):
        self.data, self.grad = data, None


def optimizer_data(config, seed: int, regime: str = GAUSSIAN) -> dict:
    """Parameters and a gradient per step (Gaussian: optimizers declare no other value regime)."""
    rng = np.random.default_rng(seed)
    shapes = [tuple(s) for s in config["shapes"]]
    grads = [[None if (i == 1 and k in config["skip_steps"]) else rng.standard_normal(s)
              for i, s in enumerate(shapes)] for k in range(config["steps"])]
    return dict(params=[rng.standard_normal(s) for s in shapes], grads=grads)


STATE_KEYS = {"SGD": ("momentum_buffer",), "Adam": ("step", "exp_avg", "exp_avg_sq")}


def _record_step(results, k, params, state_of, keys, lr):
    for i, param in enumerate(params):
        results[f"step{k}:param[{i}]"] = param
        for key in keys if state_of else ():
            value = state_of(i).get(key)
            if value is not None:
                results[f"step{k}:{key}[{i}]"] = np.asarray(value, dtype=np.float64) if key == "step" else value
    results[f"step{k}:lr"] = np.asarray(lr, dtype=np.float64)


def optimizer_ours(nn, config, data):
    """Steps the namespace's optimizer (and StepLR); its `state` is compared where it has one."""
    params = [Param(p.copy()) for p in data["params"]]
    opt = require(construct(getattr(nn, config["optimizer"]), config["optimizer"], params, **config["kwargs"]),
                  Optimizer, config["optimizer"])
    sched = construct(nn.StepLR, "StepLR", opt, **config["schedule"]) if config.get("schedule") else None
    has_state = hasattr(opt, "state")
    results = {"_has_state": has_state}
    for k, grads in enumerate(data["grads"]):
        opt.zero_grad()
        for param, grad in zip(params, grads, strict=True):
            if grad is not None:
                param.grad = grad.copy()
        opt.step()
        if sched:
            sched.step()
        state_of = (lambda i: {key: _copy(v) for key, v in opt.state.get(i, {}).items()}) if has_state else None
        _record_step(results, k, [p.data.copy() for p in params], state_of, STATE_KEYS[config["optimizer"]], opt.lr)
    return results


def _copy(value):
    return value.copy() if isinstance(value, np.ndarray) else value


def optimizer_torch(config, data, ours, device, dtype):
    params = [torch.nn.Parameter(to_torch(p, device, dtype)) for p in data["params"]]
    opt = getattr(torch.optim, config["optimizer"])(params, **config["kwargs"])
    sched = torch.optim.lr_scheduler.StepLR(opt, **config["schedule"]) if config.get("schedule") else None
    results = {}
    for k, grads in enumerate(data["grads"]):
        opt.zero_grad()
        for param, grad in zip(params, grads, strict=True):
            if grad is not None:
                param.grad = to_torch(grad, device, dtype)
        opt.step()
        if sched:
            sched.step()
        state_of = (lambda i: {key: _state_value(v) for key, v in opt.state[params[i]].items()}) \
            if ours["_has_state"] else None
        _record_step(results, k, [p.detach().clone() for p in params], state_of, STATE_KEYS[config["optimizer"]],
                     opt.param_groups[0]["lr"])
    return results


def _state_value(value):
    if isinstance(value, torch.Tensor):
        value = value.detach().clone()
        return value.cpu().double().numpy() if value.ndim == 0 else value  # Adam's step: a 0-d float tensor
    return value
