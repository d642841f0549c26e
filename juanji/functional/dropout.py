"""Inverted dropout's kernels: the scale m / (1 − p), drawn per element or per channel, and its products."""
import numpy as np


def dropout_scale(shape, p, dtype, rng):
    """m / (1 − p) with m ~ Bernoulli(1 − p) for each element of ``shape`` (a channel dropout passes the shape
    (N, C, 1, …, 1): one draw per channel, broadcast over its map); all zeros for p = 1.  ``rng``: a NumPy
    Generator."""
    dtype = np.dtype(dtype)
    if p == 1:
        return np.zeros(shape, dtype)
    keep = rng.random(shape, dtype=dtype) >= p
    return keep * dtype.type(1 / (1 - p))


def dropout(x, scale, out=None):
    """y = x · m / (1 − p)  (the scale broadcast over x; ``out=x`` in place)"""
    return np.multiply(x, scale, out=np.empty_like(x) if out is None else out)


def dropout_backward(dy, scale):
    """dX = dY · m / (1 − p)"""
    return dy * scale
