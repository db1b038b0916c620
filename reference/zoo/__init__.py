"""The model zoo: every architecture registered once, buildable as a NumPy or a PyTorch twin.

`names()` lists the models, `build(name, framework, seed, **options)` returns a fresh model and
`spec(name)` its input shape, datasets and training recipes. Twins share state_dict keys and shapes.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from . import architectures

FRAMEWORKS = ("numpy", "torch")


@dataclass(frozen=True)
class TrainRecipe:
    """How a model is trained on one dataset, and the hard accuracy floor it must reach there."""

    optimizer: str  # "sgd" or "adam"
    lr: float
    batch_size: int
    epochs: int
    momentum: float = 0.0
    weight_decay: float = 0.0
    step_size: int | None = None  # StepLR period in epochs (None: constant lr)
    gamma: float = 0.1
    floor: dict[str, float] = field(default_factory=dict)  # framework -> minimum test accuracy
    devices: tuple[str, ...] = ("cpu", "cuda")  # where the accuracy tier trains it


@dataclass(frozen=True)
class ModelSpec:
    """One zoo entry: the builders of both twins, the input it expects and how to train it."""

    name: str
    input_shape: tuple[int, int, int]  # (C, H, W)
    num_classes: int
    build_numpy: Callable
    build_torch: Callable
    recipes: dict[str, TrainRecipe]  # dataset name -> recipe; the first is the default dataset
    options: dict = field(default_factory=dict)  # builder options per dataset are derived from these

    @property
    def default_dataset(self) -> str:
        return next(iter(self.recipes))


def _numpy_builder(architecture: Callable) -> Callable:
    def build_numpy(**options):
        from .. import numpy_nn

        return architecture(numpy_nn, **options)

    return build_numpy


def _twin(architecture: Callable) -> tuple[Callable, Callable]:
    """NumPy and torch builders of one architecture function written against a layer namespace."""

    def build_torch(**options):
        from . import torch_nn

        return architecture(torch_nn, **options)

    return _numpy_builder(architecture), build_torch


_DIGITS = dict(optimizer="sgd", lr=0.05, momentum=0.9, weight_decay=1e-4, batch_size=32, epochs=30, step_size=20)

_SPECS = {
    spec.name: spec
    for spec in [
        ModelSpec(
            "tiny_cnn", (1, 8, 8), 10, *_twin(architectures.tiny_cnn),
            recipes={"digits": TrainRecipe(**_DIGITS, floor={"numpy": 0.96, "torch": 0.96})},
        ),
        ModelSpec(
            "tiny_resnet", (1, 8, 8), 10, *_twin(architectures.tiny_resnet),
            recipes={"digits": TrainRecipe(**_DIGITS, floor={"numpy": 0.97, "torch": 0.97})},
        ),
        ModelSpec(
            "simple_cnn", (3, 32, 32), 4, *_twin(architectures.simple_cnn),
            recipes={"shapes": TrainRecipe("adam", 1e-3, 32, 12, weight_decay=1e-4, step_size=9, gamma=0.5,
                                           floor={"numpy": 0.95, "torch": 0.95})},
        ),
        ModelSpec(
            "mnist_cnn", (1, 28, 28), 10, *_twin(architectures.mnist_cnn),
            recipes={"mnist": TrainRecipe("adam", 1e-3, 64, 3, step_size=2, floor={"numpy": 0.985, "torch": 0.990})},
        ),
        ModelSpec(
            "resnet18", (1, 8, 8), 10,
            _numpy_builder(architectures.resnet18_numpy), architectures.resnet18_torch,
            recipes={
                "digits": TrainRecipe("adam", 1e-3, 128, 8, step_size=4, floor={"numpy": 0.97, "torch": 0.97}),
                "mnist": TrainRecipe("adam", 1e-3, 128, 3, floor={"torch": 0.993}, devices=("cuda",)),
            },
            options={"in_channels": 1, "num_classes": 10, "small_stem": True},
        ),
    ]
}


def names() -> list[str]:
    """The registered model names, in registration order."""
    return list(_SPECS)


def spec(name: str) -> ModelSpec:
    """The zoo entry of `name` (input shape, classes, training recipes per dataset)."""
    try:
        return _SPECS[name]
    except KeyError:
        raise ValueError(f"unknown model {name!r}; the zoo has {names()}") from None


def build(name: str, framework: str = "numpy", seed: int = 0, **options):
    """A freshly initialised model: a `reference.numpy_nn.Module` or a `torch.nn.Module`, seeded."""
    entry = spec(name)
    options = {**entry.options, **options}
    if framework == "numpy":
        from ..numpy_nn.random import seeded

        with seeded(seed):
            return entry.build_numpy(**options)
    if framework == "torch":
        import torch

        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            return entry.build_torch(**options)
    raise ValueError(f"unknown framework {framework!r}; expected one of {FRAMEWORKS}")


def copy_state(source, target) -> None:
    """Copy every parameter and buffer from one twin to the other (either direction); keys match as-is."""
    import torch

    state = source.state_dict()
    if isinstance(target, torch.nn.Module):
        state = {key: torch.as_tensor(value) for key, value in state.items()}
    target.load_state_dict(state)
