"""From-scratch NumPy layers with manual backward, mirroring `torch.nn` (no torch import here)."""

from . import functional, random
from .blocks import BasicBlock, Bottleneck, InvertedResidual, ResidualBlock, conv_norm_activation
from .layers import Conv2d, Dropout, Dropout2d, Hardtanh, Linear, ReLU, ReLU6
from .losses import CrossEntropyLoss
from .module import Flatten, Identity, Module, Parameter, Sequential
from .normalization import BatchNorm2d
from .optim import SGD, Adam, StepLR
from .pooling import AdaptiveAvgPool2d, AdaptiveMaxPool2d, AvgPool2d, MaxPool2d
from .random import manual_seed
from .validation import StateDictError

__all__ = [
    "functional", "random", "Module", "Parameter", "Sequential", "Identity", "Flatten", "Conv2d", "Linear", "ReLU",
    "ReLU6", "Hardtanh", "MaxPool2d", "AvgPool2d", "AdaptiveAvgPool2d", "AdaptiveMaxPool2d", "BatchNorm2d",
    "Dropout", "Dropout2d", "BasicBlock", "Bottleneck", "InvertedResidual", "conv_norm_activation", "ResidualBlock",
    "CrossEntropyLoss", "SGD", "Adam", "StepLR", "StateDictError", "manual_seed",
]
