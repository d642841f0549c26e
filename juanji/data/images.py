"""Image files (PNG, JPG, BMP, GIF's first frame) into float32 arrays the way a model expects them."""
from __future__ import annotations

import os

import numpy as np


class ImageError(ValueError):
    """A file that is missing, empty, truncated or not an image; the message names it."""


def load_image(path, channels: int = 1, size: tuple[int, int] | None = None,
               mean=None, std=None) -> np.ndarray:
    """Read one image as float32 (C, H, W) in [0, 1], then optionally normalised per channel.

    ``channels`` 1 converts to grayscale, 3 to RGB; ``size`` (H, W) resizes (bilinear); EXIF orientation
    is applied first, as a phone's photo viewer does.
    """
    from PIL import Image, ImageOps, UnidentifiedImageError  # Pillow is an optional extra

    path = os.fspath(path)
    name = os.path.basename(path)
    if not os.path.isfile(path):
        raise ImageError(f"{path}: no such image file")
    if os.path.getsize(path) == 0:
        raise ImageError(f"{name}: empty file, not an image")
    if channels not in (1, 3):
        raise ValueError(f"channels must be 1 (grayscale) or 3 (RGB), got {channels}")
    try:
        with Image.open(path) as image:
            image.seek(0)
            image = ImageOps.exif_transpose(image).convert("L" if channels == 1 else "RGB")
            if size is not None:
                image = image.resize((size[1], size[0]), Image.Resampling.BILINEAR)
            pixels = np.asarray(image, dtype=np.float32) / 255
    except UnidentifiedImageError:
        raise ImageError(f"{name}: not an image file Pillow can read (PNG, JPG, BMP, GIF ...)") from None
    except (OSError, SyntaxError) as error:
        raise ImageError(f"{name}: truncated or corrupt image ({error})") from None
    array = pixels[None] if channels == 1 else pixels.transpose(2, 0, 1)
    if mean is not None:
        array = (array - np.asarray(mean, np.float32)[:, None, None]) / np.asarray(std, np.float32)[:, None, None]
    return np.ascontiguousarray(array, dtype=np.float32)
