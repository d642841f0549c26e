"""AlexNet (Krizhevsky et al. 2012, torchvision's single-GPU form without local response norm) and
ZFNet (Zeiler & Fergus 2014, "Visualizing and Understanding Convolutional Networks"), from layer tables.

Small inputs (< 64 pixels): the first conv becomes 3×3 stride 1 (padding 1) and ZFNet's strided 5×5
conv2 becomes stride 1 (padding 2); the rest is unchanged (28×28 ends at 2×2, 32×32 at 3×3 before
the adaptive 6×6 average pool).
"""
from __future__ import annotations

from collections import OrderedDict

from .. import nn
from .blocks import finish, is_small

# ("conv", out_channels, kernel, stride, padding) + ReLU, or ("pool", kernel, stride, padding) max pool.
ALEXNET = [("conv", 64, 11, 4, 2), ("pool", 3, 2, 0), ("conv", 192, 5, 1, 2), ("pool", 3, 2, 0),
           ("conv", 384, 3, 1, 1), ("conv", 256, 3, 1, 1), ("conv", 256, 3, 1, 1), ("pool", 3, 2, 0)]
# Figure 3 of the paper: 224 → conv1 7×7/2 → 110 → pool → 55 → conv2 5×5/2 → 26 → pool → 13 → … → 6.
ZFNET = [("conv", 96, 7, 2, 1), ("pool", 3, 2, 1), ("conv", 256, 5, 2, 0), ("pool", 3, 2, 1),
         ("conv", 384, 3, 1, 1), ("conv", 384, 3, 1, 1), ("conv", 256, 3, 1, 1), ("pool", 3, 2, 0)]
# Small-input replacements, by position in the table.
SMALL = {"alexnet": {0: ("conv", 64, 3, 1, 1)},
         "zfnet": {0: ("conv", 96, 3, 1, 1), 2: ("conv", 256, 5, 1, 2)}}


def conv_features(table, in_channels: int) -> tuple[nn.Sequential, int]:
    """The ``features`` Sequential of a layer table; returns it and its output channels."""
    layers, channels = [], in_channels
    for kind, *args in table:
        if kind == "conv":
            out, kernel, stride, padding = args
            layers += [nn.Conv2d(channels, out, kernel, stride, padding), nn.ReLU()]
            channels = out
        else:
            layers.append(nn.MaxPool2d(*args))
    return nn.Sequential(*layers), channels


def layer_table(name: str, input_size: int):
    """ALEXNET or ZFNET, with the small-input replacements when ``input_size`` < 64."""
    table = list(ALEXNET if name == "alexnet" else ZFNET)
    if is_small(input_size):
        for index, layer in SMALL[name].items():
            table[index] = layer
    return table


def classifier(in_features: int, num_classes: int, hidden: int = 4096) -> nn.Sequential:
    """Dropout → fc → ReLU → Dropout → fc → ReLU → fc, torchvision's AlexNet head."""
    return nn.Sequential(nn.Dropout(0.5), nn.Linear(in_features, hidden), nn.ReLU(),
                         nn.Dropout(0.5), nn.Linear(hidden, hidden), nn.ReLU(),
                         nn.Linear(hidden, num_classes))


def _convnet(name: str, num_classes: int, in_channels: int, input_size: int) -> nn.Sequential:
    features, channels = conv_features(layer_table(name, input_size), in_channels)
    model = nn.Sequential(OrderedDict(
        features=features, avgpool=nn.AdaptiveAvgPool2d(6), flatten=nn.Flatten(),
        classifier=classifier(channels * 6 * 6, num_classes)))
    return finish(model, in_channels, input_size)


def alexnet(num_classes: int = 1000, in_channels: int = 3, input_size: int = 224) -> nn.Sequential:
    """AlexNet (torchvision): 5 conv + 3 fc layers, 61.1 M parameters at 1000 classes."""
    return _convnet("alexnet", num_classes, in_channels, input_size)


def zfnet(num_classes: int = 1000, in_channels: int = 3, input_size: int = 224) -> nn.Sequential:
    """ZFNet: AlexNet with a 7×7/2 first conv and a 5×5/2 second (no LRN), 62.4 M parameters."""
    return _convnet("zfnet", num_classes, in_channels, input_size)
