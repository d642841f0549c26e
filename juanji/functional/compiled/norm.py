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
"""
from __future__ import annotations

import numpy as np

from ...runtime.kernels import compiled_call
from ...runtime.threads import over_batch
from . import jit, prange, serial


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


def _as_ncl(array):
    """(N, C, …) → a contiguous (N, C, L) view or copy."""
    return np.ascontiguousarray(array).reshape(array.shape[:2] + (int(np.prod(array.shape[2:])),))  # N may be 0


def batch_norm(x, gamma, beta, running_mean, running_var, training, eps=1e-5, relu=False, residual=None,
               cap=np.inf):
    """``juanji.functional.batch_norm``'s sweep on the compiled loops, plus ``residual`` and followed by ReLU
    (capped at ``cap``) with ``relu``: returns (y, μ, σ², 1/√(σ² + ε)), μ and σ² (float64) the batch's in
    training, the running statistics in eval."""
    x3 = _as_ncl(x)
    c = x.shape[1]
    mean = np.zeros(c) if training else running_mean.astype(np.float64)
    var = np.zeros(c) if training else running_var.astype(np.float64)
    gamma64, beta64 = gamma.astype(np.float64), beta.astype(np.float64)
    y, inv_std = np.empty_like(x3), np.empty(c)
    with compiled_call():
        batch_norm_forward_loop(x3, gamma64, beta64, mean, var, float(eps), bool(training), bool(relu),
                                None if residual is None else _as_ncl(residual.astype(y.dtype, copy=False)), y,
                                inv_std, float(cap))
    return y.reshape(x.shape), mean, var, inv_std


def batch_norm_backward(dy, values, shift, inv_std, gamma, training):
    """``juanji.functional.batch_norm_backward`` on the compiled loops, x − μ given as values − shift (shift
    None: values are x − μ): returns (dx, dγ, dβ)."""
    dy3 = _as_ncl(dy)
    c = dy.shape[1]
    shift = np.zeros(c) if shift is None else shift.astype(np.float64)
    dx, dgamma, dbeta = np.empty_like(dy3), np.empty(c), np.empty(c)
    with compiled_call():
        batch_norm_backward_loop(dy3, _as_ncl(values), shift, inv_std.astype(np.float64),
                                 gamma.astype(np.float64), bool(training), dx, dgamma, dbeta)
    return dx.reshape(dy.shape), dgamma.astype(dy.dtype), dbeta.astype(dy.dtype)


def shift_and_clamp(y, shift, residual, low, high):
    """``juanji.functional.norm.shift_and_clamp`` on the compiled loop, one slice of the batch per thread;
    y (N, C, …) contiguous, written in place."""
    y3 = _as_ncl(y)          # a view: y is contiguous
    r3 = None if residual is None else _as_ncl(residual.astype(y.dtype, copy=False))
    low, high = y.dtype.type(low), y.dtype.type(high)
    over_batch(y.shape[0], lambda start, stop: shift_and_clamp_loop(
        y3[start:stop], shift, None if r3 is None else r3[start:stop], low, high), 2 * y.size)
