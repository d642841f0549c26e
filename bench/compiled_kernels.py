"""The compiled kernels against NumPy's and PyTorch's, in one process, interleaved (so that load from other
processes hits all three alike): best of ``--repeats`` calls of each layer's forward and forward+backward.

    python bench/compiled_kernels.py [--threads 1 2] [--repeats 30] [--rows depthwise maxpool ...]
                                     [--clock wall|cpu]
    python bench/compiled_kernels.py --compile-cost     # first call in a fresh cache, then from the cache

Prints one line per row and thread count: milliseconds for numpy, numba and torch, and the ratios
numba/numpy and numba/torch; the train-step rows compare juanji's two backends only.  ``--clock cpu`` times the process's CPU time instead of the wall clock: on a
loaded machine at one thread it leaves out the time other processes took the core (not their effect on the
caches); at several threads it adds up every thread's time, spinning included.  Needs Numba (``pip install 'juanji[fast]'``) and PyTorch.
"""
import argparse
import os
import subprocess
import sys
import tempfile
import time

import numpy as np

# name: (juanji layer, torch layer, input shape); float32 as in ``python -m juanji.bench``
ROWS = {
    "conv 64→64 @32 3×3": ("Conv2d(64, 64, 3, padding=1)", (64, 64, 32, 32)),
    "depthwise 64 @32 3×3": ("Conv2d(64, 64, 3, padding=1, groups=64)", (64, 64, 32, 32)),
    "depthwise 64 @32 3×3 s2": ("Conv2d(64, 64, 3, stride=2, padding=1, groups=64)", (64, 64, 32, 32)),
    "conv 1→6 @28 5×5 p2": ("Conv2d(1, 6, 5, padding=2)", (64, 1, 28, 28)),
    "maxpool 2×2": ("MaxPool2d(2, 2)", (64, 64, 32, 32)),
    "maxpool 3×3 s2": ("MaxPool2d(3, 2)", (64, 64, 32, 32)),
    "batchnorm2d": ("BatchNorm2d(64)", (64, 64, 32, 32)),
    "relu": ("ReLU()", (64, 64, 32, 32)),
    "batchnorm2d+relu": ("Sequential(BatchNorm2d(64), ReLU())", (64, 64, 32, 32)),   # fused on numba
}
# whole train steps (forward, backward, SGD) of zoo models, juanji only: name: (model, batch, C, H=W)
MODEL_ROWS = {
    "train step resnet20 b128": ("resnet20", 128, 3, 32),
    "train step mobilenet_v1 b32": ("mobilenet_v1", 32, 3, 32),
    "train step lenet5 b64": ("lenet5", 64, 1, 28),
}


def best_of(functions: dict, repeats: int, clock=time.perf_counter) -> dict:
    """{name: best seconds}, the functions called in turn ``repeats`` times after one warm-up call each."""
    for function in functions.values():
        function()
    times = {name: [] for name in functions}
    for _ in range(repeats):
        for name, function in functions.items():
            started = clock()
            function()
            times[name].append(clock() - started)
    return {name: min(values) for name, values in times.items()}


def row_functions(layer_source: str, shape, rng):
    import torch
    import juanji
    import juanji.nn as nn
    layer, torch_layer = eval(layer_source, vars(nn)), eval(layer_source, vars(torch.nn))
    x = rng.standard_normal(shape, dtype=np.float32)
    dy = rng.standard_normal(layer(x).shape, dtype=np.float32)
    if "weight" in layer.params:
        with torch.no_grad():
            torch_layer.weight.copy_(torch.from_numpy(layer.params["weight"]))
    xt, dyt = torch.from_numpy(x.copy()).requires_grad_(), torch.from_numpy(dy)

    def backend(name, both):
        def run():
            juanji.set_kernels(name)
            layer(x)
            if both:
                layer.backward(dy)
        return run

    def torch_run(both):
        def run():
            y = torch_layer(xt)
            if both:
                y.backward(dyt)
        return run
    return {f"{part} {side}": (backend(side, part == "fwd+bwd") if side != "torch" else torch_run(part == "fwd+bwd"))
            for part in ("fwd", "fwd+bwd") for side in ("numpy", "numba", "torch")}


def model_functions(model_name, batch, channels, size, rng):
    import juanji
    import juanji.models
    import juanji.nn as nn
    import juanji.optim as optim
    model = juanji.models.create(model_name, num_classes=10, in_channels=channels, input_size=size)
    x, labels = rng.random((batch, channels, size, size), dtype=np.float32), rng.integers(0, 10, batch)
    optimizer, loss_fn = optim.SGD(model.parameters(), lr=0.01, momentum=0.9), nn.CrossEntropyLoss()

    def backend(name):
        def step():
            juanji.set_kernels(name)
            loss_fn(model(x), labels)
            model.backward(loss_fn.backward())
            optimizer.step()
        return step
    return {"numpy": backend("numpy"), "numba": backend("numba")}


def compare_models(rows, thread_counts, repeats, clock):
    import juanji
    rng = np.random.default_rng(0)
    for threads in thread_counts:
        juanji.set_num_threads(threads)
        for row in rows:
            best = best_of(model_functions(*MODEL_ROWS[row], rng), repeats, clock)
            print(f"{threads} thr  {row:34s} numpy {best['numpy'] * 1e3:7.1f}  numba {best['numba'] * 1e3:7.1f} ms"
                  f"{'':25s}numba/numpy {best['numba'] / best['numpy']:5.2f}", flush=True)


def compare(rows, thread_counts, repeats, clock):
    import torch
    import juanji
    print(f"load: {os.getloadavg()[0]:.2f} {os.getloadavg()[1]:.2f} {os.getloadavg()[2]:.2f} on {os.cpu_count()} cores")
    rng = np.random.default_rng(0)
    for threads in thread_counts:
        juanji.set_num_threads(threads)
        torch.set_num_threads(threads)
        for row in rows:
            source, shape = ROWS[row]
            best = best_of(row_functions(source, shape, rng), repeats, clock)
            for part in ("fwd", "fwd+bwd"):
                numpy_, numba_, torch_ = (best[f"{part} {side}"] * 1e3 for side in ("numpy", "numba", "torch"))
                print(f"{threads} thr  {row + ' ' + part:34s} numpy {numpy_:7.2f}  numba {numba_:7.2f}  torch "
                      f"{torch_:7.2f} ms   numba/numpy {numba_ / numpy_:5.2f}  numba/torch {numba_ / torch_:5.2f}",
                      flush=True)


FIRST_CALLS = """
import time, numpy as np, juanji, juanji.nn as nn
from juanji.functional import plan
juanji.set_kernels("numba")
plan.COMPILED_MIN_ELEMENTS = plan.DEPTHWISE_MIN_PIXELS = 0     # small arrays: the compiled kernels all the same
started = time.perf_counter()
layers = [nn.Conv2d(4, 4, 3, padding=1, groups=4), nn.MaxPool2d(2), nn.BatchNorm2d(4), nn.ReLU()]
for dtype in (np.float32, np.float64):
    x = np.ones((2, 4, 8, 8), dtype)
    for layer in layers:
        layer.to(dtype)
        layer.backward(np.ones_like(layer(x)))
print(f"{time.perf_counter() - started:.2f}")
"""


def compile_cost():
    """Seconds for the first forward+backward of every compiled layer in both dtypes: in a fresh process
    with an empty Numba cache (compilation), then in a second one (loaded from the cache)."""
    with tempfile.TemporaryDirectory() as cache:
        environment = dict(os.environ, NUMBA_CACHE_DIR=cache)
        for label in ("compiling (empty cache)", "from the cache"):
            seconds = subprocess.run([sys.executable, "-c", FIRST_CALLS], env=environment, check=True,
                                     capture_output=True, text=True).stdout.strip()
            print(f"first calls of every compiled kernel, float32 and float64, {label}: {seconds} s")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--repeats", type=int, default=30)
    parser.add_argument("--rows", nargs="+", default=list(ROWS) + list(MODEL_ROWS), help="row names (prefixes match)")
    parser.add_argument("--clock", choices=["wall", "cpu"], default="wall")
    parser.add_argument("--compile-cost", action="store_true")
    args = parser.parse_args()
    if args.compile_cost:
        compile_cost()
        return
    chosen = [row for row in (*ROWS, *MODEL_ROWS) if any(row.startswith(prefix) for prefix in args.rows)]
    clock = time.process_time if args.clock == "cpu" else time.perf_counter
    print(f"clock: {args.clock}")
    compare([row for row in chosen if row in ROWS], args.threads, args.repeats, clock)
    compare_models([row for row in chosen if row in MODEL_ROWS], args.threads, max(3, args.repeats // 5), clock)


if __name__ == "__main__":
    main()
