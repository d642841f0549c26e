"""col2im, the adjoint of im2col, one (sample, channel) plane at a time: NumPy's col2im makes one strided
add over the whole batch per kernel offset (R·S passes through memory); the loop makes the R·S passes over
one plane while it stays in cache.  It runs without threads of its own (``serial``): ``conv2d_input_grad``
calls it from the batch split's threads, one slice of samples each.

cols (N, C·R·S, H'·W') in im2col's sample-major layout; row (c, u, v) of output (i, j) came from
xp[n, c, i·Sh + u·Dh, j·Sw + v·Dw].
"""
from __future__ import annotations

import numpy as np

from . import serial


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
