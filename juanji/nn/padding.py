"""Padding layers, as ``torch.nn``'s: ZeroPad, ConstantPad, ReflectionPad, ReplicationPad and CircularPad,
each in 1-d (the last axis) and 2-d (the last two), on the kernels of ``juanji.functional.pad``.

``padding`` is an int (every side) or torch's tuple (left, right) / (left, right, top, bottom); a negative
amount crops.  1-d: x (N, C, L) or (C, L); 2-d: x (N, C, H, W) or (C, H, W) — and, for the zero and constant
pads, any input with at least the padded axes, as torch.
y (…, H + top + bottom, W + left + right);  dX: the gradient of each output entry added to the entry it copied.
"""
from __future__ import annotations

import numbers

import numpy as np

from ..functional import pad as F
from .module import Module


class _PadNd(Module):
    """A padding layer: ``dims`` padded axes, ``mode`` of ``functional.pad``; ``value`` for the constant."""

    dims: int
    mode: str
    value = 0.0
    any_rank = False        # reflect, replicate, circular: (C, …) or (N, C, …) as torch; the constant: any rank

    def __init__(self, padding):
        super().__init__()
        count = 2 * self.dims
        name, given = type(self).__name__, padding
        if isinstance(padding, (int, np.integer)) and not isinstance(padding, bool):
            padding = (int(padding),) * count
        try:
            padding = tuple(padding)
        except TypeError:
            padding = None
        if padding is None or len(padding) != count or not all(
                isinstance(p, (int, np.integer)) and not isinstance(p, bool) for p in padding):
            sides = "(left, right)" if self.dims == 1 else "(left, right, top, bottom)"
            raise TypeError(f"{name}: padding must be an int or a tuple of {count} ints {sides}, got {given!r}")
        self.padding = tuple(int(p) for p in padding)
        self.pads = F.pairs(self.padding)      # ((top, bottom), (left, right)) or ((left, right),): functional.pad's

    def forward(self, x):
        if not isinstance(x, np.ndarray):
            raise TypeError(f"{self!r}: expected a NumPy array, got {type(x).__name__}")
        axes = "L" if self.dims == 1 else "H, W"
        if self.any_rank and x.ndim < self.dims:
            raise ValueError(f"{self!r}: expected input of shape (…, {axes}), got {x.ndim}-D input of shape {x.shape}")
        if not self.any_rank and x.ndim not in (self.dims + 1, self.dims + 2):
            raise ValueError(f"{self!r}: expected input of shape (N, C, {axes}) or (C, {axes}), got {x.ndim}-D "
                             f"input of shape {x.shape}")
        try:
            y = F.pad(x, self.pads, self.mode, self.value)
        except ValueError as error:
            raise ValueError(f"{self!r}: {error}") from None
        self.save_for_backward(x.shape)
        return y

    def backward(self, dy):
        shape, = self.saved_for_backward()
        return F.pad_backward(dy, shape, self.pads, self.mode)

    def extra_repr(self):
        return f"{self.padding}"


class _ConstantPadNd(_PadNd):
    mode, any_rank = "constant", True

    def __init__(self, padding, value: float):
        super().__init__(padding)
        if not isinstance(value, numbers.Real) or isinstance(value, bool):
            raise TypeError(f"{type(self).__name__}: value must be a number, got {value!r}")
        self.value = value

    def extra_repr(self):
        return f"padding={self.padding}, value={self.value}"


class ConstantPad1d(_ConstantPadNd):
    """Pads the last axis with ``value``: (…, L) → (…, left + L + right)."""
    dims = 1


class ConstantPad2d(_ConstantPadNd):
    """Pads the last two axes with ``value``: (…, H, W) → (…, top + H + bottom, left + W + right)."""
    dims = 2


class ZeroPad1d(ConstantPad1d):
    """Pads the last axis with zeros."""

    def __init__(self, padding):
        super().__init__(padding, 0.0)

    extra_repr = _PadNd.extra_repr


class ZeroPad2d(ConstantPad2d):
    """Pads the last two axes with zeros."""

    def __init__(self, padding):
        super().__init__(padding, 0.0)

    extra_repr = _PadNd.extra_repr


class ReflectionPad1d(_PadNd):
    """Mirrors about the edge entries (not repeated): each side less than the length."""
    dims, mode = 1, "reflect"


class ReflectionPad2d(_PadNd):
    """Mirrors about the edge rows and columns (not repeated): each side less than that axis' size."""
    dims, mode = 2, "reflect"


class ReplicationPad1d(_PadNd):
    """Repeats the edge entries."""
    dims, mode = 1, "replicate"


class ReplicationPad2d(_PadNd):
    """Repeats the edge rows and columns."""
    dims, mode = 2, "replicate"


class CircularPad1d(_PadNd):
    """Wraps around: the padding repeats the other end (at most once round)."""
    dims, mode = 1, "circular"


class CircularPad2d(_PadNd):
    """Wraps around along both axes (a torus; at most once round)."""
    dims, mode = 2, "circular"
