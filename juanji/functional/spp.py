"""Adaptive max pooling and spatial pyramid pooling (He et al. 2014, "Spatial Pyramid Pooling in Deep
Convolutional Networks for Visual Recognition"), with their backward.

Adaptive bins are PyTorch's: along an axis of size H split into h bins, bin i covers rows
[⌊i·H/h⌋, ⌈(i+1)·H/h⌉) — never empty; neighbouring bins overlap when h does not divide H (and
when h > H, where pixels repeat).
Loops run over the bins of one axis at a time (a handful), never over pixels or samples.
"""
from __future__ import annotations

import numpy as np

from .geometry import adaptive_bins, pair


def _max_over_bins(x, bins, axis):
    """(max, arg-max) of x over each bin along ``axis`` (the first on ties), the bins stacked along that axis."""
    best, where = [], []
    for start, end in bins:
        block = x[(slice(None),) * axis + (slice(start, end),)]
        arg = block.argmax(axis=axis)
        where.append(arg + start)
        best.append(np.take_along_axis(block, np.expand_dims(arg, axis), axis=axis))
    return np.concatenate(best, axis=axis), np.stack(where, axis=axis)


def adaptive_max_pool2d(x, output_size):
    """y[n, c, i, j] = max of x[n, c] over bin (i, j).  x (N, C, H, W) → y (N, C, h, w).

    Separable: the maxima over each column bin of every row, then over each row bin of those; the first row
    holding the maximum, and in it the first column, is the first maximum in row-major order, as PyTorch picks.
    Returns (y, cache); the cache keeps the input's shape and PyTorch's indices (``adaptive_max_pool2d_indices``).
    """
    oh, ow = pair(output_size, "output_size")
    n, c, h, w = x.shape
    if min(oh, ow, h, w) <= 0:
        raise ValueError(f"adaptive_max_pool2d: cannot pool a {h}×{w} input into {oh}×{ow} bins")
    columns, column_of = _max_over_bins(x, adaptive_bins(w, ow), axis=3)          # (N, C, H, w) each
    y, row_of = _max_over_bins(columns, adaptive_bins(h, oh), axis=2)              # (N, C, h, w) each
    indices = row_of * w + np.take_along_axis(column_of, row_of, axis=2)
    return y, (x.shape, indices)


def adaptive_max_pool2d_indices(cache) -> np.ndarray:
    """PyTorch's ``return_indices``: the flat index row · W + column of each maximum in its plane, int64."""
    return cache[1]


def adaptive_max_pool2d_backward(dy, cache):
    """dX: each dY[n, c, i, j] goes to the arg-max pixel of its bin; overlapping bins add up (one np.add.at)."""
    x_shape, indices = cache
    n, c, h, w = x_shape
    dx = np.zeros(x_shape, dtype=dy.dtype)
    planes = (np.arange(n * c) * (h * w)).reshape(n, c, 1, 1)
    np.add.at(dx.reshape(-1), (indices + planes).reshape(-1), dy.reshape(-1))
    return dx


def adaptive_max_pool2d_reference(x, output_size):
    """Slow adaptive max pooling, a loop over the output cells; returns (y, indices); for tests only."""
    oh, ow = pair(output_size, "output_size")
    n, c, h, w = x.shape
    y = np.empty((n, c, oh, ow), dtype=x.dtype)
    indices = np.empty((n, c, oh, ow), dtype=np.int64)
    for i, (h0, h1) in enumerate(adaptive_bins(h, oh)):
        for j, (w0, w1) in enumerate(adaptive_bins(w, ow)):
            region = x[:, :, h0:h1, w0:w1].reshape(n, c, -1)
            first = region.argmax(axis=2)
            y[:, :, i, j] = np.take_along_axis(region, first[:, :, None], axis=2)[:, :, 0]
            indices[:, :, i, j] = (h0 + first // (w1 - w0)) * w + w0 + first % (w1 - w0)
    return y, indices


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
