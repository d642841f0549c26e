"""Normalisations by each sample's own statistics: layer norm, group norm and instance norm.

Each standardises rows of the input — a sample's trailing axes (layer norm), a sample's group of channels
(group norm), a sample's channel (instance norm) — then scales and shifts per element or per channel:
x̂ = (x − μ) / √(σ² + ε) with μ and the biased σ² of the row;  y = γ · x̂ + β.
All three see x as rows (N, G, J, L): N leading indices with G rows each, a row J channels of L values.
Group norm is (N, G, C/G, H·W…), instance norm (N, C, 1, H·W…), both with γ, β per channel (G, J); layer
norm is (M, 1, 1, K), γ, β per value of the row (K).  The kernels — NumPy's or the compiled row loops of
``compiled.sample_norm``, ``plan.sample_norm_kernels``' choice — keep x, μ and 1/σ for the backward, not x̂.
"""
import math
from typing import NamedTuple

import numpy as np

from . import plan
from ..runtime.threads import over_batch
from .norm import update_running_statistics


class NormCache(NamedTuple):
    """What a per-sample normalisation keeps for its backward: its ``plan`` ("numpy" or "compiled": the
    kernels its forward ran, and its backward runs; "running": x̂ came from running statistics, on NumPy's),
    x as rows (N, G, J, L), μ and 1/√(σ² + ε) of each row (N, G) ("running": each channel's, broadcast),
    γ (None: no scale), the shape of γ and β, and whether they hold a value per value of a row (layer norm)
    rather than one per channel."""
    plan: str
    x: np.ndarray
    mean: np.ndarray
    inv_std: np.ndarray
    gamma: np.ndarray | None
    affine_shape: tuple[int, ...]
    per_value: bool


def _normalise(x, rows, per_value, gamma, beta, eps, affine_shape):
    """(y, cache, μ, σ²) of x seen as ``rows`` (N, G, J, L), γ and β of ``affine_shape`` (None: 1, 0) per
    value of a row or per channel; μ and σ² of each row (N, G)."""
    x4 = np.ascontiguousarray(x).reshape(rows)
    chosen = plan.sample_norm_kernels()
    if chosen == "compiled":
        from .compiled import sample_norm as compiled
        y, mean, var = compiled.normalise(x4, gamma, beta, eps, per_value)
    else:
        y, mean, var = _normalise_rows(x4, _seen(gamma, rows, per_value), _seen(beta, rows, per_value), eps,
                                       per_value)
    inv_std = 1 / np.sqrt(var + eps)
    return y.reshape(x.shape), NormCache(chosen, x4, mean, inv_std, gamma, affine_shape, per_value), mean, var


def _seen(param, rows, per_value):
    """γ or β as NumPy's kernels broadcast it against x (N, G, J, L): (1, 1, 1, K) or (1, G, J, 1); None stays."""
    if param is None:
        return None
    n, groups, channels, length = rows
    return param.reshape((1, 1, 1, length) if per_value else (1, groups, channels, 1))


def _blocks(start, stop, x):
    """[(first, stop)] ranges of x's leading indices [start, stop), rows (N, G, J, L), of about
    ``plan.SAMPLE_NORM_BLOCK_BYTES`` each (one index at least): NumPy's kernels take a block through all of
    their passes while it is in cache."""
    step = _block_size(x)
    return [(first, min(stop, first + step)) for first in range(start, stop, step)]


def _block_size(x):
    """The leading indices of x (N, G, J, L) in a block of ``_blocks``: one at least."""
    return max(1, plan.SAMPLE_NORM_BLOCK_BYTES // max(1, x.itemsize * math.prod(x.shape[1:])))


def _normalise_rows(x, gamma, beta, eps, per_value):
    """(y, μ, σ²) of rows x (N, G, J, L) on NumPy's kernels, γ and β broadcast as ``_seen`` gives them;
    μ and σ² (N, G) in x's dtype (NaN for rows of no values).  The rows are split over the batch threads,
    and each thread's share goes block by block."""
    n, groups, channels, length = x.shape
    k = channels * length
    y = np.empty_like(x)
    mean, var = np.full((n, groups), np.nan, x.dtype), np.full((n, groups), np.nan, x.dtype)
    averaging = np.full(k, 1 / max(k, 1), x.dtype)
    if per_value:       # γ, β (K,) repeated over a block's rows (``_tiled``)
        gamma, beta = (None if p is None else _tiled(p, x, n) for p in (gamma, beta))

    def work(start, stop):
        for first, last in _blocks(start, stop, x):
            rows, out = x[first:last].reshape(-1, k), y[first:last].reshape(-1, k)
            mu = rows @ averaging                           # one BLAS call: NumPy's mean is slow on short rows
            np.subtract(rows, mu[:, None], out=out)
            sigma2 = _row_dots(out, out) / k                # Σ (x − μ)², no temporary of squares
            mean[first:last], var[first:last] = mu.reshape(-1, groups), sigma2.reshape(-1, groups)
            scale = (1 / np.sqrt(sigma2 + eps)).reshape(-1, groups, 1, 1)
            block = y[first:last]
            if gamma is not None and not per_value:
                scale = scale * gamma                       # γ/σ per (row, channel): one pass over y for both
            block *= scale
            if gamma is not None and per_value:
                block *= gamma[:last - first]
            if beta is not None:
                block += beta[:last - first] if per_value else beta

    if x.size:
        over_batch(n, work, 3 * x.size)
    return y, mean, var


def _tiled(param, x, n):
    """γ or β (K,) of a layer norm as a block of rows (B, 1, 1, K) in x's dtype, B the rows of ``_blocks``'
    largest block: NumPy's loops over a (B, K) block broadcasting a (K,) vector go K values at a time (on
    K = 64: 1.7 to 2.3 times the time of the same product with a (B, K) array)."""
    rows = min(n, _block_size(x))
    return np.broadcast_to(param.reshape(1, 1, 1, -1).astype(x.dtype), (rows, *x.shape[1:])).copy()


def _row_dots(a, b):
    """Σ a·b along the last axis of two arrays (…, L) → (…): one BLAS dot per row, no temporary of products
    (twice as fast as np.einsum on rows of 1024 values and more; on rows of 64, within 15 % of it)."""
    return np.matmul(a[..., None, :], b[..., :, None])[..., 0, 0]


def normalization_backward(dy, cache):
    """(dx, dγ, dβ) of any normalisation of this module, γ and β summed over the axes they are broadcast along:
    dβ = Σ dY, dγ = Σ dY · x̂ (None without γ), dX̂ = γ · dY, and per row
    dX = (dX̂ − mean(dX̂) − x̂ · mean(dX̂ · x̂)) / √(σ² + ε) (per-sample statistics), or per channel
    dX = dX̂ / √(σ² + ε) (running statistics)."""
    dtype = np.result_type(dy, cache.x)
    dy4 = np.ascontiguousarray(dy, dtype).reshape(cache.x.shape)
    if cache.plan == "compiled":
        from .compiled import sample_norm as compiled
        dx, dgamma, dbeta = compiled.normalise_backward(dy4, cache.x, cache.mean, cache.inv_std, cache.gamma,
                                                        cache.per_value)
    else:
        dx, dgamma, dbeta = _normalise_rows_backward(dy4, cache)
    dgamma = None if cache.gamma is None else dgamma.astype(dtype).reshape(cache.affine_shape)
    return dx.reshape(dy.shape), dgamma, dbeta.astype(dtype).reshape(cache.affine_shape)


def _normalise_rows_backward(dy, cache):
    """(dX, dγ, dβ) on NumPy's kernels, dy (N, G, J, L) like the cache's x; dγ, dβ per value (K,) or per
    channel (G, J), in float64.  Block by block (``_blocks``), from x itself as PyTorch's kernels (no pass
    writing x − μ): with S₁ = Σ dX̂ and S₂ = Σ dX̂ · x over a row, Σ dX̂ · x̂ = (S₂ − μ · S₁) / σ, and
    dX = γ/σ · dY + a · x + b per row, a = −mean(dX̂ · x̂) / σ², b = −a · μ − mean(dX̂) / σ."""
    x, per_value = cache.x, cache.per_value
    n, groups, channels, length = x.shape
    shape = (length,) if per_value else (groups, channels)
    gamma = np.ones(shape, dy.dtype) if cache.gamma is None else cache.gamma.astype(dy.dtype).reshape(shape)
    dx = np.empty_like(dy)
    tiled = _tiled(gamma, x, n) if per_value else None

    def work(start, stop):
        dgamma, dbeta = np.zeros(shape), np.zeros(shape)
        for first, last in _blocks(start, stop, x):
            part = slice(first, last)
            if per_value:
                sums = _backward_per_value(dy[part], x[part], cache.mean[part], cache.inv_std[part], gamma,
                                           tiled[:last - first], dx[part])
            else:
                sums = _backward_per_channel(dy[part], x[part], cache.mean[part], cache.inv_std[part], gamma,
                                             cache.plan == "running", dx[part])
            dgamma += sums[0]
            dbeta += sums[1]
        return dgamma, dbeta

    sums = over_batch(n, work, 4 * dy.size) if dy.size else []      # no values: no means to take
    return dx, sum((part[0] for part in sums), np.zeros(shape)), sum((part[1] for part in sums), np.zeros(shape))


def _row_terms(out, x, a, b):
    """out += a · x + b, a and b broadcast against x (B, G, J, L) per row."""
    out += np.multiply(x, a, out=np.empty_like(x))
    out += b


def _backward_per_channel(dy, x, mean, inv_std, gamma, running, out):
    """dX of a block of rows (B, G, J, L) into ``out``, γ (G, J), μ and 1/σ (B, G) (with ``running``, fixed
    statistics: dX = γ/σ · dY); returns its (dγ, dβ) (G, J) from each channel's Σ dY and Σ dY · x̂."""
    k = x[0, 0].size
    totals = dy.reshape(-1, dy.shape[3]) @ np.ones(dy.shape[3], dy.dtype)         # Σ dY per (row, channel)
    totals = totals.reshape(dy.shape[:3])
    products = (_row_dots(dy, x) - mean[:, :, None] * totals) * inv_std[:, :, None]  # Σ dY · x̂
    np.multiply(dy, (inv_std[:, :, None] * gamma)[..., None], out=out)
    if not running:
        mean_dxhat, mean_dxhat_xhat = (totals * gamma).sum(axis=2) / k, (products * gamma).sum(axis=2) / k
        a = -inv_std * inv_std * mean_dxhat_xhat
        _row_terms(out, x, a[:, :, None, None], (-a * mean - inv_std * mean_dxhat)[:, :, None, None])
    return products.sum(axis=0), totals.sum(axis=0)


def _backward_per_value(dy, x, mean, inv_std, gamma, tiled, out):
    """dX of a block of rows (B, 1, 1, K) into ``out``, γ (K,) and ``tiled`` (γ as (B, 1, 1, K)), μ and 1/σ
    (B, 1); returns its (dγ, dβ) (K,).  The sums over a row's values and over the rows are BLAS products."""
    k = len(gamma)
    rows, mean, inv_std = dy.reshape(-1, k), mean.reshape(-1), inv_std.reshape(-1)
    products = np.multiply(rows, x.reshape(-1, k), out=out.reshape(-1, k))        # dY · x, in dX's memory
    dgamma = inv_std @ products - (inv_std * mean) @ rows                           # Σ dY · (x − μ)/σ
    dbeta = np.ones(len(rows), rows.dtype) @ rows
    totals = rows @ gamma
    mean_dxhat, mean_dxhat_xhat = totals / k, (products @ gamma - mean * totals) * inv_std / k
    np.multiply(dy, tiled, out=out)
    out *= inv_std[:, None, None, None]
    a = -inv_std * inv_std * mean_dxhat_xhat
    _row_terms(out, x, a[:, None, None, None], (-a * mean - inv_std * mean_dxhat)[:, None, None, None])
    return dgamma, dbeta


def layer_norm(x, normalized_ndim, gamma=None, beta=None, eps=1e-5):
    """x (*, D₁ … D_k) normalised over its last k = ``normalized_ndim`` axes:  y = γ · x̂ + β, γ and β
    (D₁ … D_k) or None.  Returns (y, cache); the backward is ``normalization_backward``."""
    lead = x.ndim - normalized_ndim
    m, k = int(np.prod(x.shape[:lead], dtype=np.int64)), int(np.prod(x.shape[lead:], dtype=np.int64))
    return _normalise(x, (m, 1, 1, k), True, gamma, beta, eps, x.shape[lead:])[:2]


def group_norm(x, num_groups, gamma=None, beta=None, eps=1e-5):
    """x (N, C, *) normalised over each sample's ``num_groups`` groups of C/G consecutive channels (and *):
    y = γ · x̂ + β, γ and β (C,) or None.  Returns (y, cache); the backward is ``normalization_backward``."""
    n, c = x.shape[:2]
    rows = (n, num_groups, c // num_groups, int(np.prod(x.shape[2:], dtype=np.int64)))
    return _normalise(x, rows, False, gamma, beta, eps, (c,))[:2]


def instance_norm(x, gamma=None, beta=None, running_mean=None, running_var=None, use_input_stats=True,
                  momentum=0.1, eps=1e-5):
    """x (N, C, *) normalised per sample and channel over *:  y = γ · x̂ + β, γ and β (C,) or None.
    With ``use_input_stats`` μ, σ² are each (sample, channel)'s own, and running statistics where given are
    updated in place as torch: r ← (1 − momentum)·r + momentum·mean over the samples (σ² unbiased there);
    without, the running statistics normalise (x̂ = (x − r_μ) / √(r_σ² + ε)).  Returns (y, cache); the
    backward is ``normalization_backward``."""
    n, c = x.shape[:2]
    rows = (n, c, 1, int(np.prod(x.shape[2:], dtype=np.int64)))
    if not use_input_stats:
        x4 = np.ascontiguousarray(x).reshape(rows)
        mean, inv_std = (np.broadcast_to(s.astype(x.dtype), (n, c)) for s in (running_mean,
                                                                               1 / np.sqrt(running_var + eps)))
        y = (x4 - mean[:, :, None, None]) * inv_std[:, :, None, None]
        if gamma is not None:
            y *= _seen(gamma, rows, False)
        if beta is not None:
            y += _seen(beta, rows, False)
        return y.reshape(x.shape), NormCache("running", x4, mean, inv_std, gamma, (c,), False)
    y, cache, mean, var = _normalise(x, rows, False, gamma, beta, eps, (c,))
    if running_mean is not None and n:
        update_running_statistics(running_mean, running_var, mean.mean(axis=0), var.mean(axis=0),
                                  rows[3], momentum)
    return y, cache


# -- references for the tests: one row at a time, the Jacobian written out ---------------------------------------
def standardize_reference(rows, eps):
    """x̂ of rows (M, K), row by row with NumPy's mean and var."""
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
