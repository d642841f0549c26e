"""Fusion as an explicit model transform (as ``torch.ao.quantization.fuse_modules``): ``fuse(model)``.

A batch norm followed by a ReLU (or a ReLU6) becomes one layer, ``BatchNormReLU`` (``BatchNormReLU6``), and the
activation an ``Identity``; on the compiled kernels its forward is one sweep that writes z = max(y, 0) (or
min(max(y, 0), 6)) and never y. A block whose own rule says so (a residual block's last batch norm, the
shortcut's sum and the ReLU: ``BatchNormAddReLU``) is replaced by what its ``fused()`` method returns.
A ``Conv2d`` right before a ``BatchNorm2d`` becomes a ``FoldedConv2d`` (and a plain batch norm a
``FusedBatchNorm``): in inference — eval mode under ``no_grad``, with running statistics — the conv convolves
with the batch norm's scale folded into its weights, s·W, and the batch norm only adds its shift and applies the
activation after it, in place on the conv's output: one pass over the map instead of a batch norm writing a new
one (``functional.norm.batch_norm_fold``). In training, or where a backward may follow, both layers run as they
did unfused; so do they where a hook watches either of them, so that hooks see each layer's own output.

The fused layers hold the very arrays of the layers they replace, under the same names: ``state_dict`` keys stay
the same, and an optimizer made before ``fuse`` keeps updating the model. Outside inference, on NumPy's kernels
they run the layers' own kernels one after the other, so a fused model computes what the unfused one computes,
bit for bit; on the compiled ones the one sweep may sum in another order (a few ulps). In inference the folded
weights round differently: the same values to the dtype's rounding. A pair's layers are one computation there,
to be run in their order, as their ``Sequential`` or block runs them. A ResNet block whose last batch norm is
synchronised over processes keeps it unfused (``ResidualBlock.fused``), as a ``Sequential`` does.
"""
from __future__ import annotations

import math

from ..functional import activation as A
from ..functional import conv as C
from ..functional import norm as F
from ..runtime.grad_mode import is_grad_enabled
from ..runtime.workspace import scratch
from .activation import ReLU, ReLU6
from .container import Sequential
from .conv import Conv2d
from .linear import Identity
from .module import Module
from .normalization import BatchNorm1d, BatchNorm2d, _BatchNorm, scale_and_shift

FUSABLE = (BatchNorm1d, BatchNorm2d)     # not SyncBatchNorm: its statistics are summed over processes


def _watched(module: Module) -> bool:
    """True where a forward hook (or pre-hook) is registered on ``module`` itself: it would see the folded pair's
    values, not the layer's own.  Backward hooks (data parallelism's) play no part in inference."""
    hooks = module._hooks
    return hooks is not None and bool(hooks["forward_pre"] or hooks["forward"])


class FusedBatchNorm(_BatchNorm):
    """A batch norm that takes over an existing one's settings, mode and arrays (the same objects): the base of
    the fused batch norms, and itself the plain batch norm after a ``FoldedConv2d``.  ``low``, ``high``: the
    bounds of the activation it applies after itself (none here).  ``conv``: the ``FoldedConv2d`` before it,
    which in inference has applied its scale s: then it computes y ← min(max(y + t, low), high) in place."""

    low, high = -math.inf, math.inf
    conv = None

    def __init__(self, batch_norm: _BatchNorm):
        Module.__init__(self)
        for setting in ("num_features", "eps", "momentum", "affine", "has_bias", "track_running_stats", "training",
                        "retains_cache", "_ndims", "_shape_desc"):
            setattr(self, setting, getattr(batch_norm, setting))
        # the same dicts: num_batches_tracked, a 0-d array counted up in place, stays shared too
        self.params, self.grads, self.buffers = batch_norm.params, batch_norm.grads, batch_norm.buffers

    def folds(self) -> bool:
        """True where the conv before it has folded it in: inference (eval under no_grad) with running
        statistics, and no forward hook on either layer."""
        return (self.conv is not None and not self.training and self.track_running_stats
                and not is_grad_enabled() and not _watched(self) and not _watched(self.conv))

    def forward(self, x):
        if self.folds():
            return self._shift(x)
        return super().forward(x)

    def _shift(self, y, residual=None, low=None, high=None):
        """The conv's output y, scaled already, shifted by t = β − μ·s (plus ``residual``) and clamped to
        [low, high] (by default the layer's), in place: nothing kept (inference)."""
        self._check_input(y, self._shape_desc.format(C=self.num_features), self._ndims, self.num_features)
        gamma, beta = scale_and_shift(self, y.dtype)
        _, shift = F.batch_norm_fold(gamma, beta, self.buffers["running_mean"], self.buffers["running_var"],
                                     self.eps)
        self.save_for_backward()
        return F.shift_and_clamp(y, shift, residual, self.low if low is None else low,
                                 self.high if high is None else high)


class BatchNormReLU(FusedBatchNorm):
    """z = max(BN(x), 0) as one layer;  dX = BN.backward(dZ · [z > 0])  ([z > 0] = [BN(x) > 0])."""

    low = 0.0

    def forward(self, x):
        if self.folds():
            return self._shift(x)
        if F.fuses_relu(x):
            z, cache = self._normalise(x, relu=True, cap=self.high)
        else:
            y, cache = self._normalise(x)
            z = self._activation(y)
        self.save_for_backward(cache, z)
        return z

    def backward(self, dz):
        cache, z = self.saved_for_backward()
        if F.masks_in_backward(cache):      # the rows loops take dZ · [low < z < high] in their own sweeps
            return self._normalise_backward(dz, cache, (z, self.low, self.high))
        return self._normalise_backward(self._activation_backward(dz, z), cache)

    def _activation(self, y):
        return A.relu(y)

    def _activation_backward(self, dz, z):
        return A.relu_backward(dz, z)


class BatchNormReLU6(BatchNormReLU):
    """z = min(max(BN(x), 0), 6) as one layer (MobileNet v2's pairs);  dX = BN.backward(dZ · [0 < z < 6])."""

    high = 6.0

    def _activation(self, y):
        return A.hardtanh(y, self.low, self.high)

    def _activation_backward(self, dz, z):
        return A.hardtanh_backward(dz, z, self.low, self.high)


class BatchNormAddReLU(FusedBatchNorm):
    """z = max(BN(x) + s, 0), a residual block's end (s: the shortcut's output), as one layer;
    backward(dZ) → (dX, dS): dS = dZ · [z > 0], dX = BN.backward(dS)."""

    low = 0.0

    def forward(self, x, shortcut):
        if self.folds():        # a shortcut of another shape is broadcast, as the unfused sum does
            same = shortcut.shape == x.shape
            return self._shift(x, shortcut) if same else A.relu(self._shift(x, low=-math.inf) + shortcut)
        if F.fuses_relu(x) and shortcut.shape == x.shape:
            z, cache = self._normalise(x, relu=True, residual=shortcut)
        else:
            y, cache = self._normalise(x)
            z = A.relu(y + shortcut)
        self.save_for_backward(cache, z)
        return z

    def backward(self, dz):
        cache, z = self.saved_for_backward()
        ds = A.relu_backward(dz, z)
        return self._normalise_backward(ds, cache), ds


class FoldedConv2d(Conv2d):
    """A ``Conv2d`` (its settings, hooks and very arrays) with the ``FusedBatchNorm`` after it folded in at
    inference (``batch_norm.folds()``): y = (s·W) ⋆ x + s·b, s = γ/√(σ² + ε) per output channel, which the batch
    norm then shifts and clamps in place.  Otherwise, and in its backward, the conv it was."""

    def __init__(self, conv: Conv2d, batch_norm: FusedBatchNorm):
        Module.__init__(self)
        self.__dict__.update(conv.__dict__)
        # a reference, not a child: the batch norm's arrays stay under its own name
        object.__setattr__(self, "batch_norm", batch_norm)
        object.__setattr__(batch_norm, "conv", self)

    def forward(self, x):
        if not self.batch_norm.folds():
            return super().forward(x)
        batched = self._check(x, 4)
        norm = self.batch_norm
        gamma, beta = scale_and_shift(norm, x.dtype)
        scale, _ = F.batch_norm_fold(gamma, beta, norm.buffers["running_mean"], norm.buffers["running_var"], norm.eps)
        scale = scale.astype(x.dtype)
        weight, bias = self.params["weight"], self.params.get("bias")
        x4, memory = x if batched else x[None], scratch()
        y, _ = C.conv2d(x4, weight * scale.reshape(-1, 1, 1, 1), None if bias is None else bias * scale,
                        self.stride, self.pads, self.dilation, self.groups, memory, memory,
                        self._plan(x4.shape, weight.shape, self.pads))      # Conv2d's: zeros padding, x as it is
        self.save_for_backward()
        return y if batched else y[0]


def fold(conv: Module, batch_norm: Module) -> Module:
    """``conv`` as a ``FoldedConv2d`` that folds ``batch_norm`` (a ``FusedBatchNorm``, run right after it) in
    inference, where it can: a ``Conv2d`` padding with zeros, before a 2-d batch norm of its output channels;
    else ``conv`` as it is."""
    if (type(conv) is Conv2d and conv.padding_mode == "zeros" and isinstance(batch_norm, FusedBatchNorm)
            and batch_norm._ndims == BatchNorm2d._ndims and batch_norm.num_features == conv.out_channels
            and batch_norm.conv is None):
        return FoldedConv2d(conv, batch_norm)
    return conv


ACTIVATIONS = {ReLU: BatchNormReLU, ReLU6: BatchNormReLU6}      # an activation after a batch norm → the pair


def fuse(model: Module) -> Module:
    """``model`` with every batch norm + ReLU (or ReLU6) pair of a ``Sequential`` fused (``BatchNormReLU``,
    ``BatchNormReLU6``; the activation made an ``Identity``), every ``Conv2d`` before a batch norm in a
    ``Sequential`` folding it in inference (``FoldedConv2d``), and every module that has a ``fused()`` rule
    replaced by its result, in place; returns the model (a new object only where the model itself has a rule).
    Fuse after ``convert_sync_batchnorm``: synchronised batch norms are left as they are."""
    if hasattr(model, "fused"):
        return model.fused()
    if isinstance(model, Sequential):
        layers = model._modules
        names = list(layers)
        for first, second in zip(names, names[1:]):
            if type(layers[first]) in FUSABLE and type(layers[second]) in ACTIVATIONS:
                setattr(model, first, ACTIVATIONS[type(layers[second])](layers[first]))
                setattr(model, second, Identity())
        for first, second in zip(names, names[1:]):
            batch_norm = layers[second]
            if type(batch_norm) is BatchNorm2d:
                batch_norm = FusedBatchNorm(batch_norm)
            folded = fold(layers[first], batch_norm)
            if folded is not layers[first]:
                setattr(model, first, folded)
                setattr(model, second, batch_norm)
    for name, child in list(model._modules.items()):
        fused = fuse(child)
        if fused is not child:
            setattr(model, name, fused)
    return model


def fuse_where_it_pays(model: Module) -> Module:
    """``fuse(model)``, as juanji's trainer and benchmark build their models: on either kernel set the folded
    batch norms shorten inference (ResNet-20 and MobileNet v2 at batch 256, 1 and 2 threads, measured under load:
    10 to 37 % less CPU time on NumPy's kernels, 0 to 36 % on the compiled ones), and on the compiled ones the
    fused pairs write one array less per pair in training; on NumPy's kernels training runs the very kernels of
    the unfused model."""
    return fuse(model)
