"""Building blocks shared by the zoo, and the one rule for small inputs.

Every builder takes ``input_size`` (the H = W of its images).  Below ``SMALL_INPUT`` pixels (MNIST's 28,
CIFAR's 32) a model swaps its ImageNet stem — a large strided first conv, often a max pool — for the
CIFAR-style stem (a 3×3 stride-1 conv) so that feature maps are not shrunk to nothing; each model's
docstring says exactly what changes.  From ``SMALL_INPUT`` up the architecture is torchvision's.
"""
from __future__ import annotations

from collections import OrderedDict

import numpy as np

from .. import nn

SMALL_INPUT = 64


def is_small(input_size: int) -> bool:
    """True for inputs under 64×64: use the CIFAR-style stem."""
    if not isinstance(input_size, (int, np.integer)) or input_size <= 0:
        raise ValueError(f"input_size must be a positive int (the image height = width), got {input_size!r}")
    return input_size < SMALL_INPUT


def finish(model: nn.Module, in_channels: int, input_size: int) -> nn.Module:
    """Record the (C, H, W) the model expects, as every zoo builder does."""
    model.input_shape = (in_channels, input_size, input_size)
    return model


class ConvBNReLU(nn.Sequential):
    """conv (no bias) → BatchNorm → ReLU with children ``conv``, ``bn``, ``relu``: torchvision's
    ``BasicConv2d`` of GoogLeNet (there with ε = 0.001) and, with groups = C, MobileNet's depthwise unit.
    x (N, C, H, W) → y (N, K, H', W')."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size, stride=1, padding=0,
                 groups: int = 1, eps: float = 1e-5):
        super().__init__(OrderedDict(
            conv=nn.Conv2d(in_channels, out_channels, kernel_size, stride, padding, groups=groups,
                           bias=False),
            bn=nn.BatchNorm2d(out_channels, eps=eps),
            relu=nn.ReLU()))
