"""What the benchmark times: the layer rows, the models and their inputs, the hand-off rows and the
series of ``--scaling``."""
from __future__ import annotations

from typing import NamedTuple

from ..models.blocks import SMALL_INPUT

# name: (N, C_in, C_out, H=W, kernel, stride, padding, groups)
CONV_ROWS = {
    "conv 3→64 @32 3×3 s1 p1": (64, 3, 64, 32, 3, 1, 1, 1),
    "conv 64→64 @32 3×3 s1 p1": (64, 64, 64, 32, 3, 1, 1, 1),
    "conv 64→128 @16 3×3 s2 p1": (64, 64, 128, 16, 3, 2, 1, 1),
    "conv 64→128 @16 1×1": (64, 64, 128, 16, 1, 1, 0, 1),
    "depthwise 64 @32 3×3 g64": (64, 64, 64, 32, 3, 1, 1, 64),
    "conv 1→6 @28 5×5 p2": (64, 1, 6, 28, 5, 1, 2, 1),
}
POOL_ROWS = {"maxpool 2×2": (2, 2), "maxpool 3×3 s2": (3, 2)}
POOL_SHAPE = (64, 64, 32, 32)
# name: (N, C_in, C_out, H=W, kernel, stride, padding): a decoder's upsampling layer (DCGAN's 4×4 s2 p1, ×2)
CONV_TRANSPOSE_ROWS = {"convT 64→32 @16 4×4 s2 p1": (64, 64, 32, 16, 4, 2, 1)}
GROUPS = 8      # GroupNorm's groups on POOL_SHAPE's 64 channels; LayerNorm normalises them channels-last

# model name: (channels, size) of its input; both frameworks build the same network for it
MODEL_INPUTS = {"lenet5": (1, 28), "resnet20": (3, 32), "mobilenet_v2": (3, 32)}
# batch 1: a single image, as the page of ``juanji serve`` predicts live
TRAIN_BATCHES = {"lenet5": (1, 64, 256), "resnet20": (128,), "mobilenet_v2": (64,)}
INFERENCE_BATCHES = {"lenet5": (1, 256), "resnet20": (256,), "mobilenet_v2": (256,)}
NUM_CLASSES = 10

# The hand-off table's rows (at 2 threads and more): trivial work in 2 parts, split over the threads, and in
# 1 part, which runs inline; {row: parts}.  One call takes microseconds: each repeat times HANDOFF_CALLS.
HANDOFF_ROWS = {"split in 2": 2, "not split": 1}
HANDOFF_CALLS = 100


class Series(NamedTuple):
    """One series of ``--scaling``: ``step`` ("inference" or "train step") of ``model`` on inputs of
    ``channels``, timed at each of ``points`` (``quick``: fewer) of ``axis``: "batch" (at input ``size``)
    or "input size" (at batch ``batch``).  The slope is fitted on the points from ``fit_from`` on."""
    model: str
    step: str
    axis: str
    points: tuple
    quick: tuple
    channels: int
    size: int = 0
    batch: int = 0
    fit_from: int = 1


# ResNet-18's stem is the CIFAR one below SMALL_INPUT pixels (juanji.models.resnet), torchvision's from
# there on: the point at 32 is another network, left out of the fit
SCALING = {
    "lenet5-inference": Series("lenet5", "inference", "batch", (1, 8, 64, 256), (1, 64), 1, size=28),
    "lenet5-train": Series("lenet5", "train step", "batch", (1, 8, 64, 256), (1, 64), 1, size=28),
    "resnet18-train": Series("resnet18", "train step", "input size", (32, 64, 128, 224), (64, 96), 3, batch=8,
                             fit_from=SMALL_INPUT),
}


def input_args(channels: int, size: int) -> dict:
    """The keyword arguments of juanji's zoo constructors (and of ``torch_models``) for inputs of
    ``channels`` × ``size`` × ``size``."""
    return dict(num_classes=NUM_CLASSES, in_channels=channels, input_size=size)


def model_args(name: str) -> dict:
    """The keyword arguments of juanji's zoo constructor (and of ``torch_models``) for ``name``."""
    return input_args(*MODEL_INPUTS[name])


def conv_flops(n, c, k, h, kernel, stride, padding, groups) -> int:
    """Multiply-adds × 2 of one forward pass of a CONV_ROWS configuration."""
    out = (h + 2 * padding - kernel) // stride + 1
    return 2 * n * k * (c // groups) * kernel * kernel * out * out
