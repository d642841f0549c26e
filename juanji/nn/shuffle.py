"""PixelShuffle and PixelUnshuffle (``torch.nn``): channels to space and back, for sub-pixel upsampling."""
from __future__ import annotations

import numpy as np

from ..functional import shuffle as F
from .module import Module


def _factor(layer: str, name: str, value) -> int:
    if not isinstance(value, (int, np.integer)) or isinstance(value, bool) or value <= 0:
        raise ValueError(f"{layer}: {name} must be a positive int, got {value!r}")
    return int(value)


class PixelShuffle(Module):
    """x (*, C·r², H, W) → y (*, C, H·r, W·r), r = ``upscale_factor``:
    y[…, c, h·r + i, w·r + j] = x[…, c·r² + i·r + j, h, w];  dX = pixel_unshuffle(dY).  Any leading axes
    (none: an unbatched (C·r², H, W)), as torch."""

    def __init__(self, upscale_factor: int):
        super().__init__()
        self.upscale_factor = _factor("PixelShuffle", "upscale_factor", upscale_factor)

    def forward(self, x):
        r = self.upscale_factor
        _check(self, x, f"(*, C·{r * r}, H, W)")
        if x.shape[-3] % (r * r):
            raise ValueError(f"{self!r}: the channels ({x.shape[-3]}, axis −3 of shape {x.shape}) must be divisible "
                             f"by upscale_factor² = {r * r}")
        self.save_for_backward()        # nothing to keep, but backward still needs a forward before it
        return F.pixel_shuffle(x, r)

    def backward(self, dy):
        self.saved_for_backward()
        return F.pixel_shuffle_backward(dy, self.upscale_factor)

    def extra_repr(self):
        return f"upscale_factor={self.upscale_factor}"


class PixelUnshuffle(Module):
    """x (*, C, H·r, W·r) → y (*, C·r², H, W), r = ``downscale_factor``: the inverse of PixelShuffle;
    dX = pixel_shuffle(dY)."""

    def __init__(self, downscale_factor: int):
        super().__init__()
        self.downscale_factor = _factor("PixelUnshuffle", "downscale_factor", downscale_factor)

    def forward(self, x):
        r = self.downscale_factor
        _check(self, x, f"(*, C, H·{r}, W·{r})")
        if x.shape[-2] % r or x.shape[-1] % r:
            raise ValueError(f"{self!r}: height and width (the last axes of shape {x.shape}) must be divisible "
                             f"by downscale_factor = {r}")
        self.save_for_backward()
        return F.pixel_unshuffle(x, r)

    def backward(self, dy):
        self.saved_for_backward()
        return F.pixel_unshuffle_backward(dy, self.downscale_factor)

    def extra_repr(self):
        return f"downscale_factor={self.downscale_factor}"


def _check(layer, x, shape_desc):
    if not isinstance(x, np.ndarray):
        raise TypeError(f"{layer!r}: expected a NumPy array of shape {shape_desc}, got {type(x).__name__}")
    if x.ndim < 3:
        raise ValueError(f"{layer!r}: expected input of shape {shape_desc} (at least 3-D), got {x.ndim}-D "
                         f"input of shape {x.shape}")
