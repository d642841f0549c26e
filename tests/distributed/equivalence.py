"""The float64 set-up shared by the equivalence test and its MPI worker: a model, its data, a few steps.

``python equivalence.py OUT`` under ``mpirun -n R`` trains every case data-parallel and writes
``OUT/CASE-rankK.npz`` (weights, buffers, optimizer state) from every rank.
"""
from __future__ import annotations

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


def main(out: str) -> None:
    from juanji import distributed
    comm = distributed.init()               # None under ``mpirun -n 1``: then the plain model is trained
    rank, size = (0, 1) if comm is None else (comm.rank, comm.size)
    for case in CASES:
        model = build(case, seed=rank)      # different weights on each rank: the broadcast must fix it
        if case == "resnet-sync-bn" and comm is not None:
            distributed.convert_sync_batchnorm(model, comm)
        parallel = model if comm is None else distributed.DistributedDataParallel(model, comm)
        optimizer = make_optimizer(model)
        loader = distributed.ShardedLoader(data_loader(case), rank, size)
        loss_fn = nn.CrossEntropyLoss()
        for epoch in range(EPOCHS):
            loader.set_epoch(epoch)
            for x, y in loader:
                loss_fn(parallel(x), y)
                parallel.backward(loss_fn.backward())
                optimizer.step()
        parallel.eval()         # process 0's running statistics everywhere
        np.savez(os.path.join(out, f"{case}-rank{rank}.npz"), **state(model, optimizer))


if __name__ == "__main__":
    main(sys.argv[1])
