"""Whole training steps of every zoo model and whole epochs of the digits and MNIST models, NumPy next to torch.

A step is forward, cross-entropy, backward and the recipe's optimizer step on one batch of the recipe's size,
with both twins holding the same weights. An epoch is reference.train's: its steppers run one shuffled pass
over the training set, then predict the test set. It is timed in slices, NumPy and torch alternating, so
that both see the same machine load; the report shows the totals and the spread of the per-slice ratios.
"""

from functools import partial

import numpy as np
import pytest

import reference
from benchmarks.training import dataset_or_skip
from benchmarks.zoo_ops import model_batch, trained_models
from reference import zoo
from reference.train import TorchStepper

pytestmark = pytest.mark.benchmark


@pytest.mark.parametrize("name", trained_models())  # torchvision's big models have no recipe: see test_ops' convs
def test_training_step(bench, name):
    entry = zoo.spec(name)
    recipe = entry.recipes[entry.default_dataset]
    torch_stepper = TorchStepper(zoo.build(name, "torch").train(), recipe)
    x, y = model_batch(name)
    xt, yt = torch_stepper.put(x), torch_stepper.put(y)

    def make(package):
        """One NumPy training step of `package` (this checkout or the --against revision) on its own copy."""
        stepper = package.train.NumpyStepper(package.zoo.build(name, "numpy").train(), recipe)
        xn, yn = x.copy(), y.copy()
        return lambda: stepper.step(xn, yn)

    bench.compare(f"step {name} ({entry.default_dataset}, batch {recipe.batch_size})", "training step",
                  make(reference), lambda: torch_stepper.step(xt, yt), against=make, models=[name],
                  min_rounds=15, warmup=3)


def epoch_in_slices(stepper, data, batches: list, slices: int):
    """A function running, call by call, the next slice of `batches` (one shuffled epoch) on a reference.train
    stepper; the call after the last slice evaluates the test set, as every reference.train epoch ends."""
    x, y, x_test = stepper.put(data.x_train), stepper.put(data.y_train), stepper.put(data.x_test)
    stepper.step(x[stepper.put(batches[0])], y[stepper.put(batches[0])])  # untimed first-call setup

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

    def make(package):
        """One epoch in slices with `package`'s NumPy stepper (this checkout or the --against revision)."""
        stepper = package.train.NumpyStepper(package.zoo.build(name, "numpy"), recipe)
        return epoch_in_slices(stepper, data, batches, slices)

    with TorchStepper.settings(0, "cpu", None):
        torch_epoch = epoch_in_slices(TorchStepper(zoo.build(name, "torch"), recipe), data, batches, slices)
        bench.compare(f"epoch {name} ({dataset}: {len(batches)} steps + {len(data.y_test)} test images)", "epoch",
                      make(reference), torch_epoch, against=make, models=[name], rounds=slices + 1, warmup=0,
                      totals=True)
