"""Depthwise convolution (groups = C, one input channel per filter), forward and backward, as loops over
kernel offsets: the per-group GEMMs of the NumPy kernel have one row each, far below what BLAS needs.

x (N, C, H, W), weight (K, 1, R, S) with K = m·C (filter k reads channel k // m), y (N, K, H', W').  Offset
(u, v) of output (i, j) reads x[n, c, i·Sh + u·Dh − Pt, j·Sw + v·Dw − Pl], zero outside the input; for
each offset the loops visit only the outputs whose read falls inside (``inside``).  Rows are handed to the
row helpers as contiguous slices at stride 1 (Numba then runs them on SIMD vectors, ~4× faster than a
strided slice) and as strided slices otherwise: the two calls differ only in the slice.
"""
from __future__ import annotations

import numpy as np

from ...runtime.kernels import compiled_call
from . import add_scaled, dot, inside, jit, prange


@jit
def depthwise_forward(x, weight, bias, y, stride, pads, dilation):
    """y[n, k, i, j] = b[k] + Σ_{u, v} W[k, 0, u, v] · x[n, k // m, i·Sh + u·Dh − Pt, j·Sw + v·Dw − Pl]"""
    n, c, h, w = x.shape
    k, _, r, s = weight.shape
    ho, wo = y.shape[2], y.shape[3]
    for nk in prange(n * k):
        sample, filt = nk // k, nk % k
        out, image = y[sample, filt], x[sample, filt // (k // c)]
        out[:, :] = bias[filt]
        for u in range(r):
            first_i, stop_i = inside(u * dilation[0] - pads[0], stride[0], h, ho)
            for v in range(s):
                first_j, stop_j = inside(v * dilation[1] - pads[1], stride[1], w, wo)
                col = first_j * stride[1] + v * dilation[1] - pads[1]
                for i in range(first_i, stop_i):
                    row = i * stride[0] + u * dilation[0] - pads[0]
                    if stride[1] == 1:
                        add_scaled(out[i, first_j:stop_j], weight[filt, 0, u, v], image[row, col:])
                    else:
                        add_scaled(out[i, first_j:stop_j], weight[filt, 0, u, v], image[row, col::stride[1]])


@jit
def depthwise_weight_grad(dy, x, dw, stride, pads, dilation):
    """dW[k, 0, u, v] = Σ_{n, i, j} dY[n, k, i, j] · x[n, k // m, i·Sh + u·Dh − Pt, j·Sw + v·Dw − Pl]
    (sample by sample, all offsets at once: the two planes stay in cache while the R·S sums run)."""
    n, c, h, w = x.shape
    k, _, r, s = dw.shape
    ho, wo = dy.shape[2], dy.shape[3]
    for filt in prange(k):
        channel = filt // (k // c)
        totals = np.zeros((r, s))
        for sample in range(n):
            for u in range(r):
                first_i, stop_i = inside(u * dilation[0] - pads[0], stride[0], h, ho)
                for v in range(s):
                    first_j, stop_j = inside(v * dilation[1] - pads[1], stride[1], w, wo)
                    col = first_j * stride[1] + v * dilation[1] - pads[1]
                    for i in range(first_i, stop_i):
                        row = i * stride[0] + u * dilation[0] - pads[0]
                        if stride[1] == 1:
                            totals[u, v] += dot(dy[sample, filt, i, first_j:stop_j], x[sample, channel, row, col:])
                        else:
                            totals[u, v] += dot(dy[sample, filt, i, first_j:stop_j],
                                                x[sample, channel, row, col::stride[1]])
        dw[filt, 0] = totals


@jit
def depthwise_input_grad(dy, weight, dx, stride, pads, dilation):
    """dx[n, c, i·Sh + u·Dh − Pt, j·Sw + v·Dw − Pl] += W[k, 0, u, v] · dY[n, k, i, j] for the m filters k of
    channel c: each (sample, channel) plane gathers from its own filters only, so planes run in parallel."""
    n, c, h, w = dx.shape
    k, _, r, s = weight.shape
    ho, wo = dy.shape[2], dy.shape[3]
    m = k // c
    for nc in prange(n * c):
        sample, channel = nc // c, nc % c
        plane = dx[sample, channel]
        plane[:, :] = 0
        for filt in range(channel * m, (channel + 1) * m):
            for u in range(r):
                first_i, stop_i = inside(u * dilation[0] - pads[0], stride[0], h, ho)
                for v in range(s):
                    first_j, stop_j = inside(v * dilation[1] - pads[1], stride[1], w, wo)
                    if first_j == stop_j:       # every read of this offset falls on padding; and stop_col
                        continue                # below would be negative, a slice from the row's end
                    col = first_j * stride[1] + v * dilation[1] - pads[1]
                    stop_col = col + (stop_j - first_j - 1) * stride[1] + 1
                    for i in range(first_i, stop_i):
                        row = i * stride[0] + u * dilation[0] - pads[0]
                        if stride[1] == 1:
                            add_scaled(plane[row, col:stop_col], weight[filt, 0, u, v], dy[sample, filt, i, first_j:])
                        else:
                            add_scaled(plane[row, col:stop_col:stride[1]], weight[filt, 0, u, v],
                                       dy[sample, filt, i, first_j:])


def conv2d(x, weight, bias, stride, pads, dilation, out_size):
    """y (N, K, H', W') of the depthwise convolution; ``pads`` ((top, bottom), (left, right))."""
    dtype = np.result_type(x, weight)
    y = np.empty((x.shape[0], weight.shape[0], *out_size), dtype=dtype)
    bias = np.zeros(weight.shape[0], dtype) if bias is None else bias.astype(dtype, copy=False)
    with compiled_call():
        depthwise_forward(np.ascontiguousarray(x, dtype), np.ascontiguousarray(weight, dtype), bias, y,
                          tuple(stride), (pads[0][0], pads[1][0]), tuple(dilation))
    return y


def backward(dy, x, weight, stride, pads, dilation, need_dx=True):
    """(dx or None, dW) of the depthwise convolution."""
    dy = np.ascontiguousarray(dy)
    x = np.ascontiguousarray(x, dy.dtype)
    offsets, stride, dilation = (pads[0][0], pads[1][0]), tuple(stride), tuple(dilation)
    dw = np.empty(weight.shape, dy.dtype)
    dx = np.empty(x.shape, dy.dtype) if need_dx else None
    with compiled_call():
        depthwise_weight_grad(dy, x, dw, stride, offsets, dilation)
        if need_dx:
            depthwise_input_grad(dy, np.ascontiguousarray(weight, dy.dtype), dx, stride, offsets, dilation)
    return dx, dw
