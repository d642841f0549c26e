"""``DistributedDataParallel``: one model replica per process, gradients summed over the processes.

Each process runs forward and backward on its share of the global batch.  Its loss is the mean over its
n_r samples, so its gradients are g_r = (1/n_r) Σ_local; the gradient of the global batch's mean loss is
    g = Σ_r n_r · g_r / N,  N = Σ_r n_r
which one bucketed Allreduce per step computes on every process (the count N travels in the first bucket),
so every process then takes the same optimizer step: the trajectory of one process on the global batches,
up to the order of float summation.
"""
from __future__ import annotations

import numpy as np

from ..nn.module import Module

BUCKET_ELEMENTS = 1 << 20       # 4 MiB of float32 per Allreduce: few calls, messages already large


class DistributedDataParallel(Module):
    """Wrap ``module`` for data-parallel training over ``comm`` (``torch.nn.parallel.DistributedDataParallel``).

    On construction every process takes process 0's parameters and buffers.  ``forward(x)`` runs the
    module on this process's samples x: (n_r, ...); ``backward(dy)`` runs the module's backward, then
    replaces each gradient by that of the global batch (see the module docstring), in place, in buckets
    of about ``bucket_elements`` elements.  Batch norm keeps per-process batch statistics (use
    ``convert_sync_batchnorm`` for global ones); switching to eval mode (``eval()``, ``train(False)``)
    gives every process process 0's running statistics, as torch's ``broadcast_buffers``.
    Collective: every process must call forward/backward/eval the same number of times.
    """

    def __init__(self, module: Module, comm, bucket_elements: int = BUCKET_ELEMENTS):
        super().__init__()
        self.module, self.comm = module, comm
        self._buckets = _buckets([grad for _, _, grad in module.parameters()], bucket_elements)
        self._samples = 0
        for _, param, _ in module.parameters():
            comm.broadcast_(param)
        self.sync_buffers()
        self.train(module.training)

    def forward(self, x):
        self._samples = len(x)
        return self.module(x)

    def backward(self, dy):
        dx = self.module.backward(dy)
        self.allreduce_gradients()
        return dx

    def allreduce_gradients(self) -> None:
        """Each gradient ← Σ_r n_r · g_r / N over the processes (n_r: the last forward's batch size)."""
        total = None
        for grads, flat in self._buckets:
            offset = 0
            for grad in grads:
                np.multiply(grad.reshape(-1), self._samples, out=flat[offset:offset + grad.size])
                offset += grad.size
            if total is None:
                flat[-1] = self._samples
            self.comm.allreduce_(flat)
            if total is None:
                total = flat[-1]
            offset = 0
            for grad in grads:
                np.divide(flat[offset:offset + grad.size], total, out=grad.reshape(-1))
                offset += grad.size

    def sync_buffers(self) -> None:
        """Every process's buffers (batch norm's running statistics) ← process 0's."""
        for module in self.module.modules():
            for buffer in module.buffers.values():
                self.comm.broadcast_(buffer)

    def train(self, mode: bool = True) -> "DistributedDataParallel":
        if self.training and not mode:
            self.sync_buffers()
        return super().train(mode)

    def extra_repr(self) -> str:
        return f"processes={self.comm.size}, buckets={len(self._buckets)}"


def _buckets(grads, bucket_elements):
    """[(gradients, flat buffer)]: consecutive gradients of one dtype, about ``bucket_elements`` per
    buffer; the first buffer has one more element, for the sample count."""
    buckets, current, size = [], [], 0
    for grad in grads:
        if current and (size + grad.size > bucket_elements or grad.dtype != current[0].dtype):
            buckets.append(current)
            current, size = [], 0
        current.append(grad)
        size += grad.size
    if current:
        buckets.append(current)
    return [(group, np.empty(sum(g.size for g in group) + (i == 0), dtype=group[0].dtype))
            for i, group in enumerate(buckets)]
