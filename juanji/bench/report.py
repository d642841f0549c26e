"""The benchmark's report: the machine it ran on and its tables, as Markdown."""
from __future__ import annotations

import os
import platform
import re
import statistics
import subprocess
import sys
import time
from importlib.metadata import PackageNotFoundError, version

import numpy as np

from .rows import CONV_ROWS, HANDOFF_ROWS, conv_flops

# The SIMD extensions BLAS kernels are chosen by: /proc/cpuinfo's "flags" (x86) or "Features" (ARM).
VECTOR_EXTENSIONS = re.compile(r"sse4_2|avx\w*|fma|f16c|amx\w*|asimd\w*|sve\w*|sme\d*|i8mm|bf16")


def cpu_description(cpuinfo: str = "/proc/cpuinfo") -> str:
    """"MODEL (vector extensions: avx2 fma avx512f …)" from a cpuinfo file, in the file's order;
    the processor name of ``platform`` where there is no such file."""
    try:
        with open(cpuinfo) as f:
            fields = dict(line.split(":", 1) for line in f.read().split("\n\n")[0].splitlines() if ":" in line)
    except OSError:
        return platform.processor() or platform.machine() or "unknown CPU"
    fields = {key.strip(): value.strip() for key, value in fields.items()}
    model = fields.get("model name") or fields.get("Hardware") or platform.machine() or "unknown CPU"
    flags = (fields.get("flags") or fields.get("Features") or "").split()
    vector = [flag for flag in flags if VECTOR_EXTENSIONS.fullmatch(flag)]
    return f"{model} (vector extensions: {' '.join(vector) or 'none listed'})"


def machine_description(env: dict) -> str:
    """CPU, cores, Python, NumPy with the BLAS a worker process (environment ``env``) loads, PyTorch."""
    blas = subprocess.run([sys.executable, "-c", "import json, numpy; from threadpoolctl import threadpool_info; "
                           "print(json.dumps([(i['internal_api'], i.get('architecture'), i.get('version')) "
                           "for i in threadpool_info()]))"], env=env, capture_output=True, text=True).stdout.strip()
    try:
        torch_version = version("torch")
    except PackageNotFoundError:
        torch_version = "not installed"
    return (f"{cpu_description()}, {os.cpu_count()} cores; Python {platform.python_version()}, NumPy "
            f"{np.__version__} (BLAS in the timing processes: {blas}), PyTorch {torch_version}")


def provenance(command: str, machine: str) -> list[str]:
    """The first lines of every stored output under ``bench/results/``: what made it, where and when
    (tests/docs/test_quoted_figures.py reads them)."""
    return [f"Command: `{command}`", f"Machine: {machine}.", f"Date: {time.strftime('%Y-%m-%d')}"]


PYTORCH = "PyTorch"


def _ms(pair) -> str:
    return f"{pair[0] * 1e3:.2f} / {pair[1] * 1e3:.2f}"


def format_table(threads_results: dict) -> str:
    """One table per thread count: each side's ms (min/median) per row, then each juanji side's ratio to
    PyTorch of the minima; then the GFLOP/s of juanji's conv rows (on NumPy's kernels) at the largest thread
    count against NumPy's sgemm.  ``threads_results``: {threads: {side: {row: (min, median) seconds}}}, the
    sides in column order, PyTorch's under ``PYTORCH``, juanji's named "juanji <kernels>"."""
    thread_counts = sorted(threads_results)
    tables = []
    for t in thread_counts:
        sides = list(threads_results[t])
        ours = [side for side in sides if side != PYTORCH]
        first = threads_results[t][ours[0]]
        header = ("| row | " + " | ".join(f"{side} ms (min/med)" for side in sides) + " | "
                  + " | ".join(f"{side.removeprefix('juanji ')}/PyTorch" for side in ours) + " |")
        lines = [f"{t} thread{'s' if t > 1 else ''}:", "", header, "|" + "---|" * (1 + len(sides) + len(ours))]
        for row in (row for row in first if row not in HANDOFF_ROWS):
            figures = [threads_results[t][side].get(row) for side in sides]
            theirs = threads_results[t].get(PYTORCH, {}).get(row)
            cells = [row, *(_ms(pair) if pair else "—" for pair in figures)]
            cells += [f"**{threads_results[t][side][row][0] / theirs[0]:.2f}×**" if theirs else "—" for side in ours]
            lines.append("| " + " | ".join(cells) + " |")
        tables.append("\n".join(lines))
    last = thread_counts[-1]
    numpy_side = next(side for side in threads_results[last] if side != PYTORCH)
    ours = threads_results[last][numpy_side]
    sgemm = ours["sgemm 2048³"][0]
    peak = 2 * 2048 ** 3 / sgemm / 1e9
    gflops = [f"NumPy sgemm 2048³ at {last} threads: **{peak:.0f} GFLOP/s** (the ceiling of an im2col design).",
              "", f"| conv row | {numpy_side} fwd GFLOP/s | % of sgemm | fwd+bwd GFLOP/s | % of sgemm |",
              "|---|---|---|---|---|"]
    for row, config in CONV_ROWS.items():
        flops = conv_flops(*config)
        fwd = flops / ours[f"{row} fwd"][0] / 1e9
        both = 3 * flops / ours[f"{row} fwd+bwd"][0] / 1e9
        gflops.append(f"| {row} | {fwd:.0f} | {100 * fwd / peak:.0f} % | {both:.0f} | {100 * both / peak:.0f} % |")
    return "\n\n".join(tables) + "\n\n" + "\n".join(gflops)


def format_handoff(threads_results: dict) -> str | None:
    """The hand-off table: at each thread count above one, each side's µs (min/median) per call of trivial
    work split over the threads and of the same call not split, and their difference of the minima, what one
    split costs; None where no run had more than one thread.  ``threads_results`` as ``format_table``'s."""
    counts = [t for t in sorted(threads_results) if t > 1]
    if not counts:
        return None
    lines = ["What one split of work over the threads costs (µs per call, min/median): the same trivial call split "
             "over the threads and not split, and the difference of their minima, the hand-off.", "",
             "| threads | side | split in 2 | not split | hand-off |", "|---|---|---|---|---|"]
    for t in counts:
        for side, rows in threads_results[t].items():
            split, inline = rows["split in 2"], rows["not split"]
            lines.append(f"| {t} | {side} | {split[0] * 1e6:.1f} / {split[1] * 1e6:.1f} | {inline[0] * 1e6:.1f} / "
                         f"{inline[1] * 1e6:.1f} | **{(split[0] - inline[0]) * 1e6:.1f}** |")
    lines += ["", "juanji: `juanji.runtime.threads.over_batch` of work that does nothing, on 2 samples declared large "
              "enough to split, so each goes to its own thread (one through the thread pool; BLAS is set to one "
              "thread for the split and back after it, as in every split); not split: the same call on 1 sample, "
              "which runs inline. PyTorch has no Python call that splits nothing at all; its nearest is an op whose "
              "CPU kernel hands even the tiniest work to `at::parallel_for`: a 2×2 max pool of a (1, 2, 2, 2) "
              "tensor, whose 2 planes are split over the threads (grain size 0, OpenMP); not split: the same op on "
              "(1, 1, 2, 2), one plane, inline (the split call's second plane is a few nanoseconds of work)."]
    return "\n".join(lines)


def format_epoch(epochs: dict, threads: int, processes: int) -> str:
    """LeNet-5 epochs of every side: the best and the median wall time over all epochs of all processes,
    and the three memory figures of the process with the lowest peak, each explained.
    ``epochs``: {side: [one worker's ``run_epoch`` result per process]}, PyTorch's under ``PYTORCH``."""
    sides = list(epochs)
    ours = [side for side in sides if side != PYTORCH]
    per_epoch = {side: [s for run in runs for s in run["epoch seconds"]] for side, runs in epochs.items()}
    lean = {side: min(runs, key=lambda run: run["peak RSS MiB"]) for side, runs in epochs.items()}
    figures = [("wall time, best", "s", 1, {side: min(times) for side, times in per_epoch.items()}),
               ("wall time, median", "s", 1, {side: statistics.median(times) for side, times in per_epoch.items()}),
               ("RSS after import", "MiB", 0, {side: run["import RSS MiB"] for side, run in lean.items()}),
               ("peak RSS", "MiB", 0, {side: run["peak RSS MiB"] for side, run in lean.items()}),
               ("peak RSS above the import", "MiB", 0,
                {side: run["peak RSS MiB"] - run["import RSS MiB"] for side, run in lean.items()})]
    rows = []
    for label, unit, digits, values in figures:
        cells = [label, *(f"{values[side]:.{digits}f} {unit}" for side in sides)]
        cells += [f"**{values[side] / values[PYTORCH]:.2f}×**" for side in ours]
        rows.append("| " + " | ".join(cells) + " |")
    count = len(next(iter(per_epoch.values())))
    return "\n".join([
        f"LeNet-5 Fashion-MNIST epochs (60,000 images, batch 64, {threads} threads): {count} epochs per side, "
        f"{count // processes} in each of {processes} fresh processes:", "",
        "| | " + " | ".join(sides) + " | " + " | ".join(f"{side.removeprefix('juanji ')}/PyTorch" for side in ours)
        + " |", "|" + "---|" * (1 + len(sides) + len(ours)),
        *rows, "",
        "*RSS after import*: the worker process once it has imported NumPy, juanji's data loader and its "
        "framework (juanji's layers, or torch), before loading data or building anything; of each side's process "
        "with the lowest peak. *Peak RSS*: "
        "the process's high-water mark (`ru_maxrss`) at the end of its epochs. *Above the import*: the "
        "difference, what the epochs themselves added: the training set (60,000 images, 188 MB in float32, the "
        "same in both), the model, its activations and gradients, and what each allocator keeps."])
