"""Image-specific class saliency (Simonyan, Vedaldi & Zisserman 2013, "Deep Inside Convolutional Networks"):
which pixels, changed a little, would change the class score the most."""
from __future__ import annotations

import numpy as np


def class_score_gradient(model, images, classes) -> tuple[np.ndarray, np.ndarray]:
    """(scores (N, K), ∂S_c/∂I (N, C, H, W)) for images (N, C, H, W) and one class c per image (or one for all).

    S_c is the unnormalised score of class c (the logit, before softmax).  One forward and one backward
    pass: backward starts from dS/dscores = one-hot(c) and returns the gradient with respect to the input.
    Images of a batch do not interact in eval mode, so each row is the gradient of its own class score.
    """
    scores = model(images)
    d_scores = np.zeros_like(scores)
    d_scores[np.arange(len(scores)), classes] = 1
    gradient = model.backward(d_scores)
    if gradient is None:
        raise ValueError("the model's first layer skips the input gradient (input_grad = False, as set for "
                         "training); set it back to True, or load the model from its checkpoint")
    return scores, gradient


def saliency_map(model, image, class_index: int) -> np.ndarray:
    """Saliency (H, W) of an image (C, H, W) for class c:  M_ij = max_channels |∂S_c/∂I|_(channel, i, j),

    the gradient taken at this image (the first-order Taylor expansion S_c(I) ≈ wᵀI + b, w = ∂S_c/∂I).
    The model should be in eval mode (dropout off, batch-norm statistics fixed).
    """
    _, gradient = class_score_gradient(model, image[None], class_index)
    return np.abs(gradient[0]).max(axis=0)
