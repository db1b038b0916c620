"""torchvision's ResNet blocks laid out once for every adapter: the children (names, order, arguments) and
torchvision's own refusals, built from the adapter's Conv2d and BatchNorm2d; each adapter adds its forward."""

from __future__ import annotations


def basic_block_layers(block, conv, norm, inplanes, planes, stride, downsample, groups, base_width, dilation):
    """Give `block` torchvision's BasicBlock children and attributes, refusing what torchvision refuses."""
    if groups != 1 or base_width != 64:
        raise ValueError("BasicBlock only supports groups=1 and base_width=64")
    if dilation > 1:
        raise NotImplementedError("Dilation > 1 not supported in BasicBlock")  # torchvision's own refusal
    block.conv1 = conv(inplanes, planes, 3, stride=stride, padding=1, bias=False)
    block.bn1 = norm(planes)
    block.conv2 = conv(planes, planes, 3, padding=1, bias=False)
    block.bn2 = norm(planes)
    if downsample is not None:
        block.downsample = downsample
    block.stride = stride


def bottleneck_layers(block, conv, norm, inplanes, planes, stride, downsample, groups, base_width, dilation):
    """Give `block` torchvision's Bottleneck children and attributes (ResNeXt's groups and width, dilation)."""
    width = int(planes * (base_width / 64.0)) * groups
    block.conv1 = conv(inplanes, width, 1, bias=False)
    block.bn1 = norm(width)
    block.conv2 = conv(width, width, 3, stride=stride, padding=dilation, dilation=dilation, groups=groups, bias=False)
    block.bn2 = norm(width)
    block.conv3 = conv(width, planes * block.expansion, 1, bias=False)
    block.bn3 = norm(planes * block.expansion)
    if downsample is not None:
        block.downsample = downsample
    block.stride = stride
