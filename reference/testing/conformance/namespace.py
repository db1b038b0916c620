"""The implementation under test: loading a layer namespace, and building layers and zoo models from it.

A namespace is named by its import name ("reference.numpy_nn", "my_layers") or given as a module. What it
lacks is "not implemented": the names an op or zoo model needs and the namespace does not have, a keyword of
torch's it refuses ("unexpected keyword argument"), or a NotImplementedError it raises.
"""

from __future__ import annotations

import importlib
import inspect
from functools import cache
from types import ModuleType

import numpy as np

from .database import layer_ops, op_info

DEFAULT = "reference.numpy_nn"


class UsageError(Exception):
    """The namespace cannot be judged at all (not importable, or no layer in it): a usage error, exit 2."""


def namespace_name(namespace: str | ModuleType) -> str:
    return namespace if isinstance(namespace, str) else namespace.__name__


@cache
def load_namespace(name: str) -> ModuleType:
    """The module `name`, checked to be a layer namespace; UsageError with the reason otherwise."""
    try:
        module = importlib.import_module(name)
    except Exception as error:  # any failure to import is the user's to see, with its own message
        raise UsageError(f"cannot import {name!r}: {type(error).__name__}: {error}") from error
    if not layers_in(module):
        known = ", ".join(op.name for op in layer_ops())
        raise UsageError(f"{name!r} is not a layer namespace: it defines none of {known} as a class with forward "
                         "and backward (see reference.testing.conformance.protocol)")
    return module


def layers_in(module) -> list[str]:
    """The database's layers that `module` defines as classes with forward and backward."""
    return [op.name for op in layer_ops() if inspect.isclass(getattr(module, op.name, None))
            and callable(getattr(getattr(module, op.name), "forward", None))
            and callable(getattr(getattr(module, op.name), "backward", None))]


def missing(nn, names) -> list[str]:
    """The names the namespace lacks."""
    return [name for name in dict.fromkeys(names) if not hasattr(nn, name)]


def construct(cls, name: str, *args, **kwargs):
    """cls(*args, **kwargs); if it refuses a keyword, again without the keywords at torch's default value (a
    namespace need not spell out defaults); NotImplementedError naming the argument if it still refuses."""
    try:
        return cls(*args, **kwargs)
    except TypeError as error:
        if "unexpected keyword argument" not in str(error):
            raise
        trimmed = {k: v for k, v in kwargs.items() if not _is_torch_default(name, k, v)}
        if trimmed == kwargs:
            raise NotImplementedError(f"{name}: {error}") from error
        try:
            return cls(*args, **trimmed)
        except TypeError as again:
            if "unexpected keyword argument" not in str(again):
                raise
            raise NotImplementedError(f"{name}: {again}") from again


def _is_torch_default(name: str, key: str, value) -> bool:
    import torch

    cls = next((getattr(home, name) for home in (torch.nn, torch.optim, torch.optim.lr_scheduler)
                if hasattr(home, name)), None)
    if cls is None:
        return False
    parameter = inspect.signature(cls).parameters.get(key)
    if parameter is None or parameter.default is inspect.Parameter.empty:
        return False
    default = parameter.default
    return value is default or (default is not None and not hasattr(value, "shape") and default == value)


def build_layer(nn, config):
    """The module `config` (a LayerConfig) describes, built from the namespace `nn`."""
    op = op_info(config.layer)
    if op.build is not None:
        return op.build(nn, config)
    return construct(getattr(nn, config.layer), config.layer, **config.kwargs)


def numpy_layer(config, dtype=np.float64, seed: int = 0):
    """A fresh `reference.numpy_nn` module of `config`, parameters drawn from a generator seeded with `seed`, in
    `dtype` (built as the op tier builds it): what the property tests run."""
    from reference import numpy_nn
    from reference.numpy_nn.random import seeded

    with seeded(seed):
        module = build_layer(numpy_nn, config)
    return module.to(dtype)


def torch_twin(config):
    """The torch module `config` describes (torch.nn by name, or the entry's own twin)."""
    import torch

    op = op_info(config.layer)
    return op.torch_twin(config) if op.torch_twin else getattr(torch.nn, config.layer)(**config.kwargs)


@cache
def model_needs(name: str, variant: str | None = None) -> tuple[str, ...]:
    """The namespace names a zoo model (or one of its variants) is built from, and the loss its step needs."""
    from reference import zoo

    model = zoo.build(name, "numpy", **model_options(name, variant))
    return (*sorted({type(module).__name__ for _, module in model.named_modules()}), "CrossEntropyLoss")


def model_options(name: str, variant: str | None) -> dict:
    from reference import zoo

    return dict(zoo.spec(name).quirks.variants[variant].options) if variant else {}


def build_model(nn, name: str, **options):
    """Zoo model `name` built from the namespace `nn` with the zoo's architecture function (no initialisation:
    the engine loads a state)."""
    from reference import zoo

    spec = zoo.spec(name)
    return spec.architecture(nn, **{**spec.options, **options})
