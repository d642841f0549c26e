"""Depthwise convolution (groups = C, one input channel per filter), forward and backward, as loops over
kernel offsets: the per-group GEMMs of the NumPy kernel have one row each, far below what BLAS needs.

x (N, C, H, W), weight (K, 1, R, S) with K = m·C (filter k reads channel k // m), y (N, K, H', W').  Offset
(u, v) of output (i, j) reads x[n, c, i·Sh + u·Dh − Pt, j·Sw + v·Dw − Pl], zero outside the input; for
each offset the loops visit only the outputs whose read falls inside (``inside``).  Rows are handed to the
row helpers as contiguous slices at stride 1 (Numba then runs them on SIMD vectors, which it does not
on a strided slice) and as strided slices otherwise: the two calls differ only in the slice.

The usual layers, 3×3 at stride 1 or 2, have loops of their own: plane by plane ("depthwise_rows", and
"depthwise_scatter" for dX), or on small maps, where a plane's loops are too short, sample by sample with the
channels innermost ("depthwise_channels": SIMD across the channels).  The row loops run on Numba's threads, their
planes cut into one run per thread (``runs``) that allocates its scratch buffer once; the others run without
threads of their own (``serial``), a slice of the batch per thread of juanji's batch split (``over_batch``).
"""
from __future__ import annotations

import numpy as np

from ...runtime.kernels import compiled_call
from ...runtime.threads import over_batch
from . import add_scaled, dot, inline, inside, jit, numba, prange, serial


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
def forward_plane(image, g, b, out, pads, step, padded):
    """out[i, j] = b + Σ_{u, v} g[u, v] · image[i·step + u − Pt, j·step + v − Pl] for one 3×3 filter: the
    nine products of each output are one expression over three rows of the plane, padded into ``padded``
    (zero outside the plane: no read falls outside), which Numba runs on SIMD vectors along the row instead of
    nine passes over the output.  Inlined (``inline="always"``) into each caller with a constant ``step``, so
    that each copy of the row loop has a constant stride."""
    ho, wo = out.shape
    pad_into(padded, image, pads)
    for i in range(ho):
        top, middle, bottom = padded[step * i], padded[step * i + 1], padded[step * i + 2]
        for j in range(wo):
            col = step * j
            out[i, j] = (b + g[0, 0] * top[col] + g[0, 1] * top[col + 1] + g[0, 2] * top[col + 2]
                         + g[1, 0] * middle[col] + g[1, 1] * middle[col + 1] + g[1, 2] * middle[col + 2]
                         + g[2, 0] * bottom[col] + g[2, 1] * bottom[col + 1] + g[2, 2] * bottom[col + 2])


@jit
def depthwise_forward_3x3(x, weight, bias, y, pads, step, runs):
    """``depthwise_forward`` for the usual depthwise layers, 3×3 at stride 1 or 2 and dilation 1, plane by
    plane (``forward_plane``; the depthwise rows of ``python -m juanji.bench``), the N·K planes in ``runs``
    runs, each padding its planes into one buffer.  ``pads``: the top and left padding (the bottom and right
    ones follow from y's size)."""
    n, c = x.shape[:2]
    k = weight.shape[0]
    ho, wo = y.shape[2], y.shape[3]
    for run in prange(runs):
        padded = np.zeros(((ho - 1) * step + 3, (wo - 1) * step + 3), y.dtype)
        for nk in range(n * k * run // runs, n * k * (run + 1) // runs):
            sample, filt = nk // k, nk % k
            if step == 1:
                forward_plane(x[sample, filt // (k // c)], weight[filt, 0], bias[filt], y[sample, filt], pads, 1,
                              padded)
            else:
                forward_plane(x[sample, filt // (k // c)], weight[filt, 0], bias[filt], y[sample, filt], pads, 2,
                              padded)


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


def _runs(count: int) -> int:
    """How many runs a loop cuts ``count`` planes or samples into: one per thread of Numba's (as
    ``compiled_call`` set them; one without Numba), at most ``count``."""
    return max(1, min(count, 1 if numba is None else numba.get_num_threads()))


def _channels_last(weight):
    """weight (C, 1, 3, 3) → (3, 3, C), the layout of the ``depthwise_channels`` loops."""
    return np.ascontiguousarray(weight[:, 0].transpose(1, 2, 0))


def conv2d(x, weight, bias, stride, pads, dilation, out_size, method: str):
    """y (N, K, H', W') of the depthwise convolution; ``pads`` ((top, bottom), (left, right)); ``method``: the
    plan's forward, "depthwise_rows" and "depthwise_channels" (3×3 at stride 1 or 2, ``plan.depthwise_rows``;
    channels: one filter per channel) or "depthwise" (the general loops)."""
    dtype = np.result_type(x, weight)
    y = np.empty((x.shape[0], weight.shape[0], *out_size), dtype=dtype)
    bias = np.zeros(weight.shape[0], dtype) if bias is None else bias.astype(dtype, copy=False)
    x, weight = np.ascontiguousarray(x, dtype), np.ascontiguousarray(weight, dtype)
    offsets = (pads[0][0], pads[1][0])
    if method == "depthwise_channels":      # nine products per output, a slice of the batch per thread
        by_channel = _channels_last(weight)
        over_batch(len(x), lambda start, stop: depthwise_forward_channels(x[start:stop], by_channel, bias,
                                                                          y[start:stop], offsets, stride[0]),
                   elements=9 * y.size)
        return y
    with compiled_call():
        if method == "depthwise_rows":
            depthwise_forward_3x3(x, weight, bias, y, offsets, stride[0], _runs(y.shape[0] * y.shape[1]))
        else:
            depthwise_forward(x, weight, bias, y, tuple(stride), offsets, tuple(dilation))
    return y


@inline(inline="always")
def weight_sums_plane(image, d, pads, step, padded, sums):
    """sums[u, v] += Σ_{i, j} d[i, j] · image[i·step + u − Pt, j·step + v − Pl] for one plane: the nine sums
    run side by side along each row of dY (float64, in SIMD lanes), over the plane padded into ``padded``.
    Inlined with a constant ``step``, as ``forward_plane``."""
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


@inline(inline="always")
def spread_plane(d, g, step, padded):
    """padded[i·step + u, j·step + v] += g[u, v] · d[i, j] for one 3×3 filter: each dY value spread over the
    window it was read from."""
    for i in range(d.shape[0]):
        top, middle, bottom, row = padded[step * i], padded[step * i + 1], padded[step * i + 2], d[i]
        for j in range(d.shape[1]):
            value, col = row[j], step * j
            top[col] += g[0, 0] * value
            top[col + 1] += g[0, 1] * value
            top[col + 2] += g[0, 2] * value
            middle[col] += g[1, 0] * value
            middle[col + 1] += g[1, 1] * value
            middle[col + 2] += g[1, 2] * value
            bottom[col] += g[2, 0] * value
            bottom[col + 1] += g[2, 1] * value
            bottom[col + 2] += g[2, 2] * value


@inline(inline="always")
def unpad_from(padded, image, pads):
    """The inverse of ``pad_into``: ``image`` = the region of ``padded`` at (top, left) = ``pads``; its rows and
    columns past the buffer (which no window reads) zero."""
    h, w = image.shape
    rows, cols = min(h, padded.shape[0] - pads[0]), min(w, padded.shape[1] - pads[1])
    image[:rows, :cols] = padded[pads[0]:pads[0] + rows, pads[1]:pads[1] + cols]
    image[rows:, :] = 0
    image[:rows, cols:] = 0


@serial
def depthwise_input_grad_3x3(dy, weight, dx, pads, step):
    """``depthwise_input_grad`` for 3×3 at stride 1 or 2 and dilation 1, plane by plane:
    dX[n, c] = Σ over the m filters k of channel c of the dY[n, k] values spread by W[k] (``spread_plane``) over
    a padded plane, of which dX takes the inner part."""
    n, c = dx.shape[:2]
    m = weight.shape[0] // c
    padded = np.empty(((dy.shape[2] - 1) * step + 3, (dy.shape[3] - 1) * step + 3), dx.dtype)
    for sample in range(n):
        for channel in range(c):
            padded[:, :] = 0
            for filt in range(channel * m, (channel + 1) * m):
                spread_plane(dy[sample, filt], weight[filt, 0], step, padded)
            unpad_from(padded, dx[sample, channel], pads)


# -- small maps: sample by sample, the channels innermost ------------------------------------------------------
#
# On small maps (MobileNet v2's 4×4 and 2×2 at 32×32 input, its 7×7 at 224×224) a plane's loops run a few times
# each, so the loops' fixed cost per plane is most of the work.  These loops copy each sample to (H, W, C), the C
# channels of a pixel side by side, and make each sum of products one loop over the channels, which Numba runs on
# SIMD vectors at either stride: x (N, C, H, W), weight (3, 3, C) (one filter per channel), y (N, C, H', W').  The
# copies read x's planes pixel by pixel and write each pixel's channels at once.  The loops run without threads of
# their own (``serial``), a slice of the batch per thread of juanji's batch split, and take the stride as a value
# (compiled once, not once per stride).

@inline(inline="always")
def to_pixels(planes, buffer, pads):
    """planes (C, H, W) into buffer (Hb, Wb, C) at (top, left) = ``pads``, the channels innermost; rows and
    columns past the buffer (no window reads them) left out.  The same region every time: a zero border stays."""
    c, h, w = planes.shape
    rows, cols = min(h, buffer.shape[0] - pads[0]), min(w, buffer.shape[1] - pads[1])
    for i in range(rows):
        for j in range(cols):
            pixel = buffer[pads[0] + i, pads[1] + j]
            for channel in range(c):
                pixel[channel] = planes[channel, i, j]


@inline(inline="always")
def from_pixels(buffer, planes, pads):
    """The inverse of ``to_pixels``: planes (C, H, W) = buffer's pixels from (top, left) = ``pads`` on, zero past
    the buffer."""
    c, h, w = planes.shape
    rows, cols = min(h, buffer.shape[0] - pads[0]), min(w, buffer.shape[1] - pads[1])
    for i in range(h):
        for j in range(w):
            if i < rows and j < cols:
                pixel = buffer[pads[0] + i, pads[1] + j]
                for channel in range(c):
                    planes[channel, i, j] = pixel[channel]
            else:
                for channel in range(c):
                    planes[channel, i, j] = 0


@inline(inline="always")
def forward_pixels(padded, g, b, out, step):
    """out[i, j, :] = b + Σ_{u, v} g[u, v, :] · padded[i·step + u, j·step + v, :]: the nine products of a pixel
    one expression per channel, over the channels."""
    g00, g01, g02, g10, g11, g12, g20, g21, g22 = g[0, 0], g[0, 1], g[0, 2], g[1, 0], g[1, 1], g[1, 2], g[2, 0], \
        g[2, 1], g[2, 2]
    for i in range(out.shape[0]):
        top, middle, bottom = padded[step * i], padded[step * i + 1], padded[step * i + 2]
        for j in range(out.shape[1]):
            col, pixel = step * j, out[i, j]
            t0, t1, t2, m0, m1, m2 = top[col], top[col + 1], top[col + 2], middle[col], middle[col + 1], middle[col + 2]
            b0, b1, b2 = bottom[col], bottom[col + 1], bottom[col + 2]
            for channel in range(pixel.shape[0]):
                pixel[channel] = (b[channel] + g00[channel] * t0[channel] + g01[channel] * t1[channel]
                                  + g02[channel] * t2[channel] + g10[channel] * m0[channel]
                                  + g11[channel] * m1[channel] + g12[channel] * m2[channel]
                                  + g20[channel] * b0[channel] + g21[channel] * b1[channel]
                                  + g22[channel] * b2[channel])


@serial
def depthwise_forward_channels(x, weight, bias, y, pads, step):
    """``depthwise_forward_3x3`` with one filter per channel, sample by sample, the channels innermost
    (``forward_pixels``); weight (3, 3, C)."""
    n, c = x.shape[:2]
    ho, wo = y.shape[2], y.shape[3]
    padded = np.zeros(((ho - 1) * step + 3, (wo - 1) * step + 3, c), x.dtype)
    out = np.empty((ho, wo, c), y.dtype)
    for sample in range(n):
        to_pixels(x[sample], padded, pads)
        forward_pixels(padded, weight, bias, out, step)
        from_pixels(out, y[sample], (0, 0))


@inline(inline="always")
def over_windows(d, padded, taps, step, visit):
    """``visit(padded[i·step + u, j·step + v, :], taps[u, v, :], d[i, j, :])`` for every pixel (i, j) of dY and
    offset (u, v) of its 3×3 window: the loops of dW's sums (``add_products``) and of dX's spread
    (``spread_values``).  Inlined, as is ``visit`` into it: each caller compiles its own copy of the loops."""
    for i in range(d.shape[0]):
        for j in range(d.shape[1]):
            grad = d[i, j]
            for u in range(3):
                row = padded[step * i + u]
                for v in range(3):
                    visit(row[step * j + v], taps[u, v], grad)


@inline(inline="always")
def add_products(pixel, total, grad):
    """total[:] += grad · pixel in float64 (dW's sums), each channel's sum in its own SIMD lane (in order: no
    reassociation)."""
    for channel in range(grad.shape[0]):
        total[channel] += np.float64(grad[channel]) * np.float64(pixel[channel])


@inline(inline="always")
def spread_values(pixel, tap, grad):
    """pixel[:] += tap · grad (dX): each dY value spread over the window it was read from, over the channels."""
    for channel in range(grad.shape[0]):
        pixel[channel] += tap[channel] * grad[channel]


@serial
def depthwise_weight_grad_channels(dy, x, pads, step):
    """sums[u, v, c] = Σ_{n, i, j} dY[n, c, i, j] · x[n, c, i·step + u − Pt, j·step + v − Pl] (float64), sample by
    sample with the channels innermost (``over_windows``); dW[c, 0, u, v] = sums[u, v, c]."""
    n, c = x.shape[:2]
    ho, wo = dy.shape[2], dy.shape[3]
    sums = np.zeros((3, 3, c))
    padded = np.zeros(((ho - 1) * step + 3, (wo - 1) * step + 3, c), x.dtype)
    grad = np.empty((ho, wo, c), dy.dtype)
    for sample in range(n):
        to_pixels(x[sample], padded, pads)
        to_pixels(dy[sample], grad, (0, 0))
        over_windows(grad, padded, sums, step, add_products)
    return sums


@serial
def depthwise_input_grad_channels(dy, weight, dx, pads, step):
    """dX of ``depthwise_forward_channels``: dx[n, c, i·step + u − Pt, j·step + v − Pl] += W[c, 0, u, v] ·
    dY[n, c, i, j], sample by sample with the channels innermost (``over_windows``); weight (3, 3, C)."""
    n, c = dx.shape[:2]
    ho, wo = dy.shape[2], dy.shape[3]
    padded = np.empty(((ho - 1) * step + 3, (wo - 1) * step + 3, c), dx.dtype)
    grad = np.empty((ho, wo, c), dy.dtype)
    for sample in range(n):
        padded[:, :, :] = 0
        to_pixels(dy[sample], grad, (0, 0))
        over_windows(grad, padded, weight, step, spread_values)
        from_pixels(padded, dx[sample], pads)


def backward(dy, x, weight, stride, pads, dilation, weight_grad: str, input_grad: str, need_dx=True):
    """(dx or None, dW) of the depthwise convolution, by the plan's ``weight_grad`` and ``input_grad``:
    "depthwise_rows" (dW: 3×3 at stride 1 or 2; dX: stride 1 and one filter per channel, the forward's loop over
    dY with the rotated filter), "depthwise_scatter" (dX of 3×3 at stride 1 or 2), "depthwise_channels" (small
    maps, one filter per channel) or "depthwise" (the general loops)."""
    dy = np.ascontiguousarray(dy)
    x = np.ascontiguousarray(x, dy.dtype)
    offsets, stride, dilation = (pads[0][0], pads[1][0]), tuple(stride), tuple(dilation)
    n, c = x.shape[:2]
    dw = np.empty(weight.shape, dy.dtype)
    dx = np.empty(x.shape, dy.dtype) if need_dx else None
    weight = np.ascontiguousarray(weight, dy.dtype)
    if weight_grad == "depthwise_channels":     # each slice of the batch sums its own samples
        sums = over_batch(n, lambda start, stop: depthwise_weight_grad_channels(dy[start:stop], x[start:stop],
                                                                                offsets, stride[0]),
                          elements=9 * dy.size)
        dw[:, 0] = sum(sums).transpose(2, 0, 1)
    else:
        with compiled_call():
            if weight_grad == "depthwise_rows":
                depthwise_weight_grad_3x3(dy, x, dw, offsets, stride[0])
            else:
                depthwise_weight_grad(dy, x, dw, stride, offsets, dilation)
    if not need_dx:
        return None, dw
    if input_grad == "depthwise_scatter":
        over_batch(n, lambda start, stop: depthwise_input_grad_3x3(dy[start:stop], weight, dx[start:stop], offsets,
                                                                   stride[0]),
                   elements=9 * dy.size)
    elif input_grad == "depthwise_channels":
        by_channel = _channels_last(weight)
        over_batch(n, lambda start, stop: depthwise_input_grad_channels(dy[start:stop], by_channel, dx[start:stop],
                                                                        offsets, stride[0]),
                   elements=9 * dy.size)
    else:
        with compiled_call():
            if input_grad == "depthwise_rows":
                # one filter per channel: dX is the same 3×3 loop over dY with the rotated filter, padded by 2 − P
                depthwise_forward_3x3(dy, np.ascontiguousarray(weight[:, :, ::-1, ::-1]), np.zeros(c, dy.dtype), dx,
                                      (2 - pads[0][0], 2 - pads[1][0]), 1, _runs(n * c))
            else:
                depthwise_input_grad(dy, weight, dx, stride, offsets, dilation)
    return dx, dw
