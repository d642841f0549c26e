"""Occlusion sensitivity (Zeiler & Fergus 2014, "Visualizing and Understanding Convolutional Networks"):
cover part of the image with a gray square and see how much the class score drops."""
from __future__ import annotations

import numpy as np

from ..functional.activation import softmax
from ..nn import no_grad

OUTPUTS = ("probability", "score")


def occluded_images(image, size: int, stride: int, value: float) -> np.ndarray:
    """Every copy of ``image`` (C, H, W) with one ``size``×``size`` square set to ``value``:
    (H'·W', C, H, W), the square of copy (i·W' + j) at rows i·stride…, columns j·stride…,
    H' = ⌊(H − size)/stride⌋ + 1 (and W' alike)."""
    _, height, width = image.shape
    if not 1 <= size <= min(height, width):
        raise ValueError(f"occluder size must be between 1 and {min(height, width)} pixels, got {size}")
    if stride < 1:
        raise ValueError(f"stride must be at least 1, got {stride}")
    tops, lefts = range(0, height - size + 1, stride), range(0, width - size + 1, stride)
    copies = np.repeat(image[None], len(tops) * len(lefts), axis=0)
    for n, (top, left) in enumerate((t, l) for t in tops for l in lefts):
        copies[n, :, top:top + size, left:left + size] = value
    return copies


def occlusion_map(model, image, class_index: int, size: int = 6, stride: int = 2, value: float = 0.0,
                  output: str = "probability", batch_size: int = 256) -> np.ndarray:
    """The class's probability (or score S_c, ``output="score"``) with the gray square at each position:
    (H', W') for an image (C, H, W), H' = ⌊(H − size)/stride⌋ + 1.

    ``value`` fills the square in the model's input space: 0 is the training set's mean pixel when the
    inputs are normalised.  Low values mark the regions the class depends on.  The model should be in
    eval mode.
    """
    if output not in OUTPUTS:
        raise ValueError(f"output must be one of {', '.join(OUTPUTS)}, got '{output}'")
    copies = occluded_images(image, size, stride, value)
    _, height, width = image.shape
    rows, columns = (height - size) // stride + 1, (width - size) // stride + 1
    results = []
    with no_grad():
        for start in range(0, len(copies), batch_size):
            scores = model(copies[start:start + batch_size])
            results.append(softmax(scores, axis=1) if output == "probability" else scores)
    return np.concatenate(results)[:, class_index].reshape(rows, columns)


def pixel_map(result, image_shape, size: int, stride: int) -> np.ndarray:
    """An occlusion map (H', W') back at the image's pixels (H, W): each pixel gets the mean over the squares
    that covered it (pixels no square covered, at the right and bottom edges when stride does not fit, get
    the mean of the whole map)."""
    height, width = image_shape[-2:]
    total, count = np.zeros((height, width)), np.zeros((height, width))
    for (i, j), value in np.ndenumerate(result):
        total[i * stride:i * stride + size, j * stride:j * stride + size] += value
        count[i * stride:i * stride + size, j * stride:j * stride + size] += 1
    return np.where(count > 0, total / np.maximum(count, 1), np.mean(result))
