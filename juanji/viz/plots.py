"""Figures for ``juanji show``: the arrays of ``juanji.viz`` drawn with matplotlib (headless) as PNG files."""
from __future__ import annotations

import math

import matplotlib
import numpy as np

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402  (after choosing the headless backend)
from matplotlib.colors import to_rgb  # noqa: E402

from ..io import write_atomically  # noqa: E402
from .fonts import with_label_fonts  # noqa: E402
from .grid import picture, to_unit  # noqa: E402


def save_png(figure, path) -> None:
    """Write ``figure`` to ``path`` as PNG, atomically (a temporary file renamed over the target), and close it."""
    write_atomically(path, lambda f: figure.savefig(f, format="png", dpi=100))
    plt.close(figure)


@with_label_fonts
def plot_panels(panels, path, title: str = "", columns: int | None = None, cmap: str = "gray",
                border: str = "#a8c4e0", panel_size=(2.4, 2.4)) -> None:
    """One figure of pictures side by side.  ``panels``: a list of (caption, array), the array (H, W) with
    values in [0, 1] drawn with ``cmap``, or (H, W, 3) RGB; NaN (the borders of a grid) in ``border``."""
    columns = columns or min(len(panels), 6)
    rows = math.ceil(len(panels) / columns)
    width, height = panel_size
    figure, axes = plt.subplots(rows, columns, figsize=(columns * width, rows * height + 0.6), squeeze=False)
    colours = plt.get_cmap(cmap).with_extremes(bad=border)
    for ax in axes.flat:
        ax.axis("off")
    for ax, (caption, array) in zip(axes.flat, panels):
        if array.ndim == 3:
            array = np.where(np.isnan(array), np.array(to_rgb(border)), np.clip(array, 0, 1))
        ax.imshow(array, cmap=colours, vmin=0, vmax=1, interpolation="nearest")
        ax.set_title(caption, fontsize=8)
    figure.suptitle(title, fontsize=9)
    figure.tight_layout()
    save_png(figure, path)


@with_label_fonts
def plot_grid(grid, path, title: str) -> None:
    """One big grid (a kernel grid) at about 8 screen pixels per grid pixel, at least 5 inches wide."""
    height, width = grid.shape[:2]
    inches = min(0.12, 9 / max(height, width))
    plot_panels([("", grid)], path, title, panel_size=(max(5, width * inches), height * inches + 0.4))


def rgb(image) -> np.ndarray:
    """A (C, H, W) image in [0, 1] as (H, W, 3): a gray image repeated in R, G and B."""
    array = picture(image)
    return np.repeat(array[..., None], 3, axis=2) if array.ndim == 2 else array


@with_label_fonts
def plot_saliency(pixels, saliency, path, title: str, label: str = "saliency max |∂S_c/∂I|",
                  captions=("image", "overlay")) -> None:
    """The image (C, H, W) in [0, 1], a heat map (H, W) of it (saliency, Grad-CAM, occlusion) in the ``hot``
    colour map, and the map laid over the image with opacity = heat (scaled to [0, 1]).  ``label`` and
    ``captions`` (the image's, the overlay's) are the panels' words, in any language."""
    strength = to_unit(saliency)[..., None]
    heat = plt.get_cmap("hot")(strength[..., 0])[..., :3]
    image = rgb(pixels)
    panels = [(captions[0], image), (label, heat),
              (captions[1], (1 - strength) * image + strength * heat)]
    plot_panels(panels, path, title, panel_size=(3, 3))


@with_label_fonts
def plot_confusion(matrix, classes, path, title: str,
                   labels=("predicted class", "true class", "fraction of the true class")) -> None:
    """Heat map of counts[true, predicted]: colour = fraction of the true class, the count written in each cell.
    ``labels``: the words of the x axis, the y axis and the colour bar, in any language."""
    matrix = np.asarray(matrix)
    k = len(classes)
    fraction = matrix / np.maximum(matrix.sum(axis=1, keepdims=True), 1)
    figure, ax = plt.subplots(figsize=(2.5 + 0.55 * k, 1.8 + 0.5 * k))
    image = ax.imshow(fraction, cmap="Blues", vmin=0, vmax=1)
    if k <= 20:
        for (i, j), count in np.ndenumerate(matrix):
            ax.text(j, i, str(count), ha="center", va="center", fontsize=7,
                    color="white" if fraction[i, j] > 0.5 else "black")
    ax.set_xticks(range(k), classes, rotation=45, ha="right", fontsize=8)
    ax.set_yticks(range(k), classes, fontsize=8)
    ax.set_xlabel(labels[0])
    ax.set_ylabel(labels[1])
    ax.set_title(title, fontsize=9)
    figure.colorbar(image, ax=ax, label=labels[2])
    figure.tight_layout()
    save_png(figure, path)


def class_colours(num_classes: int) -> np.ndarray:
    """(K, 3) RGB in [0, 1], one colour per class of a mask: class 0 (background) black, the others
    matplotlib's tab10 (tab20 beyond 10 classes, evenly spaced hues beyond 20)."""
    others = num_classes - 1
    if others <= 20:
        colours = plt.get_cmap("tab10" if others <= 10 else "tab20").colors[:others]
    else:
        colours = plt.get_cmap("hsv")(np.arange(others) / others)[:, :3]
    return np.vstack([np.zeros((1, 3)), np.asarray(colours, dtype=np.float64).reshape(-1, 3)])


@with_label_fonts
def plot_masks(images, true_masks, predicted_masks, classes, path, title: str, captions=None,
               per_row: int = 8) -> None:
    """Segmentations side by side: for each image (N, C, H, W) in [0, 1], the image, its true mask (N, H, W)
    and the predicted one, one below the other in groups of ``per_row`` columns, each class in its colour
    (``class_colours``) and a legend of the classes.  ``captions``: one line per image, under its number."""
    from matplotlib.patches import Patch
    colours = class_colours(len(classes))
    count = len(images)
    columns = min(count, per_row)
    groups = math.ceil(count / columns)
    figure, axes = plt.subplots(3 * groups, columns, figsize=(1.6 * columns + 1.8, 1.75 * 3 * groups + 0.7),
                                squeeze=False)
    for ax in axes.flat:
        ax.axis("off")
    for i in range(count):
        group, column = divmod(i, columns)
        caption = f"#{i}" + (f" {captions[i]}" if captions else "")
        for row, (label, array) in enumerate((("", rgb(images[i])), ("true", colours[true_masks[i]]),
                                              ("predicted", colours[predicted_masks[i]]))):
            ax = axes[3 * group + row, column]
            ax.imshow(np.clip(array, 0, 1), interpolation="nearest")
            ax.set_title(caption if row == 0 else label, fontsize=7)
    handles = [Patch(facecolor=colour, edgecolor="gray", label=name) for colour, name in zip(colours, classes)]
    figure.legend(handles=handles, loc="center right", fontsize=7, frameon=False)
    figure.suptitle(title, fontsize=9)
    figure.tight_layout(rect=(0, 0, 1 - 1.7 / figure.get_size_inches()[0], 1))
    save_png(figure, path)
