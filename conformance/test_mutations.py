"""Every oracle fails on a deliberately broken implementation (so none of them is a test that cannot fail).

Each mutant is monkeypatched into `reference.numpy_nn` (the modules look their functional math up at call
time) and every oracle that covers it must raise AssertionError: the torch comparison, the SciPy oracle, the
gradcheck-based check and the training-trajectory check. The unmutated code passes the same calls, checked
first in each test, so a failure here cannot come from the configuration. Checks of mutants are not recorded
in the conformance report.
"""

from __future__ import annotations

import numpy as np
import pytest

import reference.numpy_nn as nnp
import reference.numpy_nn.functional as F
from reference.testing.compare import not_recorded
from reference.testing.strategies import LayerConfig

from .harness import assert_matches_torch
from .models import run_trajectory
from .ops import OPS_BY_NAME
from .oracles import assert_conv2d_matches_scipy, assert_gradients_pass_gradcheck, assert_pool2d_matches_scipy

CONV = LayerConfig("Conv2d", dict(in_channels=2, out_channels=3, kernel_size=3, stride=2, padding=1, bias=True),
                   (2, 2, 5, 6), (2, 3, 3, 3))
BATCH_NORM = LayerConfig("BatchNorm2d", dict(num_features=3, eps=1e-5, momentum=0.1), (2, 3, 3, 2), (2, 3, 3, 2))
MAX_POOL = LayerConfig("MaxPool2d", dict(kernel_size=2, stride=2, padding=0), (2, 2, 4, 6), (2, 2, 2, 3))
ADAM = dict(optimizer="Adam", kwargs=dict(lr=1e-2, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0),
            shapes=[(3,), (2, 2)], steps=3, skip_steps=[])
SEED = 7


# -- the mutants --------------------------------------------------------------------------------------------------

def conv_backward_with_flipped_kernel(monkeypatch):
    """conv2d's input gradient computed with the kernel rotated by 180 degrees (a true convolution)."""
    forward, backward = F.conv2d_forward, F.conv2d_backward

    def mutant_forward(x, weight, bias, stride=1, padding=0):
        out, cache = forward(x, weight, bias, stride, padding)
        _, flipped = forward(x, np.ascontiguousarray(weight[:, :, ::-1, ::-1]), bias, stride, padding)
        return out, (cache, flipped)

    def mutant_backward(grad_out, caches):
        cache, flipped = caches
        _, grad_weight, grad_bias = backward(grad_out, cache)
        return backward(grad_out, flipped)[0], grad_weight, grad_bias

    monkeypatch.setattr(F, "conv2d_forward", mutant_forward)
    monkeypatch.setattr(F, "conv2d_backward", mutant_backward)


def conv_forward_with_flipped_kernel(monkeypatch):
    """conv2d's forward as a convolution (kernel rotated) instead of torch's cross-correlation."""
    forward = F.conv2d_forward
    monkeypatch.setattr(F, "conv2d_forward", lambda x, weight, bias, stride=1, padding=0: forward(
        x, np.ascontiguousarray(weight[:, :, ::-1, ::-1]), bias, stride, padding))


def batch_norm_with_unbiased_variance(monkeypatch):
    """Training-mode batch norm normalizing by the unbiased (n - 1) batch variance instead of the biased one."""
    forward = F.batch_norm2d_train_forward

    def mutant(x, weight, bias, eps):
        _, cache = forward(x, weight, bias, eps)
        count = x.size // x.shape[1]
        var = cache.var * (count / (count - 1))
        x_hat = (x - cache.mean.reshape(1, -1, 1, 1)) / np.sqrt(var + eps).reshape(1, -1, 1, 1)
        return weight.reshape(1, -1, 1, 1) * x_hat + bias.reshape(1, -1, 1, 1), cache

    monkeypatch.setattr(F, "batch_norm2d_train_forward", mutant)


def max_pool_argmax_off_by_one(monkeypatch):
    """Max-pool's gradient delivered one column to the right of the element the forward picked."""
    backward = F.max_pool2d_backward
    monkeypatch.setattr(F, "max_pool2d_backward", lambda grad_out, cache: np.roll(backward(grad_out, cache), 1, -1))


def adam_without_sqrt_in_bias_correction(monkeypatch):
    """Adam dividing sqrt(v) by (1 - beta2^t) instead of sqrt(1 - beta2^t)."""

    def mutant_step(self):
        beta1, beta2 = self.betas
        for i, param in self._params_with_grad():
            grad = param.grad + self.weight_decay * param.data
            state = self.state.setdefault(i, {"step": 0, "exp_avg": np.zeros_like(param.data),
                                              "exp_avg_sq": np.zeros_like(param.data)})
            state["step"] += 1
            state["exp_avg"] += (1.0 - beta1) * (grad - state["exp_avg"])
            state["exp_avg_sq"] *= beta2
            state["exp_avg_sq"] += (1.0 - beta2) * grad * grad
            denom = np.sqrt(state["exp_avg_sq"]) / (1.0 - beta2 ** state["step"]) + self.eps
            param.data -= self.lr / (1.0 - beta1 ** state["step"]) * state["exp_avg"] / denom

    monkeypatch.setattr(nnp.Adam, "step", mutant_step)


# -- oracle calls ------------------------------------------------------------------------------------------------

def torch_comparison(name, config):
    return lambda: assert_matches_torch(OPS_BY_NAME[name], config, SEED, "float64", "cpu")


def gradcheck_oracle(name, config):
    return lambda: assert_gradients_pass_gradcheck(name, config, SEED)


CASES = [  # (mutant, oracle name, oracle call)
    (conv_backward_with_flipped_kernel, "torch comparison", torch_comparison("Conv2d", CONV)),
    (conv_backward_with_flipped_kernel, "scipy", lambda: assert_conv2d_matches_scipy(CONV, SEED)),
    (conv_backward_with_flipped_kernel, "gradcheck", gradcheck_oracle("Conv2d", CONV)),
    (conv_forward_with_flipped_kernel, "torch comparison", torch_comparison("Conv2d", CONV)),
    (conv_forward_with_flipped_kernel, "scipy", lambda: assert_conv2d_matches_scipy(CONV, SEED)),
    (conv_forward_with_flipped_kernel, "gradcheck", gradcheck_oracle("Conv2d", CONV)),
    (conv_forward_with_flipped_kernel, "trajectory", lambda: run_trajectory("tiny_cnn", "sgd", "float64", steps=2)),
    (batch_norm_with_unbiased_variance, "torch comparison", torch_comparison("BatchNorm2d[train]", BATCH_NORM)),
    (batch_norm_with_unbiased_variance, "gradcheck", gradcheck_oracle("BatchNorm2d[train]", BATCH_NORM)),
    (batch_norm_with_unbiased_variance, "trajectory",
     lambda: run_trajectory("simple_cnn", "adam", "float64", steps=2)),
    (max_pool_argmax_off_by_one, "torch comparison", torch_comparison("MaxPool2d", MAX_POOL)),
    (max_pool_argmax_off_by_one, "gradcheck", gradcheck_oracle("MaxPool2d", MAX_POOL)),
    (max_pool_argmax_off_by_one, "trajectory", lambda: run_trajectory("tiny_cnn", "sgd", "float64", steps=2)),
    (adam_without_sqrt_in_bias_correction, "torch comparison", torch_comparison("Adam", ADAM)),
    (adam_without_sqrt_in_bias_correction, "trajectory", lambda: run_trajectory("tiny_cnn", "adam", "float64",
                                                                                steps=2)),
]


@pytest.mark.parametrize(("mutant", "oracle", "check"), CASES,
                         ids=[f"{mutant.__name__}-{oracle}" for mutant, oracle, _ in CASES])
def test_oracle_fails_on_mutant(mutant, oracle, check, monkeypatch):
    with not_recorded():
        check()  # the real implementation passes this exact check
        mutant(monkeypatch)
        with pytest.raises(AssertionError):
            check()


def test_scipy_pool_oracle_fails_on_wrong_max_pool_forward(monkeypatch):
    """The pooling oracle catches a max-pool forward that pads with zeros instead of -inf (a corner window holds
    one real pixel, negative half the time)."""
    config = LayerConfig("MaxPool2d", dict(kernel_size=2, stride=2, padding=1), (2, 2, 4, 4), (2, 2, 3, 3))
    forward = F.max_pool2d_forward

    def zero_padded(x, kernel_size, stride, padding):
        out, cache = forward(x, kernel_size, stride, padding)
        return np.maximum(out, 0.0) if padding else out, cache  # a zero pad would win over negative windows

    with not_recorded():
        assert_pool2d_matches_scipy(config, SEED)
        monkeypatch.setattr(F, "max_pool2d_forward", zero_padded)
        with pytest.raises(AssertionError):
            assert_pool2d_matches_scipy(config, SEED)
