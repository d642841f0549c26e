"""The per-sample normalisation kernels (juanji.functional.sample_norm), on NumPy's kernels and the compiled
ones: the rows each norm standardises against the row-by-row reference (the Jacobian written out), and layer,
group and instance norm against torch.nn.functional — forward, dx, dγ, dβ and instance norm's running
statistics — in float64 and float32 (kept float32), serially and with the rows split over two threads."""
import numpy as np
import pytest
import torch
import torch.nn.functional as TF

from juanji.functional import plan
from juanji.functional import sample_norm as S
from kernel_check import DTYPES, assert_close, torch_vjp

pytestmark = pytest.mark.usefixtures("kernels", "batch_threads")


def arrays(rng, dtype, *shapes):
    return [(rng.standard_normal(shape) * 2 + 0.5).astype(dtype) for shape in shapes]


# each norm without γ, β: the rows it standardises, as (M, K)
AS_ROWS = {"layer": (lambda x: S.layer_norm(x, 2, eps=1e-3), lambda x: x.reshape(len(x), -1)),
           "group": (lambda x: S.group_norm(x, 2, eps=1e-3), lambda x: x.reshape(len(x) * 2, -1)),
           "instance": (lambda x: S.instance_norm(x, eps=1e-3), lambda x: x.reshape(x.shape[0] * x.shape[1], -1))}


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", [(1, 2, 1), (5, 2, 1), (3, 2, 7), (8, 4, 33)])
@pytest.mark.parametrize("norm", AS_ROWS)
def test_the_rows_match_their_reference(norm, shape, dtype):
    forward, as_rows = AS_ROWS[norm]
    x, dxhat = arrays(np.random.default_rng(0), dtype, shape, shape)
    xhat, cache = forward(x)
    dx, dgamma, dbeta = S.normalization_backward(dxhat, cache)
    assert xhat.dtype == dx.dtype == dtype and dgamma is None and dbeta.dtype == dtype
    rows = as_rows(x.astype(np.float64))
    assert_close(xhat, S.standardize_reference(rows, 1e-3).reshape(shape), "x̂", dtype)
    assert_close(cache.mean.reshape(-1), rows.mean(axis=1), "μ", dtype)
    assert_close(cache.inv_std.reshape(-1), 1 / np.sqrt(rows.var(axis=1) + 1e-3), "1/σ", dtype)
    dx_rows = S.standardize_backward_reference(as_rows(dxhat.astype(np.float64)), rows, 1e-3)
    assert_close(dx, dx_rows.reshape(shape), "dx", dtype)


@pytest.mark.parametrize("norm", ["layer", "group", "instance"])
def test_blocks_of_one_sample_give_the_same_numbers(norm, monkeypatch):
    """NumPy's kernels go block by block (``plan.SAMPLE_NORM_BLOCK_BYTES``): blocks of one leading index each,
    the least there is, against the whole batch in one block."""
    x, dy, gamma, beta = arrays(np.random.default_rng(7), np.float64, (5, 4, 3), (5, 4, 3), (4, 3), (4, 3))
    forward = {"layer": lambda: S.layer_norm(x, 2, gamma, beta),
               "group": lambda: S.group_norm(x, 2, gamma[:, 0], beta[:, 0]),
               "instance": lambda: S.instance_norm(x, gamma[:, 0], beta[:, 0])}[norm]
    results = []
    for block_bytes in (1 << 20, 1):
        monkeypatch.setattr(plan, "SAMPLE_NORM_BLOCK_BYTES", block_bytes)
        y, cache = forward()
        results.append((y, *S.normalization_backward(dy, cache)))
    for got, want in zip(*results):
        np.testing.assert_allclose(got, want, rtol=1e-13, atol=1e-13)


def test_the_references_are_torchs():
    x, dxhat = arrays(np.random.default_rng(1), np.float64, (4, 6), (4, 6))
    y, (dx,) = torch_vjp(lambda t: TF.layer_norm(t, (6,), eps=1e-3), dxhat, x)
    assert_close(S.standardize_reference(x, 1e-3), y, "x̂")
    assert_close(S.standardize_backward_reference(dxhat, x, 1e-3), dx, "dx")


def check(ours, theirs, x, gamma, beta, dtype):
    """ours(x, γ, β) → (y, cache) against theirs(x, γ, β) on torch: y, then dx, dγ, dβ from the cache."""
    dy, = arrays(np.random.default_rng(9), dtype, x.shape)
    y, cache = ours(x, gamma, beta)
    dx, dgamma, dbeta = S.normalization_backward(dy, cache)
    y_t, (dx_t, dgamma_t, dbeta_t) = torch_vjp(theirs, dy, x, gamma, beta)
    assert y.dtype == dx.dtype == dtype and y.shape == dx.shape == x.shape
    assert_close(y, y_t, "y")
    assert_close(dx, dx_t, "dx")
    if gamma is None:
        assert dgamma is None
    else:
        assert dgamma.dtype == dtype and dgamma.shape == gamma.shape
        assert_close(dgamma, dgamma_t, "dγ")
    if beta is not None:
        assert dbeta.dtype == dtype
        assert_close(dbeta, dbeta_t, "dβ")


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape, k", [((4, 6), 1), ((2, 3, 4, 5), 2), ((3, 1, 2), 3), ((5,), 1), ((2, 3, 1), 1)])
@pytest.mark.parametrize("affine", ["both", "scale", "none"])
def test_layer_norm_matches_torch(shape, k, affine, dtype):
    rng = np.random.default_rng(2)
    x, gamma, beta = arrays(rng, dtype, shape, shape[-k:], shape[-k:])
    gamma, beta = (gamma if affine != "none" else None), (beta if affine == "both" else None)
    check(lambda x, g, b: S.layer_norm(x, k, g, b, 1e-3),
          lambda t, g, b: TF.layer_norm(t, shape[-k:], g, b, 1e-3), x, gamma, beta, dtype)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape, groups", [((2, 6), 3), ((3, 4, 5), 2), ((2, 6, 3, 4), 3), ((1, 4, 2, 2, 2), 4),
                                           ((3, 2, 5), 1)])
@pytest.mark.parametrize("affine", [True, False])
def test_group_norm_matches_torch(shape, groups, affine, dtype):
    rng = np.random.default_rng(3)
    x, gamma, beta = arrays(rng, dtype, shape, shape[1:2], shape[1:2])
    gamma, beta = (gamma, beta) if affine else (None, None)
    check(lambda x, g, b: S.group_norm(x, groups, g, b, 1e-3),
          lambda t, g, b: TF.group_norm(t, groups, g, b, 1e-3), x, gamma, beta, dtype)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", [(2, 3, 5), (3, 2, 4, 3), (1, 4, 2, 2)])
@pytest.mark.parametrize("use_input_stats", [True, False])
def test_instance_norm_matches_torch_and_updates_the_running_statistics(shape, use_input_stats, dtype):
    rng = np.random.default_rng(4)
    x, gamma, beta, mean = arrays(rng, dtype, shape, shape[1:2], shape[1:2], shape[1:2])
    var = rng.uniform(0.5, 2, shape[1]).astype(dtype)
    ours, theirs = (mean.copy(), var.copy()), (torch.from_numpy(mean.copy()), torch.from_numpy(var.copy()))
    check(lambda x, g, b: S.instance_norm(x, g, b, *ours, use_input_stats, 0.3, 1e-3),
          lambda t, g, b: TF.instance_norm(t, *theirs, g, b, use_input_stats, 0.3, 1e-3), x, gamma, beta, dtype)
    for got, want in zip(ours, theirs):
        assert got.dtype == dtype
        assert_close(got, want, "running statistics")


def test_instance_norm_without_running_statistics_and_an_empty_batch():
    x = np.random.default_rng(5).standard_normal((0, 3, 4))
    y, cache = S.instance_norm(x, None, None, np.zeros(3), np.ones(3))
    assert y.shape == x.shape and S.normalization_backward(y, cache)[0].shape == x.shape


def test_the_kernels_do_not_change_their_inputs():
    rng = np.random.default_rng(6)
    x, gamma, beta, dy = arrays(rng, np.float64, (2, 4, 3), (4,), (4,), (2, 4, 3))
    copies = [a.copy() for a in (x, gamma, beta, dy)]
    S.normalization_backward(dy, S.group_norm(x, 2, gamma, beta)[1])
    for array, copy in zip((x, gamma, beta, dy), copies):
        np.testing.assert_array_equal(array, copy)
