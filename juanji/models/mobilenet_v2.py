"""MobileNet v2 (Sandler et al. 2018, "MobileNetV2: Inverted Residuals and Linear Bottlenecks"), torchvision's: a
3×3 conv, 17 inverted residual blocks (1×1 expand → 3×3 depthwise → linear 1×1 projection, ReLU6), a 1×1 conv to
1280 channels, global average pool, dropout, fc.

Small inputs (< 64 pixels): the first conv has stride 1 instead of 2 (28×28 ends at 2×2, 32×32 at 2×2).
"""
from __future__ import annotations

from collections import OrderedDict

from .. import nn
from .blocks import finish, is_small
from .mobile_blocks import Conv2dNormActivation, InvertedResidual, make_divisible

# (expansion t, output channels c, blocks n, stride s of the first) — Table 2 of the paper.
SETTING = [(1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2), (6, 96, 3, 1), (6, 160, 3, 2), (6, 320, 1, 1)]


def inverted_residual(in_channels: int, out_channels: int, stride: int, expand_ratio: int) -> InvertedResidual:
    """[1×1 expand to t·C, ReLU6,] 3×3 depthwise (stride s), ReLU6, 1×1 linear projection + BN, in ``conv``."""
    hidden = round(in_channels * expand_ratio)
    layers = [Conv2dNormActivation(in_channels, hidden, 1, activation_layer=nn.ReLU6)] if expand_ratio != 1 else []
    layers += [Conv2dNormActivation(hidden, hidden, 3, stride, groups=hidden, activation_layer=nn.ReLU6),
               nn.Conv2d(hidden, out_channels, 1, bias=False), nn.BatchNorm2d(out_channels)]
    return InvertedResidual(layers, stride == 1 and in_channels == out_channels, body_name="conv")


def mobilenet_v2(num_classes: int = 1000, in_channels: int = 3, input_size: int = 224, width_mult: float = 1.0,
                 dropout: float = 0.2) -> nn.Sequential:
    """MobileNet v2 (torchvision): inverted residuals with linear bottlenecks, 3.5 M parameters at 1000 classes."""
    if width_mult <= 0:
        raise ValueError(f"mobilenet_v2: width_mult must be positive, got {width_mult}")
    channels, last = make_divisible(32 * width_mult), make_divisible(1280 * max(1.0, width_mult))
    layers = [Conv2dNormActivation(in_channels, channels, 3, 1 if is_small(input_size) else 2,
                                   activation_layer=nn.ReLU6)]
    for t, c, n, s in SETTING:
        out = make_divisible(c * width_mult)
        for index in range(n):
            layers.append(inverted_residual(channels, out, s if index == 0 else 1, t))
            channels = out
    layers.append(Conv2dNormActivation(channels, last, 1, activation_layer=nn.ReLU6))
    model = nn.Sequential(OrderedDict(
        features=nn.Sequential(*layers), avgpool=nn.AdaptiveAvgPool2d(1), flatten=nn.Flatten(),
        classifier=nn.Sequential(nn.Dropout(dropout), nn.Linear(last, num_classes))))
    return finish(model, in_channels, input_size)
