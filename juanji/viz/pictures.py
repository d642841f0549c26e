"""The pictures of one image, as arrays: computed here once for ``juanji show`` (which draws them into PNGs)
and for ``juanji serve`` (which sends them as JSON), so the command line and the page show the same numbers.

``inside`` is the page's one analysis of an image: a single forward pass layer by layer (every layer's maps
and the class scores) and a single backward pass from the chosen class's score, whose gradient at the input
is the saliency and at the Grad-CAM layer gives Grad-CAM's weights.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..functional.activation import softmax
from ..nn import Sequential, no_grad
from .chain import layer_chain, run_chain
from .gradcam import cam_of, cell_centres, grad_cam, last_map_layer, upsample
from .occlusion import occlusion_map, pixel_map
from .saliency import saliency_map


@dataclass
class GradCam:
    cam: np.ndarray             # L_c (H', W') at the layer's resolution
    layer: str                  # the layer_chain name of the layer
    maps_shape: tuple           # its maps' shape (K, H', W')
    centred: bool               # cells laid on their receptive fields' centres (else stretched)
    pixels: np.ndarray          # L_c resampled to the image (H, W)


@dataclass
class Inside:
    scores: np.ndarray          # the class scores S (K,), logits
    probabilities: np.ndarray   # softmax(S) in float64
    chosen: int                 # the class explained: the one asked for, else the highest score
    layers: list                # [(name, layer, output without the batch axis)] of every layer of the chain
    saliency: np.ndarray        # max over channels of |∂S_c/∂x|, divided by its maximum (H, W)
    saliency_max: float         # that maximum, in units of the score per unit of the network's input
    gradcam: GradCam | None     # None for a model that is not a Sequential, or one without maps


def choose_class(trained, scores, name: str | None = None) -> int:
    """The class named (``TrainedModel.class_index``: name, case ignored, or number), else the top score."""
    return trained.class_index(name) if name else int(np.argmax(scores))


def scores_of(model, x) -> np.ndarray:
    """The class scores (K,) of one input x (C, H, W)."""
    with no_grad():
        return model(x[None])[0]


def saliency(model, x, c: int) -> np.ndarray:
    """Simonyan et al.'s saliency (H, W) of class c, divided by its maximum (all zeros stay zeros)."""
    return _scaled(saliency_map(model, x, c))[0]


def _scaled(found) -> tuple[np.ndarray, float]:
    """(a saliency map divided by its maximum, all zeros staying zeros; that maximum)."""
    high = float(found.max())
    return found / (high or 1), high


def gradcam_at(model, chain, outputs, gradients, image_size, layer: str | None = None) -> GradCam:
    """Grad-CAM from a pass's outputs and gradients (one array per layer of ``chain``, batch of one) at
    ``layer``, by default the last one whose output is maps, poolings left out (``last_map_layer``)."""
    names = [name for name, _ in chain]
    if layer is None:
        layer = last_map_layer(chain, outputs)
    elif layer not in names:
        raise ValueError(f"no layer named '{layer}'; the layers are {', '.join(names)}")
    position = names.index(layer)
    maps = outputs[position]
    if maps.ndim != 4:
        raise ValueError(f"layer {layer} outputs shape {maps.shape[1:]}, not feature maps (C, H, W); "
                         f"choose a layer before the classifier")
    cam, _ = cam_of(maps[0], gradients[position][0])
    return placed(model, cam, layer, maps.shape[1:], image_size)


def placed(model, cam, layer: str, maps_shape, image_size) -> GradCam:
    """A Grad-CAM map with its resampling to the image (cells on their receptive fields where possible)."""
    centres = cell_centres(model, layer)
    return GradCam(cam, layer, tuple(maps_shape), centres is not None, upsample(cam, image_size, centres))


def inside(trained, x, class_name: str | None = None, layer: str | None = None) -> Inside:
    """Everything the page shows of one input x (C, H, W) from one forward and one backward pass (see the
    module docstring).  A model that is not a ``Sequential`` gets its scores and saliency only."""
    model = trained.model
    if not isinstance(model, Sequential):
        scores = scores_of(model, x)
        c = choose_class(trained, scores, class_name)
        return Inside(scores, softmax(scores.astype(np.float64)), c, [], *_scaled(saliency_map(model, x, c)), None)
    chain = layer_chain(model)
    outputs = run_chain(chain, x[None])
    scores = outputs[-1][0]
    c = choose_class(trained, scores, class_name)
    d = np.zeros_like(outputs[-1])
    d[0, c] = 1                                             # dS_c/dscores = one-hot(c)
    gradients = [None] * len(chain)
    for position in reversed(range(len(chain))):
        gradients[position] = d                             # ∂S_c/∂(this layer's output)
        d = chain[position][1].backward(d)
    found = np.abs(d[0]).max(axis=0)
    cam = None
    if any(y.ndim == 4 for y in outputs):
        cam = gradcam_at(model, chain, outputs, gradients, x.shape[1:], layer)
    return Inside(scores, softmax(scores.astype(np.float64)), c,
                  [(name, child, y[0]) for (name, child), y in zip(chain, outputs)],
                  *_scaled(found), cam)


def gradcam(model, x, c: int, layer: str | None = None) -> GradCam:
    """Grad-CAM of class c for one input x (C, H, W) (``grad_cam``: a backward pass from the layer up only)."""
    cam, maps, _, used = grad_cam(model, x, c, layer)
    return placed(model, cam, used, maps.shape, x.shape[1:])


@dataclass
class Occlusion:
    probability: float          # p(class) of the image itself
    map: np.ndarray             # p(class) with the square at each place (H', W')
    change: np.ndarray          # p − p occluded at each pixel (H, W), the mean over the squares on it: > 0 a drop
    size: int
    stride: int

    @property
    def drop(self) -> np.ndarray:
        """How much p falls at each pixel (H, W), ≥ 0: the change with the rises set to 0."""
        return np.maximum(self.change, 0)


def occlusion(model, x, c: int, size: int = 6, stride: int = 2, batch_size: int = 256) -> Occlusion:
    """Zeiler & Fergus's occlusion of class c for one input x (C, H, W), squares of the mean pixel (0 in the
    normalised input), ``batch_size`` occluded copies per forward pass."""
    probability = float(softmax(scores_of(model, x).astype(np.float64))[c])
    result = occlusion_map(model, x, c, size, stride, batch_size=batch_size)
    return Occlusion(probability, result, probability - pixel_map(result, x.shape, size, stride), size, stride)
