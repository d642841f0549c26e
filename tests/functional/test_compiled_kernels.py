"""The compiled kernels (juanji.functional.compiled): each loop against NumPy's kernel and PyTorch (forward
and backward, float64 and float32, uneven batches, 1 and 2 threads), the uncompiled loop against the
compiled one, caches shared between the backends, and Numba's threads following juanji's.  The layer and
kernel tests of tests/functional and tests/nn run on both backends too (the ``kernels`` fixture)."""
import os
import subprocess
import sys

import numpy as np
import pytest
import torch
import torch.nn.functional as TF
from hypothesis import example, given, settings
from hypothesis import strategies as st

import juanji
from juanji.functional import activation, conv, norm, plan, pool
from juanji.functional.compiled import activation as compiled_activation
from juanji.functional.compiled import depthwise as compiled_depthwise
from juanji.functional.plan import ConvPlan
from juanji.functional.compiled import norm as compiled_norm
from juanji.functional.compiled import pool as compiled_pool
from juanji.runtime import kernels, threads
from kernel_check import DTYPES, assert_close, torch_vjp

needs_numba = pytest.mark.skipif(not kernels.numba_available(), reason="Numba is not installed")

# (N, C, H, W), filters per channel m, conv keyword arguments: odd batches split unevenly over 2 threads
DEPTHWISE_CASES = [
    pytest.param((3, 4, 9, 8), 1, dict(stride=1, padding=1), id="3x3-same"),
    pytest.param((5, 3, 7, 7), 2, dict(stride=2, padding=1), id="multiplier2-stride2"),
    pytest.param((2, 2, 8, 9), 1, dict(stride=(2, 1), padding=(0, 2), dilation=(2, 1)), id="dilation-asymmetric"),
    pytest.param((1, 3, 6, 6), 3, dict(stride=(1, 3), padding=2, dilation=(1, 2)), id="stride3-wide-padding"),
    pytest.param((3, 2, 5, 5), 1, dict(stride=1, padding=0), id="valid"),
    pytest.param((3, 3, 7, 6), 1, dict(stride=1, padding=2), id="3x3-pad2"),
    pytest.param((3, 2, 6, 7), 2, dict(stride=1, padding=1), id="3x3-multiplier2"),
    pytest.param((3, 3, 8, 9), 1, dict(stride=2, padding=1), id="3x3-stride2"),
]


# NumPy's kernels for a depthwise layer: one GEMM per group over the batch
GROUPED = ConvPlan("grouped", "grouped", "col2im")
GENERAL_DEPTHWISE = ConvPlan("depthwise", "depthwise", "depthwise")


@pytest.mark.usefixtures("numba_kernels")
def test_depthwise_layers_use_the_compiled_loops_from_32x32_maps_on_and_3x3_stride_1_or_2_always(monkeypatch):
    """3×3 at stride 1 or 2 by the row loops, or with one filter per channel and at most
    DEPTHWISE_CHANNELS_MAX_PIXELS output pixels (6×6 here) by the channels-innermost ones."""
    monkeypatch.setattr(plan, "DEPTHWISE_MIN_PIXELS", 32 * 32)
    layers = {"stride 1": ((1, 1), ((1, 1), (1, 1)), (1, 1)), "stride 2": ((2, 2), ((1, 1), (1, 1)), (1, 1)),
              "dilation 2": ((1, 1), ((2, 2), (2, 2)), (2, 2))}
    chosen = {(size, name): plan.plan_conv((2, 3, size, size), (3, 1, 3, 3), stride, pads, dilation, 3).forward
              for size in (6, 31, 32) for name, (stride, pads, dilation) in layers.items()}
    assert [chosen[size, "dilation 2"] for size in (6, 31, 32)] == ["depthwise_channels_last", "depthwise_shifts",
                                                                    "depthwise"]
    assert [chosen[size, "stride 1"] for size in (6, 31, 32)] == ["depthwise_channels"] + ["depthwise_rows"] * 2
    assert [chosen[size, "stride 2"] for size in (6, 31, 32)] == ["depthwise_channels"] + ["depthwise_rows"] * 2
    assert plan.plan_conv((2, 3, 8, 8), (3, 1, 3, 3), (1, 1), ((1, 1), (1, 1)), (1, 1), 3).input_grad == "depthwise_rows"
    assert plan.plan_conv((2, 3, 8, 8), (6, 1, 3, 3), (1, 1), ((1, 1), (1, 1)), (1, 1), 3).input_grad == \
        "depthwise_scatter"


def depthwise_gradients(x, w, b, dy, c, kwargs, forced=None):
    """(y, dx, dW) of conv2d, by ``forced`` where given, and the plan the forward kept."""
    y, cache = conv.conv2d(x, w, b, groups=c, plan=forced, **kwargs)
    dx, dw, _ = conv.conv2d_backward(dy, cache)
    return y, dx, dw, cache[-1]


@pytest.mark.usefixtures("batch_threads", "numba_kernels")
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape, m, kwargs", DEPTHWISE_CASES)
@pytest.mark.parametrize("bias", [True, False])
def test_depthwise_matches_numpy_and_torch(shape, m, kwargs, bias, dtype):
    rng = np.random.default_rng(0)
    c = shape[1]
    x = rng.standard_normal(shape).astype(dtype)
    w = rng.standard_normal((m * c, 1, 3, 3)).astype(dtype)
    b = rng.standard_normal(m * c).astype(dtype) if bias else None
    dy = rng.standard_normal(conv.conv2d(x, w, b, groups=c, plan=GROUPED, **kwargs)[0].shape).astype(dtype)
    y_numpy, dx_numpy, dw_numpy, _ = depthwise_gradients(x, w, b, dy, c, kwargs, GROUPED)
    y, dx, dw, chosen = depthwise_gradients(x, w, b, dy, c, kwargs)
    assert chosen.forward in ("depthwise", "depthwise_rows", "depthwise_channels")
    y_t, (dx_t, dw_t, _) = torch_vjp(lambda t, u, v: TF.conv2d(t, u, v, groups=c, **kwargs), dy, x, w, b)
    assert y.dtype == dx.dtype == dw.dtype == dtype
    for name, got, numpy_, torch_ in (("y", y, y_numpy, y_t), ("dx", dx, dx_numpy, dx_t), ("dW", dw, dw_numpy, dw_t)):
        assert_close(got, torch_, f"{name} vs torch")
        assert_close(got, numpy_, f"{name} vs numpy", dtype=dtype)


@settings(max_examples=60, deadline=None)
@given(st.integers(1, 4), st.integers(1, 3), st.integers(1, 3), st.tuples(st.integers(1, 4), st.integers(1, 4)),
       st.tuples(st.integers(1, 3), st.integers(1, 3)), st.tuples(st.integers(0, 3), st.integers(0, 3)),
       st.tuples(st.integers(1, 2), st.integers(1, 2)), st.integers(0, 2**16))
# an offset whose every read falls on the padding (its slice of dx once ran from the row's end: wrong dx)
@example(n=1, c=1, m=1, kernel=(1, 3), stride=(1, 2), padding=(0, 2), dilation=(1, 2), seed=303)
@pytest.mark.usefixtures("numba_kernels")
def test_depthwise_matches_the_slow_reference_on_random_geometry(n, c, m, kernel, stride, padding, dilation, seed):
    """Any kernel size, stride, padding and dilation, including windows that only partly cover the input."""
    reach = [d * (k - 1) + 1 - 2 * p for k, d, p in zip(kernel, dilation, padding)]
    rng = np.random.default_rng(seed)
    h, w = (max(1, size) + int(rng.integers(0, 5)) for size in reach)
    x = rng.standard_normal((n, c, h, w))
    w, b = rng.standard_normal((m * c, 1, *kernel)), rng.standard_normal(m * c)
    kwargs = dict(stride=stride, padding=padding, dilation=dilation, groups=c)
    expected = conv.conv2d_reference(x, w, b, **kwargs)
    dy = rng.standard_normal(expected.shape)
    dx_ref, dw_ref, _ = conv.conv2d_backward_reference(dy, x, w, **kwargs)
    pads = ((padding[0],) * 2, (padding[1],) * 2)
    forced = [GENERAL_DEPTHWISE]                     # and the 3×3 loops where they apply
    if plan.depthwise_rows(kernel, stride, dilation, pads):
        rows_dx = "depthwise_rows" if tuple(stride) == (1, 1) and m == 1 else "depthwise_scatter"
        forced.append(ConvPlan("depthwise_rows", "depthwise_rows", rows_dx))
        if m == 1:
            forced.append(ConvPlan("depthwise_channels", "depthwise_channels", "depthwise_channels"))
    for chosen in forced:
        y, cache = conv.conv2d(x, w, b, plan=chosen, **kwargs)
        assert_close(y, expected, "y vs conv2d_reference")
        dx, dw, _ = conv.conv2d_backward(dy, cache)
        assert_close(dx, dx_ref, "dx vs conv2d_backward_reference")
        assert_close(dw, dw_ref, "dW vs conv2d_backward_reference")


@pytest.mark.parametrize("stride", [1, 2])
@pytest.mark.parametrize("m", [1, 2])
@pytest.mark.parametrize("pads", [((0, 2), (1, 0)), ((2, 0), (0, 1)), ((2, 2), (0, 0)), ((1, 0), (2, 2)),
                                  ((0, 0), (0, 0))])
@pytest.mark.parametrize("size", [(7, 6), (8, 9)])
@pytest.mark.usefixtures("numba_kernels")
def test_depthwise_3x3_loops_match_the_slow_references_on_asymmetric_padding(size, pads, m, stride):
    """The loops of 3×3 layers at stride 1 and 2 (the rows' forward and dW, dX by the forward's loop at stride 1
    with one filter per channel, by spreading dY otherwise; the channels-innermost ones) on every padding from 0
    to 2 per side, odd and even map sizes (at stride 2, input rows and columns that no window reads)."""
    rng = np.random.default_rng(5)
    c = 3
    x, w, b = rng.standard_normal((2, c, *size)), rng.standard_normal((m * c, 1, 3, 3)), rng.standard_normal(m * c)
    kwargs = dict(stride=stride, padding=pads, groups=c)
    expected = conv.conv2d_reference(x, w, b, **kwargs)
    dy = rng.standard_normal(expected.shape)
    dx_ref, dw_ref, _ = conv.conv2d_backward_reference(dy, x, w, **kwargs)
    rows_dx = "depthwise_rows" if stride == 1 and m == 1 else "depthwise_scatter"
    forced = [ConvPlan("depthwise_rows", "depthwise_rows", rows_dx)]
    if m == 1:
        forced.append(ConvPlan("depthwise_channels", "depthwise_channels", "depthwise_channels"))
    for chosen in forced:
        y, cache = conv.conv2d(x, w, b, plan=chosen, **kwargs)
        assert_close(y, expected, f"y vs conv2d_reference, {chosen.forward}")
        dx, dw, _ = conv.conv2d_backward(dy, cache)
        assert_close(dx, dx_ref, f"dx vs conv2d_backward_reference, {chosen.input_grad}")
        assert_close(dw, dw_ref, f"dW vs conv2d_backward_reference, {chosen.weight_grad}")


@pytest.mark.usefixtures("batch_threads")
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape, kwargs", [
    ((3, 2, 8, 8), dict(kernel_size=2)), ((5, 3, 9, 9), dict(kernel_size=3, stride=2)),
    ((3, 2, 8, 7), dict(kernel_size=3, stride=2, padding=1, ceil_mode=True)),
    ((2, 2, 9, 10), dict(kernel_size=3, stride=2, padding=1, dilation=(2, 3))),
    ((1, 2, 5, 5), dict(kernel_size=2, stride=3, padding=1, ceil_mode=True))])
def test_max_pool_backward_matches_numpy_and_torch(shape, kwargs, dtype):
    rng = np.random.default_rng(1)
    x = rng.standard_normal(shape).astype(dtype)
    y, cache = pool.max_pool2d(x, **kwargs)
    dy = rng.standard_normal(y.shape).astype(dtype)
    x_shape, _, argmax, kernel_size, stride, dilation, pads, _ = cache
    dx = compiled_pool.max_pool2d_backward(dy, argmax, x_shape, kernel_size, stride, dilation, pads)
    _, (dx_t,) = torch_vjp(lambda t: TF.max_pool2d(t, **kwargs), dy, x)
    assert dx.dtype == dtype
    assert_close(dx, dx_t, "dx vs torch")
    assert_close(dx, pool.max_pool2d_backward(dy, cache), "dx vs numpy", dtype=dtype)


def batch_norm_inputs(rng, shape, dtype):
    """x (mean 1, spread 3), γ, β, and running statistics μ, σ² for a batch norm over ``shape``."""
    c = shape[1]
    x = (rng.standard_normal(shape) * 3 + 1).astype(dtype)
    gamma, beta = rng.standard_normal(c).astype(dtype), rng.standard_normal(c).astype(dtype)
    return x, gamma, beta, rng.standard_normal(c).astype(dtype), rng.uniform(0.5, 2, c).astype(dtype)


@pytest.mark.usefixtures("batch_threads")
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", [(5, 3), (3, 4, 7), (5, 3, 4, 5), (2, 16, 8, 8)])
@pytest.mark.parametrize("training", [True, False])
def test_batch_norm_matches_numpy_and_torch(shape, training, dtype, monkeypatch):
    rng = np.random.default_rng(2)
    x, gamma, beta, mean, var = batch_norm_inputs(rng, shape, dtype)
    dy = rng.standard_normal(shape).astype(dtype)
    state_numpy, state = (mean.copy(), var.copy()), (mean.copy(), var.copy())
    y_numpy, cache_numpy = norm.batch_norm(x, gamma, beta, *state_numpy, training, 0.2, 1e-3)
    grads_numpy = norm.batch_norm_backward(dy, cache_numpy)
    monkeypatch.setattr(kernels, "_chosen", "numba")
    monkeypatch.setattr(plan, "COMPILED_MIN_ELEMENTS", 0)
    y, cache = norm.batch_norm(x, gamma, beta, *state, training, 0.2, 1e-3)
    assert cache.shift is not None, "the compiled forward did not run"
    grads = norm.batch_norm_backward(dy, cache)
    running = [torch.from_numpy(mean.copy()), torch.from_numpy(var.copy())]
    y_t, (dx_t, dgamma_t, dbeta_t) = torch_vjp(
        lambda t, g, b: TF.batch_norm(t, *running, g, b, training, 0.2, 1e-3), dy, x, gamma, beta)
    assert y.dtype == dtype and all(g.dtype == dtype for g in grads)
    for name, got, numpy_, torch_ in zip(["y", "dx", "dγ", "dβ", "running mean", "running var"],
                                         (y, *grads, *state), (y_numpy, *grads_numpy, *state_numpy),
                                         (y_t, dx_t, dgamma_t, dbeta_t, *running)):
        assert_close(got, torch_, f"{name} vs torch")
        assert_close(got, numpy_, f"{name} vs numpy", dtype=dtype)


@pytest.mark.usefixtures("batch_threads", "numba_kernels")
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", [(5, 3), (3, 4, 7), (5, 3, 4, 5), (2, 16, 8, 8)])
@pytest.mark.parametrize("training", [True, False])
def test_batch_norm_with_the_relu_fused_matches_torch_and_the_unfused_pair(shape, training, dtype, monkeypatch):
    """z = ReLU(BN(x)) in one sweep: z is the unfused pair's bit for bit, and BN's backward of dZ · [z > 0]
    (ReLU's, from z) gives torch's gradients, on either backend."""
    rng = np.random.default_rng(6)
    x, gamma, beta, mean, var = batch_norm_inputs(rng, shape, dtype)
    state, state_unfused = (mean.copy(), var.copy()), (mean.copy(), var.copy())
    z, cache = norm.batch_norm(x, gamma, beta, *state, training, 0.2, 1e-3, relu=True)
    y, cache_unfused = norm.batch_norm(x, gamma, beta, *state_unfused, training, 0.2, 1e-3)
    assert np.array_equal(z, activation.relu(y)) and (z == 0).any() and (z > 0).any()
    dz = rng.standard_normal(shape).astype(dtype)
    dy = activation.relu_backward(dz, z)
    assert np.array_equal(dy, activation.relu_backward(dz, y))
    grads = norm.batch_norm_backward(dy, cache)
    monkeypatch.setattr(kernels, "_chosen", "numpy")
    numpy_grads = norm.batch_norm_backward(dy, cache)
    running = [torch.from_numpy(mean.copy()), torch.from_numpy(var.copy())]
    z_t, (dx_t, dgamma_t, dbeta_t) = torch_vjp(
        lambda t, g, b: TF.relu(TF.batch_norm(t, *running, g, b, training, 0.2, 1e-3)), dz, x, gamma, beta)
    assert z.dtype == dtype and all(g.dtype == dtype for g in grads)
    assert_close(z, z_t, "z vs torch")
    for name, got, numpy_, torch_ in zip(["dx", "dγ", "dβ"], grads, numpy_grads, (dx_t, dgamma_t, dbeta_t)):
        assert_close(got, torch_, f"{name} vs torch")
        assert_close(numpy_, got, f"{name}: NumPy's backward of the fused forward's cache", dtype=dtype)
    for got, want in zip(state, state_unfused):
        assert np.array_equal(got, want)


@pytest.mark.usefixtures("batch_threads", "numba_kernels")
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("training", [True, False])
def test_batch_norm_with_a_residual_sum_and_relu_fused_matches_torch(training, dtype):
    """z = ReLU(BN(x) + s) in one sweep, a residual block's end: z is the unfused sum's (bit for bit in float32,
    where y is rounded before the sum; float64's sum may be reassociated), and the backward is BN's plain one,
    taking the gradient of the sum (dZ masked by [z > 0], which the shortcut takes too)."""
    rng = np.random.default_rng(7)
    shape = (3, 4, 5, 6)
    x, gamma, beta, mean, var = batch_norm_inputs(rng, shape, dtype)
    s = rng.standard_normal(shape).astype(dtype)
    z, cache = norm.batch_norm(x, gamma, beta, mean.copy(), var.copy(), training, relu=True, residual=s)
    y, cache_unfused = norm.batch_norm(x, gamma, beta, mean.copy(), var.copy(), training)
    if dtype == np.float32:
        assert np.array_equal(z, activation.relu(y + s))
    np.testing.assert_allclose(z, activation.relu(y + s), rtol=1e-15, atol=1e-15)
    assert (z == 0).any()
    dz = rng.standard_normal(shape).astype(dtype)
    d_sum = activation.relu_backward(dz, z)
    grads = norm.batch_norm_backward(d_sum, cache)
    for got, want in zip(grads, norm.batch_norm_backward(d_sum, cache_unfused)):
        assert np.array_equal(got, want)
    running = [torch.from_numpy(mean.copy()), torch.from_numpy(var.copy())]
    z_t, (dx_t, ds_t, dgamma_t, dbeta_t) = torch_vjp(
        lambda t, r, g, b: TF.relu(TF.batch_norm(t, *running, g, b, training) + r), dz, x, s, gamma, beta)
    assert_close(z, z_t, "z")
    for name, got, want in zip(["dx", "ds", "dγ", "dβ"], (grads[0], d_sum, *grads[1:]), (dx_t, ds_t, dgamma_t, dbeta_t)):
        assert_close(got, want, name)
    with pytest.raises(ValueError, match="residual of shape"):
        norm.batch_norm(x, gamma, beta, mean, var, training, relu=True, residual=s[:, :2])


@pytest.mark.usefixtures("numba_kernels")
def test_batch_norms_backward_in_eval_leaves_x_out_of_dx_as_torch():
    """In eval dX = γ/σ · dY whatever x holds: a NaN or ±∞ in x must not reach dX through x̂'s term (its
    coefficient is 0 in eval, and 0 · NaN is NaN)."""
    x = np.array([1, np.nan, np.inf, -2], np.float32).reshape(1, 1, 4)
    _, cache = norm.batch_norm(x, np.float32([0.5]), np.float32([0]), np.zeros(1, np.float32),
                               np.float32([0.75]), False, eps=0.25)
    assert norm.batch_norm_backward(np.ones_like(x), cache)[0].tolist() == [[[0.5] * 4]]


def test_relu_and_residual_fused_into_batch_norm_need_the_compiled_kernels(monkeypatch):
    monkeypatch.setattr(kernels, "_chosen", "numpy")
    for fused in (dict(relu=True), dict(residual=np.ones((2, 3)))):
        with pytest.raises(ValueError, match="compiled kernels only"):
            norm.batch_norm(np.ones((2, 3)), np.ones(3), np.zeros(3), np.zeros(3), np.ones(3), True, **fused)


@pytest.mark.usefixtures("batch_threads")
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", [(5, 7), (3, 4, 5, 5), (1, 1, 1, 1)])
def test_relu_matches_numpy_and_torch(shape, dtype):
    rng = np.random.default_rng(3)
    x, dy = rng.standard_normal(shape).astype(dtype), rng.standard_normal(shape).astype(dtype)
    x.reshape(-1)[0] = 0            # the kink: gradient 0, as PyTorch
    y, dx = compiled_activation.relu(x), compiled_activation.relu_backward(dy, x)
    y_t, (dx_t,) = torch_vjp(TF.relu, dy, x)
    assert y.dtype == dx.dtype == dtype
    assert_close(y, y_t, "y")
    assert_close(dx, dx_t, "dx")
    assert np.array_equal(y, activation.relu(x)) and np.array_equal(dx, activation.relu_backward(dy, x))
    assert np.isnan(compiled_activation.relu(np.array([np.nan], dtype)))[0]


@needs_numba
def test_the_uncompiled_loops_agree_with_the_compiled_ones():
    """``py_func`` is each kernel's plain-Python loop, the readable reference: the same numbers."""
    rng = np.random.default_rng(4)
    x, w = rng.standard_normal((3, 2, 6, 5)), rng.standard_normal((4, 1, 3, 3))
    args = ((2, 1), (1, 0), (1, 2))
    forward, weight_grad = compiled_depthwise.depthwise_forward, compiled_depthwise.depthwise_weight_grad
    for loop, inputs, shape in ((forward, (x, w, rng.standard_normal(4)), (3, 4, 3, 3)),
                                (weight_grad, (rng.standard_normal((3, 4, 3, 3)), x), w.shape)):
        first, second = np.zeros(shape), np.zeros(shape)
        loop(*inputs, first, *args)
        loop.py_func(*inputs, second, *args)
        assert np.allclose(first, second, rtol=1e-13, atol=1e-13), loop
    dy = rng.standard_normal((3, 4, 3, 3))
    first, second = np.empty(x.shape), np.empty(x.shape)
    compiled_depthwise.depthwise_input_grad(dy, w, first, *args)
    compiled_depthwise.depthwise_input_grad.py_func(dy, w, second, *args)
    assert np.allclose(first, second, rtol=1e-13, atol=1e-13)
    argmax = rng.integers(0, 9, (3, 2, 2, 2)).astype(np.uint8)
    dy = rng.standard_normal(argmax.shape)
    first, second = np.empty(x.shape), np.empty(x.shape)
    compiled_pool.max_pool_backward(dy, argmax, first, (3, 3), (2, 2), (1, 1), (1, 1))
    compiled_pool.max_pool_backward.py_func(dy, argmax, second, (3, 3), (2, 2), (1, 1), (1, 1))
    assert np.array_equal(first, second)
    x3 = rng.standard_normal((3, 2, 7))
    for relu, residual in ((False, None), (True, None), (True, rng.standard_normal(x3.shape))):
        results = []
        for loop in (compiled_norm.batch_norm_forward_loop, compiled_norm.batch_norm_forward_loop.py_func):
            mean, var, y, inv_std = np.zeros(2), np.zeros(2), np.empty_like(x3), np.empty(2)
            loop(x3, np.ones(2) * 2, np.full(2, 0.5), mean, var, 1e-5, True, relu, residual, y, inv_std)
            dx, dgamma, dbeta = np.empty_like(x3), np.empty(2), np.empty(2)
            (compiled_norm.batch_norm_backward_loop if loop is compiled_norm.batch_norm_forward_loop else
             compiled_norm.batch_norm_backward_loop.py_func)(x3 * 0.5, x3, mean, inv_std, np.ones(2) * 2, True,
                                                              dx, dgamma, dbeta)
            results.append((mean, var, y, dx, dgamma, dbeta))
        assert (results[0][2] == 0).any() == relu
        for got, want in zip(*results):
            assert np.allclose(got, want, rtol=1e-12, atol=1e-13)


@pytest.mark.usefixtures("numba_kernels")
def test_a_forward_on_one_backend_and_its_backward_on_the_other_agree(monkeypatch):
    """The compiled kernels keep NumPy's caches (depthwise keeps x, which the backward recognises)."""
    rng = np.random.default_rng(5)
    x = rng.standard_normal((3, 4, 8, 8))
    dy_pool = rng.standard_normal((3, 4, 4, 4))
    w = rng.standard_normal((4, 1, 3, 3))
    gamma, beta = np.ones(4), np.zeros(4)
    results = {}
    for forward_backend, backward_backend in (("numpy", "numpy"), ("numpy", "numba"), ("numba", "numpy")):
        monkeypatch.setattr(kernels, "_chosen", forward_backend)
        _, pool_cache = pool.max_pool2d(x, 2)
        y_conv, conv_cache = conv.conv2d(x, w, None, padding=1, groups=4)
        _, norm_cache = norm.batch_norm(x, gamma, beta, np.zeros(4), np.ones(4), True)
        monkeypatch.setattr(kernels, "_chosen", backward_backend)
        results[forward_backend, backward_backend] = (pool.max_pool2d_backward(dy_pool, pool_cache),
                                                      *conv.conv2d_backward(x, conv_cache),
                                                      *norm.batch_norm_backward(x, norm_cache))
    reference = results["numpy", "numpy"]
    for key, values in results.items():
        for got, want in zip(values, reference):
            assert_close(got, want, str(key))


@pytest.mark.usefixtures("numba_kernels")
def test_numba_uses_juanjis_threads_and_one_inside_a_batch_chunk(monkeypatch):
    import numba
    before = threads.num_threads()
    seen = []
    try:
        for count in (1, 2):
            threads.set_num_threads(count)
            with kernels.compiled_call():
                seen.append(numba.get_num_threads())
        monkeypatch.setattr(threads, "MIN_ELEMENTS", 0)

        def chunk(start, stop):
            with kernels.compiled_call():
                return numba.get_num_threads()
        inside = threads.over_batch(4, chunk, elements=100)
    finally:
        threads.set_num_threads(before)
    assert seen == [1, min(2, numba.config.NUMBA_NUM_THREADS)]
    assert inside == [1, 1]


def test_small_calls_keep_numpys_kernels_unless_the_batch_split_runs_the_loop(monkeypatch):
    monkeypatch.setattr(kernels, "_chosen", "numba")
    assert not plan.compiled(plan.COMPILED_MIN_ELEMENTS - 1) and plan.compiled(plan.COMPILED_MIN_ELEMENTS)
    assert plan.compiled()           # ReLU's serial loops: no pool to start, any size
    monkeypatch.setattr(kernels, "_chosen", "numpy")
    assert not plan.compiled(plan.COMPILED_MIN_ELEMENTS) and not plan.compiled()


def test_set_kernels_validates_and_the_environment_chooses(monkeypatch):
    monkeypatch.setattr(kernels, "_chosen", None)
    with pytest.raises(ValueError, match="kernels must be one of numpy, numba, got 'fortran'"):
        juanji.set_kernels("fortran")
    monkeypatch.setenv("JUANJI_KERNELS", "fortran")
    with pytest.raises(ValueError, match="JUANJI_KERNELS: kernels must be one of"):
        juanji.get_kernels()
    monkeypatch.delenv("JUANJI_KERNELS")
    assert juanji.get_kernels() == "numpy"
    monkeypatch.setattr(kernels, "_chosen", None)
    monkeypatch.setitem(sys.modules, "numba", None)       # as if Numba were not installed
    with pytest.raises(ValueError, match=r"need Numba: pip install 'juanji\[fast\]'"):
        juanji.set_kernels("numba")
    monkeypatch.setenv("JUANJI_KERNELS", "numba")
    with pytest.raises(ValueError, match="JUANJI_KERNELS: kernels 'numba' need Numba"):
        juanji.get_kernels()


@needs_numba
@pytest.mark.slow
def test_a_second_process_loads_the_compiled_kernel_from_the_cache(tmp_path):
    """cache=True: the first process compiles and writes the cache, the next one only loads it."""
    program = ("import numpy as np; from juanji.functional.compiled import activation as a; "
               "a.relu_loop(np.ones(4), np.empty(4)); stats = a.relu_loop.stats; "
               "print(sum(stats.cache_hits.values()), sum(stats.cache_misses.values()))")
    environment = dict(os.environ, NUMBA_CACHE_DIR=str(tmp_path))
    runs = [subprocess.run([sys.executable, "-c", program], env=environment, capture_output=True, text=True,
                           check=True, timeout=300).stdout.split() for _ in range(2)]
    assert runs == [["0", "1"], ["1", "0"]]      # (hits, misses): compiled, then loaded


@settings(max_examples=40, deadline=None)
@given(st.integers(1, 3), st.integers(1, 3), st.tuples(st.integers(1, 3), st.integers(1, 3)),
       st.tuples(st.integers(1, 3), st.integers(1, 3)), st.tuples(st.integers(1, 2), st.integers(1, 2)),
       st.tuples(st.integers(0, 4), st.integers(0, 4)), st.integers(0, 2**16))
def test_compiled_col2im_equals_numpys_and_its_uncompiled_loop(n, c, kernel, stride, dilation, extra, seed):
    """Overlapping windows (stride < kernel), gaps (stride > kernel) and dilation: every column entry summed
    back to the pixel it was read from, as NumPy's col2im does."""
    from juanji.functional.compiled import columns
    out_size = (1 + extra[0], 1 + extra[1])
    padded = tuple((o - 1) * st_ + d * (k - 1) + 1 for o, st_, d, k in zip(out_size, stride, dilation, kernel))
    rng = np.random.default_rng(seed)
    cols = rng.standard_normal((n, c * kernel[0] * kernel[1], out_size[0] * out_size[1]))
    shape = (n, c, *padded)
    expected = conv.col2im(cols, shape, kernel, stride, dilation, out_size)          # NumPy's: no kernels chosen
    assert_close(columns.col2im(cols, shape, kernel, stride, dilation, out_size), expected, "compiled col2im")
    uncompiled = np.empty(shape)
    columns.col2im_loop.py_func(cols, uncompiled, kernel, stride, dilation, out_size)
    assert_close(uncompiled, expected, "uncompiled loop")
