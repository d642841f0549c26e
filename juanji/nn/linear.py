"""Fully connected layer, Flatten and Identity."""
from __future__ import annotations

import numpy as np

from .. import random as jrandom
from ..functional import linear as F
from ..functional.init import torch_default
from .module import Module


class Linear(Module):
    """``torch.nn.Linear``: y = x Wᵀ + b.  x (N, in_features) → y (N, out_features);
    params: weight (out_features, in_features), bias (out_features,).  Init as PyTorch: U(±1/√in).
    ``input_grad = False`` skips d loss/d x (backward returns None), as for Conv2d."""

    input_grad = True

    def __init__(self, in_features: int, out_features: int, bias: bool = True, dtype=np.float32, rng=None):
        super().__init__()
        for name, value in (("in_features", in_features), ("out_features", out_features)):
            if not isinstance(value, (int, np.integer)) or value <= 0:
                raise ValueError(f"Linear: {name} must be a positive int, got {value!r}")
        self.in_features, self.out_features = in_features, out_features
        weight, bias_value = torch_default((out_features, in_features), rng or jrandom.generator(), dtype)
        self.params["weight"] = weight
        if bias:
            self.params["bias"] = bias_value
        self.grads = {k: np.zeros_like(v) for k, v in self.params.items()}

    def forward(self, x):
        self._check_input(x, f"(N, {self.in_features})", 2, self.in_features, channel_axis=-1)
        self.save_for_backward(x)
        return F.linear(x, self.params["weight"], self.params.get("bias"))

    def backward(self, dy):
        """dW = dYᵀ X,  db = Σ_n dY,  dX = dY W"""
        x, = self.saved_for_backward()
        dx, dw, db = F.linear_backward(dy, x, self.params["weight"], self.input_grad)
        np.copyto(self.grads["weight"], dw)
        if "bias" in self.grads:
            np.copyto(self.grads["bias"], db)
        return dx

    def extra_repr(self):
        return (f"in_features={self.in_features}, out_features={self.out_features}"
                + ("" if "bias" in self.params else ", bias=False"))


class Flatten(Module):
    """``torch.nn.Flatten``: merges axes start_dim..end_dim, (N, C, H, W) → (N, C·H·W) by default."""

    def __init__(self, start_dim: int = 1, end_dim: int = -1):
        super().__init__()
        self.start_dim, self.end_dim = start_dim, end_dim

    def forward(self, x):
        self.save_for_backward(x.shape)
        end = self.end_dim % x.ndim
        merged = int(np.prod(x.shape[self.start_dim:end + 1]))     # not -1: reshape cannot infer it when N = 0
        return x.reshape(x.shape[:self.start_dim] + (merged,) + x.shape[end + 1:])

    def backward(self, dy):
        shape, = self.saved_for_backward()
        return dy.reshape(shape)


class Identity(Module):
    """y = x; the shortcut of a residual block whose shapes already match."""

    def forward(self, x):
        self.save_for_backward()        # nothing to keep, but backward still needs a forward before it
        return x

    def backward(self, dy):
        self.saved_for_backward()
        return dy
