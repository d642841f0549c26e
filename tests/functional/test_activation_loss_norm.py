"""Activations, softmax, fused cross-entropy and batch norm kernels against torch.nn.functional."""
import warnings

import numpy as np
import pytest
import torch
import torch.nn.functional as TF

from juanji.functional import activation as A
from juanji.functional import loss as L
from juanji.functional import norm as N
from kernel_check import DTYPES, assert_close, leaf, torch_vjp

# Every test runs on NumPy's and on the compiled kernels (``kernels``), serially and with the batch split
# over two threads (``batch_threads``).
pytestmark = pytest.mark.usefixtures("kernels", "batch_threads")

SHAPES = [(5, 7), (2, 3, 4, 5), (1, 6)]


def _x(shape, dtype, seed=0, scale=3.0):
    return (np.random.default_rng(seed).standard_normal(shape) * scale).astype(dtype)


# name: (forward, backward taking (dy, x, y), torch function)
ELEMENTWISE = {
    "relu": (A.relu, lambda dy, x, y: A.relu_backward(dy, x), TF.relu),
    "leaky_relu": (A.leaky_relu, lambda dy, x, y: A.leaky_relu_backward(dy, x), TF.leaky_relu),
    "leaky_relu_0.2": (lambda x: A.leaky_relu(x, 0.2), lambda dy, x, y: A.leaky_relu_backward(dy, x, 0.2),
                       lambda t: TF.leaky_relu(t, 0.2)),
    "sigmoid": (A.sigmoid, lambda dy, x, y: A.sigmoid_backward(dy, y), torch.sigmoid),
    "tanh": (A.tanh, lambda dy, x, y: A.tanh_backward(dy, y), torch.tanh),
}


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("name", ELEMENTWISE)
def test_elementwise_activation_matches_torch(name, shape, dtype):
    forward, backward, torch_fn = ELEMENTWISE[name]
    x = _x(shape, dtype)
    dy = _x(shape, dtype, seed=1, scale=1.0)
    y = forward(x)
    dx = backward(dy, x, y)
    y_t, (dx_t,) = torch_vjp(torch_fn, dy, x)
    assert y.dtype == dx.dtype == dtype and y.shape == dx.shape == shape
    assert_close(y, y_t, f"{name} y")
    assert_close(dx, dx_t, f"{name} dx")


@pytest.mark.parametrize("name", ["relu", "leaky_relu"])
def test_kink_at_zero_has_torchs_gradient(name):
    forward, backward, torch_fn = ELEMENTWISE[name]
    x = np.array([[-1.0, 0.0, 1.0, -0.0]])
    dy = np.full_like(x, 2.0)
    _, (dx_t,) = torch_vjp(torch_fn, dy, x)
    np.testing.assert_array_equal(backward(dy, x, forward(x)), dx_t)


@pytest.mark.parametrize("dtype", DTYPES)
def test_sigmoid_and_tanh_saturate_without_overflow(dtype):
    x = np.array([-1e4, -800.0, -50.0, 0.0, 50.0, 800.0, 1e4], dtype=dtype)
    with warnings.catch_warnings():
        warnings.simplefilter("error")                   # an overflow in exp would be a RuntimeWarning
        y = A.sigmoid(x)
        t = A.tanh(x)
    assert y.dtype == t.dtype == dtype
    assert_close(y, torch.sigmoid(torch.from_numpy(x)), "sigmoid")
    assert_close(t, torch.tanh(torch.from_numpy(x)), "tanh")


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape, axis", [((4, 7), 1), ((4, 7), -1), ((2, 3, 4, 5), 1), ((2, 3, 4, 5), -1)])
def test_softmax_and_log_softmax_match_torch(shape, axis, dtype):
    x, dy = _x(shape, dtype), _x(shape, dtype, seed=1, scale=1.0)
    y = A.softmax(x, axis=axis)
    dx = A.softmax_backward(dy, y, axis=axis)
    y_t, (dx_t,) = torch_vjp(lambda t: TF.softmax(t, dim=axis), dy, x)
    assert y.dtype == dx.dtype == dtype
    assert_close(y, y_t, "softmax")
    assert_close(dx, dx_t, "softmax dx")
    assert_close(A.log_softmax(x, axis=axis), TF.log_softmax(torch.from_numpy(x), dim=axis), "log_softmax")


@pytest.mark.parametrize("dtype", DTYPES)
def test_softmax_of_huge_logits_is_finite(dtype):
    x = np.array([[1e4, -1e4, 0.0], [3e4, 3e4, 3e4]], dtype=dtype)
    np.testing.assert_allclose(A.softmax(x, axis=1), [[1, 0, 0], [1 / 3, 1 / 3, 1 / 3]], rtol=1e-6)
    assert np.isfinite(A.log_softmax(x, axis=1)).all()


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("smoothing", [0.0, 0.1, 0.5, 1.0])
@pytest.mark.parametrize("n, c", [(1, 2), (6, 5), (16, 10)])
def test_cross_entropy_matches_torch(n, c, smoothing, dtype):
    rng = np.random.default_rng(n + c)
    logits = _x((n, c), dtype, seed=n * c)
    labels = rng.integers(0, c, n)
    loss, cache = L.cross_entropy(logits, labels, smoothing)
    dlogits = L.cross_entropy_backward(cache)
    t = leaf(logits)
    loss_t = TF.cross_entropy(t, torch.from_numpy(labels), label_smoothing=smoothing)
    loss_t.backward()
    assert loss.dtype == dlogits.dtype == dtype and np.ndim(loss) == 0
    assert_close(loss, loss_t, "loss")
    assert_close(dlogits, t.grad, "dlogits")


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("smoothing", [0.0, 0.2])
def test_cross_entropy_with_huge_logits_has_no_nan(smoothing, dtype):
    logits = np.array([[1e4, -1e4, 0.0], [-1e4, 1e4, 1e4], [0.0, 0.0, 1e4]], dtype=dtype)
    labels = np.array([0, 0, 1])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        loss, cache = L.cross_entropy(logits, labels, smoothing)
        dlogits = L.cross_entropy_backward(cache)
    t = leaf(logits)
    loss_t = TF.cross_entropy(t, torch.from_numpy(labels), label_smoothing=smoothing)
    loss_t.backward()
    assert np.isfinite(loss) and np.isfinite(dlogits).all()
    assert_close(loss, loss_t, "loss", dtype=dtype)
    assert_close(dlogits, t.grad, "dlogits", dtype=dtype)


# -- batch norm -------------------------------------------------------------------------------------

@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", [(8, 3), (4, 3, 5), (2, 3, 4, 5), (1, 2, 3, 3)])
@pytest.mark.parametrize("momentum, eps", [(0.1, 1e-5), (0.3, 1e-3)])
def test_batch_norm_training_matches_torch_over_several_steps(shape, momentum, eps, dtype):
    """Output, all three gradients and the running statistics after each of three steps."""
    rng = np.random.default_rng(5)
    c = shape[1]
    gamma, beta = rng.uniform(0.5, 1.5, c).astype(dtype), rng.standard_normal(c).astype(dtype)
    mean, var = np.zeros(c, dtype), np.ones(c, dtype)
    mean_t, var_t = torch.from_numpy(mean.copy()), torch.from_numpy(var.copy())
    for step in range(3):
        x = (rng.standard_normal(shape) * (step + 1) + step).astype(dtype)
        dy = rng.standard_normal(shape).astype(dtype)
        y, cache = N.batch_norm(x, gamma, beta, mean, var, True, momentum, eps)
        dx, dgamma, dbeta = N.batch_norm_backward(dy, cache)
        fn = lambda xt, g, b: TF.batch_norm(xt, mean_t, var_t, g, b, True, momentum, eps)
        y_t, (dx_t, dgamma_t, dbeta_t) = torch_vjp(fn, dy, x, gamma, beta)
        for name, ours, theirs in [("y", y, y_t), ("dx", dx, dx_t), ("dgamma", dgamma, dgamma_t),
                                   ("dbeta", dbeta, dbeta_t), ("running_mean", mean, mean_t),
                                   ("running_var", var, var_t)]:
            assert ours.dtype == dtype, f"{name} is {ours.dtype}"
            assert_close(ours, theirs, f"step {step} {name}")


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", [(8, 3), (4, 3, 5), (2, 3, 4, 5), (1, 3, 1, 1)])
def test_batch_norm_eval_matches_torch_and_leaves_statistics_alone(shape, dtype):
    rng = np.random.default_rng(6)
    c = shape[1]
    gamma, beta = rng.uniform(0.5, 1.5, c).astype(dtype), rng.standard_normal(c).astype(dtype)
    mean, var = rng.standard_normal(c).astype(dtype), rng.uniform(0.5, 2.0, c).astype(dtype)
    before = mean.copy(), var.copy()
    x, dy = rng.standard_normal(shape).astype(dtype), rng.standard_normal(shape).astype(dtype)
    y, cache = N.batch_norm(x, gamma, beta, mean, var, False)
    dx, dgamma, dbeta = N.batch_norm_backward(dy, cache)
    fn = lambda xt, g, b: TF.batch_norm(xt, torch.from_numpy(mean), torch.from_numpy(var), g, b, False)
    y_t, (dx_t, dgamma_t, dbeta_t) = torch_vjp(fn, dy, x, gamma, beta)
    for name, ours, theirs in [("y", y, y_t), ("dx", dx, dx_t), ("dgamma", dgamma, dgamma_t), ("dbeta", dbeta, dbeta_t)]:
        assert ours.dtype == dtype
        assert_close(ours, theirs, name)
    np.testing.assert_array_equal(mean, before[0])
    np.testing.assert_array_equal(var, before[1])


def test_batch_norm_training_refuses_one_value_per_channel():
    with pytest.raises(ValueError, match=r"more than 1 value per channel.*\(1, 3\)"):
        N.batch_norm(np.ones((1, 3)), np.ones(3), np.zeros(3), np.zeros(3), np.ones(3), True)
