"""Pooling kernels: max pooling (and its indices), max unpooling, average and adaptive average pooling, with their
backward.  One-dimensional pooling is the same computation with H = 1 (``juanji.nn.pooling1d``).

x (N, C, H, W) → y (N, C, H', W'),  H' = ⌊(H + 2P − D(k − 1) − 1) / s⌋ + 1  (⌈…⌉ with ceil_mode, where
the last window must still start inside the input or its left padding, as PyTorch: ``geometry.output_size``).
Loops run over the k×k window offsets, never over pixels; each step handles whole arrays.
"""
from __future__ import annotations

import numpy as np

from .plan import PoolPlan, plan_max_pool
from ..runtime.threads import over_batch
from .geometry import adaptive_bins, output_shape, pad2d, pair, unpad2d, window_at, window_view


def pool_geometry(shape, kernel_size, stride, padding, dilation, ceil_mode):
    """(kernel_size, stride, dilation, pads ((top, bottom), (left, right)), out (H', W')): the pairs the kernels
    work with for an input of ``shape`` (N, C, H, W), which must fit one window (``geometry.check_window_fits``)."""
    kernel_size = pair(kernel_size, "kernel_size")
    stride = kernel_size if stride is None else pair(stride, "stride")
    padding, dilation = pair(padding, "padding"), pair(dilation, "dilation")
    out = output_shape(shape[2:], kernel_size, stride, ((padding[0],) * 2, (padding[1],) * 2), dilation, ceil_mode)
    # ceil_mode may let the last window run past the right padding: pad further, to cover it.
    pads = tuple((padding[a], max(padding[a], (out[a] - 1) * stride[a] + dilation[a] * (kernel_size[a] - 1)
                                  + 1 - shape[2 + a] - padding[a])) for a in range(2))
    return kernel_size, stride, dilation, pads, out


def _window_planes(xp, kernel_size, stride, dilation, out):
    """(R·S, N, C, H', W') contiguous copy: plane i·S + j holds what window offset (i, j) reads.

    One strided copy; after it every comparison runs on contiguous memory, which is several times
    faster than working on the strided views."""
    planes = window_view(xp, kernel_size, stride, dilation, out).transpose(2, 3, 0, 1, 4, 5)
    return np.ascontiguousarray(planes).reshape(planes.shape[0] * planes.shape[1], *planes.shape[2:])


def max_pool2d_plan(x_shape, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False) -> PoolPlan:
    """The kernels ``max_pool2d`` runs on an input of ``x_shape`` with these arguments (``plan_max_pool``'s)."""
    return plan_max_pool(x_shape, *pool_geometry(x_shape, kernel_size, stride, padding, dilation, ceil_mode))


def max_pool2d(x, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False, plan=None):
    """y = max over each window.  Returns (y, cache); padding counts as −∞ (never the max).
    Chunks of the batch run on their own threads (``over_batch``).  ``plan``: the kernels to run (a
    ``plan.PoolPlan``), by default ``plan.plan_max_pool``'s choice; the cache keeps it for the backward."""
    geometry = pool_geometry(x.shape, kernel_size, stride, padding, dilation, ceil_mode)
    return max_pool2d_windows(x, geometry, plan or plan_max_pool(x.shape, *geometry))


def max_pool2d_windows(x, geometry, plan: PoolPlan):
    """``max_pool2d`` on x's ``pool_geometry`` and plan, derived once: a layer keeps both per input shape."""
    kernel_size, stride, dilation, pads, out = geometry
    n, c = x.shape[:2]
    windows = kernel_size[0] * kernel_size[1]
    y = np.empty((n, c, *out), dtype=x.dtype)
    argmax = np.empty(y.shape, dtype=np.uint8 if windows < 256 else np.int32)

    def pool(start, stop):
        planes = _window_planes(pad2d(x[start:stop], pads, value=-np.inf), kernel_size, stride, dilation, out)
        best, where = y[start:stop], argmax[start:stop]
        np.copyto(best, planes[0])
        where.fill(0)
        for offset in range(1, windows):
            # strictly greater: on ties the first offset in row-major window order wins, as PyTorch.
            # Arithmetic select (argmax += better·(offset − argmax)) instead of np.where: no masked writes.
            better = planes[offset] > best
            np.maximum(best, planes[offset], out=best)
            where += better * (offset - where).astype(where.dtype)

    if plan.forward == "compiled":
        from .compiled import pool as compiled
        compiled.max_pool2d(x, y, argmax, kernel_size, stride, dilation, pads)
    else:
        over_batch(n, pool, elements=y.size * (windows + 1))
    return y, (x.shape, plan, argmax, kernel_size, stride, dilation, pads, out)


def max_pool2d_backward(dy, cache):
    """dX routes each dY to the arg-max of its window (one position per window, ties included);
    overlapping windows add up.  Runs the backward of the plan the forward kept."""
    x_shape, plan, argmax, kernel_size, stride, dilation, pads, out = cache
    if plan.backward == "compiled":
        from .compiled import pool as compiled
        return compiled.max_pool2d_backward(dy, argmax, x_shape, kernel_size, stride, dilation, pads)
    # "writes": windows that tile the input exactly (the usual 2×2, stride 2) touch each cell once, so plain
    # writes into an uninitialised buffer suffice; "masks": windows overlap or leave gaps, accumulate into zeros.
    tiles = plan.backward == "writes"
    padded = (*x_shape[:2], *(size + sum(pad) for size, pad in zip(x_shape[2:], pads)))
    dxp = np.empty(padded, dtype=dy.dtype)

    def route(start, stop):
        chunk = dxp[start:stop]
        if not tiles:
            chunk.fill(0)
        for i in range(kernel_size[0]):
            for j in range(kernel_size[1]):
                routed = dy[start:stop] * (argmax[start:stop] == i * kernel_size[1] + j)
                window = window_at(chunk, (i, j), stride, dilation, out)
                if tiles:
                    window[...] = routed
                else:
                    window += routed

    over_batch(dy.shape[0], route, elements=dxp.size * 2)
    return np.ascontiguousarray(unpad2d(dxp, pads))


def _window_sum(xp, kernel_size, stride, out):
    total = window_at(xp, (0, 0), stride, (1, 1), out).copy()
    for i in range(kernel_size[0]):
        for j in range(kernel_size[1]):
            if i or j:
                total += window_at(xp, (i, j), stride, (1, 1), out)
    return total


def avg_pool2d(x, kernel_size, stride=None, padding=0, ceil_mode=False, count_include_pad=True,
               divisor_override=None):
    """y = mean over each window (torch.nn.functional.avg_pool2d's arguments).  Returns (y, cache).

    The divisor of each window is the number of its cells inside the input (or inside the input plus its
    declared padding when ``count_include_pad``), never counting the extra cells ceil_mode adds — as
    PyTorch. It is computed by the same window sum applied to a mask of the counted cells.
    ``divisor_override`` (a nonzero int): every window's sum is divided by it instead.
    """
    kernel_size, stride, _, pads, out = pool_geometry(x.shape, kernel_size, stride, padding, 1,
                                                      ceil_mode)
    xp = pad2d(x, pads)
    if divisor_override is not None:
        divisor = x.dtype.type(divisor_override)
        return _window_sum(xp, kernel_size, stride, out) / divisor, (x.shape, xp.shape, divisor, kernel_size,
                                                                       stride, pads, out)
    counted = np.zeros((1, 1) + xp.shape[2:], dtype=x.dtype)
    (top, _), (left, _) = pads
    h, w = x.shape[2:]
    pad_h, pad_w = pair(padding, "padding") if count_include_pad else (0, 0)
    counted[:, :, top - pad_h:top + h + pad_h, left - pad_w:left + w + pad_w] = 1
    divisor = _window_sum(counted, kernel_size, stride, out)
    y = _window_sum(xp, kernel_size, stride, out) / divisor
    return y, (x.shape, xp.shape, divisor, kernel_size, stride, pads, out)


def avg_pool2d_backward(dy, cache):
    """dX: each dY is split evenly over the cells of its window (dY / divisor to each); overlaps add up."""
    x_shape, xp_shape, divisor, kernel_size, stride, pads, out = cache
    share = dy / divisor
    dxp = np.zeros(xp_shape, dtype=dy.dtype)
    for i in range(kernel_size[0]):
        for j in range(kernel_size[1]):
            window_at(dxp, (i, j), stride, (1, 1), out)[...] += share
    return np.ascontiguousarray(unpad2d(dxp, pads))


def adaptive_matrix(size: int, out: int, dtype) -> np.ndarray:
    """(out, size): row i averages PyTorch's adaptive bin i, 1/|bin| on its cells, 0 elsewhere."""
    bins = np.array(adaptive_bins(size, out)).reshape(out, 2)
    cells = np.arange(size)
    inside = (cells >= bins[:, :1]) & (cells < bins[:, 1:])
    return (inside / (bins[:, 1:] - bins[:, :1])).astype(dtype)


def adaptive_avg_pool2d(x, output_size):
    """Average over PyTorch's adaptive bins, x (N, C, H, W) → y (N, C, h, w): the mean of a rectangle is separable,
    y = A_h · x · A_wᵀ with the (h, H) and (w, W) averaging matrices of ``adaptive_matrix`` (no loop at all); one
    bin (global average pooling) is the plain mean.  Returns (y, cache)."""
    oh, ow = pair(output_size, "output_size")
    n, c, h, w = x.shape
    if min(oh, ow, h, w) <= 0:
        raise ValueError(f"adaptive_avg_pool2d: cannot pool a {h}×{w} input into {oh}×{ow} bins")
    if (oh, ow) == (1, 1):
        return x.mean(axis=(2, 3), keepdims=True), (x.shape, None, None)
    rows, cols = adaptive_matrix(h, oh, x.dtype), adaptive_matrix(w, ow, x.dtype)
    return rows @ x @ cols.T, (x.shape, rows, cols)


def adaptive_avg_pool2d_backward(dy, cache):
    """dX = A_hᵀ · dY · A_w: each output's gradient spread evenly over its bin (overlapping bins add up);
    one bin: dY / (H·W) everywhere."""
    x_shape, rows, cols = cache
    if rows is None:
        return np.broadcast_to(dy / (x_shape[2] * x_shape[3]), x_shape).copy()
    return rows.T @ dy @ cols


def max_pool2d_indices(cache) -> np.ndarray:
    """PyTorch's ``return_indices``: for each output of ``max_pool2d`` (from its cache), the flat index
    row · W + column of its maximum in its (unpadded) input plane, int64 (N, C, H', W')."""
    x_shape, _, argmax, kernel_size, stride, dilation, pads, out = cache
    (top, _), (left, _) = pads
    offset_row, offset_col = np.divmod(argmax.astype(np.int64), kernel_size[1])
    rows = np.arange(out[0]).reshape(-1, 1) * stride[0] + offset_row * dilation[0] - top
    cols = np.arange(out[1]) * stride[1] + offset_col * dilation[1] - left
    return rows * x_shape[3] + cols


def unpool_output_size(in_size, kernel_size, stride=None, padding=0, output_size=None) -> tuple[int, ...]:
    """MaxUnpool's output size, PyTorch's ``_unpool_output_size``: (in − 1)·stride − 2·padding + kernel along each
    axis, or ``output_size`` (optionally led by N, C), which must lie strictly within stride of that."""
    dims = len(in_size)
    default = tuple((in_size[a] - 1) * stride[a] + kernel_size[a] - 2 * padding[a] for a in range(dims))
    if output_size is None:
        return default
    size = tuple(int(v) for v in output_size)
    if len(size) == dims + 2:
        size = size[2:]
    if len(size) != dims:
        raise ValueError(f"output_size should be a sequence containing {dims} or {dims + 2} elements, but it has a "
                         f"length of '{len(output_size)}'")
    for a in range(dims):
        if not default[a] - stride[a] < size[a] < default[a] + stride[a]:
            raise ValueError(f"invalid output_size {size} (dim {a} must be between {default[a] - stride[a]} and "
                             f"{default[a] + stride[a]}, exclusive)")
    return size


def max_unpool2d(x, indices, output_size):
    """The partial inverse of max pooling: y (N, C, H, W) zero except y.flat_plane[indices] = x.
    x and indices (N, C, h, w), indices flat per plane (row · W + column) as ``max_pool2d_indices`` gives them;
    where two inputs name one cell the later (in row-major order) is kept, as PyTorch.  Returns (y, cache)."""
    n, c = x.shape[:2]
    h, w = output_size
    flat = indices.reshape(n, c, x.shape[2] * x.shape[3])        # not -1: N may be 0
    if flat.size and (flat.min() < 0 or flat.max() >= h * w):
        raise ValueError(f"max_unpool2d: an index in {flat.min()}…{flat.max()} is outside an output plane of "
                         f"{h}×{w} = {h * w} cells")
    y = np.zeros((n, c, h * w), dtype=x.dtype)
    np.put_along_axis(y, flat, x.reshape(flat.shape), axis=2)
    return y.reshape(n, c, h, w), indices


def max_unpool2d_backward(dy, cache):
    """dX = dY at the indices (a gather: every input reads the cell it was put into).  As torch's: where two inputs
    name one cell, both read its gradient, though the forward kept only the later."""
    indices = cache
    n, c, h, w = indices.shape
    flat = np.take_along_axis(dy.reshape(n, c, dy.shape[2] * dy.shape[3]), indices.reshape(n, c, h * w), axis=2)
    return flat.reshape(indices.shape)


def adaptive_avg_pool2d_reference(x, output_size):
    """Slow adaptive average pooling, a loop over the output cells, each the mean of its bin; for tests only."""
    oh, ow = pair(output_size, "output_size")
    y = np.empty(x.shape[:2] + (oh, ow), dtype=x.dtype)
    for i, (h0, h1) in enumerate(adaptive_bins(x.shape[2], oh)):
        for j, (w0, w1) in enumerate(adaptive_bins(x.shape[3], ow)):
            y[:, :, i, j] = x[:, :, h0:h1, w0:w1].mean(axis=(2, 3))
    return y


def max_pool2d_reference(x, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False):
    """Slow max pooling with explicit loops over output cells; for tests only."""
    kernel_size, stride, dilation, pads, (ho, wo) = pool_geometry(x.shape, kernel_size, stride,
                                                                  padding, dilation, ceil_mode)
    xp = pad2d(x, pads, value=-np.inf)
    y = np.empty(x.shape[:2] + (ho, wo), dtype=x.dtype)
    for i in range(ho):
        for j in range(wo):
            rows = i * stride[0] + dilation[0] * np.arange(kernel_size[0])
            cols = j * stride[1] + dilation[1] * np.arange(kernel_size[1])
            y[:, :, i, j] = xp[:, :, rows][:, :, :, cols].max(axis=(2, 3))
    return y


def max_pool2d_backward_reference(dy, x, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False):
    """Slow dX of max pooling with explicit loops over output cells; for tests only.  dY[n, c, i, j] goes
    to the first maximum (in row-major window order, as PyTorch) of the window of output (i, j)."""
    kernel_size, stride, dilation, pads, (ho, wo) = pool_geometry(x.shape, kernel_size, stride,
                                                                  padding, dilation, ceil_mode)
    xp = pad2d(x, pads, value=-np.inf)
    dxp = np.zeros(xp.shape, dtype=dy.dtype)
    samples, channels = np.indices(x.shape[:2])
    for i in range(ho):
        for j in range(wo):
            rows = i * stride[0] + dilation[0] * np.arange(kernel_size[0])
            cols = j * stride[1] + dilation[1] * np.arange(kernel_size[1])
            first = xp[:, :, rows][:, :, :, cols].reshape(*x.shape[:2], -1).argmax(axis=2)
            r, s = np.divmod(first, kernel_size[1])
            np.add.at(dxp, (samples, channels, rows[r], cols[s]), dy[:, :, i, j])
    return unpad2d(dxp, pads).copy()


def avg_pool2d_backward_reference(dy, x_shape, kernel_size, stride=None, padding=0, ceil_mode=False,
                                  count_include_pad=True, divisor_override=None):
    """Slow dX of average pooling with explicit loops over output cells; for tests only.  dY[n, c, i, j]
    divided by its window's count goes to every input cell of the window; the count is the window's cells
    inside the input, or inside the input and its declared padding when ``count_include_pad`` (as PyTorch),
    or ``divisor_override``."""
    n, c, h, w = x_shape
    kernel_size, stride, _, _, (ho, wo) = pool_geometry(x_shape, kernel_size, stride, padding, 1, ceil_mode)
    pad_h, pad_w = pair(padding, "padding")
    dx = np.zeros(x_shape, dtype=dy.dtype)
    for i in range(ho):
        for j in range(wo):
            top, left = i * stride[0] - pad_h, j * stride[1] - pad_w     # in input coordinates
            bottom, right = top + kernel_size[0], left + kernel_size[1]
            inside = (slice(max(top, 0), min(bottom, h)), slice(max(left, 0), min(right, w)))
            if divisor_override is not None:
                count = divisor_override
            elif count_include_pad:
                count = (min(bottom, h + pad_h) - top) * (min(right, w + pad_w) - left)
            else:
                count = (inside[0].stop - inside[0].start) * (inside[1].stop - inside[1].start)
            dx[:, :, inside[0], inside[1]] += dy[:, :, i, j, None, None] / count
    return dx
