"""Each zoo architecture written once against a layer namespace (`reference.numpy_nn` or `torch_nn`).

Because the NumPy layers mirror `torch.nn`, building the same function with either namespace gives
twins whose state_dict keys and shapes are identical by construction.
"""

from __future__ import annotations

from collections import OrderedDict


def tiny_cnn(nn, num_classes: int = 10):
    """8x8 digits: two conv+relu+pool stages, then a linear head (64 -> classes)."""
    return nn.Sequential(OrderedDict(
        features=nn.Sequential(
            nn.Conv2d(1, 8, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(8, 16, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        ),
        classifier=nn.Sequential(nn.Flatten(), nn.Linear(16 * 2 * 2, num_classes)),
    ))


def tiny_resnet(nn, num_classes: int = 10, channels: int = 8):
    """8x8 digits: conv stem, one residual block, pool, linear head (channels*4*4 -> classes)."""
    return nn.Sequential(OrderedDict(
        features=nn.Sequential(
            nn.Conv2d(1, channels, 3, padding=1), nn.ReLU(),
            nn.ResidualBlock(channels), nn.MaxPool2d(2),
        ),
        classifier=nn.Sequential(nn.Flatten(), nn.Linear(channels * 4 * 4, num_classes)),
    ))


def simple_cnn(nn, num_classes: int = 4, in_channels: int = 3):
    """32x32 synthetic shapes: three conv+BN+relu blocks (32/64/128) and a dropout MLP head."""
    return nn.Sequential(OrderedDict(
        features=nn.Sequential(
            nn.Conv2d(in_channels, 32, 3, padding=1), nn.BatchNorm2d(32), nn.ReLU(),
            nn.MaxPool2d(2), nn.Dropout2d(0.25),
            nn.Conv2d(32, 64, 3, padding=1), nn.BatchNorm2d(64), nn.ReLU(),
            nn.MaxPool2d(2), nn.Dropout2d(0.25),
            nn.Conv2d(64, 128, 3, padding=1), nn.BatchNorm2d(128), nn.ReLU(),
            nn.AdaptiveAvgPool2d(4),
        ),
        classifier=nn.Sequential(
            nn.Flatten(), nn.Linear(128 * 4 * 4, 256), nn.ReLU(), nn.Dropout(0.5), nn.Linear(256, num_classes),
        ),
    ))


def mnist_cnn(nn, num_classes: int = 10):
    """28x28 MNIST: conv 32 and conv 64 stages with pooling, then a 3136 -> 128 -> classes MLP."""
    return nn.Sequential(OrderedDict(
        features=nn.Sequential(
            nn.Conv2d(1, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(32, 64, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        ),
        classifier=nn.Sequential(
            nn.Flatten(), nn.Linear(64 * 7 * 7, 128), nn.ReLU(), nn.Linear(128, num_classes),
        ),
    ))


def basic_block(nn, inplanes: int, planes: int, stride: int = 1):
    """torchvision's BasicBlock, with the projection shortcut it gets when the shape changes."""
    return nn.BasicBlock(inplanes, planes, stride, projection(nn, inplanes, planes, stride))


def resnet18(nn, in_channels: int = 3, num_classes: int = 1000, small_stem: bool = False):
    """torchvision's ResNet-18 topology against a layer namespace, with torchvision's module names (so its
    state_dict loads); no initialisation of its own.

    `small_stem` swaps the 7x7/2 conv + max-pool for a 3x3/1 conv and no pool, for 8x8 to 32x32 inputs.
    """
    def stage(inplanes, planes, stride):
        return nn.Sequential(basic_block(nn, inplanes, planes, stride), basic_block(nn, planes, planes))

    if small_stem:
        stem, pool = nn.Conv2d(in_channels, 64, 3, stride=1, padding=1, bias=False), nn.Identity()
    else:
        stem, pool = nn.Conv2d(in_channels, 64, 7, stride=2, padding=3, bias=False), nn.MaxPool2d(3, 2, 1)
    return nn.Sequential(OrderedDict(
        conv1=stem, bn1=nn.BatchNorm2d(64), relu=nn.ReLU(), maxpool=pool,
        layer1=stage(64, 64, 1), layer2=stage(64, 128, 2), layer3=stage(128, 256, 2), layer4=stage(256, 512, 2),
        avgpool=nn.AdaptiveAvgPool2d(1), flatten=nn.Flatten(), fc=nn.Linear(512, num_classes),
    ))


def resnet18_numpy(nn, **options):
    """The NumPy resnet18: the topology above with torchvision's initialisation of its convolutions."""
    model = resnet18(nn, **options)
    _kaiming_normal_fan_out(nn, model)
    return model


def _kaiming_normal_fan_out(nn, model) -> None:
    """torchvision's ResNet init for convs: N(0, 2 / fan_out), fan_out = out_channels * kh * kw."""
    rng = nn.random.default_generator()
    for module in model.modules():
        if isinstance(module, nn.Conv2d):
            weight = module.weight.data
            std = (2.0 / (weight.shape[0] * weight.shape[2] * weight.shape[3])) ** 0.5
            module.weight.data = rng.normal(0.0, std, size=weight.shape).astype(weight.dtype)


def resnet18_torch(in_channels: int = 3, num_classes: int = 1000, small_stem: bool = False):
    """`torchvision.models.resnet18(weights=None)` itself, with the same stem options as the NumPy twin."""
    import torch.nn as torch_nn
    import torchvision

    model = torchvision.models.resnet18(weights=None, num_classes=num_classes)
    if small_stem:
        model.conv1 = torch_nn.Conv2d(in_channels, 64, 3, stride=1, padding=1, bias=False)
        model.maxpool = torch_nn.Identity()
    elif in_channels != 3:
        model.conv1 = torch_nn.Conv2d(in_channels, 64, 7, stride=2, padding=3, bias=False)
    for module in (model.conv1,):
        torch_nn.init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="relu")
    return model


def projection(nn, inplanes: int, outplanes: int, stride: int):
    """torchvision's ResNet shortcut: a 1x1 strided conv + BN when stride or channels change, else None."""
    if stride == 1 and inplanes == outplanes:
        return None
    return nn.Sequential(nn.Conv2d(inplanes, outplanes, 1, stride=stride, bias=False), nn.BatchNorm2d(outplanes))
