"""ResNets: torchvision's ResNet-18/34/50 (He et al. 2016, "Deep Residual Learning for Image
Recognition", in the v1.5 form: a Bottleneck downsamples in its 3×3 conv) and the CIFAR ResNet-20/56
of the paper's §4.2, all from one builder.

Small inputs (< 64 pixels): the stem is a 3×3 stride-1 conv and no max pool (the CIFAR stem).
Otherwise the stem is torchvision's 7×7 stride-2 conv + 3×3 stride-2 max pool — for resnet20/56 too.
"""
from __future__ import annotations

from collections import OrderedDict

import numpy as np

from .. import nn
from ..nn.fused import fold
from .blocks import finish, is_small


class ResidualBlock(nn.Module):
    """y = ReLU(body(x) + downsample(x)) with torchvision's flat names: the body's layers (conv1, bn1,
    …) are children of the block itself, beside ``downsample`` (the shortcut; identity by default).
    dX = body.backward(dZ) + downsample.backward(dZ), dZ = ReLU.backward(dY)."""

    def __init__(self, body: OrderedDict[str, nn.Module], downsample: nn.Module | None = None):
        super().__init__()
        for name, layer in body.items():
            setattr(self, name, layer)
        self._body = list(body)
        self.downsample = nn.Identity() if downsample is None else downsample
        self.relu = nn.ReLU()

    def forward(self, x):
        y = x
        for name in self._body:
            y = getattr(self, name)(y)
        return self.relu(y + self.downsample(x))

    def backward(self, dy):
        dz = self.relu.backward(dy)
        dx = dz
        for name in reversed(self._body):
            dx = getattr(self, name).backward(dx)
        return dx + self.downsample.backward(dz)

    def fused(self) -> nn.Module:
        """``nn.fuse``'s rule for this block: the body's batch norm + ReLU pairs fused, and its last batch
        norm, the sum and the ReLU as one layer (``nn.BatchNormAddReLU``), under the same names; the conv
        before it folds it in inference (``nn.fused.fold``), as the body's convs fold theirs."""
        *names, end = self._body
        body = nn.fuse(nn.Sequential(OrderedDict((name, getattr(self, name)) for name in names)))
        downsample = nn.fuse(self.downsample)
        last = getattr(self, end)
        if type(last) is not nn.BatchNorm2d:
            for name, layer in body.named_children():
                setattr(self, name, layer)
            self.downsample = downsample
            return self
        end_layer = nn.BatchNormAddReLU(last)
        if names:
            setattr(body, names[-1], fold(getattr(body, names[-1]), end_layer))
        return FusedResidualBlock(body, end, end_layer, downsample)


class FusedResidualBlock(nn.Module):
    """A ``ResidualBlock`` after ``nn.fuse``: y = end(body(x), downsample(x)), ``end`` a
    ``BatchNormAddReLU`` named as the batch norm it replaces, the other children's names unchanged.
    dX = body.backward(dX_end) + downsample.backward(dS), (dX_end, dS) = end.backward(dY)."""

    def __init__(self, body: nn.Sequential, end: str, last: nn.BatchNormAddReLU, downsample: nn.Module):
        super().__init__()
        for name, layer in body.named_children():
            setattr(self, name, layer)
        setattr(self, end, last)
        self._body, self._end = list(body._modules), end
        self.downsample = downsample

    def forward(self, x):
        y = x
        for name in self._body:
            y = getattr(self, name)(y)
        return getattr(self, self._end)(y, self.downsample(x))

    def backward(self, dy):
        dx, ds = getattr(self, self._end).backward(dy)
        for name in reversed(self._body):
            dx = getattr(self, name).backward(dx)
        return dx + self.downsample.backward(ds)


class BasicBlock(ResidualBlock):
    """Two 3×3 convs (the first with ``stride``): x (N, C, H, W) → (N, K, H/s, W/s), K = channels."""
    expansion = 1

    def __init__(self, in_channels: int, channels: int, stride: int = 1, downsample=None):
        super().__init__(OrderedDict(
            conv1=nn.Conv2d(in_channels, channels, 3, stride, 1, bias=False), bn1=nn.BatchNorm2d(channels),
            relu1=nn.ReLU(),
            conv2=nn.Conv2d(channels, channels, 3, 1, 1, bias=False), bn2=nn.BatchNorm2d(channels)),
            downsample)


class Bottleneck(ResidualBlock):
    """1×1 reduce → 3×3 (with ``stride``, v1.5) → 1×1 expand ×4:
    x (N, C, H, W) → (N, 4·channels, H/s, W/s)."""
    expansion = 4

    def __init__(self, in_channels: int, channels: int, stride: int = 1, downsample=None):
        out = channels * self.expansion
        super().__init__(OrderedDict(
            conv1=nn.Conv2d(in_channels, channels, 1, bias=False), bn1=nn.BatchNorm2d(channels),
            relu1=nn.ReLU(),
            conv2=nn.Conv2d(channels, channels, 3, stride, 1, bias=False), bn2=nn.BatchNorm2d(channels),
            relu2=nn.ReLU(),
            conv3=nn.Conv2d(channels, out, 1, bias=False), bn3=nn.BatchNorm2d(out)),
            downsample)


class PadShortcut(nn.Module):
    """He et al.'s option A shortcut, parameter-free: subsample by ``stride`` and append zero channels.
    x (N, C, H, W) → y (N, C + extra, ⌈H/s⌉, ⌈W/s⌉);  dX[:, :, ::s, ::s] = dY[:, :C], 0 elsewhere."""

    def __init__(self, stride: int, extra_channels: int):
        super().__init__()
        self.stride, self.extra_channels = stride, extra_channels
        self._shape = None

    def forward(self, x):
        self._shape = x.shape
        kept = x[:, :, ::self.stride, ::self.stride]
        zeros = np.zeros((x.shape[0], self.extra_channels) + kept.shape[2:], dtype=x.dtype)
        return np.concatenate([kept, zeros], axis=1)

    def backward(self, dy):
        if self._shape is None:
            raise RuntimeError(f"{self!r}: backward called before forward")
        dx = np.zeros(self._shape, dtype=dy.dtype)
        dx[:, :, ::self.stride, ::self.stride] = dy[:, :self._shape[1]]
        return dx

    def extra_repr(self):
        return f"stride={self.stride}, extra_channels={self.extra_channels}"


def _shortcut(kind: str, in_channels: int, out_channels: int, stride: int):
    """None (identity) when shapes match; else option B (1×1 conv + BN, torchvision) or A (zero pad)."""
    if stride == 1 and in_channels == out_channels:
        return None
    if kind == "A":
        return PadShortcut(stride, out_channels - in_channels)
    return nn.Sequential(nn.Conv2d(in_channels, out_channels, 1, stride, bias=False),
                         nn.BatchNorm2d(out_channels))


def resnet(block, depths, widths, num_classes: int, in_channels: int, input_size: int,
           shortcut: str = "B") -> nn.Sequential:
    """The one ResNet builder: stem → stages ``layer1…`` of ``depths[i]`` blocks of width ``widths[i]``
    (stride 1 in the first stage, 2 after) → global average pool → fc.
    x (N, in_channels, H, W) → logits (N, num_classes)."""
    stem_width = widths[0]
    if is_small(input_size):
        stem = [("conv1", nn.Conv2d(in_channels, stem_width, 3, 1, 1, bias=False)),
                ("bn1", nn.BatchNorm2d(stem_width)), ("relu", nn.ReLU())]
    else:
        stem = [("conv1", nn.Conv2d(in_channels, stem_width, 7, 2, 3, bias=False)),
                ("bn1", nn.BatchNorm2d(stem_width)), ("relu", nn.ReLU()),
                ("maxpool", nn.MaxPool2d(3, 2, 1))]
    layers, channels = [], stem_width
    for stage, (depth, width) in enumerate(zip(depths, widths)):
        blocks = []
        for index in range(depth):
            stride = 2 if stage > 0 and index == 0 else 1
            out = width * block.expansion
            blocks.append(block(channels, width, stride, _shortcut(shortcut, channels, out, stride)))
            channels = out
        layers.append((f"layer{stage + 1}", nn.Sequential(*blocks)))
    head = [("avgpool", nn.AdaptiveAvgPool2d(1)), ("flatten", nn.Flatten()),
            ("fc", nn.Linear(channels, num_classes))]
    return finish(nn.Sequential(OrderedDict(stem + layers + head)), in_channels, input_size)


_IMAGENET_WIDTHS, _CIFAR_WIDTHS = (64, 128, 256, 512), (16, 32, 64)


def resnet18(num_classes: int = 1000, in_channels: int = 3, input_size: int = 224) -> nn.Sequential:
    """ResNet-18 (torchvision): BasicBlocks [2, 2, 2, 2], 11.7 M parameters at 1000 classes."""
    return resnet(BasicBlock, (2, 2, 2, 2), _IMAGENET_WIDTHS, num_classes, in_channels, input_size)


def resnet34(num_classes: int = 1000, in_channels: int = 3, input_size: int = 224) -> nn.Sequential:
    """ResNet-34 (torchvision): BasicBlocks [3, 4, 6, 3], 21.8 M parameters at 1000 classes."""
    return resnet(BasicBlock, (3, 4, 6, 3), _IMAGENET_WIDTHS, num_classes, in_channels, input_size)


def resnet50(num_classes: int = 1000, in_channels: int = 3, input_size: int = 224) -> nn.Sequential:
    """ResNet-50 v1.5 (torchvision): Bottlenecks [3, 4, 6, 3], 25.6 M parameters at 1000 classes."""
    return resnet(Bottleneck, (3, 4, 6, 3), _IMAGENET_WIDTHS, num_classes, in_channels, input_size)


def resnet20(num_classes: int = 10, in_channels: int = 3, input_size: int = 32) -> nn.Sequential:
    """CIFAR ResNet-20 (He et al. 2016 §4.2): BasicBlocks [3, 3, 3], 16/32/64 channels, 0.27 M parameters.

    Shortcuts are option A (parameter-free: subsample + zero channels) where the shape changes."""
    return resnet(BasicBlock, (3, 3, 3), _CIFAR_WIDTHS, num_classes, in_channels, input_size, shortcut="A")


def resnet56(num_classes: int = 10, in_channels: int = 3, input_size: int = 32) -> nn.Sequential:
    """CIFAR ResNet-56 (He et al. 2016 §4.2): BasicBlocks [9, 9, 9], 16/32/64 channels, 0.85 M parameters.

    Shortcuts are option A (parameter-free: subsample + zero channels) where the shape changes."""
    return resnet(BasicBlock, (9, 9, 9), _CIFAR_WIDTHS, num_classes, in_channels, input_size, shortcut="A")
