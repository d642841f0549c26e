"""A photo of one object made to look like a Fashion-MNIST image: light object on a black background, cut
to the object, centred on a square that its longer side fills, resized.

Fashion-MNIST's pictures were made that way (Xiao et al. 2017: trimmed, longest edge resized to 28,
centred, negated); a phone photo of a dark boot on a white table is none of it, and a network trained on
Fashion-MNIST reads it as something else. ``prepare_photo`` does the same steps to a photo.
"""
from __future__ import annotations

import numpy as np

BORDER = 0.05       # the outer 5 % of each side is taken to be background
OBJECT = 0.2        # after stretching, pixels above this are the object (its bounding box is kept)


def _gray(image) -> np.ndarray:
    """(H, W) or (1, H, W) → (H, W) float32; ValueError for anything else."""
    array = np.asarray(image, dtype=np.float32)
    if array.ndim == 3 and array.shape[0] == 1:
        array = array[0]
    if array.ndim != 2 or min(array.shape) < 2:
        raise ValueError(f"a photo must be one gray image (H, W) or (1, H, W) of at least 2×2 pixels, "
                         f"got shape {np.shape(image)}")
    if not np.isfinite(array).all():
        raise ValueError("the photo has NaN or infinite pixels")
    return array


def background_level(image) -> float:
    """The background's brightness: the median of the pixels in the outer 5 % frame of the image
    (at least one pixel wide) — a photo of one object shows the background all around it."""
    pixels = _gray(image)
    band = max(1, round(BORDER * min(pixels.shape)))
    frame = np.concatenate([pixels[:band].ravel(), pixels[-band:].ravel(),
                            pixels[band:-band, :band].ravel(), pixels[band:-band, -band:].ravel()])
    return float(np.median(frame))


def is_light_background(image) -> bool:
    """True when the background is lighter than mid-gray: a dark object on a light ground, the opposite of
    Fashion-MNIST, so the photo must be inverted."""
    return background_level(image) > 0.5


def prepare_photo(image, size: int = 28, invert: bool | None = None, center: bool = True) -> np.ndarray:
    """A photo (H, W) or (1, H, W), pixels in [0, 1], as a Fashion-MNIST-like image (1, size, size).

    1. ``invert``: None detects the background (``is_light_background``) and inverts a light one
       (x → 1 − x); True or False forces it.
    2. Stretch: the background level (median of the border) becomes 0 and the brightest pixel 1, clipped
       to [0, 1], so a gray table or a shadow is black like Fashion-MNIST's background.
    3. ``center``: cut out the bounding box of the object (pixels above 0.2 after stretching), put it in the
       middle of a black square whose side is its longer side, then resize (antialiased) to ``size`` —
       the object's longer side fills the image, as in Fashion-MNIST. Without ``center`` the whole photo
       is resized to the square (its aspect ratio is not kept).
    """
    from PIL import Image  # Pillow is an optional extra, as for juanji.data.images

    if not isinstance(size, int) or size < 1:
        raise ValueError(f"size must be a positive int, got {size!r}")
    if invert not in (None, True, False):
        raise ValueError(f"invert must be None (detect), True or False, got {invert!r}")
    pixels = np.clip(_gray(image), 0, 1)
    if invert or (invert is None and is_light_background(pixels)):
        pixels = 1 - pixels
    low, high = background_level(pixels), float(pixels.max())
    if high - low > 1e-6:
        pixels = np.clip((pixels - low) / (high - low), 0, 1)
    if center:
        pixels = _centred_square(pixels)
    resized = Image.fromarray(pixels.astype(np.float32), mode="F").resize((size, size), Image.Resampling.BILINEAR)
    return np.clip(np.asarray(resized, dtype=np.float32), 0, 1)[None]


def _centred_square(pixels: np.ndarray) -> np.ndarray:
    """The object's bounding box in the middle of a black square as wide as its longer side (an odd spare
    row or column above and left of it, as Fashion-MNIST has it)."""
    rows, cols = np.nonzero(pixels > OBJECT)
    if rows.size == 0:                      # no object stands out: keep the whole picture
        return pixels
    box = pixels[rows.min():rows.max() + 1, cols.min():cols.max() + 1]
    side = max(box.shape)
    square = np.zeros((side, side), dtype=np.float32)
    top, left = (side - box.shape[0] + 1) // 2, (side - box.shape[1] + 1) // 2
    square[top:top + box.shape[0], left:left + box.shape[1]] = box
    return square
