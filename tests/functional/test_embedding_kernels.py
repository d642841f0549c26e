"""The embedding kernels (juanji.functional.embedding): the backward with padding_idx and scale_grad_by_freq
against the np.add.at reference and torch, and max_norm's in-place renormalisation against torch's."""
import numpy as np
import pytest
import torch

from juanji.functional import embedding as F
from kernel_check import DTYPES, assert_close


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("padding_idx, scale", [(None, False), (3, False), (None, True), (0, True)])
@pytest.mark.parametrize("shape", [(4, 9), (2, 3, 5), (7,), (0, 4)])
def test_backward_matches_the_reference_and_torch(shape, padding_idx, scale, dtype):
    rng = np.random.default_rng(0)
    indices = rng.integers(0, 6, shape)              # few ids: many repeats
    dy = rng.standard_normal((*shape, 5)).astype(dtype)
    dw = F.embedding_backward(dy, indices, 8, padding_idx, scale)
    assert dw.dtype == dtype
    assert_close(dw, F.embedding_backward_reference(dy, indices, 8, padding_idx, scale), "reference")
    weight = torch.zeros((8, 5), dtype=torch.from_numpy(dy).dtype, requires_grad=True)
    torch.nn.functional.embedding(torch.from_numpy(indices), weight, padding_idx=padding_idx,
                                  scale_grad_by_freq=scale).backward(torch.from_numpy(dy))
    assert_close(dw, weight.grad, "torch")


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("max_norm, norm_type", [(1.0, 2.0), (0.5, 1.0), (2.0, 3.0), (0.8, float("inf")), (1.5, 0.5)])
def test_renorm_scales_the_rows_looked_up_in_place_as_torch(max_norm, norm_type, dtype):
    rng = np.random.default_rng(1)
    weight = (rng.standard_normal((9, 4)) * 2).astype(dtype)
    indices = np.array([[1, 4, 4], [7, 1, 0]])
    expected = torch.from_numpy(weight.copy())
    torch.embedding_renorm_(expected, torch.from_numpy(indices), max_norm, norm_type)
    untouched = weight[[2, 3, 5, 6, 8]].copy()
    F.embedding_renorm_(weight, indices, max_norm, norm_type)
    assert weight.dtype == dtype
    assert_close(weight, expected, "renormalised table")
    np.testing.assert_array_equal(weight[[2, 3, 5, 6, 8]], untouched)
