"""Manual backward against central finite differences in float64 (relative error <= 1e-6, see gradcheck).

Every layer's input and parameter gradients on random tiny configurations, the cross-entropy gradient, and
the whole backward of every zoo model in training mode (dropout masks re-drawn identically before each
evaluation) and in evaluation mode (a random subset of coordinates per parameter for the big ones).
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from reference import numpy_nn as nn
from reference import zoo
from reference.numpy_nn import functional as F
from reference.testing import strategies as rst
from reference.testing.conformance import database as db
from reference.testing.conformance.namespace import numpy_layer
from reference.testing.gradcheck import assert_gradients_match, loss_rounding, numerical_gradient, relative_error
from reference.testing.states import randomize_batch_norm

TOL = 1e-6


def randomize_batch_norms(module, rng: np.random.Generator) -> None:
    """Give every BatchNorm2d non-trivial affine parameters and running statistics (defaults are 1, 0, 0, 1)."""
    module.load_state_dict(randomize_batch_norm(module.state_dict(), rng))


def fixed_dropout_masks(module, seed: int):
    """A hook that re-seeds every dropout layer's generator, so each forward draws the same masks."""
    droppers = [sub for sub in module.modules() if isinstance(sub, (nn.Dropout, nn.Dropout2d))]

    def reseed() -> None:
        for index, sub in enumerate(droppers):
            sub.rng = np.random.default_rng([seed, index])

    return reseed


# Composite layers have many coordinates: a random subset of this many per tensor (None: all of them).
LAYER_MAX_COORDS = {"BasicBlock": 16, "ResidualBlock": 32}


@pytest.mark.parametrize("name", db.LAYERS)
@given(data=st.data(), training=st.booleans(), seed=rst.seeds)
def test_layer_gradients_match_finite_differences(name, data, training, seed):
    cfg = data.draw(db.layer_configs(name), label="config")
    module = numpy_layer(cfg, np.float64, seed).train(training)
    rng = np.random.default_rng(seed)
    randomize_batch_norms(module, rng)
    x = rng.standard_normal(cfg.input_shape)
    assert_gradients_match(module, x, tol=TOL, seed=seed, before_forward=fixed_dropout_masks(module, seed),
                           max_coords=LAYER_MAX_COORDS.get(name), context=f"of {cfg}")


@given(n=st.integers(1, 4), k=st.integers(1, 6), smoothing=st.sampled_from([0.0, 0.1, 0.5, 1.0]),
       scale=st.sampled_from([1.0, 10.0]), seed=rst.seeds)
def test_cross_entropy_gradient_matches_finite_differences(n, k, smoothing, scale, seed):
    rng = np.random.default_rng(seed)
    logits, targets = scale * rng.standard_normal((n, k)), rng.integers(0, k, n)
    loss = nn.CrossEntropyLoss(label_smoothing=smoothing)
    loss(logits, targets)
    grad_loss = float(rng.uniform(0.5, 2.0))
    analytic = loss.backward(grad_loss)
    numeric = numerical_gradient(lambda: grad_loss * loss(logits, targets), logits, np.arange(logits.size))
    assert relative_error(analytic.reshape(-1), numeric) <= TOL


@given(n=st.integers(1, 3), f_in=st.integers(1, 5), seed=rst.seeds)
def test_linear_then_cross_entropy_chain_matches_finite_differences(n, f_in, seed):
    """Backward composes: the loss's logits gradient fed to a layer gives the gradient of loss(layer(x))."""
    rng = np.random.default_rng(seed)
    layer = nn.Linear(f_in, 4, rng=rng, dtype=np.float64)
    loss = nn.CrossEntropyLoss()
    x, targets = rng.standard_normal((n, f_in)), rng.integers(0, 4, n)
    loss(layer(x), targets)
    analytic = layer.backward(loss.backward())
    numeric = numerical_gradient(lambda: loss(layer(x), targets), x, np.arange(x.size))
    assert relative_error(analytic.reshape(-1), numeric) <= TOL


@given(shape=st.sampled_from([(2, 3, 4, 4), (3, 1, 2, 5)]), seed=rst.seeds)
def test_batch_norm_functional_backward_matches_finite_differences_in_both_forms(shape, seed):
    rng = np.random.default_rng(seed)
    x, c = rng.standard_normal(shape), shape[1]
    weight, bias, weights = rng.standard_normal(c), rng.standard_normal(c), rng.standard_normal(shape)
    mean, var = rng.standard_normal(c), rng.uniform(0.5, 2.0, c)
    forwards = {
        "train": lambda: F.batch_norm2d_train_forward(x, weight, bias, 1e-5),
        "eval": lambda: F.batch_norm2d_eval_forward(x, weight, bias, mean, var, 1e-5),
    }
    for form, forward in forwards.items():
        out, cache = forward()
        grads = F.batch_norm2d_backward(weights, cache)
        allowance = loss_rounding(out, weights) / 1e-6
        for array, analytic in zip((x, weight, bias), grads, strict=True):
            loss = lambda forward=forward: np.sum(forward()[0] * weights)  # noqa: E731
            numeric = numerical_gradient(loss, array, np.arange(array.size))
            assert relative_error(analytic.reshape(-1), numeric, allowance) <= TOL, form


ZOO_CASES = [pytest.param(name, mode, id=f"{name}-{mode}",
                          marks=[pytest.mark.slow] if spec.quirks.slow or spec.quirks.gradcheck_slow else [])
             for name, spec in ((name, zoo.spec(name)) for name in zoo.names()) for mode in spec.quirks.gradcheck_modes]


@pytest.mark.parametrize(("name", "mode"), ZOO_CASES)
def test_zoo_model_backward_matches_finite_differences(name, mode):
    """On the zoo entry's small input, a random subset of coordinates per tensor, in the modes its quirks name
    (ModelQuirks.gradcheck_*; torchvision's models in eval mode only, see the zoo)."""
    spec = zoo.spec(name)
    model = zoo.build(name, "numpy", seed=1).double().train(mode == "train")
    rng = np.random.default_rng(2)
    randomize_batch_norms(model, rng)
    x = rng.standard_normal(spec.quirks.gradcheck_input or (2, *spec.input_shape))
    max_coords = spec.quirks.gradcheck_coords[0 if mode == "train" else 1]
    assert_gradients_match(model, x, tol=TOL, seed=3, max_coords=max_coords,
                           before_forward=fixed_dropout_masks(model, seed=4), context=f"of {name} in {mode} mode")
