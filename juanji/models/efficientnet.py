"""EfficientNet-B0 (Tan & Le 2019, "EfficientNet: Rethinking Model Scaling for Convolutional Neural Networks"),
torchvision's: a 3×3 conv, 16 MBConv blocks in 7 stages (inverted residuals with SiLU and squeeze-excitation,
their residual branch dropped by stochastic depth with a probability growing linearly from 0 to 0.2 · 15/16), a 1×1
conv to 1280 channels, global average pool, dropout, fc.

Small inputs (< 64 pixels): the first conv has stride 1 instead of 2 (28×28 ends at 2×2, 32×32 at 2×2).
"""
from __future__ import annotations

from collections import OrderedDict

from .. import nn
from .blocks import finish, is_small
from .mobile_blocks import Conv2dNormActivation, InvertedResidual, SqueezeExcitation, make_divisible

# (expansion, kernel, stride of the first block, input channels, output channels, blocks) — Table 1 of the paper.
B0 = [(1, 3, 1, 32, 16, 1), (6, 3, 2, 16, 24, 2), (6, 5, 2, 24, 40, 2), (6, 3, 2, 40, 80, 3),
      (6, 5, 1, 80, 112, 3), (6, 5, 2, 112, 192, 4), (6, 3, 1, 192, 320, 1)]


def mbconv(in_channels: int, out_channels: int, expand_ratio: int, kernel: int, stride: int,
           stochastic_depth_prob: float) -> InvertedResidual:
    """[1×1 expand,] k×k depthwise (stride s), squeeze-excitation (SiLU, C_in/4 channels, sigmoid gate), 1×1 linear
    projection, in ``block``; the residual branch passes ``stochastic_depth``."""
    expanded = make_divisible(in_channels * expand_ratio, 8)
    layers = [Conv2dNormActivation(in_channels, expanded, 1, activation_layer=nn.SiLU)
              ] if expanded != in_channels else []
    layers += [Conv2dNormActivation(expanded, expanded, kernel, stride, groups=expanded, activation_layer=nn.SiLU),
               SqueezeExcitation(expanded, max(1, in_channels // 4), activation=nn.SiLU),
               Conv2dNormActivation(expanded, out_channels, 1, activation_layer=None)]
    return InvertedResidual(layers, stride == 1 and in_channels == out_channels,
                            stochastic_depth_prob=stochastic_depth_prob)


def efficientnet_b0(num_classes: int = 1000, in_channels: int = 3, input_size: int = 224, dropout: float = 0.2,
                    stochastic_depth_prob: float = 0.2) -> nn.Sequential:
    """EfficientNet-B0 (torchvision): MBConv blocks, SiLU, squeeze-excitation, stochastic depth, 5.3 M parameters."""
    if not 0 <= stochastic_depth_prob <= 1:
        raise ValueError(f"efficientnet_b0: stochastic_depth_prob must be in [0, 1], got {stochastic_depth_prob}")
    layers = [Conv2dNormActivation(in_channels, B0[0][3], 3, 1 if is_small(input_size) else 2,
                                   activation_layer=nn.SiLU)]
    total, index = sum(stage[-1] for stage in B0), 0
    for expand, kernel, stride, channels, out, blocks in B0:
        stage = []
        for block in range(blocks):
            p = stochastic_depth_prob * index / total
            stage.append(mbconv(channels if block == 0 else out, out, expand, kernel, stride if block == 0 else 1, p))
            index += 1
        layers.append(nn.Sequential(*stage))
    last = 4 * B0[-1][4]
    layers.append(Conv2dNormActivation(B0[-1][4], last, 1, activation_layer=nn.SiLU))
    model = nn.Sequential(OrderedDict(
        features=nn.Sequential(*layers), avgpool=nn.AdaptiveAvgPool2d(1), flatten=nn.Flatten(),
        classifier=nn.Sequential(nn.Dropout(dropout), nn.Linear(last, num_classes))))
    return finish(model, in_channels, input_size)
