"""Pooling layers over images: MaxPool2d (with indices), MaxUnpool2d, AvgPool2d, AdaptiveAvgPool2d and
GlobalAvgPool2d (no parameters); the bases here also serve the 1-d layers of ``pooling1d``, which run the same
kernels with H = 1."""
from __future__ import annotations

import numpy as np

from ..functional import geometry
from ..functional import pool as F
from ..functional.plan import Plans, plan_max_pool
from .module import Module
from .normalization import check_ints


class _Spatial(Module):
    """Inputs of ``dims`` spatial axes, batched (N, C, …) or not (C, …), and their 4-d view for the kernels
    ((N, C, 1, L) for one axis); ``_to_kernel`` and ``_from_kernel`` go there and back."""

    dims = 2

    @property
    def _shape_desc(self) -> str:
        axes = "L" if self.dims == 1 else "H, W"
        return f"(N, C, {axes}) or (C, {axes})"

    def _to_kernel(self, x):
        """(the 4-d view of x, whether x was unbatched), after checking x."""
        self._check_input(x, self._shape_desc, (self.dims + 1, self.dims + 2))
        unbatched = x.ndim == self.dims + 1
        x4 = x[None] if unbatched else x
        return (x4[:, :, None, :] if self.dims == 1 else x4), unbatched

    def _from_kernel(self, y, unbatched):
        """A kernel's 4-d result (output or indices) in the layout of the input."""
        y = y[:, :, 0, :] if self.dims == 1 else y
        return y[0] if unbatched else y

    def _tuple(self, value, key: str, low: int) -> tuple[int, ...]:
        return check_ints(type(self).__name__, key, value, self.dims, low)

    def _flag(self, value, key: str) -> bool:
        if not isinstance(value, (bool, np.bool_)):
            raise TypeError(f"{type(self).__name__}: {key} must be True or False, got {value!r}")
        return bool(value)

    def _pair(self, values, neutral: int):
        """A layer's ``dims``-tuple as the kernels' pair: (neutral, v) for one axis."""
        return tuple(values) if self.dims == 2 else (neutral, *values)


class _Pool(_Spatial):
    """Sliding-window pooling: kernel_size, stride (None: kernel_size), padding (at most ⌊kernel/2⌋ along each
    axis, torch's rule, whatever the dilation), dilation and ceil_mode, validated here; ``geometry`` gives the
    kernels' pairs."""

    def __init__(self, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False):
        super().__init__()
        self.kernel_size = self._tuple(kernel_size, "kernel_size", 1)
        self.stride = self.kernel_size if stride is None else self._tuple(stride, "stride", 1)
        self.padding = self._tuple(padding, "padding", 0)
        self.dilation = self._tuple(dilation, "dilation", 1)
        self.ceil_mode = self._flag(ceil_mode, "ceil_mode")
        if any(p > k // 2 for p, k in zip(self.padding, self.kernel_size)):
            raise ValueError(f"{type(self).__name__}: padding {self.padding} must be at most half of the "
                             f"kernel size {self.kernel_size}")

    def geometry(self):
        """(kernel_size, stride, padding, dilation) as pairs, for the 2-d kernels."""
        return (self._pair(self.kernel_size, 1), self._pair(self.stride, 1), self._pair(self.padding, 0),
                self._pair(self.dilation, 1))

    def _check_fits(self, shape):
        """ValueError naming the layer unless the window fits in an input of ``shape`` (N, C, H, W) and its padding."""
        kernel_size, _, padding, dilation = self.geometry()
        try:
            geometry.check_window_fits(shape[2:], kernel_size, [(p, p) for p in padding], dilation)
        except ValueError as error:
            raise ValueError(f"{self!r}: {error}") from None

    def output_shape(self, input_shape):
        """The output's shape for an input of shape (N, C, …) or (C, …)."""
        kernel_size, stride, padding, dilation = self.geometry()
        spatial = tuple(input_shape[-self.dims:])
        out = geometry.output_shape((1,) * (2 - self.dims) + spatial, kernel_size, stride,
                                    [(p, p) for p in padding], dilation, self.ceil_mode)
        return (*input_shape[:-self.dims], *out[2 - self.dims:])

    def extra_repr(self):
        one = (lambda v: v[0]) if self.dims == 1 else (lambda v: v)
        text = f"kernel_size={one(self.kernel_size)}, stride={one(self.stride)}, padding={one(self.padding)}"
        if self.dilation != (1,) * self.dims:
            text += f", dilation={one(self.dilation)}"
        return text + (", ceil_mode=True" if self.ceil_mode else "")


class _MaxPool(_Pool):
    """Max pooling of 1 or 2 axes; ``return_indices``: forward returns (y, indices), PyTorch's int64 flat index of
    each maximum in its input plane (row · W + column; the position along L in 1-d), what MaxUnpool takes."""

    def __init__(self, kernel_size, stride=None, padding=0, dilation=1, return_indices=False, ceil_mode=False):
        super().__init__(kernel_size, stride, padding, dilation, ceil_mode)
        self.return_indices = self._flag(return_indices, "return_indices")
        self._plans = Plans()           # each input shape's geometry and kernels, derived once

    def forward(self, x):
        x4, unbatched = self._to_kernel(x)
        y, cache = F.max_pool2d_windows(x4, *self._plans.get(x4.shape, lambda: self._plan(x4.shape)))
        self.save_for_backward(cache, unbatched)
        if self.return_indices:
            return self._from_kernel(y, unbatched), self._from_kernel(F.max_pool2d_indices(cache), unbatched)
        return self._from_kernel(y, unbatched)

    def _plan(self, shape):
        """(the kernels' geometry, their plan) for inputs of ``shape`` (N, C, H, W), once the window is known to
        fit: all that depends on the shape alone, derived at its first input (``Plans``)."""
        self._check_fits(shape)
        geometry = F.pool_geometry(shape, *self.geometry(), self.ceil_mode)
        return geometry, plan_max_pool(shape, *geometry)

    def backward(self, dy):
        cache, unbatched = self.saved_for_backward()
        dy4 = dy[None] if unbatched else dy
        return self._from_kernel(F.max_pool2d_backward(dy4[:, :, None, :] if self.dims == 1 else dy4, cache),
                                 unbatched)

    def extra_repr(self):
        return super().extra_repr() + (", return_indices=True" if self.return_indices else "")


class MaxPool2d(_MaxPool):
    """Max pooling, ``torch.nn.MaxPool2d`` (stride defaults to kernel_size; windows may overlap).

    x (N, C, H, W) or (C, H, W) → y (N, C, H', W'),  H' = ⌊(H + 2P − D(k − 1) − 1)/s⌋ + 1 (⌈…⌉ with ceil_mode).
    Backward routes each gradient to the arg-max of its window; on ties, to the first position.
    ``return_indices=True``: forward returns (y, indices), as torch.
    """

    def __init__(self, kernel_size, stride=None, padding=0, dilation=1, return_indices: bool = False,
                 ceil_mode: bool = False):
        super().__init__(kernel_size, stride, padding, dilation, return_indices, ceil_mode)


class _AvgPool(_Pool):
    """Average pooling of 1 or 2 axes (no dilation)."""

    def __init__(self, kernel_size, stride=None, padding=0, ceil_mode=False, count_include_pad=True,
                 divisor_override=None):
        super().__init__(kernel_size, stride, padding, 1, ceil_mode)
        self.count_include_pad = self._flag(count_include_pad, "count_include_pad")
        if divisor_override is not None and (not isinstance(divisor_override, (int, np.integer))
                                             or isinstance(divisor_override, bool) or divisor_override == 0):
            raise ValueError(f"{type(self).__name__}: divisor_override must be None or a nonzero int, "
                             f"got {divisor_override!r}")
        self.divisor_override = None if divisor_override is None else int(divisor_override)

    def forward(self, x):
        x4, unbatched = self._to_kernel(x)
        self._check_fits(x4.shape)
        kernel_size, stride, padding, _ = self.geometry()
        y, cache = F.avg_pool2d(x4, kernel_size, stride, padding, self.ceil_mode, self.count_include_pad,
                                self.divisor_override)
        self.save_for_backward(cache, unbatched)
        return self._from_kernel(y, unbatched)

    def backward(self, dy):
        cache, unbatched = self.saved_for_backward()
        dy4 = dy[None] if unbatched else dy
        return self._from_kernel(F.avg_pool2d_backward(dy4[:, :, None, :] if self.dims == 1 else dy4, cache),
                                 unbatched)

    def extra_repr(self):
        text = super().extra_repr() + ("" if self.count_include_pad else ", count_include_pad=False")
        return text + ("" if self.divisor_override is None else f", divisor_override={self.divisor_override}")


class AvgPool2d(_AvgPool):
    """Average pooling, ``torch.nn.AvgPool2d``; backward spreads each gradient evenly over its window.

    x (N, C, H, W) or (C, H, W) → y (N, C, H', W'),  H' = ⌊(H + 2P − k)/s⌋ + 1 (⌈…⌉ with ceil_mode).
    The divisor: the window's cells in the input and its padding (``count_include_pad``) or in the input alone,
    never the cells ceil_mode adds; or ``divisor_override``.
    """

    def __init__(self, kernel_size, stride=None, padding=0, ceil_mode: bool = False, count_include_pad: bool = True,
                 divisor_override=None):
        super().__init__(kernel_size, stride, padding, ceil_mode, count_include_pad, divisor_override)


class _Unpool(_Spatial):
    """The partial inverse of max pooling: each input value put at its index in a zero output (torch's MaxUnpool);
    backward: dX = dY at the indices."""

    def __init__(self, kernel_size, stride=None, padding=0):
        super().__init__()
        self.kernel_size = self._tuple(kernel_size, "kernel_size", 1)
        self.stride = self.kernel_size if stride is None else self._tuple(stride, "stride", 1)
        self.padding = self._tuple(padding, "padding", 0)

    def forward(self, x, indices, output_size=None):
        x4, unbatched = self._to_kernel(x)
        if not isinstance(indices, np.ndarray) or indices.dtype.kind not in "iu" or indices.shape != x.shape:
            raise ValueError(f"{self!r}: indices must be an integer array of the input's shape {x.shape} (what "
                             f"MaxPool with return_indices=True returns), got "
                             f"{getattr(indices, 'dtype', type(indices).__name__)} of shape {np.shape(indices)}")
        try:
            size = F.unpool_output_size(x.shape[-self.dims:], self.kernel_size, self.stride, self.padding,
                                        output_size)
            if min(size) <= 0:
                raise ValueError(f"the output size {size} is not positive")
            indices4 = indices[None] if unbatched else indices
            y, cache = F.max_unpool2d(x4, indices4[:, :, None, :] if self.dims == 1 else indices4,
                                      (1, *size) if self.dims == 1 else size)
        except ValueError as error:
            raise ValueError(f"{self!r}: {error}") from None
        self.save_for_backward(cache, unbatched)
        return self._from_kernel(y, unbatched)

    def backward(self, dy):
        cache, unbatched = self.saved_for_backward()
        dy4 = dy[None] if unbatched else dy
        return self._from_kernel(F.max_unpool2d_backward(dy4[:, :, None, :] if self.dims == 1 else dy4, cache),
                                 unbatched)

    def extra_repr(self):
        one = (lambda v: v[0]) if self.dims == 1 else (lambda v: v)
        return f"kernel_size={one(self.kernel_size)}, stride={one(self.stride)}, padding={one(self.padding)}"


class MaxUnpool2d(_Unpool):
    """``torch.nn.MaxUnpool2d``: ``forward(x, indices, output_size=None)`` puts each value of x at its index (from
    MaxPool2d(return_indices=True)) in a zero map of size (h − 1)·stride − 2P + k, or ``output_size`` (within
    stride of that).  x, indices (N, C, h, w) or (C, h, w) → y (N, C, H, W); dX = dY at the indices."""

    def __init__(self, kernel_size, stride=None, padding=0):
        super().__init__(kernel_size, stride, padding)


class AdaptivePool(_Spatial):
    """Base of the adaptive poolings: x (N, C, …) or (C, …) → y (N, C, *output_size) over PyTorch's adaptive bins;
    in 2-d an entry of output_size may be None, keeping that axis's input size.  A subclass names its kernels
    (``pool``, ``pool_backward``, and ``pool_indices`` for the max poolings' ``return_indices``)."""

    pool = pool_backward = pool_indices = None

    def __init__(self, output_size, return_indices=False):
        super().__init__()
        name = type(self).__name__
        values = (output_size,) * self.dims if isinstance(output_size, (int, np.integer)) else output_size
        allowed = (int, np.integer, type(None)) if self.dims == 2 else (int, np.integer)
        if (not isinstance(values, (tuple, list)) or len(values) != self.dims
                or not all(isinstance(v, allowed) and not isinstance(v, bool) for v in values)):
            what = "ints or None" if self.dims == 2 else "int"
            raise TypeError(f"{name}: output_size must be an int or a tuple of {self.dims} {what}, "
                            f"got {output_size!r}")
        if any(v is not None and v <= 0 for v in values):
            raise ValueError(f"{name}: output_size must be positive, got {output_size!r}")
        self.output_size = tuple(None if v is None else int(v) for v in values)
        self.return_indices = self._flag(return_indices, "return_indices")

    def resolved_output_size(self, spatial) -> tuple[int, ...]:
        """output_size with each None replaced by the input's size along that axis."""
        return tuple(size if out is None else out for out, size in zip(self.output_size, spatial))

    def forward(self, x):
        x4, unbatched = self._to_kernel(x)
        out = self._pair(self.resolved_output_size(x.shape[-self.dims:]), 1)
        try:
            y, cache = type(self).pool(x4, out)
        except ValueError as error:
            raise ValueError(f"{self!r}: {error}") from None
        self.save_for_backward(cache, unbatched)
        if self.return_indices:
            return self._from_kernel(y, unbatched), self._from_kernel(type(self).pool_indices(cache), unbatched)
        return self._from_kernel(y, unbatched)

    def backward(self, dy):
        cache, unbatched = self.saved_for_backward()
        dy4 = dy[None] if unbatched else dy
        return self._from_kernel(type(self).pool_backward(dy4[:, :, None, :] if self.dims == 1 else dy4, cache),
                                 unbatched)

    def extra_repr(self):
        size = self.output_size[0] if self.dims == 1 else self.output_size
        return f"output_size={size}" + (", return_indices=True" if self.return_indices else "")


class AdaptiveAvgPool2d(AdaptivePool):
    """``torch.nn.AdaptiveAvgPool2d``: the mean of each bin; backward spreads it evenly over the bin."""

    pool, pool_backward = F.adaptive_avg_pool2d, F.adaptive_avg_pool2d_backward

    def __init__(self, output_size):
        super().__init__(output_size)


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
