"""What the benchmark times: the layer rows, the two models and their inputs."""
from __future__ import annotations

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
TRAIN_BATCHES = {"lenet5": (64, 256), "resnet20": (128,), "mobilenet_v2": (64,)}
INFERENCE_BATCH = 256
NUM_CLASSES = 10


def model_args(name: str) -> dict:
    """The keyword arguments of juanji's zoo constructor (and of ``torch_models``) for ``name``."""
    channels, size = MODEL_INPUTS[name]
    return dict(num_classes=NUM_CLASSES, in_channels=channels, input_size=size)


def conv_flops(n, c, k, h, kernel, stride, padding, groups) -> int:
    """Multiply-adds × 2 of one forward pass of a CONV_ROWS configuration."""
    out = (h + 2 * padding - kernel) // stride + 1
    return 2 * n * k * (c // groups) * kernel * kernel * out * out
