"""The training loop: seeded reproducibility, history, recipes, and the stop on a non-finite loss."""

from __future__ import annotations

import functools
from dataclasses import replace

import numpy as np
import pytest
import torch

from reference import numpy_nn as nn
from reference import zoo
from reference.data import Dataset, load_dataset
from reference.numpy_nn.module import input_layer
from reference.train import NumpyStepper, train

TINY = replace(zoo.spec("tiny_cnn").recipes["digits"], epochs=2)


@functools.cache
def digits() -> Dataset:
    return load_dataset("digits")


def without_seconds(history: list[dict]) -> list[dict]:
    return [{key: value for key, value in epoch.items() if key != "seconds"} for epoch in history]


@pytest.mark.parametrize("framework", ["numpy", "torch"])
def test_same_seed_gives_bitwise_identical_runs(framework):
    first = train("tiny_cnn", framework, digits(), seed=3, recipe=TINY)
    second = train("tiny_cnn", framework, digits(), seed=3, recipe=TINY)
    np.testing.assert_array_equal(first.predictions, second.predictions)
    assert without_seconds(first.history) == without_seconds(second.history)
    for (name, a), (_, b) in zip(first.model.state_dict().items(), second.model.state_dict().items(), strict=True):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b), err_msg=name)


@pytest.mark.parametrize("framework", ["numpy", "torch"])
def test_another_seed_gives_another_run(framework):
    first = train("tiny_cnn", framework, digits(), seed=3, recipe=TINY)
    other = train("tiny_cnn", framework, digits(), seed=4, recipe=TINY)
    assert without_seconds(first.history) != without_seconds(other.history)


def test_dropout_models_are_reproducible_too():
    shapes = load_dataset("shapes")
    small = Dataset(shapes.x_train[:64], shapes.y_train[:64], shapes.x_test[:32], shapes.y_test[:32],
                    name="shapes", num_classes=4, input_shape=shapes.input_shape)
    recipe = replace(zoo.spec("simple_cnn").recipes["shapes"], epochs=1)
    for framework in ("numpy", "torch"):
        runs = [train("simple_cnn", framework, small, seed=0, recipe=recipe) for _ in range(2)]
        assert without_seconds(runs[0].history) == without_seconds(runs[1].history), framework


def test_history_has_one_record_per_epoch_with_losses_and_accuracies():
    result = train("tiny_cnn", "numpy", digits(), recipe=TINY)
    assert [epoch["epoch"] for epoch in result.history] == [1, 2]
    for epoch in result.history:
        assert set(epoch) == {"epoch", "loss", "train_accuracy", "test_accuracy", "seconds"}
        assert np.isfinite(epoch["loss"]) and 0 <= epoch["train_accuracy"] <= 1 and epoch["seconds"] > 0
    assert result.history[-1]["test_accuracy"] == result.accuracy
    assert result.predictions.shape == result.targets.shape == (450,)
    assert result.train_seconds > 0 and result.epochs == 2


def test_epochs_override_the_recipe():
    result = train("tiny_cnn", "torch", digits(), epochs=1)
    assert len(result.history) == 1 and result.recipe.lr == zoo.spec("tiny_cnn").recipes["digits"].lr


@pytest.mark.parametrize("framework", ["numpy", "torch"])
def test_step_lr_schedules_the_learning_rate_per_epoch(framework):
    """gamma 0 after the first epoch freezes the model: the later epochs change nothing."""
    frozen = train("tiny_cnn", framework, digits(), recipe=replace(TINY, epochs=3, step_size=1, gamma=0.0))
    one_epoch = train("tiny_cnn", framework, digits(), recipe=replace(TINY, epochs=1))
    assert len({epoch["test_accuracy"] for epoch in frozen.history}) == 1
    np.testing.assert_array_equal(frozen.predictions, one_epoch.predictions)


@pytest.mark.parametrize("framework", ["numpy", "torch"])
def test_a_non_finite_loss_stops_training_naming_model_epoch_and_step(framework):
    data = digits()
    x_train = data.x_train.copy()
    x_train[:] = np.nan
    poisoned = Dataset(x_train, data.y_train, data.x_test, data.y_test, name="digits", num_classes=10,
                       input_shape=data.input_shape)
    with pytest.raises(FloatingPointError, match=rf"tiny_cnn \({framework}, cpu\): non-finite loss nan at epoch 1, "
                                                 r"step 1"):
        train("tiny_cnn", framework, poisoned, recipe=TINY)


@pytest.mark.filterwarnings("ignore:overflow:RuntimeWarning", "ignore:invalid value:RuntimeWarning")
def test_a_diverging_learning_rate_is_caught_as_non_finite():
    recipe = replace(TINY, lr=1e6, momentum=0.0)
    with pytest.raises(FloatingPointError, match="non-finite loss"):
        train("tiny_cnn", "numpy", digits(), recipe=recipe)


def test_torch_global_state_is_restored_after_training():
    threads, deterministic = torch.get_num_threads(), torch.are_deterministic_algorithms_enabled()
    before = torch.random.get_rng_state()
    train("tiny_cnn", "torch", digits(), recipe=replace(TINY, epochs=1), threads=1)
    assert torch.get_num_threads() == threads
    assert torch.are_deterministic_algorithms_enabled() == deterministic
    assert torch.equal(torch.random.get_rng_state(), before)


def test_numpy_cannot_train_on_cuda_and_unknown_frameworks_are_rejected():
    with pytest.raises(ValueError, match="CPU only"):
        train("tiny_cnn", "numpy", digits(), device="cuda", recipe=TINY)
    with pytest.raises(ValueError, match="unknown framework 'jax'"):
        train("tiny_cnn", "jax", digits(), recipe=TINY)


def test_a_numpy_step_skips_only_the_datas_gradient():
    """The stepper's backward leaves out the input layer's input gradient (nothing wants it); the parameters'
    gradients are the bits of a full backward, and the layer computes input gradients again afterwards."""
    recipe = zoo.spec("simple_cnn").recipes["shapes"]
    x = np.random.default_rng(0).standard_normal((4, 3, 32, 32)).astype(np.float32)
    y = np.arange(4)
    full = NumpyStepper(zoo.build("simple_cnn", "numpy", seed=1).train(), recipe)
    full.forward(x, y)
    assert full.model.backward(full.loss_fn.backward()).shape == x.shape
    stepper = NumpyStepper(zoo.build("simple_cnn", "numpy", seed=1).train(), recipe)
    first, returned = input_layer(stepper.model), []
    backward = first.backward
    first.backward = lambda grad: returned.append(backward(grad)) or returned[-1]
    stepper.forward(x, y)
    stepper.update()
    assert returned == [None] and first.needs_input_grad
    for (name, ours), (_, theirs) in zip(stepper.model.named_parameters(), full.model.named_parameters(),
                                         strict=True):
        np.testing.assert_array_equal(ours.grad, theirs.grad, err_msg=name)


def test_numpy_predictions_run_in_training_sized_batches_and_match_one_whole_forward():
    recipe = zoo.spec("tiny_resnet").recipes["digits"]
    stepper = NumpyStepper(zoo.build("tiny_resnet", "numpy", seed=0), recipe)
    x = digits().x_test
    sizes, forward = [], stepper.model.forward
    stepper.model.forward = lambda batch: sizes.append(len(batch)) or forward(batch)
    predictions = stepper.predict(x)
    assert max(sizes) == recipe.batch_size < len(x) and sum(sizes) == len(x)
    np.testing.assert_array_equal(predictions, forward(x).argmax(axis=1))


def test_the_input_layer_is_the_first_leaf_of_plain_sequentials_only():
    conv = nn.Conv2d(1, 2, 3)
    assert input_layer(nn.Sequential(nn.Sequential(conv, nn.ReLU()), nn.Flatten())) is conv
    assert input_layer(nn.BasicBlock(2, 2)) is None  # its input feeds the shortcut too
    assert input_layer(nn.Sequential()) is None and input_layer(conv) is None
