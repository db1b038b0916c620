"""GPU figures, torch on CUDA (skipped with a reason where no GPU is visible): the training step of every zoo
model, and mnist_cnn's training time to 99.0% MNIST test accuracy (target: 2 s on an H100).

Everything lives on the device (weights, the whole dataset, the shuffling), so no DataLoader or host copy is
timed; warm-up steps (cuDNN autotuning, CUDA context, allocator) run on a throwaway model first.
"""

import time

import pytest
import torch

from benchmarks.training import dataset_or_skip
from benchmarks.zoo_ops import model_batch, trained_models
from reference import zoo
from reference.train import TorchStepper

pytestmark = [pytest.mark.benchmark, pytest.mark.cuda]

TARGET_ACCURACY = 0.99
TARGET_SECONDS = 2.0  # of training on an H100
EVAL_EVERY = 100  # steps between test-set evaluations (not timed)


@pytest.fixture
def cudnn_benchmark():
    """Let cuDNN pick its fastest kernels for the fixed shapes (restored afterwards)."""
    previous, torch.backends.cudnn.benchmark = torch.backends.cudnn.benchmark, True
    yield
    torch.backends.cudnn.benchmark = previous


def trainer(name: str, recipe: zoo.TrainRecipe, device: torch.device):
    """A fresh zoo model on `device` and a function doing one training step on given batch tensors."""
    stepper = TorchStepper(zoo.build(name, "torch").train(), recipe, str(device))
    return stepper.model, stepper.step


@pytest.mark.parametrize("name", trained_models())
def test_cuda_training_step(bench, cudnn_benchmark, name):
    entry = zoo.spec(name)
    recipe = entry.recipes[entry.default_dataset]
    device = torch.device("cuda")
    x, y = (torch.from_numpy(array).to(device) for array in model_batch(name))
    _, step = trainer(name, recipe, device)

    def synchronized_step():
        step(x, y)
        torch.cuda.synchronize()

    bench.torch_only(f"cuda step {name} ({entry.default_dataset}, batch {recipe.batch_size})", "cuda",
                     synchronized_step, rounds=100, warmup=20, models=[name])


def accuracy(model, x, y) -> float:
    model.eval()
    with torch.no_grad():
        correct = (model(x).argmax(dim=1) == y).float().mean().item()
    model.train()
    return correct


def seconds_to_accuracy(data, recipe: zoo.TrainRecipe, device: torch.device, max_epochs: int = 10):
    """(training seconds, steps, accuracy) of mnist_cnn until its test accuracy reaches TARGET_ACCURACY.

    The clock runs only while training (synchronized); evaluations every EVAL_EVERY steps are not timed.
    """
    x, y, x_test, y_test = (torch.from_numpy(a).to(device) for a in (data.x_train, data.y_train,
                                                                     data.x_test, data.y_test))
    _, warmup_step = trainer("mnist_cnn", recipe, device)
    for start in range(0, 20 * recipe.batch_size, recipe.batch_size):
        warmup_step(x[start : start + recipe.batch_size], y[start : start + recipe.batch_size])
    torch.manual_seed(0)
    model, step = trainer("mnist_cnn", recipe, device)
    seconds, steps, batch = 0.0, 0, recipe.batch_size
    for _ in range(max_epochs):
        order = torch.randperm(len(y), device=device)
        for chunk in range(0, len(y), EVAL_EVERY * batch):
            torch.cuda.synchronize()
            start = time.perf_counter()
            for first in range(chunk, min(len(y), chunk + EVAL_EVERY * batch), batch):
                index = order[first : first + batch]
                step(x[index], y[index])
                steps += 1
            torch.cuda.synchronize()
            seconds += time.perf_counter() - start
            reached = accuracy(model, x_test, y_test)
            if reached >= TARGET_ACCURACY:
                return seconds, steps, reached
    pytest.fail(f"mnist_cnn did not reach {TARGET_ACCURACY:.1%} test accuracy in {max_epochs} epochs")


def test_mnist_cnn_time_to_accuracy(bench, cudnn_benchmark):
    data = dataset_or_skip("mnist")
    recipe = zoo.spec("mnist_cnn").recipes["mnist"]
    results = []
    bench.benchmark.pedantic(lambda: results.append(seconds_to_accuracy(data, recipe, torch.device("cuda"))))
    seconds, steps, reached = results[-1]
    bench.record(f"cuda mnist_cnn time to {TARGET_ACCURACY:.1%} test accuracy (target {TARGET_SECONDS:g} s on an "
                 f"H100)", "cuda", [seconds], models=["mnist_cnn"], steps=steps, accuracy=reached,
                 target_s=TARGET_SECONDS, device=torch.cuda.get_device_name())
