"""MobileNet v1 (Howard et al. 2017, "MobileNets: Efficient Convolutional Neural Networks for Mobile
Vision Applications"): a 3×3 conv, then 13 depthwise-separable blocks, global average pool, fc.

Small inputs (< 64 pixels): the first conv has stride 1 instead of 2 (28×28 ends at 2×2, 32×32 at 2×2).
"""
from __future__ import annotations

from collections import OrderedDict

from .. import nn
from .blocks import ConvBNReLU, finish, is_small

# (output channels, stride) of the depthwise-separable blocks — Table 1 of the paper.
BLOCKS = [(64, 1), (128, 2), (128, 1), (256, 2), (256, 1), (512, 2),
          (512, 1), (512, 1), (512, 1), (512, 1), (512, 1), (1024, 2), (1024, 1)]


class DepthwiseSeparable(nn.Sequential):
    """3×3 depthwise conv (groups = C, one filter per channel) + BN + ReLU, then 1×1 pointwise conv + BN
    + ReLU: x (N, C, H, W) → (N, K, H/s, W/s) for about 1/K + 1/9 of a full 3×3 conv's multiply-adds."""

    def __init__(self, in_channels: int, out_channels: int, stride: int = 1):
        super().__init__(OrderedDict(
            depthwise=ConvBNReLU(in_channels, in_channels, 3, stride, 1, groups=in_channels),
            pointwise=ConvBNReLU(in_channels, out_channels, 1)))


def mobilenet_v1(num_classes: int = 1000, in_channels: int = 3, input_size: int = 224,
                 width_mult: float = 1.0) -> nn.Sequential:
    """MobileNet v1 (width multiplier α = 1.0): depthwise-separable convs, 4.2 M parameters at 1000 classes."""
    if width_mult <= 0:
        raise ValueError(f"mobilenet_v1: width_mult must be positive, got {width_mult}")

    def width(channels):
        return max(8, int(channels * width_mult))

    channels = width(32)
    layers = [ConvBNReLU(in_channels, channels, 3, 1 if is_small(input_size) else 2, 1)]
    for out, stride in BLOCKS:
        layers.append(DepthwiseSeparable(channels, width(out), stride))
        channels = width(out)
    model = nn.Sequential(OrderedDict(
        features=nn.Sequential(*layers), avgpool=nn.AdaptiveAvgPool2d(1), flatten=nn.Flatten(),
        classifier=nn.Linear(channels, num_classes)))
    return finish(model, in_channels, input_size)
