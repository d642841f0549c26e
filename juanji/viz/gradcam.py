"""Grad-CAM (Selvaraju et al. 2017, "Grad-CAM: Visual Explanations from Deep Networks via Gradient-based
Localization"): where in a layer's maps the evidence for a class lies, as a coarse heat map."""
from __future__ import annotations

import numpy as np

from ..nn import AdaptiveAvgPool2d, AvgPool2d, MaxPool2d
from .chain import layer_chain, run_chain

POOLINGS = (MaxPool2d, AvgPool2d, AdaptiveAvgPool2d)


def last_map_layer(chain, outputs) -> str:
    """The name of the last layer of ``chain`` whose output (one per layer, in ``outputs``) is a stack of maps
    (N, C, H, W), poolings left out: Selvaraju et al. take the last convolutional layer, whose maps are the
    finest that see the whole object."""
    candidates = [name for (name, layer), y in zip(chain, outputs) if y.ndim == 4 and not isinstance(layer, POOLINGS)]
    if not candidates:
        raise ValueError("the model has no layer that outputs feature maps")
    return candidates[-1]


def grad_cam(model, image, class_index: int, layer: str | None = None):
    """Grad-CAM of class c at a layer of a ``Sequential`` model (``layer_chain``: nested ``Sequential``
    containers opened, ``features.3``) for one image (C, H, W).

    With A the layer's maps (K, H', W') and S_c the class score (the logit, before softmax):
        α_k = (1 / H'W') Σ_ij ∂S_c/∂A_kij          (the gradient, global-average-pooled: one weight per map)
        L_c = ReLU(Σ_k α_k A_k)                      (H', W'), at the layer's resolution
    Returns (L_c, A, α, layer name).  One forward pass, and a backward pass through the layers after
    ``layer`` only.  The model should be in eval mode.  ``layer`` defaults to the last layer
    whose output is maps, poolings left out.
    """
    children = layer_chain(model)
    names = [name for name, _ in children]
    if layer is not None and layer not in names:
        raise ValueError(f"no layer named '{layer}'; the layers are {', '.join(names)}")
    outputs = run_chain(children, image[None])
    x = outputs[-1]
    layer = last_map_layer(children, outputs) if layer is None else layer
    split = names.index(layer) + 1
    maps = outputs[split - 1]
    if maps.ndim != 4:
        raise ValueError(f"layer {layer} outputs shape {maps.shape[1:]}, not feature maps (C, H, W); "
                         f"choose a layer before the classifier")
    d = np.zeros_like(x)
    d[0, class_index] = 1                                  # dS_c/dscores = one-hot(c)
    for _, child in reversed(children[split:]):
        d = child.backward(d)                              # the chain rule, layer by layer back to A
    cam, weights = cam_of(maps[0], d[0])
    return cam, maps[0], weights, layer


def cam_of(maps, gradient) -> tuple[np.ndarray, np.ndarray]:
    """(L_c (H', W'), α (K,)) from a layer's maps A (K, H', W') and the class score's gradient ∂S_c/∂A there."""
    weights = gradient.mean(axis=(1, 2))
    return np.maximum(np.tensordot(weights, maps, axes=1), 0), weights


def cell_centres(model, layer: str):
    """Where the cells of a layer's maps (``layer_chain`` names) sit over the input: ((start, step) for rows,
    (start, step) for columns) — cell (i, j) is centred on input pixel (start_r + i·step_r, start_c + j·step_c),
    the centre of its receptive field.  Each convolution or pooling moves the start by ((k − 1)·d/2 − padding)
    · step and multiplies the step by its stride; other layers (activations, batch norm) keep both.  None when a
    layer on the way is an adaptive pooling or a block of layers: then the map can only be stretched."""
    geometry = [[0.0, 1.0], [0.0, 1.0]]
    for name, child in layer_chain(model):
        if isinstance(getattr(child, "kernel_size", None), tuple):
            padding = [p[0] for p in child.pads] if hasattr(child, "pads") else child.padding
            dilation = getattr(child, "dilation", (1, 1))
            for axis, (start, step) in enumerate(geometry):
                reach = (child.kernel_size[axis] - 1) * dilation[axis] / 2     # kernel centre from its first tap
                geometry[axis] = [start + (reach - padding[axis]) * step, step * child.stride[axis]]
        elif hasattr(child, "output_size") or next(child.named_children(), None) is not None:
            return None                     # adaptive pooling, or a block whose inside is not followed here
        if name == layer:
            return tuple(map(tuple, geometry))
    raise ValueError(f"no layer named '{layer}'")


def upsample(heat, size, centres=None) -> np.ndarray:
    """A map (h, w) resampled bilinearly to ``size`` (H, W) to lay it over the image.  With ``centres``
    (``cell_centres``) each cell lands on the centre of its receptive field; without, the map is stretched
    over the whole image, cells at pixel centres (PyTorch's ``interpolate(mode="bilinear",
    align_corners=False)``, what most Grad-CAM code does — off by up to a few pixels for unpadded layers)."""
    heat = np.asarray(heat, dtype=np.float64)
    if centres is None:                 # stretched: step = H / h, the first cell centred at step/2 − 1/2
        centres = tuple((n_out / n_in / 2 - 0.5, n_out / n_in) for n_in, n_out in zip(heat.shape, size))

    def grid(n_in, n_out, start, step):  # source coordinate of each output pixel, clamped to the map
        position = np.clip((np.arange(n_out) - start) / step, 0, n_in - 1)
        low = np.floor(position).astype(int)
        return low, np.minimum(low + 1, n_in - 1), position - low

    top, bottom, dy = grid(heat.shape[0], size[0], *centres[0])
    left, right, dx = grid(heat.shape[1], size[1], *centres[1])
    rows = heat[top] * (1 - dy[:, None]) + heat[bottom] * dy[:, None]
    return rows[:, left] * (1 - dx) + rows[:, right] * dx
