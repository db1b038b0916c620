"""The model zoo: every architecture registered once, buildable as a NumPy or a PyTorch twin.

`names()` lists the models, `build(name, framework, seed, **options)` returns a fresh model and
`spec(name)` its input shape, datasets and training recipes. Twins share state_dict keys and shapes.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from reference.testing.compare import Budget, Tolerance

from . import architectures

FRAMEWORKS = ("numpy", "torch")


@dataclass(frozen=True)
class TrainRecipe:
    """How a model is trained on one dataset (its hard accuracy floor is data: see `reference.baselines`)."""

    optimizer: str  # "sgd" or "adam"
    lr: float
    batch_size: int
    epochs: int
    momentum: float = 0.0
    weight_decay: float = 0.0
    step_size: int | None = None  # StepLR period in epochs (None: constant lr)
    gamma: float = 0.1
    devices: tuple[str, ...] = ("cpu", "cuda")  # where the accuracy tier trains it
    baseline_seeds: int = 5  # fewest seeds a committed baseline of this recipe records
    gate_seeds: int = 1  # seeds a gated run trains; the gate tests their mean (more seeds: more power)


@dataclass(frozen=True)
class ModelVariant:
    """Another configuration of a zoo model that the conformance model tier checks too."""

    options: dict  # builder options
    input_shape: tuple[int, int, int]  # (C, H, W)
    batch: int
    float32_modes: tuple[str, ...] | None = None  # the modes the model tier checks in float32; None: the model's


@dataclass(frozen=True)
class ModelQuirks:
    """How the test tiers exercise one model: batch sizes, trajectory settings, gradient-check subsets, tolerances."""

    batch: int = 2  # conformance model tier
    trajectory_batch: int = 4  # conformance trajectory tier
    trajectory_input: tuple[int, int, int] | None = None  # (C, H, W) there; None: the model's input_shape
    trajectory_dtypes: tuple[str, ...] = ("float64", "float32")
    gradcheck_input: tuple[int, int, int, int] | None = None  # finite differences (tests); None: (2, *input_shape)
    gradcheck_coords: tuple[int, int] = (6, 6)  # random coordinates per tensor checked there, (train, eval)
    gradcheck_modes: tuple[str, ...] = ("train", "eval")  # the modes finite differences are taken in
    gradcheck_slow: bool = False  # finite differences in the slow tier only (many tensors: many forwards)
    float32: Tolerance | None = None  # model tier row in float32; None: torch's default
    budget: Budget | None = None  # float32 error budget; None: the default
    variants: dict[str, ModelVariant] = field(default_factory=dict)  # report name -> variant
    float32_modes: tuple[str, ...] = ("train", "eval")  # the modes the model tier checks in float32
    slow: bool = False  # its model-tier checks and heavy property tests run in the slow tier only


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
    architecture: Callable | None = None  # (layer namespace, **options) -> model, no init: how conformance builds
    quirks: ModelQuirks = field(default_factory=ModelQuirks)  # tests' per-model settings

    @property
    def default_dataset(self) -> str | None:
        """The first dataset it trains on; None for a model with no training recipe (checked, never trained)."""
        return next(iter(self.recipes), None)


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


_DIGITS = dict(optimizer="sgd", lr=0.05, momentum=0.9, weight_decay=1e-4, batch_size=32, epochs=30, step_size=20,
               baseline_seeds=20, gate_seeds=5)  # cheap: more seeds buy the gate power

# Models with batch norms: torch's CPU batch norm accumulates float32 in double (see the op database's
# BatchNorm2d budget). resnet18's worst budget stage, grad[layer4.0.conv1.weight], sits right behind layer4's
# training-mode batch norms (8 values per channel) and used 0.9 of the default allowance at the suite's seed.
_BN_BUDGET = Budget(4.0, 32.0, "batch norms inside (torch's accumulate float32 in double)")
# MNIST's recipes; `idx` (another dataset in MNIST's IDX layout: Fashion-MNIST, KMNIST, one's own) trains with them.
_MNIST_CNN = TrainRecipe("adam", 1e-3, 64, 3, step_size=2, baseline_seeds=3)
_MNIST_RESNET18 = TrainRecipe("adam", 1e-3, 128, 3, devices=("cuda",), baseline_seeds=3)
# resnet18 in float32: 17 conv + batch-norm layers, training-mode batch norm on 8 values per channel in layer4
# (8x8 input, batch 8) or 8 in torchvision's (64x64, batch 2), whose backward amplifies rounding: conv1 gradients
# of |6| differ by up to 5e-5 between the frameworks while each is ~3e-5 from float64 (measured over 4 seeds;
# worst ratio against torch's default 4.7). Gradients where one framework took the other side of a ReLU /
# max-pool kink are arbitrated by float64. Batch 8 on 8x8 inputs: >= 4 values per channel in layer4's batch norms
# (1x1 there); trajectories take 16x16 inputs for the same reason, in float64 only (11M parameters: float32 would
# double the tier's time for a measurement only). Finite differences check 3 images, 2 / 1 coordinates per
# tensor (its forward costs ~17 ms in float64 whatever the input size).
_RESNET18 = ModelQuirks(
    batch=8, trajectory_input=(1, 16, 16), trajectory_dtypes=("float64",), gradcheck_input=(3, 1, 8, 8),
    gradcheck_coords=(2, 1), float32=Tolerance(1e-5, 1e-4, "deep float32 chain through training-mode batch norms"),
    budget=_BN_BUDGET,
    variants={"torchvision.resnet18": ModelVariant(dict(in_channels=3, num_classes=1000, small_stem=False),
                                                   (3, 64, 64), batch=2)})

# torchvision's resnet50 / resnext50_32x4d / mobilenet_v2 at 2x3x64x64: no training recipe (the accuracy tier and
# the training benchmarks leave them out); the model tier checks logits and every gradient against torchvision's own.
# - No trajectories: 20 steps drift apart on 32x32 inputs (training-mode batch norms over 2-8 values per channel
#   in the last stages amplify rounding step by step) and cost minutes at 64x64; the model tier checks one step.
# - Finite differences in eval mode only: in training mode those batch norms make gradients of ~1e6 whose
#   central differences are rounding noise; eval mode checks the same backward code on a smooth function. In the
#   slow tier: ~160 tensors take ~1000 forwards (mobilenet_v2: 10-20 s on 2 shared cores).
# - float32 in eval mode only: in training mode both float32 frameworks are far from float64 themselves (measured
#   at seeds 0-2: torch float32's gradients 2e-3 to 2e-2 relative from float64 in all three, conv1 of resnet50
#   1.3 on a scale of 70, logits and running variances 2-15x torch's default tolerance), so a comparison
#   would test rounding noise. Eval mode: 53 convolutions and batch norms take logits of |x| up to ~120 with
#   errors up to 9e-5 in both frameworks (resnet50, seeds 0-1), hence rtol 1e-5 / atol 1e-4. A ReLU input within
#   rounding of its kink routes a gradient differently; the engine arbitrates with float64 and retries seeds.
_TORCHVISION = dict(batch=2, trajectory_dtypes=(), gradcheck_input=(1, 3, 32, 32), gradcheck_coords=(1, 1),
                    gradcheck_modes=("eval",), gradcheck_slow=True, float32_modes=("eval",), budget=_BN_BUDGET,
                    float32=Tolerance(1e-5, 1e-4, "53 float32 convolutions and batch norms; logits up to ~120"))
# resnet50 as DeepLabV3's backbone: layer3 and layer4 dilated (2 and 4) instead of strided. float64 only: their 8x8
# maps hold 16x the ReLU inputs of resnet50's, and float32 flips some of them at every seed tried (0-4) in NumPy
# and torch alike (torch float32's stem gradients 15-35x the tolerance from float64 at seeds 1-2), so float32
# would compare kink flips; the op tier checks dilated convolutions in float32.
_DILATED = {"torchvision.resnet50(dilated)": ModelVariant(dict(replace_stride_with_dilation=(False, True, True)),
                                                         (3, 64, 64), batch=2, float32_modes=())}


def _torchvision_spec(name: str, quirks: ModelQuirks) -> ModelSpec:
    """A zoo entry for torchvision's `name`: NumPy twin with torchvision's init, torch twin torchvision's model."""
    architecture = getattr(architectures, name)
    return ModelSpec(name, (3, 64, 64), 1000, _numpy_builder(getattr(architectures, f"{name}_numpy")),
                     architectures.torchvision_model(name), recipes={}, architecture=architecture, quirks=quirks)


_SPECS = {
    spec.name: spec
    for spec in [
        ModelSpec(
            "tiny_cnn", (1, 8, 8), 10, *_twin(architectures.tiny_cnn), architecture=architectures.tiny_cnn,
            quirks=ModelQuirks(batch=4, trajectory_batch=8, gradcheck_coords=(40, 40)),
            recipes={"digits": TrainRecipe(**_DIGITS)},
        ),
        ModelSpec(
            "tiny_resnet", (1, 8, 8), 10, *_twin(architectures.tiny_resnet), architecture=architectures.tiny_resnet,
            quirks=ModelQuirks(batch=4, trajectory_batch=8, gradcheck_coords=(40, 40)),
            recipes={"digits": TrainRecipe(**_DIGITS)},
        ),
        ModelSpec(
            "tiny_mobilenet", (1, 8, 8), 10, *_twin(architectures.tiny_mobilenet),
            architecture=architectures.tiny_mobilenet,
            quirks=ModelQuirks(batch=4, trajectory_batch=8, gradcheck_coords=(40, 40)),
            recipes={"digits": TrainRecipe(**_DIGITS)},
        ),
        ModelSpec(
            "simple_cnn", (3, 32, 32), 4, *_twin(architectures.simple_cnn), architecture=architectures.simple_cnn,
            quirks=ModelQuirks(gradcheck_input=(2, 3, 16, 16), budget=_BN_BUDGET),
            recipes={"shapes": TrainRecipe("adam", 1e-3, 32, 12, weight_decay=1e-4, step_size=9, gamma=0.5)},
        ),
        ModelSpec(
            "mnist_cnn", (1, 28, 28), 10, *_twin(architectures.mnist_cnn), architecture=architectures.mnist_cnn,
            recipes={"mnist": _MNIST_CNN, "idx": _MNIST_CNN},
        ),
        ModelSpec(
            "resnet18", (1, 8, 8), 10,
            _numpy_builder(architectures.resnet18_numpy), architectures.resnet18_torch,
            recipes={
                "digits": TrainRecipe("adam", 1e-3, 128, 8, step_size=4, baseline_seeds=3),
                "mnist": _MNIST_RESNET18,
                "idx": _MNIST_RESNET18,
            },
            options={"in_channels": 1, "num_classes": 10, "small_stem": True}, architecture=architectures.resnet18,
            quirks=_RESNET18,
        ),
        _torchvision_spec("resnet50", ModelQuirks(**_TORCHVISION, slow=True, variants=_DILATED)),
        _torchvision_spec("resnext50_32x4d", ModelQuirks(**_TORCHVISION, slow=True)),
        _torchvision_spec("mobilenet_v2", ModelQuirks(**_TORCHVISION)),
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
