"""Pooling over sequences, torch's 1-d layers — MaxPool1d, AvgPool1d, MaxUnpool1d, AdaptiveAvgPool1d,
AdaptiveMaxPool1d, on the 2-d kernels with H = 1 — and GlobalMaxPool1d, the max-over-time of Kim (2014)'s
text CNN."""
from __future__ import annotations

from ..functional import pool as P
from ..functional import pool1d as F
from ..functional import spp as S
from .module import Module
from .pooling import AdaptivePool, _AvgPool, _MaxPool, _Unpool


class MaxPool1d(_MaxPool):
    """``torch.nn.MaxPool1d``: x (N, C, L) or (C, L) → y (N, C, L'),  L' = ⌊(L + 2P − D(k − 1) − 1)/s⌋ + 1
    (⌈…⌉ with ceil_mode).  ``return_indices=True``: forward returns (y, indices), the position of each maximum
    along L.  Backward routes each gradient to its window's first maximum."""

    dims = 1

    def __init__(self, kernel_size, stride=None, padding=0, dilation=1, return_indices: bool = False,
                 ceil_mode: bool = False):
        super().__init__(kernel_size, stride, padding, dilation, return_indices, ceil_mode)


class AvgPool1d(_AvgPool):
    """``torch.nn.AvgPool1d``: x (N, C, L) or (C, L) → y (N, C, L'),  L' = ⌊(L + 2P − k)/s⌋ + 1; the divisor
    counts the padding when ``count_include_pad``, never the cells ceil_mode adds."""

    dims = 1

    def __init__(self, kernel_size, stride=None, padding=0, ceil_mode: bool = False, count_include_pad: bool = True):
        super().__init__(kernel_size, stride, padding, ceil_mode, count_include_pad)


class MaxUnpool1d(_Unpool):
    """``torch.nn.MaxUnpool1d``: ``forward(x, indices, output_size=None)`` puts each value at its index (from
    MaxPool1d(return_indices=True)) in a zero sequence of length (l − 1)·stride − 2P + k, or ``output_size``."""

    dims = 1

    def __init__(self, kernel_size, stride=None, padding=0):
        super().__init__(kernel_size, stride, padding)


class AdaptiveAvgPool1d(AdaptivePool):
    """``torch.nn.AdaptiveAvgPool1d``: x (N, C, L) or (C, L) → y (N, C, output_size), the mean of each adaptive
    bin [⌊i·L/l⌋, ⌈(i+1)·L/l⌉)."""

    dims = 1
    pool, pool_backward = P.adaptive_avg_pool2d, P.adaptive_avg_pool2d_backward

    def __init__(self, output_size):
        super().__init__(output_size)


class AdaptiveMaxPool1d(AdaptivePool):
    """``torch.nn.AdaptiveMaxPool1d``: x (N, C, L) or (C, L) → y (N, C, output_size), the maximum of each adaptive
    bin (``return_indices``: and its position along L).  Backward routes each gradient to its bin's first maximum."""

    dims = 1
    pool, pool_backward, pool_indices = S.adaptive_max_pool2d, S.adaptive_max_pool2d_backward, \
        S.adaptive_max_pool2d_indices

    def __init__(self, output_size, return_indices: bool = False):
        super().__init__(output_size, return_indices)


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
