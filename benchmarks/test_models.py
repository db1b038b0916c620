"""Whole training steps of every zoo model and whole epochs of the digits and MNIST models, NumPy next to torch.

A step is forward, cross-entropy, backward and the recipe's optimizer step on one batch of the recipe's size,
with both twins holding the same weights. An epoch is reference.train's: its steppers run one shuffled pass
over the training set, then predict the test set. It is timed in slices, NumPy and torch alternating, so
that both see the same machine load; the report shows the totals and the spread of the per-slice ratios.
"""

from functools import partial

import numpy as np
import pytest

from benchmarks.training import dataset_or_skip
from benchmarks.zoo_ops import model_batch
from reference import zoo
from reference.train import NumpyStepper, TorchStepper

pytestmark = pytest.mark.benchmark


@pytest.mark.parametrize("name", zoo.names())
def test_training_step(bench, name):
    entry = zoo.spec(name)
    recipe = entry.recipes[entry.default_dataset]
    numpy_model, torch_model = zoo.build(name, "numpy").train(), zoo.build(name, "torch").train()
    zoo.copy_state(numpy_model, torch_model)
    numpy_stepper, torch_stepper = NumpyStepper(numpy_model, recipe), TorchStepper(torch_model, recipe)
    x, y = model_batch(name)
    xt, yt = torch_stepper.put(x), torch_stepper.put(y)
    bench.compare(f"step {name} ({entry.default_dataset}, batch {recipe.batch_size})", "training step",
                  lambda: numpy_stepper.step(x, y), lambda: torch_stepper.step(xt, yt), models=[name],
                  min_rounds=15, warmup=3)


def epoch_in_slices(stepper, data, batches: list, slices: int):
    """A function running, call by call, the next slice of `batches` (one shuffled epoch) on a reference.train
    stepper; the call after the last slice evaluates the test set, as every reference.train epoch ends."""
    x, y, x_test = stepper.put(data.x_train), stepper.put(data.y_train), stepper.put(data.x_test)

    def run(part):
        stepper.model.train()
        for index in part:
            batch = stepper.put(batches[index])
            stepper.step(x[batch], y[batch])

    calls = iter([partial(run, part) for part in np.array_split(np.arange(len(batches)), slices)]
                 + [partial(stepper.predict, x_test)])
    return lambda: next(calls)()


@pytest.mark.parametrize("name, dataset, slices", [("tiny_cnn", "digits", 10), ("tiny_resnet", "digits", 10),
                                                   ("mnist_cnn", "mnist", 10)])
def test_epoch(bench, name, dataset, slices):
    data = dataset_or_skip(dataset)
    recipe = zoo.spec(name).recipes[dataset]
    order = np.random.default_rng(0).permutation(len(data.y_train))
    batches = [order[first : first + recipe.batch_size] for first in range(0, len(order), recipe.batch_size)]
    with NumpyStepper.settings(0, "cpu", None), TorchStepper.settings(0, "cpu", None):
        numpy_stepper = NumpyStepper(zoo.build(name, "numpy"), recipe)
        torch_stepper = TorchStepper(zoo.build(name, "torch"), recipe)
        for stepper in (numpy_stepper, torch_stepper):  # untimed: first-call setup (thread pools, kernels)
            stepper.step(stepper.put(data.x_train[batches[0]]), stepper.put(data.y_train[batches[0]]))
        bench.compare(f"epoch {name} ({dataset}: {len(batches)} steps + {len(data.y_test)} test images)", "epoch",
                      epoch_in_slices(numpy_stepper, data, batches, slices),
                      epoch_in_slices(torch_stepper, data, batches, slices),
                      models=[name], rounds=slices + 1, warmup=0, totals=True)
