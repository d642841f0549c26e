"""Permute: reorder the axes of a tensor, e.g. an embedding's (N, L, E) into Conv1d's (N, E, L)."""
from __future__ import annotations

import numpy as np

from .module import Module


class Permute(Module):
    """y = x.transpose(dims) (``torch.permute`` as a layer);  dX = dY.transpose(inverse of dims)."""

    def __init__(self, *dims: int):
        super().__init__()
        if sorted(dims) != list(range(len(dims))):
            raise ValueError(f"Permute: dims must be a permutation of 0..{len(dims) - 1}, got {dims}")
        self.dims = tuple(dims)
        self._inverse = tuple(np.argsort(dims))

    def forward(self, x):
        if not isinstance(x, np.ndarray) or x.ndim != len(self.dims):
            got = f"{x.ndim}-D input of shape {x.shape}" if isinstance(x, np.ndarray) else type(x).__name__
            raise ValueError(f"{self!r}: expected a {len(self.dims)}-D array, got {got}")
        self.save_for_backward()        # nothing to keep, but backward still needs a forward before it
        return np.ascontiguousarray(x.transpose(self.dims))

    def backward(self, dy):
        self.saved_for_backward()
        return np.ascontiguousarray(dy.transpose(self._inverse))

    def extra_repr(self):
        return ", ".join(map(str, self.dims))
