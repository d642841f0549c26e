"""Local response normalisation across channels (AlexNet's), as ``torch.nn.functional.local_response_norm``.

x (N, C, *) → y of x's shape:  y_c = x_c / s_c^β,  s_c = k + α/n · Σ_{c' ∈ W(c)} x_{c'}²,
W(c) = [c − ⌊n/2⌋, c + ⌊(n − 1)/2⌋] (channels outside [0, C) count as zeros; the sum is divided by n
however many of its channels exist, as torch's zero-padded average).
"""
from typing import NamedTuple

import numpy as np


class LocalResponseNormCache(NamedTuple):
    """x, the denominators' base s and s^−β (each of x's shape), and the layer's size, α, β."""
    x: np.ndarray
    base: np.ndarray
    scale: np.ndarray
    size: int
    alpha: float
    beta: float


def window_sum(a, before, after):
    """Σ_{o = −before … after} a[:, c + o] along the channel axis 1, zero outside [0, C); one shifted sum per
    offset of the window."""
    out = np.zeros_like(a)
    c = a.shape[1]
    for offset in range(-before, after + 1):
        lo, hi = max(0, -offset), min(c, c - offset)      # output channels whose c + offset exists
        if lo < hi:
            out[:, lo:hi] += a[:, lo + offset:hi + offset]
    return out


def local_response_norm(x, size, alpha=1e-4, beta=0.75, k=1.0):
    """Returns (y, cache):  y = x · s^−β, s = k + α/n · (window sum of x² over ``size`` = n channels)."""
    base = window_sum(x * x, size // 2, (size - 1) // 2)
    base *= alpha / size
    base += k
    scale = base ** -beta
    return x * scale, LocalResponseNormCache(x, base, scale, size, alpha, beta)


def local_response_norm_backward(dy, cache):
    """dX_j = dY_j · s_j^−β − (2αβ/n) · x_j · Σ_{c : j ∈ W(c)} dY_c · x_c · s_c^(−β−1), the transposed window
    W'(j) = [j − ⌊(n − 1)/2⌋, j + ⌊n/2⌋]."""
    x, base, scale, size, alpha, beta = cache
    t = dy * x
    t *= scale
    t /= base
    dx = window_sum(t, (size - 1) // 2, size // 2)
    dx *= x
    dx *= -2 * alpha * beta / size
    dx += dy * scale
    return dx


# -- references for the tests: every channel's window written out ---------------------------------------------
def local_response_norm_reference(x, size, alpha=1e-4, beta=0.75, k=1.0):
    """y channel by channel, each window summed explicitly."""
    c = x.shape[1]
    y = np.empty_like(x)
    for channel in range(c):
        window = range(max(0, channel - size // 2), min(c, channel + (size - 1) // 2 + 1))
        s = k + alpha / size * sum(x[:, j] ** 2 for j in window)
        y[:, channel] = x[:, channel] / s ** beta
    return y


def local_response_norm_backward_reference(dy, x, size, alpha=1e-4, beta=0.75, k=1.0):
    """dX_j = Σ_c dY_c · ∂y_c/∂x_j over the channels c whose window holds j:
    ∂y_c/∂x_j = [j = c] · s_c^−β − β · x_c · s_c^(−β−1) · 2α/n · x_j."""
    c = x.shape[1]
    dx = np.zeros_like(x)
    for channel in range(c):
        window = range(max(0, channel - size // 2), min(c, channel + (size - 1) // 2 + 1))
        s = k + alpha / size * sum(x[:, j] ** 2 for j in window)
        dx[:, channel] += dy[:, channel] * s ** -beta
        for j in window:
            dx[:, j] -= dy[:, channel] * beta * x[:, channel] * s ** (-beta - 1) * 2 * alpha / size * x[:, j]
    return dx
