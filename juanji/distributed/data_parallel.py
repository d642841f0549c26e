"""``DistributedDataParallel``: one model replica per process, gradients summed over the processes while the
backward still runs.

Each process runs forward and backward on its share of the global batch.  Its loss is the mean over its
n_r samples, so its gradients are g_r = (1/n_r) Σ_local; the gradient of the global batch's mean loss is
    g = Σ_r n_r · g_r / N,  N = Σ_r n_r
The parameters lie in buckets in reverse layer order, the order in which the backward produces their
gradients.  A backward hook on each layer tells when a bucket's gradients are all there; its n_r · g_r (the
first bucket's also n_r) then starts summing over the processes, a non-blocking Allreduce that the hooks of
the layers still to come move on, and before ``backward`` returns every sum is waited for and divided by N.
So every process takes the same optimizer step: the trajectory of one process on the global batches, up to
the order of float summation.
"""
from __future__ import annotations

import contextlib
import math

import numpy as np

from ..nn.module import Module
from ..runtime.grad_mode import is_grad_enabled

# juanji train --bucket-mb.  A 2-rank ResNet-20 step (1.1 MiB of gradients, ~1.4 s) waited for its Allreduces
# 0.3 ms with 0.25, 2.7 ms with 1 and 3.6 ms with 4 (one bucket: no overlap), best of 20 on a busy 2-core machine
BUCKET_MB = 0.25
MAX_BUCKET_MB = 1024.0


def check_bucket_mb(megabytes) -> float:
    """``megabytes`` as a float: a finite number above 0 and at most MAX_BUCKET_MB (ValueError otherwise)."""
    if isinstance(megabytes, bool) or not isinstance(megabytes, (int, float)) or not (
            math.isfinite(megabytes) and 0 < megabytes <= MAX_BUCKET_MB):
        raise ValueError(f"--bucket-mb must be a number of MiB above 0 and at most {MAX_BUCKET_MB:g}, got {megabytes}")
    return float(megabytes)


class DistributedDataParallel(Module):
    """Wrap ``module`` for data-parallel training over ``comm`` (``torch.nn.parallel.DistributedDataParallel``).

    On construction every process takes process 0's parameters and buffers.  ``forward(x)`` runs the
    module on this process's samples x: (n_r, ...); ``backward(dy)`` runs the module's backward, reducing
    bucket after bucket of about ``bucket_mb`` MiB meanwhile, and leaves in each gradient that of the global
    batch (see the module docstring).  Batch norm keeps per-process batch statistics (use
    ``convert_sync_batchnorm`` for global ones); switching to eval mode (``eval()``, ``train(False)``)
    gives every process process 0's running statistics, as torch's ``broadcast_buffers``.

    Gradient accumulation: a backward inside ``no_sync()`` adds n · g to the buckets instead of reducing, and
    the next backward outside it reduces the sum, so that k micro-batches of B samples give the gradient of
    one batch of k·B.  A process whose share of a batch is empty calls ``join_empty()`` in place of forward
    and backward: it takes part in the same collectives with a zero gradient of weight 0 (torch's ``join``).
    With ``comm=None`` (one process) only the accumulation remains.

    Collective: every process must call forward/backward (or join_empty) and eval alike, and a layer's
    backward must run once per backward of the whole model (as juanji's overwritten gradients require).
    """

    def __init__(self, module: Module, comm, bucket_mb: float = BUCKET_MB):
        super().__init__()
        self.module, self.comm = module, comm
        layers = [layer for layer in module.modules() if layer.params][::-1]
        if not layers:
            raise ValueError(f"DistributedDataParallel: {type(module).__name__} has no parameters whose gradients "
                             f"could be summed")
        self._buckets = _buckets(layers, check_bucket_mb(bucket_mb) * 2 ** 20, separate=comm is not None)
        self._bucket_of = {id(layer): bucket for bucket in self._buckets for layer in bucket.layers}
        for layer in layers:
            layer.register_full_backward_hook(self._layer_done)
        self._samples = 0           # n_r of the step under way
        self._next = 0              # the bucket to start next, in order (every process starts them alike)
        self._in_flight = []        # the Allreduces started in this step
        self._stepping = False      # a training forward has run; its backward reduces
        self._synchronise = True    # False inside no_sync()
        self._held = False          # the buckets hold n · g of micro-batches run inside no_sync()
        if comm is not None:
            for _, param, _ in module.parameters():
                comm.broadcast_(param)
        self.sync_buffers()
        self.train(module.training)

    def forward(self, x):
        if self.training and is_grad_enabled():
            self._begin(len(x))
        return self.module(x)

    def backward(self, dy):
        dx = self.module.backward(dy)
        if self._stepping:
            self._finish()
        return dx

    def join_empty(self) -> None:
        """Stand for this process's empty share of a batch: a zero gradient of weight 0 in the step's collectives."""
        self._begin(0)
        self._finish()

    @contextlib.contextmanager
    def no_sync(self):
        """Within it, a backward accumulates n · g in the buckets; the next backward after it reduces their sum
        (``torch.nn.parallel.DistributedDataParallel.no_sync``)."""
        was, self._synchronise = self._synchronise, False
        try:
            yield
        finally:
            self._synchronise = was

    # -- one step: buckets started by the layers' backward hooks, in order, waited for at the end ----------
    def _begin(self, samples: int) -> None:
        self._samples, self._next, self._stepping, self._in_flight = samples, 0, True, []
        for bucket in self._buckets:
            bucket.waiting = len(bucket.layers) if samples else 0

    def _layer_done(self, layer, grad_input, grad_output) -> None:
        if not self._stepping:          # no training forward through the wrapper since its last backward
            return
        self._bucket_of[id(layer)].waiting -= 1
        self._start_ready()
        if self._in_flight:
            self.comm.progress(self._in_flight)

    def _start_ready(self, everything: bool = False) -> None:
        """Pack and start the buckets whose layers are all done (``everything``: the rest), in bucket order."""
        while self._next < len(self._buckets) and (everything or not self._buckets[self._next].waiting):
            bucket = self._buckets[self._next]
            bucket.pack(self._samples, self._held)
            if self._synchronise and self.comm is not None:
                self._in_flight.append(self.comm.start_allreduce(bucket.send, bucket.receive))
            self._next += 1

    def _finish(self) -> None:
        """After the backward: start what no hook started, then each gradient ← Σ n · g / N (or hold the sums)."""
        self._start_ready(everything=True)
        self._stepping = False
        if not self._synchronise:
            self._held = True
            return
        for reduction in self._in_flight:
            self.comm.wait(reduction)
        self._held = False
        total = self._buckets[0].receive[-1]
        for bucket in self._buckets:
            bucket.unpack(total)

    @property
    def bucket_bytes(self) -> list[int]:
        """The size in bytes of each bucket's Allreduce, in the order they start: its gradients, and in the
        first bucket the sample count."""
        return [bucket.send.nbytes for bucket in self._buckets]

    def sync_buffers(self) -> None:
        """Every process's buffers (batch norm's running statistics) ← process 0's."""
        if self.comm is None:
            return
        for module in self.module.modules():
            for buffer in module.buffers.values():
                self.comm.broadcast_(buffer)

    def train(self, mode: bool = True) -> "DistributedDataParallel":
        if self.training and not mode:
            self.sync_buffers()
        return super().train(mode)

    def extra_repr(self) -> str:
        return f"processes={1 if self.comm is None else self.comm.size}, buckets={len(self._buckets)}"


class _Bucket:
    """The gradients of some consecutive layers, summed over the processes by one Allreduce: packed into
    ``send`` as n · g (the first bucket's last element: n), their sum arrives in ``receive``."""

    def __init__(self, layers: list, counts: bool, separate: bool):
        self.layers = layers
        self.grads = [grad for layer in layers for grad in layer.grads.values()]
        self.send = np.zeros(sum(grad.size for grad in self.grads) + counts, dtype=self.grads[0].dtype)
        self.receive = np.empty_like(self.send) if separate else self.send
        self.counts = counts
        self.waiting = 0            # layers whose backward has not run yet in this step

    def pack(self, samples: int, held: bool) -> None:
        """send ← n · g, or send += n · g when it holds earlier micro-batches' sums (n = 0: nothing to add)."""
        if not samples:
            if not held:
                self.send.fill(0)
            return
        offset = 0
        for grad in self.grads:
            part = self.send[offset:offset + grad.size]
            if held:
                part += samples * grad.reshape(-1)
            else:
                np.multiply(grad.reshape(-1), samples, out=part)
            offset += grad.size
        if self.counts:
            self.send[-1] = self.send[-1] + samples if held else samples

    def unpack(self, total) -> None:
        """Each gradient ← its part of ``receive`` / total."""
        offset = 0
        for grad in self.grads:
            np.divide(self.receive[offset:offset + grad.size], total, out=grad.reshape(-1))
            offset += grad.size


def _buckets(layers: list, bucket_bytes: float, separate: bool) -> list[_Bucket]:
    """Consecutive ``layers`` (each kept whole) of one dtype per bucket, about ``bucket_bytes`` of gradients
    each; the first bucket also carries the sample count."""
    groups, size, dtype = [], 0, None
    for layer in layers:
        grads = list(layer.grads.values())
        nbytes = sum(grad.nbytes for grad in grads)
        if not groups or size + nbytes > bucket_bytes or grads[0].dtype != dtype:
            groups.append([])
            size, dtype = 0, grads[0].dtype
        groups[-1].append(layer)
        size += nbytes
    return [_Bucket(group, counts=i == 0, separate=separate) for i, group in enumerate(groups)]
