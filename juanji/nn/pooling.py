"""Pooling layers: MaxPool2d, AvgPool2d, AdaptiveAvgPool2d and GlobalAvgPool2d (no parameters)."""
from __future__ import annotations

from ..functional import geometry
from ..functional import pool as F
from .module import Module


class _Pool2d(Module):
    def __init__(self, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False):
        super().__init__()
        try:
            self.kernel_size = geometry.pair(kernel_size, "kernel_size")
            self.stride = self.kernel_size if stride is None else geometry.pair(stride, "stride")
            self.padding = geometry.pair(padding, "padding")
            self.dilation = geometry.pair(dilation, "dilation")
        except TypeError as error:
            raise TypeError(f"{type(self).__name__}: {error}") from None
        if min(self.kernel_size + self.stride + self.dilation) <= 0 or min(self.padding) < 0:
            raise ValueError(f"{type(self).__name__}: kernel_size, stride and dilation must be positive "
                             f"and padding non-negative")
        reach = [d * (k - 1) + 1 for d, k in zip(self.dilation, self.kernel_size)]
        if any(2 * p > r for p, r in zip(self.padding, reach)):
            raise ValueError(f"{type(self).__name__}: padding {self.padding} must be at most half of the "
                             f"(dilated) kernel size {tuple(reach)}")
        self.ceil_mode = ceil_mode

    def _check(self, x):
        self._check_input(x, "(N, C, H, W)", 4)
        try:
            geometry.check_window_fits(x.shape[2:], self.kernel_size, [(p, p) for p in self.padding],
                                       self.dilation)
        except ValueError as error:
            raise ValueError(f"{self!r}: {error}") from None

    def output_shape(self, input_shape):
        """(N, C, H', W') for an input of shape (N, C, H, W)."""
        return (*input_shape[:2], *geometry.output_shape(input_shape[2:], self.kernel_size, self.stride,
                                                         [(p, p) for p in self.padding], self.dilation,
                                                         self.ceil_mode))

    def extra_repr(self):
        return (f"kernel_size={self.kernel_size}, stride={self.stride}, padding={self.padding}"
                + (", ceil_mode=True" if self.ceil_mode else ""))


class MaxPool2d(_Pool2d):
    """Max pooling, ``torch.nn.MaxPool2d`` (stride defaults to kernel_size; windows may overlap).

    x (N, C, H, W) → y (N, C, H', W'),  H' = ⌊(H + 2P − D(k − 1) − 1)/s⌋ + 1.
    Backward routes each gradient to the arg-max of its window; on ties, to the first position.
    """

    def forward(self, x):
        self._check(x)
        y, cache = F.max_pool2d(x, self.kernel_size, self.stride, self.padding, self.dilation, self.ceil_mode)
        self.save_for_backward(cache)
        return y

    def backward(self, dy):
        cache, = self.saved_for_backward()
        return F.max_pool2d_backward(dy, cache)


class AvgPool2d(_Pool2d):
    """Average pooling, ``torch.nn.AvgPool2d``; backward spreads each gradient evenly over its window.

    x (N, C, H, W) → y (N, C, H', W'),  H' = ⌊(H + 2P − k)/s⌋ + 1.
    """

    def __init__(self, kernel_size, stride=None, padding=0, ceil_mode=False, count_include_pad=True):
        super().__init__(kernel_size, stride, padding, 1, ceil_mode)
        self.count_include_pad = count_include_pad

    def forward(self, x):
        self._check(x)
        y, cache = F.avg_pool2d(x, self.kernel_size, self.stride, self.padding, self.ceil_mode,
                                self.count_include_pad)
        self.save_for_backward(cache)
        return y

    def backward(self, dy):
        cache, = self.saved_for_backward()
        return F.avg_pool2d_backward(dy, cache)


class AdaptivePool2d(Module):
    """Base of the adaptive poolings: x (N, C, H, W) → y (N, C, *output_size) over PyTorch's adaptive bins;
    a subclass names its kernel pair (``pool``, ``pool_backward``)."""

    pool = pool_backward = None

    def __init__(self, output_size):
        super().__init__()
        self.output_size = geometry.pair(output_size, "output_size")

    def forward(self, x):
        self._check_input(x, "(N, C, H, W)", 4)
        y, cache = type(self).pool(x, self.output_size)
        self.save_for_backward(cache)
        return y

    def backward(self, dy):
        cache, = self.saved_for_backward()
        return type(self).pool_backward(dy, cache)

    def extra_repr(self):
        return f"output_size={self.output_size}"


class AdaptiveAvgPool2d(AdaptivePool2d):
    """``torch.nn.AdaptiveAvgPool2d``: the mean of each bin; backward spreads it evenly over the bin."""

    pool, pool_backward = F.adaptive_avg_pool2d, F.adaptive_avg_pool2d_backward


class GlobalAvgPool2d(Module):
    """Global average pooling (Keras' GlobalAveragePooling2D): x (N, C, H, W) → y (N, C).

    dX = dY / (H·W) at every pixel."""

    def forward(self, x):
        self._check_input(x, "(N, C, H, W)", 4)
        self.save_for_backward(x.shape)
        return x.mean(axis=(2, 3))

    def backward(self, dy):
        (n, c, h, w), = self.saved_for_backward()
        return (dy / (h * w))[:, :, None, None].repeat(h, axis=2).repeat(w, axis=3)
