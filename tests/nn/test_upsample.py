"""Upsample, UpsamplingNearest2d and UpsamplingBilinear2d against torch.nn's: every constructor argument drawn at
random (positionally in torch's order for some draws, by keyword for others) for every mode juanji has, float32
and float64, contiguous and non-contiguous inputs; y and dx compared; finite differences; what torch refuses
refused at construction (or at the first forward, where it depends on the input)."""
import warnings

import numpy as np
import pytest
import torch

from finite_difference import check_layer
from juanji import nn
from layer_check import DTYPES, compare_with_torch

MODES = ["nearest", "nearest-exact", "linear", "bilinear", "bicubic", "area"]


def draw(seed, mode):
    """(Upsample's arguments in torch's order, input shape) for ``mode``: size or scale_factor (a number or one
    per axis), align_corners (None, True, False) for the interpolating modes, recompute_scale_factor."""
    rng = np.random.default_rng(seed)
    dims = 1 if mode == "linear" else 2 if mode in ("bilinear", "bicubic") else 1 + seed % 2
    shape = (int(rng.integers(1, 3)), int(rng.integers(2, 4)), *(int(v) for v in rng.integers(1, 8, dims)))
    args = dict(size=None, scale_factor=None, mode=mode, align_corners=None, recompute_scale_factor=None)
    if seed % 3 == 0:
        sizes = tuple(int(v) for v in rng.integers(1, 12, dims))
        args["size"] = sizes[0] if rng.integers(0, 2) else sizes
    else:
        factors = tuple(float(np.round(rng.uniform(0.6, 3.2), 1)) for _ in range(dims))
        args["scale_factor"] = factors[0] if seed % 3 == 1 else factors
        args["recompute_scale_factor"] = [None, True, False][int(rng.integers(0, 3))]
        while min(int(n * f) for n, f in zip(shape[2:], factors if seed % 3 == 2 else (factors[0],) * dims)) < 1:
            shape = (*shape[:2], *(n + 1 for n in shape[2:]))
    if mode in ("linear", "bilinear", "bicubic"):
        args["align_corners"] = [None, True, False][int(rng.integers(0, 3))]
    return args, shape


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("seed", range(6))
def test_matches_torch(seed, mode, dtype):
    args, shape = draw(seed, mode)
    layer = nn.Upsample(*args.values()) if seed % 2 else nn.Upsample(**args)
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(shape[::-1]).astype(dtype).T if seed % 4 == 1 else \
        rng.standard_normal(shape).astype(dtype)           # a transposed view: not contiguous
    compare_with_torch(layer, torch.nn.Upsample(**args), x, steps=2, seed=seed)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("kwargs", [dict(scale_factor=2), dict(scale_factor=(1.5, 2.5)), dict(size=(5, 9)),
                                    dict(size=4)])
def test_upsampling_nearest2d_and_bilinear2d(kwargs, dtype):
    """torch's deprecated shorthands: nearest, and bilinear with align_corners=True."""
    x = np.random.default_rng(1).standard_normal((2, 3, 4, 5)).astype(dtype)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")          # torch: "nn.UpsamplingBilinear2d is deprecated"
        compare_with_torch(nn.UpsamplingNearest2d(**kwargs), torch.nn.UpsamplingNearest2d(**kwargs), x)
        compare_with_torch(nn.UpsamplingBilinear2d(**kwargs), torch.nn.UpsamplingBilinear2d(**kwargs), x)
    assert nn.UpsamplingBilinear2d(**kwargs).align_corners is True


@pytest.mark.parametrize("mode, shape", [("nearest", (2, 3, 5, 4)), ("nearest-exact", (2, 3, 7)),
                                         ("linear", (2, 3, 6)), ("bilinear", (2, 2, 4, 5)),
                                         ("bicubic", (2, 2, 4, 5)), ("area", (2, 3, 9, 7))])
def test_finite_differences(mode, shape):
    factor = 0.6 if mode == "area" else 1.7
    check_layer(nn.Upsample(scale_factor=factor, mode=mode), np.random.default_rng(2).standard_normal(shape))


def test_repr_and_stored_arguments_are_torchs():
    layer = nn.Upsample(scale_factor=(2, 1.5), mode="bilinear", align_corners=True)
    assert layer.scale_factor == (2.0, 1.5) and layer.size is None
    assert repr(layer) == "Upsample(scale_factor=(2.0, 1.5), mode='bilinear', align_corners=True)"
    assert repr(nn.Upsample(size=3)) == "Upsample(size=3, mode='nearest')"


@pytest.mark.parametrize("kwargs, error, fragments", [
    (dict(scale_factor=2, mode="trilinear"), ValueError, ("Upsample", "mode", "'trilinear'", "5-d")),
    (dict(scale_factor=2, mode="lanczos"), ValueError, ("Upsample", "mode", "'lanczos'")),
    (dict(), ValueError, ("Upsample", "exactly one of size and scale_factor")),
    (dict(size=4, scale_factor=2), ValueError, ("Upsample", "exactly one of size and scale_factor")),
    (dict(scale_factor=2, align_corners=True), ValueError, ("Upsample", "align_corners", "'nearest'")),
    (dict(scale_factor=2, mode="bilinear", align_corners=1), TypeError, ("Upsample", "align_corners", "1")),
    (dict(size=4, recompute_scale_factor=True), ValueError, ("Upsample", "recompute_scale_factor", "size")),
    (dict(scale_factor=-2), ValueError, ("Upsample", "scale_factor", "-2")),
    (dict(scale_factor=(2, 0)), ValueError, ("Upsample", "scale_factor", "(2, 0)")),
    (dict(size=0), ValueError, ("Upsample", "size", "0")),
    (dict(size=2.5), TypeError, ("Upsample", "size", "2.5")),
    (dict(scale_factor="2"), TypeError, ("Upsample", "scale_factor", "'2'")),
])
def test_bad_arguments_are_refused_at_construction(kwargs, error, fragments):
    with pytest.raises(error) as info:
        nn.Upsample(**kwargs)
    assert all(fragment in str(info.value) for fragment in fragments), str(info.value)


def test_inputs_of_the_wrong_rank_or_sizes_of_the_wrong_length_are_refused():
    image, sequence = np.zeros((1, 2, 3, 3), np.float32), np.zeros((1, 2, 3), np.float32)
    for layer, x, fragments in [
            (nn.Upsample(scale_factor=2, mode="bilinear"), sequence, ("(N, C, H, W) for mode 'bilinear'", "3-D")),
            (nn.Upsample(scale_factor=2, mode="linear"), image, ("(N, C, L) for mode 'linear'", "4-D")),
            (nn.Upsample(scale_factor=2), np.zeros((1, 2, 3, 3, 3), np.float32), ("(N, C, L) or (N, C, H, W)",)),
            (nn.Upsample(size=(4, 4)), sequence, ("size (4, 4) has 2 entries", "1 spatial")),
            (nn.Upsample(scale_factor=0.2), sequence, ("empty output",))]:
        with pytest.raises(ValueError) as info:
            layer(x)
        assert "Upsample" in str(info.value) and all(f in str(info.value) for f in fragments), str(info.value)
