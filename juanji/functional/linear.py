"""Fully connected kernels: y = x Wᵀ + b and its backward, split over the batch (``over_batch``).

x (N, in), weight (out, in), bias (out,) → y (N, out).
"""
from __future__ import annotations

import numpy as np

from ..runtime.threads import over_batch


def linear(x, weight, bias=None):
    """y = x Wᵀ + b, each chunk of samples its own GEMM."""
    y = np.empty((x.shape[0], weight.shape[0]), dtype=np.result_type(x, weight))

    def forward(start, stop):
        np.matmul(x[start:stop], weight.T, out=y[start:stop])
        if bias is not None:
            y[start:stop] += bias

    over_batch(x.shape[0], forward, elements=x.size + y.size + weight.size)
    return y


def linear_backward(dy, x, weight, need_dx: bool = True):
    """dW = dYᵀ X (summed from one partial product per chunk),  db = Σ_n dY,  dX = dY W.
    Returns (dx or None, dW, db)."""
    n = x.shape[0]
    dx = np.empty(x.shape, dtype=dy.dtype) if need_dx else None

    def backward(start, stop):
        if need_dx:
            np.matmul(dy[start:stop], weight, out=dx[start:stop])
        # np.dot, not matmul: matmul multiplies the dYᵀ of one sample, an (out, 1) view with a stride of ``out``
        # values, without BLAS (LeNet-5's 400 → 120 at batch 1: 73 µs against dot's 11); larger chunks: the same
        return np.dot(dy[start:stop].T, x[start:stop])

    dw = sum(over_batch(n, backward, elements=x.size + dy.size + weight.size))
    return dx, dw, dy.sum(axis=0)
