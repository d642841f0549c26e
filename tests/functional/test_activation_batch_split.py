"""hardtanh (ReLU6) split over the batch (``map_batch``) at 1 and 2 threads: forward and backward against PyTorch
and against the whole-array formulas, on random shapes and bounds (odd batches split unevenly), float64 and
float32, with the bounds themselves, ±∞ and NaN among the values."""
import threading

import numpy as np
import pytest
import torch.nn.functional as TF
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from juanji.functional import activation
from kernel_check import DTYPES, torch_vjp

BOUNDS = [(0.0, 6.0), (-1.0, 1.0), (-0.5, 2.0), (-3.0, -1.0)]


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.integers(1, 5), min_size=1, max_size=4), st.sampled_from(BOUNDS), st.sampled_from(DTYPES),
       st.integers(0, 2 ** 16))
@pytest.mark.usefixtures("batch_threads")
def test_hardtanh_split_matches_torch_and_the_whole_array_formulas(shape, bounds, dtype, seed):
    rng = np.random.default_rng(seed)
    x = (rng.standard_normal(shape) * 4).astype(dtype)
    x.reshape(-1)[:2] = bounds[:x.size]                 # the kinks: gradient 0 at both, as PyTorch
    dy = rng.standard_normal(shape).astype(dtype)
    y, dx = activation.hardtanh(x, *bounds), activation.hardtanh_backward(dy, x, *bounds)
    y_t, (dx_t,) = torch_vjp(lambda t: TF.hardtanh(t, *bounds), dy, x)
    assert y.dtype == dx.dtype == dtype and y.shape == dx.shape == x.shape
    np.testing.assert_array_equal(y, y_t)               # a clamp and a masked copy: the very values
    np.testing.assert_array_equal(dx, dx_t)
    np.testing.assert_array_equal(y, np.clip(x, *bounds))
    np.testing.assert_array_equal(dx, dy * ((x > bounds[0]) & (x < bounds[1])))
    np.testing.assert_array_equal(activation.hardtanh_backward(dy, y, *bounds), dx)     # from the output


@pytest.mark.usefixtures("batch_threads")
@pytest.mark.parametrize("dtype", DTYPES)
def test_hardtanh_split_propagates_inf_and_nan(dtype):
    """NaN stays NaN in y and gets gradient 0 (PyTorch's vectorised kernel: its 32 values here fill whole vectors);
    a NaN or ±∞ dY inside the bounds passes through.  (Outside them the product gives NaN, PyTorch's select 0.)"""
    x = np.array([[np.nan, -np.inf, np.inf, 3.0, -1.0, 7.0, 0.0, 6.0]] * 4, dtype)
    dy = np.array([[1.0, 2.0, 3.0, np.nan, 1.0, 1.0, 1.0, 1.0]] * 4, dtype)
    dy[1, 3] = -np.inf
    y, dx = activation.hardtanh(x, 0, 6), activation.hardtanh_backward(dy, x, 0, 6)
    y_t, (dx_t,) = torch_vjp(TF.relu6, dy, x)
    np.testing.assert_array_equal(y, y_t)               # NaN where torch has NaN
    np.testing.assert_array_equal(dx, dx_t)


def test_hardtanh_splits_at_2_threads(batch_threads, monkeypatch):
    """At 2 threads the samples go to 2 threads (at 1, all to the calling one)."""
    seen = set()
    clip = np.clip

    def watched(*args, **kwargs):
        seen.add(threading.get_ident())
        return clip(*args, **kwargs)
    monkeypatch.setattr(np, "clip", watched)
    activation.hardtanh(np.zeros((4, 3)), 0, 6)
    assert len(seen) == batch_threads
