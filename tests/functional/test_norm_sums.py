"""The sums of NumPy's normalisation kernels as BLAS products (juanji.functional.norm.per_channel_sum, and layer and
group norm's backward from x itself, S₂ − μ · S₁ rather than a pass writing x − μ): against NumPy's own sums, the
row-by-row reference and torch, over many shapes, on inputs whose mean is far from zero (where a sum of x · dY
minus μ · Σ dY cancels most), in blocks down to a row each, serially and over two threads, on both kernel sets."""
import numpy as np
import pytest
import torch.nn.functional as TF
from hypothesis import given, settings
from hypothesis import strategies as st

from juanji.functional import norm as N
from juanji.functional import plan
from juanji.functional import sample_norm as S
from kernel_check import assert_close, torch_vjp

pytestmark = pytest.mark.usefixtures("kernels", "batch_threads")

DTYPES = st.sampled_from([np.float64, np.float32])
# (dtype, the inputs' mean in standard deviations): float32 keeps x̂ to the suite's 1e-4 only while |μ|/σ stays
# small (at |μ| = 10σ, rows of 2 to 5 values, NumPy's kernels before the sums from x differed from torch by
# up to 7e-5, after by up to 8e-5); float64 goes far from zero
OFFSETS = st.sampled_from([(np.float64, 0.0), (np.float64, 10.0), (np.float64, -100.0), (np.float32, 0.0),
                           (np.float32, 3.0)])


def inputs(seed, dtype, offset, *shapes):
    rng = np.random.default_rng(seed)
    return [(rng.standard_normal(shape) + offset * (i == 0)).astype(dtype) for i, shape in enumerate(shapes)]


def check_against_torch(ours, theirs, x, dy, gamma, beta):
    """ours(x, γ, β) → (y, cache), backward ``backward(dy, cache)`` as a pair; against torch's y, dx, dγ, dβ."""
    forward, backward = ours
    y, cache = forward(x, gamma, beta)
    dx, dgamma, dbeta = backward(dy, cache)
    y_t, (dx_t, dgamma_t, dbeta_t) = torch_vjp(theirs, dy, x, gamma, beta)
    assert (dgamma is None) == (gamma is None)
    for got, want, what in ((y, y_t, "y"), (dx, dx_t, "dx"), (dgamma, dgamma_t, "dγ"), (dbeta, dbeta_t, "dβ")):
        if want is not None:        # torch has no dγ, dβ without γ, β
            assert got.dtype == x.dtype
            assert_close(got, want, what)


@settings(max_examples=30, deadline=None)
@given(st.integers(1, 5), st.integers(1, 6), st.lists(st.integers(0, 9), max_size=2), DTYPES, st.integers(0, 2**16))
def test_the_per_channel_sums_are_numpys(n, c, spatial, dtype, seed):
    x, = inputs(seed, dtype, 3.0, (n, c, *spatial))
    assert N.per_channel_sum(x).dtype == dtype
    assert_close(N.per_channel_sum(x), x.astype(np.float64).sum(axis=(0, *range(2, x.ndim))), "Σ", dtype)


@settings(max_examples=30, deadline=None)
@given(st.integers(0, 5), st.integers(1, 3), st.integers(1, 40), st.booleans(), OFFSETS,      # 0: no rows
       st.sampled_from([1, 300, plan.SAMPLE_NORM_BLOCK_BYTES]), st.integers(0, 2**16))
def test_layer_norm_matches_torch_and_the_reference(m, rows, k, affine, dtype_and_offset, block_bytes, seed):
    dtype, offset = dtype_and_offset
    shape = (m, rows, k)
    x, dy, gamma, beta = inputs(seed, dtype, offset, shape, shape, (k,), (k,))
    gamma, beta = (gamma, beta) if affine else (None, None)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(plan, "SAMPLE_NORM_BLOCK_BYTES", block_bytes)
        check_against_torch((lambda x, g, b: S.layer_norm(x, 1, g, b, 1e-3), S.normalization_backward),
                            lambda t, g, b: TF.layer_norm(t, (k,), g, b, 1e-3), x, dy, gamma, beta)
        if not affine and dtype == np.float64 and m:
            xhat, cache = S.layer_norm(x, 1, eps=1e-3)
            as_rows = x.reshape(-1, k)
            assert_close(xhat.reshape(-1, k), S.standardize_reference(as_rows, 1e-3), "x̂")
            assert_close(S.normalization_backward(dy, cache)[0].reshape(-1, k),
                         S.standardize_backward_reference(dy.reshape(-1, k), as_rows, 1e-3), "dx")


@settings(max_examples=30, deadline=None)
@given(st.integers(1, 4), st.sampled_from([(1, 1), (2, 1), (2, 3), (4, 2)]),
       st.lists(st.integers(2, 9), min_size=1, max_size=2),       # torch's least: 2 values a group
       st.booleans(), OFFSETS, st.sampled_from([1, 300, plan.SAMPLE_NORM_BLOCK_BYTES]), st.integers(0, 2**16))
def test_group_norm_matches_torch(n, groups_and_width, spatial, affine, dtype_and_offset, block_bytes, seed):
    dtype, offset = dtype_and_offset
    groups, width = groups_and_width
    c = groups * width
    x, dy, gamma, beta = inputs(seed, dtype, offset, (n, c, *spatial), (n, c, *spatial), (c,), (c,))
    gamma, beta = (gamma, beta) if affine else (None, None)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(plan, "SAMPLE_NORM_BLOCK_BYTES", block_bytes)
        check_against_torch((lambda x, g, b: S.group_norm(x, groups, g, b, 1e-3), S.normalization_backward),
                            lambda t, g, b: TF.group_norm(t, groups, g, b, 1e-3), x, dy, gamma, beta)


@settings(max_examples=30, deadline=None)
@given(st.integers(2, 5), st.integers(1, 4), st.lists(st.integers(1, 9), max_size=2), OFFSETS, st.integers(0, 2**16))
def test_batch_norm_in_training_matches_torch(n, c, spatial, dtype_and_offset, seed):
    dtype, offset = dtype_and_offset
    x, dy, gamma, beta = inputs(seed, dtype, offset, (n, c, *spatial), (n, c, *spatial), (c,), (c,))
    check_against_torch((lambda x, g, b: N.batch_norm(x, g, b, None, None, True, 0.1, 1e-3), N.batch_norm_backward),
                        lambda t, g, b: TF.batch_norm(t, None, None, g, b, True, 0.1, 1e-3), x, dy, gamma, beta)
