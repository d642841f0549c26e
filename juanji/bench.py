"""``python -m juanji.bench``: juanji against PyTorch CPU, side by side, in one run.

Every figure is timed in worker processes whose environment has ``OPENBLAS_CORETYPE`` and
``OPENBLAS_L2_SIZE`` removed (they pin NumPy's OpenBLAS to slower kernels on some machines; a user's
machine has neither). Timings vary 2–3× between processes on some machines (PyTorch's, and juanji's at 2
threads), so each framework runs in several fresh processes and the best of each row is kept. PyTorch's
processes leave malloc as it is (juanji's import sets glibc's thresholds, see ``juanji.allocator``;
PyTorch measured the same either way). Each row reports min and median over repeats after warm-up, and
the ratio juanji/PyTorch of the minima (lower is better). Needs the test extra: ``pip install -e .[test]``.

    python -m juanji.bench [--threads 1 2] [--processes 3] [--quick] [--out bench/results.md]
    python -m juanji.bench --breakdown resnet20 --threads 2      # where one train step goes
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import time
from collections import defaultdict

import numpy as np

# name: (N, C_in, C_out, H=W, kernel, stride, padding, groups)
CONV_ROWS = {
    "conv 3→64 @32 3×3 s1 p1": (64, 3, 64, 32, 3, 1, 1, 1),
    "conv 64→64 @32 3×3 s1 p1": (64, 64, 64, 32, 3, 1, 1, 1),
    "conv 64→128 @16 3×3 s2 p1": (64, 64, 128, 16, 3, 2, 1, 1),
    "conv 64→128 @16 1×1": (64, 64, 128, 16, 1, 1, 0, 1),
    "depthwise 64 @32 3×3 g64": (64, 64, 64, 32, 3, 1, 1, 64),
    "conv 1→6 @28 5×5 p2": (64, 1, 6, 28, 5, 1, 2, 1),
}
POOL_ROWS = {"maxpool 2×2": (2, 2), "maxpool 3×3 s2": (3, 2)}
POOL_SHAPE = (64, 64, 32, 32)
BLAS_VARIABLES = ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")


def timed(function, min_repeats=5, budget=1.0, warmup=2):
    """(min, median) seconds of ``function()`` over at least ``min_repeats`` runs or ``budget`` seconds."""
    for _ in range(warmup):
        function()
    times, started = [], time.perf_counter()
    while len(times) < min_repeats or (time.perf_counter() - started < budget and len(times) < 50):
        t0 = time.perf_counter()
        function()
        times.append(time.perf_counter() - t0)
    return min(times), statistics.median(times)


def conv_flops(n, c, k, h, kernel, stride, padding, groups):
    out = (h + 2 * padding - kernel) // stride + 1
    return 2 * n * k * (c // groups) * kernel * kernel * out * out


# -- the two frameworks, each behind the same small interface ------------------------------------------
class JuanjiSide:
    name = "juanji"

    def __init__(self):
        import juanji.models
        import juanji.nn as nn
        import juanji.optim as optim
        self.nn, self.optim, self.models = nn, optim, juanji.models

    def conv(self, n, c, k, h, kernel, stride, padding, groups, rng):
        layer = self.nn.Conv2d(c, k, kernel, stride=stride, padding=padding, groups=groups)
        x = rng.standard_normal((n, c, h, h), dtype=np.float32)
        y = layer(x)
        dy = rng.standard_normal(y.shape, dtype=np.float32)
        return layer, x, dy, (lambda: layer(x)), (lambda: (layer(x), layer.backward(dy)))

    def layer_pair(self, layer, x, dy):
        return lambda: (layer(x), layer.backward(dy))

    def maxpool(self, kernel, stride):
        return self.nn.MaxPool2d(kernel, stride)

    def batchnorm(self, channels):
        return self.nn.BatchNorm2d(channels)

    def relu(self):
        return self.nn.ReLU()

    def model(self, name):
        from .train import skip_input_gradient
        model = self.models.create(name, **MODEL_ARGS[name])
        skip_input_gradient(model)      # as juanji's Trainer does, and as PyTorch skips it for the input
        return model

    def train_step(self, model, x, y):
        optimizer = self.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
        loss_fn = self.nn.CrossEntropyLoss()
        model.train()

        def step():
            loss_fn(model(x), y)
            model.backward(loss_fn.backward())
            optimizer.step()
        return step

    def inference(self, model, x):
        model.eval()

        def run():
            with self.nn.no_grad():
                return model(x)
        return run

    def output(self, layer, x):
        return layer(x)


class TorchSide:
    name = "pytorch"

    def __init__(self):
        import torch
        self.torch = torch

    def conv(self, n, c, k, h, kernel, stride, padding, groups, rng):
        torch = self.torch
        layer = torch.nn.Conv2d(c, k, kernel, stride=stride, padding=padding, groups=groups)
        x = torch.from_numpy(rng.standard_normal((n, c, h, h), dtype=np.float32)).requires_grad_()
        with torch.no_grad():
            y = layer(x)
        dy = torch.from_numpy(rng.standard_normal(tuple(y.shape), dtype=np.float32))

        def forward():
            with torch.no_grad():
                return layer(x)
        return layer, x, dy, forward, self.layer_pair(layer, x, dy)

    def layer_pair(self, layer, x, dy):
        x = x if x.requires_grad else x.requires_grad_()

        def step():
            x.grad = None
            for p in layer.parameters():
                p.grad = None
            layer(x).backward(dy)
        return step

    def maxpool(self, kernel, stride):
        return self.torch.nn.MaxPool2d(kernel, stride)

    def batchnorm(self, channels):
        return self.torch.nn.BatchNorm2d(channels)

    def relu(self):
        return self.torch.nn.ReLU()

    def model(self, name):
        return TORCH_MODELS[name](self.torch.nn)

    def train_step(self, model, x, y):
        torch = self.torch
        optimizer = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
        loss_fn = torch.nn.CrossEntropyLoss()
        x, y = torch.from_numpy(x), torch.from_numpy(y)
        model.train()

        def step():
            optimizer.zero_grad()
            loss_fn(model(x), y).backward()
            optimizer.step()
        return step

    def inference(self, model, x):
        torch = self.torch
        x = torch.from_numpy(x)
        model.eval()

        def run():
            with torch.no_grad():
                return model(x)
        return run

    def output(self, layer, x):
        with self.torch.no_grad():
            return layer(x).numpy()


MODEL_ARGS = {"lenet5": dict(num_classes=10, in_channels=1, input_size=28),
              "resnet20": dict(num_classes=10, in_channels=3, input_size=32)}
MODEL_INPUTS = {"lenet5": (1, 28), "resnet20": (3, 32)}


def _torch_lenet5(nn):
    return nn.Sequential(nn.Conv2d(1, 6, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2), nn.Conv2d(6, 16, 5), nn.ReLU(),
                         nn.MaxPool2d(2), nn.Flatten(), nn.Linear(400, 120), nn.ReLU(), nn.Linear(120, 84),
                         nn.ReLU(), nn.Linear(84, 10))


def _torch_resnet20(nn):
    """He et al. 2016's CIFAR ResNet-20 (3 stages × 3 basic blocks, 16/32/64 channels, 1×1 projection)."""
    class Block(nn.Module):
        def __init__(self, cin, cout, stride):
            super().__init__()
            self.body = nn.Sequential(nn.Conv2d(cin, cout, 3, stride, 1, bias=False), nn.BatchNorm2d(cout),
                                      nn.ReLU(), nn.Conv2d(cout, cout, 3, 1, 1, bias=False), nn.BatchNorm2d(cout))
            self.shortcut = (nn.Identity() if stride == 1 and cin == cout else
                             nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout)))
            self.relu = nn.ReLU()

        def forward(self, x):
            return self.relu(self.body(x) + self.shortcut(x))

    layers = [nn.Conv2d(3, 16, 3, 1, 1, bias=False), nn.BatchNorm2d(16), nn.ReLU()]
    cin = 16
    for cout, stride in ((16, 1), (32, 2), (64, 2)):
        for i in range(3):
            layers.append(Block(cin, cout, stride if i == 0 else 1))
            cin = cout
    layers += [nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(64, 10)]
    return nn.Sequential(*layers)


TORCH_MODELS = {"lenet5": _torch_lenet5, "resnet20": _torch_resnet20}


# -- a worker: one framework, one thread count, every row ------------------------------------------------
def run_worker(framework: str, threads: int, quick: bool) -> dict:
    from threadpoolctl import threadpool_limits
    threadpool_limits(threads)
    side = JuanjiSide() if framework == "juanji" else TorchSide()
    if framework == "pytorch":
        side.torch.set_num_threads(threads)
    rng = np.random.default_rng(0)
    budget = 0.3 if quick else 1.0
    results = {}
    for row, config in CONV_ROWS.items():
        _, _, _, forward, forward_backward = side.conv(*config, rng=rng)
        results[f"{row} fwd"] = timed(forward, budget=budget)
        results[f"{row} fwd+bwd"] = timed(forward_backward, budget=budget)
    x = rng.standard_normal(POOL_SHAPE, dtype=np.float32)
    as_input = (lambda a: a) if framework == "juanji" else side.torch.from_numpy
    for row, (kernel, stride) in POOL_ROWS.items():
        layer = side.maxpool(kernel, stride)
        dy = rng.standard_normal(np.asarray(side.output(layer, as_input(x))).shape, dtype=np.float32)
        results[f"{row} fwd+bwd"] = timed(side.layer_pair(layer, as_input(x.copy()), as_input(dy)), budget=budget)
    for row, layer in (("batchnorm2d", side.batchnorm(64)), ("relu", side.relu())):
        results[f"{row} fwd+bwd"] = timed(side.layer_pair(layer, as_input(x.copy()),
                                                          as_input(rng.standard_normal(x.shape, dtype=np.float32))),
                                          budget=budget)
    for name, batches in (("lenet5", (64, 256)), ("resnet20", (128,))):
        channels, size = MODEL_INPUTS[name]
        for batch in batches:
            model = side.model(name)
            xb = rng.random((batch, channels, size, size), dtype=np.float32)
            yb = rng.integers(0, 10, batch)
            results[f"train step {name} b{batch}"] = timed(side.train_step(model, xb, yb), min_repeats=3,
                                                          budget=budget * 2)
        model = side.model(name)
        xb = rng.random((256, channels, size, size), dtype=np.float32)
        best, median = timed(side.inference(model, xb), min_repeats=3, budget=budget * 2)
        results[f"inference {name} b256"] = (best, median)
    if framework == "juanji":
        a = rng.standard_normal((2048, 2048), dtype=np.float32)
        results["sgemm 2048³"] = timed(lambda: a @ a, budget=budget)
    return results


def run_epoch_worker(framework: str, threads: int) -> dict:
    """One full LeNet-5 Fashion-MNIST epoch (60,000 images, batch 64); wall time and peak RSS."""
    from threadpoolctl import threadpool_limits
    threadpool_limits(threads)
    from .data import DataLoader, load_mnist
    train = load_mnist(train=True)
    loader = DataLoader(train, 64, shuffle=True, seed=0)
    side = JuanjiSide() if framework == "juanji" else TorchSide()
    if framework == "pytorch":
        side.torch.set_num_threads(threads)
    model = side.model("lenet5")
    started = time.perf_counter()
    if framework == "juanji":
        optimizer = side.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
        loss_fn = side.nn.CrossEntropyLoss()
        for x, y in loader:
            loss_fn(model(x), y)
            model.backward(loss_fn.backward())
            optimizer.step()
    else:
        torch = side.torch
        optimizer = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
        loss_fn = torch.nn.CrossEntropyLoss()
        for x, y in loader:
            optimizer.zero_grad()
            loss_fn(model(torch.from_numpy(x)), torch.from_numpy(y)).backward()
            optimizer.step()
    seconds = time.perf_counter() - started
    peak_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return {"epoch seconds": seconds, "peak RSS MiB": peak_mib}


def run_breakdown_worker(name: str, batch: int, threads: int, steps: int = 10) -> dict:
    """Where one juanji train step of ``name`` goes: seconds per step of each layer type's forward and
    backward (leaf layers; containers' own work such as residual adds is the remainder), the loss and
    the optimizer, averaged over ``steps`` steps after warm-up."""
    from threadpoolctl import threadpool_limits
    threadpool_limits(threads)
    side = JuanjiSide()
    model = side.model(name)
    totals: defaultdict[str, float] = defaultdict(float)

    def timing(label, method):
        def timed_call(value):
            started = time.perf_counter()
            result = method(value)
            totals[label] += time.perf_counter() - started
            return result
        return timed_call

    for module in model.modules():
        if not module._modules:
            kind = type(module).__name__
            module.forward = timing(f"{kind} forward", module.forward)
            module.backward = timing(f"{kind} backward", module.backward)
    channels, size = MODEL_INPUTS[name]
    rng = np.random.default_rng(0)
    x, y = rng.random((batch, channels, size, size), dtype=np.float32), rng.integers(0, 10, batch)
    optimizer = side.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    loss_fn = side.nn.CrossEntropyLoss()
    model.train()

    def step():
        logits = model(x)
        started = time.perf_counter()
        loss_fn(logits, y)
        dy = loss_fn.backward()
        totals["loss forward+backward"] += time.perf_counter() - started
        model.backward(dy)
        started = time.perf_counter()
        optimizer.step()
        totals["SGD momentum step"] += time.perf_counter() - started

    for _ in range(2):
        step()
    totals.clear()
    started = time.perf_counter()
    for _ in range(steps):
        step()
    total = time.perf_counter() - started
    parts = {label: seconds / steps for label, seconds in totals.items()}
    parts["containers (residual adds, concatenation, ...)"] = max(0.0, (total - sum(totals.values())) / steps)
    return {"step": total / steps, "parts": parts}


def format_breakdown(name: str, batch: int, threads: int, result: dict) -> str:
    lines = [f"juanji train step, {name} at batch {batch}, {threads} thread(s): {result['step'] * 1e3:.1f} ms", "",
             "| part | ms per step | share |", "|---|---|---|"]
    for label, seconds in sorted(result["parts"].items(), key=lambda item: -item[1]):
        lines.append(f"| {label} | {seconds * 1e3:.2f} | {100 * seconds / result['step']:.0f} % |")
    return "\n".join(lines)


def check_correctness():
    """Assert that the timed juanji conv paths agree with torch before any timing (float32, 1e-4)."""
    juanji_side, torch_side = JuanjiSide(), TorchSide()
    rng = np.random.default_rng(1)
    for row, (n, c, k, h, kernel, stride, padding, groups) in CONV_ROWS.items():
        layer = juanji_side.nn.Conv2d(c, k, kernel, stride=stride, padding=padding, groups=groups)
        reference = torch_side.torch.nn.Conv2d(c, k, kernel, stride=stride, padding=padding, groups=groups)
        with torch_side.torch.no_grad():
            reference.weight.copy_(torch_side.torch.from_numpy(layer.params["weight"]))
            reference.bias.copy_(torch_side.torch.from_numpy(layer.params["bias"]))
        x = rng.standard_normal((4, c, h, h), dtype=np.float32)
        xt = torch_side.torch.from_numpy(x).requires_grad_()
        expected = reference(xt)
        dy = rng.standard_normal(tuple(expected.shape), dtype=np.float32)
        expected.backward(torch_side.torch.from_numpy(dy))
        got = layer(x)
        dx = layer.backward(dy)
        scale = max(1.0, float(np.abs(expected.detach().numpy()).max()))
        for what, a, b in (("output", got, expected.detach().numpy()), ("dx", dx, xt.grad.numpy()),
                           ("dW", layer.grads["weight"], reference.weight.grad.numpy())):
            error = float(np.abs(a - b).max()) / max(scale, float(np.abs(b).max()))
            assert error < 1e-4, f"{row}: juanji's {what} differs from torch by {error:.2e}"


# -- the conductor ---------------------------------------------------------------------------------------------
def _spawn(arguments) -> dict:
    env = {k: v for k, v in os.environ.items() if k not in BLAS_VARIABLES}
    if "pytorch" in arguments:      # PyTorch as its users run it: without juanji's malloc settings
        env["JUANJI_KEEP_FREED_MEMORY"] = "0"
    result = subprocess.run([sys.executable, "-m", "juanji.bench", *arguments], env=env, capture_output=True,
                            text=True)
    if result.returncode != 0:
        raise RuntimeError(f"benchmark worker {arguments} failed:\n{result.stderr}")
    return json.loads(result.stdout.strip().splitlines()[-1])


def _best(runs: list[dict]) -> dict:
    """Per row, the best (min) and the median of the process whose min was best."""
    merged = {}
    for row in runs[0]:
        merged[row] = min((run[row] for run in runs), key=lambda pair: pair[0])
    return merged


def machine_description() -> str:
    import torch
    cpu = "unknown CPU"
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next(line.split(":", 1)[1].strip() for line in f if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    env = {k: v for k, v in os.environ.items() if k not in BLAS_VARIABLES}
    blas = subprocess.run([sys.executable, "-c", "import json, numpy; from threadpoolctl import threadpool_info; "
                           "print(json.dumps([(i['internal_api'], i.get('architecture'), i.get('version')) "
                           "for i in threadpool_info()]))"], env=env, capture_output=True, text=True).stdout.strip()
    return (f"{cpu}, {os.cpu_count()} cores; Python {platform.python_version()}, NumPy {np.__version__} "
            f"(BLAS in the timing processes: {blas}), PyTorch {torch.__version__}")


def format_table(threads_results: dict, epoch: dict | None) -> str:
    thread_counts = sorted(threads_results)
    header = "| row | " + " | ".join(
        f"juanji {t}T ms (min/med) | PyTorch {t}T ms (min/med) | ratio {t}T" for t in thread_counts) + " |"
    lines = [header, "|" + "---|" * (1 + 3 * len(thread_counts))]
    rows = list(threads_results[thread_counts[0]]["juanji"])
    for row in rows:
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
    out = ["\n".join(lines)]
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
    out.append("\n".join(gflops))
    if epoch:
        mine, theirs = epoch["juanji"], epoch["pytorch"]
        out.append("\n".join([
            f"One LeNet-5 Fashion-MNIST epoch (60,000 images, batch 64, {last} threads, fresh process each):", "",
            "| | juanji | PyTorch | ratio |", "|---|---|---|---|",
            f"| wall time | {mine['epoch seconds']:.1f} s | {theirs['epoch seconds']:.1f} s | "
            f"**{mine['epoch seconds'] / theirs['epoch seconds']:.2f}×** |",
            f"| peak RSS | {mine['peak RSS MiB']:.0f} MiB | {theirs['peak RSS MiB']:.0f} MiB | "
            f"**{mine['peak RSS MiB'] / theirs['peak RSS MiB']:.2f}×** |"]))
    return "\n\n".join(out)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m juanji.bench", description=__doc__.split("\n\n")[0])
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--processes", type=int, default=3,
                        help="fresh processes per framework and setting (the best is kept)")
    parser.add_argument("--quick", action="store_true", help="shorter timing budgets, no full epoch")
    parser.add_argument("--out", default="bench/results.md")
    parser.add_argument("--breakdown", choices=sorted(MODEL_INPUTS), metavar="MODEL",
                        help="instead of the table: where juanji's train step of MODEL (lenet5, resnet20) goes, "
                             "layer type by layer type, at the first --threads count")
    parser.add_argument("--batch", type=int, default=None, help="batch size of --breakdown (64 for lenet5, 128 for resnet20)")
    parser.add_argument("--worker", choices=["juanji", "pytorch"], help=argparse.SUPPRESS)
    parser.add_argument("--epoch", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.breakdown:
        batch = args.batch or {"lenet5": 64, "resnet20": 128}[args.breakdown]
        if args.worker:
            print(json.dumps(run_breakdown_worker(args.breakdown, batch, args.threads[0])))
        else:
            result = _spawn(["--worker", "juanji", "--breakdown", args.breakdown, "--batch", str(batch),
                             "--threads", str(args.threads[0])])
            print(format_breakdown(args.breakdown, batch, args.threads[0], result))
        return 0
    if args.worker:
        result = (run_epoch_worker(args.worker, args.threads[0]) if args.epoch
                  else run_worker(args.worker, args.threads[0], args.quick))
        print(json.dumps(result))
        return 0

    started = time.perf_counter()
    check_correctness()
    print("correctness of the timed conv paths against PyTorch: ok", flush=True)
    quick = ["--quick"] if args.quick else []
    results = {}
    for threads in args.threads:
        print(f"timing at {threads} thread(s) ...", flush=True)
        results[threads] = {framework: _best([_spawn(["--worker", framework, "--threads", str(threads), *quick])
                                              for _ in range(args.processes)])
                            for framework in ("juanji", "pytorch")}
    epoch = None
    if not args.quick:
        print("timing one LeNet-5 epoch per framework ...", flush=True)
        threads = str(max(args.threads))
        epoch = {framework: min((_spawn(["--worker", framework, "--epoch", "--threads", threads])
                                 for _ in range(args.processes)), key=lambda r: r["epoch seconds"])
                 for framework in ("juanji", "pytorch")}
    report = "\n\n".join([
        "# juanji vs PyTorch CPU", f"Machine: {machine_description()}.",
        f"Run: `python -m juanji.bench {' '.join(argv if argv is not None else sys.argv[1:])}` on "
        f"{time.strftime('%Y-%m-%d')}, {time.perf_counter() - started:.0f} s. Ratios are juanji/PyTorch of the "
        f"minima (lower is better); each framework's figures are the best of {args.processes} fresh processes.",
        format_table(results, epoch)])
    print(report)
    if args.out:
        os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
        with open(args.out, "w") as f:
            f.write(report + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
