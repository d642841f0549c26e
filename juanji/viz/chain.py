"""The layers a ``Sequential`` model runs one after the other, nested ``Sequential`` containers opened up
(VGG's ``features.0``, ``features.1`` …), so that pictures can stop after any of them."""
from __future__ import annotations

import numpy as np

from ..nn import Sequential


def layer_chain(model) -> list[tuple[str, object]]:
    """[(dotted name, layer)] in the order a ``Sequential`` runs them; other blocks (residual, concat) stay whole,
    and so does a Sequential with a forward of its own (DenseNet's layer: [x, F(x)]).
    Running them one by one on x gives model(x)."""
    if not isinstance(model, Sequential):
        raise ValueError(f"pictures layer by layer follow a Sequential model, not a {type(model).__name__}")
    chain = []
    for name, child in model.named_children():
        if isinstance(child, Sequential) and type(child).forward is Sequential.forward:
            chain += [(f"{name}.{inner}", layer) for inner, layer in layer_chain(child)]
        else:
            chain.append((name, child))
    return chain


def run_chain(chain, x) -> list[np.ndarray]:
    """The output of every layer of ``chain`` (``layer_chain``) for a batch x, each layer fed the one before:
    the last is model(x).  The one place pictures run a model layer by layer."""
    outputs = []
    for _, layer in chain:
        x = layer(x)
        outputs.append(x)
    return outputs
