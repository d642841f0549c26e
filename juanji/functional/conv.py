"""Convolution kernels: im2col on strided views + GEMMs (per sample, or per group over the whole batch),
and their backward.

Shapes (PyTorch's): x (N, C, H, W), weight (K, C/G, R, S), bias (K,), y (N, K, H', W') with
    H' = ⌊(H + 2P − D(R − 1) − 1) / stride⌋ + 1   (the same along W with S).
Conv1d is the same computation with H = R = 1.
"""
from __future__ import annotations

import numpy as np
from numpy.lib.stride_tricks import as_strided

from . import parallel


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


def window_view(xp: np.ndarray, kernel_size, stride, dilation, out_size) -> np.ndarray:
    """Read-only view (N, C, R, S, H', W') of a padded input: element [n, c, r, s, i, j] is
    xp[n, c, i·stride + r·dilation, j·stride + s·dilation]. No data is copied."""
    n, c, _, _ = xp.shape
    (r, s), (sh, sw), (dh, dw), (ho, wo) = kernel_size, stride, dilation, out_size
    sn, sc, sy, sx = xp.strides
    return as_strided(xp, shape=(n, c, r, s, ho, wo),
                      strides=(sn, sc, sy * dh, sx * dw, sy * sh, sx * sw), writeable=False)


def im2col(xp: np.ndarray, kernel_size, stride, dilation, out_size, out=None,
           channel_major: bool = False) -> np.ndarray:
    """The columns of a padded input, one strided copy.  Row (c, r, s) of the window of output (i, j)
    of sample n holds xp[n, c, i·stride + r·dilation, j·stride + s·dilation]:

    - sample-major (default): (N, C·R·S, H'·W'), each sample's columns contiguous, as the per-sample
      GEMMs W · cols[n] of an ungrouped convolution want them;
    - ``channel_major``: (C·R·S, N·H'·W'), so that each group of a grouped convolution is one GEMM over
      the whole batch (a depthwise layer would otherwise make N·C GEMMs of one row each).

    ``out``: an array of that shape to write into (it may be a slice of a larger batch's columns).
    A 1×1 kernel at stride 1 reads every pixel once, in order: its sample-major columns are the input
    itself, returned as a view (nothing is copied).
    """
    n, c = xp.shape[:2]
    if _is_pointwise(kernel_size, stride) and not channel_major:
        return xp.reshape(n, c, -1)
    view = window_view(xp, kernel_size, stride, dilation, out_size)
    if channel_major:
        view = view.transpose(1, 2, 3, 0, 4, 5)
    rows, p = c * kernel_size[0] * kernel_size[1], out_size[0] * out_size[1]
    shape = (rows, n * p) if channel_major else (n, rows, p)
    cols = np.empty(shape, xp.dtype) if out is None else out
    np.copyto(cols.reshape(view.shape), view)     # splitting axes: a view of ``out``, never a copy
    return cols


def _is_pointwise(kernel_size, stride) -> bool:
    return tuple(kernel_size) == (1, 1) and tuple(stride) == (1, 1)


def col2im(cols: np.ndarray, padded_shape, kernel_size, stride, dilation, out_size, out=None,
           channel_major: bool = False) -> np.ndarray:
    """Adjoint of im2col: sum every column entry back to the padded pixel it was read from.
    cols in either layout of ``im2col`` → (N, C, Hp, Wp), written into ``out`` if given.

    Loops over the R·S kernel offsets only; each iteration is one strided add of a whole
    (N, C, H', W') block, so overlapping windows accumulate correctly without np.add.at.
    """
    n, c, _, _ = padded_shape
    (r, s), (sh, sw), (dh, dw), (ho, wo) = kernel_size, stride, dilation, out_size
    if channel_major:
        blocks = cols.reshape(c, r, s, n, ho, wo).transpose(3, 0, 1, 2, 4, 5)
    else:
        blocks = cols.reshape(n, c, r, s, ho, wo)
    if out is None:
        dxp = np.zeros(padded_shape, dtype=cols.dtype)
    else:
        dxp = out
        dxp.fill(0)
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


def _memory(workspace, key, shape, dtype) -> np.ndarray:
    return np.empty(shape, dtype) if workspace is None else workspace.get(key, shape, dtype)


def conv2d(x, weight, bias=None, stride=1, padding=0, dilation=1, groups=1, workspace=None, scratch=None):
    """y = W ⋆ x + b.  x (N, C, H, W), weight (K, C/G, R, S) → y (N, K, H', W').

    Returns (y, cache) where cache holds the columns for ``conv2d_backward``.
    Without groups, one GEMM per sample writing NCHW directly: y[n] (K × H'·W') = W (K × C·R·S) ·
    cols[n] (C·R·S × H'·W'); with G groups, one GEMM per group over the samples of a chunk:
    Y[g] (K/G × N·H'·W') = W[g] (K/G × C/G·R·S) · cols[g] (C/G·R·S × N·H'·W').
    The batch is cut into one chunk per thread (``parallel.over_batch``); each pads, copies and multiplies
    its own samples.
    ``workspace`` (a ``Workspace``, e.g. the layer's own): where the columns are kept and reused from
    call to call; the columns stay valid until the next call with the same workspace.  ``scratch``: a
    ``Workspace`` for the arrays used only during this call.  Without them every array is new.
    """
    stride, dilation = _pair(stride, "stride"), _pair(dilation, "dilation")
    n, c = x.shape[:2]
    k, cg, r, s = weight.shape
    pads, out_size = _geometry(x.shape, weight.shape, stride, padding, dilation, groups)
    padded_shape = (n, c, x.shape[2] + sum(pads[0]), x.shape[3] + sum(pads[1]))
    rows, p = cg * r * s, out_size[0] * out_size[1]
    grouped = groups > 1
    # A pointwise layer's columns are its (padded) input: padded memory then lives until backward.
    pointwise = _is_pointwise((r, s), stride) and not grouped
    padded = (None if padded_shape == x.shape else
              _memory(workspace if pointwise else scratch, "padded", padded_shape, x.dtype))
    cols = None if pointwise else _memory(workspace, "cols", (rows * groups, n * p) if grouped else (n, rows, p),
                                           x.dtype)
    weights = weight.reshape(groups, k // groups, rows)
    y = np.empty((n, k, *out_size), dtype=np.result_type(x, weight))
    if grouped:
        y_kn = _memory(scratch, "gemm", (groups, k // groups, n * p), y.dtype)

    def forward(start, stop):
        xp = pad2d(x[start:stop], pads, out=None if padded is None else padded[start:stop])
        if grouped:
            chunk = im2col(xp, (r, s), stride, dilation, out_size, cols[:, start * p:stop * p], channel_major=True)
            np.matmul(weights, chunk.reshape(groups, rows, -1), out=y_kn[:, :, start * p:stop * p])
            _to_nchw(y_kn.reshape(k, n, *out_size)[:, start:stop], bias, out=y[start:stop])
            return
        chunk = im2col(xp, (r, s), stride, dilation, out_size, None if cols is None else cols[start:stop])
        np.matmul(weights[0], chunk, out=y[start:stop].reshape(stop - start, k, p))
        if bias is not None:
            y[start:stop] += bias.reshape(1, k, 1, 1)

    parallel.over_batch(n, forward, elements=n * rows * groups * p)
    if pointwise:
        cols = (x if padded is None else padded).reshape(n, c, p)
    cache = (x.shape, padded_shape, cols, weight, stride, dilation, pads, out_size, groups)
    return y, cache


def _to_nchw(y_kn: np.ndarray, bias, out: np.ndarray) -> None:
    """(K, N, H', W') view of a GEMM's output → ``out`` (N, K, H', W'), adding the bias during the copy."""
    view = y_kn.transpose(1, 0, 2, 3)
    if bias is None:
        np.copyto(out, view)
    else:
        np.add(view, bias.reshape(1, -1, 1, 1), out=out)


def _full_conv_padding(pads, kernel_size, dilation):
    """Padding of dY that turns dX into a stride-1 convolution of dY with the flipped kernel, or None
    where the forward padding exceeds the kernel's reach (then col2im is used)."""
    reach = [d * (k - 1) for k, d in zip(kernel_size, dilation)]
    full = tuple((span - before, span - after) for span, (before, after) in zip(reach, pads))
    return full if min(min(side) for side in full) >= 0 else None


def conv2d_backward(dy, cache, need_dx: bool = True, scratch=None):
    """Gradients of conv2d.  Returns (dx, dW, db).

        dW[g] = dY[g] · cols[g]ᵀ                  (dW = dY ⋆ X, contracted over N·H'·W')
        db    = Σ_{n, i, j} dY
        dX    = dY ∗ rot180(W)                    stride 1, K ≤ C: the full convolution, through conv2d
              = col2im(Wᵀ · dY)                   otherwise: scatter the columns' gradients back
    dW is summed from one partial product per chunk of the batch (one chunk per thread).
    ``scratch``: a ``Workspace`` for the arrays used only during this call (new arrays without it).
    """
    x_shape, xp_shape, cols, weight, stride, dilation, pads, out_size, groups = cache
    n, c = x_shape[:2]
    k, cg, r, s = weight.shape
    rows, p = cg * r * s, out_size[0] * out_size[1]
    grouped = groups > 1
    dy = np.ascontiguousarray(dy)
    dy_samples = dy.reshape(n, k, p)
    if grouped or k > p:            # channel-major dY (K, N·P) for GEMMs over the batch, filled chunk by
        dy_kn = _memory(scratch, "channel_major", (k, n * p), dy.dtype)   # chunk in weight_gradient
    if k > p and not grouped:       # the columns transposed: per-sample partials would outweigh them
        cols_cm = _memory(scratch, "columns_transposed", (rows, n * p), cols.dtype)

    def weight_gradient(start, stop):
        """This chunk's share of dW: Σ over its samples and pixels of dY · colsᵀ, computed as its transpose
        cols · dYᵀ, the shape OpenBLAS runs faster (C·R·S rows rather than K: 1.15–1.55× on ResNet-20's
        layers, 1.4× with 2 groups)."""
        if grouped or k > p:
            np.copyto(dy_kn.reshape(k, n, p)[:, start:stop], dy_samples[start:stop].transpose(1, 0, 2))
            dy_chunk = dy_kn[:, start * p:stop * p]
        if grouped:
            return np.matmul(cols[:, start * p:stop * p].reshape(groups, rows, -1),
                             dy_chunk.reshape(groups, k // groups, -1).transpose(0, 2, 1)).transpose(0, 2, 1)
        if k <= p:                  # (stop − start) partial products of C·R·S × K, summed
            return np.matmul(cols[start:stop], dy_samples[start:stop].transpose(0, 2, 1)).sum(axis=0).T
        np.copyto(cols_cm.reshape(rows, n, p)[:, start:stop], cols[start:stop].transpose(1, 0, 2))
        return (cols_cm[:, start * p:stop * p] @ dy_chunk.T).T

    dw = sum(parallel.over_batch(n, weight_gradient, elements=n * rows * groups * p)).reshape(weight.shape)
    db = dy.sum(axis=(0, 2, 3))
    if not need_dx:
        return None, dw, db
    # The full convolution reads K·R·S columns per input pixel, col2im writes C·R·S per output pixel:
    # the first is cheaper when the layer does not widen (K ≤ C), measured on LeNet/ResNet shapes.
    full_pads = _full_conv_padding(pads, (r, s), dilation) if stride == (1, 1) and k <= c else None
    if full_pads is not None:
        # rot180(W) with input and output channels swapped within each group: (C, K/G, R, S)
        flipped = (weight.reshape(groups, k // groups, cg, r, s)[..., ::-1, ::-1]
                   .transpose(0, 2, 1, 3, 4).reshape(c, k // groups, r, s))
        dx, _ = conv2d(dy, np.ascontiguousarray(flipped), None, 1, full_pads, dilation, groups, scratch, scratch)
        return dx, dw, db
    weights_t = weight.reshape(groups, k // groups, rows).transpose(0, 2, 1)
    dcols = _memory(scratch, "dcols", (groups, rows, n * p) if grouped else (n, rows, p), dy.dtype)
    dxp = _memory(scratch, "dpadded", xp_shape, dy.dtype) if tuple(xp_shape) != tuple(x_shape) else None
    dx = np.empty(x_shape, dtype=dy.dtype)
    (top, _), (left, _) = pads

    def input_gradient(start, stop):
        if grouped:                 # dy_kn was filled by weight_gradient, which has run on every chunk
            chunk = dcols[:, :, start * p:stop * p]
            np.matmul(weights_t, dy_kn.reshape(groups, k // groups, -1)[:, :, start * p:stop * p], out=chunk)
            chunk = chunk.reshape(groups * rows, -1)
        else:
            chunk = np.matmul(weights_t[0], dy_samples[start:stop], out=dcols[start:stop])
        padded_chunk = col2im(chunk, (stop - start, *xp_shape[1:]), (r, s), stride, dilation, out_size,
                              out=dx[start:stop] if dxp is None else dxp[start:stop], channel_major=grouped)
        if dxp is not None:
            np.copyto(dx[start:stop], padded_chunk[:, :, top:top + x_shape[2], left:left + x_shape[3]])

    parallel.over_batch(n, input_gradient, elements=n * rows * groups * p)
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
