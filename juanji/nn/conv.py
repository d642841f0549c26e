"""Conv2d and Conv1d layers on the kernels of ``juanji.functional.conv`` (and ``functional.pad`` for the padding
modes other than zeros)."""
from __future__ import annotations

import numpy as np

from .. import random as jrandom
from ..functional import conv as F
from ..functional import geometry
from ..functional import pad as P
from ..functional.init import torch_default
from ..functional.plan import Plans, plan_conv
from ..runtime.grad_mode import is_grad_enabled
from ..runtime.workspace import Workspace, scratch
from .module import Module, factory_dtype

PADDING_MODES = ("zeros", "reflect", "replicate", "circular")     # the last three: functional.pad's modes


class Conv2d(Module):
    """2-D convolution, PyTorch's ``torch.nn.Conv2d``, with its constructor's arguments.

    x (N, C, H, W) or unbatched (C, H, W) → y (N, K, H', W') or (K, H', W'),
    H' = ⌊(H + 2P − D(R − 1) − 1)/stride⌋ + 1 (W' likewise).
    params: weight (K, C/groups, R, S), bias (K,).  ``padding`` is an int, a pair, 'same' (stride 1
    only; an even kernel pads one more after) or 'valid'.  groups = C gives a depthwise convolution.
    ``padding_mode`` 'zeros' pads inside the kernels; 'reflect', 'replicate' and 'circular' pad x explicitly
    (``functional.pad``) and convolve without padding, as torch; backward folds the padded gradient back.
    Default init as PyTorch: U(±1/√fan_in) for weight and bias.  ``dtype`` None is float32; ``device`` None or
    'cpu'.  ``rng`` (keyword-only, juanji's): the generator of the initial weights.
    Set ``input_grad = False`` on a network's first layer to skip computing d loss/d x (backward then
    returns None), as PyTorch skips it for inputs that do not require grad.
    """

    input_grad = True
    _spatial_desc = "H, W"

    def __init__(self, in_channels: int, out_channels: int, kernel_size, stride=1, padding=0, dilation=1,
                 groups: int = 1, bias: bool = True, padding_mode: str = "zeros", device=None, dtype=None, *,
                 rng=None):
        super().__init__()
        name = type(self).__name__
        dtype = factory_dtype(name, device, dtype)
        for key, value in (("in_channels", in_channels), ("out_channels", out_channels), ("groups", groups)):
            if not isinstance(value, (int, np.integer)) or isinstance(value, bool) or value <= 0:
                raise ValueError(f"{name}: {key} must be a positive int, got {value!r}")
        if in_channels % groups or out_channels % groups:
            raise ValueError(f"{name}: in_channels ({in_channels}) and out_channels "
                             f"({out_channels}) must both be divisible by groups ({groups})")
        if padding_mode not in PADDING_MODES:
            raise ValueError(f"{name}: padding_mode must be one of {PADDING_MODES}, got {padding_mode!r}")
        self.in_channels, self.out_channels, self.groups = int(in_channels), int(out_channels), int(groups)
        self.kernel_size = self._as_pair(kernel_size, "kernel_size")
        self.stride = self._as_pair(stride, "stride")
        self.dilation = self._as_pair(dilation, "dilation")
        self.padding_mode = padding_mode
        if padding == "same" and self.stride != (1, 1):
            raise ValueError(f"{name}: padding='same' needs stride 1, got stride {stride}")
        try:
            self.pads = geometry.resolve_padding(self._padding_pair(padding), self.kernel_size, self.dilation)
        except (TypeError, ValueError) as error:
            raise type(error)(f"{name}: {error}") from None
        self.padding = padding if isinstance(padding, str) else self._padding_tuple()
        rng = rng or jrandom.generator()
        weight, bias_value = torch_default((out_channels, in_channels // groups, *self.kernel_size), rng, dtype)
        self.params["weight"] = weight
        if bias:
            self.params["bias"] = bias_value
        self.grads = {k: np.zeros_like(v) for k, v in self.params.items()}
        self._workspace = Workspace()     # the columns, reused from step to step
        self._plans = Plans()             # the kernels for each input shape, chosen once

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

    def _padding_tuple(self):
        """``padding`` as torch keeps it: (top, left)."""
        return tuple(side[0] for side in self.pads)

    @property
    def explicit_padding(self) -> bool:
        """Whether x is padded before the kernels (``functional.pad``): a mode other than zeros, and something
        to pad."""
        return self.padding_mode != "zeros" and any(map(any, self.pads))

    def output_shape(self, input_shape):
        """(N, K, H', W') for an input of shape (N, C, H, W); (K, H', W') for (C, H, W)."""
        out = geometry.output_shape(input_shape[-2:], self.kernel_size, self.stride, self.pads, self.dilation)
        return (*input_shape[:-3], self.out_channels, *out)

    def workspace_values(self, input_shape) -> tuple[dict, dict]:
        """(kept, scratch) {key: values} that a training step on a batch x of ``input_shape`` (N, C, spatial…)
        holds beyond x, y and the gradients: ``functional.conv.workspace_values`` of the kernels' x (padded
        first where the padding mode is not zeros)."""
        spatial = tuple(input_shape[2:]) if len(input_shape) == 4 else (1, input_shape[-1])
        pads = self.pads
        if self.explicit_padding:
            spatial, pads = (spatial[0] + sum(pads[0]), spatial[1] + sum(pads[1])), ((0, 0), (0, 0))
        return F.workspace_values((input_shape[0], self.in_channels, *spatial), self.params["weight"].shape[:2] +
                                  self.kernel_size, self.stride, pads, self.dilation, self.groups)

    def _check(self, x, ndim):
        """Check x ((N,) C, spatial…: ``ndim`` axes batched) and the window's fit; True when x is batched."""
        c = self.in_channels
        self._check_input(x, f"(N, {c}, {self._spatial_desc}) or ({c}, {self._spatial_desc})", (ndim - 1, ndim), c,
                          channel_axis=-(ndim - 1))
        spatial = x.shape[-2:] if ndim == 4 else (1, x.shape[-1])
        try:
            geometry.check_window_fits(spatial, self.kernel_size, self.pads, self.dilation)
            if self.explicit_padding:
                P.check((1, 1, *spatial), self.pads, self.padding_mode)
        except ValueError as error:
            raise ValueError(f"{self!r}: {error}") from None
        return x.ndim == ndim

    def forward(self, x):
        batched = self._check(x, 4)
        y = self._forward_4d(x if batched else x[None])
        return y if batched else y[0]

    def _forward_4d(self, x):
        """The convolution of an (N, C, H, W) array; the columns go to the layer's own memory, kept for
        backward, or under no_grad to the thread's scratch memory (no cache is kept then).  A padding mode
        other than zeros pads x first (y = W ⋆ pad(x)) and the kernels pad nothing."""
        x_shape, pads = x.shape, self.pads
        if self.explicit_padding:
            x, pads = P.pad(x, self.pads, self.padding_mode), ((0, 0), (0, 0))
        weight = self.params["weight"].reshape(self.out_channels, -1, *self.kernel_size)
        memory = scratch()
        y, cache = F.conv2d(x, weight, self.params.get("bias"), self.stride, pads, self.dilation,
                            self.groups, self._workspace if is_grad_enabled() else memory, memory,
                            self._plan(x.shape, weight.shape, pads))
        self.save_for_backward(cache, x_shape)
        return y

    def _plan(self, x_shape, weight_shape, pads):
        """The kernels of the convolution of an x of ``x_shape`` (N, C, H, W), as the kernels get it, with ``pads``:
        ``plan_conv``'s, made once per input shape and kernel set (``Plans``)."""
        return self._plans.get(x_shape, lambda: plan_conv(x_shape, weight_shape, self.stride, pads, self.dilation,
                                                          self.groups))

    def _backward_4d(self, dy):
        """dX (N, C, H, W) or None for dY (N, K, H', W'); dW and db go into ``grads``.  After explicit padding,
        dX = pad_backward(dX_padded): each padded entry's gradient summed back to the entry it copied."""
        cache, x_shape = self.saved_for_backward()
        dx, dw, db = F.conv2d_backward(dy, cache, need_dx=self.input_grad, scratch=scratch(),
                                       need_db="bias" in self.grads)
        np.copyto(self.grads["weight"], dw.reshape(self.grads["weight"].shape))
        if "bias" in self.grads:
            np.copyto(self.grads["bias"], db)
        if dx is not None and self.explicit_padding:
            dx = P.pad_backward(dx, x_shape, self.pads, self.padding_mode)
        return dx

    def backward(self, dy):
        if dy.ndim == 4:
            return self._backward_4d(dy)
        dx = self._backward_4d(dy[None])
        return None if dx is None else dx[0]

    def extra_repr(self):
        """torch's: the arguments that differ from their defaults, tuples as torch keeps them."""
        text = f"{self.in_channels}, {self.out_channels}, kernel_size={self._shown(self.kernel_size)}, " \
               f"stride={self._shown(self.stride)}"
        if isinstance(self.padding, str) or any(self.padding):
            text += f", padding={self.padding if isinstance(self.padding, str) else self._shown(self.padding)}"
        if self.dilation != (1, 1):
            text += f", dilation={self._shown(self.dilation)}"
        if self.groups != 1:
            text += f", groups={self.groups}"
        if "bias" not in self.params:
            text += ", bias=False"
        if self.padding_mode != "zeros":
            text += f", padding_mode={self.padding_mode}"
        return text

    def _shown(self, pair):
        return pair


class Conv1d(Conv2d):
    """1-D convolution over sequences, PyTorch's ``torch.nn.Conv1d``: the 2-D kernel with height 1.

    x (N, C, L) or unbatched (C, L) → y (N, K, L') or (K, L'),  L' = ⌊(L + 2P − D(k − 1) − 1)/stride⌋ + 1.
    params: weight (K, C/groups, k), bias (K,).  Arguments as Conv2d's, each an int or a tuple of one
    (``padding`` also 'same' or 'valid'); inside, the geometry holds pairs (1, k) (``kernel_size`` …).
    """

    _spatial_desc = "L"

    def __init__(self, in_channels: int, out_channels: int, kernel_size, stride=1, padding=0, dilation=1,
                 groups: int = 1, bias: bool = True, padding_mode: str = "zeros", device=None, dtype=None, *,
                 rng=None):
        super().__init__(in_channels, out_channels, (1, self._single(kernel_size, "kernel_size")),
                         (1, self._single(stride, "stride")), padding, (1, self._single(dilation, "dilation")),
                         groups, bias, padding_mode, device, dtype, rng=rng)
        self.params["weight"] = np.ascontiguousarray(self.params["weight"][:, :, 0, :])
        self.grads["weight"] = np.zeros_like(self.params["weight"])

    def _single(self, value, name):
        """An int, or torch's tuple of one int."""
        if isinstance(value, (tuple, list)) and len(value) == 1:
            value = value[0]
        if not isinstance(value, (int, np.integer)) or isinstance(value, bool):
            raise TypeError(f"Conv1d: {name} must be an int or a tuple of one int, got {value!r}")
        return int(value)

    def _padding_pair(self, padding):
        return padding if isinstance(padding, str) else (0, self._single(padding, "padding"))

    def _padding_tuple(self):
        return (self.pads[1][0],)

    def output_shape(self, input_shape):
        """(N, K, L') for an input of shape (N, C, L); (K, L') for (C, L)."""
        shape = super().output_shape((*input_shape[:-1], 1, input_shape[-1]))
        return (*shape[:-2], shape[-1])

    def forward(self, x):
        batched = self._check(x, 3)
        y = self._forward_4d((x if batched else x[None])[:, :, None, :])[:, :, 0, :]
        return y if batched else y[0]

    def backward(self, dy):
        dx = self._backward_4d((dy if dy.ndim == 3 else dy[None])[:, :, None, :])
        if dx is None:
            return None
        return dx[:, :, 0, :] if dy.ndim == 3 else dx[0, :, 0, :]

    def _shown(self, pair):
        return tuple(pair[1:]) if len(pair) == 2 else pair
