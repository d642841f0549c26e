"""Class model visualisation (Simonyan, Vedaldi & Zisserman 2013): the input image a network scores highest
for a class, found by gradient ascent on the image with the weights fixed."""
from __future__ import annotations

import numpy as np

from .saliency import class_score_gradient


def class_model(model, classes, steps: int = 200, lr: float = 0.1, l2: float = 0.05, noise: float = 0.3,
                seed: int = 0, input_shape=None) -> tuple[np.ndarray, np.ndarray]:
    """Images I_c maximising  S_c(I) − λ‖I‖²  for each class c in ``classes``; λ = ``l2``.

    Gradient ascent  I ← I + lr · (∂S_c/∂I − 2λI)  from the zero image (the mean training image, when
    inputs are normalised) plus Gaussian noise of standard deviation ``noise`` drawn with ``seed``: at an
    exactly uniform image every ReLU of a trained network may be off, and the gradient there is zero.
    Returns (images (K, C, H, W) in the model's input space, scores (steps + 1, K)): S_c of each image
    before each step and after the last.  ``input_shape`` (C, H, W) defaults to ``model.input_shape``.
    The model should be in eval mode.
    """
    classes = np.atleast_1d(classes)
    shape = (len(classes), *(input_shape or model.input_shape))
    images = np.random.default_rng(seed).normal(scale=noise, size=shape).astype(model.dtype or np.float32)
    scores = []
    for step in range(steps + 1):
        logits, gradient = class_score_gradient(model, images, classes)
        scores.append(logits[np.arange(len(classes)), classes])
        if step < steps:
            images += lr * (gradient - 2 * l2 * images)
    return images, np.array(scores)
