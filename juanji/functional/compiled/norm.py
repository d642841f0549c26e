"""Batch normalisation, forward and backward, one channel per parallel iteration: each channel's
statistics, centring and normalisation in one sweep over its values (NumPy needs a pass per step).

x (N, C, L) (any (N, C, …) input seen with its trailing axes flattened); count = N·L values per channel.
The caches are the NumPy kernel's: (x − μ, 1/√(σ² + ε), γ, training).
"""
from __future__ import annotations

import numpy as np

from ...runtime.kernels import compiled_call
from ..norm import update_running_statistics
from . import jit, prange


@jit(fastmath={"reassoc"})
def batch_norm_forward_loop(x, gamma, beta, mean, var, eps, training, centred, y, inv_std):
    """In training μ[c] = Σ x / count and σ²[c] = Σ (x − μ)² / count are written to ``mean``, ``var``; in
    eval they are read from them.  Then centred = x − μ, y = γ · centred / √(σ² + ε) + β."""
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
        for sample in range(n):
            for i in range(length):
                centred[sample, channel, i] = x[sample, channel, i] - mu
                squares += (x[sample, channel, i] - mu) ** 2
        if training:
            var[channel] = squares / count
        inv_std[channel] = 1 / np.sqrt(var[channel] + eps)
        scale, shift = gamma[channel] * inv_std[channel], beta[channel]
        for sample in range(n):
            for i in range(length):
                y[sample, channel, i] = centred[sample, channel, i] * scale + shift


@jit(fastmath={"reassoc"})
def batch_norm_backward_loop(dy, centred, inv_std, gamma, training, dx, dgamma, dbeta):
    """dβ = Σ dY, dγ = Σ dY · x̂ (x̂ = centred / σ); in eval dX = γ/σ · dY, in training
    dX = γ/σ · (dY − mean(dY) − x̂ · mean(dY·x̂))."""
    n, c, length = dy.shape
    count = n * length
    for channel in prange(c):
        total, products = 0.0, 0.0
        for sample in range(n):
            for i in range(length):
                total += dy[sample, channel, i]
                products += dy[sample, channel, i] * centred[sample, channel, i]
        dbeta[channel], dgamma[channel] = total, products * inv_std[channel]
        scale = gamma[channel] * inv_std[channel]
        mean_dy = total / count if training else 0.0
        slope = inv_std[channel] * dgamma[channel] / count if training else 0.0
        for sample in range(n):
            for i in range(length):
                dx[sample, channel, i] = scale * (dy[sample, channel, i] - mean_dy
                                                  - centred[sample, channel, i] * slope)


def _as_ncl(array):
    """(N, C, …) → a contiguous (N, C, L) view or copy."""
    return np.ascontiguousarray(array).reshape(array.shape[0], array.shape[1], -1)


def batch_norm(x, gamma, beta, running_mean, running_var, training, momentum=0.1, eps=1e-5):
    """``juanji.functional.batch_norm`` on the compiled loops: returns (y, cache)."""
    x3 = _as_ncl(x)
    c = x.shape[1]
    mean = np.zeros(c) if training else running_mean.astype(np.float64)
    var = np.zeros(c) if training else running_var.astype(np.float64)
    centred, y, inv_std = np.empty_like(x3), np.empty_like(x3), np.empty(c)
    with compiled_call():
        batch_norm_forward_loop(x3, gamma.astype(np.float64), beta.astype(np.float64), mean, var, float(eps),
                           bool(training), centred, y, inv_std)
    if training:
        update_running_statistics(running_mean, running_var, mean, var, x3.shape[0] * x3.shape[2], momentum)
    cache = (centred.reshape(x.shape), inv_std.astype(x.dtype), gamma, training)
    return y.reshape(x.shape), cache


def batch_norm_backward(dy, cache):
    """``juanji.functional.batch_norm_backward`` on the compiled loops: returns (dx, dγ, dβ)."""
    centred, inv_std, gamma, training = cache
    dy3 = _as_ncl(dy)
    c = dy.shape[1]
    dx, dgamma, dbeta = np.empty_like(dy3), np.empty(c), np.empty(c)
    with compiled_call():
        batch_norm_backward_loop(dy3, _as_ncl(centred), inv_std.astype(np.float64),
                            gamma.astype(np.float64), bool(training), dx, dgamma, dbeta)
    return dx.reshape(dy.shape), dgamma.astype(dy.dtype), dbeta.astype(dy.dtype)
