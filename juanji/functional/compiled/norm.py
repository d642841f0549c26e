"""Batch normalisation, forward and backward, one channel per parallel iteration: each channel's
statistics, centring and normalisation in one sweep over its values (NumPy needs a pass per step).

x (N, C, L) (any (N, C, …) input seen with its trailing axes flattened); count = N·L values per channel.
These are leaves: plain arrays in, plain arrays out. ``juanji.functional.norm`` builds the cache from them
and updates the running statistics; its values − shift = x − μ lets the compiled forward keep x itself and
μ (one array written less than x − μ and y: ResNet-20's batch norms write to memory as much as they read),
centring again as it goes.

``relu=True`` fuses the ReLU after the batch norm into the forward's sweep: z = max(y, 0) is the one array
written, where y and then z were (with a ``cap``, ReLU6's min(max(y, 0), 6)); with a ``residual`` (a residual
block's shortcut, added before its ReLU) max(y + shortcut, 0), where y, their sum and the ReLU's output were.
The backward is the batch norm's own: the activation's mask ([z > 0], [0 < z < 6]) is the caller's to apply
(the shortcut takes the masked gradient too).
Fusing the mask into the backward's sweeps as well, recomputed from x, does not shorten ResNet-20's train
step at 1 or 2 threads, and would cost more code.

On small maps (``plan.BATCH_NORM_ROWS_MAX_PIXELS``) the rows loops take their place: x seen as (N, C·L), each
pass a sweep of whole rows with sums per column, a channel's L columns added up after it; run on juanji's split
over channels (a chunk of channels each), not on Numba's pool.  Their backward applies the activation's mask
itself, read from z (``clamped``), where the fused layers give it: one pass over dZ and z less (MobileNet v2's
4×4 and 2×2 layers with ReLU6: forward + backward in 0.6–0.87 of the time with the mask applied apart).
"""
from __future__ import annotations

import numpy as np

from ...runtime.kernels import compiled_call
from ...runtime.threads import over_batch
from . import inline, jit, prange, serial


@jit(fastmath={"reassoc"})
def batch_norm_forward_loop(x, gamma, beta, mean, var, eps, training, relu, residual, y, inv_std, cap=np.inf):
    """In training μ[c] = Σ x / count and σ²[c] = Σ (x − μ)² / count are written to ``mean``, ``var``; in
    eval they are read from them.  Then y = γ · (x − μ) / √(σ² + ε) + β, plus ``residual`` where it is not
    None (an array like x, added in y's dtype as a separate sum would), and min(max(·, 0), cap) of that with
    ``relu`` (NaN stays NaN, as ReLU and ReLU6)."""
    n, c, length = x.shape
    count = n * length
    for channel in prange(c):
        if training:
            total = 0.0
            for sample in range(n):
                for i in range(length):
                    total += x[sample, channel, i]
            mean[channel] = total / count
        mu, squares = mean[channel], 0.0
        if training:
            for sample in range(n):
                for i in range(length):
                    squares += (x[sample, channel, i] - mu) ** 2
            var[channel] = squares / count
        inv_std[channel] = 1 / np.sqrt(var[channel] + eps)
        scale, shift = gamma[channel] * inv_std[channel], beta[channel]
        # the same selects for all: ReLU's, ReLU6's, or none (NaN stays NaN)
        floor, zero = y.dtype.type(0 if relu else -np.inf), y.dtype.type(0)
        top = y.dtype.type(cap if relu else np.inf)
        for sample in range(n):
            for i in range(length):
                value = y.dtype.type((x[sample, channel, i] - mu) * scale + shift)
                if residual is not None:
                    value += residual[sample, channel, i]
                y[sample, channel, i] = zero if value < floor else top if value > top else value


@serial
def shift_and_clamp_loop(y, shift, residual, low, high):
    """y ← min(max(y + shift[c] (+ residual), low), high), in place, in y's dtype (NaN stays NaN)."""
    n, c, length = y.shape
    for sample in range(n):
        for channel in range(c):
            offset = shift[channel]
            for i in range(length):
                value = y[sample, channel, i] + offset
                if residual is not None:
                    value += residual[sample, channel, i]
                y[sample, channel, i] = low if value < low else high if value > high else value


@jit(fastmath={"reassoc"})
def batch_norm_backward_loop(dy, values, shift, inv_std, gamma, training, dx, dgamma, dbeta):
    """dβ = Σ dY, dγ = Σ dY · x̂ (x̂ = (values − shift) / σ, values − shift = x − μ); in eval dX = γ/σ · dY,
    in training dX = γ/σ · (dY − mean(dY) − x̂ · mean(dY·x̂))."""
    n, c, length = dy.shape
    count = n * length
    for channel in prange(c):
        total, products, mu = 0.0, 0.0, shift[channel]
        for sample in range(n):
            for i in range(length):
                total += dy[sample, channel, i]
                products += dy[sample, channel, i] * (values[sample, channel, i] - mu)
        dbeta[channel], dgamma[channel] = total, products * inv_std[channel]
        scale = gamma[channel] * inv_std[channel]
        mean_dy = total / count if training else 0.0
        slope = inv_std[channel] * dgamma[channel] / count if training else 0.0
        for sample in range(n):
            for i in range(length):
                # in eval x̂'s term is left out, not multiplied by 0: a NaN or ±∞ in x stays out of dX, as in torch
                correction = (values[sample, channel, i] - mu) * slope if training else 0.0
                dx[sample, channel, i] = scale * (dy[sample, channel, i] - mean_dy - correction)


@inline
def channel_total(columns, length, channel):
    """The sum of a channel's ``length`` adjacent column sums: the rows loops' per-column sums folded by channel
    (``channel`` counted from the first of the loop's own)."""
    return columns[channel * length:(channel + 1) * length].sum()


@serial(fastmath={"reassoc"})
def batch_norm_rows_forward_loop(x, length, gamma, beta, mean, var, eps, training, relu, residual, y, inv_std, cap,
                                 first, stop):
    """``batch_norm_forward_loop`` for channels [first, stop) of x (N, C·L), a channel's values in L adjacent
    columns (small maps: L = H·W a few pixels): each pass sweeps whole rows, summing per column (float64), and
    each channel then adds up its L columns; y = (x − μ[c]) · s[c] + t[c] per column (s = γ/√(σ² + ε),
    t = β), clamped as that loop's; ``residual`` None or (N, C·L)."""
    n = x.shape[0]
    count = n * length
    start, width = first * length, (stop - first) * length
    columns, mu, scale, shift = np.zeros(width), np.empty(width), np.empty(width), np.empty(width)
    if training:
        for sample in range(n):
            row = x[sample, start:start + width]        # indexed from 0: no negative-index check, SIMD
            for j in range(width):
                columns[j] += row[j]
        for channel in range(first, stop):
            mean[channel] = channel_total(columns, length, channel - first) / count
    for j in range(width):
        mu[j] = mean[first + j // length]
    if training:
        columns[:] = 0
        for sample in range(n):
            row = x[sample, start:start + width]
            for j in range(width):
                columns[j] += (row[j] - mu[j]) ** 2
        for channel in range(first, stop):
            var[channel] = channel_total(columns, length, channel - first) / count
    for channel in range(first, stop):
        inv_std[channel] = 1 / np.sqrt(var[channel] + eps)
    for j in range(width):
        channel = first + j // length
        scale[j], shift[j] = gamma[channel] * inv_std[channel], beta[channel]
    floor, zero = y.dtype.type(0 if relu else -np.inf), y.dtype.type(0)
    top = y.dtype.type(cap if relu else np.inf)
    for sample in range(n):
        row, out = x[sample, start:start + width], y[sample, start:start + width]
        added = row if residual is None else residual[sample, start:start + width]     # never Optional: SIMD
        for j in range(width):
            value = y.dtype.type((row[j] - mu[j]) * scale[j] + shift[j])
            if residual is not None:
                value += added[j]
            out[j] = zero if value < floor else top if value > top else value


@inline
def gated(g, z, low, high, unbounded, zero):
    """dY = dZ · [low < z < high] as a select, not a product: dZ = ±∞ or NaN outside gives 0, as ReLU6's (z > low
    alone where ``unbounded``: ReLU's [z > 0] keeps z = ∞); & and |, not and/or: no branches, so that the loops'
    selects run in SIMD lanes."""
    return g if (z > low) & ((z < high) | unbounded) else zero


@serial(fastmath={"reassoc"})
def batch_norm_rows_backward_loop(dy, values, length, shift, inv_std, gamma, training, clamped, low, high, dx, dgamma,
                                  dbeta, first, stop):
    """``batch_norm_backward_loop`` for channels [first, stop) of dY, values (N, C·L), by rows as
    ``batch_norm_rows_forward_loop``: dβ = Σ dY, dγ = Σ dY · x̂; dX = γ/σ · (dY − mean(dY) − x̂ · mean(dY·x̂))
    (eval: γ/σ · dY).  ``clamped`` None, or the forward's z = min(max(y, low), high) (N, C·L): then dY is
    dZ where low < z < high, else 0 (ReLU's z > 0 where high is ∞), taken in the same sweeps."""
    n = dy.shape[0]
    unbounded = high == np.inf
    count = n * length
    start, width = first * length, (stop - first) * length
    totals, products, mu = np.zeros(width), np.zeros(width), np.empty(width)
    for j in range(width):
        mu[j] = shift[first + j // length]
    zero = dy.dtype.type(0)
    for sample in range(n):
        grad, row = dy[sample, start:start + width], values[sample, start:start + width]
        bounds = grad if clamped is None else clamped[sample, start:start + width]      # never Optional: SIMD
        for j in range(width):
            g = grad[j]
            if clamped is not None:
                g = gated(g, bounds[j], low, high, unbounded, zero)
            totals[j] += g
            products[j] += g * (row[j] - mu[j])
    scale, mean_dy, slope = np.empty(width), np.empty(width), np.empty(width)
    for channel in range(first, stop):
        dbeta[channel] = channel_total(totals, length, channel - first)
        dgamma[channel] = channel_total(products, length, channel - first) * inv_std[channel]
    for j in range(width):
        channel = first + j // length
        scale[j] = gamma[channel] * inv_std[channel]
        mean_dy[j] = dbeta[channel] / count if training else 0.0
        slope[j] = inv_std[channel] * dgamma[channel] / count if training else 0.0
    for sample in range(n):
        grad, row = dy[sample, start:start + width], values[sample, start:start + width]
        out = dx[sample, start:start + width]
        bounds = grad if clamped is None else clamped[sample, start:start + width]      # never Optional: SIMD
        for j in range(width):
            g = grad[j]
            if clamped is not None:
                g = gated(g, bounds[j], low, high, unbounded, zero)
            # in eval x̂'s term is left out, as in batch_norm_backward_loop (a NaN or ±∞ in x stays out of dX)
            correction = (row[j] - mu[j]) * slope[j] if training else 0.0
            out[j] = scale[j] * (g - mean_dy[j] - correction)


def _as_ncl(array):
    """(N, C, …) → a contiguous (N, C, L) view or copy."""
    return np.ascontiguousarray(array).reshape(array.shape[:2] + (int(np.prod(array.shape[2:])),))  # N may be 0


def _by_rows(array):
    """(N, C, …) → a contiguous (N, C·L) view or copy, and L."""
    a3 = _as_ncl(array)
    n, c, length = a3.shape
    return a3.reshape(n, c * length), length        # N may be 0: no -1


def batch_norm(x, gamma, beta, running_mean, running_var, training, eps=1e-5, relu=False, residual=None,
               cap=np.inf, rows=False, split=False):
    """``juanji.functional.batch_norm``'s sweep on the compiled loops, plus ``residual`` and followed by ReLU
    (capped at ``cap``) with ``relu``: returns (y, μ, σ², 1/√(σ² + ε)), μ and σ² (float64) the batch's in
    training, the running statistics in eval.  ``rows``: by the rows loop (small maps), its channels split
    over juanji's threads where ``split``."""
    c = x.shape[1]
    mean = np.zeros(c) if training else running_mean.astype(np.float64)
    var = np.zeros(c) if training else running_var.astype(np.float64)
    gamma64, beta64 = gamma.astype(np.float64), beta.astype(np.float64)
    inv_std = np.empty(c)
    if rows:
        x2, length = _by_rows(x)
        r2 = None if residual is None else _by_rows(residual.astype(x.dtype, copy=False))[0]
        y = np.empty_like(x2)
        over_batch(c, lambda first, stop: batch_norm_rows_forward_loop(
            x2, length, gamma64, beta64, mean, var, float(eps), bool(training), bool(relu), r2, y, inv_std,
            float(cap), first, stop), x.size if split else 0)
        return y.reshape(x.shape), mean, var, inv_std
    x3 = _as_ncl(x)
    y = np.empty_like(x3)
    with compiled_call():
        batch_norm_forward_loop(x3, gamma64, beta64, mean, var, float(eps), bool(training), bool(relu),
                                None if residual is None else _as_ncl(residual.astype(y.dtype, copy=False)), y,
                                inv_std, float(cap))
    return y.reshape(x.shape), mean, var, inv_std


def batch_norm_backward(dy, values, shift, inv_std, gamma, training, rows=False, clamped=None, split=False):
    """``juanji.functional.batch_norm_backward`` on the compiled loops, x − μ given as values − shift (shift
    None: values are x − μ): returns (dx, dγ, dβ).  ``rows``: by the rows loop, as ``batch_norm``, which
    takes dZ and (z, low, high) as ``clamped`` where z = min(max(y, low), high) (dY = dZ · [low < z < high])."""
    c = dy.shape[1]
    shift = np.zeros(c) if shift is None else shift.astype(np.float64)
    inv_std64, gamma64 = inv_std.astype(np.float64), gamma.astype(np.float64)
    dgamma, dbeta = np.empty(c), np.empty(c)
    if rows:
        (dy2, length), values2 = _by_rows(dy), _by_rows(values)[0]
        z, low, high = (None, -np.inf, np.inf) if clamped is None else clamped
        z2 = None if z is None else _by_rows(z)[0]
        dx = np.empty_like(dy2)
        over_batch(c, lambda first, stop: batch_norm_rows_backward_loop(
            dy2, values2, length, shift, inv_std64, gamma64, bool(training), z2, float(low), float(high), dx,
            dgamma, dbeta, first, stop), dy.size if split else 0)
    else:
        dx = np.empty_like(_as_ncl(dy))
        with compiled_call():
            batch_norm_backward_loop(_as_ncl(dy), _as_ncl(values), shift, inv_std64, gamma64, bool(training), dx,
                                     dgamma, dbeta)
    return dx.reshape(dy.shape), dgamma.astype(dy.dtype), dbeta.astype(dy.dtype)


def shift_and_clamp(y, shift, residual, low, high):
    """``juanji.functional.norm.shift_and_clamp`` on the compiled loop, one slice of the batch per thread;
    y (N, C, …) contiguous, written in place."""
    y3 = _as_ncl(y)          # a view: y is contiguous
    r3 = None if residual is None else _as_ncl(residual.astype(y.dtype, copy=False))
    low, high = y.dtype.type(low), y.dtype.type(high)
    over_batch(y.shape[0], lambda start, stop: shift_and_clamp_loop(
        y3[start:stop], shift, None if r3 is None else r3[start:stop], low, high), 2 * y.size)
