"""Refusing, before building it, a model that arguments from outside (a checkpoint header, the command line)
would make too large for memory: each size argument within bounds, then ``models.summary.estimate_memory``
against ``limits.memory_budget()``."""
from __future__ import annotations

from . import models
from .limits import memory_budget, mib
from .models.summary import AT_DEFAULTS, estimate_memory

# Arguments that size a model, with the largest value accepted from outside (a file or the command line).
SIZE_ARGUMENTS = {"num_classes": 1_000_000, "in_channels": 4096, "input_size": 1 << 16, "vocab_size": 1 << 24,
                  "seq_len": 1 << 20, "embedding_dim": 1 << 16, "channels": 1 << 16}


def check_model_memory(name: str, batch_size: int = 1, source: str | None = None, **kwargs) -> int:
    """Refuse (MemoryError naming ``source`` and the sizes) to build ``create(name, **kwargs)`` when training
    it on batches of ``batch_size`` would need more than ``memory_budget()``; else the bytes
    estimated by ``summary.estimate_memory``.  Size arguments must be positive integers."""
    build = models.builder(name)
    source = f"{source}: " if source else ""
    for key, value in kwargs.items():
        if key in SIZE_ARGUMENTS and (type(value) is not int or not 1 <= value <= SIZE_ARGUMENTS[key]):
            raise ValueError(f"{source}{key} must be an integer in 1..{SIZE_ARGUMENTS[key]:,}, got {value!r:.40}")
    params, activations, workspace, needed = estimate_memory(build, batch_size, **kwargs)
    budget = memory_budget()
    if needed > budget and 12 * AT_DEFAULTS[build.__name__][0] < budget // 2:
        # the bound from the defaults is too coarse here (a big model on small images); building the model
        # at its defaults or below (weights, gradients, float64 init) is affordable: measure it
        params, activations, workspace, needed = estimate_memory(build, batch_size, measured=True, **kwargs)
    if needed > budget:
        sizes = ", ".join(f"{k}={v}" for k, v in kwargs.items())
        raise MemoryError(f"{source}{name} ({sizes}) would need about {mib(needed)} to train on batches of "
                          f"{batch_size} ({params:,} parameters; per sample {activations:,} activations and "
                          f"{workspace:,} values of the kernels' workspace); "
                          f"the limit is {mib(budget)}")
    return needed
