"""DenseNet-121 (torchvision), the CIFAR DenseNet-BC (Huang et al. 2017, "Densely Connected
Convolutional Networks") and a shallower member of its family (L = 40, for CPU training in minutes),
from one builder.  Every layer sees the concatenation of all earlier outputs
of its block: block input C channels → C + L·k channels after L layers of growth rate k.

Small inputs (< 64 pixels): conv0 is 3×3 stride 1 and there is no pool0 (the CIFAR stem); otherwise
7×7 stride 2 + 3×3 stride-2 max pool, as torchvision — for densenet_bc_100 too.
"""
from __future__ import annotations

from collections import OrderedDict

import numpy as np

from .. import nn
from .blocks import finish, is_small


class DenseLayer(nn.Sequential):
    """BN → ReLU → 1×1 conv (bn_size·k) → BN → ReLU → 3×3 conv (k), the "BC" bottleneck layer, whose
    output is appended to its input: x (N, C, H, W) → [x, F(x)] (N, C + k, H, W).
    dX = dY[:, :C] + F.backward(dY[:, C:])."""

    def __init__(self, in_channels: int, growth_rate: int, bn_size: int = 4):
        width = bn_size * growth_rate
        super().__init__(OrderedDict(
            norm1=nn.BatchNorm2d(in_channels), relu1=nn.ReLU(),
            conv1=nn.Conv2d(in_channels, width, 1, bias=False),
            norm2=nn.BatchNorm2d(width), relu2=nn.ReLU(),
            conv2=nn.Conv2d(width, growth_rate, 3, padding=1, bias=False)))
        self.in_channels = in_channels

    def forward(self, x):
        return np.concatenate([x, super().forward(x)], axis=1)

    def backward(self, dy):
        return dy[:, :self.in_channels] + super().backward(dy[:, self.in_channels:])


def dense_block(num_layers: int, in_channels: int, growth_rate: int, bn_size: int = 4) -> nn.Sequential:
    """``num_layers`` DenseLayers named denselayer1…: (N, C, H, W) → (N, C + num_layers·k, H, W)."""
    return nn.Sequential(OrderedDict(
        (f"denselayer{i + 1}", DenseLayer(in_channels + i * growth_rate, growth_rate, bn_size))
        for i in range(num_layers)))


def transition(in_channels: int, out_channels: int) -> nn.Sequential:
    """BN → ReLU → 1×1 conv → 2×2 average pool: (N, C, H, W) → (N, out_channels, H/2, W/2)."""
    return nn.Sequential(OrderedDict(
        norm=nn.BatchNorm2d(in_channels), relu=nn.ReLU(),
        conv=nn.Conv2d(in_channels, out_channels, 1, bias=False), pool=nn.AvgPool2d(2, 2)))


def densenet(growth_rate: int, block_config, num_init_features: int, num_classes: int, in_channels: int,
             input_size: int, bn_size: int = 4, compression: float = 0.5) -> nn.Sequential:
    """stem → dense blocks joined by transitions (channels × ``compression``) → norm5 → ReLU →
    global average pool → classifier.  x (N, in_channels, H, W) → logits (N, num_classes)."""
    if is_small(input_size):
        stem = [("conv0", nn.Conv2d(in_channels, num_init_features, 3, 1, 1, bias=False)),
                ("norm0", nn.BatchNorm2d(num_init_features)), ("relu0", nn.ReLU())]
    else:
        stem = [("conv0", nn.Conv2d(in_channels, num_init_features, 7, 2, 3, bias=False)),
                ("norm0", nn.BatchNorm2d(num_init_features)), ("relu0", nn.ReLU()),
                ("pool0", nn.MaxPool2d(3, 2, 1))]
    layers, channels = stem, num_init_features
    for i, num_layers in enumerate(block_config):
        layers.append((f"denseblock{i + 1}", dense_block(num_layers, channels, growth_rate, bn_size)))
        channels += num_layers * growth_rate
        if i < len(block_config) - 1:
            out = int(channels * compression)
            layers.append((f"transition{i + 1}", transition(channels, out)))
            channels = out
    layers.append(("norm5", nn.BatchNorm2d(channels)))
    model = nn.Sequential(OrderedDict(
        features=nn.Sequential(OrderedDict(layers)), relu=nn.ReLU(), avgpool=nn.AdaptiveAvgPool2d(1),
        flatten=nn.Flatten(), classifier=nn.Linear(channels, num_classes)))
    return finish(model, in_channels, input_size)


def densenet121(num_classes: int = 1000, in_channels: int = 3, input_size: int = 224) -> nn.Sequential:
    """DenseNet-121 (torchvision): k = 32, blocks [6, 12, 24, 16], 8.0 M parameters at 1000 classes."""
    return densenet(32, (6, 12, 24, 16), 64, num_classes, in_channels, input_size)


def densenet_bc_100(num_classes: int = 10, in_channels: int = 3, input_size: int = 32) -> nn.Sequential:
    """CIFAR DenseNet-BC (L = 100, k = 12): 3 blocks of 16 bottleneck layers, 0.8 M parameters."""
    return densenet(12, (16, 16, 16), 24, num_classes, in_channels, input_size)


def densenet_bc_40(num_classes: int = 10, in_channels: int = 3, input_size: int = 32) -> nn.Sequential:
    """Small DenseNet-BC (L = 40, k = 12): 3 blocks of 6 bottleneck layers, 0.18 M parameters."""
    return densenet(12, (6, 6, 6), 24, num_classes, in_channels, input_size)
