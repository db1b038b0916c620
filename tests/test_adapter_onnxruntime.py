"""The ONNX Runtime adapter (reference.adapters.onnxruntime): a few of its conformance checks, one case each, and its
own translations: float64 kernels ORT lacks are not implemented, training-mode batch norm and dropout run ONNX's
training forms (running statistics and masks read back), unbatched pools run batched, sessions are cached."""

from __future__ import annotations

import numpy as np
import pytest

ort = pytest.importorskip("reference.adapters.onnxruntime")
if ort.UNAVAILABLE:
    pytest.skip(ort.UNAVAILABLE, allow_module_level=True)

import torch  # noqa: E402

from reference.testing.conformance import checks  # noqa: E402
from reference.testing.strategies import LayerConfig  # noqa: E402

CONV = LayerConfig("Conv2d", dict(in_channels=2, out_channels=3, kernel_size=3, stride=2, padding=1, bias=True),
                   (2, 2, 5, 6), (2, 3, 3, 3))
MAX_POOL = LayerConfig("MaxPool2d", dict(kernel_size=2, stride=2, padding=0, dilation=1, ceil_mode=True,
                                         return_indices=True), (3, 4, 5), (3, 2, 3))  # unbatched (C, H, W)


def run_check(check_id: str, **arguments) -> None:
    """One case of the adapter's check `check_id` (the engine's own runner and comparison)."""
    found = {check.id: check for check in checks(ort, dtypes=("float64", "float32"), devices=("cpu",))}
    found[check_id].example(ort, lambda **shown: "", **arguments)


def test_forward_checks_pass_in_float32_and_float64_kernels_ort_lacks_are_not_implemented():
    run_check("op-Conv2d-float32-cpu", config=CONV, seed=0)
    run_check("op-MaxPool2d[args]-float64-cpu", config=MAX_POOL, seed=0)
    run_check("op-MaxPool2d[args]-float32-cpu", config=MAX_POOL, seed=0)
    with pytest.raises(NotImplementedError, match=r"CPUExecutionProvider.*Conv"):
        run_check("op-Conv2d-float64-cpu", config=CONV, seed=0)


def test_tiny_cnn_forward_matches_torch():
    run_check("model-tiny_cnn[eval]-float32-cpu", seed=0)


def test_backward_is_not_implemented():
    layer = ort.ReLU()
    layer(np.ones((2, 3), np.float32))
    with pytest.raises(NotImplementedError, match="no gradients"):
        layer.backward(np.ones((2, 3), np.float32))


def test_training_batch_norm_reads_back_running_statistics_with_onnxs_population_variance():
    x = np.random.default_rng(0).standard_normal((2, 3, 2, 2)).astype(np.float32)
    ours, theirs = ort.BatchNorm2d(3), torch.nn.BatchNorm2d(3)
    out = ours(x)
    np.testing.assert_allclose(out, theirs(torch.from_numpy(x)).detach().numpy(), rtol=1e-5, atol=1e-6)
    state = ours.state_dict()
    np.testing.assert_allclose(state["running_mean"], theirs.running_mean.numpy(), rtol=1e-6, atol=1e-7)
    population = x.var(axis=(0, 2, 3))  # ONNX's running_var update; torch's is unbiased (the known difference)
    np.testing.assert_allclose(state["running_var"], 0.9 + 0.1 * population, rtol=1e-6)
    assert state["num_batches_tracked"] == theirs.num_batches_tracked == 1


def test_dropout_masks_are_the_onnx_dropout_nodes_masks_nested_ones_too():
    x = np.random.default_rng(0).standard_normal((8, 6)).astype(np.float32)
    model = ort.Sequential(ort.Dropout(0.5), ort.Sequential(ort.Linear(6, 4), ort.Dropout(0.25)))
    out = model(x)
    first, second = model[0].mask, model[1][1].mask
    assert np.all((first == 0) | (first == 2)) and np.all((second == 0) | np.isclose(second, 1 / 0.75))
    linear = model[1][0].torch
    expected = linear(torch.from_numpy(x * first)).detach().numpy() * second
    np.testing.assert_allclose(out, expected, rtol=1e-5, atol=1e-6)
    assert model.eval()[0].mask is None
    with pytest.raises(NotImplementedError, match=r"ratio must be in \[0, 1\)"):
        ort.Dropout(1.0)(x)


def test_arguments_onnx_lacks_are_not_implemented():
    with pytest.raises(NotImplementedError, match="divisor_override"):
        ort.AvgPool2d(2, divisor_override=3)
    with pytest.raises(NotImplementedError, match="label_smoothing"):
        ort.CrossEntropyLoss(label_smoothing=0.1)(np.zeros((2, 3), np.float32), np.array([0, 1]))


def test_sessions_are_cached_by_shape_and_state():
    layer = ort.Linear(3, 2)
    x = np.ones((4, 3), np.float32)
    first = layer(x)
    graph = layer._graph(x)
    assert layer._graph(x) is graph  # same shape, dtype and state: no new export
    layer.load_state_dict({key: value * 2 for key, value in layer.state_dict().items()})
    np.testing.assert_allclose(layer(x), 2 * first, rtol=1e-6)
    assert layer._graph(x) is not graph
