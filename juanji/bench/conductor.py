"""``python -m juanji.bench``: juanji against PyTorch CPU, side by side, in one run.

Every figure is timed in worker processes whose environment has ``OPENBLAS_CORETYPE`` and
``OPENBLAS_L2_SIZE`` removed (they pin NumPy's OpenBLAS to slower kernels on some machines; a user's
machine has neither). Timings vary 2–3× between processes on some machines (PyTorch's, and juanji's at 2
threads), so each framework runs in several fresh processes and the best of each row is kept. juanji's
workers keep freed memory as its command line does (``juanji.runtime.allocator``); PyTorch's leave
malloc as it is (PyTorch measured the same either way). Each row reports min and median over repeats after warm-up,
and the ratio juanji/PyTorch of the minima (lower is better). Needs the test extra: ``pip install -e .[test]``.

Where Numba is installed, juanji is timed on both its kernels, NumPy's and the compiled ones, side by side.

    python -m juanji.bench [--threads 1 2] [--processes 3] [--quick] [--out bench/results/benchmark.md]
    python -m juanji.bench --breakdown resnet20 --threads 2      # where one train step goes
    python -m juanji.bench --scaling [--threads 2] [--quick] [--out bench/results/scaling.md]
        # time and memory against batch and input size, at the largest --threads; the plot beside it, .png
"""
from __future__ import annotations

import argparse
import importlib.util
import json
import os
import subprocess
import sys
import time

from ..io import write_text
from ..runtime.kernels import get_kernels, numba_available
from .breakdown import DEFAULT_BATCH, format_breakdown, run_breakdown
from .report import PYTORCH, format_epoch, format_handoff, format_table, machine_description, provenance
from .rows import MODEL_INPUTS, SCALING
from .scaling import format_scaling, plot_scaling
from .startup import format_startup, run_startup
from .workers import FRAMEWORKS, run_epoch, run_point, run_rows, start_worker

BLAS_VARIABLES = ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")


def worker_environment() -> dict:
    """This process's environment without the variables that pin OpenBLAS's kernels."""
    return {k: v for k, v in os.environ.items() if k not in BLAS_VARIABLES}


EPOCHS_PER_PROCESS = 3


def sides() -> dict:
    """The table's columns, {side: (framework, kernels)}: juanji on NumPy's kernels, juanji on the compiled
    ones where Numba is installed (so that a plain install's figures stay in view beside them), PyTorch."""
    columns = {"juanji numpy": ("juanji", "numpy")}
    if numba_available():
        columns["juanji numba"] = ("juanji", "numba")
    columns[PYTORCH] = ("pytorch", None)
    return columns


def spawn(framework: str, arguments: list[str], kernels: str | None = None) -> dict:
    """Run ``python -m juanji.bench --worker FRAMEWORK ARGUMENTS`` in a fresh process (juanji's on
    ``kernels``); its last line of JSON."""
    env = worker_environment()
    if kernels:
        env["JUANJI_KERNELS"] = kernels
    result = subprocess.run([sys.executable, "-m", "juanji.bench", "--worker", framework, *arguments],
                            env=env, capture_output=True, text=True)
    if result.returncode != 0:
        raise RuntimeError(f"benchmark worker {framework} {arguments} failed:\n{result.stderr}")
    return json.loads(result.stdout.strip().splitlines()[-1])


def best_of(runs: list[dict]) -> dict:
    """Per row, the (min, median) of the process whose min was best."""
    return {row: min((run[row] for run in runs), key=lambda pair: pair[0]) for row in runs[0]}


def positive_int(text: str) -> int:
    value = int(text) if text.strip().isdigit() else 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {text!r}")
    return value


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m juanji.bench", description=__doc__.split("\n\n")[0])
    parser.add_argument("--threads", type=positive_int, nargs="+", default=[1, 2])
    parser.add_argument("--processes", type=positive_int, default=3,
                        help="fresh processes per framework and setting (the best is kept)")
    parser.add_argument("--quick", action="store_true", help="shorter timing budgets, no full epoch")
    parser.add_argument("--out", help="the Markdown file written (default bench/results/benchmark.md, with "
                                      "--distributed bench/results/distributed.md, with --scaling "
                                      "bench/results/scaling.md and its plot beside it, .png)")
    parser.add_argument("--breakdown", choices=sorted(MODEL_INPUTS), metavar="MODEL",
                        help="instead of the table: where juanji's train step of MODEL (lenet5, resnet20, "
                             "mobilenet_v2) goes, layer type by layer type, at the first --threads count")
    parser.add_argument("--batch", type=positive_int, default=None,
                        help="batch size of --breakdown (64 for lenet5 and mobilenet_v2, 128 for resnet20)")
    parser.add_argument("--distributed", action="store_true",
                        help="instead: juanji on 2 MPI ranks against 1 process × 2 threads and PyTorch's "
                             "DistributedDataParallel (juanji.bench.distributed; needs Open MPI and mpi4py)")
    parser.add_argument("--scaling", action="store_true",
                        help="instead: time and peak memory of LeNet-5 against the batch size and of a ResNet-18 "
                             "train step against the input size, with each series' fitted log-log slope and a plot")
    parser.add_argument("--worker", choices=FRAMEWORKS, help=argparse.SUPPRESS)
    parser.add_argument("--series", choices=sorted(SCALING), help=argparse.SUPPRESS)
    parser.add_argument("--at", type=positive_int, help=argparse.SUPPRESS)
    parser.add_argument("--epochs", type=positive_int, help=argparse.SUPPRESS)
    return parser


def main(argv=None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    threads = args.threads[0]
    try:
        get_kernels()       # JUANJI_KERNELS checked here: the breakdown's worker inherits it
    except ValueError as error:
        parser.error(str(error))
    if args.distributed:
        from .distributed import main as distributed_main
        return distributed_main((["--limit", "6400", "--steps", "5"] if args.quick else [])
                                + ["--out", args.out or "bench/results/distributed.md"])
    if args.breakdown:
        batch = args.batch or DEFAULT_BATCH[args.breakdown]
        if args.worker:
            start_worker("juanji", threads)
            print(json.dumps(run_breakdown(args.breakdown, batch)))
        else:
            result = spawn("juanji", ["--breakdown", args.breakdown, "--batch", str(batch), "--threads", str(threads)])
            print(format_breakdown(args.breakdown, batch, threads, result))
        return 0
    if args.scaling:
        if args.worker and not (args.series and args.at):
            parser.error("a --scaling worker needs --series and --at")
        if not args.worker and importlib.util.find_spec("matplotlib") is None:    # before the run, not after
            parser.error("--scaling draws its plot with matplotlib: pip install 'juanji[cli]'")
        return run_scaling(args, argv)
    if args.worker:
        result = (run_epoch(args.worker, threads, epochs=args.epochs) if args.epochs
                  else run_rows(args.worker, threads, args.quick))
        print(json.dumps(result))
        return 0

    from .correctness import check_correctness      # torch, here only: the breakdown runs without it
    started = time.perf_counter()
    check_correctness()
    print("correctness of the timed conv paths against PyTorch: ok", flush=True)
    quick = ["--quick"] if args.quick else []
    columns = sides()
    results = {}
    for count in args.threads:
        print(f"timing at {count} thread(s) ...", flush=True)
        results[count] = {side: best_of([spawn(framework, ["--threads", str(count), *quick], kernels)
                                         for _ in range(args.processes)])
                          for side, (framework, kernels) in columns.items()}
    tables = [format_table(results)]
    handoff = format_handoff(results)
    if handoff:
        tables.append(handoff)
    if not args.quick:
        most = max(args.threads)
        print(f"timing LeNet-5 epochs, {EPOCHS_PER_PROCESS} per process ...", flush=True)
        epochs = {side: [spawn(framework, ["--epochs", str(EPOCHS_PER_PROCESS), "--threads", str(most)], kernels)
                         for _ in range(args.processes)]
                  for side, (framework, kernels) in columns.items()}
        tables.append(format_epoch(epochs, most, args.processes))
        if "juanji numba" in columns:
            print("timing start-up with and without compiling ...", flush=True)
            tables.append(format_startup(run_startup(most, worker_environment()), most))
    backends = " and ".join(side.removeprefix("juanji ") for side in columns if side != PYTORCH)
    report = "\n\n".join([
        "# juanji vs PyTorch CPU",
        "\n".join(provenance(f"python -m juanji.bench {' '.join(argv if argv is not None else sys.argv[1:])}",
                             machine_description(worker_environment()))),
        f"The run took {time.perf_counter() - started:.0f} s. juanji runs on {backends} kernels "
        "(`juanji numpy` is a plain install's, `juanji numba` the compiled ones of the `fast` extra). Ratios "
        f"are juanji/PyTorch of the minima (lower is better); each side's figures are the best of "
        f"{args.processes} fresh processes.",
        *tables])
    print(report)
    out = args.out or "bench/results/benchmark.md"
    os.makedirs(os.path.dirname(os.path.abspath(out)), exist_ok=True)
    with open(out, "w") as f:
        f.write(report + "\n")
    return 0


def run_scaling(args, argv) -> int:
    """``--scaling``: as a worker, one point; else every point of every series on every side, each in
    ``--processes`` fresh processes, at the largest ``--threads`` count; the table and the plot written."""
    most = max(args.threads)
    if args.worker:
        print(json.dumps(run_point(args.worker, most, args.series, args.at, args.quick)))
        return 0
    out = args.out or "bench/results/scaling.md"
    plot = os.path.splitext(out)[0] + ".png"
    started = time.perf_counter()
    quick = ["--quick"] if args.quick else []
    results = {}
    for key, series in SCALING.items():
        results[key] = {}
        for side, (framework, kernels) in sides().items():
            points = {}
            for at in series.quick if args.quick else series.points:
                print(f"timing {key} at {series.axis} {at}, {side} ...", flush=True)
                runs = [spawn(framework, ["--scaling", "--series", key, "--at", str(at), "--threads", str(most),
                                          *quick], kernels) for _ in range(args.processes)]
                best = min(runs, key=lambda run: run["seconds"][0])
                points[at] = {"seconds": best["seconds"],
                              "memory MiB": min(run["peak RSS MiB"] - run["import RSS MiB"] for run in runs)}
            results[key][side] = points
    report = "\n\n".join([
        "# How the cost grows: juanji vs PyTorch CPU",
        "\n".join(provenance(f"python -m juanji.bench {' '.join(argv if argv is not None else sys.argv[1:])}",
                             machine_description(worker_environment()))),
        f"The run took {time.perf_counter() - started:.0f} s, at {most} thread{'s' if most > 1 else ''}. Each "
        f"point ran in {args.processes} fresh process{'es' if args.processes > 1 else ''} per side; its time is "
        "the best process's min / median over repeats after warm-up, ratios are juanji/PyTorch of the minima. "
        f"The plot: {os.path.basename(plot)}.",
        format_scaling(results)])
    print(report)
    os.makedirs(os.path.dirname(os.path.abspath(out)), exist_ok=True)
    write_text(out, report + "\n")
    plot_scaling(results, plot)
    return 0
