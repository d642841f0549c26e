"""Batch normalisation over every axis but the channel axis 1: (N, C) or (N, C, H, W)."""
import numpy as np


def batch_norm(x, gamma, beta, running_mean, running_var, training, momentum=0.1, eps=1e-5):
    """y = γ · (x − μ) / √(σ² + ε) + β.  Returns (y, cache).

    In training μ, σ² are the batch's (biased σ² to normalise); the running statistics are updated
    in place as PyTorch: r ← (1 − momentum)·r + momentum·batch, with the unbiased variance.
    In eval the running statistics are used and nothing is updated.
    """
    axes = (0,) + tuple(range(2, x.ndim))
    shape = (1, -1) + (1,) * (x.ndim - 2)
    if training:
        count = x.size // x.shape[1]
        if count < 2:
            raise ValueError(f"batch norm in training needs more than 1 value per channel, "
                             f"got input of shape {x.shape}")
        mean = x.mean(axis=axes)
        centred = x - mean.reshape(shape)
        var = per_channel_dot(centred, centred) / count
        running_mean *= 1 - momentum
        running_mean += momentum * mean
        running_var *= 1 - momentum
        running_var += momentum * var * (count / (count - 1))
    else:
        centred = x - running_mean.reshape(shape)
        var = running_var
    inv_std = 1 / np.sqrt(var + eps)
    x_hat = centred
    x_hat *= inv_std.reshape(shape)                   # in place: the centred array is our own
    y = x_hat * gamma.reshape(shape)
    y += beta.reshape(shape)
    return y, (x_hat, inv_std, gamma, training)


def per_channel_dot(a, b):
    """Σ a·b over every axis but the channel axis 1, as one BLAS dot per (sample, channel) summed over
    the samples: no product temporary, and float32 sums accumulate in blocks rather than one long chain."""
    n, c = a.shape[:2]
    return np.matmul(a.reshape(n, c, 1, -1), b.reshape(n, c, -1, 1)).reshape(n, c).sum(axis=0)


def batch_norm_backward(dy, cache):
    """Returns (dx, dγ, dβ).  dβ = Σ dY, dγ = Σ dY·x̂ and, in training (μ, σ² depend on x):
        dX = γ/σ · (dY − mean(dY) − x̂ · mean(dY · x̂))
    in eval simply dX = γ/σ · dY."""
    x_hat, inv_std, gamma, training = cache
    axes = (0,) + tuple(range(2, dy.ndim))
    shape = (1, -1) + (1,) * (dy.ndim - 2)
    dbeta = dy.sum(axis=axes)
    dgamma = per_channel_dot(dy, x_hat)
    scale = (gamma * inv_std).reshape(shape)
    if not training:
        return dy * scale, dgamma, dbeta
    count = dy.size // dy.shape[1]
    dx = x_hat * (dgamma / count).reshape(shape)      # one temporary, then updated in place
    np.subtract(dy, dx, out=dx)
    dx -= (dbeta / count).reshape(shape)
    dx *= scale
    return dx, dgamma, dbeta
