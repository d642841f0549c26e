"""ConvNeXt-Tiny (Liu et al. 2022, "A ConvNet for the 2020s"), torchvision's: a 4×4 stride-4 patchify conv and a
channel LayerNorm, four stages of (3, 3, 9, 3) ConvNeXt blocks of (96, 192, 384, 768) channels joined by
LayerNorm + 2×2 stride-2 convs, global average pool, LayerNorm, fc.  A block is a 7×7 depthwise conv, LayerNorm,
Linear to 4C, GELU, Linear back to C (channels-last, as torchvision computes it), a learnt per-channel layer scale
and stochastic depth (its probability growing linearly from 0 to 0.1 over the 18 blocks) on the residual branch.
Conv and Linear weights start as torchvision's, N(0, 0.02²) (torch's truncation at ±2 is 100σ out: it never
bites), biases 0, layer scales 1e-6.

Small inputs (< 64 pixels): the stem is the zoo's CIFAR-style 3×3 stride-1 conv (padding 1) instead of the 4×4
stride-4 patchify.  A patchify conv at stride 1 would be a 1×1 conv, an embedding of each pixel alone, or a 2×2 one
that shrinks 32 to 31; the 3×3 sees each pixel's neighbours and keeps the size, so the three stride-2
downsamplings end 28×28 at 3×3 and 32×32 at 4×4, as the CIFAR ResNets do.
"""
from __future__ import annotations

from collections import OrderedDict

import numpy as np

from .. import nn
from .. import random as jrandom
from ..functional import init
from ..nn.module import factory_dtype
from ..nn.permute import Permute
from ..nn.stochastic_depth import StochasticDepth
from .blocks import finish, is_small

# (channels, blocks) of the four stages — ConvNeXt-T, section 3 of the paper.
TINY = [(96, 3), (192, 3), (384, 9), (768, 3)]


class LayerNorm2d(nn.LayerNorm):
    """torchvision's ``LayerNorm2d``: x (N, C, H, W) normalised over its channels at each pixel, y = γ · x̂ + β with
    γ, β (C,) — a LayerNorm(C) of x permuted to (N, H, W, C), permuted back.  dX: LayerNorm's backward, between
    the same permutations."""

    def forward(self, x):
        self._check_input(x, f"(N, {self.normalized_shape[0]}, H, W)", 4, self.normalized_shape[0])
        y = super().forward(np.ascontiguousarray(x.transpose(0, 2, 3, 1)))
        return np.ascontiguousarray(y.transpose(0, 3, 1, 2))

    def backward(self, dy):
        dx = super().backward(np.ascontiguousarray(dy.transpose(0, 2, 3, 1)))
        return np.ascontiguousarray(dx.transpose(0, 3, 1, 2))


class CNBlock(nn.Module):
    """torchvision's ``CNBlock``: y = x + StochasticDepth(γ ⊙ block(x)), ``block`` the 7×7 depthwise conv
    (padding 3), Permute to (N, H, W, C), LayerNorm(C, ε = 1e-6), Linear(C → 4C), GELU, Linear(4C → C), Permute
    back, and γ the parameter ``layer_scale`` (C, 1, 1).  x (N, C, H, W) → y (N, C, H, W).
    With B = block(x) and dR the gradient through the stochastic depth:
    dγ = Σ_{n,h,w} dR ⊙ B,  dX = block.backward(γ ⊙ dR) + dY."""

    def __init__(self, dim: int, layer_scale: float = 1e-6, stochastic_depth_prob: float = 0.0):
        super().__init__()
        self.block = nn.Sequential(
            nn.Conv2d(dim, dim, kernel_size=7, padding=3, groups=dim), Permute(0, 2, 3, 1),
            nn.LayerNorm(dim, eps=1e-6), nn.Linear(dim, 4 * dim), nn.GELU(), nn.Linear(4 * dim, dim),
            Permute(0, 3, 1, 2))
        dtype = factory_dtype("CNBlock", None, None)
        self.params["layer_scale"] = np.full((dim, 1, 1), layer_scale, dtype=dtype)
        self.grads["layer_scale"] = np.zeros((dim, 1, 1), dtype=dtype)
        self.stochastic_depth = StochasticDepth(stochastic_depth_prob, "row")

    def forward(self, x):
        branch = self.block(x)
        self.save_for_backward(branch)
        return self.stochastic_depth(self.params["layer_scale"] * branch) + x

    def backward(self, dy):
        branch, = self.saved_for_backward()
        gamma = self.params["layer_scale"]
        d_scaled = self.stochastic_depth.backward(dy)
        np.copyto(self.grads["layer_scale"], np.einsum("nchw,nchw->c", d_scaled, branch).reshape(gamma.shape))
        return self.block.backward(gamma * d_scaled) + dy                 # dX = block.backward(γ ⊙ dR) + dY


def torchvision_init(model: nn.Module) -> None:
    """torchvision's ConvNeXt initialisation, in place: every Conv2d and Linear weight ~ N(0, 0.02²), bias 0."""
    rng = jrandom.generator()
    for module in model.modules():
        if isinstance(module, (nn.Conv2d, nn.Linear)):
            weight = module.params["weight"]
            weight[...] = init.normal(weight.shape, 0.02, rng, weight.dtype)
            if "bias" in module.params:
                module.params["bias"][...] = 0


def convnext_tiny(num_classes: int = 1000, in_channels: int = 3, input_size: int = 224,
                  stochastic_depth_prob: float = 0.1, layer_scale: float = 1e-6) -> nn.Sequential:
    """ConvNeXt-Tiny (torchvision): depthwise 7×7 blocks, LayerNorm, GELU, layer scale, 28.6 M parameters."""
    if not 0 <= stochastic_depth_prob <= 1:
        raise ValueError(f"convnext_tiny: stochastic_depth_prob must be in [0, 1], got {stochastic_depth_prob}")
    width = TINY[0][0]
    stem = (nn.Conv2d(in_channels, width, 3, 1, 1) if is_small(input_size)
            else nn.Conv2d(in_channels, width, kernel_size=4, stride=4))
    layers = [nn.Sequential(stem, LayerNorm2d(width, eps=1e-6))]
    total, index = sum(blocks for _, blocks in TINY), 0
    for stage, (channels, blocks) in enumerate(TINY):
        stage_blocks = []
        for _ in range(blocks):
            stage_blocks.append(CNBlock(channels, layer_scale, stochastic_depth_prob * index / (total - 1)))
            index += 1
        layers.append(nn.Sequential(*stage_blocks))
        if stage + 1 < len(TINY):
            out = TINY[stage + 1][0]
            layers.append(nn.Sequential(LayerNorm2d(channels, eps=1e-6), nn.Conv2d(channels, out, 2, 2)))
    last = TINY[-1][0]
    model = nn.Sequential(OrderedDict(
        features=nn.Sequential(*layers), avgpool=nn.AdaptiveAvgPool2d(1),
        classifier=nn.Sequential(LayerNorm2d(last, eps=1e-6), nn.Flatten(1), nn.Linear(last, num_classes))))
    torchvision_init(model)
    return finish(model, in_channels, input_size)
