"""Batch normalisation, forward and backward, one channel per parallel iteration: each channel's
statistics, centring and normalisation in one sweep over its values (NumPy needs a pass per step).

x (N, C, L) (any (N, C, …) input seen with its trailing axes flattened); count = N·L values per channel.
The caches are in the NumPy kernel's format, (values, shift, 1/√(σ² + ε), γ, training, count or None in
eval) with values − shift = x − μ: the compiled forward keeps x itself and μ (one array written less than
x − μ and y: ResNet-20's batch norms write to memory as much as they read), centring again as it goes.
"""
from __future__ import annotations

import numpy as np

from ...runtime.kernels import compiled_call
from ..norm import update_running_statistics
from . import jit, prange


@jit(fastmath={"reassoc"})
def batch_norm_forward_loop(x, gamma, beta, mean, var, eps, training, y, inv_std):
    """In training μ[c] = Σ x / count and σ²[c] = Σ (x − μ)² / count are written to ``mean``, ``var``; in
    eval they are read from them.  Then y = γ · (x − μ) / √(σ² + ε) + β."""
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
        for sample in range(n):
            for i in range(length):
                y[sample, channel, i] = (x[sample, channel, i] - mu) * scale + shift


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
                dx[sample, channel, i] = scale * (dy[sample, channel, i] - mean_dy
                                                  - (values[sample, channel, i] - mu) * slope)


def _as_ncl(array):
    """(N, C, …) → a contiguous (N, C, L) view or copy."""
    return np.ascontiguousarray(array).reshape(array.shape[0], array.shape[1], -1)


def batch_norm(x, gamma, beta, running_mean, running_var, training, momentum=0.1, eps=1e-5):
    """``juanji.functional.batch_norm`` on the compiled loops: returns (y, cache)."""
    x3 = _as_ncl(x)
    c = x.shape[1]
    mean = np.zeros(c) if training else running_mean.astype(np.float64)
    var = np.zeros(c) if training else running_var.astype(np.float64)
    y, inv_std = np.empty_like(x3), np.empty(c)
    with compiled_call():
        batch_norm_forward_loop(x3, gamma.astype(np.float64), beta.astype(np.float64), mean, var, float(eps),
                                bool(training), y, inv_std)
    if training:
        update_running_statistics(running_mean, running_var, mean, var, x3.shape[0] * x3.shape[2], momentum)
    count = x3.shape[0] * x3.shape[2]
    cache = (x3.reshape(x.shape), mean, inv_std.astype(x.dtype), gamma, training, count if training else None)
    return y.reshape(x.shape), cache


def batch_norm_backward(dy, cache):
    """``juanji.functional.batch_norm_backward`` on the compiled loops: returns (dx, dγ, dβ)."""
    values, shift, inv_std, gamma, training, _ = cache
    dy3 = _as_ncl(dy)
    c = dy.shape[1]
    shift = np.zeros(c) if shift is None else shift.astype(np.float64)
    dx, dgamma, dbeta = np.empty_like(dy3), np.empty(c), np.empty(c)
    with compiled_call():
        batch_norm_backward_loop(dy3, _as_ncl(values), shift, inv_std.astype(np.float64),
                                 gamma.astype(np.float64), bool(training), dx, dgamma, dbeta)
    return dx.reshape(dy.shape), dgamma.astype(dy.dtype), dbeta.astype(dy.dtype)
