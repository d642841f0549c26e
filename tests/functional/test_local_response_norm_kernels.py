"""The local response norm kernels against their channel-by-channel references and torch.nn.functional, odd and
even windows, windows wider than the channels, float64 and float32 (kept float32)."""
import numpy as np
import pytest
import torch.nn.functional as TF

from juanji.functional import local_response_norm as L
from kernel_check import DTYPES, assert_close, torch_vjp

CASES = [((2, 7, 3, 3), 5, 1e-4, 0.75, 2.0), ((2, 6, 4), 4, 0.5, 0.75, 1.0), ((1, 3, 2, 2, 2), 7, 1.0, 1.5, 0.5),
         ((3, 5, 2), 1, 0.3, 0.5, 1.0), ((2, 4, 3), 2, 2.0, 2.0, 1.5)]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape, size, alpha, beta, k", CASES)
def test_local_response_norm_matches_its_reference_and_torch(shape, size, alpha, beta, k, dtype):
    rng = np.random.default_rng(size)
    x, dy = (rng.standard_normal(shape) * 2).astype(dtype), rng.standard_normal(shape).astype(dtype)
    y, cache = L.local_response_norm(x, size, alpha, beta, k)
    dx = L.local_response_norm_backward(dy, cache)
    assert y.dtype == dx.dtype == dtype and y.shape == dx.shape == shape
    y_t, (dx_t,) = torch_vjp(lambda t: TF.local_response_norm(t, size, alpha, beta, k), dy, x)
    assert_close(y, y_t, "y")
    assert_close(dx, dx_t, "dx")
    x64, dy64 = x.astype(np.float64), dy.astype(np.float64)
    assert_close(y, L.local_response_norm_reference(x64, size, alpha, beta, k), "y vs reference", dtype)
    assert_close(dx, L.local_response_norm_backward_reference(dy64, x64, size, alpha, beta, k), "dx vs reference",
                 dtype)


def test_the_window_sum_zero_pads_and_leaves_its_input_alone():
    a = np.arange(1.0, 6.0).reshape(1, 5)
    np.testing.assert_array_equal(L.window_sum(a, 2, 1), [[3, 6, 10, 14, 12]])     # c−2 … c+1
    np.testing.assert_array_equal(L.window_sum(a, 0, 0), a)
    np.testing.assert_array_equal(L.window_sum(a, 9, 9), [[15] * 5])
    np.testing.assert_array_equal(a, [[1, 2, 3, 4, 5]])
