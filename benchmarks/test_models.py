"""Whole training steps of every zoo model and whole epochs of the digits and MNIST models, NumPy next to torch.

A step is forward, cross-entropy, backward and the recipe's optimizer step on one batch of the recipe's size,
with both twins holding the same weights, timed at one thread and at every core the process may use (torch's
intra-op threads and NumPy's BLAS threads alike), with each side's peak memory in one step. An epoch is
reference.train's: its steppers run one shuffled pass over the training set, then predict the test set. It is
timed in slices, NumPy and torch alternating, so that both see the same machine load; the report shows the
totals and the spread of the per-slice ratios.
"""

import os
from contextlib import contextmanager
from functools import partial

import numpy as np
import pytest
import torch
from threadpoolctl import threadpool_limits

import reference
from benchmarks.memory import numpy_peak_bytes, torch_peak_bytes
from benchmarks.training import dataset_or_skip
from benchmarks.zoo_ops import model_batch, trained_models
from reference import zoo
from reference.train import TorchStepper

pytestmark = pytest.mark.benchmark


ALL_CORES = len(os.sched_getaffinity(0))


@contextmanager
def threads(count: int):
    """torch's intra-op threads and NumPy's BLAS threads set to `count` inside the block, restored after."""
    before = torch.get_num_threads()
    torch.set_num_threads(count)
    try:
        with threadpool_limits(count, user_api="blas"):
            yield
    finally:
        torch.set_num_threads(before)


@pytest.mark.parametrize("thread_count", sorted({1, ALL_CORES}))
@pytest.mark.parametrize("name", trained_models())  # torchvision's big models have no recipe: see test_ops' convs
def test_training_step(bench, name, thread_count):
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

    numpy_step, torch_step = make(reference), lambda: torch_stepper.step(xt, yt)
    plural = "" if thread_count == 1 else "s"
    with threads(thread_count):
        numpy_step(), torch_step()  # the peaks are of a step after the first (optimizer state, workspaces exist)
        memory = {"numpy_peak_bytes": numpy_peak_bytes(numpy_step), "torch_peak_bytes": torch_peak_bytes(torch_step)}
        bench.compare(f"step {name} ({entry.default_dataset}, batch {recipe.batch_size}), {thread_count} "
                      f"thread{plural}", "training step", numpy_step, torch_step, against=make, models=[name],
                      min_rounds=15, warmup=3, threads=thread_count, **memory)


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
