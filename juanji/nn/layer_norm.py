"""Layer and group normalisation (``torch.nn.LayerNorm`` / ``GroupNorm``): each sample by its own statistics,
the same in training and eval."""
from __future__ import annotations

import numbers

import numpy as np

from ..functional import sample_norm as F
from .module import Module, factory_dtype
from .normalization import check_flag, check_positive_int, check_real


class _SampleNorm(Module):
    """A per-sample normalisation with optional ``weight`` γ and ``bias`` β of shape ``_affine_shape``."""

    def _init_affine(self, shape, affine, bias, device, dtype):
        name = type(self).__name__
        dtype = factory_dtype(name, device, dtype)
        self.has_bias = check_flag(name, "bias", bias)
        if affine:
            self.params["weight"], self.grads["weight"] = np.ones(shape, dtype=dtype), np.zeros(shape, dtype=dtype)
            if self.has_bias:
                self.params["bias"], self.grads["bias"] = np.zeros(shape, dtype=dtype), np.zeros(shape, dtype=dtype)

    def backward(self, dy):
        cache, unbatched = self.saved_for_backward()     # unbatched: x had no batch axis, the kernels added one
        dx, dgamma, dbeta = F.normalization_backward(dy[None] if unbatched else dy, cache)
        for key, grad in (("weight", dgamma), ("bias", dbeta)):
            if key in self.grads:
                np.copyto(self.grads[key], grad)
        return dx[0] if unbatched else dx


class LayerNorm(_SampleNorm):
    """x (*, D₁ … D_k) normalised over its last axes, ``normalized_shape`` = (D₁ … D_k), by each leading
    index's own μ and σ²:  y = γ · (x − μ) / √(σ² + ε) + β, γ and β of ``normalized_shape`` where
    ``elementwise_affine`` (β unless bias=False).  ConvNeXt's channel norm: permute (N, H, W, C), LayerNorm(C)."""
    elementwise_weight = True       # γ scales each element: no weight matrix (``models.summary``: no MACs)

    def __init__(self, normalized_shape, eps: float = 1e-5, elementwise_affine: bool = True, bias: bool = True,
                 device=None, dtype=None):
        super().__init__()
        name = type(self).__name__
        shape = (normalized_shape,) if isinstance(normalized_shape, numbers.Integral) else normalized_shape
        try:
            shape = tuple(shape)
        except TypeError:
            raise TypeError(f"{name}: normalized_shape must be an int or a sequence of ints, "
                            f"got {normalized_shape!r}") from None
        if not shape:
            raise ValueError(f"{name}: normalized_shape must name at least one axis, got {normalized_shape!r}")
        self.normalized_shape = tuple(check_positive_int(name, "normalized_shape", size) for size in shape)
        self.eps = check_real(name, "eps", eps, 0)
        self.elementwise_affine = check_flag(name, "elementwise_affine", elementwise_affine)
        self._init_affine(self.normalized_shape, self.elementwise_affine, bias, device, dtype)

    def forward(self, x):
        k = len(self.normalized_shape)
        desc = f"(*, {', '.join(map(str, self.normalized_shape))})"
        self._check_input(x, desc, tuple(range(k, max(getattr(x, "ndim", 0), k) + 1)))
        if x.shape[x.ndim - k:] != self.normalized_shape:
            raise ValueError(f"{self!r}: expected input of shape {desc}, got shape {x.shape}")
        y, cache = F.layer_norm(x, k, self.params.get("weight"), self.params.get("bias"), self.eps)
        self.save_for_backward(cache, False)
        return y

    def extra_repr(self):
        return f"{self.normalized_shape}, eps={self.eps}, elementwise_affine={self.elementwise_affine}"


class GroupNorm(_SampleNorm):
    """x (N, C, *) normalised over each sample's ``num_groups`` groups of C/G consecutive channels:
    y = γ · (x − μ) / √(σ² + ε) + β, μ and σ² of the group, γ and β (C,) where ``affine`` (β unless
    bias=False)."""

    def __init__(self, num_groups: int, num_channels: int, eps: float = 1e-5, affine: bool = True, device=None,
                 dtype=None, *, bias: bool = True):
        super().__init__()
        name = type(self).__name__
        self.num_groups = check_positive_int(name, "num_groups", num_groups)
        self.num_channels = check_positive_int(name, "num_channels", num_channels)
        if self.num_channels % self.num_groups:
            raise ValueError(f"{name}: num_channels must be divisible by num_groups, got num_channels="
                             f"{num_channels} and num_groups={num_groups}")
        self.eps = check_real(name, "eps", eps, 0)
        self.affine = check_flag(name, "affine", affine)
        self._init_affine(self.num_channels, self.affine, bias, device, dtype)

    def forward(self, x):
        self._check_input(x, f"(N, {self.num_channels}, *)", tuple(range(2, max(getattr(x, "ndim", 0), 2) + 1)),
                          self.num_channels)
        if x.size == self.num_groups:       # torch refuses it too (one value in all of the batch's groups)
            raise ValueError(f"{self!r}: expected more than 1 value per group over the batch, got input of shape "
                             f"{x.shape}")
        y, cache = F.group_norm(x, self.num_groups, self.params.get("weight"), self.params.get("bias"), self.eps)
        self.save_for_backward(cache, False)
        return y

    def extra_repr(self):
        return f"{self.num_groups}, {self.num_channels}, eps={self.eps}, affine={self.affine}"
