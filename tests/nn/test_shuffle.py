"""PixelShuffle and PixelUnshuffle against torch.nn's: factors drawn at random, positional or keyword, batched,
unbatched, extra leading axes and non-contiguous inputs, float64 and float32; finite differences; bad factors
refused at construction, bad shapes in forward, naming the layer."""
import numpy as np
import pytest
import torch

from finite_difference import check_layer
from juanji import nn
from layer_check import DTYPES, compare_with_torch


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("name, keyword", [("PixelShuffle", "upscale_factor"), ("PixelUnshuffle", "downscale_factor")])
def test_random_factors_match_torch(name, keyword, seed, dtype):
    rng = np.random.default_rng(seed)
    r = int(rng.integers(1, 4))
    lead = [(), (2,), (3,), (2, 2)][seed % 4]
    c, h, w = int(rng.integers(1, 3)), int(rng.integers(1, 4)), int(rng.integers(1, 4))
    shape = (*lead, c * r * r, h, w) if name == "PixelShuffle" else (*lead, c, h * r, w * r)
    layer, reference = ((getattr(nn, name)(r), getattr(torch.nn, name)(r)) if seed % 2 else
                        (getattr(nn, name)(**{keyword: r}), getattr(torch.nn, name)(**{keyword: r})))
    assert repr(layer) == repr(reference)
    x = rng.standard_normal(shape).astype(dtype)
    if seed % 3 == 0:                                   # a transposed view: not contiguous
        x = np.ascontiguousarray(x.swapaxes(-1, -2)).swapaxes(-1, -2)
    compare_with_torch(layer, reference, x, seed=seed)


def test_finite_differences():
    rng = np.random.default_rng(1)
    check_layer(nn.PixelShuffle(2), rng.standard_normal((2, 8, 3, 2)))
    check_layer(nn.PixelUnshuffle(3), rng.standard_normal((2, 6, 3)))


@pytest.mark.parametrize("make", [lambda: nn.PixelShuffle(0), lambda: nn.PixelShuffle(-1), lambda: nn.PixelShuffle(1.5),
                                  lambda: nn.PixelUnshuffle(True), lambda: nn.PixelUnshuffle("2")])
def test_factors_other_than_positive_ints_are_refused(make):
    with pytest.raises(ValueError, match=r"^Pixel(Uns|S)huffle: (up|down)scale_factor must be a positive int"):
        make()


@pytest.mark.parametrize("layer, shape, fragment", [
    (nn.PixelShuffle(2), (2, 6, 3, 3), "must be divisible by upscale_factor² = 4"),
    (nn.PixelShuffle(2), (8, 3), "at least 3-D"),
    (nn.PixelUnshuffle(2), (2, 3, 4, 5), "must be divisible by downscale_factor = 2"),
    (nn.PixelUnshuffle(2), (4,), "at least 3-D"),
])
def test_shapes_torch_refuses_are_refused_naming_the_layer(layer, shape, fragment):
    with pytest.raises(ValueError) as info:
        layer(np.zeros(shape, np.float32))
    assert str(info.value).startswith(repr(layer)) and fragment in str(info.value)
