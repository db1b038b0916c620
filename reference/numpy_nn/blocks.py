"""Residual blocks: torchvision's BasicBlock (for resnet18) and the plain block of `tiny_resnet`."""

from __future__ import annotations

import numpy as np

from . import functional as F
from .layers import Conv2d
from .normalization import BatchNorm2d
from .module import Module, Sequential
from .validation import check_float_dtype, check_grad_out, check_input


class BasicBlock(Module):
    """relu(bn2(conv2(relu(bn1(conv1(x))))) + shortcut(x)), named exactly as torchvision's BasicBlock."""

    expansion = 1
    _relu1 = _relu2 = None  # ReLU masks of the last forward

    def __init__(self, inplanes: int, planes: int, stride: int = 1, downsample: Module | None = None, *,
                 rng=None, dtype=np.float32):
        super().__init__()
        self.conv1 = Conv2d(inplanes, planes, 3, stride=stride, padding=1, bias=False, rng=rng, dtype=dtype)
        self.bn1 = BatchNorm2d(planes, dtype=dtype)
        self.conv2 = Conv2d(planes, planes, 3, stride=1, padding=1, bias=False, rng=rng, dtype=dtype)
        self.bn2 = BatchNorm2d(planes, dtype=dtype)
        if downsample is not None:
            self.downsample = downsample
        self.stride = stride

    @staticmethod
    def projection(inplanes: int, planes: int, stride: int, *, rng=None, dtype=np.float32) -> Sequential:
        """The 1x1 strided conv + BN shortcut torchvision uses when the shape changes."""
        return Sequential(Conv2d(inplanes, planes, 1, stride=stride, bias=False, rng=rng, dtype=dtype),
                          BatchNorm2d(planes, dtype=dtype))

    def forward(self, x):
        check_float_dtype("BasicBlock", x)
        check_input("BasicBlock", x, ndim=4)  # BatchNorm2d needs a batch, as in torch
        hidden, self._relu1 = F.relu_forward(self.bn1(self.conv1(x)))
        residual = self.bn2(self.conv2(hidden))
        shortcut = self.downsample(x) if "downsample" in self._modules else x
        if residual.shape != shortcut.shape:
            raise ValueError(f"BasicBlock: residual shape {residual.shape} does not match shortcut shape "
                             f"{shortcut.shape}; a stride or channel change needs a downsample")
        out, self._relu2 = F.relu_forward(residual + shortcut)
        return out

    def backward(self, grad_out):
        check_grad_out("BasicBlock", grad_out, getattr(self._relu2, "shape", None), self.conv1.weight.dtype)
        grad_sum = F.relu_backward(grad_out, self._relu2)
        grad_hidden = self.conv2.backward(self.bn2.backward(grad_sum))
        grad_x = self.conv1.backward(self.bn1.backward(F.relu_backward(grad_hidden, self._relu1)))
        if "downsample" in self._modules:
            return grad_x + self.downsample.backward(grad_sum)
        return grad_x + grad_sum


class ResidualBlock(Module):
    """y = relu(x + conv2(relu(conv1(x)))) with 3x3 same-padding convs: the block of `tiny_resnet`."""

    _relu1 = _relu2 = None  # ReLU masks of the last forward

    def __init__(self, channels: int, *, rng=None, dtype=np.float32):
        super().__init__()
        self.conv1 = Conv2d(channels, channels, 3, padding=1, rng=rng, dtype=dtype)
        self.conv2 = Conv2d(channels, channels, 3, padding=1, rng=rng, dtype=dtype)

    def forward(self, x):
        hidden, self._relu1 = F.relu_forward(self.conv1(x))
        out, self._relu2 = F.relu_forward(x + self.conv2(hidden))
        return out

    def backward(self, grad_out):
        check_grad_out("ResidualBlock", grad_out, getattr(self._relu2, "shape", None), self.conv1.weight.dtype)
        grad_sum = F.relu_backward(grad_out, self._relu2)
        grad_hidden = F.relu_backward(self.conv2.backward(grad_sum), self._relu1)
        return self.conv1.backward(grad_hidden) + grad_sum
