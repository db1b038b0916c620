"""One seeded training loop for the zoo, run with a NumPy or a PyTorch stepper (CPU, or CUDA for torch).

Both frameworks see the same examples in the same order: each epoch's order is the next
`np.random.default_rng(seed).permutation(n_train)`. The model is built with `zoo.build(..., seed=seed)`
and dropout draws from that seed too, so a rerun with the same seed gives the same predictions
(bit for bit on the CPU). CPU runs use `threads` threads (default 1): torch's CPU results depend on the
thread count, and small models gain nothing from more threads but suffer badly when cores are shared.
"""

from __future__ import annotations

import contextlib
import math
import os
import time
from dataclasses import dataclass, field, replace

import numpy as np
from tqdm.auto import tqdm

from . import zoo
from .data import Dataset, load_dataset

EVAL_BATCH_SIZE = 500


@dataclass
class TrainResult:
    """A trained model and what the accuracy gate and report need from its run."""

    model_name: str
    framework: str
    dataset: str
    device: str
    seed: int
    recipe: zoo.TrainRecipe
    threads: int | None
    predictions: np.ndarray  # (n_test,) predicted class per test example
    targets: np.ndarray  # (n_test,) true class per test example
    history: list[dict] = field(default_factory=list)  # per epoch: epoch, loss, train_accuracy, test_accuracy, seconds
    train_seconds: float = 0.0
    model: object = None
    jitter: int | None = None  # the seed of the one-ulp moves of the initial parameters, if any

    @property
    def correct(self) -> np.ndarray:
        """Boolean (n_test,): which test examples the model got right."""
        return self.predictions == self.targets

    @property
    def accuracy(self) -> float:
        return float(self.correct.mean())

    @property
    def epochs(self) -> int:
        return self.recipe.epochs


def train(model_name: str, framework: str = "numpy", dataset: str | Dataset = "digits", *, device: str = "cpu",
          seed: int = 0, epochs: int | None = None, recipe: zoo.TrainRecipe | None = None,
          data_dir=None, threads: int | None = 1, jitter: int | None = None, quiet: bool = True) -> TrainResult:
    """Train zoo model `model_name` on `dataset` with its recipe (or `recipe`; `epochs` overrides either).

    `threads` caps the CPU threads of BLAS and torch during the run (None: leave the libraries' defaults).
    `jitter` moves every initial parameter by one ulp in directions drawn from (jitter, seed) (see `jitter_ulp`)."""
    data = dataset if isinstance(dataset, Dataset) else load_dataset(dataset, data_dir)
    recipe = recipe or zoo.spec(model_name).recipes[data.name]
    if epochs is not None:
        recipe = replace(recipe, epochs=epochs)
    if recipe.epochs < 1:
        raise ValueError(f"epochs must be at least 1, got {recipe.epochs}")
    if framework not in zoo.FRAMEWORKS:
        raise ValueError(f"unknown framework {framework!r}; expected one of {zoo.FRAMEWORKS}")
    if framework == "numpy" and device != "cpu":
        raise ValueError(f"NumPy models train on the CPU only, got device {device!r}")
    stepper_class = STEPPERS[framework]
    with stepper_class.settings(seed, device, threads):
        model = zoo.build(model_name, framework, seed=seed)
        if jitter is not None:
            jitter_ulp(model, (jitter, seed))
        stepper = stepper_class(model, recipe, device)
        result = TrainResult(model_name, framework, data.name, device, seed, recipe, threads,
                             predictions=np.empty(0, dtype=np.int64), targets=data.y_test, jitter=jitter)
        start = time.perf_counter()
        _fit(stepper, data, result, quiet)
        result.train_seconds = time.perf_counter() - start
    result.model = stepper.model
    return result


def jitter_ulp(model, seed) -> None:
    """Move every parameter element of a NumPy or torch model by one ulp up or down (directions from `seed`).

    A change of that size is what another CPU, BLAS kernel or thread count makes in the first step's sums;
    training amplifies it, so runs with jitter emulate other machines (the gate must pass them all)."""
    rng = np.random.default_rng(seed)
    for _, param in model.named_parameters():
        data = param.data if isinstance(param.data, np.ndarray) else param.data.numpy()  # torch: a shared view
        direction = np.where(rng.random(data.shape) < 0.5, -np.inf, np.inf).astype(data.dtype)
        data[...] = np.nextafter(data, direction)


def _fit(stepper, data: Dataset, result: TrainResult, quiet: bool) -> None:
    """The epoch loop: shuffle, step, check the loss, evaluate, record history."""
    x, y, x_test = stepper.put(data.x_train), stepper.put(data.y_train), stepper.put(data.x_test)
    n, batch_size = len(data.y_train), result.recipe.batch_size
    steps = math.ceil(n / batch_size)
    order_rng = np.random.default_rng(result.seed)
    label = f"{result.model_name} {result.framework}/{result.device}"
    with tqdm(total=result.recipe.epochs * steps, desc=label, unit="step", leave=False,
              disable=True if quiet else None) as bar:
        for epoch in range(1, result.recipe.epochs + 1):
            epoch_start = time.perf_counter()
            order = stepper.put(order_rng.permutation(n))
            stepper.model.train()
            loss_sum, correct = 0.0, 0
            for step in range(steps):
                batch = order[step * batch_size : (step + 1) * batch_size]
                xb, yb = x[batch], y[batch]
                loss, logits = stepper.step(xb, yb)
                loss = float(loss)
                if not math.isfinite(loss):
                    raise FloatingPointError(f"{result.model_name} ({result.framework}, {result.device}): "
                                             f"non-finite loss {loss} at epoch {epoch}, step {step + 1}")
                loss_sum += loss * len(batch)
                correct += int((logits.argmax(1) == yb).sum())
                bar.set_postfix(epoch=epoch, loss=f"{loss:.4f}", acc=f"{correct / min(n, (step + 1) * batch_size):.3f}",
                                refresh=False)
                bar.update()
            stepper.end_epoch()
            result.predictions = stepper.predict(x_test)
            result.history.append({
                "epoch": epoch, "loss": loss_sum / n, "train_accuracy": correct / n,
                "test_accuracy": result.accuracy, "seconds": time.perf_counter() - epoch_start,
            })


def make_optimizer(framework: str, params, recipe: zoo.TrainRecipe, layers=None):
    """The recipe's optimizer over `params` and its StepLR (or None), in `framework` ("numpy" or "torch").

    `layers`: the NumPy namespace whose SGD/Adam/StepLR to use (default `reference.numpy_nn`; the conformance
    engine passes the implementation under test)."""
    if framework == "numpy":
        from . import numpy_nn

        optim = numpy_nn if layers is None else layers
        step_lr = getattr(optim, "StepLR", None)
    else:
        import torch

        optim, step_lr = torch.optim, torch.optim.lr_scheduler.StepLR
    if recipe.optimizer == "sgd":
        optimizer = optim.SGD(params, lr=recipe.lr, momentum=recipe.momentum, weight_decay=recipe.weight_decay)
    elif recipe.optimizer == "adam":
        optimizer = optim.Adam(params, lr=recipe.lr, weight_decay=recipe.weight_decay)
    else:
        raise ValueError(f"unknown optimizer {recipe.optimizer!r}; expected 'sgd' or 'adam'")
    return optimizer, step_lr(optimizer, recipe.step_size, recipe.gamma) if recipe.step_size else None


class NumpyStepper:
    """Training steps of a `reference.numpy_nn` model: forward, loss, manual backward, optimizer step."""

    def __init__(self, model, recipe: zoo.TrainRecipe, device: str = "cpu", layers=None):
        """`layers`: the NumPy namespace whose CrossEntropyLoss and optimizers to use (default reference.numpy_nn)."""
        from . import numpy_nn
        from .numpy_nn.module import input_layer

        self.model = model
        self.input_layer = input_layer(model)  # the layer reading the data: its input gradient is never wanted
        self.loss_fn = (numpy_nn if layers is None else layers).CrossEntropyLoss()
        self.optimizer, self.scheduler = make_optimizer("numpy", list(model.parameters()), recipe, layers)
        self.eval_batch_size = recipe.batch_size

    @staticmethod
    def settings(seed: int, device: str, threads: int | None):
        """Cap BLAS threads for the run; no global seed: the layers (dropout too) draw from `zoo.build`'s seed."""
        if threads is None:
            return contextlib.nullcontext()
        from threadpoolctl import threadpool_limits

        return threadpool_limits(threads, user_api="blas")

    @staticmethod
    def put(array: np.ndarray) -> np.ndarray:
        """A dataset array as this stepper takes it (NumPy: as it is)."""
        return array

    def step(self, x: np.ndarray, y: np.ndarray) -> tuple[float, np.ndarray]:
        """One optimizer step on the batch (x, y); returns (loss, logits). Gradients stay in `param.grad`."""
        loss, logits = self.forward(x, y)
        self.update()
        return loss, logits

    def forward(self, x: np.ndarray, y: np.ndarray) -> tuple[float, np.ndarray]:
        """The first half of a step: drop the gradients, then (loss, logits) of the batch (x, y)."""
        self.optimizer.zero_grad()
        logits = self.model(x)
        return float(self.loss_fn(logits, y)), logits

    def update(self) -> None:
        """The second half of a step: backward from the last loss, then one optimizer step. Nothing wants the
        gradient of the data, so the layer that reads it skips that (as torch's autograd does)."""
        layer = self.input_layer
        if layer is None:
            self.model.backward(self.loss_fn.backward())
        else:
            before, layer.needs_input_grad = layer.needs_input_grad, False
            try:
                self.model.backward(self.loss_fn.backward())
            finally:
                layer.needs_input_grad = before
        self.optimizer.step()

    def end_epoch(self) -> None:
        if self.scheduler is not None:
            self.scheduler.step()

    def predict(self, x: np.ndarray) -> np.ndarray:
        """Predicted classes of `x` in eval mode, in batches of the recipe's batch size: arrays no larger than a
        training step's, which the allocator reuses. In batches of 500, a convolution's patches outgrow glibc's
        32 MB mmap ceiling and are mapped and page-faulted afresh on every call: resnet18's NumPy training on digits
        took 33-39 s instead of 27-30 s (27 s with that ceiling lifted), same predictions."""
        self.model.eval()
        size = self.eval_batch_size
        chunks = [self.model(x[i : i + size]).argmax(axis=1) for i in range(0, len(x), size)]
        return np.concatenate(chunks).astype(np.int64)


class TorchStepper:
    """Training steps of a `torch.nn.Module` on `device`; `put` moves data there once (the dataset stays resident)."""

    def __init__(self, model, recipe: zoo.TrainRecipe, device: str = "cpu"):
        import torch

        self.torch, self.device = torch, torch.device(device)
        self.model = model.to(self.device)
        self.loss_fn = torch.nn.CrossEntropyLoss()
        self.optimizer, self.scheduler = make_optimizer("torch", model.parameters(), recipe)

    @staticmethod
    @contextlib.contextmanager
    def settings(seed: int, device: str, threads: int | None):
        """Seed torch's generators (dropout), prefer deterministic kernels, cap CPU threads; restore afterwards.

        warn_only: a few CUDA backward kernels (adaptive average pooling to sizes other than 1) have no
        deterministic version; they warn instead of stopping the run."""
        import torch

        cuda = device.startswith("cuda")
        if cuda:
            os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")  # deterministic cuBLAS
        deterministic = torch.are_deterministic_algorithms_enabled()
        warn_only, previous_threads = torch.is_deterministic_algorithms_warn_only_enabled(), torch.get_num_threads()
        with torch.random.fork_rng(devices=[torch.device(device).index or 0] if cuda else []):
            torch.manual_seed(seed)
            torch.use_deterministic_algorithms(True, warn_only=True)
            if threads is not None:
                torch.set_num_threads(threads)
            try:
                yield
            finally:
                torch.use_deterministic_algorithms(deterministic, warn_only=warn_only)
                torch.set_num_threads(previous_threads)

    def put(self, array: np.ndarray):
        """A dataset array as a tensor on this stepper's device."""
        return self.torch.from_numpy(array).to(self.device)

    def step(self, x, y) -> tuple[object, object]:
        """One optimizer step on the batch (x, y) of tensors; returns (loss, logits) as tensors (no device sync).

        Gradients stay in `.grad`."""
        self.optimizer.zero_grad()
        logits = self.model(x)
        loss = self.loss_fn(logits, y)
        loss.backward()
        self.optimizer.step()
        return loss.detach(), logits

    def end_epoch(self) -> None:
        if self.scheduler is not None:
            self.scheduler.step()

    def predict(self, x) -> np.ndarray:
        """Predicted classes of the tensor `x` in eval mode, in batches of EVAL_BATCH_SIZE."""
        self.model.eval()
        with self.torch.no_grad():
            chunks = [self.model(x[i : i + EVAL_BATCH_SIZE]).argmax(dim=1) for i in range(0, len(x), EVAL_BATCH_SIZE)]
        return self.torch.cat(chunks).cpu().numpy().astype(np.int64)


STEPPERS = {"numpy": NumpyStepper, "torch": TorchStepper}
