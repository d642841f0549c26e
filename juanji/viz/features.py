"""What a network computes from one image: the feature maps after its layers."""
from __future__ import annotations

import numpy as np

from ..nn import Sequential
from .grid import tile, to_unit


def feature_maps(model, image, layers=None) -> dict[str, np.ndarray]:
    """Run ``image`` (C, H, W) through the top-level layers of a ``Sequential`` model one by one.

    Returns {layer name: its output (C', H', W')} for the names in ``layers`` — by default every layer
    whose output is a stack of maps (N, C', H', W'): the convolutions, activations and poolings before
    the classifier.  The model should be in eval mode.
    """
    if not isinstance(model, Sequential):
        raise ValueError(f"feature maps follow the top-level layers of a Sequential model, "
                         f"not a {type(model).__name__}")
    children = list(model.named_children())
    if layers is not None:
        names = [name for name, _ in children]
        unknown = [name for name in layers if name not in names]
        if unknown:
            listing = ", ".join(f"{name} ({type(layer).__name__})" for name, layer in children)
            raise ValueError(f"no top-level layer named {', '.join(map(repr, unknown))}; the layers are {listing}")
    maps, x = {}, image[None]
    for name, layer in children:
        x = layer(x)
        if layers is None and x.ndim == 4:
            maps[name] = x[0]
        elif layers is not None and name in layers:
            if x.ndim != 4:
                raise ValueError(f"layer {name} ({type(layer).__name__}) outputs shape {x.shape[1:]}, not "
                                 f"feature maps (C, H, W); choose a layer before the classifier")
            maps[name] = x[0]
    return maps


def map_grid(maps) -> np.ndarray:
    """The maps (C, H, W) of one layer tiled near-square (``grid.tile``), values stretched to [0, 1] over the
    whole layer, so that a weak channel looks weak next to a strong one."""
    maps = np.asarray(maps)
    return tile(to_unit(maps))
