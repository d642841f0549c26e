"""Pixel shuffle (sub-pixel convolution's rearrangement) and its inverse, as ``torch.nn.functional.pixel_shuffle``
/ ``pixel_unshuffle``.  Both only move entries: each one's backward is the other.

pixel_shuffle, factor r:   x (*, C·r², H, W) → y (*, C, H·r, W·r),
                           y[…, c, h·r + i, w·r + j] = x[…, c·r² + i·r + j, h, w]
pixel_unshuffle, factor r: x (*, C, H·r, W·r) → y (*, C·r², H, W), the inverse.
"""
from __future__ import annotations

import numpy as np


def pixel_shuffle(x: np.ndarray, r: int) -> np.ndarray:
    """Channels to space: (*, C·r², H, W) viewed as (*, C, r, r, H, W), axes to (*, C, H, r, W, r), one copy."""
    *lead, c, h, w = x.shape
    k = len(lead)
    blocks = x.reshape(*lead, c // (r * r), r, r, h, w)
    return blocks.transpose(*range(k), k, k + 3, k + 1, k + 4, k + 2).reshape(*lead, c // (r * r), h * r, w * r)


def pixel_unshuffle(x: np.ndarray, r: int) -> np.ndarray:
    """Space to channels: (*, C, H·r, W·r) viewed as (*, C, H, r, W, r), axes to (*, C, r, r, H, W), one copy."""
    *lead, c, h, w = x.shape
    k = len(lead)
    blocks = x.reshape(*lead, c, h // r, r, w // r, r)
    return blocks.transpose(*range(k), k, k + 2, k + 4, k + 1, k + 3).reshape(*lead, c * r * r, h // r, w // r)


def pixel_shuffle_backward(dy: np.ndarray, r: int) -> np.ndarray:
    """dX = pixel_unshuffle(dY): a permutation's adjoint is its inverse."""
    return pixel_unshuffle(dy, r)


def pixel_unshuffle_backward(dy: np.ndarray, r: int) -> np.ndarray:
    """dX = pixel_shuffle(dY)."""
    return pixel_shuffle(dy, r)


def pixel_shuffle_reference(x, r):
    """Slow and obvious: the module docstring's formula, one (i, j) offset of the r×r block at a time; for tests
    only."""
    *lead, c, h, w = x.shape
    y = np.empty((*lead, c // (r * r), h * r, w * r), dtype=x.dtype)
    for i in range(r):
        for j in range(r):
            y[..., i::r, j::r] = x[..., i * r + j::r * r, :, :]
    return y
