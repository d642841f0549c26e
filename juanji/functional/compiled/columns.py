"""im2col and col2im on compiled loops, one (sample, channel) plane at a time.

im2col gathers each column entry straight from x, or writes 0 where the window reads the padding: no padded copy
of x is made, and each plane's R·S rows of columns are filled while the plane is in cache (NumPy's im2col pads x
into a copy, then makes one strided copy whose innermost runs are only W' long).  col2im, its adjoint: NumPy's
makes one strided add over the whole batch per kernel offset (R·S passes through memory); the loop makes the
R·S passes over one plane while it stays in cache.  Both run without threads of their own (``serial``): the
convolution calls them from the batch split's threads, one slice of samples each.

cols (N, C·R·S, H'·W') in im2col's sample-major layout; row (c, u, v) of output (i, j) came from
xp[n, c, i·Sh + u·Dh, j·Sw + v·Dw] (xp: x padded by (top, bottom), (left, right)).
"""
from __future__ import annotations

import numpy as np

from . import serial


def reads(size, kernel_size, stride, dilation, pads, out_size) -> np.ndarray:
    """Where each window entry lies in an (H, W) plane of x: (R·S, H'·W') flat indices y·W + x, −1 where it
    lies on the padding.  Entry (u·S + v, i·W' + j): y = i·Sh + u·Dh − top, x = j·Sw + v·Dw − left."""
    (r, s), (ho, wo) = kernel_size, out_size
    rows = (np.arange(r) * dilation[0] - pads[0][0])[:, None] + stride[0] * np.arange(ho)       # (R, H')
    columns = (np.arange(s) * dilation[1] - pads[1][0])[:, None] + stride[1] * np.arange(wo)    # (S, W')
    inside = (((rows >= 0) & (rows < size[0]))[:, None, :, None]
              & ((columns >= 0) & (columns < size[1]))[None, :, None, :])
    flat = rows[:, None, :, None] * size[1] + columns[None, :, None, :]
    return np.where(inside, flat, -1).reshape(r * s, ho * wo)


@serial
def im2col_loop(x, cols, reads):
    """cols[n, c·R·S + k, q] = x[n, c] (flattened) at reads[k, q], 0 where reads[k, q] < 0 (the padding)."""
    offsets, pixels = reads.shape
    for sample in range(x.shape[0]):
        for channel in range(x.shape[1]):
            plane = x[sample, channel].reshape(-1)
            for k in range(offsets):
                row = cols[sample, channel * offsets + k]
                for q in range(pixels):
                    at = reads[k, q]
                    row[q] = plane[at] if at >= 0 else 0


def im2col(x: np.ndarray, reads: np.ndarray, out=None) -> np.ndarray:
    """``juanji.functional.conv.im2col``'s columns of x padded, read from x itself (no padded copy): x (N, C, H, W),
    ``reads`` (R·S, H'·W') of its (H, W) planes → (N, C·R·S, H'·W'), into ``out`` if given: an array or a view
    of that shape (channel-major columns (C·R·S, N·H'·W') through ``reshape(-1, N, H'·W').transpose(1, 0, 2)``)."""
    n, c = x.shape[:2]
    cols = np.empty((n, c * reads.shape[0], reads.shape[1]), x.dtype) if out is None else out
    im2col_loop(np.ascontiguousarray(x), cols, reads)
    return cols


@serial
def col2im_loop(cols, dxp, kernel, stride, dilation, out_size):
    """dxp[n, c, i·Sh + u·Dh, j·Sw + v·Dw] = Σ over the windows that read it of cols[n, (c, u, v), i·W' + j]."""
    channels = dxp.shape[1]
    r, s = kernel
    ho, wo = out_size
    for sample in range(dxp.shape[0]):
        for channel in range(channels):
            plane = dxp[sample, channel]
            plane[:, :] = 0
            for u in range(r):
                for v in range(s):
                    block = cols[sample, (channel * r + u) * s + v]
                    for i in range(ho):
                        row = plane[i * stride[0] + u * dilation[0]]
                        for j in range(wo):
                            row[j * stride[1] + v * dilation[1]] += block[i * wo + j]


def col2im(cols: np.ndarray, padded_shape, kernel_size, stride, dilation, out_size, out=None) -> np.ndarray:
    """``juanji.functional.conv.col2im`` of sample-major columns on the compiled loop."""
    dxp = np.empty(padded_shape, dtype=cols.dtype) if out is None else out
    col2im_loop(np.ascontiguousarray(cols), dxp, tuple(kernel_size), tuple(stride), tuple(dilation), tuple(out_size))
    return dxp
