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
          data_dir=None, threads: int | None = 1, quiet: bool = True) -> TrainResult:
    """Train zoo model `model_name` on `dataset` with its recipe (or `recipe`; `epochs` overrides either).

    `threads` caps the CPU threads of BLAS and torch during the run (None: leave the libraries' defaults)."""
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
    stepper_class = NumpyStepper if framework == "numpy" else TorchStepper
    with stepper_class.settings(seed, device, threads):
        stepper = stepper_class(zoo.build(model_name, framework, seed=seed), recipe, data, device)
        result = TrainResult(model_name, framework, data.name, device, seed, recipe, threads,
                             predictions=np.empty(0, dtype=np.int64), targets=data.y_test)
        start = time.perf_counter()
        _fit(stepper, result, quiet)
        result.train_seconds = time.perf_counter() - start
    result.model = stepper.model
    return result


def _fit(stepper, result: TrainResult, quiet: bool) -> None:
    """The epoch loop shared by both steppers: shuffle, step, check the loss, evaluate, record history."""
    n, batch_size = len(stepper.y), result.recipe.batch_size
    steps = math.ceil(n / batch_size)
    order_rng = np.random.default_rng(result.seed)
    label = f"{result.model_name} {result.framework}/{result.device}"
    with tqdm(total=result.recipe.epochs * steps, desc=label, unit="step", leave=False,
              disable=True if quiet else None) as bar:
        for epoch in range(1, result.recipe.epochs + 1):
            epoch_start = time.perf_counter()
            order = order_rng.permutation(n)
            stepper.train_mode()
            loss_sum, correct = 0.0, 0
            for step in range(steps):
                batch = order[step * batch_size : (step + 1) * batch_size]
                loss, batch_correct = stepper.step(batch)
                if not math.isfinite(loss):
                    raise FloatingPointError(f"{result.model_name} ({result.framework}, {result.device}): "
                                             f"non-finite loss {loss} at epoch {epoch}, step {step + 1}")
                loss_sum += loss * len(batch)
                correct += batch_correct
                bar.set_postfix(epoch=epoch, loss=f"{loss:.4f}", acc=f"{correct / min(n, (step + 1) * batch_size):.3f}",
                                refresh=False)
                bar.update()
            stepper.end_epoch()
            result.predictions = stepper.predict_test()
            result.history.append({
                "epoch": epoch, "loss": loss_sum / n, "train_accuracy": correct / n,
                "test_accuracy": result.accuracy, "seconds": time.perf_counter() - epoch_start,
            })


def _optimizer(params, recipe: zoo.TrainRecipe, sgd, adam, step_lr):
    """The recipe's optimizer and its StepLR (or None), from either framework's classes."""
    if recipe.optimizer == "sgd":
        optimizer = sgd(params, lr=recipe.lr, momentum=recipe.momentum, weight_decay=recipe.weight_decay)
    elif recipe.optimizer == "adam":
        optimizer = adam(params, lr=recipe.lr, weight_decay=recipe.weight_decay)
    else:
        raise ValueError(f"unknown optimizer {recipe.optimizer!r}; expected 'sgd' or 'adam'")
    return optimizer, step_lr(optimizer, recipe.step_size, recipe.gamma) if recipe.step_size else None


class NumpyStepper:
    """Training steps of a `reference.numpy_nn` model: forward, loss, manual backward, optimizer step."""

    def __init__(self, model, recipe: zoo.TrainRecipe, data: Dataset, device: str):
        from . import numpy_nn

        self.model, self.x, self.y, self.x_test = model, data.x_train, data.y_train, data.x_test
        self.loss_fn = numpy_nn.CrossEntropyLoss()
        self.optimizer, self.scheduler = _optimizer(
            list(model.parameters()), recipe, numpy_nn.SGD, numpy_nn.Adam, numpy_nn.StepLR)

    @staticmethod
    def settings(seed: int, device: str, threads: int | None):
        """Cap BLAS threads for the run; no global seed: the layers (dropout too) draw from `zoo.build`'s seed."""
        if threads is None:
            return contextlib.nullcontext()
        from threadpoolctl import threadpool_limits

        return threadpool_limits(threads, user_api="blas")

    def train_mode(self) -> None:
        self.model.train()

    def step(self, batch: np.ndarray) -> tuple[float, int]:
        """One optimizer step on the examples at indices `batch`; returns (loss, number correct)."""
        self.optimizer.zero_grad()
        logits = self.model(self.x[batch])
        loss = float(self.loss_fn(logits, self.y[batch]))
        self.model.backward(self.loss_fn.backward())
        self.optimizer.step()
        return loss, int(np.sum(logits.argmax(axis=1) == self.y[batch]))

    def end_epoch(self) -> None:
        if self.scheduler is not None:
            self.scheduler.step()

    def predict_test(self) -> np.ndarray:
        """Predicted classes (n_test,) in eval mode, in batches of EVAL_BATCH_SIZE."""
        self.model.eval()
        x = self.x_test
        chunks = [self.model(x[i : i + EVAL_BATCH_SIZE]).argmax(axis=1) for i in range(0, len(x), EVAL_BATCH_SIZE)]
        return np.concatenate(chunks).astype(np.int64)


class TorchStepper:
    """Training steps of a `torch.nn.Module` on `device`, with the whole dataset resident there."""

    def __init__(self, model, recipe: zoo.TrainRecipe, data: Dataset, device: str):
        import torch

        self.torch, self.device = torch, torch.device(device)
        self.model = model.to(self.device)
        self.x = torch.from_numpy(data.x_train).to(self.device)
        self.y = torch.from_numpy(data.y_train).to(self.device)
        self.x_test = torch.from_numpy(data.x_test).to(self.device)
        self.loss_fn = torch.nn.CrossEntropyLoss()
        self.optimizer, self.scheduler = _optimizer(
            model.parameters(), recipe, torch.optim.SGD, torch.optim.Adam, torch.optim.lr_scheduler.StepLR)

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

    def train_mode(self) -> None:
        self.model.train()

    def step(self, batch: np.ndarray) -> tuple[float, int]:
        """One optimizer step on the examples at indices `batch`; returns (loss, number correct)."""
        index = self.torch.from_numpy(batch).to(self.device)
        xb, yb = self.x[index], self.y[index]
        self.optimizer.zero_grad()
        logits = self.model(xb)
        loss = self.loss_fn(logits, yb)
        loss.backward()
        self.optimizer.step()
        return loss.item(), int((logits.argmax(dim=1) == yb).sum())

    def end_epoch(self) -> None:
        if self.scheduler is not None:
            self.scheduler.step()

    def predict_test(self) -> np.ndarray:
        """Predicted classes (n_test,) in eval mode, in batches of EVAL_BATCH_SIZE."""
        self.model.eval()
        with self.torch.no_grad():
            chunks = [self.model(self.x_test[i : i + EVAL_BATCH_SIZE]).argmax(dim=1)
                      for i in range(0, len(self.x_test), EVAL_BATCH_SIZE)]
        return self.torch.cat(chunks).cpu().numpy().astype(np.int64)
