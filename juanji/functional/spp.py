"""Adaptive max pooling and spatial pyramid pooling (He et al. 2014, "Spatial Pyramid Pooling in Deep
Convolutional Networks for Visual Recognition"), with their backward.

Adaptive bins are PyTorch's: along an axis of size H split into h bins, bin i covers rows
[⌊i·H/h⌋, ⌈(i+1)·H/h⌉) — never empty; neighbouring bins overlap when h does not divide H (and
when h > H, where pixels repeat).
Loops run over the output bins (a handful), never over pixels or samples.
"""
from __future__ import annotations

import numpy as np

from .geometry import adaptive_bins, pair


def adaptive_max_pool2d(x, output_size):
    """y[n, c, i, j] = max of x[n, c] over bin (i, j).  x (N, C, H, W) → y (N, C, h, w).

    Returns (y, cache); the cache keeps, per bin, the flat index of the arg-max inside the bin (the
    first in row-major order on ties, as PyTorch).
    """
    oh, ow = pair(output_size, "output_size")
    n, c, h, w = x.shape
    if min(oh, ow, h, w) <= 0:
        raise ValueError(f"adaptive_max_pool2d: cannot pool a {h}×{w} input into {oh}×{ow} bins")
    rows, cols = adaptive_bins(h, oh), adaptive_bins(w, ow)
    y = np.empty((n, c, oh, ow), dtype=x.dtype)
    argmax = np.empty((n, c, oh, ow), dtype=np.int64)
    for i, (h0, h1) in enumerate(rows):
        for j, (w0, w1) in enumerate(cols):
            region = x[:, :, h0:h1, w0:w1].reshape(n, c, (h1 - h0) * (w1 - w0))
            argmax[:, :, i, j] = region.argmax(axis=2)
            y[:, :, i, j] = np.take_along_axis(region, argmax[:, :, i, j, None], axis=2)[:, :, 0]
    return y, (x.shape, rows, cols, argmax)


def adaptive_max_pool2d_backward(dy, cache):
    """dX: each dY[n, c, i, j] goes to the arg-max pixel of its bin; overlapping bins add up."""
    x_shape, rows, cols, argmax = cache
    n, c = x_shape[:2]
    dx = np.zeros(x_shape, dtype=dy.dtype)
    for i, (h0, h1) in enumerate(rows):
        for j, (w0, w1) in enumerate(cols):
            routed = np.zeros((n, c, (h1 - h0) * (w1 - w0)), dtype=dy.dtype)
            np.put_along_axis(routed, argmax[:, :, i, j, None], dy[:, :, i, j, None], axis=2)
            dx[:, :, h0:h1, w0:w1] += routed.reshape(n, c, h1 - h0, w1 - w0)
    return dx


def spatial_pyramid_pool2d(x, levels=(1, 2, 4)):
    """Max-pool x into l×l bins for every level l and concatenate the flattened results:
    x (N, C, H, W) → y (N, C·Σ l²), laid out level by level, each level as (C, l, l) flattened.
    The output size does not depend on H, W: a fully connected layer can follow any input size.
    Returns (y, cache)."""
    outputs, caches = [], []
    for level in levels:
        pooled, cache = adaptive_max_pool2d(x, level)
        outputs.append(pooled.reshape(x.shape[0], int(np.prod(pooled.shape[1:]))))    # not -1: N may be 0
        caches.append(cache)
    return np.concatenate(outputs, axis=1), (x.shape, tuple(levels), caches)


def spatial_pyramid_pool2d_backward(dy, cache):
    """dX = Σ over levels of that level's adaptive max-pool backward on its slice of dY."""
    x_shape, levels, caches = cache
    n, c = x_shape[:2]
    dx = np.zeros(x_shape, dtype=dy.dtype)
    start = 0
    for level, level_cache in zip(levels, caches):
        size = c * level * level
        dx += adaptive_max_pool2d_backward(dy[:, start:start + size].reshape(n, c, level, level),
                                           level_cache)
        start += size
    return dx
