"""Residual blocks: torchvision's BasicBlock (resnet18), Bottleneck (resnet50, resnext50_32x4d) and MobileNetV2's
InvertedResidual, and the plain block of `tiny_resnet`."""

from __future__ import annotations

import numpy as np

from . import functional as F
from .layers import Conv2d, ReLU6
from .module import Module, Sequential
from .normalization import BatchNorm2d
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


class Bottleneck(Module):
    """relu(bn3(conv3(relu(bn2(conv2(relu(bn1(conv1(x)))))))) + shortcut(x)): torchvision's Bottleneck (ResNet-50;
    ResNeXt with groups and width_per_group), named exactly as torchvision's."""

    expansion = 4
    _relus = ()  # ReLU masks of the last forward

    def __init__(self, inplanes: int, planes: int, stride: int = 1, downsample: Module | None = None, groups: int = 1,
                 base_width: int = 64, dilation: int = 1, *, rng=None, dtype=np.float32):
        super().__init__()
        width = int(planes * (base_width / 64.0)) * groups
        self.conv1 = Conv2d(inplanes, width, 1, bias=False, rng=rng, dtype=dtype)
        self.bn1 = BatchNorm2d(width, dtype=dtype)
        self.conv2 = Conv2d(width, width, 3, stride=stride, padding=dilation, dilation=dilation, groups=groups,
                            bias=False, rng=rng, dtype=dtype)
        self.bn2 = BatchNorm2d(width, dtype=dtype)
        self.conv3 = Conv2d(width, planes * self.expansion, 1, bias=False, rng=rng, dtype=dtype)
        self.bn3 = BatchNorm2d(planes * self.expansion, dtype=dtype)
        if downsample is not None:
            self.downsample = downsample
        self.stride = stride

    def forward(self, x):
        check_float_dtype("Bottleneck", x)
        check_input("Bottleneck", x, ndim=4)  # BatchNorm2d needs a batch, as in torch
        hidden1, relu1 = F.relu_forward(self.bn1(self.conv1(x)))
        hidden2, relu2 = F.relu_forward(self.bn2(self.conv2(hidden1)))
        residual = self.bn3(self.conv3(hidden2))
        shortcut = self.downsample(x) if "downsample" in self._modules else x
        if residual.shape != shortcut.shape:
            raise ValueError(f"Bottleneck: residual shape {residual.shape} does not match shortcut shape "
                             f"{shortcut.shape}; a stride or channel change needs a downsample")
        out, relu3 = F.relu_forward(residual + shortcut)
        self._relus = (relu1, relu2, relu3)
        return out

    def backward(self, grad_out):
        check_grad_out("Bottleneck", grad_out, self._relus[-1].shape if self._relus else None,
                       self.conv1.weight.dtype)
        relu1, relu2, relu3 = self._relus
        grad_sum = F.relu_backward(grad_out, relu3)
        grad_hidden2 = F.relu_backward(self.conv3.backward(self.bn3.backward(grad_sum)), relu2)
        grad_hidden1 = F.relu_backward(self.conv2.backward(self.bn2.backward(grad_hidden2)), relu1)
        grad_x = self.conv1.backward(self.bn1.backward(grad_hidden1))
        if "downsample" in self._modules:
            return grad_x + self.downsample.backward(grad_sum)
        return grad_x + grad_sum


def conv_norm_activation(in_channels: int, out_channels: int, kernel_size: int = 3, stride: int = 1, groups: int = 1,
                         *, dtype=np.float32) -> Sequential:
    """torchvision's Conv2dNormActivation as MobileNetV2 uses it: conv (same padding, no bias), BN, ReLU6."""
    return Sequential(Conv2d(in_channels, out_channels, kernel_size, stride, (kernel_size - 1) // 2, groups=groups,
                             bias=False, dtype=dtype),
                      BatchNorm2d(out_channels, dtype=dtype), ReLU6())


class InvertedResidual(Module):
    """torchvision's MobileNetV2 block: [1x1 expansion] -> 3x3 depthwise -> 1x1 linear projection (each with BN),
    plus the input when the stride is 1 and the channels are kept; named exactly as torchvision's."""

    def __init__(self, inp: int, oup: int, stride: int, expand_ratio: int, *, dtype=np.float32):
        super().__init__()
        if stride not in (1, 2):
            raise ValueError(f"InvertedResidual: stride should be 1 or 2, got {stride}")
        hidden = int(round(inp * expand_ratio))
        self.stride, self.out_channels = stride, oup
        self.use_res_connect = stride == 1 and inp == oup
        expansion = [conv_norm_activation(inp, hidden, 1, dtype=dtype)] if expand_ratio != 1 else []
        self.conv = Sequential(*expansion, conv_norm_activation(hidden, hidden, 3, stride, groups=hidden, dtype=dtype),
                               Conv2d(hidden, oup, 1, bias=False, dtype=dtype), BatchNorm2d(oup, dtype=dtype))

    def forward(self, x):
        out = self.conv(x)
        return x + out if self.use_res_connect else out

    def backward(self, grad_out):
        grad_x = self.conv.backward(grad_out)
        return grad_x + grad_out if self.use_res_connect else grad_x
