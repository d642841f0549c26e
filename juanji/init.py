"""Re-initialise a model's weights with a named scheme (He/Kaiming, Xavier/Glorot, LeCun, PyTorch's default).

Layers are born with PyTorch's default (U(±1/√fan_in), see ``juanji.functional.init.torch_default``);
``initialize(model, "kaiming_uniform")`` replaces every Conv/Linear weight in place and zeroes the biases.
"""
from __future__ import annotations

import numpy as np

from .functional.init import (INITIALISERS, kaiming_normal, kaiming_uniform, lecun_normal, lecun_uniform,
                              torch_default, xavier_normal, xavier_uniform)

SCHEMES = ("torch",) + tuple(INITIALISERS)

__all__ = ["initialize", "SCHEMES", "kaiming_uniform", "kaiming_normal", "xavier_uniform", "xavier_normal",
           "lecun_uniform", "lecun_normal", "torch_default"]


def initialize(model, scheme: str, rng: np.random.Generator) -> None:
    """Re-draw every weight of rank ≥ 2 (conv and linear) with ``scheme``; biases become 0.

    'kaiming_*' use the ReLU gain (√2) — for ReLU networks; 'xavier_*' gain 1 — for tanh/sigmoid;
    'lecun_*' 1/√fan_in; 'torch' keeps the layers' PyTorch-default initialisation.
    """
    if scheme not in SCHEMES:
        raise ValueError(f"unknown initialisation '{scheme}' (known: {', '.join(SCHEMES)})")
    if scheme == "torch":
        return
    draw = INITIALISERS[scheme]
    for module in model.modules():
        weight = module.params.get("weight")
        if weight is None or weight.ndim < 2:
            continue
        if scheme.startswith("kaiming"):
            weight[...] = draw(weight.shape, rng, nonlinearity="relu", dtype=weight.dtype)
        else:
            weight[...] = draw(weight.shape, rng, dtype=weight.dtype)
        if "bias" in module.params:
            module.params["bias"].fill(0)
