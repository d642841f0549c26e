"""Synchronised batch norm: batch statistics over the union of every process's samples."""
from __future__ import annotations

import numpy as np

from ..nn.module import Module
from ..nn.fused import FusedBatchNorm
from ..nn.normalization import _BatchNorm


class SyncBatchNorm(_BatchNorm):
    """``torch.nn.SyncBatchNorm``: x (N, C, ...) normalised with μ, σ² over all processes' batches.

    Forward: two Allreduces (Σx with the count, then Σ(x − μ)²); backward one (Σ dY, Σ dY·x̂).  The
    backward's sums weigh each process's dY by its share n_r/N of the global batch, since each process's
    dY is the gradient of its own mean loss (``DistributedDataParallel`` weighs the parameter gradients
    alike).  In eval mode, or with ``comm=None``, it is plain batch norm.  torch's arguments, with juanji's
    ``Communicator`` as the keyword ``comm`` where torch takes a ``process_group`` (which must stay None).
    """
    _ndims, _shape_desc = (2, 3, 4, 5), "(N, {C}, ...)"

    def __init__(self, num_features: int, eps: float = 1e-5, momentum: float | None = 0.1, affine: bool = True,
                 track_running_stats: bool = True, process_group=None, device=None, dtype=None, *,
                 bias: bool = True, comm=None):
        if process_group is not None:
            raise ValueError("SyncBatchNorm: process_group must be None; juanji synchronises over a "
                             "juanji.distributed.Communicator passed as comm=")
        super().__init__(num_features, eps, momentum, affine, track_running_stats, device, dtype, bias=bias)
        self.comm = comm

    def _statistics_sum(self):
        return self._sum if self.comm is not None and self.training else None

    def _gradient_sum(self, dy, cache):
        if self.comm is None or not self.training:
            return None
        share = (dy.size // dy.shape[1]) / cache.count        # n_r / N: the count is the global batch's
        return lambda array: self._sum(array * share) / share

    def _sum(self, array):
        return self.comm.allreduce_(np.ascontiguousarray(array))


def convert_sync_batchnorm(module: Module, comm) -> Module:
    """Turn every ``BatchNorm1d``/``BatchNorm2d`` inside ``module`` into a ``SyncBatchNorm`` over ``comm``,
    in place (the layer objects stay, their class changes): models that keep their own lists of layers
    (ResNet's blocks) and optimizers holding the arrays keep working.  Returns ``module``."""
    for layer in module.modules():
        if isinstance(layer, FusedBatchNorm):
            raise ValueError(f"convert_sync_batchnorm: {type(layer).__name__} is a fused layer; convert before "
                             f"nn.fuse (which leaves synchronised batch norms unfused)")
        if isinstance(layer, _BatchNorm):
            layer.__class__ = SyncBatchNorm
            layer.comm = comm
    return module
