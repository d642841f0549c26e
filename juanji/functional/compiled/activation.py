"""ReLU's forward and backward as single passes over contiguous memory, one slice of the batch per thread
(``map_batch``: juanji's batch split, the loops compiled ``serial``).

NumPy's backward makes the mask x > 0 as an array of its own before the product; the loop reads dY and x
once and writes dX once.  Numba's own thread pool starts on every call, even on one thread, which costs
more than a small ReLU saves; run on juanji's batch split instead, the loops win on small and large
batches alike.
"""
from __future__ import annotations

import numpy as np

from ...runtime.threads import map_batch
from . import serial


@serial
def relu_loop(x, y):
    """y = max(x, 0); NaN stays NaN, as PyTorch (written as a select on "not below 0", which Numba runs on
    SIMD vectors; np.maximum on each element is slower)."""
    for i in range(x.shape[0]):
        value = x[i]
        y[i] = value if not value < 0 else 0


@serial
def relu_backward_loop(dy, x, dx):
    """dX = dY · [x > 0]"""
    for i in range(x.shape[0]):
        dx[i] = dy[i] if x[i] > 0 else 0


def relu(x):
    return map_batch(lambda x, out: relu_loop(x.reshape(-1), out.reshape(-1)), np.ascontiguousarray(x))


def relu_backward(dy, x):
    dtype = np.result_type(dy, x)
    return map_batch(lambda dy, x, out: relu_backward_loop(dy.reshape(-1), x.reshape(-1), out.reshape(-1)),
                     np.ascontiguousarray(dy, dtype), np.ascontiguousarray(x))
