"""Padding kernels, as ``torch.nn.functional.pad``: constant, reflect, replicate and circular padding of the
last axes of an array, negative amounts cropping, and the backward that folds the padded gradient back.

``pads`` holds one (before, after) pair per padded axis, in axis order: ((top, bottom), (left, right)) for
the last two axes of (N, C, H, W), ((left, right),) for the last axis of (N, C, L); torch's flat
(left, right, top, bottom) becomes pairs through ``pairs``.  Along an axis of size L padded by (a, b) the
output has L + a + b entries; output o reads input position i = o − a where 0 ≤ i < L, and elsewhere

    constant   the value
    reflect    the mirror image about the first and last entries (not repeated): −i, or 2(L − 1) − i
    replicate  the nearest edge entry: clip(i, 0, L − 1)
    circular   the array cropped by the negative amounts, repeated with its own period L': wraps once

The padded axes are independent (a corner reads the row's and the column's rule), so the kernels pad one
axis at a time.  Backward: dX[i] = Σ dY[o] over the outputs o that read input i (none for the constant).
"""
from __future__ import annotations

import itertools

import numpy as np

MODES = ("constant", "reflect", "replicate", "circular")


def pairs(padding) -> tuple[tuple[int, int], ...]:
    """torch's flat padding (left, right[, top, bottom]) — the last axis first — as (before, after) pairs in
    axis order: (1, 2, 3, 4) → ((3, 4), (1, 2))."""
    flat = tuple(padding)
    return tuple((flat[i], flat[i + 1]) for i in range(len(flat) - 2, -1, -2))


def check(shape, pads, mode: str) -> None:
    """torch's rules for padding an array of ``shape`` by ``pads`` in ``mode``; a ValueError saying which
    axis breaks which rule (the caller adds the layer's name)."""
    if mode not in MODES:
        raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
    if len(pads) > len(shape):
        raise ValueError(f"cannot pad the last {len(pads)} axes of a {len(shape)}-D input of shape {tuple(shape)}")
    first = len(shape) - len(pads)
    for axis, (before, after) in enumerate(pads, start=first):
        size = shape[axis]
        out, kept = size + before + after, size + min(before, 0) + min(after, 0)
        where = f"padding {(before, after)} of axis {axis} (size {size})"
        if mode in ("constant", "circular") and kept < 0:
            raise ValueError(f"{where} crops more than the axis holds")
        if mode == "circular" and (before > kept or after > kept):
            raise ValueError(f"circular {where} wraps around more than once: at most {kept} on a side, the size "
                             f"left after cropping")
        if mode == "reflect" and (before >= size or after >= size):
            raise ValueError(f"reflect {where}: each side must be less than the size")
        if out < 0:
            raise ValueError(f"{where} leaves a negative size {out}")
    if mode in ("reflect", "replicate"):
        if 0 in shape[1:]:
            raise ValueError(f"{mode} padding needs non-empty axes after the first, got shape {tuple(shape)}")
        outs = [shape[axis] + before + after for axis, (before, after) in enumerate(pads, start=first)]
        if max(outs) < 1:       # torch's rule: one padded axis of size 0 passes if another is not empty
            raise ValueError(f"{mode} padding {tuple(pads)} of shape {tuple(shape)} leaves no entry (output "
                             f"sizes {tuple(outs)})")


def sources(size: int, before: int, after: int, mode: str) -> np.ndarray:
    """The input position each output position along one axis reads: (size + before + after,) ints, −1 where
    the constant goes."""
    i = np.arange(-before, size + after)
    if mode == "constant":
        return np.where((i >= 0) & (i < size), i, -1)
    if mode == "reflect":
        return np.where(i < 0, -i, np.where(i >= size, 2 * (size - 1) - i, i))
    if mode == "replicate":
        return np.clip(i, 0, size - 1)
    start, kept = max(-before, 0), size - max(-before, 0) - max(-after, 0)
    return start + (np.arange(i.size) - max(before, 0)) % max(kept, 1)


def _spans(size: int, before: int, after: int):
    """(output slice, input slice) of the entries copied unchanged, and the output positions of the border."""
    out = size + before + after
    lo = min(max(before, 0), out)
    hi = max(out - max(after, 0), lo)                  # lo = hi: nothing copied (reflect may crop past it)
    inner = slice(max(-before, 0), max(-before, 0) + hi - lo)
    return slice(lo, hi), inner, np.r_[0:lo, hi:out]


def pad(x: np.ndarray, pads, mode: str = "constant", value: float = 0.0) -> np.ndarray:
    """x (…, L₁, …, L_k) → y (…, L₁ + a₁ + b₁, …) padded (a crop where negative) by pads = ((a₁, b₁), …) in
    ``mode`` (``value`` for the constant).  A new array of x's dtype; per axis, the inside is one copy and
    the border one gather (or one fill)."""
    check(x.shape, pads, mode)
    first, given = x.ndim - len(pads), x
    for axis, (before, after) in enumerate(pads, start=first):
        if before == after == 0:
            continue
        size = x.shape[axis]
        out_slice, in_slice, border = _spans(size, before, after)
        shape = list(x.shape)
        shape[axis] = size + before + after
        y = np.empty(shape, dtype=x.dtype)
        index = (slice(None),) * axis
        y[index + (out_slice,)] = x[index + (in_slice,)]
        if border.size:
            if mode == "constant":
                y[index + (border,)] = value
            else:
                y[index + (border,)] = np.take(x, sources(size, before, after, mode)[border], axis=axis)
        x = y
    return x.copy() if x is given else x


def pad_backward(dy: np.ndarray, x_shape, pads, mode: str = "constant") -> np.ndarray:
    """dX (x_shape) for dY of ``pad``: the inside copied back, each border entry's gradient added to the
    input entry it read (np.add.at: a border may read one entry several times), cropped entries 0.
        dX[i] = Σ_{o : source(o) = i} dY[o]"""
    first, given = len(x_shape) - len(pads), dy
    for axis in reversed(range(first, len(x_shape))):
        before, after = pads[axis - first]
        if before == after == 0:
            continue
        size = x_shape[axis]
        out_slice, in_slice, border = _spans(size, before, after)
        shape = list(dy.shape)
        shape[axis] = size
        dx = np.zeros(shape, dtype=dy.dtype)
        index = (slice(None),) * axis
        dx[index + (in_slice,)] = dy[index + (out_slice,)]
        if border.size and mode != "constant":
            np.add.at(np.moveaxis(dx, axis, 0), sources(size, before, after, mode)[border],
                      np.moveaxis(dy[index + (border,)], axis, 0))
        dy = dx
    return dy.copy() if dy is given else dy


def _source(i: int, size: int, before: int, after: int, mode: str) -> int:
    """The rule of the module docstring for one input position i = o − before; −1 for the constant."""
    if 0 <= i < size and (mode != "circular" or max(-before, 0) <= i < size - max(-after, 0)):
        return i
    if mode == "constant":
        return -1
    if mode == "reflect":
        return -i if i < 0 else 2 * (size - 1) - i
    if mode == "replicate":
        return min(max(i, 0), size - 1)
    start, stop = max(-before, 0), size - max(-after, 0)
    return start + (i - start) % (stop - start)


def pad_reference(x, pads, mode="constant", value=0.0):
    """Slow and obvious: every output entry looked up by ``_source`` along each padded axis; for tests only."""
    first = x.ndim - len(pads)
    sizes = [x.shape[first + a] + b + c for a, (b, c) in enumerate(pads)]
    y = np.empty(x.shape[:first] + tuple(sizes), dtype=x.dtype)
    for out in itertools.product(*map(range, sizes)):
        read = [_source(o - b, x.shape[first + a], b, c, mode) for a, (o, (b, c)) in enumerate(zip(out, pads))]
        y[(Ellipsis, *out)] = value if -1 in read else x[(Ellipsis, *read)]
    return y


def pad_backward_reference(dy, x_shape, pads, mode="constant"):
    """Slow and obvious: every output entry's gradient added to the input entry it read; for tests only."""
    first = len(x_shape) - len(pads)
    dx = np.zeros(x_shape, dtype=dy.dtype)
    for out in itertools.product(*map(range, dy.shape[first:])):
        read = [_source(o - b, x_shape[first + a], b, c, mode) for a, (o, (b, c)) in enumerate(zip(out, pads))]
        if -1 not in read:
            dx[(Ellipsis, *read)] += dy[(Ellipsis, *out)]
    return dx
