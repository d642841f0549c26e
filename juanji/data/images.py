"""Image files (PNG, JPEG, BMP, GIF's first frame, TIFF, WebP) into float32 arrays the way a model expects them.

Pillow reads the file, restricted to ``FORMATS``: it identifies a file by its content, and a PostScript
or EPS file named ``x.png`` would otherwise be handed to Ghostscript.  Images larger than Pillow's
decompression-bomb limit (``Image.MAX_IMAGE_PIXELS``, 89 million pixels) are refused, and so are chunks of
compressed text or colour profile that would decompress beyond Pillow's limits.  The pixels come back
as (C, H, W) float32 in [0, 1] (``read_pixels``: uint8), optionally resized and normalised per channel.
Every problem with a file raises ``ImageError`` naming it.
"""
from __future__ import annotations

import os
import warnings

import numpy as np

from juanji.data.transforms import Normalize

FORMATS = ("PNG", "JPEG", "BMP", "GIF", "TIFF", "WEBP")     # decoded by Pillow itself, never by a program


class ImageError(ValueError):
    """A file that is missing, empty, truncated or not an image.  ``path`` is the file, ``problem`` what is
    wrong with it; the message is ``"<file name>: <problem>"``."""

    def __init__(self, path, problem: str):
        self.path, self.problem = os.fspath(path), problem
        super().__init__(f"{os.path.basename(self.path)}: {problem}")


def load_image(path, channels: int = 1, size=None, crop: bool = False, mean=None, std=None) -> np.ndarray:
    """Read one image file as float32 (C, H, W) in [0, 1], then optionally normalised: (x − mean[c]) / std[c].

    - EXIF orientation is applied first, as a phone's photo viewer does; a GIF gives its first frame.
    - ``channels`` 1 converts to grayscale (ITU-R 601 luma: L = 0.299 R + 0.587 G + 0.114 B), 3 to RGB
      (a gray image is repeated in R, G and B).
    - ``size`` (H, W), or an int for a square: resize (bilinear, antialiased) to exactly that size, or with
      ``crop`` keep the aspect ratio: scale so the image covers (H, W), then cut out the centre.
    """
    array = read_pixels(path, channels, size, crop) / np.float32(255)
    if mean is not None:
        array = Normalize(mean, std)(array[None])[0]
    return np.ascontiguousarray(array, dtype=np.float32)


def read_pixels(path, channels: int = 1, size=None, crop: bool = False) -> np.ndarray:
    """The pixels of one image file as uint8 (C, H, W), 0 to 255: ``load_image`` before it divides by 255
    (same options), the form in which decoded images are cached."""
    from PIL import Image, ImageOps, UnidentifiedImageError  # Pillow is an optional extra

    if channels not in (1, 3):
        raise ValueError(f"channels must be 1 (grayscale) or 3 (RGB), got {channels}")
    if not os.path.isfile(path):
        raise ImageError(path, "no such image file")
    if os.path.getsize(path) == 0:
        raise ImageError(path, "empty file, not an image")
    height, width = (size, size) if isinstance(size, int) else (size or (None, None))
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)    # above the limit: an error
            image = Image.open(path, formats=FORMATS)
        with image:
            image.seek(0)
            image = ImageOps.exif_transpose(image).convert("L" if channels == 1 else "RGB")
            if size is not None and crop:
                image = ImageOps.fit(image, (width, height), Image.Resampling.BILINEAR)
            elif size is not None:
                image = image.resize((width, height), Image.Resampling.BILINEAR)
            pixels = np.asarray(image, dtype=np.uint8)
    except UnidentifiedImageError:
        raise ImageError(path, f"not an image file of a format juanji reads ({', '.join(FORMATS)})") from None
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as error:
        raise ImageError(path, f"too large to read safely ({error})") from None
    except (OSError, SyntaxError) as error:
        raise ImageError(path, f"truncated or corrupt image ({error})") from None
    except ValueError as error:             # Pillow's limits on compressed text and colour-profile chunks
        raise ImageError(path, f"corrupt or too large to read safely ({error})") from None
    return pixels[None] if channels == 1 else pixels.transpose(2, 0, 1)   # (H, W[, 3]) → (C, H, W)


def load_images(paths, channels: int = 1, size=None, crop: bool = False, mean=None, std=None) -> np.ndarray:
    """Several image files stacked into one batch (N, C, H, W); the options are those of ``load_image``.
    Without ``size`` every image must already have the same height and width."""
    images = [load_image(path, channels, size, crop, mean, std) for path in paths]
    if not images:
        raise ValueError("load_images: no image files given")
    for path, image in zip(paths, images):
        if image.shape != images[0].shape:
            raise ImageError(path, f"is {image.shape[1]}×{image.shape[2]} pixels but {os.path.basename(paths[0])} "
                                   f"is {images[0].shape[1]}×{images[0].shape[2]}; pass size= to resize them")
    return np.stack(images)
