"""The torch namespace the zoo builds twins from: `torch.nn` layers plus our residual block."""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import (  # noqa: F401  (re-exported for the architecture builders)
    AdaptiveAvgPool2d,
    AvgPool2d,
    BatchNorm2d,
    Conv2d,
    Dropout,
    Dropout2d,
    Flatten,
    Identity,
    Linear,
    MaxPool2d,
    ReLU,
    ReLU6,
    Sequential,
)


class ResidualBlock(nn.Module):
    """y = relu(x + conv2(relu(conv1(x)))): the torch twin of `reference.numpy_nn.ResidualBlock`."""

    def __init__(self, channels: int):
        super().__init__()
        self.conv1 = nn.Conv2d(channels, channels, 3, padding=1)
        self.conv2 = nn.Conv2d(channels, channels, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.relu(x + self.conv2(torch.relu(self.conv1(x))))
