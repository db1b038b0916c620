"""The zoo: every model builds in both frameworks, the twins exchange state_dicts with no renaming in both
directions, and then agree in evaluation mode; the NumPy resnet18 loads torchvision's resnet18 unchanged.
(Detailed, per-op conformance with tolerances per dtype is conformance/'s job: tolerances here are loose.)"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from reference import zoo
from reference.zoo import architectures

NAMES = zoo.names()
# Every model, the heavy ones (ModelQuirks.slow: resnet50, resnext50_32x4d) in the slow tier.
CASES = [pytest.param(name, marks=[pytest.mark.slow] if zoo.spec(name).quirks.slow else []) for name in NAMES]


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


@pytest.mark.parametrize("name", CASES)
def test_numpy_model_maps_its_input_shape_to_class_logits(name):
    spec = zoo.spec(name)
    out = zoo.build(name, "numpy")(batch(name, n=3))
    assert out.shape == (3, spec.num_classes) and np.isfinite(out).all()


@pytest.mark.parametrize("framework", ["numpy", "torch"])
@pytest.mark.parametrize("name", CASES)
def test_build_is_deterministic_in_the_seed(name, framework):
    state = (lambda m: m.state_dict()) if framework == "numpy" else torch_state
    assert_states_equal(state(zoo.build(name, framework, seed=3)), state(zoo.build(name, framework, seed=3)))
    other, same = state(zoo.build(name, framework, seed=4)), state(zoo.build(name, framework, seed=3))
    assert any(not np.array_equal(other[k], same[k]) for k in same if k.endswith("weight"))


@pytest.mark.parametrize("name", CASES)
def test_twins_have_identical_state_dict_keys_order_and_shapes(name):
    numpy_state, torch_state_ = zoo.build(name, "numpy").state_dict(), torch_state(zoo.build(name, "torch"))
    assert list(numpy_state) == list(torch_state_)
    for key in numpy_state:
        assert numpy_state[key].shape == torch_state_[key].shape, key
        assert numpy_state[key].dtype == torch_state_[key].dtype, key


@pytest.mark.parametrize("name", CASES)
def test_copy_state_moves_every_array_unchanged_in_both_directions(name):
    numpy_model, torch_model = zoo.build(name, "numpy", seed=1), zoo.build(name, "torch", seed=2)
    zoo.copy_state(numpy_model, torch_model)
    assert_states_equal(numpy_model.state_dict(), torch_state(torch_model))
    fresh_torch = zoo.build(name, "torch", seed=5)
    zoo.copy_state(fresh_torch, numpy_model)
    assert_states_equal(torch_state(fresh_torch), numpy_model.state_dict())


@pytest.mark.parametrize("name", CASES)
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


# -- torchvision's own Bottleneck, grouped and depthwise models -------------------------------------------------

TORCHVISION_TWINS = {
    "resnet50": architectures.resnet50_numpy,
    "resnext50_32x4d": architectures.resnext50_32x4d_numpy,
    "mobilenet_v2": architectures.mobilenet_v2_numpy,
}


def torchvision_reference(name: str, seed: int = 0) -> torch.nn.Module:
    """torchvision's model (weights=None) in float64 with random batch-norm affine parameters and statistics."""
    import torchvision

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = getattr(torchvision.models, name)(weights=None).double()
        with torch.no_grad():
            for module in model.modules():
                if isinstance(module, torch.nn.BatchNorm2d):
                    module.weight.uniform_(0.5, 1.5)
                    module.bias.uniform_(-0.2, 0.2)
                    module.running_mean.uniform_(-0.1, 0.1)
                    module.running_var.uniform_(0.5, 1.5)
    return model


# resnet50 / resnext50_32x4d: 25M parameters, ~10 s a case on 2 cores (slow tier); mobilenet_v2 runs by default.
TWIN_CASES = [pytest.param(name, marks=[pytest.mark.slow] if name != "mobilenet_v2" else [])
              for name in TORCHVISION_TWINS]


@pytest.mark.parametrize("mode", ["train", "eval"])
@pytest.mark.parametrize("name", TWIN_CASES)
def test_numpy_twin_loads_torchvisions_state_dict_and_matches_its_logits_and_gradients(name, mode):
    """float64, 2x3x64x64: logits, the input gradient, every parameter gradient and (training) every batch-norm
    buffer equal torchvision's to rounding; dropout off in both (p = 0) so that training mode is deterministic."""
    from reference import numpy_nn

    reference = torchvision_reference(name).train(mode == "train")
    state = {key: value.detach().clone() for key, value in reference.state_dict().items()}
    model = TORCHVISION_TWINS[name](numpy_nn).double().train(mode == "train")
    model.load_state_dict(state)
    assert_states_equal(model.state_dict(), {k: v.numpy() for k, v in state.items()})
    for module in list(model.modules()) + list(reference.modules()):
        if isinstance(module, (numpy_nn.Dropout, torch.nn.Dropout)):
            module.p = 0.0
    rng = np.random.default_rng(1)
    x = rng.standard_normal((2, 3, 64, 64))
    x_torch = torch.from_numpy(x.copy()).requires_grad_()
    expected = reference(x_torch)
    grad = rng.standard_normal(expected.shape)
    expected.backward(torch.from_numpy(grad))
    np.testing.assert_allclose(model(x), expected.detach().numpy(), rtol=1e-9, atol=1e-12, err_msg="logits")
    grad_x = model.backward(grad)
    np.testing.assert_allclose(grad_x, x_torch.grad.numpy(), rtol=1e-8, atol=1e-10 * np.abs(grad_x).max())
    torch_parameters = dict(reference.named_parameters())
    scale = max(float(p.grad.abs().max()) for p in torch_parameters.values())
    for key, param in model.named_parameters():  # atol: batch-norm biases right before a batch norm have gradient 0
        np.testing.assert_allclose(param.grad, torch_parameters[key].grad.numpy(), rtol=1e-8, atol=1e-10 * scale,
                                   err_msg=key)
    expected_state = reference.state_dict()
    assert list(model.state_dict()) == list(expected_state)
    for key, value in model.state_dict().items():
        np.testing.assert_allclose(value, expected_state[key].numpy(), rtol=1e-9, atol=1e-12, err_msg=key)


def _block_pairs():
    """(label, NumPy block, torchvision block) pairs at tiny sizes: every shortcut kind, groups, expansions."""
    from torchvision.models.mobilenetv2 import InvertedResidual
    from torchvision.models.resnet import Bottleneck

    from reference import numpy_nn

    def projection(inplanes, outplanes, stride):
        return torch.nn.Sequential(torch.nn.Conv2d(inplanes, outplanes, 1, stride, bias=False),
                                   torch.nn.BatchNorm2d(outplanes))

    cases = []
    for inplanes, planes, stride, groups, width in [(16, 4, 1, 1, 64), (8, 4, 2, 1, 64), (16, 8, 1, 4, 8),
                                                    (8, 8, 2, 4, 16)]:
        shortcut = stride != 1 or inplanes != planes * 4
        cases.append((f"Bottleneck({inplanes}, {planes}, stride={stride}, groups={groups}, width={width})",
                      numpy_nn.Bottleneck(inplanes, planes, stride,
                                          architectures.projection(numpy_nn, inplanes, planes * 4, stride),
                                          groups, width),
                      Bottleneck(inplanes, planes, stride, projection(inplanes, planes * 4, stride) if shortcut
                                 else None, groups, width)))
    for inp, oup, stride, expand in [(4, 4, 1, 1), (4, 4, 1, 6), (4, 6, 2, 6), (6, 8, 1, 3)]:
        cases.append((f"InvertedResidual({inp}, {oup}, stride={stride}, expand={expand})",
                      numpy_nn.InvertedResidual(inp, oup, stride, expand), InvertedResidual(inp, oup, stride, expand)))
    return cases


@pytest.mark.parametrize("mode", ["train", "eval"])
@pytest.mark.parametrize("index", range(8))
def test_bottleneck_and_inverted_residual_match_torchvisions_blocks(index, mode):
    """The blocks of resnet50 / resnext50_32x4d (groups) / mobilenet_v2 (depthwise) against torchvision's own, with
    its state loaded, in float64: output, input and parameter gradients, buffers."""
    label, block, reference = _block_pairs()[index]
    reference = reference.double().train(mode == "train")
    with torch.no_grad():
        for module in reference.modules():
            if isinstance(module, torch.nn.BatchNorm2d):
                module.weight.uniform_(0.5, 1.5)
                module.running_var.uniform_(0.5, 1.5)
    block.double().train(mode == "train").load_state_dict(reference.state_dict())
    rng = np.random.default_rng(index)
    x = rng.standard_normal((2, reference_channels(reference), 6, 6))
    x_torch = torch.from_numpy(x.copy()).requires_grad_()
    expected = reference(x_torch)
    grad = rng.standard_normal(expected.shape)
    expected.backward(torch.from_numpy(grad))
    np.testing.assert_allclose(block(x), expected.detach().numpy(), rtol=1e-10, atol=1e-12, err_msg=label)
    np.testing.assert_allclose(block.backward(grad), x_torch.grad.numpy(), rtol=1e-9, atol=1e-12, err_msg=label)
    torch_parameters = dict(reference.named_parameters())
    for key, param in block.named_parameters():
        np.testing.assert_allclose(param.grad, torch_parameters[key].grad.numpy(), rtol=1e-9, atol=1e-10,
                                   err_msg=f"{label}: {key}")
    for key, value in reference.state_dict().items():
        np.testing.assert_allclose(block.state_dict()[key], value.numpy(), rtol=1e-10, err_msg=f"{label}: {key}")


def reference_channels(block) -> int:
    """Input channels of a torchvision block (its first convolution's)."""
    return next(m for m in block.modules() if isinstance(m, torch.nn.Conv2d)).in_channels
