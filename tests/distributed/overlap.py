"""The MPI worker of test_overlap.py: float64 trajectories of ``DistributedDataParallel`` reducing in many small
buckets while the backward runs, with gradient accumulation, and with an epoch whose last batch leaves a rank
without samples.  ``python overlap.py OUT`` under ``mpirun -n R`` writes ``OUT/CASE-rankK.npz`` (weights,
buffers, optimizer state) and ``OUT/started-rankK.json`` (how many bucket Allreduces had started when the
backward reached the first layer).
"""
from __future__ import annotations

import json
import os
import sys

from juanji import nn
from juanji.data import DataLoader

from equivalence import CASES, build, data_loader, train_on_this_rank
from equivalence import train  # noqa: F401  (test_accumulate.py's, from here with loader_of)

TINY_BUCKETS = 0.002            # MiB: every layer of these small models gets a bucket of its own
# case → (model, global batch of the loader, micro-batches per optimizer step)
TRAJECTORIES = {**{f"overlap-{case}": (case, 10, 1) for case in CASES},
                "accumulate": ("lenet5", 4, 3),         # micro-batches 4·6 + 2: steps on 12, 12, 2 samples
                "uneven": ("lenet5", 12, 1)}            # batches 12, 12, 2: over 3 ranks, rank 0's last share is empty


def loader_of(case: str, batch: int) -> DataLoader:
    """The equivalence test's shuffled, augmented float64 data in batches of ``batch``."""
    like = data_loader(case)
    return DataLoader(like.dataset, batch, shuffle=True, seed=like.seed, transform=like.transform)


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
    from juanji.distributed import DistributedDataParallel
    # under ``mpirun -n 1`` (no communicator) the wrapper only accumulates
    comm = train_on_this_rank(out, {name: (case, loader_of(case, batch), accumulate)
                                    for name, (case, batch, accumulate) in TRAJECTORIES.items()},
                              lambda model, comm: DistributedDataParallel(model, comm, TINY_BUCKETS))
    if comm is not None:
        with open(os.path.join(out, f"started-rank{comm.rank}.json"), "w") as f:
            json.dump(started_before_the_first_layer(comm), f)


if __name__ == "__main__":
    main(sys.argv[1])
