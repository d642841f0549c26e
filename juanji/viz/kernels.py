"""What a convolution layer has learnt: its kernels as a grid of small pictures (the weights themselves)."""
from __future__ import annotations

import numpy as np

from .grid import tile

SCALES = ("shared", "kernel")


def conv_layers(model) -> list[tuple[str, object]]:
    """(dotted name, layer) of every layer with a 4-D ``weight`` (K, C, kh, kw): the 2-D convolutions."""
    return [(name, layer) for name, layer in model.named_modules()
            if "weight" in layer.params and layer.params["weight"].ndim == 4]


def kernel_grid(weight, scale: str = "shared", rgb: bool = False) -> np.ndarray:
    """A conv weight (K, C, kh, kw) as one picture in [0, 1], borders NaN (see ``grid.tile``).

    Each weight w is shown as v = 1/2 + w / (2m): 0 is mid-gray, −m black, +m white, where m = max |w| over
    the whole layer (``scale="shared"``: kernels compare with each other) or over each kernel's
    C·kh·kw weights (``scale="kernel"``: every kernel uses the full range).

    Layout (``grid.tile``, 1-pixel borders): one row per kernel and one column per input channel, (kh, kw)
    cells: shape (K(kh + 1) − 1, C(kw + 1) − 1).  Kernels of one input channel (C = 1) are laid out in a
    near-square grid instead, and so are colour cells (kh, kw, 3) with ``rgb`` (C = 3, the first layer of a
    network on colour images: a kernel's three channel weights shown as one RGB picture).
    """
    weight = np.asarray(weight, dtype=np.float64)
    if weight.ndim != 4:
        raise ValueError(f"kernel_grid: expected a conv weight (K, C, kh, kw), got shape {weight.shape}")
    if scale not in SCALES:
        raise ValueError(f"kernel_grid: scale must be one of {SCALES}, got '{scale}'")
    if rgb and weight.shape[1] != 3:
        raise ValueError(f"kernel_grid: an RGB composite needs 3 input channels, got {weight.shape[1]}")
    axes = (0, 1, 2, 3) if scale == "shared" else (1, 2, 3)
    m = np.abs(weight).max(axis=axes, keepdims=True)
    values = 0.5 + weight / (2 * np.where(m > 0, m, 1))
    if rgb:
        return tile(values.transpose(0, 2, 3, 1))                       # (K, kh, kw, 3) colour cells
    kernels, channels, kh, kw = weight.shape
    if channels == 1:
        return tile(values[:, 0])
    return tile(values.reshape(kernels * channels, kh, kw), columns=channels)
