"""``python -m juanji.bench --distributed``: data parallelism on this machine's cores, side by side in one run.

Four ways to spend 2 cores on the Fashion-MNIST LeNet-5 epoch (global batch 64) and the ResNet-20 train
step (global batch 128): juanji in 1 process × 2 threads and in 2 MPI ranks × 1 thread
(``DistributedDataParallel``), PyTorch in 1 process × 2 threads and ``DistributedDataParallel`` over gloo
in 2 processes × 1 thread.  Both 2-process set-ups are started by ``mpirun`` and split every global batch
the same way (``ShardedLoader``).  For juanji's ranks it also reports the time inside Allreduce per step
and its share of the step (it includes waiting for the slower rank).  Then the loader alone at 1, 2 and 4
ranks (oversubscribed where the cores are fewer): ms per step that a rank spends reading, augmenting (crop,
flip) and normalising its share of ResNet-20-like batches, 128 Fashion-MNIST images per rank, beside what
reading the whole global batch costs (what every rank did before the loader sharded).  Needs Open MPI,
mpi4py and PyTorch (``pip install -e .[test]``).

    python -m juanji.bench --distributed [--quick]
    python -m juanji.bench.distributed [--limit 60000] [--steps 20] [--out bench/results/distributed.md]
"""
from __future__ import annotations

import argparse
import itertools
import json
import os
import socket
import statistics
import subprocess
import sys
import time

import numpy as np

from .report import machine_description, provenance
from .rows import TRAIN_BATCHES

CONFIGURATIONS = (("juanji", 1, 2), ("juanji", 2, 1), ("pytorch", 1, 2), ("pytorch", 2, 1))  # (framework, processes, threads)
EPOCH_BATCH, STEP_BATCH = 64, 128
LOADER_RANKS = (1, 2, 4)
LOADER_BATCH = TRAIN_BATCHES["resnet20"][0]     # images per rank: ResNet-20's training batch


class Juanji:
    def __init__(self, comm):
        from .. import models, nn, optim
        from ..distributed import DistributedDataParallel
        self.comm, self.models, self.nn, self.optim, self.ddp = comm, models, nn, optim, DistributedDataParallel

    def trainer(self, name, channels, size):
        """step(x, y) of one SGD step on this process's share x, y."""
        model = self.models.create(name, num_classes=10, in_channels=channels, input_size=size)
        optimizer = self.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
        network = model if self.comm is None else self.ddp(model, self.comm)
        loss_fn = self.nn.CrossEntropyLoss()

        def step(x, y):
            loss_fn(network(x), y)
            network.backward(loss_fn.backward())
            optimizer.step()
        return step


class Torch:
    def __init__(self, comm):
        import torch
        import torch.distributed as dist
        self.torch, self.comm = torch, comm
        if comm is not None:
            dist.init_process_group("gloo", rank=comm.rank, world_size=comm.size,
                                    init_method=f"tcp://127.0.0.1:{os.environ['JUANJI_BENCH_PORT']}")

    def trainer(self, name, channels, size):
        from . import torch_models
        torch = self.torch
        model = getattr(torch_models, name)(10, channels, size)
        if self.comm is not None:
            model = torch.nn.parallel.DistributedDataParallel(model)
        optimizer = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
        loss_fn = torch.nn.CrossEntropyLoss()

        def step(x, y):
            optimizer.zero_grad()
            loss_fn(model(torch.from_numpy(x)), torch.from_numpy(y)).backward()
            optimizer.step()
        return step


def run_worker(framework: str, threads: int, limit: int, steps: int) -> dict | None:
    """Time both tasks (or the loader) in this process (one of several under mpirun); rank 0 returns the figures."""
    from threadpoolctl import threadpool_limits
    from ..distributed import ShardedLoader, init, shard
    comm = init()
    rank, size = (0, 1) if comm is None else (comm.rank, comm.size)
    threadpool_limits(threads)
    if framework == "loader":
        return time_loader(comm, limit, steps)
    side = (Juanji if framework == "juanji" else Torch)(comm)
    if framework == "pytorch":
        side.torch.set_num_threads(threads)
    from ..data import DataLoader, load_mnist
    results = {}
    loader = ShardedLoader(DataLoader(load_mnist(train=True, limit=limit), EPOCH_BATCH, shuffle=True), rank, size)
    step = side.trainer("lenet5", 1, 28)
    reduce_before = comm.allreduce_seconds if framework == "juanji" and comm else 0.0
    _barrier(comm)
    started = time.perf_counter()
    for x, y in loader:
        step(x, y)
    _barrier(comm)
    results["lenet5 epoch s"] = time.perf_counter() - started
    results["lenet5 images"] = len(loader.dataset)
    if framework == "juanji" and comm:
        results["lenet5 allreduce ms/step"] = 1e3 * (comm.allreduce_seconds - reduce_before) / len(loader)
    if framework == "juanji" and comm:          # the message alone: LeNet-5's gradients, summed over the ranks
        gradients = np.ones(61_706, dtype=np.float32)
        _barrier(comm)
        started = time.perf_counter()
        for _ in range(100):
            comm.allreduce_(gradients)
        results["allreduce 61,706 float32 µs"] = 1e6 * (time.perf_counter() - started) / 100
    rng = np.random.default_rng(0)
    x = rng.random((STEP_BATCH, 3, 32, 32), dtype=np.float32)[shard(STEP_BATCH, rank, size)]
    y = rng.integers(0, 10, STEP_BATCH)[shard(STEP_BATCH, rank, size)]
    step = side.trainer("resnet20", 3, 32)
    times, reduces = [], []
    for index in range(steps + 2):              # 2 warm-up steps
        _barrier(comm)
        reduce_before = comm.allreduce_seconds if framework == "juanji" and comm else 0.0
        started = time.perf_counter()
        step(x, y)
        _barrier(comm)
        if index >= 2:
            times.append(time.perf_counter() - started)
            if framework == "juanji" and comm:
                reduces.append(comm.allreduce_seconds - reduce_before)
    results["resnet20 step ms"] = 1e3 * statistics.median(times)
    if reduces:
        results["resnet20 allreduce ms/step"] = 1e3 * statistics.median(reduces)
    return results if rank == 0 else None


def time_loader(comm, limit: int, steps: int) -> dict | None:
    """Median ms per step of this rank's share of global batches of LOADER_BATCH × ranks Fashion-MNIST images,
    augmented and normalised as ``juanji train --augment crop,flip`` does, and of the whole global batch
    (2 warm-up steps each; epochs follow one another as needed).  Rank 0 returns the slowest rank's."""
    from ..data import DataLoader, load_mnist
    from ..data.datasets import channel_mean_std
    from ..data.transforms import Compose, Normalize
    from ..train import make_augmentation
    rank, size = (0, 1) if comm is None else (comm.rank, comm.size)
    dataset = load_mnist(train=True, limit=limit)
    transform = Compose(make_augmentation(["crop", "flip"], 28) + [Normalize(*channel_mean_std(dataset.stored))])
    medians = []
    for share in ((rank, size), None):
        loader = DataLoader(dataset, LOADER_BATCH * size, shuffle=True, transform=transform, shard=share)
        batches, times = _epochs(loader), []
        for _ in range(steps + 2):
            started = time.perf_counter()
            next(batches)
            times.append(time.perf_counter() - started)
        medians.append(1e3 * statistics.median(times[2:]))
    if comm is not None:        # each rank's figures in its own slots: the slowest rank's are the maxima
        slots = np.zeros((size, 2))
        slots[rank] = medians
        medians = comm.sum(slots).max(axis=0).tolist()
    result = {"ranks": size, "images per rank": LOADER_BATCH, "share ms/step": medians[0],
              "global batch ms/step": medians[1]}
    return result if rank == 0 else None


def _epochs(loader):
    """``loader``'s batches, epoch after epoch."""
    for epoch in itertools.count():
        loader.set_epoch(epoch)
        yield from loader


def format_loader_table(results: dict) -> str:
    lines = [f"| ranks | loader ms per step, each rank's share of {LOADER_BATCH} images | reading the whole "
             f"global batch ms |", "|---|---|---|"]
    for ranks, r in results.items():
        lines.append(f"| {ranks} | {r['share ms/step']:.1f} | {r['global batch ms/step']:.1f} |")
    return "\n".join(lines)


def _barrier(comm):
    if comm is not None:
        comm.barrier()


def _spawn(framework, processes, threads, limit, steps) -> dict:
    command = [sys.executable, "-m", "juanji.bench.distributed", "--worker", framework, "--threads", str(threads),
               "--limit", str(limit), "--steps", str(steps)]
    if processes > 1:
        # as root (a container, a cloud image) Open MPI refuses to start without being told twice
        as_root = ["--allow-run-as-root"] if os.geteuid() == 0 else []
        command = ["mpirun", *as_root, "--oversubscribe", "--bind-to", "none", "-n", str(processes)] + command
    with socket.socket() as s:                  # a free port for gloo's rendezvous
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = dict(os.environ, JUANJI_BENCH_PORT=str(port), OMP_NUM_THREADS=str(threads))
    run = subprocess.run(command, capture_output=True, text=True, env=env, timeout=3600)
    if run.returncode != 0:
        raise RuntimeError(f"{' '.join(command)} failed:\n{run.stderr[-2000:]}")
    return json.loads(run.stdout.strip().splitlines()[-1])


def format_table(results: dict) -> str:
    lines = ["| configuration | LeNet-5 epoch s (img/s) | allreduce ms/step (share) | ResNet-20 step ms "
             "| allreduce ms/step (share) |", "|---|---|---|---|---|"]
    for (framework, processes, threads), r in results.items():
        epoch_step_ms = 1e3 * r["lenet5 epoch s"] / -(-r["lenet5 images"] // EPOCH_BATCH)
        share = lambda key, step_ms: (f"{r[key]:.2f} ({r[key] / step_ms:.0%})" if key in r else "–")
        kind = f"DDP {'MPI' if framework == 'juanji' else 'gloo'}, " if processes > 1 else ""
        lines.append(f"| {framework} {kind}{processes} process{'es' if processes > 1 else ''} × {threads} "
                     f"thread{'s' if threads > 1 else ''} | {r['lenet5 epoch s']:.2f} "
                     f"({r['lenet5 images'] / r['lenet5 epoch s']:.0f}) | "
                     f"{share('lenet5 allreduce ms/step', epoch_step_ms)} | {r['resnet20 step ms']:.0f} | "
                     f"{share('resnet20 allreduce ms/step', r['resnet20 step ms'])} |")
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m juanji.bench.distributed", description=__doc__.split("\n\n")[0])
    parser.add_argument("--limit", type=int, default=60000, help="training images of the LeNet-5 epoch")
    parser.add_argument("--steps", type=int, default=20, help="timed ResNet-20 steps (after 2 warm-up)")
    parser.add_argument("--out", help="also write the table to this Markdown file")
    parser.add_argument("--worker", choices=["juanji", "pytorch", "loader"], help=argparse.SUPPRESS)
    parser.add_argument("--threads", type=int, default=1, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        result = run_worker(args.worker, args.threads, args.limit, args.steps)
        if result is not None:
            print(json.dumps(result))
        return 0
    results = {config: _spawn(*config, args.limit, args.steps) for config in CONFIGURATIONS}
    table = format_table(results)
    alone = results[("juanji", 2, 1)]["allreduce 61,706 float32 µs"]
    table += f"\n\nOne Allreduce of LeNet-5's 61,706 float32 gradients over 2 ranks: {alone:.0f} µs (mean of 100)."
    loading = {ranks: _spawn("loader", ranks, 1, args.limit, args.steps) for ranks in LOADER_RANKS}
    table += ("\n\nThe loader alone (Fashion-MNIST, random crop, flip and normalisation; median of the steps, "
              "slowest rank):\n\n" + format_loader_table(loading))
    print(table)
    if args.out:
        command = f"python -m juanji.bench.distributed {' '.join(argv if argv is not None else sys.argv[1:])}"
        with open(args.out, "w") as f:
            f.write("# Data parallelism on one machine\n\n"
                    + "\n".join(provenance(command.strip(), machine_description(dict(os.environ))))
                    + "\n\n" + table + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
