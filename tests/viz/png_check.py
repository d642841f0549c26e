"""Checking a written picture: a real PNG file, of a sensible size, not blank."""
import numpy as np
from PIL import Image


def read_png(path, min_width=200, min_height=150) -> np.ndarray:
    """The pixels of a PNG file as gray levels, after checking it is a PNG of a sensible size, not blank."""
    with open(path, "rb") as f:
        assert f.read(8) == b"\x89PNG\r\n\x1a\n", f"{path} is not a PNG file"
    with Image.open(path) as image:
        width, height = image.size
        pixels = np.asarray(image.convert("L"), dtype=np.float64)
    assert width >= min_width and height >= min_height, f"{path} is only {width}×{height}"
    assert pixels.var() > 100, f"{path} is nearly blank (pixel variance {pixels.var():.1f})"
    return pixels
