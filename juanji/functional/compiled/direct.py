"""Direct convolution at stride 1, without columns: of layers with few input channels (LeNet-5's first, 1 → 6 at
5×5), and of calls too small for im2col's columns and GEMMs to pay (its second, 6 → 16, at batch 1).

im2col copies each input pixel R·S times (25 at 5×5) for a GEMM whose inner size is only C·R·S (25 for one
channel), so the copy costs more than the product; these loops read the input where it lies.  Each sample is
padded into a buffer (C, Hp + 1, pitch), pitch = Wp = W + Pl + Pr, laid out flat, so that the H' output rows that
kernel offset (c, u, v) reads are one contiguous run of H'·pitch values from (c, u·Dh, v·Dw) on; of each row of a
run the first W' values are the outputs' and the rest (pitch − W', the kernel's reach) belong to no output, as in
NumPy's depthwise kernel ("depthwise_shifts").  Each output plane is then a sum of whole runs, which Numba runs on
SIMD vectors:

    y[n, k] = b[k] + Σ_{c, u, v} W[k, c, u, v] · run(n, c, u, v)       (the spare columns dropped)
    dW[k, c, u, v] = Σ_n ⟨dY[n, k], run(n, c, u, v)⟩                     (dY laid out as the runs, zero in the spare
                                                                          columns)

x (N, C, H, W), weight (K, C, R, S), y and dY (N, K, H', W'), H' = H + Pt + Pb − Dh·(R − 1) (stride 1).  The loops
take two filters and four offsets at a time (``_add_runs``, ``_run_sums``): each value read from a run then serves
eight products, and each pass over an output run stores once per four offsets.  They run without threads of their
own (``serial``), one slice of the batch per thread of juanji's batch split.  dX needs no columns: NumPy's kernels
make it (``plan_conv``).  The reference is ``conv.conv2d_reference`` (y) and ``conv.conv2d_backward_reference``.
"""
from __future__ import annotations

import numpy as np

from ...runtime.threads import over_batch
from . import dot, inline, serial

# The sums may be reordered (into SIMD lanes for dW's dot products) and a product and a sum fused; never "fast"
# math that assumes no inf or NaN, which must reach exactly the outputs and gradients that read them.
SUMS = {"reassoc", "contract"}


@inline(inline="always")
def _pad_into(padded, image, pads):
    """``image`` (C, H, W) into the zero buffer ``padded`` (C, rows, pitch) at (top, left) = ``pads``; the same
    region every time, so that the buffer's border stays zero from sample to sample."""
    h, w = image.shape[1], image.shape[2]
    padded[:, pads[0]:pads[0] + h, pads[1]:pads[1] + w] = image


@inline(inline="always")
def _offsets(c, r, s, rows, pitch, dilation):
    """Where the run of each kernel offset (c, u, v) starts in the flat buffer, in W's order."""
    offsets = np.empty(c * r * s, np.int64)
    for ch in range(c):
        for u in range(r):
            for v in range(s):
                offsets[(ch * r + u) * s + v] = (ch * rows + u * dilation[0]) * pitch + v * dilation[1]
    return offsets


@inline(inline="always")
def _add_runs(acc0, acc1, flat, offsets, w0, w1, q, run):
    """acc0 += Σ_{t < 4} w0[q + t] · run(q + t), acc1 likewise with w1: four offsets, two filters."""
    o0, o1, o2, o3 = offsets[q], offsets[q + 1], offsets[q + 2], offsets[q + 3]
    r0, r1, r2, r3 = flat[o0:o0 + run], flat[o1:o1 + run], flat[o2:o2 + run], flat[o3:o3 + run]
    a0, a1, a2, a3 = w0[q], w0[q + 1], w0[q + 2], w0[q + 3]
    b0, b1, b2, b3 = w1[q], w1[q + 1], w1[q + 2], w1[q + 3]
    for t in range(run):
        x0, x1, x2, x3 = r0[t], r1[t], r2[t], r3[t]
        acc0[t] += a0 * x0 + a1 * x1 + a2 * x2 + a3 * x3
        acc1[t] += b0 * x0 + b1 * x1 + b2 * x2 + b3 * x3


@inline(inline="always")
def _add_run(acc0, acc1, flat, offset, a, b, run):
    """acc0 += a · run, acc1 += b · run: one offset (those past the last multiple of four), two filters."""
    values = flat[offset:offset + run]
    for t in range(run):
        acc0[t] += a * values[t]
        acc1[t] += b * values[t]


@serial(fastmath=SUMS)
def forward_loop(x, weight, bias, y, pads, dilation):
    """y[n, k, i, j] = b[k] + Σ_{c, u, v} W[k, c, u, v] · xp[n, c, i + u·Dh, j + v·Dw] for the samples of x,
    two filters at a time (the last of an odd number paired with itself)."""
    n, c = x.shape[:2]
    k, _, r, s = weight.shape
    ho, wo = y.shape[2], y.shape[3]
    rows, pitch = ho + dilation[0] * (r - 1) + 1, wo + dilation[1] * (s - 1)     # one spare row for the last runs
    padded = np.zeros((c, rows, pitch), x.dtype)
    flat = padded.reshape(-1)
    offsets = _offsets(c, r, s, rows, pitch, dilation)
    taps, run = c * r * s, ho * pitch
    filters = weight.reshape(k, taps)
    acc = np.empty((2, run), y.dtype)
    acc0, acc1 = acc[0], acc[1]
    for sample in range(n):
        _pad_into(padded, x[sample], pads)
        for first in range(0, k, 2):
            second = min(first + 1, k - 1)
            w0, w1 = filters[first], filters[second]
            acc0[:] = bias[first]
            acc1[:] = bias[second]
            q = 0
            while q + 4 <= taps:
                _add_runs(acc0, acc1, flat, offsets, w0, w1, q, run)
                q += 4
            for q in range(q, taps):
                _add_run(acc0, acc1, flat, offsets[q], w0[q], w1[q], run)
            for i in range(ho):
                y[sample, first, i] = acc0[i * pitch:i * pitch + wo]
                y[sample, second, i] = acc1[i * pitch:i * pitch + wo]


@inline(inline="always")
def _run_sums(d0, d1, flat, offsets, q, run):
    """(⟨d0, run(q + t)⟩ for t < 4, then ⟨d1, run(q + t)⟩), summed in float64: four offsets, two filters."""
    o0, o1, o2, o3 = offsets[q], offsets[q + 1], offsets[q + 2], offsets[q + 3]
    r0, r1, r2, r3 = flat[o0:o0 + run], flat[o1:o1 + run], flat[o2:o2 + run], flat[o3:o3 + run]
    a0 = a1 = a2 = a3 = b0 = b1 = b2 = b3 = 0.0
    for t in range(run):
        x0, x1, x2, x3 = np.float64(r0[t]), np.float64(r1[t]), np.float64(r2[t]), np.float64(r3[t])
        g, h = np.float64(d0[t]), np.float64(d1[t])
        a0 += g * x0
        a1 += g * x1
        a2 += g * x2
        a3 += g * x3
        b0 += h * x0
        b1 += h * x1
        b2 += h * x2
        b3 += h * x3
    return a0, a1, a2, a3, b0, b1, b2, b3


@inline(inline="always")
def _row_sums(dy, flat, offsets, pitch, sums):
    """sums[k, q] += Σ_{i, j < W'} dY[k, i, j] · run(q)[i·pitch + j] for one sample, row by row over the outputs'
    own columns (dY (K, H', W'))."""
    for f in range(dy.shape[0]):
        for q in range(offsets.shape[0]):
            for i in range(dy.shape[1]):
                start = offsets[q] + i * pitch
                sums[f, q] += dot(dy[f, i], flat[start:start + dy.shape[2]])


@serial(fastmath=SUMS)
def weight_grad_loop(dy, x, sums, kernel_size, pads, dilation):
    """sums[k, (c, u, v)] += Σ_{n, i, j} dY[n, k, i, j] · xp[n, c, i + u·Dh, j + v·Dw] over the samples of x, in
    float64, two filters at a time (the last of an odd number paired with itself).  dY's spare columns are zero, so
    they add nothing, except where they meet an inf or a NaN of x (0 · inf is NaN): a sample that holds one is summed
    row by row over the outputs' own columns (``_row_sums``)."""
    n, c = x.shape[:2]
    k, taps = sums.shape
    r, s = kernel_size
    ho, wo = dy.shape[2], dy.shape[3]
    rows, pitch = ho + dilation[0] * (r - 1) + 1, wo + dilation[1] * (s - 1)
    padded = np.zeros((c, rows, pitch), x.dtype)
    flat = padded.reshape(-1)
    offsets = _offsets(c, r, s, rows, pitch, dilation)
    run = ho * pitch
    grads = np.zeros((k, ho, pitch), dy.dtype)           # dY laid out as the runs: its spare columns stay zero
    laid = grads.reshape(k, run)
    for sample in range(n):
        _pad_into(padded, x[sample], pads)
        if not np.isfinite(x[sample]).all():
            _row_sums(dy[sample], flat, offsets, pitch, sums)
            continue
        grads[:, :, :wo] = dy[sample]
        for first in range(0, k, 2):
            second = min(first + 1, k - 1)
            q = 0
            while q + 4 <= taps:
                a0, a1, a2, a3, b0, b1, b2, b3 = _run_sums(laid[first], laid[second], flat, offsets, q, run)
                sums[first, q] += a0
                sums[first, q + 1] += a1
                sums[first, q + 2] += a2
                sums[first, q + 3] += a3
                if second != first:
                    sums[second, q] += b0
                    sums[second, q + 1] += b1
                    sums[second, q + 2] += b2
                    sums[second, q + 3] += b3
                q += 4
            for q in range(q, taps):
                sums[first, q] += dot(laid[first], flat[offsets[q]:offsets[q] + run])
                if second != first:
                    sums[second, q] += dot(laid[second], flat[offsets[q]:offsets[q] + run])


def conv2d(x, weight, bias, pads, dilation, out_size) -> np.ndarray:
    """y (N, K, H', W') of x (N, C, H, W) by weight (K, C, R, S) at stride 1, one slice of the batch per thread;
    ``pads`` ((top, bottom), (left, right))."""
    dtype = np.result_type(x, weight)
    n, k = x.shape[0], weight.shape[0]
    y = np.empty((n, k, *out_size), dtype)
    x, weight = np.ascontiguousarray(x, dtype), np.ascontiguousarray(weight, dtype)
    bias = np.zeros(k, dtype) if bias is None else np.ascontiguousarray(bias, dtype)
    corner, dilation = (pads[0][0], pads[1][0]), tuple(dilation)
    over_batch(n, lambda start, stop: forward_loop(x[start:stop], weight, bias, y[start:stop], corner, dilation),
               multiply_adds=y.size * weight[0].size)
    return y


def weight_grad(dy, x, weight_shape, pads, dilation) -> np.ndarray:
    """dW (K, C, R, S) of ``conv2d`` for dY (N, K, H', W'), in dY's dtype: float64 sums per slice of the batch,
    added."""
    k, c, r, s = weight_shape
    dy = np.ascontiguousarray(dy)
    x = np.ascontiguousarray(x, dy.dtype)
    corner, dilation = (pads[0][0], pads[1][0]), tuple(dilation)

    def chunk(start, stop):
        sums = np.zeros((k, c * r * s))
        weight_grad_loop(dy[start:stop], x[start:stop], sums, (r, s), corner, dilation)
        return sums

    return sum(over_batch(len(x), chunk, multiply_adds=dy.size * c * r * s)).astype(dy.dtype).reshape(weight_shape)
