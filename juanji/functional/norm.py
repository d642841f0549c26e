"""Batch normalisation over every axis but the channel axis 1: (N, C) or (N, C, H, W); and in inference, a batch
norm folded into the convolution before it."""
import math
from typing import NamedTuple

import numpy as np

from . import plan
from ..runtime.threads import over_batch


class BatchNormCache(NamedTuple):
    """What a batch norm's forward keeps for its backward, on either kernels: x − μ as values − shift (NumPy's
    keep the centred values and shift None, the compiled kernels x and μ), 1/√(σ² + ε) in x's dtype, γ, whether
    it was training, the count of values per channel (None in eval), and the forward's plan
    (``plan.plan_batch_norm``; "rows": the backward runs the rows loops too)."""
    values: np.ndarray
    shift: np.ndarray | None
    inv_std: np.ndarray
    gamma: np.ndarray
    training: bool
    count: int | None
    plan: str = "numpy"


def fuses_relu(x) -> bool:
    """True where ``batch_norm(x, ..., relu=True)`` runs: on the compiled kernels, for arrays they take."""
    return plan.plan_batch_norm(np.shape(x)) != "numpy"


def batch_norm(x, gamma, beta, running_mean, running_var, training, momentum=0.1, eps=1e-5, reduce=None,
               relu=False, residual=None, cap=math.inf):
    """y = γ · (x − μ) / √(σ² + ε) + β.  Returns (y, cache).  Where ``fuses_relu(x)`` (the compiled kernels'
    one sweep), a ``residual`` like x is added to y, and ``relu`` returns z = min(max(y (+ residual), 0), cap)
    instead (ReLU's, or ReLU6's with cap = 6): the backward is the same, taking dY of y (or of the sum), which
    is dZ · [z > 0] (ReLU6: dZ · [0 < z < 6]).

    In training μ, σ² are the batch's (biased σ² to normalise); the running statistics are updated
    in place as PyTorch: r ← (1 − momentum)·r + momentum·batch, with the unbiased variance (``momentum`` is
    the factor of this step: a layer with momentum=None passes 1/t at its t-th batch, a cumulative average).
    Running statistics None (a layer that tracks none): the batch's are used, and ``training`` must be True.
    In eval the running statistics are used and nothing is updated.
    The cache keeps x − μ and 1/√(σ² + ε) (x̂ is their product, never stored: one pass less), x − μ as
    (values, shift): here the centred values themselves and shift None; the compiled forward keeps x and μ.
    Each pass runs over chunks of the batch (``parallel.over_batch``); the sums add the chunks' partial sums.
    ``reduce`` (synchronised batch norm): a function summing an array over every process's copy of it;
    μ, σ² are then those of the union of all processes' batches (always on the NumPy kernels: the compiled
    sweep has no point between the sums and their use to exchange them at).
    """
    shape = (1, -1) + (1,) * (x.ndim - 2)
    n = x.shape[0]

    def centre(start, stop, mean):
        np.subtract(x[start:stop], mean.reshape(shape), out=centred[start:stop])
        return per_channel_dot(centred[start:stop], centred[start:stop])

    if running_mean is None and not training:
        raise ValueError("batch_norm: without running statistics, training must be True (batch statistics)")
    if training and n == 0:     # an empty batch, as PyTorch: empty output, running statistics untouched
        return np.empty_like(x), BatchNormCache(np.empty_like(x), None, np.ones_like(gamma), gamma, False, None)
    if training:
        count = x.size // x.shape[1]
        if reduce is None:
            _check_count(count, x.shape)
    if (relu or residual is not None) and (reduce is not None or not fuses_relu(x)):
        raise ValueError("batch_norm: relu=True and residual run on the compiled kernels only, without reduce "
                         "(juanji.functional.norm.fuses_relu)")
    if residual is not None and residual.shape != x.shape:
        raise ValueError(f"batch_norm: residual of shape {residual.shape} is not x's {x.shape}")
    chosen = "numpy" if reduce is not None else plan.plan_batch_norm(x.shape)
    if chosen != "numpy":
        from .compiled import norm as compiled
        y, mean, var, inv_std = compiled.batch_norm(x, gamma, beta, running_mean, running_var, training, eps,
                                                    relu, residual, cap, chosen == "rows",
                                                    plan.batch_norm_rows_split(x.size))
        count = x.size // x.shape[1]
        if training and running_mean is not None:
            update_running_statistics(running_mean, running_var, mean, var, count, momentum)
        return y, BatchNormCache(x, mean, inv_std.astype(x.dtype), gamma, training, count if training else None,
                                 chosen)
    centred = np.empty_like(x)
    if training:
        total = sum(over_batch(n, lambda start, stop: per_channel_sum(x[start:stop]), x.size))
        if reduce is not None:          # the count travels with the sums: one message
            total = reduce(np.append(total, count))
            total, count = total[:-1], int(total[-1])
            _check_count(count, x.shape)
        mean = total / count
        squares = sum(over_batch(n, lambda start, stop: centre(start, stop, mean), x.size))
        var = (squares if reduce is None else reduce(squares)) / count
        if running_mean is not None:
            update_running_statistics(running_mean, running_var, mean, var, count, momentum)
    else:
        var = running_var
    inv_std = 1 / np.sqrt(var + eps)
    scale = (gamma * inv_std).reshape(shape)
    y = np.empty_like(x)

    def normalise(start, stop):
        if not training:
            np.subtract(x[start:stop], running_mean.reshape(shape), out=centred[start:stop])
        np.multiply(centred[start:stop], scale, out=y[start:stop])
        y[start:stop] += beta.reshape(shape)

    over_batch(n, normalise, 2 * x.size)
    return y, BatchNormCache(centred, None, inv_std, gamma, training, count if training else None)


def _check_count(count, shape):
    if count < 2:
        raise ValueError(f"batch norm in training needs more than 1 value per channel, got input of shape {shape}")


def update_running_statistics(running_mean, running_var, mean, var, count, momentum):
    """r ← (1 − momentum)·r + momentum·batch, in place, with the unbiased variance var · count/(count − 1)."""
    running_mean *= 1 - momentum
    running_mean += momentum * mean
    running_var *= 1 - momentum
    running_var += momentum * var * (count / (count - 1))


def per_channel_sum(a):
    """Σ a over every axis but the channel axis 1, as one BLAS product with a vector of ones (a sum per
    (sample, channel)) summed over the samples: NumPy's sum over axes (0, 2, 3) took 2 to 4 times as long
    (ResNet-20's and the benchmark's maps, float32, one thread)."""
    n, c = a.shape[:2]
    m = int(np.prod(a.shape[2:]))
    return (a.reshape(n * c, m) @ np.ones(m, a.dtype)).reshape(n, c).sum(axis=0)


def per_channel_dot(a, b):
    """Σ a·b over every axis but the channel axis 1, as one BLAS dot per (sample, channel) summed over
    the samples: no product temporary, and float32 sums accumulate in blocks rather than one long chain."""
    n, c = a.shape[:2]
    m = int(np.prod(a.shape[2:]))
    return np.matmul(a.reshape(n, c, 1, m), b.reshape(n, c, m, 1)).reshape(n, c).sum(axis=0)


def masks_in_backward(cache) -> bool:
    """True where ``batch_norm_backward`` takes ``clamped=``: after the rows loops' forward, on the compiled
    kernels (they apply an activation's mask in their own sweeps, one pass over dZ and z less)."""
    return cache.plan == "rows" and plan.compiled()


def batch_norm_backward(dy, cache, reduce=None, clamped=None):
    """Returns (dx, dγ, dβ).  With x̂ = (x − μ)/σ:  dβ = Σ dY, dγ = Σ dY·x̂ and, in training (μ, σ²
    depend on x):
        dX = γ/σ · (dY − mean(dY) − x̂ · mean(dY · x̂))
    in eval simply dX = γ/σ · dY.
    ``reduce`` (synchronised batch norm, training): the two means in dX are over every process's samples
    (``count`` of them, from the cache), Σ over processes by ``reduce`` of this process's sums; dγ, dβ stay
    this process's own sums (data parallelism adds them up with the other gradients).
    ``clamped`` (z, low, high), only where ``masks_in_backward(cache)``: dy is then dZ of the fused activation
    z = min(max(y, low), high), and dY = dZ where low < z < high, else 0 (ReLU's z > 0 where high is ∞)."""
    rows = masks_in_backward(cache)
    if clamped is not None and not rows:
        raise ValueError("batch_norm_backward: clamped= needs the rows loops (masks_in_backward)")
    if reduce is None and (rows or plan.compiled(dy.size)):
        from .compiled import norm as compiled
        return compiled.batch_norm_backward(dy, cache.values, cache.shift, cache.inv_std, cache.gamma,
                                            cache.training, rows, clamped, plan.batch_norm_rows_split(dy.size))
    values, shift, inv_std, gamma, training, count, _ = cache
    shape = (1, -1) + (1,) * (dy.ndim - 2)
    centred = values if shift is None else (values - shift.reshape(shape)).astype(values.dtype, copy=False)
    n = dy.shape[0]
    sums = over_batch(n, lambda start, stop: (per_channel_sum(dy[start:stop]),
                                              per_channel_dot(dy[start:stop], centred[start:stop])), 2 * dy.size)
    dbeta, dgamma = sum(part[0] for part in sums), sum(part[1] for part in sums) * inv_std
    scale = (gamma * inv_std).reshape(shape)
    dbeta_all, dgamma_all = dbeta, dgamma
    if reduce is not None and training:
        both = reduce(np.concatenate([dbeta, dgamma]))
        dbeta_all, dgamma_all = both[:len(dbeta)], both[len(dbeta):]
    dx = np.empty_like(dy)

    def input_gradient(start, stop):
        out = dx[start:stop]
        if not training:
            np.multiply(dy[start:stop], scale, out=out)
            return
        # x̂ · mean(dY·x̂), with x̂ = centred · 1/σ
        np.multiply(centred[start:stop], (inv_std * dgamma_all / count).reshape(shape), out=out)
        np.subtract(dy[start:stop], out, out=out)
        out -= (dbeta_all / count).reshape(shape)
        out *= scale

    over_batch(n, input_gradient, 2 * dy.size)
    return dx, dgamma, dbeta


def batch_norm_fold(gamma, beta, running_mean, running_var, eps):
    """A batch norm in eval as y = s · x + t per channel: returns (s, t) = (γ / √(σ² + ε), β − μ · s), float64 (C,).
    Folded into the convolution before it: BN(W ⋆ x + b) = (s·W) ⋆ x + s·b + t, one pass over the map less."""
    scale = gamma.astype(np.float64) / np.sqrt(running_var.astype(np.float64) + eps)
    return scale, beta.astype(np.float64) - running_mean.astype(np.float64) * scale


def shift_and_clamp(y, shift, residual=None, low=-math.inf, high=math.inf):
    """y ← min(max(y + t (+ residual), low), high), in place, returning y (N, C, …), contiguous: a folded batch
    norm's shift t (C,) (``batch_norm_fold``), a residual block's shortcut (an array like y) and the activation
    after them (ReLU: low 0; ReLU6: 0 and 6; none: ±∞), written over the convolution's output, which it consumes.
    Only in inference: there is no backward.  NaN stays NaN, as the layers it stands for."""
    if not y.flags.c_contiguous:
        raise ValueError("shift_and_clamp: y must be contiguous (it is written in place)")
    if residual is not None and residual.shape != y.shape:
        raise ValueError(f"shift_and_clamp: residual of shape {residual.shape} is not y's {y.shape}")
    shift = shift.astype(y.dtype)
    if plan.compiled():
        from .compiled import norm as compiled
        compiled.shift_and_clamp(y, shift, residual, low, high)
        return y
    shape = (1, -1) + (1,) * (y.ndim - 2)

    def sweep(start, stop):
        part = y[start:stop]
        part += shift.reshape(shape)
        if residual is not None:
            part += residual[start:stop]
        if low > -math.inf:
            np.maximum(part, low, out=part)
        if high < math.inf:
            np.minimum(part, high, out=part)

    over_batch(y.shape[0], sweep, 2 * y.size)
    return y
