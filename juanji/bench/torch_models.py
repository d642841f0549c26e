"""The PyTorch networks the benchmark and ``bench/parity.py`` compare with: the same layers, parameter
count and ``state_dict`` names as juanji's ``lenet5``, ``resnet20``, ``resnet18`` and ``mobilenet_v2``, so
that juanji's weights load unchanged (``juanji.interop.torch.to_torch``) and give the same logits."""
from __future__ import annotations

from collections import OrderedDict

from torch import nn

from ..models.blocks import is_small


def lenet5(num_classes: int = 10, in_channels: int = 1, input_size: int = 28) -> nn.Sequential:
    """juanji's ``lenet5``: conv 6@5×5 pad 2, ReLU, max-pool, conv 16@5×5, ReLU, max-pool, FC 120-84-classes."""
    side = (input_size // 2 - 4) // 2
    return nn.Sequential(nn.Conv2d(in_channels, 6, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2),
                         nn.Conv2d(6, 16, 5), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(),
                         nn.Linear(16 * side * side, 120), nn.ReLU(), nn.Linear(120, 84), nn.ReLU(),
                         nn.Linear(84, num_classes))


class PadShortcut(nn.Module):
    """He et al.'s option A shortcut: subsample by ``stride``, append ``extra_channels`` zero channels
    (after the kept ones, as juanji's ``PadShortcut``)."""

    def __init__(self, stride: int, extra_channels: int):
        super().__init__()
        self.stride, self.extra_channels = stride, extra_channels

    def forward(self, x):
        kept = x[:, :, ::self.stride, ::self.stride]
        return nn.functional.pad(kept, (0, 0, 0, 0, 0, self.extra_channels))


def shortcut(kind: str, in_channels: int, out_channels: int, stride: int) -> nn.Module:
    """juanji's ``_shortcut``: identity where shapes match; else option A (``PadShortcut``) or B (1×1 conv +
    BN, torchvision's)."""
    if stride == 1 and in_channels == out_channels:
        return nn.Identity()
    if kind == "A":
        return PadShortcut(stride, out_channels - in_channels)
    return nn.Sequential(nn.Conv2d(in_channels, out_channels, 1, stride, bias=False), nn.BatchNorm2d(out_channels))


class BasicBlock(nn.Module):
    """y = ReLU(bn2(conv2(ReLU(bn1(conv1(x))))) + downsample(x)), juanji's names."""

    def __init__(self, in_channels: int, channels: int, stride: int, downsample: nn.Module):
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, channels, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(channels)
        self.relu1 = nn.ReLU()
        self.conv2 = nn.Conv2d(channels, channels, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(channels)
        self.downsample = downsample
        self.relu = nn.ReLU()

    def forward(self, x):
        out = self.bn2(self.conv2(self.relu1(self.bn1(self.conv1(x)))))
        return self.relu(out + self.downsample(x))


def resnet(depths, widths, num_classes: int, in_channels: int, input_size: int, kind: str) -> nn.Sequential:
    """juanji's ``resnet`` builder with basic blocks: the CIFAR stem (3×3 stride 1) below ``SMALL_INPUT``
    pixels, torchvision's (7×7 stride 2, 3×3 max pool) from there on; stages ``layer1…`` of ``depths[i]``
    blocks of width ``widths[i]`` (stride 2 from the second stage on), shortcuts of ``kind``; average pool, fc."""
    width = widths[0]
    if is_small(input_size):
        stem = [("conv1", nn.Conv2d(in_channels, width, 3, 1, 1, bias=False)), ("bn1", nn.BatchNorm2d(width)),
                ("relu", nn.ReLU())]
    else:
        stem = [("conv1", nn.Conv2d(in_channels, width, 7, 2, 3, bias=False)), ("bn1", nn.BatchNorm2d(width)),
                ("relu", nn.ReLU()), ("maxpool", nn.MaxPool2d(3, 2, 1))]
    layers, channels = [], width
    for stage, (depth, width) in enumerate(zip(depths, widths)):
        blocks = []
        for index in range(depth):
            stride = 2 if stage > 0 and index == 0 else 1
            blocks.append(BasicBlock(channels, width, stride, shortcut(kind, channels, width, stride)))
            channels = width
        layers.append((f"layer{stage + 1}", nn.Sequential(*blocks)))
    return nn.Sequential(OrderedDict(
        stem + layers + [("avgpool", nn.AdaptiveAvgPool2d(1)), ("flatten", nn.Flatten()),
                         ("fc", nn.Linear(channels, num_classes))]))


def resnet20(num_classes: int = 10, in_channels: int = 3, input_size: int = 32) -> nn.Sequential:
    """juanji's ``resnet20`` (He et al. 2016 §4.2): 3 stages × 3 basic blocks of 16/32/64 channels with
    option A shortcuts."""
    return resnet((3, 3, 3), (16, 32, 64), num_classes, in_channels, input_size, "A")


def resnet18(num_classes: int = 1000, in_channels: int = 3, input_size: int = 224) -> nn.Sequential:
    """juanji's ``resnet18`` (torchvision's at 224 pixels): 4 stages × 2 basic blocks of 64/128/256/512
    channels with option B shortcuts."""
    return resnet((2, 2, 2, 2), (64, 128, 256, 512), num_classes, in_channels, input_size, "B")


def conv_bn_relu6(in_channels: int, out_channels: int, kernel: int, stride: int = 1, groups: int = 1):
    """torchvision's Conv2dNormActivation with ReLU6, children "0", "1", "2" as juanji's."""
    return nn.Sequential(nn.Conv2d(in_channels, out_channels, kernel, stride, (kernel - 1) // 2, groups=groups,
                                   bias=False), nn.BatchNorm2d(out_channels), nn.ReLU6())


class InvertedResidual(nn.Module):
    """[1×1 expand, ReLU6,] 3×3 depthwise, ReLU6, linear 1×1 projection + BN in ``conv``; + x where shapes allow."""

    def __init__(self, in_channels: int, out_channels: int, stride: int, expand_ratio: int):
        super().__init__()
        hidden = round(in_channels * expand_ratio)
        layers = [conv_bn_relu6(in_channels, hidden, 1)] if expand_ratio != 1 else []
        layers += [conv_bn_relu6(hidden, hidden, 3, stride, hidden), nn.Conv2d(hidden, out_channels, 1, bias=False),
                   nn.BatchNorm2d(out_channels)]
        self.conv = nn.Sequential(*layers)
        self.use_res_connect = stride == 1 and in_channels == out_channels

    def forward(self, x):
        return x + self.conv(x) if self.use_res_connect else self.conv(x)


def mobilenet_v2(num_classes: int = 10, in_channels: int = 3, input_size: int = 32,
                 dropout: float = 0.2) -> nn.Sequential:
    """juanji's ``mobilenet_v2`` (width 1.0; the small-input stem of stride 1 only: ``input_size`` < 64)."""
    if input_size >= 64:
        raise ValueError(f"the benchmark's torch mobilenet_v2 has the small-input stem only, got {input_size}")
    from ..models.mobilenet_v2 import SETTING
    layers, channels = [conv_bn_relu6(in_channels, 32, 3, 1)], 32
    for t, c, n, s in SETTING:
        for index in range(n):
            layers.append(InvertedResidual(channels, c, s if index == 0 else 1, t))
            channels = c
    layers.append(conv_bn_relu6(channels, 1280, 1))
    return nn.Sequential(OrderedDict(
        features=nn.Sequential(*layers), avgpool=nn.AdaptiveAvgPool2d(1), flatten=nn.Flatten(),
        classifier=nn.Sequential(nn.Dropout(dropout), nn.Linear(1280, num_classes))))
