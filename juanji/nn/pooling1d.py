"""Pooling over sequences: GlobalMaxPool1d, the max-over-time of Kim (2014)'s text CNN."""
from __future__ import annotations

from ..functional import pool1d as F
from .module import Module


class GlobalMaxPool1d(Module):
    """x (N, C, L) → y (N, C) = max over L (Keras' GlobalMaxPooling1D; ``torch.amax(x, 2)``).

    dX = dY at each channel's arg-max position (the first, on ties), 0 elsewhere."""

    def forward(self, x):
        self._check_input(x, "(N, C, L)", 3)
        if x.shape[2] == 0:
            raise ValueError(f"{self!r}: cannot take the maximum of an empty sequence (L = 0)")
        y, cache = F.global_max_pool1d(x)
        self.save_for_backward(cache)
        return y

    def backward(self, dy):
        cache, = self.saved_for_backward()
        return F.global_max_pool1d_backward(dy, cache)
