"""interpolate / interpolate_backward against torch.nn.functional.interpolate for every mode juanji has (nearest,
nearest-exact, linear, bilinear, bicubic, area), sizes or scale factors (recomputed or not), align_corners, 1-d
and 2-d, float32 and float64; and against the loop reference, output cell by output cell."""
import numpy as np
import pytest
import torch
import torch.nn.functional as TF

from juanji.functional import upsample as F
from kernel_check import DTYPES, assert_close, torch_vjp

MODES = ["nearest", "nearest-exact", "linear", "bilinear", "bicubic", "area"]


def draw(seed, mode):
    """(input shape, torch's keyword arguments, output size, juanji's scales) for ``mode``."""
    rng = np.random.default_rng(seed)
    dims = 1 if mode == "linear" else 2 if mode in ("bilinear", "bicubic") else 1 + seed % 2
    while True:
        shape = (2, 2, *(int(v) for v in rng.integers(1, 9, dims)))
        if seed % 2:
            size = tuple(int(v) for v in rng.integers(1, 14, dims))
            kwargs, scales = dict(size=size), None
        else:
            factors = tuple(float(np.round(rng.uniform(0.3, 3.5), 2)) for _ in range(dims))
            recompute = bool(rng.integers(0, 2)) if mode != "area" else None
            size = tuple(F.output_size(n, None, f) for n, f in zip(shape[2:], factors))
            kwargs = dict(scale_factor=factors, recompute_scale_factor=recompute)
            scales = None if recompute or mode == "area" else factors
        if min(size) > 0:
            break
    if mode in ("linear", "bilinear", "bicubic"):
        kwargs["align_corners"] = bool(rng.integers(0, 2))
    return shape, kwargs, size, scales


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("seed", range(6))
def test_interpolate_matches_torch_and_the_reference(seed, mode, dtype):
    shape, kwargs, size, scales = draw(seed, mode)
    rng = np.random.default_rng(50 + seed)
    x = rng.standard_normal(shape).astype(dtype)
    align_corners = kwargs.get("align_corners", False)
    y, cache = F.interpolate(x, size, mode, align_corners, scales)
    dy = rng.standard_normal(y.shape).astype(dtype)
    dx = F.interpolate_backward(dy, cache)
    y_t, (dx_t,) = torch_vjp(lambda t: TF.interpolate(t, mode=mode, **kwargs), dy, x)
    assert y.dtype == dx.dtype == dtype
    assert_close(y, y_t, "y")
    assert_close(dx, dx_t, "dx")
    assert_close(F.interpolate_reference(x, size, mode, align_corners, scales), y_t, "reference")


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("dims", [1, 2])
@pytest.mark.parametrize("in_size, scale", [(20, 2.0), (10, 2.01), (7, 1.1), (9, 1.0), (13, 0.7)])
def test_nearest_follows_torchs_forward_where_scale_factors_give_out_in_or_twice(in_size, scale, dims, dtype):
    """Scale factors giving out = in or 2·in without being 1 or 2: torch's 1-d forward computes ⌊o/scale⌋ all the
    same, its 2-d forward (on arrays this small) copies or reads o >> 1.  The backward is the forward's adjoint,
    ⟨dX, x⟩ = ⟨dY, y⟩ (torch's 1-d backward takes the 2-d shortcuts instead).  Two channels: torch's
    channels-first path."""
    x = np.random.default_rng(0).standard_normal((2, 3) + (in_size,) * dims).astype(dtype)
    size = (F.output_size(in_size, None, scale),) * dims
    for mode in ("nearest", "nearest-exact"):
        y_t = TF.interpolate(torch.from_numpy(x), scale_factor=scale, mode=mode)
        y, cache = F.interpolate(x, size, mode, False, (scale,) * dims)
        np.testing.assert_array_equal(y, y_t.numpy())
        dy = np.random.default_rng(1).standard_normal(y.shape).astype(dtype)
        dx = F.interpolate_backward(dy, cache)
        np.testing.assert_allclose((dx * x).sum(), (dy * y).sum(), rtol=1e-5)


def test_interpolation_matrices_are_rows_of_weights_adding_up_to_one():
    for mode in MODES:
        matrix = F.interpolation_matrix(5, 9, mode, False, None, np.float64)
        np.testing.assert_allclose(matrix.sum(axis=1), 1, atol=1e-12)
    with pytest.raises(ValueError, match="interpolation mode must be one of"):
        F.interpolation_matrix(5, 9, "trilinear")
