"""The zoo: every model builds in both frameworks, the twins exchange state_dicts with no renaming in both
directions, and then agree in evaluation mode; the NumPy resnet18 loads torchvision's resnet18 unchanged.
(Detailed, per-op conformance with tolerances per dtype is conformance/'s job: tolerances here are loose.)"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from reference import zoo

NAMES = zoo.names()


def batch(name, n=2, seed=0):
    return np.random.default_rng(seed).standard_normal((n, *zoo.spec(name).input_shape)).astype(np.float32)


def torch_state(model) -> dict:
    return {key: value.detach().cpu().numpy() for key, value in model.state_dict().items()}


def assert_states_equal(a: dict, b: dict) -> None:
    assert list(a) == list(b), "keys or their order differ"
    for key in a:
        assert np.shape(a[key]) == np.shape(b[key]), key
        np.testing.assert_array_equal(a[key], b[key], err_msg=key)


def test_the_zoo_lists_the_documented_models():
    assert {"tiny_cnn", "tiny_resnet", "simple_cnn", "mnist_cnn", "resnet18"} <= set(NAMES)


def test_unknown_model_or_framework_is_a_value_error_listing_the_choices():
    with pytest.raises(ValueError, match="tiny_cnn"):
        zoo.spec("no_such_model")
    with pytest.raises(ValueError, match="numpy"):
        zoo.build("tiny_cnn", framework="jax")


@pytest.mark.parametrize("name", NAMES)
def test_numpy_model_maps_its_input_shape_to_class_logits(name):
    spec = zoo.spec(name)
    out = zoo.build(name, "numpy")(batch(name, n=3))
    assert out.shape == (3, spec.num_classes) and np.isfinite(out).all()


@pytest.mark.parametrize("framework", ["numpy", "torch"])
@pytest.mark.parametrize("name", NAMES)
def test_build_is_deterministic_in_the_seed(name, framework):
    state = (lambda m: m.state_dict()) if framework == "numpy" else torch_state
    assert_states_equal(state(zoo.build(name, framework, seed=3)), state(zoo.build(name, framework, seed=3)))
    other, same = state(zoo.build(name, framework, seed=4)), state(zoo.build(name, framework, seed=3))
    assert any(not np.array_equal(other[k], same[k]) for k in same if k.endswith("weight"))


@pytest.mark.parametrize("name", NAMES)
def test_twins_have_identical_state_dict_keys_order_and_shapes(name):
    numpy_state, torch_state_ = zoo.build(name, "numpy").state_dict(), torch_state(zoo.build(name, "torch"))
    assert list(numpy_state) == list(torch_state_)
    for key in numpy_state:
        assert numpy_state[key].shape == torch_state_[key].shape, key
        assert numpy_state[key].dtype == torch_state_[key].dtype, key


@pytest.mark.parametrize("name", NAMES)
def test_copy_state_moves_every_array_unchanged_in_both_directions(name):
    numpy_model, torch_model = zoo.build(name, "numpy", seed=1), zoo.build(name, "torch", seed=2)
    zoo.copy_state(numpy_model, torch_model)
    assert_states_equal(numpy_model.state_dict(), torch_state(torch_model))
    fresh_torch = zoo.build(name, "torch", seed=5)
    zoo.copy_state(fresh_torch, numpy_model)
    assert_states_equal(torch_state(fresh_torch), numpy_model.state_dict())


@pytest.mark.parametrize("name", NAMES)
def test_twins_agree_in_eval_mode_after_copy_state(name):
    numpy_model, torch_model = zoo.build(name, "numpy", seed=1), zoo.build(name, "torch", seed=1)
    zoo.copy_state(torch_model, numpy_model)
    x = batch(name, n=4)
    expected = torch_model.eval()(torch.from_numpy(x)).detach().numpy()
    got = numpy_model.eval()(x)
    np.testing.assert_allclose(got, expected, rtol=1e-3, atol=1e-4 * max(1.0, np.abs(expected).max()))


def test_numpy_resnet18_loads_torchvision_resnet18_unchanged_and_agrees_with_it():
    import torchvision

    reference = torchvision.models.resnet18(weights=None).eval()
    with torch.no_grad():  # non-default running statistics, so that evaluation mode really uses them
        for module in reference.modules():
            if isinstance(module, torch.nn.BatchNorm2d):
                module.running_mean.uniform_(-0.1, 0.1)
                module.running_var.uniform_(0.5, 1.5)
    state = reference.state_dict()
    model = zoo.build("resnet18", "numpy", in_channels=3, num_classes=1000, small_stem=False)
    model.load_state_dict(state)
    assert_states_equal(model.state_dict(), {k: v.numpy() for k, v in state.items()})
    x = np.random.default_rng(0).standard_normal((1, 3, 64, 64)).astype(np.float32)
    expected = reference(torch.from_numpy(x)).detach().numpy()
    got = model.eval()(x)
    assert got.shape == (1, 1000)
    np.testing.assert_allclose(got, expected, rtol=1e-3, atol=1e-4 * max(1.0, np.abs(expected).max()))
