"""juanji.functional.batch_norm for the layers' options: without running statistics (the batch's, as
track_running_stats=False asks for in eval too), and with a momentum that is the cumulative average's 1/t —
on NumPy's and on the compiled kernels, against torch.nn.functional.batch_norm."""
import numpy as np
import pytest
import torch
import torch.nn.functional as TF

from juanji.functional import norm as N
from kernel_check import DTYPES, assert_close, torch_vjp

pytestmark = pytest.mark.usefixtures("kernels", "batch_threads")


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", [(4, 3), (2, 3, 5), (3, 2, 3, 4)])
def test_without_running_statistics_the_batch_normalises(shape, dtype):
    rng = np.random.default_rng(0)
    x, dy = (rng.standard_normal(shape) * 3 + 1).astype(dtype), rng.standard_normal(shape).astype(dtype)
    gamma, beta = rng.standard_normal(shape[1]).astype(dtype), rng.standard_normal(shape[1]).astype(dtype)
    y, cache = N.batch_norm(x, gamma, beta, None, None, True, 0.1, 1e-3)
    dx, dgamma, dbeta = N.batch_norm_backward(dy, cache)
    y_t, (dx_t, dgamma_t, dbeta_t) = torch_vjp(lambda t, g, b: TF.batch_norm(t, None, None, g, b, True, 0.1, 1e-3),
                                               dy, x, gamma, beta)
    for ours, theirs, what in ((y, y_t, "y"), (dx, dx_t, "dx"), (dgamma, dgamma_t, "dγ"), (dbeta, dbeta_t, "dβ")):
        assert ours.dtype == dtype
        assert_close(ours, theirs, what)


def test_without_running_statistics_training_must_be_true():
    with pytest.raises(ValueError, match="without running statistics, training must be True"):
        N.batch_norm(np.ones((2, 3)), np.ones(3), np.zeros(3), None, None, False)


@pytest.mark.parametrize("dtype", DTYPES)
def test_a_cumulative_average_is_a_momentum_of_one_over_t(dtype):
    """momentum 1/t at the t-th batch (what BatchNorm with momentum=None passes): the running statistics are the
    mean of the batches' (unbiased variances), as torch's."""
    rng = np.random.default_rng(1)
    mean, var = np.zeros(2, dtype), np.ones(2, dtype)
    mean_t, var_t = torch.zeros(2, dtype=torch.from_numpy(mean).dtype), torch.ones(2, dtype=torch.from_numpy(var).dtype)
    batches = [(rng.standard_normal((5, 2, 3)) * (t + 1) + t).astype(dtype) for t in range(4)]
    for t, x in enumerate(batches, start=1):
        N.batch_norm(x, np.ones(2, dtype), np.zeros(2, dtype), mean, var, True, 1 / t)
        TF.batch_norm(torch.from_numpy(x), mean_t, var_t, None, None, True, 1 / t)
    assert mean.dtype == var.dtype == dtype
    assert_close(mean, mean_t, "running mean")
    assert_close(var, var_t, "running var")
    assert_close(mean, np.mean([x.mean(axis=(0, 2)) for x in batches], axis=0), "the batches' mean", dtype)


def test_an_empty_batch_without_running_statistics_gives_an_empty_output():
    y, cache = N.batch_norm(np.ones((0, 3, 2)), np.ones(3), np.zeros(3), None, None, True)
    dx, dgamma, dbeta = N.batch_norm_backward(np.ones((0, 3, 2)), cache)
    assert y.shape == dx.shape == (0, 3, 2)
    np.testing.assert_array_equal(dgamma, 0)
    np.testing.assert_array_equal(dbeta, 0)
