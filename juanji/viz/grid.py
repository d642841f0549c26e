"""Arrays of pictures: tiling many small images into one grid, and scaling values to [0, 1] for display."""
from __future__ import annotations

import math

import numpy as np


def tile(cells, columns: int | None = None, pad: int = 1) -> np.ndarray:
    """Lay out ``cells`` (N, h, w) or (N, h, w, 3) row by row, ``columns`` per row (default ⌈√N⌉).

    Returns float (R(h + pad) − pad, columns(w + pad) − pad[, 3]) with R = ⌈N / columns⌉; the borders and
    unused places are NaN (plots draw NaN in a border colour).  Cell i starts at row (i // columns)(h + pad),
    column (i % columns)(w + pad).
    """
    cells = np.asarray(cells, dtype=np.float64)
    count, height, width = cells.shape[:3]
    columns = columns or math.ceil(math.sqrt(count))
    rows = math.ceil(count / columns)
    grid = np.full((rows * (height + pad) - pad, columns * (width + pad) - pad, *cells.shape[3:]), np.nan)
    for i, cell in enumerate(cells):
        top, left = (i // columns) * (height + pad), (i % columns) * (width + pad)
        grid[top:top + height, left:left + width] = cell
    return grid


def to_unit(x) -> np.ndarray:
    """(x − min) / (max − min): the values of ``x`` stretched to [0, 1] (all 0 when x is constant)."""
    x = np.asarray(x, dtype=np.float64)
    low, high = x.min(), x.max()
    return (x - low) / (high - low) if high > low else np.zeros_like(x)


def picture(image) -> np.ndarray:
    """A (C, H, W) image with C = 1 or 3 as matplotlib draws it: (H, W) or (H, W, 3)."""
    image = np.asarray(image)
    return image[0] if image.shape[0] == 1 else image.transpose(1, 2, 0)
