"""ZFNet's deconvnet (Zeiler & Fergus 2014, "Visualizing and Understanding Convolutional Networks"): one
activation of a layer projected back to pixel space, to show the pattern of the image that made it fire."""
from __future__ import annotations

import numpy as np

from ..nn import ReLU
from .chain import layer_chain, run_chain


def deconvnet(model, image, layer: str, channel: int, position=None) -> tuple[np.ndarray, tuple[int, int]]:
    """The projection (C, H, W) of map ``channel`` of ``layer`` (a ``layer_chain`` name) for one image (C, H, W),
    and the position (i, j) projected: by default the map's strongest activation, all others set to 0.

    Going back down the layers: max-pooling is undone with the switches of the forward pass (its backward),
    a convolution by the transposed convolution with the same kernels (its backward, dX = dY ∗ rot180(W),
    the bias left out), and a ReLU by a ReLU of the signal itself, max(0, r), not by the forward pass's mask
    (which would give the gradient).  Other layers pass the signal back through their own backward.
    The model should be in eval mode.
    """
    chain = layer_chain(model)
    names = [name for name, _ in chain]
    if layer not in names:
        raise ValueError(f"no layer named '{layer}'; the layers are {', '.join(names)}")
    below = chain[:names.index(layer) + 1]
    x = run_chain(below, image[None])[-1]
    if x.ndim != 4:
        raise ValueError(f"layer {layer} outputs shape {x.shape[1:]}, not feature maps (C, H, W)")
    if not 0 <= channel < x.shape[1]:
        raise ValueError(f"layer {layer} has maps 0…{x.shape[1] - 1}, not {channel}")
    i, j = np.unravel_index(np.argmax(x[0, channel]), x.shape[2:]) if position is None else position
    signal = np.zeros_like(x)
    signal[0, channel, i, j] = x[0, channel, i, j]
    for _, child in reversed(below):
        signal = np.maximum(signal, 0) if isinstance(child, ReLU) else child.backward(signal)
    return signal[0], (int(i), int(j))
