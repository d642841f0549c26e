"""The MPI worker of test_overlap.py: float64 trajectories of ``DistributedDataParallel`` reducing in many small
buckets while the backward runs, with gradient accumulation, and with an epoch whose last batch leaves a rank
without samples.  ``python overlap.py OUT`` under ``mpirun -n R`` writes ``OUT/CASE-rankK.npz`` (weights,
buffers, optimizer state) and ``OUT/started-rankK.json`` (how many bucket Allreduces had started when the
backward reached the first layer).
"""
from __future__ import annotations

import contextlib
import json
import os
import sys

import numpy as np

from juanji import nn
from juanji.data import DataLoader

from equivalence import CASES, EPOCHS, build, data_loader, make_optimizer, state

TINY_BUCKETS = 0.002            # MiB: every layer of these small models gets a bucket of its own
# case → (model, global batch of the loader, micro-batches per optimizer step)
TRAJECTORIES = {**{f"overlap-{case}": (case, 10, 1) for case in CASES},
                "accumulate": ("lenet5", 4, 3),         # micro-batches 4·6 + 2: steps on 12, 12, 2 samples
                "uneven": ("lenet5", 12, 1)}            # batches 12, 12, 2: over 3 ranks, rank 0's last share is empty


def loader_of(case: str, batch: int) -> DataLoader:
    """The equivalence test's shuffled, augmented float64 data in batches of ``batch``."""
    like = data_loader(case)
    return DataLoader(like.dataset, batch, shuffle=True, seed=like.seed, transform=like.transform)


def train(network, optimizer, loader, accumulate: int, loss_fn=None) -> None:
    """``EPOCHS`` epochs as ``juanji train --accumulate`` runs them: an optimizer step every ``accumulate``
    batches and at the epoch's end; an empty share joins the step's collectives."""
    loss_fn = loss_fn or nn.CrossEntropyLoss()
    for epoch in range(EPOCHS):
        loader.set_epoch(epoch)
        for step, (x, y) in enumerate(loader):
            ends_step = (step + 1) % accumulate == 0 or step + 1 == len(loader)
            with contextlib.nullcontext() if ends_step else network.no_sync():
                if len(y):
                    loss_fn(network(x), y)
                    network.backward(loss_fn.backward())
                else:
                    network.join_empty()
            if ends_step:
                optimizer.step()


def started_before_the_first_layer(comm) -> dict:
    """One step of LeNet-5 in tiny buckets: how many Allreduces had started when the backward reached the
    first layer (whose gradients come last), and how many buckets there are."""
    from juanji import distributed
    model = build("lenet5")
    network = distributed.DistributedDataParallel(model, comm, TINY_BUCKETS)
    first = next(layer for layer in model.modules() if layer.params)
    seen = {}

    def record(layer, grad_output):
        seen["at"] = comm.collectives
    first.register_full_backward_pre_hook(record)
    loss_fn = nn.CrossEntropyLoss()
    x, y = next(iter(loader_of("lenet5", 10)))
    loss_fn(network(x), y)
    before = comm.collectives
    network.backward(loss_fn.backward())
    return {"started": seen["at"] - before, "buckets": len(network._buckets),
            "all": comm.collectives - before}


def main(out: str) -> None:
    from juanji import distributed
    comm = distributed.init()               # None under ``mpirun -n 1``: the wrapper then only accumulates
    rank, size = (0, 1) if comm is None else (comm.rank, comm.size)
    for name, (case, batch, accumulate) in TRAJECTORIES.items():
        model = build(case, seed=rank)      # different weights on each rank: the broadcast must fix it
        if case == "resnet-sync-bn" and comm is not None:
            distributed.convert_sync_batchnorm(model, comm)
        network = distributed.DistributedDataParallel(model, comm, TINY_BUCKETS)
        optimizer = make_optimizer(model)
        train(network, optimizer, distributed.ShardedLoader(loader_of(case, batch), rank, size), accumulate)
        network.eval()          # process 0's running statistics everywhere
        np.savez(os.path.join(out, f"{name}-rank{rank}.npz"), **state(model, optimizer))
    if comm is not None:
        with open(os.path.join(out, f"started-rank{rank}.json"), "w") as f:
            json.dump(started_before_the_first_layer(comm), f)


if __name__ == "__main__":
    main(sys.argv[1])
