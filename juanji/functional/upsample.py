"""Upsampling (torch.nn.functional.interpolate) of 1 or 2 spatial axes — nearest, nearest-exact, (bi)linear,
bicubic and area — with its backward.

Every mode is separable: along each axis, output o reads input i with a weight A[o, i], so that
    y = A_h · x · A_wᵀ      (x (N, C, H, W) → y (N, C, H', W'); x · Aᵀ for x (N, C, L))
    dX = A_hᵀ · dY · A_w
with the (out, in) matrices of ``interpolation_matrix``: one 1 per row for the nearest modes, two weights for
linear, four for bicubic (indices clamped to the edges, weights adding up), the adaptive bins' 1/|bin| for area.
No loop runs over pixels or samples; the nearest modes' forward gathers instead of multiplying, so ±inf and NaN
pass through unchanged.

Source coordinates are those of PyTorch's CPU kernels (aten/src/ATen/native/UpSample.h, cpu/UpSampleKernel.cpp),
computed in the input's float type as torch does (2-d nearest modes: in float32), rounded to float32 before the
floor (torch's floorf): with a scale_factor given and not recomputed, the scale is 1/scale_factor, otherwise in/out
(or (in − 1)/(out − 1) with align_corners):
    nearest        i = min(⌊o·scale⌋, in − 1); in 2-d, out = in copies and out = 2·in reads o >> 1
    nearest-exact  i = min(⌊(o + ½)·scale⌋, in − 1)     (1-d: ⌊max((o + ½)·scale − ½, 0) + ½⌋, the same in exact
                   arithmetic)
    linear         x = o·scale (align_corners) or max((o + ½)·scale − ½, 0); i = ⌊x⌋, λ = x − i, weights 1 − λ, λ
                   (out = in: a copy)
    cubic          the same x without the clamp at 0; Keys' kernel with A = −0.75 on i − 1 … i + 2
Where torch is not consistent with itself this follows its usual path: its 1-d nearest forward has no shortcuts
(its backward does: not its forward's derivative when a scale factor other than 1 or 2 gives out = in or 2·in;
the backward here is the adjoint of the forward), and its 2-d nearest forward drops them on large arrays.
"""
from __future__ import annotations

import numpy as np

from .geometry import adaptive_bins

MODES = ("nearest", "nearest-exact", "linear", "bilinear", "bicubic", "area")
CUBIC_A = -0.75


def output_size(in_size: int, size=None, scale_factor=None) -> int:
    """``size``, or ⌊in · scale_factor⌋ (in float64, as torch)."""
    return int(size) if size is not None else int(np.floor(float(in_size) * float(scale_factor)))


def _scale(in_size, out_size, align_corners, scale, dtype):
    """PyTorch's area_pixel_compute_scale: the source step per output step, in ``dtype``."""
    if align_corners:
        return dtype.type(in_size - 1) / dtype.type(out_size - 1) if out_size > 1 else dtype.type(0)
    if scale is not None and scale > 0:
        return dtype.type(1.0 / scale)
    return dtype.type(in_size) / dtype.type(out_size)


def _floor(x) -> np.ndarray:
    """torch's floorf: the coordinate rounded to float32, then floored (int64)."""
    return np.floor(np.asarray(x).astype(np.float32)).astype(np.int64)


def nearest_indices(in_size: int, out_size: int, scale=None, exact: bool = False, dtype=np.float32,
                    two_d: bool = False) -> np.ndarray:
    """The input index each output reads (int64, (out,)): for an axis of a 1-d input as PyTorch's
    HelperInterpNearest(Exact), in ``dtype`` (the input's); of a 2-d input as its nearest_idx / nearest_exact_idx,
    in float32, with nearest_idx's shortcuts."""
    o = np.arange(out_size)
    if two_d and not exact and out_size in (in_size, 2 * in_size):
        return o if out_size == in_size else o >> 1
    dtype = np.dtype(np.float32 if two_d else dtype)
    step, o = _scale(in_size, out_size, False, scale, dtype), o.astype(dtype)
    if exact:
        position = (o + dtype.type(0.5)) * step if two_d else \
            np.maximum(step * (o + dtype.type(0.5)) - dtype.type(0.5), dtype.type(0)) + 0.5
    else:
        position = step * o
    return np.minimum(_floor(position), in_size - 1)


def _source(in_size, out_size, align_corners, scale, dtype, cubic):
    """(⌊x⌋, x − ⌊x⌋) of every output's source coordinate x, in ``dtype`` (linear: x ≥ 0, index ≤ in − 1 and
    λ in [0, 1], PyTorch's guard_index_and_lambda)."""
    o = np.arange(out_size).astype(dtype)
    step = _scale(in_size, out_size, align_corners, scale, dtype)
    if align_corners:
        x = step * o
    else:
        x = step * (o + dtype.type(0.5)) - dtype.type(0.5)
        if not cubic:
            x = np.maximum(x, dtype.type(0))
    index = np.minimum(_floor(x), in_size - 1)
    return index, np.clip(x - index.astype(dtype), 0, 1).astype(dtype)


def interpolation_matrix(in_size: int, out_size: int, mode: str, align_corners: bool = False, scale=None,
                         dtype=np.float64, two_d: bool = False) -> np.ndarray:
    """A (out, in): output o = Σ_i A[o, i] · input i along one axis, for ``mode`` (one of ``MODES``;
    "linear"/"bilinear" alike), ``scale`` torch's scale_factor of that axis (None: from the sizes); ``two_d``: an
    axis of a 2-d input (the nearest modes' indices then follow torch's 2-d rule)."""
    dtype = np.dtype(dtype)
    rows = np.arange(out_size)
    matrix = np.zeros((out_size, in_size), dtype=dtype)
    if mode in ("nearest", "nearest-exact"):
        matrix[rows, nearest_indices(in_size, out_size, scale, mode == "nearest-exact", dtype, two_d)] = 1
    elif mode in ("linear", "bilinear"):
        if out_size == in_size:                  # torch copies: no coordinates at all
            return np.eye(in_size, dtype=dtype)
        index, lam = _source(in_size, out_size, align_corners, scale, dtype, cubic=False)
        np.add.at(matrix, (rows, index), 1 - lam)
        np.add.at(matrix, (rows, np.minimum(index + 1, in_size - 1)), lam)
    elif mode == "bicubic":
        index, t = _source(in_size, out_size, align_corners, scale, dtype, cubic=True)
        for tap, weight in enumerate(cubic_weights(t)):
            np.add.at(matrix, (rows, np.clip(index - 1 + tap, 0, in_size - 1)), weight)
    elif mode == "area":
        for o, (start, end) in enumerate(adaptive_bins(in_size, out_size)):     # loop over output bins
            matrix[o, start:end] = dtype.type(1) / dtype.type(end - start)
    else:
        raise ValueError(f"interpolation mode must be one of {MODES}, got {mode!r}")
    return matrix


def cubic_weights(t):
    """Keys' cubic convolution weights (A = −0.75, as PyTorch) of the taps at −1, 0, 1, 2 for a fraction t."""
    a = t.dtype.type(CUBIC_A)

    def near(x):                     # |x| ≤ 1
        return ((a + 2) * x - (a + 3)) * x * x + 1

    def far(x):                      # 1 < |x| < 2
        return ((a * x - 5 * a) * x + 8 * a) * x - 4 * a

    return far(t + 1), near(t), near(1 - t), far(2 - t)


def interpolate(x, size, mode: str = "nearest", align_corners: bool = False, scales=None):
    """x (N, C, L) or (N, C, H, W) → y (N, C, *size), ``size`` the output's spatial sizes, ``scales`` torch's
    scale factors per axis (None, or entries None: the scale comes from the sizes).  Returns (y, cache)."""
    spatial = x.shape[2:]
    scales, two_d = scales or (None,) * len(spatial), len(spatial) == 2
    matrices = [interpolation_matrix(n_in, n_out, mode, align_corners, scale, x.dtype, two_d)
                for n_in, n_out, scale in zip(spatial, size, scales)]
    if mode in ("nearest", "nearest-exact"):
        y = x
        for axis, (n_in, n_out, scale) in enumerate(zip(spatial, size, scales)):
            source = nearest_indices(n_in, n_out, scale, mode == "nearest-exact", x.dtype, two_d)
            y = np.take(y, source, axis=2 + axis)
        return y, matrices
    return _apply(x, matrices, transpose=False), matrices


def interpolate_backward(dy, cache):
    """dX = A_hᵀ · dY · A_w (1-d: dY · A): each output's gradient back to the inputs it read, by their weights."""
    return _apply(dy, cache, transpose=True)


def _apply(x, matrices, transpose: bool):
    """x · A_lastᵀ (one GEMM over all rows of the last axis), then A_first · that for two axes (the transposed
    matrices for the backward)."""
    matrices = [m.T if transpose else m for m in matrices]
    last = matrices[-1]
    y = (x.reshape(-1, x.shape[-1]) @ last.T).reshape(*x.shape[:-1], last.shape[0])
    if len(matrices) == 2:
        y = matrices[0] @ y
    return y


def _taps(o: int, in_size: int, out_size: int, mode: str, align_corners: bool, scale, dtype, two_d: bool):
    """[(input index, weight)] that output ``o`` reads along one axis (of a 2-d input: ``two_d``), PyTorch's scalar
    formulas one output at a time (the reference's; ``interpolation_matrix`` computes them for all outputs)."""
    if mode == "area":
        start, end = adaptive_bins(in_size, out_size)[o]
        return [(i, dtype.type(1) / dtype.type(end - start)) for i in range(start, end)]
    if mode in ("nearest", "nearest-exact"):
        if two_d and mode == "nearest" and out_size in (in_size, 2 * in_size):     # nearest_idx's shortcuts
            return [(o if out_size == in_size else o // 2, 1)]
        f = np.dtype(np.float32) if two_d else dtype
        step = _scale(in_size, out_size, False, scale, f)
        if mode == "nearest-exact":
            position = (f.type(o) + f.type(0.5)) * step if two_d else \
                max(step * (f.type(o) + f.type(0.5)) - f.type(0.5), f.type(0)) + 0.5
        else:
            position = step * f.type(o)
        return [(min(int(np.floor(np.float32(position))), in_size - 1), 1)]
    if mode in ("linear", "bilinear") and out_size == in_size:
        return [(o, 1)]
    step = _scale(in_size, out_size, align_corners, scale, dtype)
    x = step * dtype.type(o) if align_corners else step * (dtype.type(o) + dtype.type(0.5)) - dtype.type(0.5)
    if mode == "bicubic":
        i = int(np.floor(np.float32(x)))
        weights = cubic_weights(np.array([x - dtype.type(i)], dtype=dtype))
        return [(min(max(i - 1 + tap, 0), in_size - 1), weight[0]) for tap, weight in enumerate(weights)]
    x = max(x, dtype.type(0))
    i = min(int(np.floor(np.float32(x))), in_size - 1)
    lam = min(max(x - dtype.type(i), dtype.type(0)), dtype.type(1))
    return [(i, 1 - lam), (min(i + 1, in_size - 1), lam)]


def interpolate_reference(x, size, mode: str = "nearest", align_corners: bool = False, scales=None):
    """Slow interpolation with explicit loops over the output cells, each the weighted sum of the input cells
    its taps name along every axis (``_taps``); for tests only."""
    spatial = x.shape[2:]
    scales = scales or (None,) * len(spatial)
    y = np.zeros(x.shape[:2] + tuple(size), dtype=x.dtype)
    for out in np.ndindex(*size):
        taps = [_taps(o, n_in, n_out, mode, align_corners, scale, x.dtype, len(spatial) == 2)
                for o, n_in, n_out, scale in zip(out, spatial, size, scales)]
        for combination in np.ndindex(*[len(t) for t in taps]):
            source = tuple(t[k][0] for t, k in zip(taps, combination))
            weight = np.prod([t[k][1] for t, k in zip(taps, combination)])
            y[(...,) + out] += weight * x[(...,) + source]
    return y
