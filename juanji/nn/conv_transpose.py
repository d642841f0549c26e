"""ConvTranspose2d and ConvTranspose1d ("deconvolutions", learned upsampling) on
``juanji.functional.conv_transpose``."""
from __future__ import annotations

import math

import numpy as np

from .. import random as jrandom
from ..functional import conv_transpose as F
from ..functional import init
from ..runtime.workspace import scratch
from .module import Module, factory_dtype
from .normalization import check_ints


class _ConvTransposeNd(Module):
    """The layer of both: parameters in torch's layout, validation, output_size → output_padding, unbatched inputs.
    A subclass sets ``dims`` (1 or 2); the kernels always see 2-d arrays (H = R = 1 for one dimension)."""

    dims = 2
    transposed = True           # weight (in, out/groups, k…): models.summary counts MACs per input element

    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0, output_padding=0, groups=1,
                 bias=True, dilation=1, padding_mode="zeros", device=None, dtype=None, *, rng=None):
        super().__init__()
        name = type(self).__name__
        for key, value in (("in_channels", in_channels), ("out_channels", out_channels), ("groups", groups)):
            if not isinstance(value, (int, np.integer)) or isinstance(value, bool) or value <= 0:
                raise ValueError(f"{name}: {key} must be a positive int, got {value!r}")
        if in_channels % groups or out_channels % groups:
            raise ValueError(f"{name}: in_channels ({in_channels}) and out_channels ({out_channels}) must both be "
                             f"divisible by groups ({groups})")
        if padding_mode != "zeros":
            raise ValueError(f'{name}: only "zeros" padding mode is supported (as in torch), got {padding_mode!r}')
        if not isinstance(bias, (bool, np.bool_)):
            raise TypeError(f"{name}: bias must be True or False, got {bias!r}")
        self.in_channels, self.out_channels, self.groups = int(in_channels), int(out_channels), int(groups)
        self.kernel_size = self._tuple(kernel_size, "kernel_size", 1)
        self.stride = self._tuple(stride, "stride", 1)
        self.padding = self._tuple(padding, "padding", 0)
        self.output_padding = self._tuple(output_padding, "output_padding", 0)
        self.dilation = self._tuple(dilation, "dilation", 1)
        self.padding_mode = padding_mode
        for op, s, d in zip(self.output_padding, self.stride, self.dilation):
            if op >= s and op >= d:
                raise ValueError(f"{name}: output_padding {self.output_padding} must be smaller than either stride "
                                 f"{self.stride} or dilation {self.dilation}, along every axis")
        dtype = factory_dtype(name, device, dtype)
        # torch's reset_parameters: kaiming_uniform(a=√5) = U(±1/√fan_in), fan_in = out/groups · Πk, bias likewise
        shape = (self.in_channels, self.out_channels // self.groups, *self.kernel_size)
        bound = 1.0 / math.sqrt(init.fans(shape)[0])
        rng = rng or jrandom.generator()
        self.params["weight"] = init.uniform(shape, bound, rng, dtype)
        if bias:
            self.params["bias"] = init.uniform((self.out_channels,), bound, rng, dtype)
        self.grads = {k: np.zeros_like(v) for k, v in self.params.items()}

    def _tuple(self, value, key: str, low: int) -> tuple[int, ...]:
        return check_ints(type(self).__name__, key, value, self.dims, low)

    def _geometry(self, output_padding):
        """(stride, padding, output_padding, dilation) as the 2-d kernels take them: a 1-d layer's (v,) becomes
        (1, v) for stride and dilation, (0, v) for the paddings."""
        if self.dims == 2:
            return self.stride, self.padding, output_padding, self.dilation
        return (1, *self.stride), (0, *self.padding), (0, *output_padding), (1, *self.dilation)

    def output_padding_for(self, input_shape, output_size=None):
        """torch's ``_output_padding``: the output_padding giving ``output_size`` (the spatial sizes, optionally
        preceded by N, C — or C alone for an unbatched input), which must lie between the smallest output and
        that plus stride − 1; the layer's own output_padding without it."""
        if output_size is None:
            return self.output_padding
        name = type(self).__name__
        spatial = input_shape[-self.dims:]
        size = [int(v) for v in output_size]
        leading = len(input_shape) - self.dims
        if len(size) == leading + self.dims:
            size = size[leading:]
        if len(size) != self.dims:
            raise ValueError(f"{name}: for {self.dims}-D input, output_size must have {self.dims} or "
                             f"{leading + self.dims} elements (got {len(output_size)})")
        low = [F.output_size(spatial[a], self.kernel_size[a], self.stride[a], self.padding[a], 0, self.dilation[a])
               for a in range(self.dims)]
        high = [low[a] + self.stride[a] - 1 for a in range(self.dims)]
        if any(not low[a] <= size[a] <= high[a] for a in range(self.dims)):
            raise ValueError(f"{name}: requested an output size of {size}, but valid sizes range from {low} to "
                             f"{high} (for an input of {tuple(spatial)})")
        return tuple(size[a] - low[a] for a in range(self.dims))

    def forward(self, x, output_size=None):
        spatial = "(N, C, L)" if self.dims == 1 else "(N, C, H, W)"
        channel_axis = getattr(x, "ndim", self.dims + 2) - self.dims - 1       # 0 for an unbatched input
        self._check_input(x, f"{spatial} or {spatial.replace('N, ', '')} with C = {self.in_channels}",
                          (self.dims + 1, self.dims + 2), self.in_channels, channel_axis=channel_axis)
        unbatched = x.ndim == self.dims + 1
        output_padding = self.output_padding_for(x.shape, output_size)
        x4 = x[None] if unbatched else x
        if self.dims == 1:
            x4 = x4[:, :, None, :]
        stride, padding, output_padding, dilation = self._geometry(output_padding)
        try:
            y, cache = F.conv_transpose2d(x4, self._weight4(self.params["weight"]), self.params.get("bias"), stride,
                                          padding, output_padding, self.groups, dilation, scratch())
        except ValueError as error:
            raise ValueError(f"{self!r}: {error}") from None
        self.save_for_backward(cache, unbatched)
        return self._shaped(y, unbatched)

    def backward(self, dy):
        cache, unbatched = self.saved_for_backward()
        dy4 = dy[None] if unbatched else dy
        dx, dw, db = F.conv_transpose2d_backward(dy4[:, :, None, :] if self.dims == 1 else dy4, cache,
                                                 scratch=scratch())
        np.copyto(self.grads["weight"], dw.reshape(self.grads["weight"].shape))
        if "bias" in self.grads:
            np.copyto(self.grads["bias"], db)
        return self._shaped(dx, unbatched)

    def workspace_values(self, input_shape) -> tuple[dict, dict]:
        """(kept, scratch) {key: values} that a training step on a batch x of ``input_shape`` (N, C, spatial…)
        holds beyond x, y and the gradients: ``functional.conv_transpose.workspace_values`` of the kernels' x."""
        spatial = tuple(input_shape[2:]) if self.dims == 2 else (1, input_shape[-1])
        stride, padding, output_padding, dilation = self._geometry(self.output_padding)
        return F.workspace_values((input_shape[0], self.in_channels, *spatial),
                                  self._weight4(self.params["weight"]).shape, stride, padding, output_padding,
                                  self.groups, dilation)

    def _weight4(self, weight):
        return weight if self.dims == 2 else weight[:, :, None, :]

    def _shaped(self, y, unbatched):
        y = y[:, :, 0, :] if self.dims == 1 else y
        return y[0] if unbatched else y

    def extra_repr(self):
        text = f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, stride={self.stride}"
        for key, neutral in (("padding", 0), ("dilation", 1), ("output_padding", 0)):
            if getattr(self, key) != (neutral,) * self.dims:
                text += f", {key}={getattr(self, key)}"
        if self.groups != 1:
            text += f", groups={self.groups}"
        if "bias" not in self.params:
            text += ", bias=False"
        return text


class ConvTranspose2d(_ConvTransposeNd):
    """2-D transposed convolution, ``torch.nn.ConvTranspose2d``: the gradient of a Conv2d with respect to its
    input, used to upsample (DCGAN's generator, U-Net's decoder).

    x (N, C, H, W) or (C, H, W) → y (N, K, H', W'),  H' = (H − 1)·stride − 2P + D(R − 1) + output_padding + 1.
    params: weight (C, K/groups, R, S) — in_channels first, as torch — and bias (K,); default init as torch,
    U(±1/√(K/groups·R·S)).  ``forward(x, output_size)`` picks the output_padding that gives ``output_size``.
    Backward: dX = W ⋆ dY (a Conv2d), dW = x ⋆ dY, db = Σ dY.
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size, stride=1, padding=0, output_padding=0,
                 groups: int = 1, bias: bool = True, dilation=1, padding_mode: str = "zeros", device=None, dtype=None,
                 *, rng=None):
        super().__init__(in_channels, out_channels, kernel_size, stride, padding, output_padding, groups, bias,
                         dilation, padding_mode, device, dtype, rng=rng)


class ConvTranspose1d(_ConvTransposeNd):
    """1-D transposed convolution, ``torch.nn.ConvTranspose1d``: the 2-d kernels with H = R = 1.

    x (N, C, L) or (C, L) → y (N, K, L'),  L' = (L − 1)·stride − 2P + D(k − 1) + output_padding + 1.
    params: weight (C, K/groups, k), bias (K,).
    """

    dims = 1

    def __init__(self, in_channels: int, out_channels: int, kernel_size, stride=1, padding=0, output_padding=0,
                 groups: int = 1, bias: bool = True, dilation=1, padding_mode: str = "zeros", device=None, dtype=None,
                 *, rng=None):
        super().__init__(in_channels, out_channels, kernel_size, stride, padding, output_padding, groups, bias,
                         dilation, padding_mode, device, dtype, rng=rng)
