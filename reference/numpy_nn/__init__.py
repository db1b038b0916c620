"""From-scratch NumPy layers with manual backward, mirroring `torch.nn` (no torch import here)."""

from . import functional, random
from .blocks import BasicBlock, ResidualBlock
from .layers import (
    AdaptiveAvgPool2d,
    AvgPool2d,
    BatchNorm2d,
    Conv2d,
    Dropout,
    Dropout2d,
    Linear,
    MaxPool2d,
    ReLU,
)
from .losses import CrossEntropyLoss
from .module import Flatten, Identity, Module, Parameter, Sequential
from .optim import SGD, Adam, StepLR
from .random import manual_seed
from .validation import StateDictError

__all__ = [
    "functional", "random", "Module", "Parameter", "Sequential", "Identity", "Flatten", "Conv2d", "Linear", "ReLU",
    "MaxPool2d", "AvgPool2d", "AdaptiveAvgPool2d", "BatchNorm2d", "Dropout", "Dropout2d", "BasicBlock",
    "ResidualBlock", "CrossEntropyLoss", "SGD", "Adam", "StepLR", "StateDictError", "manual_seed",
]
