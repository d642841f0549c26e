"""Convolution kernels: im2col on strided views + GEMMs (per sample, or per group over the whole batch),
and their backward.

Shapes (PyTorch's): x (N, C, H, W), weight (K, C/G, R, S), bias (K,), y (N, K, H', W') with
    H' = ⌊(H + 2P − D(R − 1) − 1) / stride⌋ + 1   (the same along W with S).
Conv1d is the same computation with H = R = 1.
"""
from __future__ import annotations

import math

import numpy as np

from ..runtime.threads import over_batch
from ..runtime.workspace import array_in
from .geometry import output_shape, pad2d, pair, resolve_padding, unpad2d, window_at, window_view
from .plan import ConvPlan, full_convolution_padding, input_grad_method, numpy_plan, plan_conv, weight_grad_method


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
    itself, returned as a view where no ``out`` is given (nothing is copied).
    """
    n, c = xp.shape[:2]
    if _is_pointwise(kernel_size, stride) and not channel_major and out is None:
        return xp.reshape(n, c, xp.shape[2] * xp.shape[3])
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
           channel_major: bool = False, compiled: bool = False) -> np.ndarray:
    """Adjoint of im2col: sum every column entry back to the padded pixel it was read from.
    cols in either layout of ``im2col`` → (N, C, Hp, Wp), written into ``out`` if given.

    Loops over the R·S kernel offsets only; each iteration is one strided add of a whole
    (N, C, H', W') block, so overlapping windows accumulate correctly without np.add.at.
    ``compiled`` (sample-major columns only): the same sums by the compiled loops, plane by plane.
    """
    if compiled:
        from .compiled import columns       # the R·S passes plane by plane, while it is in cache
        return columns.col2im(cols, padded_shape, kernel_size, stride, dilation, out_size, out)
    n, c, _, _ = padded_shape
    (r, s), (ho, wo) = kernel_size, out_size
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
            window_at(dxp, (i, j), stride, dilation, out_size)[...] += blocks[:, :, i, j]
    return dxp


def _geometry(x_shape, w_shape, stride, padding, dilation):
    """((top, bottom), (left, right)) padding and (H', W') of a convolution."""
    pads = resolve_padding(padding, w_shape[2:], dilation)
    return pads, output_shape(x_shape[2:], w_shape[2:], stride, pads, dilation)


def conv2d(x, weight, bias=None, stride=1, padding=0, dilation=1, groups=1, workspace=None, scratch=None,
           plan: ConvPlan | None = None):
    """y = W ⋆ x + b.  x (N, C, H, W), weight (K, C/G, R, S) → y (N, K, H', W').

    Returns (y, cache); the cache holds what ``conv2d_backward`` needs and the plan it dispatches on.
    ``plan``: the kernels to run (``juanji.functional.plan``), by default ``plan_conv``'s choice: im2col
    and one GEMM per sample, y[n] (K × H'·W') = W (K × C·R·S) · cols[n] (C·R·S × H'·W'), or with G groups
    (and at one group on small maps) one GEMM per group over the samples, Y[g] = W[g] · cols[g] (C/G·R·S ×
    N·H'·W' columns); on the compiled kernels the columns gathered from x where that pays, the depthwise
    loops (the cache keeps x) or Winograd's F(2×2, 3×3) (the cache keeps x and U).
    ``workspace`` (a ``Workspace``, e.g. the layer's own): where the columns are kept and reused from
    call to call; the columns stay valid until the next call with the same workspace.  ``scratch``: a
    ``Workspace`` for the arrays used only during this call.  Without them every array is new.
    """
    stride, dilation = pair(stride, "stride"), pair(dilation, "dilation")
    pads, out_size = _geometry(x.shape, weight.shape, stride, padding, dilation)
    plan = plan or plan_conv(x.shape, weight.shape, stride, pads, dilation, groups)
    if plan.forward in ("depthwise", "depthwise_rows", "depthwise_channels"):
        from .compiled import depthwise
        y = depthwise.conv2d(x, weight, bias, stride, pads, dilation, out_size, plan.forward)
        saved = x
    elif plan.forward == "winograd":
        from .compiled import winograd
        y, saved = winograd.conv2d(x, weight, bias, pads, out_size, plan.block_bytes, scratch)
    elif plan.forward in _NUMPY_DEPTHWISE:
        forward = _NUMPY_DEPTHWISE[plan.forward][0]
        y, saved = forward(x, weight, bias, stride, pads, dilation, out_size, plan.block_bytes), x
    elif plan.forward == "direct":
        from .compiled import direct
        y, saved = direct.conv2d(x, weight, bias, pads, dilation, out_size), x
    elif plan.forward == "compiled_blocks":
        y, saved = _blocks_forward(x, weight, bias, stride, pads, dilation, out_size, plan.block_bytes), x
    else:
        y, saved = _im2col_forward(x, weight, bias, stride, pads, dilation, groups, out_size, plan.forward,
                                   workspace, scratch)
    return y, (x.shape, saved, weight, stride, dilation, pads, groups, plan)


def _im2col_forward(x, weight, bias, stride, pads, dilation, groups, out_size, forward, workspace, scratch):
    """The forward by columns: y and the columns, cut into one chunk of the batch per thread (``over_batch``),
    each chunk padding, copying and multiplying its own samples ("compiled_im2col": gathering its columns
    straight from x, with no padded copy, by ``compiled.columns.im2col``)."""
    n, c = x.shape[:2]
    k, cg, r, s = weight.shape
    padded_shape = (n, c, x.shape[2] + sum(pads[0]), x.shape[3] + sum(pads[1]))
    rows, p = cg * r * s, out_size[0] * out_size[1]
    grouped, pointwise = forward in ("grouped", "compiled_grouped"), forward == "pointwise"
    gathered = forward in ("compiled_im2col", "compiled_grouped")
    # A pointwise layer's columns are its (padded) input: padded memory then lives until backward.
    padded = (None if gathered or padded_shape == x.shape else
              array_in(workspace if pointwise else scratch, "padded", padded_shape, x.dtype))
    cols = None if pointwise else array_in(workspace, "cols", (rows * groups, n * p) if grouped else (n, rows, p),
                                           x.dtype)
    weights = weight.reshape(groups, k // groups, rows)
    y = np.empty((n, k, *out_size), dtype=np.result_type(x, weight))
    if grouped:
        y_kn = array_in(scratch, "gemm", (groups, k // groups, n * p), y.dtype)
    if gathered:
        from .compiled import columns
        reads = columns.reads(x.shape[2:], (r, s), stride, dilation, pads, out_size)

    def forward_chunk(start, stop):
        xp = None if gathered else pad2d(x[start:stop], pads, out=None if padded is None else padded[start:stop])
        if grouped:
            chunk = cols[:, start * p:stop * p]
            if gathered:        # written through its (samples, C·R·S, H'·W') view
                columns.im2col(x[start:stop], reads, cols.reshape(-1, n, p)[:, start:stop].transpose(1, 0, 2))
            else:
                im2col(xp, (r, s), stride, dilation, out_size, chunk, channel_major=True)
            np.matmul(weights, chunk.reshape(groups, rows, -1), out=y_kn[:, :, start * p:stop * p])
            _to_nchw(y_kn.reshape(k, n, *out_size)[:, start:stop], bias, out=y[start:stop])
            return
        if gathered:
            chunk = columns.im2col(x[start:stop], reads, cols[start:stop])
        else:
            chunk = im2col(xp, (r, s), stride, dilation, out_size, None if cols is None else cols[start:stop])
        np.matmul(weights[0], chunk, out=y[start:stop].reshape(stop - start, k, p))
        if bias is not None:
            y[start:stop] += bias.reshape(1, k, 1, 1)

    over_batch(n, forward_chunk, multiply_adds=n * rows * k * p)
    if pointwise:
        cols = (x if padded is None else padded).reshape(n, c, p)
    return y, cols


def _gather_blocks(x, weight_shape, stride, pads, dilation, out_size, block_bytes):
    """(samples per block, ``compiled.columns.reads`` of x's planes) of the kernels that gather a few samples'
    columns at a time, about ``block_bytes`` of them (plans "compiled_blocks", "compiled_batch")."""
    from .compiled import columns
    rows = math.prod(weight_shape[1:]) * out_size[0] * out_size[1]
    return (max(1, block_bytes // (rows * x.itemsize)),
            columns.reads(x.shape[2:], weight_shape[2:], stride, dilation, pads, out_size))


def _blocks_forward(x, weight, bias, stride, pads, dilation, out_size, block_bytes, dy=None):
    """y by plan "compiled_blocks": in each chunk of the batch (one per thread), a block of samples at a time, the
    block's columns gathered from x (``compiled.columns``, no padded copy) and multiplied while they are in cache,
    y[n] (K × H'·W') = W (K × C·R·S) · cols[n] (C·R·S × H'·W') + b.  The columns are not kept: dW
    ("compiled_batch") gathers them again, straight into the layout its product reads.
    ``dy`` (N, K, H', W'), where given (weight_grad "blocks"): dW = dY ⋆ X too, from the same columns while they are
    in cache, dWᵀ = Σ_n cols[n] · dY[n]ᵀ; returns (y, dW) then."""
    from .compiled import columns
    n, k = x.shape[0], weight.shape[0]
    rows, p = weight[0].size, out_size[0] * out_size[1]
    block, reads = _gather_blocks(x, weight.shape, stride, pads, dilation, out_size, block_bytes)
    weights = weight.reshape(k, rows)
    y = np.empty((n, k, *out_size), dtype=np.result_type(x, weight))
    samples = y.reshape(n, k, p)

    def forward_chunk(start, stop):
        cols, total = np.empty((min(block, stop - start), rows, p), x.dtype), None
        for first in range(start, stop, block):
            last = min(stop, first + block)
            chunk = columns.im2col(x[first:last], reads, cols[:last - first])
            out = np.matmul(weights, chunk, out=samples[first:last])
            if bias is not None:
                out += bias.reshape(k, 1)
            if dy is not None:
                part = np.matmul(chunk, dy[first:last].reshape(last - first, k, p).transpose(0, 2, 1)).sum(axis=0)
                total = part if total is None else np.add(total, part, out=total)
        return total

    parts = over_batch(n, forward_chunk, multiply_adds=n * rows * k * p * (1 if dy is None else 2))
    return y if dy is None else (y, sum(parts).T.reshape(weight.shape))


def conv2d_with_weight_grad(x, weight, dy, stride, pads, dilation, block_bytes):
    """(y, dW): y = W ⋆ x (no bias) and dW = dY ⋆ X, block by block on the same columns while they are in cache
    (plan "compiled_blocks", weight_grad "blocks"; ``pads`` resolved): a transposed convolution's backward, whose dX
    is this convolution of its dY and whose dW this convolution's weight gradient with its x as dY."""
    out_size = output_shape(x.shape[2:], weight.shape[2:], stride, pads, dilation)
    return _blocks_forward(x, weight, None, stride, pads, dilation, out_size, block_bytes, dy)


def _gathered_weight_grad(dy_kn, x, weight_shape, stride, pads, dilation, block_bytes):
    """dW = dY ⋆ X by plan "compiled_batch", from x instead of kept columns: in each chunk of the batch, a block of
    samples at a time, the block's columns gathered again, channel-major (C·R·S × samples·H'·W'), and multiplied
    while in cache: dWᵀ = Σ_blocks cols · dY_blockᵀ (C·R·S × K).  dy_kn: ``channel_major(dY)`` (K × N·H'·W'),
    x (N, C, H, W) → dW (K, C, R, S)."""
    from .compiled import columns
    n, k = x.shape[0], weight_shape[0]
    rows, p = math.prod(weight_shape[1:]), dy_kn.shape[1] // n
    out_size = output_shape(x.shape[2:], weight_shape[2:], stride, pads, dilation)
    block, reads = _gather_blocks(x, weight_shape, stride, pads, dilation, out_size, block_bytes)

    def weight_gradient(start, stop):
        memory, total = np.empty(rows * min(block, stop - start) * p, x.dtype), None
        for first in range(start, stop, block):
            size = min(stop, first + block) - first
            cols = memory[:rows * size * p].reshape(rows, size * p)
            columns.im2col(x[first:first + size], reads, cols.reshape(rows, size, p).transpose(1, 0, 2))
            part = cols @ dy_kn[:, first * p:(first + size) * p].T
            total = part if total is None else np.add(total, part, out=total)
        return total.T

    return sum(over_batch(n, weight_gradient, multiply_adds=n * rows * k * p)).reshape(weight_shape)


def _to_nchw(y_kn: np.ndarray, bias, out: np.ndarray) -> None:
    """(K, N, H', W') view of a GEMM's output → ``out`` (N, K, H', W'), adding the bias during the copy."""
    view = y_kn.transpose(1, 0, 2, 3)
    if bias is None:
        np.copyto(out, view)
    else:
        np.add(view, bias.reshape(1, -1, 1, 1), out=out)


# -- depthwise layers on NumPy's kernels: R·S shifted multiply-adds ------------------------------------------
#
# "depthwise_shifts".  Offset (u, v) of output (i, j) reads padded pixel (i·Sh + u·Dh, j·Sw + v·Dw).  The padded input
# is split into its Sh·Sw stride phases, phase (a, b) holding the padded pixels (a + Sh·p, b + Sw·q), each phase plane
# ``rows`` = ⌈Hp/Sh⌉ rows of ``pitch`` = ⌈Wp/Sw⌉ columns.  A block's phase planes are laid out channel by channel,
# each channel's samples one after the other (and ``spare`` zero rows after the last).  Offset (u, v) then reads phase
# (u·Dh mod Sh, v·Dw mod Sw) at stride 1 from (u·Dh div Sh, v·Dw div Sw) on: for a channel's n' samples one contiguous
# run of n'·rows·pitch values, of which each sample's first H' rows of W' values are its outputs' and the rest (the
# kernel's reach) belong to no output.  So each offset is one multiply-add of whole runs, n' planes long — NumPy's
# ufuncs run long SIMD loops, where runs of one plane of a few rows made as many short loops — into outputs laid out
# the same, whose extra values are dropped (forward) or held at zero (dY's, in backward, so that they add nothing;
# where they meet an inf or NaN, which times zero is NaN, the backward counts the real outputs alone).  The work goes
# in blocks of (channels, samples) planes of ``plan.block_bytes`` (kept in cache from offset to offset): the memory is
# a few blocks per thread, whatever the kernel's size.


def _shift_geometry(x_shape, weight_shape, stride, pads, dilation):
    """(phase rows, pitch, spare rows, values a block holds per (n, c) plane): a channel's phase plane is
    (n'·rows + spare) × pitch, ``spare`` covering the reach of the lowest offset past the last sample's rows; per
    plane, a block holds the phases of x (and of dX in backward) and, for each of the m filters, the outputs and
    the products (dY's runs and the products in backward)."""
    k, _, r, _ = weight_shape
    rows = -(-(x_shape[2] + sum(pads[0])) // stride[0])
    pitch = -(-(x_shape[3] + sum(pads[1])) // stride[1])
    phases = stride[0] * stride[1] * rows * pitch
    return rows, pitch, (r - 1) * dilation[0] // stride[0] + 1, 2 * phases + 2 * (k // x_shape[1]) * rows * pitch


def _phase_slices(x_shape, pads, stride):
    """For each stride phase (a, b): (a, b, the x pixels it holds, where they lie in its plane) as slices of the
    last two axes.  Padded row a + Sh·p is x's row a + Sh·p − top: the first row of x in phase a is at
    p₀ = ⌈(top − a)/Sh⌉ (at least 0), x's row a + Sh·p₀ − top."""
    ranges = []
    for axis in (0, 1):
        size, before, step = x_shape[2 + axis], pads[axis][0], stride[axis]
        ranges.append([])
        for phase in range(step):
            first = max(0, -(-(before - phase) // step))
            source = slice(phase + step * first - before, size, step)
            count = len(range(*source.indices(size)))
            ranges[axis].append((source, slice(first, first + count)))
    return [(a, b, (rows_x, cols_x), (rows_p, cols_p))
            for a, (rows_x, rows_p) in enumerate(ranges[0]) for b, (cols_x, cols_p) in enumerate(ranges[1])]


def _to_phases(x, phases, pads, stride):
    """The padded x (n, c, H, W) into ``phases`` (Sh, Sw, n, c, rows, pitch), whose padding is zero."""
    for a, b, source, place in _phase_slices(x.shape, pads, stride):
        phases[a, b][(..., *place)] = x[(..., *source)]


def _from_phases(phases, x, pads, stride):
    """The inverse of ``_to_phases``: x's pixels of ``phases`` into x, the padding left out."""
    for a, b, source, place in _phase_slices(x.shape, pads, stride):
        x[(..., *source)] = phases[a, b][(..., *place)]


def _by_sample(phases, samples, rows):
    """A block's phases (Sh, Sw, c, n'·rows + spare, pitch) as (Sh, Sw, n', c, rows, pitch), a view."""
    sh, sw, c, _, pitch = phases.shape
    return phases[:, :, :, :samples * rows].reshape(sh, sw, c, samples, rows, pitch).swapaxes(2, 3)


def _shifted(phases, offset, stride, dilation, length, pitch):
    """The run of phase values that offset (u, v) reads for a block's outputs: (c, ``length``), a view (writeable
    where ``phases`` is)."""
    (row_phase, row_shift), (col_phase, col_shift) = (divmod(o * d, st)[::-1] for o, d, st in
                                                      zip(offset, dilation, stride))
    plane = phases[row_phase, col_phase]
    start = row_shift * pitch + col_shift
    return plane.reshape(plane.shape[0], -1)[:, start:start + length]


def _real_outputs(runs, samples, rows, pitch, out_size):
    """The outputs' own values of runs (..., n'·rows·pitch): a (..., n', H', W') view, the spare ones left out."""
    return runs.reshape(*runs.shape[:-1], samples, rows, pitch)[..., :out_size[0], :out_size[1]]


def _blocks(start, stop, channels, planes):
    """([(samples, channels) slices], (samples, channels) of the largest): blocks covering samples [start, stop)
    and every channel, ``planes`` (n, c) planes at most each (at least one): all the samples of a few channels
    where the samples' planes fit, else runs of one channel's samples (a channel's samples make one run)."""
    planes, count = max(1, planes), stop - start
    if planes >= count:
        step = min(channels, planes // count)
        return ([(slice(start, stop), slice(c, min(channels, c + step))) for c in range(0, channels, step)],
                (count, step))
    return ([(slice(a, min(stop, a + planes)), slice(c, c + 1))
             for c in range(channels) for a in range(start, stop, planes)], (planes, 1))


def depthwise_shifts(x, weight, bias, stride, pads, dilation, out_size, block_bytes) -> np.ndarray:
    """Depthwise y (plan "depthwise_shifts"): x (N, C, H, W), weight (m·C, 1, R, S) (filter k reads channel
    k // m) → y (N, m·C, H', W'), one multiply-add per kernel offset, block by block:

        y[:, k] = b[k] + Σ_{u, v} W[k, 0, u, v] · Xp(u, v)[:, k // m]
        Xp(u, v) = Xp[:, :, u·Dh : u·Dh + Sh·H' : Sh, v·Dw : v·Dw + Sw·W' : Sw]   (the padded x the offset reads)
    """
    n, c = x.shape[:2]
    k, _, r, s = weight.shape
    m = k // c
    rows, pitch, spare, plane = _shift_geometry(x.shape, weight.shape, stride, pads, dilation)
    taps = weight.reshape(c, m, r, s)
    y = np.empty((n, k, *out_size), dtype=np.result_type(x, weight))
    planes_y = y.reshape(n, c, m, *out_size)

    def forward_chunk(start, stop):
        blocks, (most_n, most_c) = _blocks(start, stop, c, block_bytes // (plane * x.itemsize))
        phases = np.zeros((*stride, most_c, most_n * rows + spare, pitch), x.dtype)   # its padding stays zero
        acc, product = np.empty((2, most_c, m, most_n * rows * pitch), y.dtype)
        for samples, channels in blocks:
            count, length = samples.stop - samples.start, (samples.stop - samples.start) * rows * pitch
            width = channels.stop - channels.start
            xp, out, tmp = phases[:, :, :width], acc[:width, :, :length], product[:width, :, :length]
            _to_phases(x[samples, channels], _by_sample(xp, count, rows), pads, stride)
            for offset in np.ndindex(r, s):
                window = _shifted(xp, offset, stride, dilation, length, pitch)[:, None]
                tap = taps[channels, :, offset[0], offset[1], None]
                if offset == (0, 0):
                    np.multiply(window, tap, out=out)
                else:
                    out += np.multiply(window, tap, out=tmp)
            # the bias added to the block's runs while they are in cache, then a copy, which goes in y's order
            # (sample by sample, each one's planes in a row); a ufunc writing y from the block would go in the
            # block's order, a channel's samples one after the other, planes far apart in y (forward in 0.7–0.9
            # of the time on 32×32 and 16×16 maps at batch 64)
            if bias is not None:
                out += bias.reshape(c, m, 1)[channels]
            outputs = _real_outputs(out, count, rows, pitch, out_size).transpose(2, 0, 1, 3, 4)
            np.copyto(planes_y[samples, channels], outputs)

    over_batch(n, forward_chunk, elements=y.size * r * s)
    return y


def depthwise_shifts_backward(dy, x, weight, stride, pads, dilation, block_bytes, need_dx=True):
    """(dX or None, dW) of ``depthwise_shifts``, block by block, per kernel offset (u, v) with Xp(u, v) the
    strided slice of the padded input that the offset read:

        dW[k, 0, u, v] = Σ_{n, i, j} dY[n, k] · Xp(u, v)[n, k // m]
        dXp(u, v)[:, c] += Σ_{q < m} W[m·c + q, 0, u, v] · dY[:, m·c + q]     (dX: dXp without its padding)
    """
    n, c = x.shape[:2]
    k, _, r, s = weight.shape
    m, out_size = k // c, dy.shape[2:]
    rows, pitch, spare, plane = _shift_geometry(x.shape, weight.shape, stride, pads, dilation)
    taps = weight.reshape(c, m, r, s)
    planes_dy = dy.reshape(n, c, m, *out_size)
    dx = np.empty(x.shape, dtype=dy.dtype) if need_dx else None
    finite_taps = np.isfinite(weight).all()

    def backward_chunk(start, stop):
        blocks, (most_n, most_c) = _blocks(start, stop, c, block_bytes // (plane * x.itemsize))
        phases = np.zeros((*stride, most_c, most_n * rows + spare, pitch), x.dtype)
        d_phases = np.empty_like(phases) if need_dx else None
        runs = np.zeros((most_c, m, most_n * rows * pitch), dy.dtype)      # values of no output stay zero
        product = np.empty((most_c, most_n * rows * pitch), dy.dtype)
        dw = np.zeros((c, m, r, s), dtype=dy.dtype)
        for samples, channels in blocks:
            count, length = samples.stop - samples.start, (samples.stop - samples.start) * rows * pitch
            width = channels.stop - channels.start
            xp, grad, tmp = phases[:, :, :width], runs[:width, :, :length], product[:width, :length]
            _to_phases(x[samples, channels], _by_sample(xp, count, rows), pads, stride)
            real = _real_outputs(grad, count, rows, pitch, out_size)                     # (c', m, n', H', W')
            np.copyto(real, planes_dy[samples, channels].transpose(1, 2, 0, 3, 4))
            if need_dx:
                dxp = d_phases[:, :, :width]
                dxp.fill(0)
            # dY's spare values meet x's pixels that no output of the offset reads (dW's sums) and the taps (dX's
            # adds); zero times inf or NaN is NaN.  So a dW sum that is not finite is taken again over the real
            # outputs (a finite one is exact: its spare terms were zeros), and where the weight holds an inf or a
            # NaN, dX gets the real outputs alone.
            for u, v in np.ndindex(r, s):
                window = _shifted(xp, (u, v), stride, dilation, length, pitch)
                tap_dw = np.matmul(grad, window[:, :, None])[..., 0]         # a dot product per channel and filter
                if not np.isfinite(tap_dw).all():
                    tap_dw = np.einsum("cnhw,cmnhw->cm", _real_outputs(window, count, rows, pitch, out_size), real)
                dw[channels, :, u, v] += tap_dw
                if need_dx:
                    d_window = _shifted(dxp, (u, v), stride, dilation, length, pitch)
                    for q in range(m):
                        tap = taps[channels, q, u, v, None]
                        if finite_taps:
                            d_window += np.multiply(grad[:, q], tap, out=tmp)
                        else:
                            _real_outputs(d_window, count, rows, pitch, out_size)[...] += (real[:, q]
                                                                                           * tap[:, None, None])
            if need_dx:
                _from_phases(_by_sample(dxp, count, rows), dx[samples, channels], pads, stride)
        return dw

    dw = sum(over_batch(n, backward_chunk, elements=dy.size * r * s))
    return dx, dw.reshape(weight.shape)


# -- depthwise layers on small maps, NumPy's kernels: the channels innermost ---------------------------------
#
# "depthwise_channels_last".  On maps of a few pixels a channel's phase plane is mostly padding and a run's rows
# are a few values long (MobileNet v2's 4×4 maps: 16 outputs in runs of 36 values).  With the channels innermost,
# x as (N, H, W, C), each offset's multiply-add covers only the outputs whose read lies in x, a rectangle of them,
# in loops over the C channels side by side: no padding, no spare values.  Where the weight holds an inf or a NaN,
# the outputs that read the padding get 0 · W there (NaN, as a padded convolution computes): the offsets then
# read a padded copy of x, every output each.


def _valid_reads(size, out, before, kernel, stride, dilation):
    """For each kernel offset u along one axis: (the outputs, the x rows they read) as slices, for the outputs
    whose read i·stride + u·dilation − before lies in [0, size); None where no output's does."""
    reads = []
    for u in range(kernel):
        shift = u * dilation - before
        first = max(0, -(shift // stride))                      # ⌈−shift / stride⌉, at least 0
        last = min(out, (size - 1 - shift) // stride + 1) if size > shift else 0
        reads.append((slice(first, last), slice(first * stride + shift, (last - 1) * stride + shift + 1, stride))
                     if first < last else None)
    return reads


def _offsets_reading_x(rows, cols):
    """(u, v, out rows, out cols, x rows, x cols) of each kernel offset whose outputs read some of x, from
    ``_channels_last_geometry``'s per-offset (outputs, reads) slices (None: the offset reads only padding)."""
    for u, row in enumerate(rows):
        for v, col in enumerate(cols):
            if row is not None and col is not None:
                yield u, v, row[0], col[0], row[1], col[1]


def _channels_last_geometry(x_shape, kernel_size, pads, out_size, stride, dilation, padded):
    """(x's (H, W) as read, where x lies in it (top, left), (rows, columns) of ``_valid_reads`` per offset): x as
    it is, or ``padded`` (every output then reads its whole window)."""
    size = tuple(x_shape[2 + axis] + (sum(pads[axis]) if padded else 0) for axis in (0, 1))
    before = tuple(0 if padded else pads[axis][0] for axis in (0, 1))
    reads = [_valid_reads(size[axis], out_size[axis], before[axis], kernel_size[axis], stride[axis], dilation[axis])
             for axis in (0, 1)]
    return size, (pads[0][0], pads[1][0]) if padded else (0, 0), reads


def _into_channels_last(x, out, top_left):
    """x (n, C, H, W) → ``out`` (n, Hx, Wx, C) at (top, left), the rest of ``out`` left as it is (zero padding)."""
    (top, left), (h, w) = top_left, x.shape[2:]
    np.copyto(out[:, top:top + h, left:left + w], x.transpose(0, 2, 3, 1))


def depthwise_channels_last(x, weight, bias, stride, pads, dilation, out_size, block_bytes) -> np.ndarray:
    """Depthwise y (plan "depthwise_channels_last"): x (N, C, H, W), weight (m·C, 1, R, S) → y (N, m·C, H', W'),
    the channels innermost, blocks of samples of about ``block_bytes``, per offset (u, v) only the outputs O(u, v)
    whose read lies in x:

        Y[:, O(u, v), k] += W[k, 0, u, v] · X[:, I(u, v), k // m]      (Y, X channels last; I(u, v): what O reads)
    """
    n, c = x.shape[:2]
    k, _, r, s = weight.shape
    m, (out_h, out_w) = k // c, out_size
    (h, w), top_left, (rows, cols) = _channels_last_geometry(x.shape, (r, s), pads, out_size, stride, dilation,
                                                             padded=not np.isfinite(weight).all())
    taps = weight.reshape(c, m, r, s).transpose(2, 3, 1, 0)                # (R, S, m, C)
    y = np.empty((n, k, out_h, out_w), dtype=np.result_type(x, weight))
    per_sample = (h * w + 2 * m * out_h * out_w) * c * x.itemsize

    def forward_chunk(start, stop):
        step = max(1, min(stop - start, block_bytes // per_sample))
        xs_block = np.zeros((step, h, w, c), x.dtype)                      # its padding (if any) stays zero
        out_block = np.empty((step, out_h, out_w, m, c), y.dtype)
        product = np.empty(step * out_h * out_w * c, y.dtype)
        for first in range(start, stop, step):
            last = min(stop, first + step)
            xs, out = xs_block[:last - first], out_block[:last - first]
            _into_channels_last(x[first:last], xs, top_left)
            out.fill(0)
            for u, v, out_i, out_j, x_i, x_j in _offsets_reading_x(rows, cols):
                window = xs[:, x_i, x_j]
                tmp = product[:window.size].reshape(window.shape)
                for q in range(m):
                    out[:, out_i, out_j, q] += np.multiply(window, taps[u, v, q], out=tmp)
            if bias is not None:                # in the block, then a copy in y's order (as ``depthwise_shifts``)
                out += bias.reshape(c, m).T
            np.copyto(y[first:last].reshape(-1, c, m, out_h, out_w), out.transpose(0, 4, 3, 1, 2))

    over_batch(n, forward_chunk, elements=y.size * r * s)
    return y


def depthwise_channels_last_backward(dy, x, weight, stride, pads, dilation, block_bytes, need_dx=True):
    """(dX or None, dW) of ``depthwise_channels_last``, the channels innermost, per offset (u, v) over the
    outputs O(u, v) whose read I(u, v) lies in x (dY, X, dX channels last):

        dW[k, 0, u, v] = Σ_{n, O(u, v)} dY[:, O(u, v), k] · X[:, I(u, v), k // m]
        dX[:, I(u, v), c] += Σ_{q < m} W[m·c + q, 0, u, v] · dY[:, O(u, v), m·c + q]
    """
    n, c, h, w = x.shape
    k, _, r, s = weight.shape
    m, (out_h, out_w) = k // c, dy.shape[2:]
    # the outputs that read x alone, whatever the weight: those that read the padding add nothing to dX or dW
    _, _, (rows, cols) = _channels_last_geometry(x.shape, (r, s), pads, (out_h, out_w), stride, dilation, False)
    taps = weight.reshape(c, m, r, s).transpose(2, 3, 1, 0)                # (R, S, m, C)
    dx = np.empty(x.shape, dtype=dy.dtype) if need_dx else None
    per_sample = (2 * h * w + 2 * m * out_h * out_w) * c * x.itemsize

    def backward_chunk(start, stop):
        step = max(1, min(stop - start, block_bytes // per_sample))
        xs_block = np.empty((step, h, w, c), x.dtype)
        dxs_block = np.empty((step, h, w, c), dy.dtype) if need_dx else None
        grad_block = np.empty((step, out_h, out_w, m, c), dy.dtype)
        product = np.empty(step * out_h * out_w * c, dy.dtype)
        dw = np.zeros((r, s, m, c), dy.dtype)
        for first in range(start, stop, step):
            last = min(stop, first + step)
            xs, grads = xs_block[:last - first], grad_block[:last - first]
            _into_channels_last(x[first:last], xs, (0, 0))
            np.copyto(grads, dy[first:last].reshape(-1, c, m, out_h, out_w).transpose(0, 3, 4, 2, 1))
            if need_dx:
                dxs = dxs_block[:last - first]
                dxs.fill(0)
            for u, v, out_i, out_j, x_i, x_j in _offsets_reading_x(rows, cols):
                window = xs[:, x_i, x_j]
                tmp = product[:window.size].reshape(window.shape)         # contiguous: summed as (·, C) rows
                for q in range(m):
                    grad = grads[:, out_i, out_j, q]
                    dw[u, v, q] += np.multiply(grad, window, out=tmp).reshape(-1, c).sum(axis=0)
                    if need_dx:
                        dxs[:, x_i, x_j] += np.multiply(grad, taps[u, v, q], out=tmp)
            if need_dx:
                np.copyto(dx[first:last], dxs.transpose(0, 3, 1, 2))
        return dw

    dw = sum(over_batch(n, backward_chunk, elements=dy.size * r * s))
    return dx, dw.transpose(3, 2, 0, 1).reshape(weight.shape)


# NumPy's depthwise plans: (forward, backward)
_NUMPY_DEPTHWISE = {"depthwise_shifts": (depthwise_shifts, depthwise_shifts_backward),
                    "depthwise_channels_last": (depthwise_channels_last, depthwise_channels_last_backward)}


def channel_major(dy: np.ndarray, out=None) -> np.ndarray:
    """dY (N, K, H', W') → (K, N·H'·W'), the layout of GEMMs over the whole batch (grouped layers, and
    small maps where K > H'·W'); copied chunk by chunk, into ``out`` if given."""
    n, k = dy.shape[:2]
    p = dy.shape[2] * dy.shape[3]
    out = np.empty((k, n * p), dtype=dy.dtype) if out is None else out
    samples, blocks = dy.reshape(n, k, p), out.reshape(k, n, p)
    over_batch(n, lambda start, stop: np.copyto(blocks[:, start:stop], samples[start:stop].transpose(1, 0, 2)),
               elements=2 * dy.size)
    return out


def _channel_major_in(scratch, dy) -> np.ndarray:
    return channel_major(dy, array_in(scratch, "channel_major", (dy.shape[1], dy.size // dy.shape[1]), dy.dtype))


def conv2d_backward(dy, cache, need_dx: bool = True, scratch=None, need_db: bool = True):
    """Gradients of conv2d, by the kernels of the forward's plan.  Returns (dx or None, dW, db or None):

        dW = dY ⋆ X                  ``conv2d_weight_grad``
        db = Σ_{n, i, j} dY          (``need_db`` False, a layer without bias: not summed, a pass over dY saved)
        dX = dY ∗ rot180(W)          ``conv2d_input_grad``
    dY in channel-major layout is made once here when either product wants it.
    ``scratch``: a ``Workspace`` for the arrays used only during this call (new arrays without it).
    """
    x_shape, saved, weight, stride, dilation, pads, groups, plan = cache
    dy = np.ascontiguousarray(dy)
    db = dy.sum(axis=(0, 2, 3)) if need_db else None
    if plan.weight_grad == "winograd":
        from .compiled import winograd
        if plan.forward != "winograd":      # the direct forward of a 3×3 layer of few channels kept x alone
            saved = winograd.Saved(saved, winograd.weight_transform(weight.astype(dy.dtype, copy=False)))
        dx, dw = winograd.backward(dy, saved, pads, plan.block_bytes, need_dx, scratch)
        return dx, dw, db
    if plan.forward in _NUMPY_DEPTHWISE:                    # saved: the input itself
        backward = _NUMPY_DEPTHWISE[plan.forward][1]
        dx, dw = backward(dy, saved, weight, stride, pads, dilation, plan.block_bytes, need_dx)
        return dx, dw, db
    if plan.forward in ("depthwise", "depthwise_rows", "depthwise_channels"):     # saved: the input itself
        from .compiled import depthwise
        dx, dw = depthwise.backward(dy, saved, weight, stride, pads, dilation, plan.weight_grad, plan.input_grad,
                                    need_dx)
        return dx, dw, db
    if plan.forward == "direct":                            # saved: the input itself; dX by NumPy's kernels
        from .compiled import direct
        dx = (conv2d_input_grad(dy, weight, x_shape, stride, pads, dilation, groups, None, scratch, plan.input_grad)
              if need_dx else None)
        return dx, direct.weight_grad(dy, saved, weight.shape, pads, dilation), db
    dy_kn = _channel_major_in(scratch, dy) if plan.weight_grad in ("grouped", "batch", "compiled_batch") else None
    if plan.weight_grad == "compiled_batch":                # saved: the input itself, its columns gathered again
        dw = _gathered_weight_grad(dy_kn, saved, weight.shape, stride, pads, dilation, plan.block_bytes)
    else:
        dw = conv2d_weight_grad(dy, saved, weight.shape, groups, dy_kn, scratch, plan.weight_grad)
    dx = (conv2d_input_grad(dy, weight, x_shape, stride, pads, dilation, groups, dy_kn, scratch, plan.input_grad)
          if need_dx else None)
    return dx, dw, db


def workspace_values(x_shape, weight_shape, stride, pads, dilation, groups, backward: bool = True):
    """What conv2d and conv2d_backward hold beyond x, y and the gradients, on NumPy's kernels (the compiled ones
    hold no more), as {key: values} of two kinds of memory (``runtime.workspace``):

    - kept: the layer's own workspace, from forward to backward and on to the next step: the columns, C·R·S·H'·W'
      values per sample (a pointwise layer's padded input, if padded);
    - scratch: the thread's scratch memory, which keeps each key's last array from layer to layer (the padded
      input, the grouped GEMMs' outputs, dY's channel-major copy, the columns of dX: col2im's, or those of the
      full convolution that makes dX, which runs with the scratch as its workspace).

    ``backward`` False: the forward's alone (under no_grad the kept arrays go to the scratch memory too).
    NumPy's depthwise kernels hold neither, only a few blocks of ``plan.block_bytes`` per thread, whatever the batch.
    ``pads`` as resolved by ``geometry.resolve_padding``.
    """
    n, c, h, w = x_shape
    k, _, r, s = weight_shape
    chosen = numpy_plan(x_shape, weight_shape, stride, pads, dilation, groups)
    if chosen.forward in _NUMPY_DEPTHWISE:
        return {}, {}
    out_size = output_shape((h, w), (r, s), stride, pads, dilation)
    pixels = out_size[0] * out_size[1]
    padded = n * c * (h + sum(pads[0])) * (w + sum(pads[1])) if any(map(any, pads)) else 0
    columns = n * c * r * s * pixels
    pointwise = chosen.forward == "pointwise"
    kept = {"padded": padded} if pointwise else {"cols": columns}
    scratch = {"padded": 0 if pointwise else padded, "gemm": n * k * pixels if chosen.forward == "grouped" else 0}
    if not backward:
        return kept, scratch
    scratch["channel_major"] = n * k * pixels if chosen.weight_grad in ("grouped", "batch") else 0
    scratch["columns_transposed"] = columns if chosen.weight_grad == "batch" else 0
    for key, values in input_grad_values(x_shape, weight_shape, stride, pads, dilation, groups,
                                         chosen.input_grad).items():
        scratch[key] = max(scratch.get(key, 0), values)
    return kept, scratch


def input_grad_values(x_shape, weight_shape, stride, pads, dilation, groups, method: str) -> dict:
    """The scratch {key: values} that ``conv2d_input_grad`` by ``method`` holds beyond dY and dX on NumPy's kernels,
    as ``workspace_values``'s: the full convolution's (its forward's, all in the scratch memory), or col2im's
    columns, its padded dX and, where its GEMMs go over the batch, dY's channel-major copy."""
    n, c, h, w = x_shape
    k, _, r, s = weight_shape
    out_size = output_shape((h, w), (r, s), stride, pads, dilation)
    if method == "full_convolution":
        full_pads = full_convolution_padding(pads, (r, s), dilation)
        inner = workspace_values((n, k, *out_size), (c, k // groups, r, s), (1, 1), full_pads, dilation, groups,
                                 backward=False)
        return {key: max(inner[0].get(key, 0), inner[1].get(key, 0)) for key in (*inner[0], *inner[1])}
    pixels = out_size[0] * out_size[1]
    values = {"dcols": n * c * r * s * pixels,
              "dpadded": n * c * (h + sum(pads[0])) * (w + sum(pads[1])) if any(map(any, pads)) else 0}
    if groups > 1 or method == "batch_col2im":
        values["channel_major"] = n * k * pixels
    return values


def conv2d_weight_grad(dy, cols, weight_shape, groups=1, dy_channel_major=None, scratch=None,
                       method: str | None = None) -> np.ndarray:
    """dW = dY ⋆ X: each weight's gradient sums, over the batch and the output pixels, dY times the input
    pixel it multiplied.  dy (N, K, H', W'), cols: conv2d's columns (from its cache) → dW (K, C/G, R, S).

        dW[g] = dY[g] · cols[g]ᵀ     (K/G × C/G·R·S, contracted over N·H'·W')

    computed as its transpose cols · dYᵀ, the shape OpenBLAS runs faster (C·R·S rows rather than K, on
    ResNet-20's layers with and without groups), one partial product per chunk of the batch
    (one chunk per thread), summed.  ``dy_channel_major``: ``channel_major(dy)`` where the caller has it.
    ``method``: the plan's ``weight_grad`` ("grouped", "per_sample", "batch"; by default ``weight_grad_method``'s,
    which reads an ungrouped layer's sample-major columns: pass the plan's for any other).
    """
    n, k = dy.shape[:2]
    p = dy.shape[2] * dy.shape[3]
    rows = int(np.prod(weight_shape[1:]))
    method = method or weight_grad_method(k, p, groups)
    dy_samples = dy.reshape(n, k, p)
    dy_kn = dy_channel_major
    if dy_kn is None and method in ("grouped", "batch"):
        dy_kn = _channel_major_in(scratch, dy)
    if method == "batch":
        cols_cm = array_in(scratch, "columns_transposed", (rows, n * p), cols.dtype)

    def weight_gradient(start, stop):
        if method == "grouped":     # per group, over the chunk's samples: dW[g]ᵀ = cols[g] · dY[g]ᵀ
            return np.matmul(cols[:, start * p:stop * p].reshape(groups, rows, -1),
                             dy_kn[:, start * p:stop * p].reshape(groups, k // groups, -1).transpose(0, 2, 1)
                             ).transpose(0, 2, 1)
        if method == "per_sample":  # per sample, summed: dWᵀ = Σ_n cols[n] · dY[n]ᵀ (C·R·S × K each)
            return np.matmul(cols[start:stop], dy_samples[start:stop].transpose(0, 2, 1)).sum(axis=0).T
        # small maps (K > H'·W'): the per-sample products would outweigh the columns; lay the chunk's
        # columns side by side instead and make one product: dWᵀ = cols · dYᵀ over the chunk's N·H'·W'
        np.copyto(cols_cm.reshape(rows, n, p)[:, start:stop], cols[start:stop].transpose(1, 0, 2))
        return (cols_cm[:, start * p:stop * p] @ dy_kn[:, start * p:stop * p].T).T

    return sum(over_batch(n, weight_gradient, multiply_adds=n * rows * k * p)).reshape(weight_shape)


def conv2d_input_grad(dy, weight, x_shape, stride, pads, dilation, groups=1, dy_channel_major=None,
                      scratch=None, method: str | None = None) -> np.ndarray:
    """dX = dY ∗ rot180(W): each input pixel's gradient sums dY over the outputs whose window read it,
    times the weight that read it.  dy (N, K, H', W'), weight (K, C/G, R, S) → dX of shape ``x_shape``;
    ``pads`` ((top, bottom), (left, right)) as resolved by conv2d.

    The full convolution reads K·R·S columns per input pixel, col2im writes C·R·S per output pixel: the
    first is cheaper when the layer does not widen (K ≤ C), measured on LeNet/ResNet shapes.
        stride 1, K ≤ C:  dX = conv2d(dY padded by the kernel's reach less the forward padding, rot180(W))
        otherwise:        dX = col2im(Wᵀ · dY), each column's gradient summed back to the pixels it read
    ``dy_channel_major``: ``channel_major(dy)`` where the caller has it (read by grouped layers, and by
    "batch_col2im": Wᵀ · dY over the batch for 1×1 layers whose dW made it).
    ``method``: the plan's ``input_grad`` ("full_convolution", "col2im", "compiled_col2im", "batch_col2im"; by
    default the plan's rule).
    """
    n, c = x_shape[:2]
    k, cg, r, s = weight.shape
    out_size = dy.shape[2:]
    rows, p = cg * r * s, out_size[0] * out_size[1]
    method = method or input_grad_method(x_shape, weight.shape, stride, pads, dilation, groups, p)
    grouped = groups > 1 or method == "batch_col2im"       # GEMMs over the batch: dY channel-major
    if method == "full_convolution":
        # rot180(W) with input and output channels swapped within each group: (C, K/G, R, S)
        flipped = (weight.reshape(groups, k // groups, cg, r, s)[..., ::-1, ::-1]
                   .transpose(0, 2, 1, 3, 4).reshape(c, k // groups, r, s))
        full_pads = full_convolution_padding(pads, (r, s), dilation)
        dx, _ = conv2d(dy, np.ascontiguousarray(flipped), None, 1, full_pads, dilation, groups, scratch, scratch)
        return dx
    dy_kn = dy_channel_major
    if grouped and dy_kn is None:
        dy_kn = _channel_major_in(scratch, dy)
    padded_shape = (n, c, x_shape[2] + sum(pads[0]), x_shape[3] + sum(pads[1]))
    weights_t = weight.reshape(groups, k // groups, rows).transpose(0, 2, 1)
    dy_samples = dy.reshape(n, k, p)
    dcols = array_in(scratch, "dcols", (groups, rows, n * p) if grouped else (n, rows, p), dy.dtype)
    dxp = array_in(scratch, "dpadded", padded_shape, dy.dtype) if padded_shape != tuple(x_shape) else None
    dx = np.empty(x_shape, dtype=dy.dtype)

    def input_gradient(start, stop):
        if grouped:                 # per group, over the chunk's samples: dcols[g] = W[g]ᵀ · dY[g]
            chunk = dcols[:, :, start * p:stop * p]
            np.matmul(weights_t, dy_kn.reshape(groups, k // groups, -1)[:, :, start * p:stop * p], out=chunk)
            chunk = chunk.reshape(groups * rows, -1)
        else:                       # per sample: dcols[n] = Wᵀ · dY[n]
            chunk = np.matmul(weights_t[0], dy_samples[start:stop], out=dcols[start:stop])
        padded_chunk = col2im(chunk, (stop - start, *padded_shape[1:]), (r, s), stride, dilation, out_size,
                              out=dx[start:stop] if dxp is None else dxp[start:stop], channel_major=grouped,
                              compiled=method == "compiled_col2im")
        if dxp is not None:
            np.copyto(dx[start:stop], unpad2d(padded_chunk, pads))

    over_batch(n, input_gradient, multiply_adds=n * rows * k * p)
    return dx


def conv2d_reference(x, weight, bias=None, stride=1, padding=0, dilation=1, groups=1):
    """Slow, obviously correct conv2d with explicit loops over outputs; for tests only."""
    stride, dilation = pair(stride, "stride"), pair(dilation, "dilation")
    k, cg, r, s = weight.shape
    pads, (ho, wo) = _geometry(x.shape, weight.shape, stride, padding, dilation)
    xp = pad2d(x, pads)
    kg = k // groups
    y = np.zeros((x.shape[0], k, ho, wo), dtype=x.dtype)
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


def conv2d_backward_reference(dy, x, weight, stride=1, padding=0, dilation=1, groups=1):
    """Slow, obviously correct gradients of conv2d with explicit loops over groups and kernel offsets;
    for tests only.  Returns (dx, dW, db).  Offset (r, s) multiplies W[:, :, r, s] with the input pixels
    Xp[n, c, i·S + r·D, j·S + s·D] of every output (i, j), so, within each group:
        dW[k, c, r, s] = Σ_{n, i, j} dY[n, k, i, j] · Xp[n, c, i·S + r·D, j·S + s·D]
        dXp[n, c, i·S + r·D, j·S + s·D] += Σ_k W[k, c, r, s] · dY[n, k, i, j]
        db[k] = Σ_{n, i, j} dY[n, k, i, j]
    """
    stride, dilation = pair(stride, "stride"), pair(dilation, "dilation")
    k, cg, r, s = weight.shape
    pads, (ho, wo) = _geometry(x.shape, weight.shape, stride, padding, dilation)
    xp = pad2d(x, pads)
    dxp, dw = np.zeros(xp.shape, dtype=dy.dtype), np.zeros(weight.shape, dtype=dy.dtype)
    kg = k // groups
    for g in range(groups):
        outs, ins = slice(g * kg, (g + 1) * kg), slice(g * cg, (g + 1) * cg)
        for i in range(r):
            for j in range(s):
                rows = (i * dilation[0] + stride[0] * np.arange(ho))[:, None]
                cols = j * dilation[1] + stride[1] * np.arange(wo)
                read = xp[:, ins, rows, cols]                               # (N, C/G, H', W')
                dw[outs, :, i, j] = np.einsum("nkhw,nchw->kc", dy[:, outs], read)
                dxp[:, ins, rows, cols] += np.einsum("kc,nkhw->nchw", weight[outs, :, i, j], dy[:, outs])
    return unpad2d(dxp, pads).copy(), dw, dy.sum(axis=(0, 2, 3))
