"""Where one juanji train step goes, layer type by layer type (``python -m juanji.bench --breakdown``).
juanji only: nothing here imports torch."""
from __future__ import annotations

import time
from collections import defaultdict

import numpy as np

from .. import nn, optim
from .rows import MODEL_INPUTS, NUM_CLASSES
from .juanji_side import JuanjiSide

DEFAULT_BATCH = {"lenet5": 64, "resnet20": 128, "mobilenet_v2": 64}


def run_breakdown(name: str, batch: int, steps: int = 10) -> dict:
    """Seconds per step, at the caller's thread count, of each leaf layer type's forward and backward
    (containers' own work, such as residual adds, is the remainder), the loss and the optimizer, averaged
    over ``steps`` steps after warm-up: {"step": seconds, "parts": {label: seconds}}.  Timing each layer
    runs through hooks on the model as the benchmark runs it (``nn.fuse``d on the compiled kernels: a batch
    norm and the ReLU after it are one layer there)."""
    model = JuanjiSide().model(name)
    totals: defaultdict[str, float] = defaultdict(float)
    begun: dict[int, float] = {}      # module id → when its forward or backward began

    def start(module, *_):
        begun[id(module)] = time.perf_counter()

    def stop(label):
        def hook(module, *_):
            totals[label] += time.perf_counter() - begun.pop(id(module))
        return hook

    for module in model.modules():
        if not module._modules:
            kind = type(module).__name__
            module.register_forward_pre_hook(start)
            module.register_forward_hook(stop(f"{kind} forward"))
            module.register_full_backward_pre_hook(start)
            module.register_full_backward_hook(stop(f"{kind} backward"))
    channels, size = MODEL_INPUTS[name]
    rng = np.random.default_rng(0)
    x, y = rng.random((batch, channels, size, size), dtype=np.float32), rng.integers(0, NUM_CLASSES, batch)
    optimizer = optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    loss_fn = nn.CrossEntropyLoss()
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
    """The breakdown as a Markdown table, largest part first."""
    lines = [f"juanji train step, {name} at batch {batch}, {threads} thread(s): {result['step'] * 1e3:.1f} ms", "",
             "| part | ms per step | share |", "|---|---|---|"]
    for label, seconds in sorted(result["parts"].items(), key=lambda item: -item[1]):
        lines.append(f"| {label} | {seconds * 1e3:.2f} | {100 * seconds / result['step']:.0f} % |")
    return "\n".join(lines)
