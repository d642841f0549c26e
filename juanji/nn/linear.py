"""Fully connected layer, and the layers that only reshape: Flatten, Unflatten, Identity."""
from __future__ import annotations

import math

import numpy as np

from .. import random as jrandom
from ..functional import linear as F
from ..functional.init import torch_default
from .module import Module, factory_dtype


class Linear(Module):
    """``torch.nn.Linear``: y = x Wᵀ + b over the last axis.  x (*, in_features) → y (*, out_features), any
    leading axes (none: one unbatched sample); params: weight (out_features, in_features), bias (out_features,).
    Init as PyTorch: U(±1/√in).  ``dtype`` None is float32; ``device`` None or 'cpu'; ``rng`` (keyword-only,
    juanji's): the generator of the initial weights.
    ``input_grad = False`` skips d loss/d x (backward returns None), as for Conv2d."""

    input_grad = True

    def __init__(self, in_features: int, out_features: int, bias: bool = True, device=None, dtype=None, *,
                 rng=None):
        super().__init__()
        dtype = factory_dtype("Linear", device, dtype)
        for name, value in (("in_features", in_features), ("out_features", out_features)):
            if not isinstance(value, (int, np.integer)) or isinstance(value, bool) or value <= 0:
                raise ValueError(f"Linear: {name} must be a positive int, got {value!r}")
        self.in_features, self.out_features = int(in_features), int(out_features)
        weight, bias_value = torch_default((out_features, in_features), rng or jrandom.generator(), dtype)
        self.params["weight"] = weight
        if bias:
            self.params["bias"] = bias_value
        self.grads = {k: np.zeros_like(v) for k, v in self.params.items()}

    def forward(self, x):
        rank = max(x.ndim, 1) if isinstance(x, np.ndarray) else 1           # any rank from 1 (checked below)
        self._check_input(x, f"(*, {self.in_features})", tuple(range(1, rank + 1)), self.in_features,
                          channel_axis=-1)
        rows = x.reshape(-1, self.in_features)        # (N, in): the leading axes as one; a copy if x is strided
        self.save_for_backward(rows)
        y = F.linear(rows, self.params["weight"], self.params.get("bias"))
        return y.reshape(*x.shape[:-1], self.out_features)

    def backward(self, dy):
        """dW = dYᵀ X,  db = Σ_n dY,  dX = dY W  (over the leading axes as one)"""
        rows, = self.saved_for_backward()
        dx, dw, db = F.linear_backward(dy.reshape(-1, self.out_features), rows, self.params["weight"],
                                       self.input_grad)
        np.copyto(self.grads["weight"], dw)
        if "bias" in self.grads:
            np.copyto(self.grads["bias"], db)
        return None if dx is None else dx.reshape(*dy.shape[:-1], self.in_features)

    def extra_repr(self):
        return f"in_features={self.in_features}, out_features={self.out_features}, bias={'bias' in self.params}"


def _axis(layer, dim: int, ndim: int) -> int:
    """``dim`` of an ndim-D input as a non-negative axis (negative counts from the end); IndexError as torch's."""
    if not -ndim <= dim < ndim:
        raise IndexError(f"{layer!r}: dimension {dim} out of range for a {ndim}-D input "
                         f"(expected one in [{-ndim}, {ndim - 1}])")
    return dim % ndim


class Flatten(Module):
    """``torch.nn.Flatten``: merges axes start_dim..end_dim, (N, C, H, W) → (N, C·H·W) by default."""

    def __init__(self, start_dim: int = 1, end_dim: int = -1):
        super().__init__()
        for name, value in (("start_dim", start_dim), ("end_dim", end_dim)):
            if not isinstance(value, (int, np.integer)) or isinstance(value, bool):
                raise TypeError(f"Flatten: {name} must be an int, got {value!r}")
        self.start_dim, self.end_dim = int(start_dim), int(end_dim)

    def forward(self, x):
        ndim = max(x.ndim, 1)           # torch treats a 0-D input as 1-D
        start, end = _axis(self, self.start_dim, ndim), _axis(self, self.end_dim, ndim)
        if start > end:
            raise ValueError(f"{self!r}: start_dim cannot come after end_dim ({start} > {end} for a {ndim}-D input)")
        self.save_for_backward(x.shape)
        shape = x.shape or (1,)
        merged = math.prod(shape[start:end + 1])     # not -1: reshape cannot infer it when N = 0
        return x.reshape(shape[:start] + (merged,) + shape[end + 1:])

    def backward(self, dy):
        shape, = self.saved_for_backward()
        return dy.reshape(shape)

    def extra_repr(self):
        return f"start_dim={self.start_dim}, end_dim={self.end_dim}"


class Unflatten(Module):
    """``torch.nn.Unflatten``: axis ``dim`` of size ∏ unflattened_size split into the axes of
    ``unflattened_size`` (one of them may be −1: inferred), (N, 12) → (N, 3, 4) for dim=1, (3, 4)."""

    def __init__(self, dim: int, unflattened_size):
        super().__init__()
        if not isinstance(dim, (int, np.integer)) or isinstance(dim, bool):
            raise TypeError(f"Unflatten: dim must be an int, got {dim!r}")
        try:
            sizes = tuple(unflattened_size)
        except TypeError:
            sizes = None
        if (not sizes or not all(isinstance(s, (int, np.integer)) and not isinstance(s, bool) for s in sizes)
                or any(s < -1 for s in sizes) or sizes.count(-1) > 1):
            raise TypeError(f"Unflatten: unflattened_size must be a tuple or list of ints (sizes ≥ 0, at most "
                            f"one −1), got {unflattened_size!r}")
        sizes = [int(s) for s in sizes]
        self.dim, self.unflattened_size = int(dim), sizes if isinstance(unflattened_size, list) else tuple(sizes)

    def forward(self, x):
        axis = _axis(self, self.dim, x.ndim)
        size, known = x.shape[axis], math.prod(s for s in self.unflattened_size if s != -1)
        sizes = tuple(size // known if s == -1 and known else s for s in self.unflattened_size)
        if math.prod(sizes) != size:
            raise ValueError(f"{self!r}: unflattened_size {tuple(self.unflattened_size)} does not fill axis {axis} of "
                             f"size {size} (input of shape {x.shape})")
        self.save_for_backward(x.shape)
        return x.reshape(x.shape[:axis] + sizes + x.shape[axis + 1:])

    def backward(self, dy):
        shape, = self.saved_for_backward()
        return dy.reshape(shape)

    def extra_repr(self):
        return f"dim={self.dim}, unflattened_size={self.unflattened_size}"


class Identity(Module):
    """y = x; the shortcut of a residual block whose shapes already match.  Takes and ignores any arguments,
    as ``torch.nn.Identity`` does (so that it can stand in for a layer in code that builds one)."""

    def __init__(self, *args, **kwargs):
        super().__init__()

    def forward(self, x):
        self.save_for_backward()        # nothing to keep, but backward still needs a forward before it
        return x

    def backward(self, dy):
        self.saved_for_backward()
        return dy
