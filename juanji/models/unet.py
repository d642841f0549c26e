"""A small U-Net (Ronneberger et al. 2015, "U-Net: Convolutional Networks for Biomedical Image Segmentation")
for pixel-wise classification of small images: two levels down, a bottleneck, two levels up.

    enc1 ─────────────────────────────── concat ── dec1 ── head (1×1)      28×28, b channels
      └ pool ── enc2 ──────── concat ── dec2 ── up ┘                       14×14, 2b
                  └ pool ── bottleneck ── up ┘                              7×7,  4b

Each enc/dec/bottleneck is (3×3 conv → BN → ReLU) ×2 with padding 1 (the paper's convolutions are unpadded
and crop the skip; padded ones keep every map the size of its level, so the skip concatenates as it is);
``up`` is a 2×2 stride-2 ConvTranspose2d that halves the channels and doubles the size.  A skip connection
is an ``nn.Concat`` of an ``Identity`` and the path below it: [x, up(below(pool(x)))] along channels, whose
backward splits dY between the two and sums their dX.
x (N, in_channels, H, W) → logits (N, num_classes, H, W), H = W = input_size divisible by 4.
"""
from __future__ import annotations

from collections import OrderedDict

import numpy as np

from .. import nn
from .blocks import finish

LEVELS = 2      # poolings; input_size must be divisible by 2 ** LEVELS


def double_conv(in_channels: int, channels: int) -> nn.Sequential:
    """(3×3 conv, padding 1, no bias → BN → ReLU) ×2: x (N, C, H, W) → (N, channels, H, W)."""
    return nn.Sequential(OrderedDict(
        conv1=nn.Conv2d(in_channels, channels, 3, padding=1, bias=False), bn1=nn.BatchNorm2d(channels),
        relu1=nn.ReLU(),
        conv2=nn.Conv2d(channels, channels, 3, padding=1, bias=False), bn2=nn.BatchNorm2d(channels),
        relu2=nn.ReLU()))


def skip(below: nn.Module) -> nn.Concat:
    """U-Net's skip connection around ``below``: y = [x, below(x)] along channels;
    dX = dY[:, :C] + below.backward(dY[:, C:])."""
    return nn.Concat(OrderedDict(skip=nn.Identity(), down=below))


def unet(num_classes: int = 11, in_channels: int = 1, input_size: int = 28,
         base_channels: int = 16) -> nn.Sequential:
    """U-Net (Ronneberger et al. 2015), small: 2 levels, 16/32/64 channels, per-pixel logits (segmentation)."""
    for key, value in (("num_classes", num_classes), ("in_channels", in_channels), ("input_size", input_size),
                       ("base_channels", base_channels)):
        if not isinstance(value, (int, np.integer)) or isinstance(value, bool) or value <= 0:
            raise ValueError(f"unet: {key} must be a positive int, got {value!r}")
    if input_size % 2 ** LEVELS:
        raise ValueError(f"unet: input_size must be divisible by {2 ** LEVELS} (it is halved {LEVELS} times "
                         f"and doubled back), got {input_size}")
    widths = [base_channels * 2 ** level for level in range(LEVELS + 1)]       # b, 2b, 4b
    below = nn.Sequential(OrderedDict(                                          # the innermost level
        pool=nn.MaxPool2d(2), bottleneck=double_conv(widths[-2], widths[-1]),
        up=nn.ConvTranspose2d(widths[-1], widths[-2], 2, stride=2)))
    for level in range(LEVELS - 1, 0, -1):                                      # outwards: level + 1 = 2 …
        width, outer = widths[level], widths[level - 1]
        below = nn.Sequential(OrderedDict([
            ("pool", nn.MaxPool2d(2)), (f"enc{level + 1}", double_conv(outer, width)),
            (f"level{level + 1}", skip(below)), (f"dec{level + 1}", double_conv(2 * width, width)),
            ("up", nn.ConvTranspose2d(width, outer, 2, stride=2))]))
    model = nn.Sequential(OrderedDict(
        enc1=double_conv(in_channels, widths[0]), level1=skip(below), dec1=double_conv(2 * widths[0], widths[0]),
        head=nn.Conv2d(widths[0], num_classes, 1)))
    return finish(model, in_channels, input_size)
