"""Layer, group and instance norm, forward and backward, a row at a time: each row's sums in one sweep, then,
while the row is in cache, one sweep writing y (forward) or dX (backward); NumPy makes a pass over all of x
per step.

Rows: a sample's group of J channels of L values each, x (N, G, J, L), γ and β per channel (G, J) (group
norm; instance norm is G = C, J = 1); or a leading index's K values, x (M, K), γ and β per value (K,) (layer
norm).  The forward keeps μ and σ² of each row (float64) and no x̂: the backward recomputes x̂ = (x − μ)/σ
from x as it reads it, as torch does (one array written less).  Sums are float64; y and dX are computed in
x's dtype (SIMD lanes twice as wide for float32), from x − μ (a row of one value gives y = β and dX = 0
exactly, as torch).  The loops are compiled ``serial``: juanji's batch split runs a slice of the rows on each
thread, with dγ, dβ summed per slice and the slices' sums added after.
"""
from __future__ import annotations

import numpy as np

from ...runtime.threads import over_batch
from . import inline, serial

# reassociated float64 sums run in SIMD lanes; a division by 0 (σ = 0 with ε = 0) gives ±∞ as NumPy, no error
OPTIONS = dict(fastmath={"reassoc"}, error_model="numpy")


@inline(**OPTIONS)
def moments(row):
    """(μ, σ²) of a row of K values, the biased σ², in one sweep summing d = x − x₀ and d² in float64 (x₀ the
    row's first value):  μ = x₀ + Σd/K,  σ² = Σd²/K − (Σd/K)².  The shift bounds the cancellation in σ² to a
    factor of K (no value lies more than √(K − 1)·σ from μ); Σx²/K − μ² would lose a factor μ²/σ², unbounded.
    Then a second sweep over a row in cache (two-pass) costs about a tenth of the forward more."""
    k = row.shape[0]
    first = np.float64(row[0])
    total, squares = 0.0, 0.0
    for i in range(k):
        d = row[i] - first
        total += d
        squares += d * d
    mean = total / k
    return first + mean, max(squares / k - mean * mean, 0.0)


@serial(**OPTIONS)
def group_norm_forward_loop(x, gamma, beta, eps, y, mean, var):
    """x (N, G, J, L) → y:  y = γ · (x − μ) / √(σ² + ε) + β, μ and σ² of each row (n, g) (written to ``mean``,
    ``var``), γ, β of each channel (g, j): y = a·(x − μ) + β per channel, a = γ/σ."""
    n, groups, channels, length = x.shape
    for sample in range(n):
        for group in range(groups):
            mu, sigma2 = moments(x[sample, group].reshape(-1))
            mean[sample, group], var[sample, group] = mu, sigma2
            rstd, centre = 1 / np.sqrt(sigma2 + eps), x.dtype.type(mu)        # the sweep runs in x's dtype
            for j in range(channels):
                a, b = x.dtype.type(gamma[group, j] * rstd), beta[group, j]
                for i in range(length):
                    y[sample, group, j, i] = (x[sample, group, j, i] - centre) * a + b


@serial(**OPTIONS)
def group_norm_backward_loop(dy, x, mean, inv_std, gamma, dx, dgamma, dbeta):
    """dX of each row (n, g), dX̂ = γ · dY and x̂ = (x − μ) / σ:  dX = (dX̂ − mean(dX̂) − x̂ · mean(dX̂ · x̂)) / σ,
    the row's means from its channels' Σ dY and Σ dY · x̂, which are also their terms of dβ and dγ (added to
    ``dbeta``, ``dgamma``)."""
    n, groups, channels, length = x.shape
    k = channels * length
    for sample in range(n):
        for group in range(groups):
            mu, rstd = mean[sample, group], inv_std[sample, group]
            sum_dxhat, sum_dxhat_xhat = 0.0, 0.0
            for j in range(channels):
                total, products = 0.0, 0.0
                for i in range(length):
                    total += dy[sample, group, j, i]
                    products += dy[sample, group, j, i] * (x[sample, group, j, i] - mu)
                dbeta[group, j] += total
                dgamma[group, j] += products * rstd
                sum_dxhat += gamma[group, j] * total
                sum_dxhat_xhat += gamma[group, j] * products * rstd
            # the sweep runs in x's dtype; x̂ · mean(dX̂ · x̂) = (x − μ) · slope
            centre, r = x.dtype.type(mu), x.dtype.type(rstd)
            mean_dxhat, slope = x.dtype.type(sum_dxhat / k), x.dtype.type(rstd * sum_dxhat_xhat / k)
            for j in range(channels):
                g = gamma[group, j]
                for i in range(length):
                    dx[sample, group, j, i] = (g * dy[sample, group, j, i] - mean_dxhat
                                               - (x[sample, group, j, i] - centre) * slope) * r


@serial(**OPTIONS)
def layer_norm_forward_loop(x, gamma, beta, eps, y, mean, var):
    """x (M, K) → y:  y = γ · (x − μ) / √(σ² + ε) + β, μ and σ² of each row (written to ``mean``, ``var``), γ, β
    of each of the K values."""
    for row in range(x.shape[0]):
        mu, sigma2 = moments(x[row])
        mean[row], var[row] = mu, sigma2
        centre, r = x.dtype.type(mu), x.dtype.type(1 / np.sqrt(sigma2 + eps))      # the sweep runs in x's dtype
        for i in range(x.shape[1]):
            y[row, i] = (x[row, i] - centre) * r * gamma[i] + beta[i]


@serial(**OPTIONS)
def layer_norm_backward_loop(dy, x, mean, inv_std, gamma, dx, dgamma, dbeta):
    """dX of each row, dX̂ = γ · dY and x̂ = (x − μ) / σ:  dX = (dX̂ − mean(dX̂) − x̂ · mean(dX̂ · x̂)) / σ;
    dβ += dY and dγ += dY · x̂ value by value (into ``dbeta``, ``dgamma``)."""
    k = x.shape[1]
    for row in range(x.shape[0]):
        mu, rstd = mean[row], inv_std[row]
        sum_dxhat, sum_dxhat_xhat = 0.0, 0.0
        for i in range(k):
            xhat = (x[row, i] - mu) * rstd
            dbeta[i] += dy[row, i]
            dgamma[i] += dy[row, i] * xhat
            sum_dxhat += gamma[i] * dy[row, i]
            sum_dxhat_xhat += gamma[i] * dy[row, i] * xhat
        centre, r = x.dtype.type(mu), x.dtype.type(rstd)
        mean_dxhat, slope = x.dtype.type(sum_dxhat / k), x.dtype.type(rstd * sum_dxhat_xhat / k)
        for i in range(k):
            dx[row, i] = (gamma[i] * dy[row, i] - mean_dxhat - (x[row, i] - centre) * slope) * r


def _rows(x4, per_value):
    """Rows x (N, G, J, L), or an array like it, as the loops take them: (N, K) per value (G = J = 1), as they
    are per channel."""
    return x4.reshape(len(x4), x4.shape[3]) if per_value else x4


def _statistics(array, per_value):
    """μ, σ² or 1/σ of each row (N, G) as the loops take them: (N,) per value, as they are per channel."""
    return array.reshape(len(array)) if per_value else array


def _affine(param, default, x4, per_value):
    """γ or β as the loops take it: (K,) or (G, J) in x's dtype, ``default`` where there is none."""
    shape = (x4.shape[3],) if per_value else x4.shape[1:3]
    return np.full(shape, default, x4.dtype) if param is None else param.astype(x4.dtype).reshape(shape)


def normalise(x4, gamma, beta, eps, per_value):
    """(y, μ, σ²) of rows x (N, G, J, L), γ and β (None: 1, 0) per value of a row (K values) or per channel (G·J
    values): y like x, μ and the biased σ² (N, G) of each row in float64 (NaN for rows of no values)."""
    loop = layer_norm_forward_loop if per_value else group_norm_forward_loop
    gamma, beta = _affine(gamma, 1, x4, per_value), _affine(beta, 0, x4, per_value)
    y, mean, var = np.empty_like(x4), np.full(x4.shape[:2], np.nan), np.full(x4.shape[:2], np.nan)
    x, out = _rows(x4, per_value), _rows(y, per_value)
    means, variances = _statistics(mean, per_value), _statistics(var, per_value)
    if x4.size:         # the loops read each row's first value
        over_batch(len(x), lambda start, stop: loop(x[start:stop], gamma, beta, float(eps), out[start:stop],
                                                    means[start:stop], variances[start:stop]), 2 * x.size)
    return y, mean, var


def normalise_backward(dy4, x4, mean, inv_std, gamma, per_value):
    """(dX, dγ, dβ) of ``normalise``: dy shaped as x, μ and 1/√(σ² + ε) of each row (N, G) (float64), γ as
    there; dX like dy, dγ and dβ (float64) per value (K,) or per channel (G, J)."""
    loop = layer_norm_backward_loop if per_value else group_norm_backward_loop
    gamma = _affine(gamma, 1, x4, per_value)
    dx4 = np.empty_like(dy4)
    dy, x, dx = _rows(dy4, per_value), _rows(x4, per_value), _rows(dx4, per_value)
    means, inv_stds = _statistics(mean, per_value), _statistics(inv_std, per_value)

    def work(start, stop):
        dgamma, dbeta = np.zeros(gamma.shape), np.zeros(gamma.shape)
        loop(dy[start:stop], x[start:stop], means[start:stop], inv_stds[start:stop], gamma, dx[start:stop], dgamma,
             dbeta)
        return dgamma, dbeta

    sums = over_batch(len(x), work, 3 * x.size) if x.size else []     # no values: no means to take
    zeros = np.zeros(gamma.shape)
    return dx4, sum((part[0] for part in sums), zeros), sum((part[1] for part in sums), zeros)
