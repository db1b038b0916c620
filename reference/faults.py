"""Realistic faults for measuring the accuracy gate's power: bugs in the NumPy reference and in the recipe.

Each fault changes one training run (inside a calibration worker process): a code fault patches the NumPy
reference for the duration of a `with fault.applied():` block, a recipe or data fault returns a changed
recipe or dataset. `applies(model, framework)` says which runs a fault can affect.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from dataclasses import dataclass, replace

import numpy as np

from .data import Dataset


@dataclass(frozen=True)
class Fault:
    """One injected fault: what it is, which runs it touches, and how it changes code, recipe or data."""

    name: str
    description: str
    frameworks: tuple[str, ...] = ("numpy", "torch")
    needs: str | None = None  # a layer class the model must contain (e.g. "BatchNorm2d")
    patch: Callable | None = None  # () -> context manager patching the NumPy reference
    recipe: Callable | None = None  # recipe -> recipe
    data: Callable | None = None  # (dataset, seed) -> dataset

    def applies(self, model_name: str, framework: str, recipe) -> bool:
        """Whether the fault changes this run at all (a recipe fault that leaves the recipe as it is does not)."""
        if framework not in self.frameworks or (self.recipe is not None and self.recipe(recipe) == recipe):
            return False
        if self.needs is None:
            return True
        from . import zoo

        model = zoo.build(model_name, "numpy")
        return any(type(module).__name__ == self.needs for module in model.modules())

    def applied(self):
        return self.patch() if self.patch else contextlib.nullcontext()


@contextlib.contextmanager
def _patched(owner, name: str, make: Callable):
    """Replace `owner.name` by `make(original)` inside the block."""
    original = getattr(owner, name)
    setattr(owner, name, make(original))
    try:
        yield
    finally:
        setattr(owner, name, original)


def _conv_weight_grad_off_by_one_percent():
    from .numpy_nn import functional

    def make(backward):
        def faulty(grad_out, cache, *args, **kwargs):
            grad_x, grad_weight, grad_bias = backward(grad_out, cache, *args, **kwargs)
            return grad_x, grad_weight * grad_weight.dtype.type(1.01), grad_bias
        return faulty

    return _patched(functional, "conv2d_backward", make)


def _relu_grad_unmasked():
    """ReLU backward forgets its mask: the gradient flows through negative inputs too."""
    from .numpy_nn import functional

    return _patched(functional, "relu_backward", lambda _: lambda grad_out, cache: grad_out)


def _max_pool_grad_to_window_corner():
    """Max-pool backward routes each window's gradient to the window's top-left element, not to its maximum."""
    from .numpy_nn import MaxPool2d

    def make(backward):
        def faulty(self, grad_out):
            grad_x = backward(self, grad_out)
            (sh, sw), (ph, pw) = self.stride, self.padding
            rows = np.clip(np.arange(grad_out.shape[-2]) * sh - ph, 0, grad_x.shape[-2] - 1)
            columns = np.clip(np.arange(grad_out.shape[-1]) * sw - pw, 0, grad_x.shape[-1] - 1)
            routed = np.zeros_like(grad_x)
            np.add.at(routed, (..., rows[:, None], columns[None, :]), grad_out)
            return routed
        return faulty

    return _patched(MaxPool2d, "backward", make)


def _dropped_residual():
    """The residual block forgets its identity shortcut: y = relu(conv2(relu(conv1(x))))."""
    from .numpy_nn import blocks
    from .numpy_nn import functional as F

    def forward(self, x):
        hidden, self._relu1 = F.relu_forward(self.conv1(x))
        out, self._relu2 = F.relu_forward(self.conv2(hidden))
        return out

    def backward(self, grad_out):
        grad_sum = F.relu_backward(grad_out, self._relu2)
        return self.conv1.backward(F.relu_backward(self.conv2.backward(grad_sum), self._relu1))

    @contextlib.contextmanager
    def patch():
        with _patched(blocks.ResidualBlock, "forward", lambda _: forward), \
                _patched(blocks.ResidualBlock, "backward", lambda _: backward):
            yield

    return patch()


def _unscaled_inputs(data: Dataset, seed: int) -> Dataset:
    """The input scaling forgotten: every pixel 16 times larger (digits' raw 0..16 range instead of 0..1)."""
    return replace(data, x_train=data.x_train * np.float32(16), x_test=data.x_test * np.float32(16))


def _label_noise(data: Dataset, seed: int, fraction: float = 0.05) -> Dataset:
    """`fraction` of the training labels replaced by another class, drawn from `seed`."""
    rng = np.random.default_rng(seed)
    y = data.y_train.copy()
    noisy = rng.choice(len(y), size=round(fraction * len(y)), replace=False)
    y[noisy] = (y[noisy] + rng.integers(1, data.num_classes, size=len(noisy))) % data.num_classes
    return replace(data, y_train=y)


FAULTS = {fault.name: fault for fault in [
    Fault("one-epoch", "training stops after 1 epoch", recipe=lambda r: replace(r, epochs=1)),
    Fault("lr/10", "learning rate 10x too small", recipe=lambda r: replace(r, lr=r.lr / 10)),
    Fault("lr*10", "learning rate 10x too large", recipe=lambda r: replace(r, lr=r.lr * 10)),
    Fault("momentum-lost", "SGD momentum dropped (0 instead of the recipe's)",
          recipe=lambda r: replace(r, momentum=0.0)),
    Fault("label-noise-5%", "5% of the training labels wrong", data=_label_noise),
    Fault("inputs-unscaled", "input scaling forgotten: pixels 16x too large", data=_unscaled_inputs),
    Fault("conv-weight-grad+1%", "conv weight gradients 1% too large", frameworks=("numpy",),
          patch=_conv_weight_grad_off_by_one_percent),
    Fault("relu-grad-unmasked", "ReLU backward lets the gradient through negative inputs", frameworks=("numpy",),
          patch=_relu_grad_unmasked),
    Fault("maxpool-grad-corner", "max-pool backward routes the gradient to the window's corner, not its maximum",
          frameworks=("numpy",), needs="MaxPool2d", patch=_max_pool_grad_to_window_corner),
    Fault("dropped-residual", "the residual block loses its identity shortcut", frameworks=("numpy",),
          needs="ResidualBlock", patch=_dropped_residual),
]}
