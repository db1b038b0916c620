"""The checks of each tier, from the op database and the zoo: what each one needs, draws and runs.

Every tier is a function (dtypes, devices) -> list of check specifications (the fields of `engine.Check` but
the namespace); an example takes the namespace, a snippet function (the reproduction of a case, given its
arguments) and the case's arguments.
"""

from __future__ import annotations

import numpy as np

from reference import zoo
from reference.testing.compare import Where
from reference.testing.strategies import seeds

from .database import OPS
from .models import MODEL_REGIMES, OPTIMIZER_CLASSES, TRAJECTORY_STEPS, assert_model_matches, run_trajectory
from .namespace import model_needs
from .regimes import FINITE, GAUSSIAN

MODES = ("train", "eval")
GRADCHECK_DEPTH = 0.2  # gradcheck and gradgradcheck evaluate each op many times per example


def _drawn(subject, dtype: str, regimes=None):
    """The arguments an op example draws: a configuration, a seed and a value regime (Gaussian, or one the op
    declares; `regimes` narrows them, () to Gaussian), well posed together in `dtype`."""
    from hypothesis import strategies as st

    regimes = subject.regimes if regimes is None else tuple(r for r in subject.regimes if r in (*regimes, GAUSSIAN))
    case = st.tuples(subject.configs(), st.sampled_from(regimes)).filter(
        lambda pair: subject.well_posed(pair[0], dtype, pair[1]))
    return lambda: st.builds(lambda pair, seed: dict(config=pair[0], seed=seed, regime=pair[1]), case, seeds)


def op_checks(dtypes, devices) -> list[dict]:
    from .harness import assert_matches_torch

    def example(subject, dtype, device):
        def run(nn, snippet, config, seed, regime=GAUSSIAN):
            assert_matches_torch(nn, subject, config, seed, dtype, device, "op", snippet(config=config, seed=seed,
                                                                                          regime=regime), regime=regime)
        return run

    return [dict(tier="op", subject=subject.name, dtype=dtype, device=device, example=example(subject, dtype, device),
                 needs=lambda op=op: op.needs, draw=_drawn(subject, dtype))
            for op in OPS for subject in op.subjects() for dtype in op.dtypes if dtype in dtypes for device in devices]


def oracle_checks(dtypes, devices) -> list[dict]:
    """SciPy and gradcheck, float64 on the CPU only (finite differences need float64)."""
    from .harness import assert_matches_scipy
    from .oracles import gradients_pass_gradcheck

    if "float64" not in dtypes or "cpu" not in devices:
        return []

    def scipy(subject):
        def run(nn, snippet, config, seed, regime=GAUSSIAN):
            where = Where("oracle", _tagged(subject.name, "scipy"), "float64", "cpu",
                          snippet(config=config, seed=seed, regime=regime))
            assert_matches_scipy(nn, subject, config, seed, where, regime)
        return run

    def gradcheck(subject):
        def run(nn, snippet, config, seed, regime=GAUSSIAN):  # drawn Gaussian only: finite differences need smoothness
            gradients_pass_gradcheck(nn, subject, config, seed, Where("oracle", _tagged(subject.name, "gradcheck"),
                                                                      "float64", "cpu", snippet(config=config,
                                                                                                seed=seed)))
        return run

    found = [dict(tier="oracle", subject=_tagged(subject.name, "scipy"), dtype="float64", device="cpu",
                  example=scipy(subject), needs=lambda op=op: op.needs, draw=_drawn(subject, "float64", FINITE))
             for op in OPS if op.scipy is not None for subject in op.subjects()]
    found += [dict(tier="oracle", subject=_tagged(subject.name, "gradcheck"), dtype="float64", device="cpu",
                   example=gradcheck(subject), needs=lambda op=op: op.needs, draw=_drawn(subject, "float64", ()),
                   depth=GRADCHECK_DEPTH)
              for op in OPS for subject in op.subjects() if subject.gradcheck]
    return found


def _tagged(name: str, tag: str) -> str:
    """"Conv2d" -> "Conv2d[tag]", "BatchNorm2d[train]" -> "BatchNorm2d[train,tag]"."""
    return f"{name[:-1]},{tag}]" if name.endswith("]") else f"{name}[{tag}]"


def model_cases():
    """(zoo name, variant or None, label) of every model the model tier checks."""
    return [(name, variant, variant or name) for name in zoo.names()
            for variant in (None, *zoo.spec(name).quirks.variants)]


def model_modes(name: str, variant: str | None, dtypes) -> list[tuple[str, str]]:
    """(mode, dtype) pairs the model tier checks for a zoo model or variant (quirks may leave float32 modes out)."""
    quirks = zoo.spec(name).quirks
    float32 = quirks.variants[variant].float32_modes if variant else None
    float32 = quirks.float32_modes if float32 is None else float32
    return [(mode, dtype) for mode in MODES for dtype in dtypes if dtype != "float32" or mode in float32]


def model_checks(dtypes, devices) -> list[dict]:
    """Every zoo model (and variant) per mode, dtype and device: a Gaussian batch, an all-zero one, and a batch of
    one example (models.MODEL_REGIMES), each against the torch twin."""
    def example(name, variant, mode, dtype, device):
        def run(nn, snippet, seed=0, cases=MODEL_REGIMES if dtype == "float64" else MODEL_REGIMES[:1]):
            for regime, size in cases:
                assert_model_matches(nn, name, mode, dtype, device, seed, variant,
                                     lambda s, case=(regime, size): snippet(seed=s, cases=(case,)), regime, size)
        return run

    return [dict(tier="model", subject=f"{label}[{mode}]", dtype=dtype, device=device,
                 example=example(name, variant, mode, dtype, device),
                 needs=lambda name=name, variant=variant: model_needs(name, variant), slow=zoo.spec(name).quirks.slow)
            for name, variant, label in model_cases() for mode, dtype in model_modes(name, variant, dtypes)
            for device in devices]


def trajectory_checks(dtypes, devices) -> list[dict]:
    def example(name, optimizer, dtype, device):
        def run(nn, snippet, seed=0, steps=TRAJECTORY_STEPS):
            history = run_trajectory(nn, name, optimizer, dtype, device, steps, seed, snippet(seed=seed, steps=steps))
            assert len(history["param_gap"]) == steps
        return run

    return [dict(tier="trajectory", subject=f"{name}[{optimizer}]", dtype=dtype, device=device,
                 example=example(name, optimizer, dtype, device),
                 needs=lambda name=name, optimizer=optimizer: (*model_needs(name), OPTIMIZER_CLASSES[optimizer]))
            for name in zoo.names() for optimizer in OPTIMIZER_CLASSES for dtype in dtypes
            if dtype in zoo.spec(name).quirks.trajectory_dtypes for device in devices]


def device_checks(dtypes, devices) -> list[dict]:
    """torch on CUDA against torch on the CPU, per op and per model (the namespace supplies dropout masks)."""
    if "cuda" not in devices:
        return []
    found = [dict(tier="device", subject=subject.name, dtype=dtype, device="cuda",
                  example=_op_on_devices(subject, dtype), needs=lambda op=op: op.needs, draw=_drawn(subject, dtype))
             for op in OPS for subject in op.subjects() for dtype in op.dtypes if dtype in dtypes]
    found += [dict(tier="device", subject=f"{label}[{mode}]", dtype=dtype, device="cuda",
                   example=_model_on_devices(name, variant, mode, dtype),
                   needs=lambda name=name, variant=variant: model_needs(name, variant), slow=zoo.spec(name).quirks.slow)
              for name, variant, label in model_cases() for mode, dtype in model_modes(name, variant, dtypes)]
    return found


def _op_on_devices(subject, dtype):
    def run(nn, snippet, config, seed, regime=GAUSSIAN):
        import torch

        from .harness import compare_results, run_implementation
        from .runners import runners
        from .tensors import TORCH_DTYPES, cast_floats, torch_device

        make_data, _, run_torch = runners(subject)
        where = Where("device", subject.name, dtype, "cuda", snippet(config=config, seed=seed, regime=regime))
        inputs = cast_floats(make_data(config, seed, regime), np.dtype(dtype))
        ours = run_implementation(nn, subject, config, inputs, where)  # side data (dropout masks) both devices use
        on_cpu = run_torch(config, inputs, ours, torch.device("cpu"), TORCH_DTYPES[dtype])
        on_cuda = run_torch(config, inputs, ours, torch_device("cuda"), TORCH_DTYPES[dtype])
        compare_results(on_cuda, on_cpu, where, subject.tolerance(dtype))
    return run


def _model_on_devices(name, variant, mode, dtype):
    def run(nn, snippet, seed=0):
        import torch

        from .harness import compare_results
        from .models import batch, case, step_ours, step_torch, twins
        from .tensors import TORCH_DTYPES, torch_device
        from .tolerances import DEFAULT

        options, input_shape, classes, size = case(name, variant)
        ours, on_cpu = twins(nn, name, dtype, "cpu", seed, options)
        _, on_cuda = twins(nn, name, dtype, "cuda", seed, options)
        x, y = batch(input_shape, classes, size, seed)
        x, training = x.astype(dtype), mode == "train"
        masks = step_ours(nn, ours, x, y, training)["_masks"]  # both devices drop the units the namespace dropped
        cpu = step_torch(on_cpu, x, y, training, masks, torch.device("cpu"), TORCH_DTYPES[dtype])
        cuda = step_torch(on_cuda, x, y, training, masks, torch_device("cuda"), TORCH_DTYPES[dtype])
        tol = (zoo.spec(name).quirks.float32 or DEFAULT["float32"]) if dtype == "float32" else DEFAULT[dtype]
        compare_results(cuda, cpu, Where("device", f"{variant or name}[{mode}]", dtype, "cuda", snippet(seed=seed)),
                        tol)
    return run


def statistics_checks(dtypes, devices) -> list[dict]:
    """What the implementation draws at random (dropout masks, initial parameters) against torch's distributions,
    by statistical tests (CPU: the draws are the implementation's own)."""
    from .statistics import STATISTICS

    if "cpu" not in devices:
        return []

    def example(subject, test, op, dtype):
        def run(nn, snippet):
            test(nn, op, dtype, Where("statistics", subject, dtype, "cpu", snippet()))
        return run

    return [dict(tier="statistics", subject=subject, dtype=dtype, device="cpu",
                 example=example(subject, test, op, dtype), needs=lambda op=op: (op,))
            for subject, (op, test) in STATISTICS.items() for dtype in dtypes]


TIER_CHECKS = {"op": op_checks, "oracle": oracle_checks, "model": model_checks, "trajectory": trajectory_checks,
               "statistics": statistics_checks, "device": device_checks}
