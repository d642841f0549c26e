"""What a network computes from one image: the feature maps after its layers."""
from __future__ import annotations

import numpy as np

from .chain import layer_chain, run_chain
from .grid import tile, to_unit


def feature_maps(model, image, layers=None) -> dict[str, np.ndarray]:
    """Run ``image`` (C, H, W) through the layers of a ``Sequential`` model one by one (``layer_chain``: nested
    ``Sequential`` containers opened, VGG's ``features.3``).

    Returns {layer name: its output (C', H', W')} for the names in ``layers`` — by default every layer
    whose output is a stack of maps (N, C', H', W'): the convolutions, activations and poolings before
    the classifier.  The model should be in eval mode.
    """
    chain = layer_chain(model)
    if layers is not None:
        names = [name for name, _ in chain]
        unknown = [name for name in layers if name not in names]
        if unknown:
            listing = ", ".join(f"{name} ({type(layer).__name__})" for name, layer in chain)
            raise ValueError(f"no layer named {', '.join(map(repr, unknown))}; the layers are {listing}")
    maps = {}
    for (name, layer), y in zip(chain, run_chain(chain, image[None])):
        if layers is None and y.ndim == 4:
            maps[name] = y[0]
        elif layers is not None and name in layers:
            if y.ndim != 4:
                raise ValueError(f"layer {name} ({type(layer).__name__}) outputs shape {y.shape[1:]}, not "
                                 f"feature maps (C, H, W); choose a layer before the classifier")
            maps[name] = y[0]
    return maps


def map_grid(maps) -> np.ndarray:
    """The maps (C, H, W) of one layer tiled near-square (``grid.tile``), values stretched to [0, 1] over the
    whole layer, so that a weak channel looks weak next to a strong one."""
    maps = np.asarray(maps)
    return tile(to_unit(maps))
