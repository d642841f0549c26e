"""The benchmark's report: the machine it ran on and its tables, as Markdown."""
from __future__ import annotations

import os
import platform
import re
import subprocess
import sys
from importlib.metadata import PackageNotFoundError, version

import numpy as np

from .rows import CONV_ROWS, conv_flops

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


def format_table(threads_results: dict) -> str:
    """The rows table (ms min/median of both frameworks and their ratio per thread count), then the
    GFLOP/s of juanji's conv rows at the largest thread count against NumPy's sgemm."""
    thread_counts = sorted(threads_results)
    header = "| row | " + " | ".join(
        f"juanji {t}T ms (min/med) | PyTorch {t}T ms (min/med) | ratio {t}T" for t in thread_counts) + " |"
    lines = [header, "|" + "---|" * (1 + 3 * len(thread_counts))]
    for row in threads_results[thread_counts[0]]["juanji"]:
        cells = [row]
        for t in thread_counts:
            mine = threads_results[t]["juanji"][row]
            theirs = threads_results[t]["pytorch"].get(row)
            cells.append(f"{mine[0] * 1e3:.2f} / {mine[1] * 1e3:.2f}")
            if theirs is None:
                cells += ["—", "—"]
            else:
                cells += [f"{theirs[0] * 1e3:.2f} / {theirs[1] * 1e3:.2f}", f"**{mine[0] / theirs[0]:.2f}×**"]
        lines.append("| " + " | ".join(cells) + " |")
    last = thread_counts[-1]
    sgemm = threads_results[last]["juanji"]["sgemm 2048³"][0]
    peak = 2 * 2048 ** 3 / sgemm / 1e9
    gflops = [f"NumPy sgemm 2048³ at {last} threads: **{peak:.0f} GFLOP/s** (the ceiling of an im2col design).",
              "", "| conv row | juanji fwd GFLOP/s | % of sgemm | juanji fwd+bwd GFLOP/s | % of sgemm |",
              "|---|---|---|---|---|"]
    for row, config in CONV_ROWS.items():
        flops = conv_flops(*config)
        fwd = flops / threads_results[last]["juanji"][f"{row} fwd"][0] / 1e9
        both = 3 * flops / threads_results[last]["juanji"][f"{row} fwd+bwd"][0] / 1e9
        gflops.append(f"| {row} | {fwd:.0f} | {100 * fwd / peak:.0f} % | {both:.0f} | {100 * both / peak:.0f} % |")
    return "\n".join(lines) + "\n\n" + "\n".join(gflops)


def format_epoch(epoch: dict, threads: int) -> str:
    """The LeNet-5 epoch of both frameworks: wall time and the three memory figures, each explained."""
    mine, theirs = epoch["juanji"], epoch["pytorch"]
    figures = [("wall time", "s", 1, mine["epoch seconds"], theirs["epoch seconds"]),
               ("RSS after import", "MiB", 0, mine["import RSS MiB"], theirs["import RSS MiB"]),
               ("peak RSS", "MiB", 0, mine["peak RSS MiB"], theirs["peak RSS MiB"]),
               ("peak RSS above the import", "MiB", 0, mine["peak RSS MiB"] - mine["import RSS MiB"],
                theirs["peak RSS MiB"] - theirs["import RSS MiB"])]
    rows = [f"| {label} | {a:.{digits}f} {unit} | {b:.{digits}f} {unit} | **{a / b:.2f}×** |"
            for label, unit, digits, a, b in figures]
    return "\n".join([
        f"One LeNet-5 Fashion-MNIST epoch (60,000 images, batch 64, {threads} threads, fresh process each):", "",
        "| | juanji | PyTorch | ratio |", "|---|---|---|---|",
        *rows, "",
        "*RSS after import*: the worker process once it has imported NumPy, juanji's data loader and its "
        "framework (juanji's layers, or torch), before loading data or building anything. *Peak RSS*: "
        "the process's high-water mark (`ru_maxrss`) at the end of the epoch. *Above the import*: the "
        "difference, what the epoch itself added: the training set (60,000 images, 188 MB in float32, the "
        "same in both), the model, its activations and gradients, and what each allocator keeps."])
