"""Segmentation tasks for models that classify every pixel (the U-Net), made offline from Fashion-MNIST.

    juanji train --model unet --data fashion-masks --optimizer adam --lr 0.003 --limit 10000 --epochs 3

Task ``fashion-masks``: a Fashion-MNIST image (N, 1, 28, 28) → a mask (N, 28, 28) whose pixel is the
garment's class + 1 where the pixel is brighter than ``THRESHOLD``, else 0 (background): 11 classes.
Half of Fashion-MNIST's pixels are exactly 0; most of the other dim ones (0 < x ≤ 0.2, 7 % of all pixels)
are the faint rim the downscaling left around a garment, which ``THRESHOLD`` = 0.2 (51 of 255) counts as
background, so that a mask outlines the garment as drawn (0.1 … 0.3 give masks of 45 … 39 % foreground).
A garment's mask is one class throughout, so a model must tell *which* garment from the shape, as a
classifier does, and *where* from the pixels: mean IoU (``juanji.metrics.mean_iou``) measures both.
The images and splits are ``load_mnist``'s (``$JUANJI_DATA``, else Debian's dataset-fashion-mnist).
"""
from __future__ import annotations

import numpy as np

from .datasets import ImageDataset, float_chunks, load_mnist

THRESHOLD = 0.2
BACKGROUND = "background"


class SegmentationDataset(ImageDataset):
    """Images (N, C, H, W) with masks ``labels`` (N, H, W) int64 in [0, len(classes)).

    ``dataset[index_array]`` is a batch (images (B, C, H, W) float32, masks (B, H, W)), as for
    ``ArrayDataset``, so ``DataLoader`` batches it unchanged; ``images``, ``stored`` and ``labels`` are as
    there (``ImageDataset``)."""

    def __init__(self, images, labels, classes):
        super().__init__(images)
        images, labels = self.stored, np.asarray(labels)
        if labels.shape != (images.shape[0], *images.shape[2:]) or labels.dtype.kind not in "iu":
            raise ValueError(f"masks must be integers of shape {(images.shape[0], *images.shape[2:])} "
                             f"(N, H, W), got {labels.dtype} {labels.shape}")
        if labels.size and (labels.min() < 0 or labels.max() >= len(classes)):
            raise ValueError(f"mask values must lie in 0..{len(classes) - 1} ({len(classes)} classes)")
        self.labels, self.classes = labels.astype(np.int64), list(classes)


def garment_masks(images, labels, threshold: float = THRESHOLD) -> np.ndarray:
    """(N, H, W) int64 masks of gray images (N, 1, H, W), floats in [0, 1] or uint8 pixels (read as p / 255,
    float32), with classes (N,): mask[n, i, j] = labels[n] + 1 where images[n, 0, i, j] > threshold, else 0."""
    images, labels = np.asarray(images), np.asarray(labels)
    if images.ndim != 4 or images.shape[1] != 1 or labels.shape != images.shape[:1]:
        raise ValueError(f"garment_masks takes gray images (N, 1, H, W) and N labels, got {images.shape} and "
                         f"{labels.shape}")
    bright = np.concatenate([np.zeros((0, *images.shape[2:]), dtype=bool),      # chunk by chunk: no float copy
                             *(chunk[:, 0] > threshold for chunk in float_chunks(images))])
    return np.where(bright, labels[:, None, None] + 1, 0).astype(np.int64)


def fashion_masks(root=None, limit: int | None = None, threshold: float = THRESHOLD):
    """(train, test) SegmentationDatasets of ``load_mnist``'s splits (the first ``limit`` training images),
    classes ``["background", *the data's class names]``."""
    train, test = load_mnist(root, train=True, limit=limit), load_mnist(root, train=False)
    classes = [BACKGROUND, *train.classes]
    return tuple(SegmentationDataset(split.stored, garment_masks(split.stored, split.labels, threshold), classes)
                 for split in (train, test))


TASKS = {"fashion-masks": fashion_masks}


def is_task(data) -> bool:
    """True when ``--data`` names a segmentation task (``fashion-masks``) rather than a folder."""
    return data in TASKS


def load_task(name: str, limit: int | None = None):
    """(train, test) of the task ``name``; ``limit`` keeps the first ``limit`` training images."""
    if name not in TASKS:
        raise ValueError(f"unknown segmentation task '{name}' (known: {', '.join(TASKS)})")
    if limit is not None and limit < 1:
        raise ValueError(f"--limit must be at least 1, got {limit}")
    return TASKS[name](limit=limit)
