"""What a request may send as an image, checked before use: an image file's bytes (PNG, JPG, ...) or JSON
``{"pixels": [...]}`` of the exact input size (what the page's drawing canvas sends)."""
from __future__ import annotations

import io
import json
import os
import tempfile
import warnings

import numpy as np

from ..data.images import ImageError

MAX_BYTES = 8 * 1024 * 1024          # larger bodies are refused before they are read whole
MAX_PIXELS = 4096 * 4096             # larger images are refused from their header, before decoding


class BadInput(ValueError):
    """A request whose body is not a usable image; ``status`` is the HTTP status to answer with."""

    def __init__(self, message: str, status: int = 400):
        super().__init__(message)
        self.status = status


def decode_image(body: bytes, trained, invert: str = "auto", center: bool = False) -> np.ndarray:
    """An image file's bytes prepared exactly as ``juanji predict`` prepares a file (``TrainedModel.prepare``:
    the shorter side scaled to the input size and the centre cut out, a light background inverted for a run
    trained on dark images, or with ``center`` cut to its object): (C, H, W) float32 in [0, 1]."""
    from PIL import Image, UnidentifiedImageError
    if not body:
        raise BadInput("empty request body: send an image file (PNG, JPG, ...) or JSON {\"pixels\": ...}")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(body)) as image:      # reads the header only
                width, height = image.size
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):   # a header of 50,000² pixels, say
        raise BadInput(f"image too large (its header declares more than {MAX_PIXELS:,} pixels)", 413) from None
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError):
        raise BadInput("not an image file Pillow can read (PNG, JPG, BMP, GIF ...)", 415) from None
    if width * height > MAX_PIXELS:
        raise BadInput(f"image of {width}×{height} pixels is too large (at most {MAX_PIXELS:,} pixels)", 413)
    with tempfile.TemporaryDirectory(prefix="juanji-serve-") as folder:
        path = os.path.join(folder, "upload")
        with open(path, "wb") as f:
            f.write(body)
        try:
            return trained.prepare(path, invert, center)[0]
        except ImageError as error:
            raise BadInput(error.problem, 415) from None
        except ValueError as error:                         # centring a colour model's input, say
            raise BadInput(str(error).replace(path, "the image")) from None


def decode_pixels(body: bytes, input_shape) -> np.ndarray:
    """JSON ``{"pixels": P}`` with P nested lists of shape (C, H, W), or (H, W) for one channel, values in [0, 1].
    Integers are read as floats (a 400-digit one becomes inf, refused below); nesting too deep for the parser,
    a RecursionError, is refused like any malformed body."""
    try:
        pixels = np.asarray(json.loads(body, parse_int=float)["pixels"], dtype=np.float32)
    except (ValueError, KeyError, TypeError, RecursionError):
        raise BadInput('JSON body must be {"pixels": [[...], ...]}: numbers in [0, 1], rows of equal length') from None
    if pixels.ndim == 2:
        pixels = pixels[None]
    if pixels.shape != tuple(input_shape):
        raise BadInput(f"pixels of shape {pixels.shape}, the model takes {tuple(input_shape)}")
    if not np.all((pixels >= 0) & (pixels <= 1)):        # also false for NaN
        raise BadInput("pixels must be numbers in [0, 1]")
    return pixels


def read_pixels(body: bytes, content_type: str, trained, invert: str = "auto", center: bool = False) -> np.ndarray:
    """The pixels (C, H, W) in [0, 1] a request sends, by its content type: JSON as sent, else an image file
    prepared as ``juanji predict`` prepares it (``invert`` and ``center`` as its options)."""
    if content_type.split(";")[0].strip().lower() == "application/json":
        return decode_pixels(body, trained.input_shape)
    return decode_image(body, trained, invert, center)
