"""Max pooling's backward, one (sample, channel) plane per parallel iteration: a scatter of dY to each
window's arg-max, which NumPy can only do as one masked pass per window offset (each pass reads all of
dY and dX again).  The forward stays NumPy's (a window-plane copy and vectorised compares over contiguous
planes beat a compiled loop over windows), whose cache holds the arg-max as u·S + v.

Window offset (u, v) of output (i, j) reads x[n, c, i·Sh + u·Dh − Pt, j·Sw + v·Dw − Pl].
"""
from __future__ import annotations

import numpy as np

from ...runtime.kernels import compiled_call
from . import jit, prange


@jit
def max_pool_backward(dy, argmax, dx, kernel, stride, pads, dilation):
    """dx[n, c, i·Sh + u·Dh − Pt, j·Sw + v·Dw − Pl] += dY[n, c, i, j] for the arg-max (u, v) of each window
    (overlapping windows add up; a window entirely in the padding routes nowhere)."""
    n, c, h, w = dx.shape
    ho, wo = dy.shape[2], dy.shape[3]
    for nc in prange(n * c):
        sample, channel = nc // c, nc % c
        plane = dx[sample, channel]
        plane[:, :] = 0
        for i in range(ho):
            for j in range(wo):
                u, v = divmod(int(argmax[sample, channel, i, j]), kernel[1])     # not in uint8 arithmetic
                row = i * stride[0] + u * dilation[0] - pads[0]
                col = j * stride[1] + v * dilation[1] - pads[1]
                if 0 <= row < h and 0 <= col < w:
                    plane[row, col] += dy[sample, channel, i, j]


def max_pool2d_backward(dy, argmax, x_shape, kernel_size, stride, dilation, pads) -> np.ndarray:
    """dX of shape ``x_shape``."""
    dx = np.empty(x_shape, dtype=dy.dtype)
    with compiled_call():
        max_pool_backward(np.ascontiguousarray(dy), argmax, dx, tuple(kernel_size), tuple(stride),
                          (pads[0][0], pads[1][0]), tuple(dilation))
    return dx
