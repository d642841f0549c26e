"""What one worker process measures: every row for one framework at one thread count, one full
LeNet-5 Fashion-MNIST epoch with its memory, or one point of a ``--scaling`` series with its memory."""
from __future__ import annotations

import time

import numpy as np
from threadpoolctl import threadpool_limits

from .measure import peak_rss_mib, rss_mib, timed
from .rows import (CONV_ROWS, CONV_TRANSPOSE_ROWS, GROUPS, HANDOFF_CALLS, HANDOFF_ROWS, INFERENCE_BATCHES,
                   MODEL_INPUTS, NUM_CLASSES, POOL_ROWS, POOL_SHAPE, SCALING, TRAIN_BATCHES, input_args)

FRAMEWORKS = ("juanji", "pytorch")


def start_worker(framework: str, threads: int):
    """Make this process a worker of ``framework`` and return its side: BLAS (and PyTorch's own pool)
    limited to ``threads`` for the rest of the process; juanji's workers keep freed memory as its command
    line does (``juanji.runtime.allocator``), PyTorch's leave malloc as PyTorch's users have it. torch is
    imported here, and only for "pytorch", so that juanji's workers run without it."""
    threadpool_limits(threads)
    if framework == "juanji":
        from .. import set_num_threads
        from ..runtime.allocator import keep_freed_memory
        from .juanji_side import JuanjiSide
        set_num_threads(threads)
        keep_freed_memory()
        return JuanjiSide()
    import torch

    from .torch_side import TorchSide
    torch.set_num_threads(threads)
    return TorchSide()


def run_rows(framework: str, threads: int, quick: bool) -> dict:
    """{row: (min, median) seconds} of every layer, train-step and inference row, and above one thread
    of the hand-off rows (seconds per call)."""
    side = start_worker(framework, threads)
    rng = np.random.default_rng(0)
    budget = 0.3 if quick else 1.0
    results = {}
    for row, config in CONV_ROWS.items():
        forward, forward_backward = side.conv(*config, rng=rng)
        results[f"{row} fwd"] = timed(forward, budget=budget)
        results[f"{row} fwd+bwd"] = timed(forward_backward, budget=budget)
    for row, config in CONV_TRANSPOSE_ROWS.items():
        layer, x, dy = side.conv_transpose(*config, rng=rng)
        results[f"{row} fwd+bwd"] = timed(side.layer_pair(layer, x, dy), budget=budget)
    x = rng.standard_normal(POOL_SHAPE, dtype=np.float32)
    channels_last = np.ascontiguousarray(x.transpose(0, 2, 3, 1))      # as ConvNeXt normalises its channels
    for row, layer, data in (("groupnorm g8", side.groupnorm(GROUPS, POOL_SHAPE[1]), x),
                             ("layernorm channels-last", side.layernorm(POOL_SHAPE[1]), channels_last)):
        dy = rng.standard_normal(data.shape, dtype=np.float32)
        results[f"{row} fwd+bwd"] = timed(side.layer_pair(layer, side.as_input(data.copy()), side.as_input(dy)),
                                          budget=budget)
    for row, (kernel, stride) in POOL_ROWS.items():
        layer = side.maxpool(kernel, stride)
        dy = rng.standard_normal(side.output(layer, side.as_input(x)).shape, dtype=np.float32)
        results[f"{row} fwd+bwd"] = timed(side.layer_pair(layer, side.as_input(x.copy()), side.as_input(dy)),
                                          budget=budget)
    for row, layer in (("batchnorm2d", side.batchnorm(POOL_SHAPE[1])), ("relu", side.relu())):
        dy = rng.standard_normal(x.shape, dtype=np.float32)
        results[f"{row} fwd+bwd"] = timed(side.layer_pair(layer, side.as_input(x.copy()), side.as_input(dy)),
                                          budget=budget)
    for name in MODEL_INPUTS:
        results.update(model_rows(side, name, rng, budget))
    if framework == "juanji":
        a = rng.standard_normal((2048, 2048), dtype=np.float32)
        results["sgemm 2048³"] = timed(lambda: a @ a, budget=budget)
    if threads > 1:
        results.update(handoff_rows(side, budget))
    return results


def model_rows(side, name: str, rng, budget: float) -> dict:
    """{row: (min, median) seconds} of the train steps and inferences of the model ``name``."""
    channels, size = MODEL_INPUTS[name]
    rows = {}
    for step, batches in (("train step", TRAIN_BATCHES[name]), ("inference", INFERENCE_BATCHES[name])):
        for batch in batches:
            rows[f"{step} {name} b{batch}"] = timed(model_call(side, name, step, batch, channels, size, rng),
                                                    min_repeats=3, budget=budget * 2)
    return rows


def handoff_rows(side, budget: float) -> dict:
    """{row: (min, median) seconds per call} of ``side.split`` for each of ``HANDOFF_ROWS``."""
    rows = {}
    for row, parts in HANDOFF_ROWS.items():
        split = side.split(parts)
        best, median = timed(lambda: [split() for _ in range(HANDOFF_CALLS)], budget=budget)
        rows[row] = (best / HANDOFF_CALLS, median / HANDOFF_CALLS)
    return rows


def model_call(side, name: str, step: str, batch: int, channels: int, size: int, rng):
    """A call of ``step`` ("train step" or "inference") of the model ``name`` built for ``channels`` ×
    ``size`` × ``size`` inputs on a random batch of ``batch`` of them."""
    model = side.model(name, **input_args(channels, size))
    xb = rng.random((batch, channels, size, size), dtype=np.float32)
    if step == "inference":
        return side.inference(model, xb)
    train_step = side.train_step(model)
    yb = rng.integers(0, NUM_CLASSES, batch)
    return lambda: train_step(xb, yb)


def run_point(framework: str, threads: int, series: str, at: int, quick: bool) -> dict:
    """One point of a ``--scaling`` series in this process: the (min, median) seconds of its step at
    ``at`` (a batch size or an input size), and the process's RSS after its imports (the framework: nothing
    built yet) and at its peak, in MiB."""
    side = start_worker(framework, threads)
    import_mib = rss_mib()
    s = SCALING[series]
    batch, size = (at, s.size) if s.axis == "batch" else (s.batch, at)
    call = model_call(side, s.model, s.step, batch, s.channels, size, np.random.default_rng(0))
    seconds = timed(call, min_repeats=2 if quick else 3, budget=0.2 if quick else 1.0, warmup=1 if quick else 2)
    return {"seconds": seconds, "import RSS MiB": import_mib, "peak RSS MiB": peak_rss_mib()}


def run_epoch(framework: str, threads: int, limit: int | None = None, epochs: int = 1) -> dict:
    """``epochs`` LeNet-5 Fashion-MNIST epochs in this process (the 60,000 training images, or the first
    ``limit``; batch 64): the wall seconds of each (a single epoch varied 8–12 s between processes on one
    machine, so the report takes the best and the median of several per process), and the process's RSS
    after its imports (the framework, NumPy, juanji's data loader: nothing loaded or built yet) and at its
    peak."""
    side = start_worker(framework, threads)
    from ..data import DataLoader, load_mnist
    import_mib = rss_mib()
    loader = DataLoader(load_mnist(train=True, limit=limit), 64, shuffle=True, seed=0)
    step = side.train_step(side.model("lenet5"))
    seconds = []
    for _ in range(epochs):
        started = time.perf_counter()
        for x, y in loader:
            step(x, y)
        seconds.append(time.perf_counter() - started)
    return {"epoch seconds": seconds, "import RSS MiB": import_mib, "peak RSS MiB": peak_rss_mib()}
