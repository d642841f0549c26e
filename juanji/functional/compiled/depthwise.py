"""Depthwise convolution (groups = C, one input channel per filter), forward and backward, as loops over
kernel offsets: the per-group GEMMs of the NumPy kernel have one row each, far below what BLAS needs.

x (N, C, H, W), weight (K, 1, R, S) with K = m·C (filter k reads channel k // m), y (N, K, H', W').  Offset
(u, v) of output (i, j) reads x[n, c, i·Sh + u·Dh − Pt, j·Sw + v·Dw − Pl], zero outside the input; for
each offset the loops visit only the outputs whose read falls inside (``inside``).  Rows are handed to the
row helpers as contiguous slices at stride 1 (Numba then runs them on SIMD vectors, which it does not
on a strided slice) and as strided slices otherwise: the two calls differ only in the slice.
"""
from __future__ import annotations

import numpy as np

from ...runtime.kernels import compiled_call
from . import add_scaled, dot, inline, inside, jit, prange


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


@inline(inline="always")
def pad_into(padded, image, pads):
    """``image`` into the zero buffer ``padded`` at (top, left) = ``pads``; input rows and columns that no
    window reads (past the buffer) are left out.  It writes the same region every time, so the buffer's
    border stays zero from one plane to the next.  Inlined like its callers: a buffer handed to a compiled
    function of its own no longer looked free of aliases to them, and their row loops lost SIMD."""
    h, w = image.shape
    rows, cols = min(h, padded.shape[0] - pads[0]), min(w, padded.shape[1] - pads[1])
    if rows == h and cols == w:         # the whole plane: a contiguous copy
        padded[pads[0]:pads[0] + h, pads[1]:pads[1] + w] = image
    else:
        padded[pads[0]:pads[0] + rows, pads[1]:pads[1] + cols] = image[:rows, :cols]


@inline(inline="always")
def forward_plane(image, g, b, out, pads, step):
    """out[i, j] = b + Σ_{u, v} g[u, v] · image[i·step + u − Pt, j·step + v − Pl] for one 3×3 filter: the
    nine products of each output are one expression over three rows of the plane, padded once into a
    buffer (so that no read falls outside), which Numba runs on SIMD vectors along the row instead of nine
    passes over the output.  Inlined (``inline="always"``) into each caller with a constant ``step``, so
    that each copy of the row loop has a constant stride."""
    ho, wo = out.shape
    padded = np.zeros(((ho - 1) * step + 3, (wo - 1) * step + 3), out.dtype)
    pad_into(padded, image, pads)
    for i in range(ho):
        top, middle, bottom = padded[step * i], padded[step * i + 1], padded[step * i + 2]
        for j in range(wo):
            col = step * j
            out[i, j] = (b + g[0, 0] * top[col] + g[0, 1] * top[col + 1] + g[0, 2] * top[col + 2]
                         + g[1, 0] * middle[col] + g[1, 1] * middle[col + 1] + g[1, 2] * middle[col + 2]
                         + g[2, 0] * bottom[col] + g[2, 1] * bottom[col + 1] + g[2, 2] * bottom[col + 2])


@jit
def depthwise_forward_3x3(x, weight, bias, y, pads, step):
    """``depthwise_forward`` for the usual depthwise layers, 3×3 at stride 1 or 2 and dilation 1, plane by
    plane (``forward_plane``; the depthwise rows of ``python -m juanji.bench``).  ``pads``: the top and left
    padding (the bottom and right ones follow from y's size)."""
    k, c = weight.shape[0], x.shape[1]
    if step == 1:
        for nk in prange(x.shape[0] * k):
            forward_plane(x[nk // k, nk % k // (k // c)], weight[nk % k, 0], bias[nk % k], y[nk // k, nk % k], pads, 1)
    else:
        for nk in prange(x.shape[0] * k):
            forward_plane(x[nk // k, nk % k // (k // c)], weight[nk % k, 0], bias[nk % k], y[nk // k, nk % k], pads, 2)


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


def conv2d(x, weight, bias, stride, pads, dilation, out_size, rows: bool):
    """y (N, K, H', W') of the depthwise convolution; ``pads`` ((top, bottom), (left, right)); ``rows``: the
    row-at-a-time loops of 3×3 layers at stride 1 or 2 (``plan.depthwise_rows``), else the general ones."""
    dtype = np.result_type(x, weight)
    y = np.empty((x.shape[0], weight.shape[0], *out_size), dtype=dtype)
    bias = np.zeros(weight.shape[0], dtype) if bias is None else bias.astype(dtype, copy=False)
    x, weight = np.ascontiguousarray(x, dtype), np.ascontiguousarray(weight, dtype)
    offsets = (pads[0][0], pads[1][0])
    with compiled_call():
        if rows:
            depthwise_forward_3x3(x, weight, bias, y, offsets, stride[0])
        else:
            depthwise_forward(x, weight, bias, y, tuple(stride), offsets, tuple(dilation))
    return y


@inline(inline="always")
def weight_sums_plane(image, d, pads, step, padded, sums):
    """sums[u, v] += Σ_{i, j} d[i, j] · image[i·step + u − Pt, j·step + v − Pl] for one plane: the nine sums
    run side by side along each row of dY (float64, in SIMD lanes), over the plane padded into ``padded``.  Inlined with a constant
    ``step``, as ``forward_plane``."""
    pad_into(padded, image, pads)
    t00 = t01 = t02 = t10 = t11 = t12 = t20 = t21 = t22 = 0.0
    for i in range(d.shape[0]):
        top, middle, bottom, row = padded[step * i], padded[step * i + 1], padded[step * i + 2], d[i]
        for j in range(d.shape[1]):
            g, col = np.float64(row[j]), step * j
            t00 += g * top[col]
            t01 += g * top[col + 1]
            t02 += g * top[col + 2]
            t10 += g * middle[col]
            t11 += g * middle[col + 1]
            t12 += g * middle[col + 2]
            t20 += g * bottom[col]
            t21 += g * bottom[col + 1]
            t22 += g * bottom[col + 2]
    sums[0, 0] += t00
    sums[0, 1] += t01
    sums[0, 2] += t02
    sums[1, 0] += t10
    sums[1, 1] += t11
    sums[1, 2] += t12
    sums[2, 0] += t20
    sums[2, 1] += t21
    sums[2, 2] += t22


@jit(fastmath={"reassoc"})
def depthwise_weight_grad_3x3(dy, x, dw, pads, step):
    """``depthwise_weight_grad`` for 3×3 at stride 1 or 2 and dilation 1, filter by filter, sample by sample
    (``weight_sums_plane``)."""
    n, c = x.shape[:2]
    k = dw.shape[0]
    ho, wo = dy.shape[2], dy.shape[3]
    for filt in prange(k):
        sums = np.zeros((3, 3))
        padded = np.zeros(((ho - 1) * step + 3, (wo - 1) * step + 3), x.dtype)
        for sample in range(n):
            if step == 1:
                weight_sums_plane(x[sample, filt // (k // c)], dy[sample, filt], pads, 1, padded, sums)
            else:
                weight_sums_plane(x[sample, filt // (k // c)], dy[sample, filt], pads, 2, padded, sums)
        dw[filt, 0] = sums


def backward(dy, x, weight, stride, pads, dilation, rows: bool, rows_input_grad: bool, need_dx=True):
    """(dx or None, dW) of the depthwise convolution; ``rows``: dW by the row-at-a-time loop of 3×3 layers
    at stride 1 or 2; ``rows_input_grad``: dX by it too (stride 1, one filter per channel)."""
    dy = np.ascontiguousarray(dy)
    x = np.ascontiguousarray(x, dy.dtype)
    offsets, stride, dilation = (pads[0][0], pads[1][0]), tuple(stride), tuple(dilation)
    dw = np.empty(weight.shape, dy.dtype)
    dx = np.empty(x.shape, dy.dtype) if need_dx else None
    weight = np.ascontiguousarray(weight, dy.dtype)
    with compiled_call():
        if rows:
            depthwise_weight_grad_3x3(dy, x, dw, offsets, stride[0])
        else:
            depthwise_weight_grad(dy, x, dw, stride, offsets, dilation)
        if need_dx and rows_input_grad:
            # one filter per channel: dX is the same 3×3 loop over dY with the rotated filter, padded by 2 − P
            depthwise_forward_3x3(dy, np.ascontiguousarray(weight[:, :, ::-1, ::-1]), np.zeros(x.shape[1], dy.dtype),
                                  dx, (2 - pads[0][0], 2 - pads[1][0]), 1)
        elif need_dx:
            depthwise_input_grad(dy, weight, dx, stride, offsets, dilation)
    return dx, dw
