"""The activation kernels of juanji.functional.activation: erf against math.erf to the last ulp or two; each
forward and backward against torch.nn.functional (kinks included); the stable rewrites against the textbook
references; dtype in = dtype out; ``out=`` writing in place; no overflow warning for |x| up to 1e4."""
import math
import warnings

import numpy as np
import pytest
import torch
import torch.nn.functional as TF

from juanji.functional import activation as A
from kernel_check import DTYPES, assert_close, torch_vjp

# |x| ranges of the four fits (0.84375, 1.25, 1/0.35, 6) and their edges, tiny and subnormal x, the limits
SPECIAL = [0.0, -0.0, 1e-310, 5e-324, 1e-30, 2 ** -28, 0.84375, np.nextafter(0.84375, 0), 1.25,
           np.nextafter(1.25, 0), 1 / 0.35, np.nextafter(1 / 0.35, 0), 6.0, np.nextafter(6.0, 0), 27.0, 1e300]


def test_erf_is_within_two_ulps_of_math_erf_in_float64():
    x = np.concatenate([np.linspace(-7, 7, 140_001), SPECIAL, np.negative(SPECIAL),
                        np.random.default_rng(0).standard_normal(10_000) * 3])
    expected = A.erf_reference(x)
    error = np.abs(A.erf(x) - expected)
    assert (error <= 2 * np.spacing(np.abs(expected))).all(), x[np.argmax(error / np.spacing(np.abs(expected)))]
    assert np.signbit(A.erf(np.array(-0.0)))


def test_erf_in_float32_stays_float32_within_two_float32_ulps():
    x = np.linspace(-7, 7, 20_001, dtype=np.float32)
    y = A.erf(x)
    assert y.dtype == np.float32
    expected = A.erf_reference(x.astype(np.float64))
    assert (np.abs(y - expected) <= 2 * np.spacing(np.abs(expected).astype(np.float32))).all()


def test_erf_works_block_by_block_on_any_shape_and_layout(monkeypatch):
    """erf goes through ``plan.ERF_BLOCK`` values at a time (GELU's temporaries were 6.6× its input): blocks
    that end mid-row, a last partial block and a transposed 4-d view give erf of each value, in x's shape."""
    from juanji.functional import plan
    x = np.random.default_rng(1).standard_normal((3, 7, 11, 13)) * 3     # 3003 values
    whole = A.erf(x)                                                       # one block
    monkeypatch.setattr(plan, "ERF_BLOCK", 1000)                           # 4 blocks, the last of 3 values
    for view, expected in ((x, whole), (x.transpose(0, 2, 3, 1), whole.transpose(0, 2, 3, 1))):
        y = A.erf(view)
        assert y.shape == view.shape
        np.testing.assert_array_equal(y, expected)


def test_erf_of_the_limits_and_nan():
    y = A.erf(np.array([np.inf, -np.inf, np.nan, 40.0, -40.0]))
    np.testing.assert_array_equal(y[[0, 1, 3, 4]], [1, -1, 1, -1])
    assert np.isnan(y[2])
    assert A.erf(np.array(0.5)).shape == () and math.isclose(float(A.erf(np.array(0.5))), math.erf(0.5))


# name → (juanji forward, juanji backward(dy, x, y), torch's function, the kinks)
KERNELS = {
    "relu": (A.relu, lambda dy, x, y: A.relu_backward(dy, x), TF.relu, [0]),
    "relu-from-output": (A.relu, lambda dy, x, y: A.relu_backward(dy, y), TF.relu, [0]),
    "leaky_relu": (lambda x: A.leaky_relu(x, 0.2), lambda dy, x, y: A.leaky_relu_backward(dy, x, 0.2),
                   lambda t: TF.leaky_relu(t, 0.2), [0]),
    "leaky_relu-negative": (lambda x: A.leaky_relu(x, -0.3), lambda dy, x, y: A.leaky_relu_backward(dy, x > 0, -0.3),
                            lambda t: TF.leaky_relu(t, -0.3), [0]),
    "hardtanh": (lambda x: A.hardtanh(x, -0.5, 2.0), lambda dy, x, y: A.hardtanh_backward(dy, y, -0.5, 2.0),
                 lambda t: TF.hardtanh(t, -0.5, 2.0), [-0.5, 2.0]),
    "relu6": (lambda x: A.hardtanh(x, 0, 6), lambda dy, x, y: A.hardtanh_backward(dy, x, 0, 6), TF.relu6, [0, 6]),
    "hardsigmoid": (A.hardsigmoid, lambda dy, x, y: A.hardsigmoid_backward(dy, x), TF.hardsigmoid, [-3, 3]),
    "hardswish": (A.hardswish, lambda dy, x, y: A.hardswish_backward(dy, x), TF.hardswish, [-3, 3]),
    "sigmoid": (A.sigmoid, lambda dy, x, y: A.sigmoid_backward(dy, y), torch.sigmoid, []),
    "tanh": (A.tanh, lambda dy, x, y: A.tanh_backward(dy, y), torch.tanh, []),
    "silu": (A.silu, lambda dy, x, y: A.silu_backward(dy, x), TF.silu, []),
    "mish": (A.mish, lambda dy, x, y: A.mish_backward(dy, x), TF.mish, []),
    "gelu": (A.gelu, lambda dy, x, y: A.gelu_backward(dy, x), TF.gelu, []),
    "gelu-tanh": (lambda x: A.gelu(x, "tanh"), lambda dy, x, y: A.gelu_backward(dy, x, "tanh"),
                  lambda t: TF.gelu(t, approximate="tanh"), []),
    "elu": (lambda x: A.elu(x, 0.7), lambda dy, x, y: A.elu_backward(dy, x, 0.7), lambda t: TF.elu(t, 0.7), [0]),
    "selu": (A.selu, lambda dy, x, y: A.selu_backward(dy, x), TF.selu, [0]),
    "softplus": (A.softplus, lambda dy, x, y: A.softplus_backward(dy, x), TF.softplus, []),
    "softplus-beta-threshold": (lambda x: A.softplus(x, 2.5, 4.0),
                                lambda dy, x, y: A.softplus_backward(dy, x, 2.5, 4.0),
                                lambda t: TF.softplus(t, 2.5, 4.0), [1.6]),
    "softplus-negative-beta": (lambda x: A.softplus(x, -1.5, 2.0),
                               lambda dy, x, y: A.softplus_backward(dy, x, -1.5, 2.0),
                               lambda t: TF.softplus(t, -1.5, 2.0), [2.0 / -1.5]),
}


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", KERNELS)
def test_kernel_matches_torch(name, dtype):
    forward, backward, torch_fn, kinks = KERNELS[name]
    rng = np.random.default_rng(1)
    x = (rng.standard_normal((3, 4, 5)) * 4).astype(dtype)
    x.reshape(-1)[:len(kinks)] = kinks
    dy = rng.standard_normal(x.shape).astype(dtype)
    y = forward(x)
    dx = backward(dy, x, y)
    y_t, (dx_t,) = torch_vjp(torch_fn, dy, x)
    if name == "hardsigmoid" and dtype == np.float64:       # torch's one_sixth is 1.0f / 6.0f even in float64
        dx_t = dx_t * ((1 / 6) / float(np.float32(1 / 6)))
    assert y.dtype == dx.dtype == dtype
    assert_close(y, y_t, f"{name} y")
    assert_close(dx, dx_t, f"{name} dx")


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("slopes", [1, 4])
def test_prelu_kernel_and_its_weight_gradient(slopes, dtype):
    rng = np.random.default_rng(2)
    x = rng.standard_normal((3, 4, 2, 5)).astype(dtype)
    x[0, :, 0, 0] = 0
    weight = rng.uniform(-1, 1, slopes).astype(dtype)
    dy = rng.standard_normal(x.shape).astype(dtype)
    dx, dw = A.prelu_backward(dy, x, weight)
    y_t, (dx_t, dw_t) = torch_vjp(TF.prelu, dy, x, weight)
    assert A.prelu(x, weight).dtype == dx.dtype == dw.dtype == dtype and dw.shape == weight.shape
    assert_close(A.prelu(x, weight), y_t, "y")
    assert_close(dx, dx_t, "dx")
    assert_close(dw, dw_t, "dw")


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("axis", [0, 1, -1])
def test_log_softmax_and_softmin_backward_match_torch(axis, dtype):
    rng = np.random.default_rng(3)
    x = (rng.standard_normal((3, 4, 5)) * 5).astype(dtype)
    dy = rng.standard_normal(x.shape).astype(dtype)
    for forward, backward, torch_fn in ((A.log_softmax, A.log_softmax_backward, TF.log_softmax),
                                        (A.softmin, A.softmin_backward, TF.softmin)):
        y = forward(x, axis)
        y_t, (dx_t,) = torch_vjp(lambda t: torch_fn(t, dim=axis), dy, x)
        assert_close(y, y_t, f"{torch_fn.__name__} y")
        assert_close(backward(dy, y, axis), dx_t, f"{torch_fn.__name__} dx")


def test_stable_rewrites_equal_the_textbook_formulas_where_these_do_not_overflow():
    x = np.linspace(-30, 30, 6001)
    assert_close(A.softplus(x), A.softplus_reference(x), "softplus")
    assert_close(A.softplus(x, 0.7, 5.0), A.softplus_reference(x, 0.7, 5.0), "softplus β, threshold")
    assert_close(A.softplus(x, -2.0, 3.0), A.softplus_reference(x, -2.0, 3.0), "softplus β < 0")
    assert_close(A.mish(x), A.mish_reference(x), "mish")
    assert_close(A.gelu(x), x * 0.5 * (1 + A.erf_reference(x / math.sqrt(2))), "gelu")
    assert np.isinf(A.softplus_reference(np.array([100.0], np.float32), threshold=1e3)).all()  # what is avoided
    assert np.isfinite(A.softplus(np.array([100.0], np.float32), threshold=1e3)).all()


EVERY_FORWARD = {
    "relu": A.relu, "leaky_relu": A.leaky_relu, "hardtanh": A.hardtanh, "hardsigmoid": A.hardsigmoid,
    "hardswish": A.hardswish, "sigmoid": A.sigmoid, "tanh": A.tanh, "silu": A.silu, "mish": A.mish, "elu": A.elu,
    "selu": A.selu, "softplus": A.softplus, "gelu": A.gelu, "gelu-tanh": lambda x: A.gelu(x, "tanh"),
    "prelu": lambda x: A.prelu(x, np.full(1, 0.25, x.dtype)), "softmax": A.softmax, "log_softmax": A.log_softmax,
    "softmin": A.softmin,
}
EVERY_BACKWARD = {
    "relu": A.relu_backward, "leaky_relu": A.leaky_relu_backward, "hardtanh": A.hardtanh_backward,
    "hardsigmoid": A.hardsigmoid_backward, "hardswish": A.hardswish_backward, "sigmoid": A.sigmoid_backward,
    "tanh": A.tanh_backward, "silu": A.silu_backward, "mish": A.mish_backward, "elu": A.elu_backward,
    "selu": A.selu_backward, "softplus": A.softplus_backward, "gelu": A.gelu_backward,
    "gelu-tanh": lambda dy, x: A.gelu_backward(dy, x, "tanh"),
    "prelu": lambda dy, x: A.prelu_backward(dy, x, np.full(1, 0.25, x.dtype))[0],
    "softmax": lambda dy, x: A.softmax_backward(dy, A.softmax(x)),
    "log_softmax": lambda dy, x: A.log_softmax_backward(dy, A.log_softmax(x)),
    "softmin": lambda dy, x: A.softmin_backward(dy, A.softmin(x)),
}


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", EVERY_FORWARD)
def test_dtype_in_is_dtype_out_and_1e4_raises_no_warning(name, dtype):
    x = np.array([[-1e4, -100, -3, -1e-3, 0, 1e-3, 3, 100, 1e4]], dtype)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        y = EVERY_FORWARD[name](x)
        dx = EVERY_BACKWARD[name](np.ones_like(x), x)
    assert y.dtype == dx.dtype == dtype and y.shape == dx.shape == x.shape
    assert np.isfinite(y).all() and np.isfinite(dx).all()


@pytest.mark.parametrize("name, forward", [
    ("relu", A.relu), ("leaky_relu", A.leaky_relu), ("hardtanh", A.hardtanh), ("hardsigmoid", A.hardsigmoid),
    ("hardswish", A.hardswish), ("silu", A.silu), ("mish", A.mish), ("elu", A.elu), ("selu", A.selu),
    ("sigmoid", A.sigmoid), ("tanh", A.tanh)])
def test_out_writes_into_the_given_array_even_the_input(name, forward):
    x = np.random.default_rng(4).standard_normal((4, 5)).astype(np.float32) * 4
    expected = forward(x)
    inputs = x.copy()
    assert forward(inputs, out=inputs) is inputs            # in place
    np.testing.assert_array_equal(inputs, expected)
    transposed = np.zeros((5, 4), np.float32).T             # a non-contiguous out
    assert forward(x, out=transposed) is transposed
    np.testing.assert_array_equal(transposed, expected)


@pytest.mark.usefixtures("kernels", "batch_threads")
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("bounds", [(-1.0, 1.0), (0.0, 6.0), (-0.5, 2.0)])
def test_hardtanh_backward_is_torchs_where_dy_is_infinite_or_nan(bounds, dtype):
    """dY ±∞, NaN, finite and −0 against x inside, outside, on both bounds, ±∞ and NaN (every pair, 4 × 64 values):
    torch's dX exactly, signs of zero included — 0 outside, never 0 · ∞ = NaN; serially and split over 2 threads;
    x or the output (ReLU6's and Hardtanh's layers pass y).  Whole vectors: on a tail of a few values torch's
    scalar loop lets dY through where x is NaN, its vector loop (and juanji) gives 0."""
    low, high = bounds
    xs = np.array([low - 1, low, (low + high) / 2, np.nextafter(high, low), high, high + 1, np.nan, np.inf,
                   -np.inf, -0.0], dtype)
    dys = np.array([1.5, -2.0, np.inf, -np.inf, np.nan, -0.0], dtype)
    x = np.resize(np.repeat(xs, dys.size), 4 * 64).reshape(4, 64)
    dy = np.resize(np.tile(dys, xs.size), 4 * 64).reshape(4, 64)
    want = torch.ops.aten.hardtanh_backward(torch.from_numpy(dy), torch.from_numpy(x), low, high).numpy()
    y = A.hardtanh(x, low, high)
    for kept in (x, y):
        got = A.hardtanh_backward(dy, kept, low, high)
        assert got.dtype == dtype
        np.testing.assert_array_equal(got, want)
        np.testing.assert_array_equal(np.signbit(got), np.signbit(want))
    _, (autograd,) = torch_vjp(lambda t: TF.hardtanh(t, low, high), dy, x)
    np.testing.assert_array_equal(A.hardtanh_backward(dy, x, low, high), autograd)
