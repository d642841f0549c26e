"""Conv2d and Conv1d layers on the kernels of ``juanji.functional.conv``."""
from __future__ import annotations

import numpy as np

from .. import random as jrandom
from ..functional import conv as F
from ..functional import geometry
from ..functional.init import torch_default
from ..runtime.grad_mode import is_grad_enabled
from ..runtime.workspace import Workspace, scratch
from .module import Module


class Conv2d(Module):
    """2-D convolution, PyTorch's ``torch.nn.Conv2d``.

    x (N, C, H, W) → y (N, K, H', W'),  H' = ⌊(H + 2P − D(R − 1) − 1)/stride⌋ + 1 (W' likewise).
    params: weight (K, C/groups, R, S), bias (K,).  ``padding`` is an int, a pair, 'same' (stride 1
    only; an even kernel pads one more after) or 'valid'.  groups = C gives a depthwise convolution.
    Default init as PyTorch: U(±1/√fan_in) for weight and bias.
    Set ``input_grad = False`` on a network's first layer to skip computing d loss/d x (backward then
    returns None), as PyTorch skips it for inputs that do not require grad.
    """

    input_grad = True

    def __init__(self, in_channels: int, out_channels: int, kernel_size, stride=1, padding=0,
                 dilation=1, groups: int = 1, bias: bool = True, dtype=np.float32, rng=None):
        super().__init__()
        for name, value in (("in_channels", in_channels), ("out_channels", out_channels),
                            ("groups", groups)):
            if not isinstance(value, (int, np.integer)) or value <= 0:
                raise ValueError(f"{type(self).__name__}: {name} must be a positive int, got {value!r}")
        if in_channels % groups or out_channels % groups:
            raise ValueError(f"{type(self).__name__}: in_channels ({in_channels}) and out_channels "
                             f"({out_channels}) must both be divisible by groups ({groups})")
        self.in_channels, self.out_channels, self.groups = in_channels, out_channels, groups
        self.kernel_size = self._as_pair(kernel_size, "kernel_size")
        self.stride = self._as_pair(stride, "stride")
        self.dilation = self._as_pair(dilation, "dilation")
        if padding == "same" and self.stride != (1, 1):
            raise ValueError(f"{type(self).__name__}: padding='same' needs stride 1, got stride {stride}")
        self.padding = padding
        padding = self._padding_pair(padding)
        try:
            self.pads = geometry.resolve_padding(padding, self.kernel_size, self.dilation)
        except (TypeError, ValueError) as error:
            raise type(error)(f"{type(self).__name__}: {error}") from None
        rng = rng or jrandom.generator()
        weight, bias_value = torch_default((out_channels, in_channels // groups, *self.kernel_size),
                                           rng, dtype)
        self.params["weight"] = weight
        if bias:
            self.params["bias"] = bias_value
        self.grads = {k: np.zeros_like(v) for k, v in self.params.items()}
        self._workspace = Workspace()     # the columns, reused from step to step

    def _as_pair(self, value, name):
        try:
            pair = geometry.pair(value, name)
        except TypeError as error:
            raise TypeError(f"{type(self).__name__}: {error}") from None
        if min(pair) <= 0:
            raise ValueError(f"{type(self).__name__}: {name} must be positive, got {value!r}")
        return pair

    def _padding_pair(self, padding):
        return padding

    def output_shape(self, input_shape):
        """(N, K, H', W') for an input of shape (N, C, H, W)."""
        return (input_shape[0], self.out_channels,
                *geometry.output_shape(input_shape[2:], self.kernel_size, self.stride, self.pads, self.dilation))

    def forward(self, x):
        self._check_input(x, f"(N, {self.in_channels}, H, W)", 4, self.in_channels)
        self._check_fits(x.shape[2:])
        return self._forward_4d(x)

    def _forward_4d(self, x):
        """The convolution of an (N, C, H, W) array; the columns go to the layer's own memory, kept for
        backward, or under no_grad to the thread's scratch memory (no cache is kept then)."""
        weight = self.params["weight"].reshape(self.out_channels, -1, *self.kernel_size)
        memory = scratch()
        y, cache = F.conv2d(x, weight, self.params.get("bias"), self.stride, self.pads, self.dilation,
                            self.groups, self._workspace if is_grad_enabled() else memory, memory)
        self.save_for_backward(cache)
        return y

    def _backward_4d(self, dy):
        """dX (N, C, H, W) or None for dY (N, K, H', W'); dW and db go into ``grads``."""
        cache, = self.saved_for_backward()
        dx, dw, db = F.conv2d_backward(dy, cache, need_dx=self.input_grad, scratch=scratch())
        np.copyto(self.grads["weight"], dw.reshape(self.grads["weight"].shape))
        if "bias" in self.grads:
            np.copyto(self.grads["bias"], db)
        return dx

    def _check_fits(self, spatial):
        try:
            geometry.check_window_fits(spatial, self.kernel_size, self.pads, self.dilation)
        except ValueError as error:
            raise ValueError(f"{self!r}: {error}") from None

    def backward(self, dy):
        return self._backward_4d(dy)

    def extra_repr(self):
        text = f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, stride={self.stride}"
        if self.padding not in (0, (0, 0)):
            text += f", padding={self.padding!r}"
        if self.dilation != (1, 1):
            text += f", dilation={self.dilation}"
        if self.groups != 1:
            text += f", groups={self.groups}"
        if "bias" not in self.params:
            text += ", bias=False"
        return text


class Conv1d(Conv2d):
    """1-D convolution over sequences, PyTorch's ``torch.nn.Conv1d``: the 2-D kernel with height 1.

    x (N, C, L) → y (N, K, L'),  L' = ⌊(L + 2P − D(k − 1) − 1)/stride⌋ + 1.
    params: weight (K, C/groups, k), bias (K,).
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, stride: int = 1,
                 padding=0, dilation: int = 1, groups: int = 1, bias: bool = True, dtype=np.float32,
                 rng=None):
        super().__init__(in_channels, out_channels, (1, self._single(kernel_size, "kernel_size")),
                         (1, self._single(stride, "stride")), padding, (1, self._single(dilation, "dilation")),
                         groups, bias, dtype, rng)
        self.params["weight"] = np.ascontiguousarray(self.params["weight"][:, :, 0, :])
        self.grads["weight"] = np.zeros_like(self.params["weight"])

    def _single(self, value, name):
        if not isinstance(value, (int, np.integer)):
            raise TypeError(f"Conv1d: {name} must be an int, got {value!r}")
        return value

    def _padding_pair(self, padding):
        return padding if isinstance(padding, str) else (0, self._single(padding, "padding"))

    def forward(self, x):
        self._check_input(x, f"(N, {self.in_channels}, L)", 3, self.in_channels)
        self._check_fits((1, x.shape[2]))
        return self._forward_4d(x[:, :, None, :])[:, :, 0, :]

    def backward(self, dy):
        dx = self._backward_4d(dy[:, :, None, :])
        return None if dx is None else dx[:, :, 0, :]

    def extra_repr(self):
        text = (f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size[1]}, "
                f"stride={self.stride[1]}")
        if self.padding != 0:
            text += f", padding={self.padding!r}"
        if self.dilation[1] != 1:
            text += f", dilation={self.dilation[1]}"
        if self.groups != 1:
            text += f", groups={self.groups}"
        return text
