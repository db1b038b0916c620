"""The op database (OpInfo style): every layer, loss, optimizer and schedule the engine checks, described once.

An `OpInfo` holds what every tier and the property tests need to know about one op: its configurations
(valid, and invalid constructions), how the layer and its torch twin are built, the input ranks it accepts,
its tolerance rows with their reasons, which oracles apply (gradcheck/gradgradcheck, SciPy) and the mutations
that each oracle must catch. Its `variants` are the ways the op tier runs it (training / eval mode, dropout
forced off or driven by the layer's mask), each one subject of the report: "BatchNorm2d[train]".

Adding a layer: its math and module in `reference.numpy_nn`, its strategy in `reference.testing.strategies`,
and one entry in `OPS` below. Every tier (and the property tests' shared lists) picks it up.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from functools import cache
from typing import Any

from reference.testing import strategies as S
from reference.testing.compare import Budget, Tolerance

from . import mutations as M
from . import scipy_oracles
from .regimes import GAUSSIAN
from .tolerances import DEFAULT, DEFAULT_BUDGET, F64


@dataclass(frozen=True)
class Mutation:
    """A deliberate bug patched into `reference.numpy_nn`, and the oracles that must each catch it.

    `oracles` names "torch" (the op tier), "scipy", "gradcheck", "trajectory:<model>:<optimizer>" or
    "statistics:<subject>" (the statistics tier's subject)."""

    patch: Callable  # (monkeypatch) -> None
    config: Any
    oracles: tuple[str, ...]
    variant: str = ""  # the variant suffix the torch and gradcheck oracles run
    regime: str = GAUSSIAN  # the value regime of the torch and SciPy oracles' input (the edge it hides behind)

    @property
    def name(self) -> str:
        return self.patch.__name__


@dataclass(frozen=True)
class Variant:
    """One way the op tier runs an op; `suffix` names it in the report ("[train]")."""

    suffix: str = ""
    configs: Callable | None = None  # () -> strategy of the configurations it runs; None: the op's
    training: bool = True
    p: float | None = None  # dropout probability forced onto every configuration (None: as drawn)
    driven_by_mask: bool = False  # torch's dropout keeps exactly the units the layer's `mask` kept
    gradcheck: bool = True  # the gradcheck oracle applies (where the op's `gradcheck` does)
    well_posed: Callable | None = None  # (config, dtype, regime) -> False for cases excluded in that dtype
    tolerances: Mapping[str, Tolerance] | None = None  # per dtype; None: the op's rows


@dataclass(frozen=True)
class OpInfo:
    """One op: a class of the layer namespace (and of torch.nn) or a loss / optimizer / schedule."""

    name: str
    kind: str  # "layer", "loss" or "optimizer": which runners make its data and run both sides
    configs: Callable  # () -> strategy of valid configurations (a LayerConfig, or a plain dict)
    invalid: Callable | None = None  # () -> strategy of InvalidConstruction the layer must reject
    variants: tuple[Variant, ...] = (Variant(),)
    requires: tuple[str, ...] = ()  # other namespace names the op is built from
    build: Callable | None = None  # (namespace, config) -> module; None: namespace.<name>(**config.kwargs)
    torch_twin: Callable | None = None  # config -> torch module; None: torch.nn.<name>(**config.kwargs)
    tolerances: Mapping[str, Tolerance] = field(default_factory=lambda: DEFAULT)
    budget: Budget = DEFAULT_BUDGET
    gradcheck: bool = False  # torch's gradients pass gradcheck/gradgradcheck, ours gradcheck, both agree
    scipy: Callable | None = None  # (results, config, data, where) -> None: judges the implementation's results
    # with an oracle independent of torch, on the configurations of every variant
    mutations: tuple[Mutation, ...] = ()
    ndim: tuple[int, ...] = (4,)  # input ranks accepted
    channels: bool = False  # insists on the size of dim 1
    window: bool = False  # slides a kernel: the padded input must fit it
    parametric: bool = False  # has parameters
    random: bool = False  # draws a mask in training mode
    dtypes: tuple[str, ...] = ("float64", "float32")
    regimes: tuple[str, ...] = ()  # value regimes drawn beside Gaussian inputs (see `regimes`)

    def subjects(self) -> list[Subject]:
        return [Subject(self, variant) for variant in self.variants]

    @property
    def needs(self) -> tuple[str, ...]:
        """Every name the namespace must have for this op to be implemented."""
        return (self.name, *self.requires)


@dataclass(frozen=True)
class Subject:
    """An op in one variant: what one row of the report (per dtype and device) is about."""

    op: OpInfo
    variant: Variant

    @property
    def name(self) -> str:
        return self.op.name + self.variant.suffix

    def configs(self):
        strategy = (self.variant.configs or self.op.configs)()
        p = self.variant.p
        return strategy if p is None else strategy.map(lambda cfg: replace(cfg, kwargs={**cfg.kwargs, "p": p}))

    def tolerance(self, dtype: str) -> Tolerance:
        rows = self.variant.tolerances or self.op.tolerances
        return rows.get(dtype) or DEFAULT[dtype]

    def well_posed(self, config, dtype: str, regime: str = GAUSSIAN) -> bool:
        return self.variant.well_posed is None or self.variant.well_posed(config, dtype, regime)

    @property
    def gradcheck(self) -> bool:
        return self.op.gradcheck and self.variant.gradcheck

    @property
    def regimes(self) -> tuple[str, ...]:
        """The value regimes its inputs are drawn in: Gaussian, and the op's edge regimes."""
        return (GAUSSIAN, *self.op.regimes)


# -- building blocks of the entries ----------------------------------------------------------------------------

def _basic_block(nn, config):
    from reference.zoo.architectures import basic_block

    return basic_block(nn, **config.kwargs)


def _torch_basic_block(config):
    """torchvision's BasicBlock with the same projection rule (the zoo's `basic_block`)."""
    import torch
    from torchvision.models.resnet import BasicBlock

    from reference.zoo.architectures import basic_block

    class TorchBlocks:
        Sequential, Conv2d, BatchNorm2d = torch.nn.Sequential, torch.nn.Conv2d, torch.nn.BatchNorm2d

    TorchBlocks.BasicBlock = BasicBlock
    return basic_block(TorchBlocks, **config.kwargs)


def _torch_residual_block(config):
    from reference.zoo.torch_nn import ResidualBlock

    return ResidualBlock(**config.kwargs)


def batch_norm_well_conditioned(cfg, dtype, regime=GAUSSIAN) -> bool:
    """float32 and a training-mode BatchNorm fed by a convolution: at least 4 values per channel, and not all-zero
    inputs.

    With 2 values per channel x_hat is +-(1 - O(eps / d^2)) and the backward is a near-total cancellation
    (condition number ~ d^2 / eps ~ 1e5 for eps = 1e-5), so in float32 both frameworks return rounding noise
    of ~1e-3 relative and a comparison would test noise, not conformance. All-zero inputs give the first batch
    norm variance 0: its backward multiplies the float32 rounding of the upstream chain by 1/sqrt(eps) = 316
    (measured: 1e-4 relative between torch and NumPy on a gradient of 9). float64 runs every case.
    """
    n, _, h, w = cfg.output_shape
    return dtype != "float32" or (n * h * w >= 4 and regime != "zeros")


TRAIN_EVAL = (Variant("[train]"), Variant("[eval]", training=False))
DROPOUT_VARIANTS = (Variant("[p=0]", p=0.0, gradcheck=False), Variant("[eval]", training=False, gradcheck=False),
                    Variant("[mask]", driven_by_mask=True, gradcheck=False))
EVERY_RANK = tuple(range(0, 33))
UNBATCHED = (3, 4)  # (C, H, W) or (N, C, H, W), as torch (Dropout2d: (N, C, L) or (N, C, H, W))

CONV = S.LayerConfig("Conv2d", dict(in_channels=2, out_channels=3, kernel_size=3, stride=2, padding=1, bias=True),
                     (2, 2, 5, 6), (2, 3, 3, 3))
BATCH_NORM = S.LayerConfig("BatchNorm2d", dict(num_features=3, eps=1e-5, momentum=0.1), (2, 3, 3, 2), (2, 3, 3, 2))
MAX_POOL = S.LayerConfig("MaxPool2d", dict(kernel_size=2, stride=2, padding=0), (2, 2, 4, 6), (2, 2, 2, 3))
MAX_POOL_PADDED = S.LayerConfig("MaxPool2d", dict(kernel_size=2, stride=2, padding=1), (2, 2, 4, 4), (2, 2, 3, 3))
# The mutations' configurations over torch's other arguments, keyword for keyword as the strategies draw them.
CONV_DILATED = S.LayerConfig("Conv2d", dict(in_channels=2, out_channels=3, kernel_size=3, stride=1, padding=2,
                                            dilation=2, groups=1, bias=True, padding_mode="zeros"),
                             (2, 2, 6, 7), (2, 3, 6, 7))
CONV_GROUPED = S.LayerConfig("Conv2d", dict(in_channels=4, out_channels=6, kernel_size=3, stride=1, padding=1,
                                            dilation=1, groups=2, bias=True, padding_mode="zeros"),
                             (2, 4, 5, 5), (2, 6, 5, 5))
CONV_SAME = S.LayerConfig("Conv2d", dict(in_channels=2, out_channels=3, kernel_size=(2, 4), stride=1, padding="same",
                                         dilation=1, groups=1, bias=True, padding_mode="zeros"),
                          (2, 2, 5, 6), (2, 3, 5, 6))  # totals d (k - 1) = 1 and 3: an odd pixel on both axes
MAX_POOL_CEIL = S.LayerConfig("MaxPool2d", dict(kernel_size=2, stride=2, padding=(0, 0), ceil_mode=True,
                                                dilation=(1, 1), return_indices=False), (2, 2, 5, 5), (2, 2, 3, 3))
MAX_POOL_INDICES = S.LayerConfig("MaxPool2d", dict(kernel_size=2, stride=2, padding=(0, 0), ceil_mode=False,
                                                   dilation=(1, 1), return_indices=True), (2, 3, 4, 4), (2, 3, 2, 2))
AVG_POOL_WITHOUT_PAD = S.LayerConfig("AvgPool2d", dict(kernel_size=3, stride=2, padding=(1, 1), ceil_mode=False,
                                                       count_include_pad=False, divisor_override=None),
                                     (2, 2, 5, 5), (2, 2, 3, 3))
BATCH_NORM_CUMULATIVE = S.LayerConfig("BatchNorm2d", dict(num_features=3, eps=1e-5, momentum=None, affine=True,
                                                          track_running_stats=True), (2, 3, 3, 2), (2, 3, 3, 2))
ADAM = dict(optimizer="Adam", kwargs=dict(lr=1e-2, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0),
            shapes=[(3,), (2, 2)], steps=3, skip_steps=[])
SGD_DECAYED = dict(optimizer="SGD", kwargs=dict(lr=0.1, momentum=0.9, dampening=0.0, weight_decay=0.1, nesterov=False),
                   shapes=[(3,), (2, 2)], steps=3, skip_steps=[])
STEP_LR = dict(optimizer="SGD", kwargs=dict(lr=1.0), schedule=dict(step_size=2, gamma=0.5), shapes=[(3,), (2, 2)],
               steps=5, skip_steps=[])
SMOOTHED = dict(batch=3, classes=4, label_smoothing=0.2, logit_scale=3.0)
HARDTANH = S.LayerConfig("Hardtanh", dict(min_val=-1.0, max_val=1.0), (3, 8), (3, 8))
RELU6 = S.LayerConfig("ReLU6", {}, (3, 8), (3, 8))
RELU = S.LayerConfig("ReLU", {}, (3, 8), (3, 8))
DROPOUT = S.LayerConfig("Dropout", dict(p=0.5), (4, 5), (4, 5))
ADAPTIVE_MAX_POOL = S.LayerConfig("AdaptiveMaxPool2d", dict(output_size=(2, 2), return_indices=False), (2, 2, 5, 5),
                                  (2, 2, 2, 2))
MAX_POOL_DILATED = S.LayerConfig("MaxPool2d", dict(kernel_size=2, stride=1, padding=(0, 0), ceil_mode=False,
                                                   dilation=(2, 2), return_indices=False), (2, 2, 5, 5), (2, 2, 3, 3))
AVG_POOL_CEIL = S.LayerConfig("AvgPool2d", dict(kernel_size=2, stride=2, padding=(0, 0), ceil_mode=True,
                                                count_include_pad=True, divisor_override=None), (2, 2, 5, 5),
                              (2, 2, 3, 3))
FLATTEN_TO_LAST = S.LayerConfig("Flatten", dict(start_dim=1, end_dim=-1), (2, 3, 4), (2, 12))

# torch's CPU batch norm accumulates float32 reductions in double (ATen's AccumulateType<float, CPU> is double)
# and forms sum((x - mean) * dy) before scaling, while NumPy's float32 closed form rounds x_hat and sums in
# float32; torch float32 is then ~1 ulp from float64 and no float32 yardstick. Measured: weight gradient error
# median 2.2e-5 vs 7.4e-6 on (64, 3, 8, 8) inputs of mean 5, std 3; on 500 random BasicBlocks (train) NumPy's
# error reached 5.8e-6 = 48 ulps of 1 where torch's was 2.1e-7. The floor is therefore 32 / 64 ulps of 1 for
# the ops built on batch norm; the 4x factor is unchanged.
BATCH_NORM_BUDGET = Budget(4.0, 32.0, "torch's CPU batch norm accumulates float32 in double")
# Training mode chains two batch norms: with 4-8 values per channel their backward cancels most of the upstream
# gradient and 1/sigma amplifies what is left, so float32 gradients of O(10) carry errors of ~1e-5 relative in
# both frameworks (measured worst: |diff| 3.2e-4 on a weight gradient of 37, i.e. 9e-6 relative, over 300
# configurations). float64 stays at torch's default.
BASIC_BLOCK_TRAIN = {"float64": F64, "float32": Tolerance(5e-5, 5e-5, "two chained training-mode batch norms on "
                                                                      "4+ values per channel amplify rounding")}

# Value regimes (see `regimes`) each op is drawn in beside Gaussian inputs: where implementations actually differ.
RELU_EDGES = ("bounds", "zeros", "nonfinite")  # is the gradient passed at 0? IEEE propagation (NaN passes it)
CLIP_EDGES = ("bounds", "zeros", "infinite")  # at the bounds? (torch's gradient at NaN depends on the position)
MAX_EDGES = ("ties", "zeros", "nonfinite")  # which tied maximum gets the gradient; NaN is the window's max
PROPAGATING_EDGES = ("zeros", "nonfinite")
NORM_EDGES = ("constant channel", "zeros")  # variance 0
ZEROS, NONFINITE, EXTREME_LOGITS = ("zeros",), ("nonfinite",), ("extreme",)

ARGS = "[args]"  # the variant over every other torch.nn argument (strategies.TORCH_ARGUMENT_CONFIGS)
# Tolerances of the [args] variants, AdaptiveMaxPool2d, ReLU6 and Hardtanh: torch's defaults hold, measured over 200
# configurations per subject and dtype (worst float32 ratio to the tolerance / to the error budget): Conv2d 0.25 /
# 0.18 (a depthwise weight gradient sums N*Ho*Wo products, at most 2*9*9 here), BatchNorm2d 0.50 / 0.38 (momentum=None
# running statistics: the factor 1/k is exact), CrossEntropyLoss 0.08 / 0.17 (weights >= 0.2, so the 1/sum(w_t) of
# weight and ignore_index scales the gradient by at most 5), Linear 0.07 / 0.10, the pools 0.07 / 0.14 (avg-pool
# divisors, ceil_mode and non-dividing adaptive windows round once more: ~1 ulp), elementwise layers 0; float64 at
# most 7e-8 of its tolerance. Max-pool outputs are selections (exact) and their indices integers (compared exactly).

OPS = [
    OpInfo("Conv2d", "layer", S.conv2d_configs, S.conv2d_invalid, gradcheck=True,
           scipy=scipy_oracles.conv2d_matches_scipy, ndim=UNBATCHED, channels=True, window=True, parametric=True,
           variants=(Variant(), Variant(ARGS, configs=S.conv2d_torch_configs)), regimes=ZEROS, mutations=(
               Mutation(M.conv_backward_with_flipped_kernel, CONV, ("torch", "scipy", "gradcheck")),
               Mutation(M.conv_forward_with_flipped_kernel, CONV,
                        ("torch", "scipy", "gradcheck", "trajectory:tiny_cnn:sgd")),
               Mutation(M.conv_dilation_offset_wrong, CONV_DILATED, ("torch", "scipy", "gradcheck"), ARGS),
               Mutation(M.conv_groups_mixing_channels, CONV_GROUPED, ("torch", "scipy", "gradcheck"), ARGS),
               Mutation(M.conv_same_padding_odd_pixel_first, CONV_SAME, ("torch", "scipy", "gradcheck"), ARGS),
               Mutation(M.dilated_conv_weight_gradient_shifted, CONV_DILATED, ("torch", "scipy", "gradcheck"),
                        ARGS))),
    OpInfo("Linear", "layer", S.linear_configs, S.linear_invalid, gradcheck=True, ndim=tuple(range(1, 33)),
           variants=(Variant(), Variant(ARGS, configs=S.linear_torch_configs)), channels=True, parametric=True,
           regimes=ZEROS, mutations=(
               Mutation(M.init_bound_sqrt_3_too_wide, None, ("statistics:Linear[init]", "statistics:Conv2d[init]")),)),
    OpInfo("ReLU", "layer", S.relu_configs, gradcheck=True, ndim=EVERY_RANK, regimes=RELU_EDGES,
           mutations=(Mutation(M.relu_gradient_at_zero, RELU, ("torch",), regime="bounds"),)),
    OpInfo("ReLU6", "layer", lambda: S.hardtanh_configs("ReLU6", min_dims=1), gradcheck=True, ndim=EVERY_RANK,
           regimes=CLIP_EDGES, mutations=(Mutation(M.clip_gradient_at_bounds, RELU6, ("torch",), regime="bounds"),)),
    OpInfo("Hardtanh", "layer", lambda: S.hardtanh_configs(min_dims=1), S.hardtanh_invalid, gradcheck=True,
           ndim=EVERY_RANK, regimes=CLIP_EDGES,
           mutations=(Mutation(M.clip_gradient_at_bounds, HARDTANH, ("torch",), regime="bounds"),)),
    OpInfo("MaxPool2d", "layer", lambda: S.pool2d_configs("MaxPool2d"), lambda: S.pool2d_invalid("MaxPool2d"),
           gradcheck=True, scipy=scipy_oracles.pool2d_matches_scipy, ndim=UNBATCHED, window=True,
           variants=(Variant(), Variant(ARGS, configs=lambda: S.with_return_indices(S.pool2d_torch_configs()))),
           regimes=MAX_EDGES, mutations=(
               Mutation(M.max_pool_argmax_off_by_one, MAX_POOL, ("torch", "gradcheck", "trajectory:tiny_cnn:sgd")),
               Mutation(M.max_pool_with_zero_padding, MAX_POOL_PADDED, ("scipy",)),
               Mutation(M.pool_ceil_mode_drops_last_window, MAX_POOL_CEIL, ("torch", "scipy", "gradcheck"), ARGS),
               Mutation(M.max_pool_indices_flattened_over_batch_and_channels, MAX_POOL_INDICES, ("torch",), ARGS),
               Mutation(M.dilated_max_pool_last_of_tied_maxima, MAX_POOL_DILATED, ("torch",), ARGS, "ties"),
               Mutation(M.max_pool_ignoring_nan, MAX_POOL, ("torch",), regime="nonfinite"))),
    OpInfo("AvgPool2d", "layer", lambda: S.pool2d_configs("AvgPool2d"), lambda: S.pool2d_invalid("AvgPool2d"),
           gradcheck=True, scipy=scipy_oracles.pool2d_matches_scipy, ndim=UNBATCHED, window=True,
           variants=(Variant(), Variant(ARGS, configs=lambda: S.pool2d_torch_configs("AvgPool2d"))),
           regimes=PROPAGATING_EDGES, mutations=(
               Mutation(M.avg_pool_ignoring_count_include_pad, AVG_POOL_WITHOUT_PAD, ("torch", "scipy", "gradcheck"),
                        ARGS),
               Mutation(M.avg_pool_divisor_ceil_mode, AVG_POOL_CEIL, ("torch", "scipy"), ARGS))),
    OpInfo("AdaptiveAvgPool2d", "layer", S.adaptive_avg_pool2d_configs, S.adaptive_avg_pool2d_invalid,
           variants=(Variant(), Variant(ARGS, configs=S.adaptive_pool2d_torch_configs)), gradcheck=True,
           ndim=UNBATCHED, regimes=PROPAGATING_EDGES),
    # Property tests draw batched inputs without indices; the op tier every argument, return_indices included.
    OpInfo("AdaptiveMaxPool2d", "layer", lambda: S.adaptive_pool2d_torch_configs("AdaptiveMaxPool2d", unbatched=False),
           S.adaptive_max_pool2d_invalid, gradcheck=True, ndim=UNBATCHED, variants=(Variant(configs=lambda: (
               S.with_return_indices(S.adaptive_pool2d_torch_configs("AdaptiveMaxPool2d")))),), regimes=MAX_EDGES,
           mutations=(Mutation(M.adaptive_max_pool_last_of_tied_maxima, ADAPTIVE_MAX_POOL, ("torch",),
                               regime="ties"),)),
    OpInfo("BatchNorm2d", "layer", S.batch_norm2d_configs, S.batch_norm2d_invalid, gradcheck=True,
           variants=(*TRAIN_EVAL, Variant("[args,train]", configs=S.batch_norm2d_torch_configs),
                     Variant("[args,eval]", configs=S.batch_norm2d_torch_configs, training=False)),
           budget=BATCH_NORM_BUDGET, channels=True, parametric=True, regimes=NORM_EDGES, mutations=(
               Mutation(M.batch_norm_with_unbiased_variance, BATCH_NORM,
                        ("torch", "gradcheck", "trajectory:simple_cnn:adam"), variant="[train]"),
               Mutation(M.batch_norm_momentum_none_as_default, BATCH_NORM_CUMULATIVE, ("torch",), "[args,train]"))),
    OpInfo("Dropout", "layer", S.dropout_configs, lambda: S.dropout_invalid("Dropout"), variants=DROPOUT_VARIANTS,
           ndim=EVERY_RANK, random=True, regimes=PROPAGATING_EDGES, mutations=(
               Mutation(M.dropout_keeps_one_minus_p_squared, DROPOUT, ("statistics:Dropout[rate]",)),
               Mutation(M.dropout_backward_without_scale, DROPOUT, ("torch",), "[mask]"))),
    OpInfo("Dropout2d", "layer", S.dropout2d_configs, lambda: S.dropout_invalid("Dropout2d"),
           variants=DROPOUT_VARIANTS, ndim=UNBATCHED, random=True, regimes=PROPAGATING_EDGES,
           mutations=(Mutation(M.dropout2d_masks_per_element, None, ("statistics:Dropout2d[channels]",)),)),
    OpInfo("Flatten", "layer", S.flatten_configs, gradcheck=True, ndim=tuple(range(2, 33)),
           variants=(Variant(), Variant(ARGS, configs=S.flatten_torch_configs)), regimes=NONFINITE,
           mutations=(Mutation(M.flatten_negative_end_dim_off_by_one, FLATTEN_TO_LAST, ("torch",), ARGS),)),
    OpInfo("BasicBlock", "layer", S.basic_block_configs, requires=("Conv2d", "BatchNorm2d", "Sequential"),
           variants=(Variant("[train]", well_posed=batch_norm_well_conditioned, tolerances=BASIC_BLOCK_TRAIN),
                     Variant("[eval]", training=False)),
           build=_basic_block, torch_twin=_torch_basic_block, gradcheck=True,
           budget=Budget(4.0, 64.0, "two batch norms (torch's accumulate float32 in double)"),
           channels=True, parametric=True, regimes=ZEROS),
    OpInfo("ResidualBlock", "layer", S.residual_block_configs, torch_twin=_torch_residual_block, gradcheck=True,
           ndim=UNBATCHED, channels=True, parametric=True, regimes=ZEROS),
    OpInfo("CrossEntropyLoss", "loss", S.cross_entropy_configs, gradcheck=True, ndim=(2,),
           variants=(Variant(), Variant(ARGS, configs=S.cross_entropy_torch_configs)), regimes=EXTREME_LOGITS,
           mutations=(Mutation(M.label_smoothing_over_k_minus_1, SMOOTHED, ("torch",)),)),
    OpInfo("SGD", "optimizer", S.sgd_configs, ndim=(),
           mutations=(Mutation(M.sgd_weight_decay_after_momentum, SGD_DECAYED, ("torch",)),)),
    OpInfo("Adam", "optimizer", S.adam_configs, ndim=(), mutations=(
        Mutation(M.adam_without_sqrt_in_bias_correction, ADAM, ("torch", "trajectory:tiny_cnn:adam")),
        Mutation(M.adam_bias_correction_off_by_one, ADAM, ("torch",)))),
    OpInfo("StepLR", "optimizer", S.step_lr_configs, requires=("SGD",), ndim=(),
           mutations=(Mutation(M.step_lr_off_by_one, STEP_LR, ("torch",)),)),
]


@cache
def ops_by_name() -> dict[str, OpInfo]:
    return {op.name: op for op in OPS}


def op_info(name: str) -> OpInfo:
    """The entry of op `name`; a KeyError that lists the database otherwise."""
    try:
        return ops_by_name()[name]
    except KeyError:
        raise KeyError(f"{name!r} is not in the op database ({', '.join(ops_by_name())})") from None


def layer_configs(name: str):
    """Random valid configurations of the layer `name` (one of LAYERS)."""
    return op_info(name).configs()


def invalid_constructions():
    """Constructions every layer of the op database must reject: non-positive sizes, negative padding, pooling
    padding over half the kernel, p/eps/momentum out of range (each entry's `invalid` strategy)."""
    from hypothesis import strategies as st

    return st.one_of(*(op.invalid() for op in layer_ops() if op.invalid is not None))


def wrong_ndim_shapes(cfg: S.LayerConfig):
    """Input shapes of a rank the layer rejects (a dim dropped or added, or 0-d)."""
    from hypothesis import strategies as st

    accepted = op_info(cfg.layer).ndim
    ranks = [r for r in range(0, max(accepted[-1], 4) + 2) if r not in accepted and r <= 6]
    return st.sampled_from(ranks).map(lambda r: tuple(cfg.input_shape[:r]) + (2,) * max(0, r - len(cfg.input_shape)))


def insisted_channels(cfg: S.LayerConfig) -> int | None:
    """The input size along dim 1 the layer of `cfg` insists on (None where any size is accepted)."""
    return cfg.input_shape[1] if op_info(cfg.layer).channels else None


@cache
def subjects_by_name() -> dict[str, Subject]:
    return {subject.name: subject for op in OPS for subject in op.subjects()}


def layer_ops() -> list[OpInfo]:
    """The entries that are layers (modules with forward/backward), in database order."""
    return [op for op in OPS if op.kind == "layer"]


# The facts the property tests draw on, derived from the layer entries.
LAYERS = [op.name for op in layer_ops()]
PARAMETRIC_LAYERS = [op.name for op in layer_ops() if op.parametric]
CHANNEL_LAYERS = [op.name for op in layer_ops() if op.channels]  # fixed size of dim 1
WINDOW_LAYERS = [op.name for op in layer_ops() if op.window]  # sliding a kernel: the input must fit it
NDIM = {op.name: op.ndim for op in layer_ops()}  # the input ranks each layer accepts
