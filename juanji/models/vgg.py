"""VGG-11/13/16/19, with and without batch norm, from one configuration table (Simonyan & Zisserman
2015, "Very Deep Convolutional Networks for Large-Scale Image Recognition"; torchvision's layout).

Small inputs (< 64 pixels): a 2×2 max pool is left out wherever it would shrink the map below 1×1 (a
28×28 input keeps 4 of the 5 pools, 32×32 all 5: both end at 1×1), the average pool is 1×1 instead of
7×7 and the classifier's hidden layers have 512 units instead of 4096 (as the CIFAR VGGs).
"""
from __future__ import annotations

from collections import OrderedDict

from .. import nn
from .blocks import finish, is_small

# Output channels of each 3×3 conv (padding 1, then ReLU); "M" a 2×2 stride-2 max pool.  Table 1 of the paper.
CONFIGS = {
    11: [64, "M", 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M"],
    13: [64, 64, "M", 128, 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M"],
    16: [64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512, "M"],
    19: [64, 64, "M", 128, 128, "M", 256, 256, 256, 256, "M", 512, 512, 512, 512, "M", 512, 512, 512, 512, "M"],
    "small": [32, 32, "M", 64, 64, "M", 128, 128, "M"],
}


def vgg(depth, batch_norm: bool, num_classes: int, in_channels: int, input_size: int,
        hidden: int | None = None) -> nn.Sequential:
    """features (conv3×3 [+ BN] + ReLU, max pools) → avgpool → flatten → classifier:
    x (N, in_channels, H, W) → logits (N, num_classes).  ``depth`` is a key of CONFIGS."""
    small = is_small(input_size)
    layers, channels, side = [], in_channels, input_size
    for item in CONFIGS[depth]:
        if item == "M":
            if not small or side >= 2:
                layers.append(nn.MaxPool2d(2, 2))
                side //= 2
            continue
        layers.append(nn.Conv2d(channels, item, 3, padding=1))
        if batch_norm:
            layers.append(nn.BatchNorm2d(item))
        layers.append(nn.ReLU())
        channels = item
    pooled, default_hidden = (1, 512) if small else (7, 4096)
    hidden = hidden or default_hidden
    model = nn.Sequential(OrderedDict(
        features=nn.Sequential(*layers),
        avgpool=nn.AdaptiveAvgPool2d(pooled),
        flatten=nn.Flatten(),
        classifier=nn.Sequential(
            nn.Linear(channels * pooled * pooled, hidden), nn.ReLU(), nn.Dropout(0.5),
            nn.Linear(hidden, hidden), nn.ReLU(), nn.Dropout(0.5),
            nn.Linear(hidden, num_classes)),
    ))
    return finish(model, in_channels, input_size)


def vgg11(num_classes: int = 1000, in_channels: int = 3, input_size: int = 224) -> nn.Sequential:
    """VGG-11 (configuration A): 8 conv + 3 fc layers, 132.9 M parameters at 1000 classes."""
    return vgg(11, False, num_classes, in_channels, input_size)


def vgg13(num_classes: int = 1000, in_channels: int = 3, input_size: int = 224) -> nn.Sequential:
    """VGG-13 (configuration B): 10 conv + 3 fc layers, 133.0 M parameters at 1000 classes."""
    return vgg(13, False, num_classes, in_channels, input_size)


def vgg16(num_classes: int = 1000, in_channels: int = 3, input_size: int = 224) -> nn.Sequential:
    """VGG-16 (configuration D): 13 conv + 3 fc layers, 138.4 M parameters at 1000 classes."""
    return vgg(16, False, num_classes, in_channels, input_size)


def vgg19(num_classes: int = 1000, in_channels: int = 3, input_size: int = 224) -> nn.Sequential:
    """VGG-19 (configuration E): 16 conv + 3 fc layers, 143.7 M parameters at 1000 classes."""
    return vgg(19, False, num_classes, in_channels, input_size)


def vgg11_bn(num_classes: int = 1000, in_channels: int = 3, input_size: int = 224) -> nn.Sequential:
    """VGG-11 with batch norm after every conv (torchvision's vgg11_bn)."""
    return vgg(11, True, num_classes, in_channels, input_size)


def vgg13_bn(num_classes: int = 1000, in_channels: int = 3, input_size: int = 224) -> nn.Sequential:
    """VGG-13 with batch norm after every conv (torchvision's vgg13_bn)."""
    return vgg(13, True, num_classes, in_channels, input_size)


def vgg16_bn(num_classes: int = 1000, in_channels: int = 3, input_size: int = 224) -> nn.Sequential:
    """VGG-16 with batch norm after every conv (torchvision's vgg16_bn)."""
    return vgg(16, True, num_classes, in_channels, input_size)


def vgg19_bn(num_classes: int = 1000, in_channels: int = 3, input_size: int = 224) -> nn.Sequential:
    """VGG-19 with batch norm after every conv (torchvision's vgg19_bn)."""
    return vgg(19, True, num_classes, in_channels, input_size)


def vgg_small(num_classes: int = 10, in_channels: int = 1, input_size: int = 28) -> nn.Sequential:
    """Small VGG for 28×28 / 32×32: 3 stages of two 3×3 conv + BN + ReLU (32, 64, 128 channels) and a 2×2
    max pool, global average pool, 256-unit classifier; 0.39 M parameters at 10 classes."""
    return vgg("small", True, num_classes, in_channels, input_size, hidden=256)
