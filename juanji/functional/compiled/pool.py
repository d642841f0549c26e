"""Max pooling's loops: the forward over windows and the backward's scatter of dY to each window's arg-max,
one (sample, channel) plane at a time, compiled ``serial`` and run one slice of the batch per thread of juanji's
batch split (no pool of Numba's to start).  NumPy's forward copies each window offset's plane of a padded copy
and compares plane by plane, some twenty array calls whose fixed cost is most of the time on small maps
(LeNet-5's at batch 1: ``plan.MAX_POOL_COMPILED_MAX_ELEMENTS``); its backward can only scatter by one masked pass
per window offset (each reading all of dY and dX again).  Both write and read the arg-max as u·S + v, so a
forward on either kernel set and a backward on the other agree.  The references are ``pool.max_pool2d_reference``
and ``pool.max_pool2d_backward_reference``.

Window offset (u, v) of output (i, j) reads x[n, c, i·Sh + u·Dh − Pt, j·Sw + v·Dw − Pl].
"""
from __future__ import annotations

import numpy as np

from ...runtime.threads import over_batch
from . import inside, serial


@serial
def max_pool_forward(x, y, argmax, kernel, stride, pads, dilation):
    """y[n, c, i, j] = max over the window offsets (u, v) of x at the position above, positions in the padding
    skipped (they read −∞, which never beats the −∞ y starts from); argmax[n, c, i, j] = u·S + v of the first
    strict maximum in row-major offset order (ties: the first, as PyTorch).  A NaN makes y NaN and leaves argmax
    where it stood, exactly as NumPy's kernel.  A row of outputs at a time, the window offsets outside."""
    n, c, h, w = x.shape
    ho, wo = y.shape[2], y.shape[3]
    planes, best, where = x.reshape(n * c, h, w), y.reshape(n * c, ho, wo), argmax.reshape(n * c, ho, wo)
    for p in range(n * c):
        for i in range(ho):
            for j in range(wo):
                best[p, i, j] = -np.inf
                where[p, i, j] = 0
            for u in range(kernel[0]):
                row = i * stride[0] + u * dilation[0] - pads[0]
                if 0 <= row < h:
                    for v in range(kernel[1]):
                        offset = v * dilation[1] - pads[1]
                        first, stop = inside(offset, stride[1], w, wo)
                        k = u * kernel[1] + v
                        for j in range(first, stop):
                            value, current = planes[p, row, j * stride[1] + offset], best[p, i, j]
                            # arithmetic, as NumPy's kernel: a select by branch mispredicts on every other value
                            # (2.5 times the time on random maps)
                            best[p, i, j] = np.maximum(value, current)
                            where[p, i, j] += (value > current) * (k - where[p, i, j])


@serial
def max_pool_backward(dy, argmax, dx, kernel, stride, pads, dilation):
    """dx[n, c, i·Sh + u·Dh − Pt, j·Sw + v·Dw − Pl] += dY[n, c, i, j] for the arg-max (u, v) of each window
    (overlapping windows add up; a window entirely in the padding routes nowhere)."""
    n, c, h, w = dx.shape
    ho, wo = dy.shape[2], dy.shape[3]
    for sample in range(n):
        for channel in range(c):
            plane = dx[sample, channel]
            plane[:, :] = 0
            for i in range(ho):
                for j in range(wo):
                    u, v = divmod(int(argmax[sample, channel, i, j]), kernel[1])     # not in uint8 arithmetic
                    row = i * stride[0] + u * dilation[0] - pads[0]
                    col = j * stride[1] + v * dilation[1] - pads[1]
                    if 0 <= row < h and 0 <= col < w:
                        plane[row, col] += dy[sample, channel, i, j]


def max_pool2d(x, y, argmax, kernel_size, stride, dilation, pads) -> None:
    """Write y (N, C, H', W') and its argmax (the same shape, an integer dtype) of x (N, C, H, W); ``pads``
    ((top, bottom), (left, right))."""
    x = np.ascontiguousarray(x)
    geometry = tuple(kernel_size), tuple(stride), (pads[0][0], pads[1][0]), tuple(dilation)
    over_batch(len(x), lambda start, stop: max_pool_forward(x[start:stop], y[start:stop], argmax[start:stop],
                                                            *geometry),
               elements=y.size * kernel_size[0] * kernel_size[1])


def max_pool2d_backward(dy, argmax, x_shape, kernel_size, stride, dilation, pads) -> np.ndarray:
    """dX of shape ``x_shape``."""
    dy = np.ascontiguousarray(dy)
    dx = np.empty(x_shape, dtype=dy.dtype)
    geometry = tuple(kernel_size), tuple(stride), (pads[0][0], pads[1][0]), tuple(dilation)
    over_batch(len(dy), lambda start, stop: max_pool_backward(dy[start:stop], argmax[start:stop], dx[start:stop],
                                                              *geometry),
               elements=dx.size * 2)       # as NumPy's kernel: the same batch split
    return dx

