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
def depthwise_forward_3x3(x, weight, bias, y, pads):
    """The same sum for the usual depthwise layer, 3×3 at stride 1 and dilation 1, an output row at a time:
    the nine products of each output are one expression over three rows of the input plane, padded once
    into a buffer (so that no read falls outside), which Numba runs on SIMD vectors along the row instead of
    nine passes over the output (the depthwise rows of ``python -m juanji.bench``).  ``pads``: the top and
    left padding (0 to 2: the bottom and right ones follow from y's size)."""
    n, c, h, w = x.shape
    k = weight.shape[0]
    ho, wo = y.shape[2], y.shape[3]
    for nk in prange(n * k):
        sample, filt = nk // k, nk % k
        padded = np.zeros((ho + 2, wo + 2), y.dtype)
        padded[pads[0]:pads[0] + h, pads[1]:pads[1] + w] = x[sample, filt // (k // c)]
        g = weight[filt, 0]
        out, b = y[sample, filt], bias[filt]
        for i in range(ho):
            top, middle, bottom = padded[i], padded[i + 1], padded[i + 2]
            for j in range(wo):
                out[i, j] = (b + g[0, 0] * top[j] + g[0, 1] * top[j + 1] + g[0, 2] * top[j + 2]
                             + g[1, 0] * middle[j] + g[1, 1] * middle[j + 1] + g[1, 2] * middle[j + 2]
                             + g[2, 0] * bottom[j] + g[2, 1] * bottom[j + 1] + g[2, 2] * bottom[j + 2])


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
    x, weight = np.ascontiguousarray(x, dtype), np.ascontiguousarray(weight, dtype)
    offsets = (pads[0][0], pads[1][0])
    with compiled_call():
        if unit_3x3(weight.shape, stride, dilation, pads):
            depthwise_forward_3x3(x, weight, bias, y, offsets)
        else:
            depthwise_forward(x, weight, bias, y, tuple(stride), offsets, tuple(dilation))
    return y


@jit(fastmath={"reassoc"})
def depthwise_weight_grad_3x3(dy, x, dw, pads):
    """``depthwise_weight_grad`` for 3×3 at stride 1 and dilation 1: the nine sums of a filter run side by
    side along each row of dY, over the input plane padded once (float64 sums, in SIMD lanes)."""
    n, c, h, w = x.shape
    k = dw.shape[0]
    ho, wo = dy.shape[2], dy.shape[3]
    for filt in prange(k):
        padded = np.zeros((ho + 2, wo + 2), x.dtype)
        t00 = t01 = t02 = t10 = t11 = t12 = t20 = t21 = t22 = 0.0
        for sample in range(n):
            padded[pads[0]:pads[0] + h, pads[1]:pads[1] + w] = x[sample, filt // (k // c)]
            for i in range(ho):
                top, middle, bottom, d = padded[i], padded[i + 1], padded[i + 2], dy[sample, filt, i]
                for j in range(wo):
                    g = np.float64(d[j])
                    t00 += g * top[j]
                    t01 += g * top[j + 1]
                    t02 += g * top[j + 2]
                    t10 += g * middle[j]
                    t11 += g * middle[j + 1]
                    t12 += g * middle[j + 2]
                    t20 += g * bottom[j]
                    t21 += g * bottom[j + 1]
                    t22 += g * bottom[j + 2]
        dw[filt, 0, 0, 0], dw[filt, 0, 0, 1], dw[filt, 0, 0, 2] = t00, t01, t02
        dw[filt, 0, 1, 0], dw[filt, 0, 1, 1], dw[filt, 0, 1, 2] = t10, t11, t12
        dw[filt, 0, 2, 0], dw[filt, 0, 2, 1], dw[filt, 0, 2, 2] = t20, t21, t22


def unit_3x3(weight_shape, stride, dilation, pads) -> bool:
    """3×3 at stride 1, undilated, each side padded by 0 to 2: the row-at-a-time loops' layers."""
    return (tuple(weight_shape[2:]) == (3, 3) and tuple(stride) == (1, 1) and tuple(dilation) == (1, 1)
            and all(0 <= side <= 2 for pair in pads for side in pair))


def backward(dy, x, weight, stride, pads, dilation, need_dx=True):
    """(dx or None, dW) of the depthwise convolution."""
    dy = np.ascontiguousarray(dy)
    x = np.ascontiguousarray(x, dy.dtype)
    offsets, stride, dilation = (pads[0][0], pads[1][0]), tuple(stride), tuple(dilation)
    dw = np.empty(weight.shape, dy.dtype)
    dx = np.empty(x.shape, dy.dtype) if need_dx else None
    weight = np.ascontiguousarray(weight, dy.dtype)
    unit = unit_3x3(weight.shape, stride, dilation, pads)
    with compiled_call():
        if unit:
            depthwise_weight_grad_3x3(dy, x, dw, offsets)
        else:
            depthwise_weight_grad(dy, x, dw, stride, offsets, dilation)
        if need_dx and unit and weight.shape[0] == x.shape[1]:
            # one filter per channel: dX is the same 3×3 loop over dY with the rotated filter, padded by 2 − P
            depthwise_forward_3x3(dy, np.ascontiguousarray(weight[:, :, ::-1, ::-1]), np.zeros(x.shape[1], dy.dtype),
                                  dx, (2 - pads[0][0], 2 - pads[1][0]))
        elif need_dx:
            depthwise_input_grad(dy, weight, dx, stride, offsets, dilation)
    return dx, dw
