"""Max over time: global max pooling of sequences, x (N, C, L) → y (N, C), and its backward.

Kim (2014)'s text CNN keeps, per filter, only its strongest response anywhere in the sentence.
"""
from __future__ import annotations

import numpy as np


def global_max_pool1d(x: np.ndarray):
    """y[n, c] = max_l x[n, c, l].  Returns (y, cache); the cache keeps the arg-max (the first, on ties)."""
    argmax = x.argmax(axis=2)[:, :, None]
    return np.take_along_axis(x, argmax, axis=2)[:, :, 0], (x.shape, argmax)


def global_max_pool1d_backward(dy: np.ndarray, cache) -> np.ndarray:
    """dX[n, c, l] = dY[n, c] at l = arg-max, 0 elsewhere."""
    shape, argmax = cache
    dx = np.zeros(shape, dtype=dy.dtype)
    np.put_along_axis(dx, argmax, dy[:, :, None], axis=2)
    return dx
