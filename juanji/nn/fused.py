"""Fusion as an explicit model transform (as ``torch.ao.quantization.fuse_modules``): ``fuse(model)``.

A batch norm followed by a ReLU becomes one layer, ``BatchNormReLU``, and the ReLU an ``Identity``; on the
compiled kernels its forward is one sweep that writes z = max(y, 0) and never y. A block whose own rule
says so (a residual block's last batch norm, the shortcut's sum and the ReLU: ``BatchNormAddReLU``) is
replaced by what its ``fused()`` method returns. The fused layers hold the very arrays of the layers they
replace, under the same names: ``state_dict`` keys stay the same, and an optimizer made before ``fuse``
keeps updating the model. On NumPy's kernels they run the two layers' own kernels one after the other, so a
fused model computes what the unfused one computes, bit for bit; on the compiled ones the one sweep may sum in
another order (a few ulps). A ResNet block whose last batch norm is synchronised over processes keeps it
unfused (``ResidualBlock.fused``), as a ``Sequential`` does.
"""
from __future__ import annotations

from ..functional import activation as A
from ..functional import norm as F
from ..runtime import kernels
from .activation import ReLU
from .container import Sequential
from .linear import Identity
from .module import Module
from .normalization import BatchNorm1d, BatchNorm2d, _BatchNorm

FUSABLE = (BatchNorm1d, BatchNorm2d)     # not SyncBatchNorm: its statistics are summed over processes


class _Adopted(_BatchNorm):
    """A batch norm that takes over an existing one's settings, mode and arrays (the same objects)."""

    def __init__(self, batch_norm: _BatchNorm):
        Module.__init__(self)
        for setting in ("num_features", "eps", "momentum", "affine", "has_bias", "track_running_stats", "training",
                        "retains_cache", "_ndims", "_shape_desc"):
            setattr(self, setting, getattr(batch_norm, setting))
        # the same dicts: num_batches_tracked, a 0-d array counted up in place, stays shared too
        self.params, self.grads, self.buffers = batch_norm.params, batch_norm.grads, batch_norm.buffers


class BatchNormReLU(_Adopted):
    """z = max(BN(x), 0) as one layer;  dX = BN.backward(dZ · [z > 0])  ([z > 0] = [BN(x) > 0])."""

    def forward(self, x):
        if F.fuses_relu(x):
            z, cache = self._normalise(x, relu=True)
        else:
            y, cache = self._normalise(x)
            z = A.relu(y)
        self.save_for_backward(cache, z)
        return z

    def backward(self, dz):
        cache, z = self.saved_for_backward()
        return self._normalise_backward(A.relu_backward(dz, z), cache)


class BatchNormAddReLU(_Adopted):
    """z = max(BN(x) + s, 0), a residual block's end (s: the shortcut's output), as one layer;
    backward(dZ) → (dX, dS): dS = dZ · [z > 0], dX = BN.backward(dS)."""

    def forward(self, x, shortcut):
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


def fuse(model: Module) -> Module:
    """``model`` with every batch norm + ReLU pair of a ``Sequential`` fused (``BatchNormReLU``, the ReLU
    made an ``Identity``) and every module that has a ``fused()`` rule replaced by its result, in place;
    returns the model (a new object only where the model itself has a rule). Fuse after
    ``convert_sync_batchnorm``: synchronised batch norms are left as they are."""
    if hasattr(model, "fused"):
        return model.fused()
    if isinstance(model, Sequential):
        names = list(model._modules)
        for first, second in zip(names, names[1:]):
            layer, after = model._modules[first], model._modules[second]
            if type(layer) in FUSABLE and type(after) is ReLU:
                setattr(model, first, BatchNormReLU(layer))
                setattr(model, second, Identity())
    for name, child in list(model._modules.items()):
        fused = fuse(child)
        if fused is not child:
            setattr(model, name, fused)
    return model


def fuse_where_it_pays(model: Module) -> Module:
    """``fuse(model)`` where the compiled kernels are chosen (there the fused layers write one array less
    per pair); on NumPy's kernels the model as it is, which runs the same kernels unfused."""
    return fuse(model) if kernels.get_kernels() == "numba" else model
