"""Pixel shuffle and unshuffle (juanji.functional.shuffle) against torch and the offset-by-offset reference:
any leading axes, factors 1 to 3, forward and backward, each the other's inverse."""
import numpy as np
import pytest
import torch.nn.functional as TF

from juanji.functional import shuffle as F
from kernel_check import DTYPES, torch_vjp


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("lead, r", [((2,), 2), ((), 3), ((2, 3), 2), ((1,), 1)])
def test_pixel_shuffle_matches_torch_and_the_reference(lead, r, dtype):
    rng = np.random.default_rng(r)
    x = rng.standard_normal((*lead, 2 * r * r, 3, 4)).astype(dtype)
    y = F.pixel_shuffle(x, r)
    dy = rng.standard_normal(y.shape).astype(dtype)
    expected, (dx,) = torch_vjp(lambda t: TF.pixel_shuffle(t, r), dy, x)
    np.testing.assert_array_equal(y, expected)
    np.testing.assert_array_equal(y, F.pixel_shuffle_reference(x, r))
    np.testing.assert_array_equal(F.pixel_shuffle_backward(dy, r), dx)
    assert y.dtype == dtype


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("lead, r", [((2,), 2), ((), 3), ((2, 3), 2)])
def test_pixel_unshuffle_matches_torch_and_inverts_the_shuffle(lead, r, dtype):
    rng = np.random.default_rng(10 + r)
    x = rng.standard_normal((*lead, 3, 2 * r, 3 * r)).astype(dtype)
    y = F.pixel_unshuffle(x, r)
    dy = rng.standard_normal(y.shape).astype(dtype)
    expected, (dx,) = torch_vjp(lambda t: TF.pixel_unshuffle(t, r), dy, x)
    np.testing.assert_array_equal(y, expected)
    np.testing.assert_array_equal(F.pixel_unshuffle_backward(dy, r), dx)
    np.testing.assert_array_equal(F.pixel_shuffle(y, r), x)
    np.testing.assert_array_equal(F.pixel_shuffle_reference(y, r), x)
