"""ConvTranspose2d's forward sums on a compiled loop: the products of each input pixel added into y by stride phase.

z (K, R, S, N, H, W) holds the products Z[k, r, s, n, i, j] = Σ_c W[c, k, r, s] · x[n, c, i, j] (one GEMM Wᵀ · x over
the samples of a block), each of which goes to output (i·Sh + r·Dh − Pt, j·Sw + s·Dw − Pl).  Output (t, q) lies in
stride phase (t mod Sh, q mod Sw), at (t div Sh, q div Sw) there, so all the products of kernel offset (r, s) go to
one phase (a, b), shifted by (di, dj), where r·Dh − Pt = a + Sh·di and s·Dw − Pl = b + Sw·dj: within the phase each
row of them is one contiguous add, which Numba runs on SIMD vectors (col2im adds them into y at stride Sw, a value at
a time).  A plane's phases stay in cache while its R·S offsets are added, then are interleaved into y once.  Sums
stay in y's dtype, as col2im's (a few terms each: the offsets that reach an output).
The loop runs without threads of its own (``serial``): the forward calls it from the batch split's threads.
"""
from __future__ import annotations

import numpy as np

from . import serial


@serial
def phase_sums(z, bias, y, stride, dilation, pads):
    """y[n, k, t, q] = b[k] + Σ z[k, r, s, n, i, j] over t = i·Sh + r·Dh − Pt, q = j·Sw + s·Dw − Pl; ``pads``
    (Pt, Pl).  z (K, R, S, N, H, W), bias (K,), y (N, K, H', W')."""
    k, r, s, n, h, w = z.shape
    ho, wo = y.shape[2], y.shape[3]
    sh, sw = stride
    rows, cols = -(-ho // sh), -(-wo // sw)         # a phase's rows and columns (the first phase's: the most)
    # Each phase row keeps ``guard`` spare columns before its own and enough after them for a row of z shifted
    # by any dj (from the first offset's to the last's): products that fall outside the output land on spare
    # columns, which are never read.
    first, last = -pads[1] // sw, ((s - 1) * dilation[1] - pads[1]) // sw
    guard = max(0, -first)
    pitch = guard + max(cols, w + last)
    phases = np.empty((sh, sw, rows, pitch), y.dtype)
    flat = phases.reshape(-1)
    for sample in range(n):
        for filt in range(k):
            for e in range(flat.shape[0]):
                flat[e] = bias[filt]
            for u in range(r):
                a, di = (u * dilation[0] - pads[0]) % sh, (u * dilation[0] - pads[0]) // sh
                for v in range(s):
                    b, dj = (v * dilation[1] - pads[1]) % sw, (v * dilation[1] - pads[1]) // sw
                    for i in range(max(0, -di), min(h, rows - di)):
                        out, products = phases[a, b, i + di, guard + dj:guard + dj + w], z[filt, u, v, sample, i]
                        for j in range(w):
                            out[j] += products[j]
            for t in range(ho):
                for b in range(min(sw, wo)):
                    out = y[sample, filt, t, b::sw]
                    sums = phases[t % sh, b, t // sh, guard:guard + out.shape[0]]
                    for m in range(out.shape[0]):
                        out[m] = sums[m]
