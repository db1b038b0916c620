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


def tiny_mobilenet(nn, num_classes: int = 10, channels: int = 16, dilation: int = 2):
    """8x8 digits: conv stem, a depthwise-separable block (dilated 3x3 depthwise + 1x1 pointwise, MobileNet's
    ReLU6 after each), pool, linear head (2*channels*4*4 -> classes)."""
    return nn.Sequential(OrderedDict(
        features=nn.Sequential(
            nn.Conv2d(1, channels, 3, padding=1), nn.ReLU6(),
            nn.Conv2d(channels, channels, 3, padding=dilation, dilation=dilation, groups=channels), nn.ReLU6(),
            nn.Conv2d(channels, 2 * channels, 1), nn.ReLU6(), nn.MaxPool2d(2),
        ),
        classifier=nn.Sequential(nn.Flatten(), nn.Linear(2 * channels * 4 * 4, num_classes)),
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


def _bottleneck_resnet(nn, layers, num_classes: int, groups: int = 1, width_per_group: int = 64,
                       replace_stride_with_dilation=(False, False, False)):
    """torchvision's ResNet with Bottleneck blocks (ResNet-50, ResNeXt) and its module names; no initialisation.

    `replace_stride_with_dilation` (torchvision's option, as DeepLabV3 uses it) keeps layer2-4's resolution and
    dilates their 3x3 convolutions instead; a stage's first block keeps the previous dilation, as torchvision's."""
    inplanes, dilation = 64, 1

    def stage(planes, blocks, stride, dilate=False):
        nonlocal inplanes, dilation
        previous = dilation
        if dilate:
            dilation, stride = dilation * stride, 1
        first = nn.Bottleneck(inplanes, planes, stride, projection(nn, inplanes, planes * 4, stride), groups,
                              width_per_group, previous)
        inplanes = planes * 4
        return nn.Sequential(first, *(nn.Bottleneck(inplanes, planes, groups=groups, base_width=width_per_group,
                                                    dilation=dilation) for _ in range(blocks - 1)))

    dilate = tuple(replace_stride_with_dilation)
    return nn.Sequential(OrderedDict(
        conv1=nn.Conv2d(3, 64, 7, stride=2, padding=3, bias=False), bn1=nn.BatchNorm2d(64), relu=nn.ReLU(),
        maxpool=nn.MaxPool2d(3, 2, 1), layer1=stage(64, layers[0], 1), layer2=stage(128, layers[1], 2, dilate[0]),
        layer3=stage(256, layers[2], 2, dilate[1]), layer4=stage(512, layers[3], 2, dilate[2]),
        avgpool=nn.AdaptiveAvgPool2d(1), flatten=nn.Flatten(), fc=nn.Linear(2048, num_classes),
    ))


def resnet50(nn, num_classes: int = 1000, replace_stride_with_dilation=(False, False, False)):
    """torchvision's resnet50 topology: [3, 4, 6, 3] Bottleneck blocks; its state_dict loads unchanged."""
    return _bottleneck_resnet(nn, (3, 4, 6, 3), num_classes, replace_stride_with_dilation=replace_stride_with_dilation)


def resnext50_32x4d(nn, num_classes: int = 1000):
    """torchvision's resnext50_32x4d topology: resnet50 with 32 groups of width 4 in every 3x3 convolution."""
    return _bottleneck_resnet(nn, (3, 4, 6, 3), num_classes, groups=32, width_per_group=4)


def _make_divisible(value: float, divisor: int = 8) -> int:
    """torchvision's channel rounding: the nearest multiple of `divisor`, never more than 10% below `value`."""
    rounded = max(divisor, int(value + divisor / 2) // divisor * divisor)
    return rounded + divisor if rounded < 0.9 * value else rounded


MOBILENET_V2_SETTING = [  # expansion t, output channels c, blocks n, first stride s (torchvision's table)
    (1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2), (6, 96, 3, 1), (6, 160, 3, 2), (6, 320, 1, 1),
]


def _conv_bn_relu6(nn, in_channels: int, out_channels: int, kernel_size: int, stride: int = 1):
    """torchvision's Conv2dNormActivation as MobileNetV2's stem and head use it, from the namespace's own layers."""
    return nn.Sequential(nn.Conv2d(in_channels, out_channels, kernel_size, stride, (kernel_size - 1) // 2, bias=False),
                         nn.BatchNorm2d(out_channels), nn.ReLU6())


def mobilenet_v2(nn, num_classes: int = 1000, dropout: float = 0.2):
    """torchvision's mobilenet_v2 topology (width 1.0): depthwise inverted residuals, ReLU6; no initialisation."""
    features, in_channels = [_conv_bn_relu6(nn, 3, 32, 3, stride=2)], 32
    for t, c, n, s in MOBILENET_V2_SETTING:
        out_channels = _make_divisible(c)
        for index in range(n):
            features.append(nn.InvertedResidual(in_channels, out_channels, s if index == 0 else 1, t))
            in_channels = out_channels
    features.append(_conv_bn_relu6(nn, in_channels, 1280, 1))
    return nn.Sequential(OrderedDict(
        features=nn.Sequential(*features), avgpool=nn.AdaptiveAvgPool2d(1), flatten=nn.Flatten(),
        classifier=nn.Sequential(nn.Dropout(dropout), nn.Linear(1280, num_classes)),
    ))


def resnet50_numpy(nn, **options):
    """The NumPy resnet50 with torchvision's initialisation of its convolutions."""
    model = resnet50(nn, **options)
    _kaiming_normal_fan_out(nn, model)
    return model


def resnext50_32x4d_numpy(nn, **options):
    """The NumPy resnext50_32x4d with torchvision's initialisation of its convolutions."""
    model = resnext50_32x4d(nn, **options)
    _kaiming_normal_fan_out(nn, model)
    return model


def mobilenet_v2_numpy(nn, **options):
    """The NumPy mobilenet_v2 with torchvision's initialisation: convolutions N(0, 2 / fan_out), the classifier's
    weights N(0, 0.01) and zero bias."""
    model = mobilenet_v2(nn, **options)
    _kaiming_normal_fan_out(nn, model)
    linear = model.classifier[1]
    linear.weight.data = nn.random.default_generator().normal(0.0, 0.01, linear.weight.shape).astype(linear.dtype)
    linear.bias.data[...] = 0.0
    return model


def torchvision_model(name: str):
    """The torch twin builder of a torchvision classification model: `torchvision.models.<name>(weights=None)`."""
    def build(num_classes: int = 1000, **options):
        import torchvision

        return getattr(torchvision.models, name)(weights=None, num_classes=num_classes, **options)

    build.__name__ = f"{name}_torch"
    return build
