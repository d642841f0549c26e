"""Convolution kernels: im2col on strided views + one batched GEMM, and their backward.

Shapes (PyTorch's): x (N, C, H, W), weight (K, C/G, R, S), bias (K,), y (N, K, H', W') with
    H' = ⌊(H + 2P − D(R − 1) − 1) / stride⌋ + 1   (the same along W with S).
Conv1d is the same computation with H = R = 1.
"""
from __future__ import annotations

import numpy as np
from numpy.lib.stride_tricks import as_strided


def _pair(value, name: str) -> tuple[int, int]:
    try:
        pair = (value, value) if isinstance(value, (int, np.integer)) else tuple(value)
    except TypeError:       # not iterable (a float, None): reported below with the name
        pair = ()
    if len(pair) != 2 or not all(isinstance(v, (int, np.integer)) for v in pair):
        raise TypeError(f"{name} must be an int or a pair of ints, got {value!r}")
    return int(pair[0]), int(pair[1])


def conv_output_size(size: int, kernel: int, stride: int = 1, padding: int = 0,
                     dilation: int = 1) -> int:
    """⌊(size + 2·padding − dilation·(kernel − 1) − 1) / stride⌋ + 1"""
    return (size + 2 * padding - dilation * (kernel - 1) - 1) // stride + 1


def same_padding(kernel: int, dilation: int = 1) -> tuple[int, int]:
    """(before, after) padding keeping the size at stride 1; the extra pixel of an even kernel goes
    after, as PyTorch's padding='same'."""
    total = dilation * (kernel - 1)
    return total // 2, total - total // 2


def resolve_padding(padding, kernel_size: tuple[int, int], dilation: tuple[int, int]):
    """Turn a PyTorch-style ``padding`` (int, pair, 'same', 'valid') into ((top, bottom), (left, right))."""
    if isinstance(padding, str):
        if padding == "valid":
            return (0, 0), (0, 0)
        if padding == "same":
            return tuple(same_padding(k, d) for k, d in zip(kernel_size, dilation))
        raise ValueError(f"padding must be an int, a pair, 'same' or 'valid', got {padding!r}")
    if isinstance(padding, tuple) and all(isinstance(side, tuple) for side in padding):
        return padding      # already resolved: ((top, bottom), (left, right))
    ph, pw = _pair(padding, "padding")
    if ph < 0 or pw < 0:
        raise ValueError(f"padding must be non-negative, got {padding!r}")
    return (ph, ph), (pw, pw)


def pad2d(x: np.ndarray, pads, value=0.0) -> np.ndarray:
    """Pad the last two axes of x by pads = ((top, bottom), (left, right)); no copy when all zero."""
    (top, bottom), (left, right) = pads
    if top == bottom == left == right == 0:
        return x
    n, c, h, w = x.shape
    out = np.full((n, c, h + top + bottom, w + left + right), value, dtype=x.dtype)
    out[:, :, top:top + h, left:left + w] = x
    return out


def window_view(xp: np.ndarray, kernel_size, stride, dilation, out_size) -> np.ndarray:
    """Read-only view (N, C, R, S, H', W') of a padded input: element [n, c, r, s, i, j] is
    xp[n, c, i·stride + r·dilation, j·stride + s·dilation]. No data is copied."""
    n, c, _, _ = xp.shape
    (r, s), (sh, sw), (dh, dw), (ho, wo) = kernel_size, stride, dilation, out_size
    sn, sc, sy, sx = xp.strides
    return as_strided(xp, shape=(n, c, r, s, ho, wo),
                      strides=(sn, sc, sy * dh, sx * dw, sy * sh, sx * sw), writeable=False)


def im2col(xp: np.ndarray, kernel_size, stride, dilation, out_size) -> np.ndarray:
    """Columns (N, C·R·S, H'·W'), one strided copy: the layout the per-sample GEMM W·cols wants."""
    n, c = xp.shape[:2]
    view = window_view(xp, kernel_size, stride, dilation, out_size)
    cols = np.empty(view.shape, dtype=xp.dtype)
    np.copyto(cols, view)
    return cols.reshape(n, c * kernel_size[0] * kernel_size[1], out_size[0] * out_size[1])


def col2im(cols: np.ndarray, padded_shape, kernel_size, stride, dilation, out_size) -> np.ndarray:
    """Adjoint of im2col: sum every column entry back to the padded pixel it was read from.

    Loops over the R·S kernel offsets only; each iteration is one strided add of a whole
    (N, C, H', W') block, so overlapping windows accumulate correctly without np.add.at.
    """
    n, c, hp, wp = padded_shape
    (r, s), (sh, sw), (dh, dw), (ho, wo) = kernel_size, stride, dilation, out_size
    blocks = cols.reshape(n, c, r, s, ho, wo)
    dxp = np.zeros(padded_shape, dtype=cols.dtype)
    for i in range(r):
        for j in range(s):
            dxp[:, :, i * dh:i * dh + sh * (ho - 1) + 1:sh,
                j * dw:j * dw + sw * (wo - 1) + 1:sw] += blocks[:, :, i, j]
    return dxp


def _geometry(x_shape, w_shape, stride, padding, dilation, groups):
    n, c, h, w = x_shape
    k, cg, r, s = w_shape
    pads = resolve_padding(padding, (r, s), dilation)
    ho = (h + sum(pads[0]) - dilation[0] * (r - 1) - 1) // stride[0] + 1
    wo = (w + sum(pads[1]) - dilation[1] * (s - 1) - 1) // stride[1] + 1
    return pads, (ho, wo)


def conv2d(x, weight, bias=None, stride=1, padding=0, dilation=1, groups=1):
    """y = W ⋆ x + b.  x (N, C, H, W), weight (K, C/G, R, S) → y (N, K, H', W').

    Returns (y, cache) where cache holds the columns for ``conv2d_backward``.
    Each of the G groups is one batched GEMM over the N samples:
    y[n, g] = W[g] (K/G × C/G·R·S) · cols[n, g] (C/G·R·S × H'·W').
    """
    stride, dilation = _pair(stride, "stride"), _pair(dilation, "dilation")
    n = x.shape[0]
    k, cg, r, s = weight.shape
    pads, out_size = _geometry(x.shape, weight.shape, stride, padding, dilation, groups)
    xp = pad2d(x, pads)
    cols = im2col(xp, (r, s), stride, dilation, out_size)             # (N, C·R·S, P)
    p = out_size[0] * out_size[1]
    cols_g = cols.reshape(n, groups, cg * r * s, p)
    w_g = weight.reshape(groups, k // groups, cg * r * s)
    y = np.matmul(w_g, cols_g).reshape(n, k, *out_size)               # (N, G, K/G, P) → NCHW
    if bias is not None:
        y += bias.reshape(1, k, 1, 1)
    cache = (x.shape, xp.shape, cols_g, weight, stride, dilation, pads, out_size, groups)
    return y, cache


def conv2d_backward(dy, cache, need_dx: bool = True):
    """Gradients of conv2d.  Returns (dx, dW, db).

        dW[g] = Σ_n dY[n, g] · cols[n, g]ᵀ        (dW = dY ⋆ X)
        db    = Σ_{n, i, j} dY
        dX    = col2im(Wᵀ · dY)                   (dX = dY ∗ rot180(W), the full convolution)
    """
    x_shape, xp_shape, cols_g, weight, stride, dilation, pads, out_size, groups = cache
    n = x_shape[0]
    k, cg, r, s = weight.shape
    p = out_size[0] * out_size[1]
    dy_g = dy.reshape(n, groups, k // groups, p)
    dw = np.matmul(dy_g, cols_g.transpose(0, 1, 3, 2)).sum(axis=0).reshape(weight.shape)
    db = dy.sum(axis=(0, 2, 3))
    dx = None
    if need_dx:
        w_g = weight.reshape(groups, k // groups, cg * r * s)
        dcols = np.matmul(w_g.transpose(0, 2, 1), dy_g)               # (N, G, C/G·R·S, P)
        dxp = col2im(dcols.reshape(n, groups * cg * r * s, p), xp_shape, (r, s), stride,
                     dilation, out_size)
        (top, _), (left, _) = pads
        dx = dxp[:, :, top:top + x_shape[2], left:left + x_shape[3]]
        if dxp.shape != tuple(x_shape):
            dx = np.ascontiguousarray(dx)
    return dx, dw, db


def conv2d_reference(x, weight, bias=None, stride=1, padding=0, dilation=1, groups=1):
    """Slow, obviously correct conv2d with explicit loops over outputs; for tests only."""
    stride, dilation = _pair(stride, "stride"), _pair(dilation, "dilation")
    n, c, h, w = x.shape
    k, cg, r, s = weight.shape
    pads, (ho, wo) = _geometry(x.shape, weight.shape, stride, padding, dilation, groups)
    xp = pad2d(x, pads)
    kg = k // groups
    y = np.zeros((n, k, ho, wo), dtype=x.dtype)
    for out_channel in range(k):
        g = out_channel // kg
        for i in range(ho):
            for j in range(wo):
                rows = i * stride[0] + dilation[0] * np.arange(r)
                cols = j * stride[1] + dilation[1] * np.arange(s)
                patch = xp[:, g * cg:(g + 1) * cg][:, :, rows][:, :, :, cols]    # (N, C/G, R, S)
                y[:, out_channel, i, j] = (patch * weight[out_channel]).sum(axis=(1, 2, 3))
        if bias is not None:
            y[:, out_channel] += bias[out_channel]
    return y
