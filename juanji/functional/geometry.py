"""The geometry of sliding windows, shared by convolution and pooling: pairs, padding, output sizes, padded
copies and window views.

A window of kernel R with dilation D and stride S over an axis of size H padded by (P₀, P₁) has
    H' = ⌊(H + P₀ + P₁ − D(R − 1) − 1) / S⌋ + 1
outputs, the i-th reading padded positions i·S + r·D for r = 0 … R − 1.
"""
from __future__ import annotations

import numpy as np
from numpy.lib.stride_tricks import as_strided


def pair(value, name: str) -> tuple[int, int]:
    """(value, value) for an int, the two ints of a pair; TypeError naming ``name`` otherwise."""
    if type(value) is tuple and len(value) == 2 and type(value[0]) is type(value[1]) is int:
        return value        # already a pair, as layers keep theirs: asked a dozen times a LeNet-5 forward
    try:
        values = (value, value) if isinstance(value, (int, np.integer)) else tuple(value)
    except TypeError:       # not iterable (a float, None): reported below with the name
        values = ()
    if len(values) != 2 or not all(isinstance(v, (int, np.integer)) for v in values):
        raise TypeError(f"{name} must be an int or a pair of ints, got {value!r}")
    return int(values[0]), int(values[1])


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
    ph, pw = pair(padding, "padding")
    if ph < 0 or pw < 0:
        raise ValueError(f"padding must be non-negative, got {padding!r}")
    return (ph, ph), (pw, pw)


def output_size(size: int, kernel: int, stride: int = 1, padding=0, dilation: int = 1,
                ceil_mode: bool = False) -> int:
    """⌊(size + P₀ + P₁ − dilation·(kernel − 1) − 1) / stride⌋ + 1, ``padding`` an int P = P₀ = P₁ or
    (P₀, P₁).  ``ceil_mode`` (pooling) rounds up, but the last window must still start inside the input
    or its leading padding, as PyTorch."""
    before, after = (padding, padding) if isinstance(padding, (int, np.integer)) else padding
    span = size + before + after - dilation * (kernel - 1) - 1
    out = (-(-span // stride) if ceil_mode else span // stride) + 1
    if ceil_mode and (out - 1) * stride >= size + before:
        out -= 1
    return out


# The names the kernels' users know them by: the same formula for both.
conv_output_size = pool_output_size = output_size


def output_shape(spatial, kernel_size, stride, pads, dilation, ceil_mode: bool = False) -> tuple[int, int]:
    """(H', W') of ``output_size`` along both axes; ``pads`` = ((top, bottom), (left, right))."""
    return tuple(output_size(spatial[a], kernel_size[a], stride[a], pads[a], dilation[a], ceil_mode)
                 for a in range(2))


def check_window_fits(spatial, kernel_size, pads, dilation) -> None:
    """ValueError unless the (dilated) kernel fits in the padded input: at least one output."""
    padded = tuple(spatial[a] + sum(pads[a]) for a in range(2))
    reach = tuple(d * (k - 1) + 1 for d, k in zip(dilation, kernel_size))
    if padded[0] < reach[0] or padded[1] < reach[1]:
        raise ValueError(f"input of spatial size {tuple(spatial)} (padded to {padded}) is smaller than the "
                         f"{'dilated ' if tuple(dilation) != (1, 1) else ''}kernel {reach}")


def plain_3x3(kernel_size, dilation, pads) -> bool:
    """3×3, undilated, each side padded by 0 to 2: the windows of the compiled Winograd and depthwise row
    loops, whose padded buffers then hold every tile or row they read."""
    return (tuple(kernel_size) == (3, 3) and tuple(dilation) == (1, 1)
            and all(0 <= side <= 2 for pair in pads for side in pair))


def pad2d(x: np.ndarray, pads, value=0.0, out=None) -> np.ndarray:
    """Pad the last two axes of x by pads = ((top, bottom), (left, right)); no copy when all zero.
    ``out``: an array of the padded shape to write into instead of a new one."""
    (top, bottom), (left, right) = pads
    if top == bottom == left == right == 0:
        return x
    n, c, h, w = x.shape
    if out is None:
        out = np.empty((n, c, h + top + bottom, w + left + right), dtype=x.dtype)
    out[:, :, :top] = value
    out[:, :, top + h:] = value
    out[:, :, top:top + h, :left] = value
    out[:, :, top:top + h, left + w:] = value
    out[:, :, top:top + h, left:left + w] = x
    return out


def unpad2d(xp: np.ndarray, pads) -> np.ndarray:
    """The view of a padded (N, C, Hp, Wp) array without its padding: the inverse of ``pad2d``."""
    (top, bottom), (left, right) = pads
    return xp[:, :, top:xp.shape[2] - bottom, left:xp.shape[3] - right]


def window_view(xp: np.ndarray, kernel_size, stride, dilation, out_size) -> np.ndarray:
    """Read-only view (N, C, R, S, H', W') of a padded input: element [n, c, r, s, i, j] is
    xp[n, c, i·stride + r·dilation, j·stride + s·dilation]. No data is copied."""
    n, c, _, _ = xp.shape
    (r, s), (sh, sw), (dh, dw), (ho, wo) = kernel_size, stride, dilation, out_size
    sn, sc, sy, sx = xp.strides
    return as_strided(xp, shape=(n, c, r, s, ho, wo),
                      strides=(sn, sc, sy * dh, sx * dw, sy * sh, sx * sw), writeable=False)


def window_at(xp: np.ndarray, offset, stride, dilation, out_size) -> np.ndarray:
    """The (N, C, H', W') strided slice of xp that kernel offset (r, s) reads for every output: element
    [n, c, i, j] is xp[n, c, i·stride + r·dilation, j·stride + s·dilation].  Writeable, as xp."""
    (r, s), (sh, sw), (dh, dw), (ho, wo) = offset, stride, dilation, out_size
    return xp[:, :, r * dh:r * dh + sh * (ho - 1) + 1:sh, s * dw:s * dw + sw * (wo - 1) + 1:sw]


def adaptive_bins(size: int, out: int) -> list[tuple[int, int]]:
    """PyTorch's adaptive bins: bin i covers [⌊i·size/out⌋, ⌈(i+1)·size/out⌉)."""
    return [(i * size // out, -(-(i + 1) * size // out)) for i in range(out)]
