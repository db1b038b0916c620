"""One training step in either framework, the recipe's optimizer, and the datasets the epoch benchmarks need."""

import pytest

from reference import zoo
from reference.data import DataError, load_dataset


def make_optimizer(params, recipe: zoo.TrainRecipe, optim):
    """The recipe's optimizer from `optim` (reference.numpy_nn or torch.optim)."""
    if recipe.optimizer == "sgd":
        return optim.SGD(params, lr=recipe.lr, momentum=recipe.momentum, weight_decay=recipe.weight_decay)
    return optim.Adam(params, lr=recipe.lr, weight_decay=recipe.weight_decay)


def numpy_step(model, optimizer, loss_fn, x, y):
    """Forward, cross-entropy, manual backward, optimizer step."""
    optimizer.zero_grad()
    loss_fn(model(x), y)
    model.backward(loss_fn.backward())
    optimizer.step()


def torch_step(model, optimizer, loss_fn, x, y):
    """Forward, cross-entropy, autograd backward, optimizer step."""
    optimizer.zero_grad()
    loss_fn(model(x), y).backward()
    optimizer.step()


def dataset_or_skip(name: str):
    """The dataset `name`; MNIST from $REFERENCE_DATA_DIR or ~/.cache/reference, else the test is skipped."""
    try:
        return load_dataset(name)
    except DataError as error:
        pytest.skip(f"{name} is not available ({error}); run: python -m reference fetch mnist")
