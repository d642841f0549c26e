"""Normalisations by each sample's own statistics: layer norm, group norm and instance norm.

Each standardises rows of the input — a sample's trailing axes (layer norm), a sample's group of channels
(group norm), a sample's channel (instance norm) — then scales and shifts per element or per channel:
x̂ = (x − μ) / √(σ² + ε) with μ and the biased σ² of the row;  y = γ · x̂ + β.
"""
from typing import NamedTuple

import numpy as np

from ..runtime.threads import over_batch
from .norm import update_running_statistics


class NormCache(NamedTuple):
    """What a per-sample normalisation keeps for its backward: x̂ in x's shape; 1/√(σ² + ε) of each row and
    ``rows`` = (M, K), the rows x̂ was standardised in — or, where x̂ came from running statistics, 1/√(σ² + ε)
    of each channel and ``rows`` None; γ (None: no scale) and the axes of x that γ, β are broadcast along."""
    xhat: np.ndarray
    inv_std: np.ndarray
    rows: tuple[int, int] | None
    gamma: np.ndarray | None
    axes: tuple[int, ...]


def standardize(rows, eps):
    """rows (M, K) → (x̂ (M, K), μ (M,), σ² (M,), 1/√(σ² + ε) (M,)):  x̂ = (x − μ) / √(σ² + ε), μ and the
    biased σ² of each row, all in the rows' dtype.  The rows are split over the batch threads."""
    m, k = rows.shape
    xhat = np.empty_like(rows)
    mean, var, inv_std = (np.empty(m, dtype=rows.dtype) for _ in range(3))

    def work(start, stop):
        out = xhat[start:stop]
        mean[start:stop] = rows[start:stop].mean(axis=1)
        np.subtract(rows[start:stop], mean[start:stop, None], out=out)
        # Σ (x − μ)² as one BLAS dot per row: no temporary of squares
        var[start:stop] = np.matmul(out[:, None, :], out[:, :, None]).reshape(-1) / k
        inv_std[start:stop] = 1 / np.sqrt(var[start:stop] + eps)
        out *= inv_std[start:stop, None]

    if rows.size:
        over_batch(m, work, 3 * rows.size)
    return xhat, mean, var, inv_std


def standardize_backward(dxhat, xhat, inv_std):
    """dX of ``standardize``, rows (M, K):  dX = (dX̂ − mean(dX̂) − x̂ · mean(dX̂ · x̂)) / √(σ² + ε) per row."""
    m, k = dxhat.shape
    dx = np.empty_like(dxhat)

    def work(start, stop):
        d, h, out = dxhat[start:stop], xhat[start:stop], dx[start:stop]
        np.multiply(h, np.matmul(d[:, None, :], h[:, :, None]).reshape(-1, 1) / k, out=out)
        np.subtract(d, out, out=out)
        out -= d.mean(axis=1, keepdims=True)
        out *= inv_std[start:stop, None]

    if dx.size:
        over_batch(m, work, 3 * dxhat.size)
    return dx


def _normalise_rows(x, m, eps, gamma, beta, axes):
    """(y, cache, μ, σ²) of x standardised as ``m`` rows, then y = γ · x̂ + β, γ and β broadcast along ``axes``."""
    rows = x.reshape(m, x.size // m if m else 0)
    xhat, mean, var, inv_std = standardize(rows, eps)
    xhat = xhat.reshape(x.shape)
    y = _affine(xhat, gamma, beta, axes)
    return y, NormCache(xhat, inv_std, rows.shape, gamma, axes), mean, var


def _seen(shape, axes):
    """The shape in which an array of x's other axes broadcasts against x (1 along ``axes``)."""
    return tuple(1 if axis in axes else size for axis, size in enumerate(shape))


def _affine(xhat, gamma, beta, axes):
    """γ · x̂ + β with γ, β (None: 1, 0) broadcast along ``axes``; a new array in x̂'s dtype."""
    shape = _seen(xhat.shape, axes)
    y = xhat * gamma.reshape(shape) if gamma is not None else xhat.copy()
    if beta is not None:
        y += beta.reshape(shape)
    return y


def normalization_backward(dy, cache):
    """(dx, dγ, dβ) of any normalisation of this module, γ and β summed over the axes they are broadcast along:
    dβ = Σ dY, dγ = Σ dY · x̂ (None without γ), dX̂ = γ · dY, and dX = standardize_backward(dX̂) on the rows
    (per-sample statistics) or dX = dX̂ / √(σ² + ε) per channel (running statistics)."""
    axes = cache.axes
    shape = _seen(dy.shape, axes)
    dbeta = dy.sum(axis=axes)
    if cache.gamma is None:
        dgamma, dxhat = None, dy
    else:
        dgamma = (dy * cache.xhat).sum(axis=axes)
        dxhat = dy * cache.gamma.reshape(shape)
    if cache.rows is None:
        dx = dxhat * cache.inv_std.reshape(shape)
    else:
        dx = standardize_backward(dxhat.reshape(cache.rows), cache.xhat.reshape(cache.rows),
                                  cache.inv_std).reshape(dy.shape)
    return dx, dgamma, dbeta


def layer_norm(x, normalized_ndim, gamma=None, beta=None, eps=1e-5):
    """x (*, D₁ … D_k) normalised over its last k = ``normalized_ndim`` axes:  y = γ · x̂ + β, γ and β
    (D₁ … D_k) or None.  Returns (y, cache); the backward is ``normalization_backward``."""
    lead = x.ndim - normalized_ndim
    y, cache, _, _ = _normalise_rows(x, int(np.prod(x.shape[:lead], dtype=np.int64)), eps, gamma, beta,
                                     tuple(range(lead)))
    return y, cache


def group_norm(x, num_groups, gamma=None, beta=None, eps=1e-5):
    """x (N, C, *) normalised over each sample's ``num_groups`` groups of C/G consecutive channels (and *):
    y = γ · x̂ + β, γ and β (C,) or None.  Returns (y, cache); the backward is ``normalization_backward``."""
    return _normalise_rows(x, x.shape[0] * num_groups, eps, gamma, beta, _per_channel(x))[:2]


def instance_norm(x, gamma=None, beta=None, running_mean=None, running_var=None, use_input_stats=True,
                  momentum=0.1, eps=1e-5):
    """x (N, C, *) normalised per sample and channel over *:  y = γ · x̂ + β, γ and β (C,) or None.
    With ``use_input_stats`` μ, σ² are each (sample, channel)'s own, and running statistics where given are
    updated in place as torch: r ← (1 − momentum)·r + momentum·mean over the samples (σ² unbiased there);
    without, the running statistics normalise (x̂ = (x − r_μ) / √(r_σ² + ε)).  Returns (y, cache); the
    backward is ``normalization_backward``."""
    n, c = x.shape[:2]
    axes = _per_channel(x)
    if not use_input_stats:
        shape = _seen(x.shape, axes)
        inv_std = 1 / np.sqrt(running_var + eps)
        xhat = (x - running_mean.reshape(shape)) * inv_std.reshape(shape)
        return _affine(xhat, gamma, beta, axes), NormCache(xhat, inv_std, None, gamma, axes)
    y, cache, mean, var = _normalise_rows(x, n * c, eps, gamma, beta, axes)
    if running_mean is not None and n:
        update_running_statistics(running_mean, running_var, mean.reshape(n, c).mean(axis=0),
                                  var.reshape(n, c).mean(axis=0), x.size // (n * c), momentum)
    return y, cache


def _per_channel(x):
    """The axes a per-channel array is broadcast along against x (N, C, *): all but 1."""
    return (0,) + tuple(range(2, x.ndim))


# -- references for the tests: one row at a time, the Jacobian written out ---------------------------------------
def standardize_reference(rows, eps):
    """``standardize``'s x̂, row by row with NumPy's mean and var."""
    return np.stack([(row - row.mean()) / np.sqrt(row.var() + eps) for row in rows]).reshape(rows.shape)


def standardize_backward_reference(dxhat, rows, eps):
    """dX = Jᵀ dX̂ for each row, J = ∂x̂/∂x = (I − 1/K − x̂ x̂ᵀ / K) / √(σ² + ε) built as a K × K matrix."""
    k = rows.shape[1]
    dx = np.empty_like(dxhat)
    for i, row in enumerate(rows):
        sigma = np.sqrt(row.var() + eps)
        xhat = (row - row.mean()) / sigma
        jacobian = (np.eye(k) - 1 / k - np.outer(xhat, xhat) / k) / sigma
        dx[i] = jacobian.T @ dxhat[i]
    return dx
