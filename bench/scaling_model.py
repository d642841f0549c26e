"""Data-parallel ResNet-20 on many ranks, on paper: the time of one step at each number of ranks, from the time one
rank computes, the time it loads its images and the time a ring Allreduce takes to sum the gradients.

    python bench/scaling_model.py [--compute-ms MS] [--loader-us US] [--bandwidth GB/s] [--latency-us US]
                                  [--bucket-mb MIB] [--ranks 1 8 64 512] [--quick] [--out FILE]

Each rank trains IMAGES (128) images per step on one thread, so p ranks train a global batch of 128·p (weak
scaling; with ``juanji train --lr-scaling linear`` the learning rate grows with it).  One step takes

    compute + loading + allreduce(p),   allreduce(p) = Σ over buckets b of  2(p−1)/p · bytes_b / bandwidth
                                                                          + 2(p−1) · latency

compute: the ResNet-20 train step of 128 images on one thread (``--compute-ms``; by default the stored
benchmark's, bench/results/benchmark.md, that of the faster kernels); loading: the loader's time per
image (``--loader-us``; by default measured here: 3×32×32 images cropped, flipped and normalised as ``juanji
train --augment crop,flip`` does) × 128; allreduce: the ring algorithm's time for the gradients of ResNet-20,
counted from the model, in the buckets of ``--bucket-mb`` that ``DistributedDataParallel`` sums one Allreduce
each.  Nothing overlaps in this model (juanji's Allreduces do overlap the backward): an upper bound.  With all
four inputs given the table depends on nothing else, so that docs/distributed.md can show it and a test can
check it.  ``--out`` also writes it as a stored output (with command, machine and date).
"""
import argparse
import os
import sys

import numpy as np
from threadpoolctl import threadpool_limits

import juanji
from juanji.bench.juanji_side import JuanjiSide
from juanji.bench.measure import timed
from juanji.bench.report import machine_description, provenance
from juanji.bench.rows import MODEL_INPUTS, TRAIN_BATCHES
from juanji.data import DataLoader
from juanji.data.datasets import ArrayDataset, channel_mean_std
from juanji.data.transforms import Compose, Normalize
from juanji.distributed import BUCKET_MB, DistributedDataParallel
from juanji.train import make_augmentation

HERE = os.path.dirname(os.path.abspath(__file__))
STORED = os.path.join(HERE, "results", "benchmark.md")     # where --compute-ms comes from by default
MODEL = "resnet20"
IMAGES = TRAIN_BATCHES[MODEL][0]        # per rank and step: the benchmark's ResNet-20 train step batch
STORED_ROW = f"train step {MODEL} b{IMAGES}"
RANKS = (1, 8, 64, 512)
HEADER = ("| ranks | global batch | compute ms | loading ms | allreduce ms | step ms | img/s | efficiency |\n"
          "|---|---|---|---|---|---|---|---|")


def stored_compute_ms(path: str) -> float | None:
    """The fastest of juanji's kernels on one thread in the stored benchmark's ``STORED_ROW`` row (its minimum,
    ms), or None where the file has no such figure."""
    try:
        with open(path, encoding="utf-8") as f:
            text = f.read()
    except FileNotFoundError:
        return None
    section = text.partition("\n1 thread:")[2].partition(" threads:")[0]       # up to the 2-thread table
    rows = [[cell.strip() for cell in line.strip().strip("|").split("|")] for line in section.splitlines()
            if line.startswith("|")]
    header = rows[0] if rows else []
    columns = [i for i, name in enumerate(header) if name.startswith("juanji ") and name.endswith("ms (min/med)")]
    found = [row for row in rows if row[0] == STORED_ROW]
    minima = [float(found[0][i].split("/")[0]) for i in columns if found and "/" in found[0][i]]
    return min(minima, default=None)


def measure_loader_us(quick: bool) -> float:
    """µs per image of the loader on one thread, here: batches of IMAGES uint8 images of ResNet-20's input
    shape gathered, cropped (padding 2), flipped and normalised (the minimum over the batches)."""
    rng = np.random.default_rng(0)
    channels, size = MODEL_INPUTS[MODEL]
    batches = 3 if quick else 12
    pixels = rng.integers(0, 256, (IMAGES * batches, channels, size, size), dtype=np.uint8)
    dataset = ArrayDataset(pixels, rng.integers(0, 10, len(pixels)), [str(i) for i in range(10)])
    transform = Compose(make_augmentation(["crop", "flip"], size) + [Normalize(*channel_mean_std(dataset.stored))])
    loaded = iter(DataLoader(dataset, IMAGES, shuffle=True, transform=transform))
    return 1e6 * timed(lambda: next(loaded), min_repeats=batches - 2, budget=0, warmup=2)[0] / IMAGES


def bucket_bytes(bucket_mb: float) -> list[int]:
    """The bytes of each Allreduce of a ResNet-20 step: its float32 gradients in ``DistributedDataParallel``'s
    buckets (the model as ``juanji train`` builds it)."""
    return DistributedDataParallel(JuanjiSide().model(MODEL), None, bucket_mb).bucket_bytes


def ring_allreduce_ms(buckets: list[int], ranks: int, bandwidth: float, latency_us: float) -> float:
    """Σ_b 2(p−1)/p · bytes_b / bandwidth + 2(p−1) · latency, in ms (``bandwidth`` in GB/s: 10⁹ bytes/s)."""
    p = ranks
    return sum(1e3 * 2 * (p - 1) / p * size / (bandwidth * 1e9) + 2 * (p - 1) * latency_us * 1e-3 for size in buckets)


def table(compute_ms: float, loader_us: float, buckets: list[int], bandwidth: float, latency_us: float,
          ranks=RANKS) -> str:
    """The model's Markdown table, one row per number of ranks; efficiency: the one-rank step time ÷ this one's
    (the share of p times one rank's images per second that p ranks reach)."""
    loading_ms = loader_us * IMAGES / 1e3
    alone = compute_ms + loading_ms
    lines = [HEADER]
    for p in ranks:
        allreduce = ring_allreduce_ms(buckets, p, bandwidth, latency_us)
        step = alone + allreduce
        lines.append(f"| {p} | {p * IMAGES:,} | {compute_ms:.1f} | {loading_ms:.1f} | {allreduce:.2f} | {step:.1f} "
                     f"| {p * IMAGES / step * 1e3:,.0f} | {alone / step:.3f} |")
    return "\n".join(lines)


def positive(text: str) -> float:
    value = float(text)
    if not (np.isfinite(value) and value > 0):
        raise argparse.ArgumentTypeError(f"must be a finite number above 0, got {text}")
    return value


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python bench/scaling_model.py", description=__doc__.split("\n\n")[0])
    parser.add_argument("--compute-ms", type=positive, help=f"one rank's {STORED_ROW} on one thread (default: the "
                                                            f"stored benchmark's)")
    parser.add_argument("--loader-us", type=positive, help="the loader's µs per image (default: measured here)")
    parser.add_argument("--bandwidth", type=positive, default=1.25, help="GB/s between ranks (default 1.25: "
                                                                         "10 Gbit/s Ethernet)")
    parser.add_argument("--latency-us", type=float, default=25.0, help="µs per message (default 25)")
    parser.add_argument("--bucket-mb", type=positive, default=BUCKET_MB, help=f"(default {BUCKET_MB:g}, "
                                                                               f"juanji train's)")
    parser.add_argument("--ranks", type=int, nargs="+", default=list(RANKS))
    parser.add_argument("--quick", action="store_true", help="measure the loader on fewer batches")
    parser.add_argument("--out", help="also write the output to this Markdown file, with command, machine and date")
    args = parser.parse_args(argv)
    if not (np.isfinite(args.latency_us) and args.latency_us >= 0) or min(args.ranks) < 1:
        parser.error("--latency-us must be a finite number at least 0, and --ranks numbers at least 1")
    compute, source = args.compute_ms, "--compute-ms"
    if compute is None:
        stored = os.path.relpath(STORED, os.path.dirname(HERE))
        compute, source = stored_compute_ms(STORED), f"{stored}: {STORED_ROW}, 1 thread, the faster of juanji's kernels"
        if compute is None:
            parser.error(f"{stored} has no {STORED_ROW} row on 1 thread (python -m juanji.bench makes it): "
                         f"pass --compute-ms")
    loader, loader_source = args.loader_us, "--loader-us"
    if loader is None:
        with threadpool_limits(1):
            juanji.set_num_threads(1)
            loader, loader_source = measure_loader_us(args.quick), "measured here, 1 thread"
    buckets = bucket_bytes(args.bucket_mb)
    text = (f"ResNet-20 data-parallel on paper: {IMAGES} images per rank and step, one thread per rank\n"
            f"- compute: {compute:.2f} ms per step ({source})\n"
            f"- loading: {loader:.2f} µs per image ({loader_source})\n"
            f"- gradients: {sum(buckets):,} bytes in {len(buckets)} Allreduces (--bucket-mb {args.bucket_mb:g}), "
            f"each a ring: 2(p−1)/p · bytes / {args.bandwidth:g} GB/s + 2(p−1) · {args.latency_us:g} µs\n\n"
            + table(compute, loader, buckets, args.bandwidth, args.latency_us, args.ranks))
    print(text)
    if args.out:
        command = f"python bench/scaling_model.py {' '.join(argv if argv is not None else sys.argv[1:])}".strip()
        with open(args.out, "w", encoding="utf-8") as f:
            f.write("# Data parallelism on paper: the scaling model\n\n"
                    + "\n".join(provenance(command, machine_description(dict(os.environ)))) + "\n\n" + text + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
