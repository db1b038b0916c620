"""The model and trajectory tiers: zoo models built from the namespace under test against their torch twins.

Both twins get one state: the torch twin's seeded initialisation with random batch-norm affine parameters and
running statistics (so eval mode is not an identity), loaded into both. Steps go through the project's one
stepper per framework (`reference.train.NumpyStepper` / `TorchStepper`, with the namespace's CrossEntropyLoss).

`assert_model_matches` compares logits, loss, the input gradient, every parameter gradient and every buffer after
one step that leaves the parameters as they are (SGD with lr 0). In training mode torch's dropout is *driven by
the implementation's masks*: a forward hook replaces each torch dropout's output by torch's own formula
`input * keep / (1 - p)` with the kept units of the same-named module. `run_trajectory` trains both twins
TRAJECTORY_STEPS steps on identical batches (dropout off in both: mask streams cannot be shared step by step)
and compares loss, parameters, optimizer state and buffers after every step.
"""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import torch

from reference import zoo
from reference.testing import compare
from reference.testing.compare import Where, as_numpy, assert_close, error_stats, record
from reference.testing.states import randomize_batch_norm
from reference.train import NumpyStepper, TorchStepper

from .harness import arbitrated, check_budget, compare_results, note_forward_only
from .namespace import build_model, model_options
from .protocol import Model, RandomLayer
from .regimes import GAUSSIAN, values
from .runners import buffers, parameter_gradients, require, with_gradients
from .tensors import TORCH_DTYPES, to_torch, torch_device, torch_state
from .tolerances import DEFAULT, DEFAULT_BUDGET, EXACT, TRAJECTORY
from .verdicts import as_result, implementation

# One step that leaves the parameters as they are: the gradients of the state under test are compared.
GRADIENTS_ONLY = zoo.TrainRecipe("sgd", lr=0.0, batch_size=1, epochs=1)
TRAJECTORY_STEPS = 20
TRAJECTORY_OPTIMIZERS = {"sgd": dict(lr=0.05, momentum=0.9, weight_decay=1e-4),
                         "adam": dict(lr=1e-3, weight_decay=1e-4)}
OPTIMIZER_CLASSES = {"sgd": "SGD", "adam": "Adam"}
STATE_KEYS = {"sgd": ("momentum_buffer",), "adam": ("exp_avg", "exp_avg_sq")}
FLIP_RETRIES = 5  # seeds tried in float32 before a gradient disagreement alone counts as a bug


def trajectory_recipe(optimizer: str, batch_size: int) -> zoo.TrainRecipe:
    return zoo.TrainRecipe(optimizer, batch_size=batch_size, epochs=1, **TRAJECTORY_OPTIMIZERS[optimizer])


def batch(input_shape, num_classes: int, size: int, seed: int, regime: str = GAUSSIAN):
    """A random batch (inputs in the value `regime`, N(0, 1) by default; integer targets) of `input_shape`
    (C, H, W), generated on the CPU."""
    rng = np.random.default_rng(seed)
    return values(regime, rng, (size, *input_shape), None), rng.integers(0, num_classes, size)


def case(name: str, variant: str | None = None):
    """(options, input shape, classes, model-tier batch) of a zoo model or one of its variants."""
    spec = zoo.spec(name)
    options = model_options(name, variant)
    if variant:
        entry = spec.quirks.variants[variant]
        return options, entry.input_shape, options.get("num_classes", spec.num_classes), entry.batch
    return options, spec.input_shape, spec.num_classes, spec.quirks.batch


def twins(nn, name: str, dtype: str, device: str, seed: int = 0, options=None):
    """(the namespace's model, torch model on `device`) holding one state: the torch twin's seeded init with
    random batch norms."""
    options = options or {}
    torch_model = zoo.build(name, "torch", seed=seed, **options)
    state = randomize_batch_norm(torch_state(torch_model), np.random.default_rng(seed + 1))
    with implementation(f"building {name} from {nn.__name__} and loading its state"):
        ours = require(build_model(nn, name, **options), Model, f"{name} built from {nn.__name__}")
        ours.to(np.dtype(dtype))
        ours.load_state_dict(state)
    torch_model = torch_model.to(TORCH_DTYPES[dtype])
    torch_model.load_state_dict({key: torch.as_tensor(value) for key, value in state.items()})
    return ours, torch_model.to(torch_device(device))


class _InputGradient:
    """A model as the stepper sees it, keeping the input gradient its backward returns."""

    def __init__(self, model):
        self.model, self.grad = model, None

    def __call__(self, x):
        return self.model(x)

    def backward(self, grad_out):
        self.grad = self.model.backward(grad_out)
        return self.grad

    def parameters(self):
        return (param for _, param in self.model.named_parameters())


def step_ours(nn, model, x, y, training: bool) -> dict:
    """One gradient step of the namespace's model: results by name, plus the dropout masks drawn ("_masks"); only
    the forward results where the implementation's backward raises NotImplementedError."""
    from reference import numpy_nn

    with implementation(f"{type(model).__name__} of {nn.__name__}"):
        model.train(training)
        recording = _InputGradient(model)
        layers = SimpleNamespace(CrossEntropyLoss=nn.CrossEntropyLoss, SGD=numpy_nn.SGD)  # any namespace: lr-0 SGD
        stepper = NumpyStepper(recording, GRADIENTS_ONLY, layers=layers)
        loss, logits = stepper.forward(x.copy(), y.copy())
        results = {"forward": logits, "loss": np.asarray(loss, dtype=x.dtype)}
        results = with_gradients(results, lambda: (stepper.update(), {"grad[input]": recording.grad,
                                                                      **parameter_gradients(model)})[1])
        masks = {name: m.mask for name, m in model.named_modules()
                 if isinstance(m, RandomLayer) and m.mask is not None}
        return {**results, **buffers(model), "_masks": masks if training else {}}


def step_torch(model, x, y, training: bool, masks: dict, device, dtype) -> dict:
    """The same step in torch; each dropout module keeps exactly the units its namesake in `masks` kept."""
    model.train(training)
    hooks = [module.register_forward_hook(_driven(masks, name, device))
             for name, module in model.named_modules() if training and _is_dropout(module) and module.p > 0]
    try:
        x_t = to_torch(x, device, dtype, requires_grad=True)
        loss, logits = TorchStepper(model, GRADIENTS_ONLY, device).step(x_t, to_torch(y, device))
    finally:
        for hook in hooks:
            hook.remove()
    results = {"forward": logits, "loss": loss, "grad[input]": x_t.grad}
    results.update({f"grad[{n}]": p.grad for n, p in model.named_parameters()})
    results.update({f"buffer[{n}]": b for n, b in model.named_buffers()})
    return results


def _is_dropout(module) -> bool:
    return isinstance(module, (torch.nn.Dropout, torch.nn.Dropout2d))


def _maskless(name: str) -> NotImplementedError:
    return NotImplementedError(f"dropout {name!r}: the implementation exposes no mask of its last forward, needed "
                               "to drive torch's dropout (see reference.testing.conformance.protocol.RandomLayer)")


def require_masks(ours_model, torch_model) -> None:
    """NotImplementedError unless every dropout of the torch twin has a namesake in the implementation's model
    that exposes `p` and its `mask` (the model and trajectory tiers need both)."""
    modules = dict(ours_model.named_modules())
    for name, module in torch_model.named_modules():
        if _is_dropout(module) and not isinstance(modules.get(name), RandomLayer):
            raise _maskless(name)


def _driven(masks: dict, name: str, device):
    if name not in masks:
        raise _maskless(name)
    keep = to_torch(np.asarray(masks[name], dtype=np.float64) != 0, device)

    def drive(module, inputs, output):
        noise = keep.to(inputs[0].dtype) / (1.0 - module.p) if module.p < 1 else torch.zeros_like(inputs[0])
        return inputs[0] * noise

    return drive


class KinkFlip(Exception):
    """float32 took the other side of a kink (ReLU at 0, max-pool near-tie) than torch float32 and float64 did."""


# The model tier's batches: the model's Gaussian batch and, in float64, a batch of one example (training-mode batch
# statistics over one image; in float32 a batch norm over the few values left per channel deep in a model scales
# rounding like a zero-variance one: torchvision's resnet18 input gradients 1.2e-4 apart). Not an all-zero batch:
# past the first layer its ties (constant feature maps, then max-pool windows of equal values) are broken by each
# framework's rounding noise, and a batch norm with variance 0 scales that noise by 1/sqrt(eps) (measured, float64:
# input gradients 2.8e-4 apart on tiny_mobilenet, bias gradients 2.7e-6 apart on resnet18); the op tier checks
# zeros on every layer, where ties are exact.
MODEL_REGIMES = ((GAUSSIAN, None), (GAUSSIAN, 1))


def assert_model_matches(nn, name: str, mode: str, dtype: str, device: str = "cpu", seed: int = 0,
                         variant: str | None = None, reproduce=None, regime: str = GAUSSIAN,
                         size: int | None = None) -> None:
    """Logits, loss and every gradient and buffer of a zoo model (or variant) built from `nn`, against torch, on a
    batch in the value `regime` of `size` examples (default: the model's); `reproduce(seed)` is the snippet a
    failure prints."""
    options, input_shape, classes, default_size = case(name, variant)
    quirks = zoo.spec(name).quirks
    tol = (quirks.float32 or DEFAULT["float32"]) if dtype == "float32" else DEFAULT[dtype]

    def check(attempt_seed, forgive_flips):
        where = Where("model", f"{variant or name}[{mode}]", dtype, device,
                      reproduce(attempt_seed) if reproduce else "")
        ours_model, torch_model = twins(nn, name, dtype, device, attempt_seed, options)
        x, y = batch(input_shape, classes, size or default_size, attempt_seed, regime)
        if not _torch_accepts(torch_model, x, mode == "train"):
            return  # e.g. one example in training mode where a batch norm then sees one value per channel
        exact = lambda: zoo.build(name, "torch", seed=attempt_seed, **options)  # noqa: E731
        _assert_twins_match(nn, ours_model, torch_model, exact, x.astype(dtype), y, mode == "train", where, tol,
                            quirks.budget or DEFAULT_BUDGET, forgive_flips)

    _retrying_kink_flips(check, seed)


def _torch_accepts(torch_model, x, training: bool) -> bool:
    """Whether the torch twin runs a forward on `x` (torch refuses some batches: one value per batch-norm channel in
    training mode); cases torch refuses are not conformance cases."""
    state = {key: value.clone() for key, value in torch_model.state_dict().items()}
    try:
        with torch.no_grad():
            torch_model.train(training)(to_torch(x, next(torch_model.parameters()).device,
                                                 next(torch_model.parameters()).dtype))
    except ValueError:
        return False
    finally:
        torch_model.load_state_dict(state)  # the forward moved batch-norm running statistics
    return True


def _retrying_kink_flips(check, seed: int) -> None:
    """Run check(seed); on a float32 kink flip move on to the next seed. The last of FLIP_RETRIES seeds forgives
    no flip: its comparison fails with the worst element and the reproduction."""
    flips = []
    for attempt in range(FLIP_RETRIES - 1):
        try:
            return check(seed + attempt, forgive_flips=True)
        except KinkFlip as flip:
            flips.append(str(flip))
    try:
        check(seed + FLIP_RETRIES - 1, forgive_flips=False)
    except AssertionError as error:
        raise AssertionError(f"gradients disagree with both torch float32 and torch float64 at {FLIP_RETRIES} "
                             "consecutive seeds while the forward agrees; a kink flip is rare, so this is a gradient "
                             "bug:\n" + "\n".join(flips) + f"\n{error}") from None


def _assert_twins_match(nn, ours_model, torch_model, build_exact, x, y, training, where, tol, budget,
                        forgive_flips: bool) -> None:
    before = {k: v.detach().cpu().clone() for k, v in torch_model.state_dict().items()}  # the step updates BN
    ours = step_ours(nn, ours_model, x, y, training)
    note_forward_only(ours, where)
    theirs = step_torch(torch_model, x, y, training, ours["_masks"], torch_device(where.device),
                        TORCH_DTYPES[where.dtype])
    if where.dtype == "float64":
        compare_results(ours, theirs, where, tol)
        return
    exact_model = build_exact().double()  # torch float64 from the same float32 state and input
    exact_model.load_state_dict(before)
    exact = step_torch(exact_model, x.astype(np.float64), y, training, ours["_masks"], torch.device("cpu"),
                       torch.float64)
    reference = arbitrated(ours, theirs, exact, tol)
    if forgive_flips:
        _raise_on_kink_flip(ours, reference, tol, where)
    compare_results(ours, reference, where, tol)
    check_budget(ours, theirs, exact, where, budget)


def _raise_on_kink_flip(ours: dict, reference: dict, tol, where: Where) -> None:
    """KinkFlip when every forward result and buffer agrees but some gradient does not: in float32 that is the
    implementation routing one gradient through the other side of a kink (the forward is continuous there,
    gradients are not). A true float32-only gradient bug survives the retries with other seeds and fails."""
    def off(key):
        value = as_numpy(ours[key])
        return value.dtype.kind == "f" and error_stats(value, reference[key], tol).ratio > 1.0

    keys = [k for k in ours if not k.startswith("_")]
    gradients = [k for k in keys if k.startswith("grad[") and off(k)]
    if gradients and not any(off(k) for k in keys if not k.startswith("grad[")):
        record(where, "kink flip", "flip", gradients=gradients)
        raise KinkFlip(f"{where.label('gradients')}: {gradients[:4]} disagree, forward and buffers agree")


# -- training trajectories ------------------------------------------------------------------------------------

def _dropout_off(model) -> None:
    for _, module in model.named_modules():
        if _is_dropout(module) or isinstance(module, RandomLayer):
            module.p = 0.0


def _snapshot(stepper, loss, keys, framework: str, with_state: bool) -> dict:
    """Loss, parameters, optimizer slots and buffers after a step, by name: the arrays themselves, not copies (each
    snapshot is compared before the next step changes them)."""
    state = {"loss": loss}
    slots_of = stepper.optimizer.state
    for i, (name, param) in enumerate(stepper.model.named_parameters()):
        numpy = framework == "numpy"
        state[f"param[{name}]"] = np.asarray(param.data) if numpy else param.detach()
        slots = (slots_of.get(i, {}) if numpy else slots_of[param]) if with_state else {}
        state.update({f"{key}[{name}]": slots[key] for key in keys if slots.get(key) is not None})
    if framework == "numpy":
        return {**state, **buffers(stepper.model)}
    return {**state, **{f"buffer[{n}]": b for n, b in stepper.model.named_buffers()}}


def _max_gap(ours: dict, theirs: dict, prefix: str = "param[") -> float:
    return max(float(np.max(np.abs(as_numpy(ours[k]).astype(np.float64) - as_numpy(theirs[k]).astype(np.float64))))
               for k in ours if k.startswith(prefix))


def run_trajectory(nn, name: str, optimizer: str, dtype: str, device: str = "cpu", steps: int = TRAJECTORY_STEPS,
                   seed: int = 0, reproduce: str = "") -> dict:
    """Train both twins `steps` steps on identical batches with the namespace's optimizer; compare after each.

    float64: loss, every parameter, optimizer state and buffer within the trajectory row at every step.
    float32: the gap is measured and recorded next to torch float32's own drift from torch float64 (the
    float32 noise floor), but only the loss is asserted: at step 1 (one forward from identical parameters)
    with the model's float32 row, afterwards with the trajectory's loose float32 row: a ReLU input or max-pool
    near-tie within rounding error of its kink routes one gradient differently in one framework, and the
    dynamics then amplify that legitimate difference (measured: tiny_resnet + SGD, NumPy float32 drifts 6e-3
    from torch float64 by step 20 while torch float32 drifts 2e-7; the next seed may flip it the other way).
    """
    spec, where = zoo.spec(name), Where("trajectory", f"{name}[{optimizer}]", dtype, device, reproduce)
    input_shape = spec.quirks.trajectory_input or spec.input_shape
    recipe = trajectory_recipe(optimizer, spec.quirks.trajectory_batch)
    ours_model, torch_model = twins(nn, name, dtype, device, seed)
    require_masks(ours_model, torch_model)
    with implementation(f"{name} of {nn.__name__} with its {OPTIMIZER_CLASSES[optimizer]}"):
        _dropout_off(ours_model)
        ours = NumpyStepper(ours_model, recipe, layers=nn)
    _dropout_off(torch_model)
    theirs = TorchStepper(torch_model, recipe, torch_device(device))
    exact = None
    if dtype == "float32":  # torch float64 from the same float32 start: the yardstick of float32 drift
        exact_model = zoo.build(name, "torch", seed=seed).double()
        exact_model.load_state_dict(torch_model.state_dict())
        _dropout_off(exact_model)
        exact = TorchStepper(exact_model, recipe, "cpu")
    tol = TRAJECTORY[dtype]
    with_state = hasattr(ours.optimizer, "state")
    keys = STATE_KEYS[optimizer]
    history = dict(param_gap=[], loss_gap=[], ratio=[], torch32_gap=[] if exact else None)
    for k in range(steps):
        x, y = batch(input_shape, spec.num_classes, recipe.batch_size, seed=1000 + k)
        x = x.astype(dtype)
        with implementation(f"{name} of {nn.__name__}, training step {k + 1}"):
            a = _snapshot(ours, np.asarray(ours.step(x.copy(), y)[0], dtype=dtype), keys, "numpy", with_state)
        loss, _ = theirs.step(to_torch(x, theirs.device), to_torch(y, theirs.device))
        b = _snapshot(theirs, loss, keys, "torch", with_state)
        stage = f"{optimizer} step {k + 1}"
        if exact is None and a.keys() != b.keys():
            raise AssertionError(f"{where.label(stage)}: only the implementation has {sorted(a.keys() - b.keys())}, "
                                 f"only torch has {sorted(b.keys() - a.keys())}")
        checked = list(a) if exact is None else ["loss"]
        step_tol = (spec.quirks.float32 or DEFAULT["float32"]) if exact is not None and k == 0 else tol
        with compare.not_recorded():  # one summary record per step below, not one per tensor
            stats = [assert_close(as_result(a[key], as_numpy(b[key]), where.label(f"{stage}: {key}")), b[key],
                                  step_tol if as_numpy(b[key]).dtype.kind == "f" else EXACT, where, f"{stage}: {key}")
                     for key in checked]
        worst = max(stats, key=lambda s: s.ratio)
        record(where, stage, "tolerance", max_abs=max(s.max_abs for s in stats),
               max_rel=max(s.max_rel for s in stats), ratio=worst.ratio, rtol=step_tol.rtol, atol=step_tol.atol,
               size=sum(s.size for s in stats), passed=True)
        if exact is None:  # every parameter was compared above: the largest |difference| is already measured
            history["param_gap"].append(max(s.max_abs for key, s in zip(checked, stats, strict=True)
                                            if key.startswith("param[")))
        else:
            history["param_gap"].append(_max_gap(a, b))
        history["loss_gap"].append(abs(float(as_numpy(a["loss"])) - float(as_numpy(b["loss"]))))
        history["ratio"].append(worst.ratio)
        if exact is not None:
            exact_loss, _ = exact.step(torch.from_numpy(x.astype(np.float64)), torch.from_numpy(y))
            history["torch32_gap"].append(_max_gap(b, _snapshot(exact, exact_loss, keys, "torch", with_state)))
    record(where, optimizer, "trajectory", **history)
    return history


def optimizer_class(optimizer: str) -> str:
    """The namespace name a trajectory optimizer needs ("sgd" -> "SGD")."""
    return OPTIMIZER_CLASSES[optimizer]
