"""The float64 set-up shared by the data-parallel tests and their MPI workers: a model, its data, a few steps,
and a worker's job (``train_on_this_rank``).

``python equivalence.py OUT`` under ``mpirun -n R`` trains every case data-parallel and writes
``OUT/CASE-rankK.npz`` (weights, buffers, optimizer state) from every rank.
"""
from __future__ import annotations

import contextlib
import os
import sys

import numpy as np

from juanji import models, nn, optim
from juanji import random as jrandom
from juanji.data import DataLoader
from juanji.data.datasets import ArrayDataset
from juanji.data.transforms import Compose, RandomCrop, RandomHorizontalFlip
from juanji.init import initialize

CASES = ("lenet5", "resnet-per-rank-bn", "resnet-sync-bn")
SAMPLES, BATCH = 26, 10        # batches of 10, 10, 6: uneven shares over 3 ranks, a short last batch


def build(case: str, seed: int = 0):
    jrandom.seed(seed)
    if case == "lenet5":
        model = models.create("lenet5", num_classes=10, in_channels=1, input_size=28)
    else:
        model = models.resnet.resnet(models.resnet.BasicBlock, (1, 1), (4, 8), 10, 1, 12, shortcut="B")
    initialize(model, "kaiming_uniform", jrandom.generator())
    return model.to(np.float64)


def data_loader(case: str) -> DataLoader:
    """float64 images, shuffled and augmented (random crop of the 2-padded image, random flip): each rank
    reads and augments only its share, so its draws must be the samples' own, whatever the rank count."""
    size = 28 if case == "lenet5" else 12
    rng = np.random.default_rng(7)
    dataset = ArrayDataset(rng.standard_normal((SAMPLES, 1, size, size)), rng.integers(0, 10, SAMPLES),
                           [str(i) for i in range(10)], dtype=np.float64)
    augmentation = Compose([RandomCrop(size, padding=2), RandomHorizontalFlip()])
    return DataLoader(dataset, BATCH, shuffle=True, seed=3, transform=augmentation)


def make_optimizer(model):
    return optim.SGD(model.parameters(), lr=0.05, momentum=0.9, weight_decay=5e-4, nesterov=True)


EPOCHS = 2


def state(model, optimizer) -> dict:
    arrays = {f"model/{k}": v for k, v in model.state_dict().items()}
    arrays.update({f"optim/{k}": v for k, v in optimizer.state_dict()["arrays"].items()})
    return arrays


def train(network, optimizer, loader, accumulate: int = 1, loss_fn=None) -> None:
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


def train_on_this_rank(out: str, trajectories: dict, wrap):
    """A worker's job under ``mpirun``: each trajectory, name → (case, loader of the global batches, micro-batches
    per optimizer step), trains the case's model wrapped by ``wrap(model, comm)`` on this rank's shares and writes
    ``OUT/NAME-rankK.npz``.  Returns the communicator (None under ``mpirun -n 1``)."""
    from juanji import distributed
    comm = distributed.init()
    rank, size = (0, 1) if comm is None else (comm.rank, comm.size)
    for name, (case, loader, accumulate) in trajectories.items():
        model = build(case, seed=rank)      # different weights on each rank: the broadcast must fix it
        if case == "resnet-sync-bn" and comm is not None:
            distributed.convert_sync_batchnorm(model, comm)
        network = wrap(model, comm)
        optimizer = make_optimizer(model)
        train(network, optimizer, distributed.ShardedLoader(loader, rank, size), accumulate)
        network.eval()          # process 0's running statistics everywhere
        np.savez(os.path.join(out, f"{name}-rank{rank}.npz"), **state(model, optimizer))
    return comm


def main(out: str) -> None:
    from juanji.distributed import DistributedDataParallel
    # under ``mpirun -n 1`` (no communicator) the plain model is trained
    train_on_this_rank(out, {case: (case, data_loader(case), 1) for case in CASES},
                       lambda model, comm: model if comm is None else DistributedDataParallel(model, comm))


if __name__ == "__main__":
    main(sys.argv[1])
