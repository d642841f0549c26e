"""The pooling kernels beyond plain max and average pooling: max pooling's indices, max unpooling, average
pooling's divisor_override, the separable adaptive poolings (average by matrices, max by bins of one axis at a
time, with indices) — against torch.nn.functional and the loop references, on random geometries, ties included."""
import numpy as np
import pytest
import torch
import torch.nn.functional as TF

from juanji.functional import pool as F
from juanji.functional import spp as S
from kernel_check import DTYPES, assert_close, torch_vjp

pytestmark = pytest.mark.usefixtures("kernels")


def window(rng):
    kernel = tuple(int(v) for v in rng.integers(1, 4, 2))
    return dict(kernel_size=kernel, stride=tuple(int(v) for v in rng.integers(1, 4, 2)),
                padding=tuple(int(rng.integers(0, k // 2 + 1)) for k in kernel))


@pytest.mark.parametrize("seed", range(20))
def test_max_pool2d_indices_are_torchs(seed):
    """Flat per-plane indices of each window's first maximum, with dilation and ceil_mode, on inputs with ties."""
    rng = np.random.default_rng(seed)
    kwargs = dict(window(rng), dilation=tuple(int(v) for v in rng.integers(1, 3, 2)), ceil_mode=bool(seed % 2))
    x = rng.standard_normal((2, 3, int(rng.integers(5, 10)), int(rng.integers(5, 10))))
    x = np.round(x) if seed % 3 == 0 else x
    y_t, indices_t = TF.max_pool2d(torch.from_numpy(x), **kwargs, return_indices=True)
    y, cache = F.max_pool2d(x, **kwargs)
    finite = np.isfinite(y_t.numpy())          # a window entirely in the padding: torch's index is undefined
    np.testing.assert_array_equal(y, y_t.numpy())
    indices = F.max_pool2d_indices(cache)
    assert indices.dtype == np.int64
    np.testing.assert_array_equal(indices[finite], indices_t.numpy()[finite])


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("seed", range(10))
def test_max_unpool2d_matches_torch(seed, dtype):
    rng = np.random.default_rng(seed)
    kwargs = window(rng)
    x = rng.standard_normal((2, 3, int(rng.integers(6, 10)), int(rng.integers(6, 10)))).astype(dtype)
    pooled, indices = TF.max_pool2d(torch.from_numpy(x), **kwargs, return_indices=True)
    size = x.shape[2:]
    assert F.unpool_output_size(pooled.shape[2:], kwargs["kernel_size"], kwargs["stride"], kwargs["padding"],
                                size) == size
    y, cache = F.max_unpool2d(pooled.numpy(), indices.numpy(), size)
    dy = rng.standard_normal(y.shape).astype(dtype)
    y_t, (dx_t,) = torch_vjp(lambda t: TF.max_unpool2d(t, indices, **kwargs, output_size=size), dy, pooled.numpy())
    assert y.dtype == dtype
    np.testing.assert_array_equal(y, y_t)
    np.testing.assert_array_equal(F.max_unpool2d_backward(dy, cache), dx_t)


def test_unpool_output_size_is_torchs_rule():
    assert F.unpool_output_size((3, 4), (2, 3), (2, 2), (0, 1)) == (6, 7)
    assert F.unpool_output_size((3, 4), (2, 3), (2, 2), (0, 1), (1, 1, 7, 8)) == (7, 8)
    with pytest.raises(ValueError, match=r"invalid output_size \(8, 7\) \(dim 0 must be between 4 and 8"):
        F.unpool_output_size((3, 4), (2, 3), (2, 2), (0, 1), (8, 7))
    with pytest.raises(ValueError, match="2 or 4 elements"):
        F.unpool_output_size((3, 4), (2, 3), (2, 2), (0, 1), (1, 7, 8))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("seed", range(10))
def test_avg_pool2d_divisor_override(seed, dtype):
    rng = np.random.default_rng(seed)
    kwargs = dict(window(rng), ceil_mode=bool(seed % 2), count_include_pad=bool(seed % 3),
                  divisor_override=int(rng.integers(1, 9)) * (-1) ** seed)
    x = rng.standard_normal((2, 3, int(rng.integers(4, 9)), int(rng.integers(4, 9)))).astype(dtype)
    y, cache = F.avg_pool2d(x, **kwargs)
    dy = rng.standard_normal(y.shape).astype(dtype)
    y_t, (dx_t,) = torch_vjp(lambda t: TF.avg_pool2d(t, **kwargs), dy, x)
    assert y.dtype == dtype
    assert_close(y, y_t, "y")
    assert_close(F.avg_pool2d_backward(dy, cache), dx_t, "dx")
    assert_close(F.avg_pool2d_backward_reference(dy, x.shape, **kwargs), dx_t, "reference dx")


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("seed", range(12))
def test_adaptive_pools_match_torch_and_the_references(seed, dtype):
    """Bins that tile, overlap, and outnumber the pixels; max pooling on inputs with ties too (the first maximum
    in row-major order wins, as torch)."""
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((2, 3, int(rng.integers(1, 10)), int(rng.integers(1, 10)))).astype(dtype)
    x = np.round(x) if seed % 3 == 0 else x
    size = tuple(int(v) for v in rng.integers(1, 8, 2))
    y, cache = F.adaptive_avg_pool2d(x, size)
    dy = rng.standard_normal(y.shape).astype(dtype)
    y_t, (dx_t,) = torch_vjp(lambda t: TF.adaptive_avg_pool2d(t, size), dy, x)
    assert y.dtype == dtype and F.adaptive_avg_pool2d_backward(dy, cache).dtype == dtype
    assert_close(y, y_t, "avg y")
    assert_close(F.adaptive_avg_pool2d_backward(dy, cache), dx_t, "avg dx")
    assert_close(F.adaptive_avg_pool2d_reference(x, size), y_t, "avg reference")
    y, cache = S.adaptive_max_pool2d(x, size)
    y_t, (dx_t,) = torch_vjp(lambda t: TF.adaptive_max_pool2d(t, size), dy, x)
    _, indices_t = TF.adaptive_max_pool2d(torch.from_numpy(x), size, return_indices=True)
    np.testing.assert_array_equal(y, y_t)
    np.testing.assert_array_equal(S.adaptive_max_pool2d_indices(cache), indices_t.numpy())
    assert_close(S.adaptive_max_pool2d_backward(dy, cache), dx_t, "max dx")
    reference, reference_indices = S.adaptive_max_pool2d_reference(x, size)
    np.testing.assert_array_equal(reference, y)
    np.testing.assert_array_equal(reference_indices, indices_t.numpy())
