"""Max, average and adaptive average pooling kernels against torch.nn.functional, the loop references
(max pooling's forward, both poolings' backward), and max pooling's tie rule."""
import numpy as np
import pytest
import torch
import torch.nn.functional as TF
from hypothesis import given, settings
from hypothesis import strategies as st

from juanji.functional import pool as F
from kernel_check import DTYPES, assert_close, torch_vjp

# Every test runs on NumPy's and on the compiled kernels (``kernels``), serially and with the batch split
# over two threads (``batch_threads``).
pytestmark = pytest.mark.usefixtures("kernels", "batch_threads")

# (N, C, H, W), keyword arguments shared by max and average pooling
POOL_CASES = [
    pytest.param((2, 3, 8, 8), dict(kernel_size=2), id="2x2-stride-default"),
    pytest.param((1, 2, 7, 9), dict(kernel_size=2, stride=2), id="batch1-odd-sizes"),
    pytest.param((2, 3, 9, 9), dict(kernel_size=3, stride=2), id="overlapping-3x3-stride2"),
    pytest.param((2, 2, 8, 8), dict(kernel_size=3, stride=2, padding=1), id="padding"),
    pytest.param((2, 2, 10, 10), dict(kernel_size=3, stride=3), id="stride3-remainder"),
    pytest.param((2, 2, 8, 9), dict(kernel_size=3, stride=2, ceil_mode=True), id="ceil-mode"),
    pytest.param((2, 2, 8, 7), dict(kernel_size=3, stride=2, padding=1, ceil_mode=True), id="ceil-mode-padding"),
    pytest.param((2, 2, 5, 5), dict(kernel_size=2, stride=3, padding=1, ceil_mode=True), id="ceil-mode-last-window-dropped"),
    pytest.param((2, 2, 6, 7), dict(kernel_size=(2, 3), stride=(1, 2), padding=(1, 1)), id="asymmetric"),
    pytest.param((2, 2, 5, 5), dict(kernel_size=5), id="kernel-as-large-as-input"),
    pytest.param((2, 2, 4, 6), dict(kernel_size=1, stride=2), id="1x1-stride2"),
]
MAX_ONLY_CASES = [
    pytest.param((2, 2, 9, 9), dict(kernel_size=3, stride=1, dilation=2), id="dilation2"),
    pytest.param((2, 2, 9, 10), dict(kernel_size=3, stride=2, padding=1, dilation=(2, 3)), id="dilation-padding"),
    pytest.param((2, 2, 9, 8), dict(kernel_size=2, stride=2, dilation=2, ceil_mode=True), id="dilation-ceil-mode"),
]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape, kwargs", POOL_CASES + MAX_ONLY_CASES)
def test_max_pool2d_matches_torch(shape, kwargs, dtype):
    rng = np.random.default_rng(0)
    x = rng.standard_normal(shape).astype(dtype)
    y, cache = F.max_pool2d(x, **kwargs)
    dy = rng.standard_normal(y.shape).astype(dtype)
    dx = F.max_pool2d_backward(dy, cache)
    y_t, (dx_t,) = torch_vjp(lambda t: TF.max_pool2d(t, **kwargs), dy, x)
    assert y.dtype == dx.dtype == dtype
    assert_close(y, y_t, "y")
    assert_close(dx, dx_t, "dx")


@pytest.mark.parametrize("count_include_pad", [True, False])
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape, kwargs", POOL_CASES)
def test_avg_pool2d_matches_torch(shape, kwargs, dtype, count_include_pad):
    rng = np.random.default_rng(1)
    kwargs = dict(kwargs, count_include_pad=count_include_pad)
    x = rng.standard_normal(shape).astype(dtype)
    y, cache = F.avg_pool2d(x, **kwargs)
    dy = rng.standard_normal(y.shape).astype(dtype)
    dx = F.avg_pool2d_backward(dy, cache)
    y_t, (dx_t,) = torch_vjp(lambda t: TF.avg_pool2d(t, **kwargs), dy, x)
    assert y.dtype == dx.dtype == dtype
    assert_close(y, y_t, "y")
    assert_close(dx, dx_t, "dx")


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape, output_size", [
    ((2, 3, 7, 7), 3), ((2, 3, 5, 5), 2), ((2, 3, 7, 5), (3, 2)), ((2, 3, 6, 6), 1), ((1, 2, 5, 7), (1, 1)),
    ((2, 2, 8, 8), 4), ((2, 2, 3, 4), (5, 6)), ((2, 2, 6, 9), (6, 1))])
def test_adaptive_avg_pool2d_matches_torch(shape, output_size, dtype):
    rng = np.random.default_rng(2)
    x = rng.standard_normal(shape).astype(dtype)
    y, cache = F.adaptive_avg_pool2d(x, output_size)
    dy = rng.standard_normal(y.shape).astype(dtype)
    dx = F.adaptive_avg_pool2d_backward(dy, cache)
    y_t, (dx_t,) = torch_vjp(lambda t: TF.adaptive_avg_pool2d(t, output_size), dy, x)
    assert y.dtype == dx.dtype == dtype
    assert_close(y, y_t, "y")
    assert_close(dx, dx_t, "dx")


@pytest.mark.parametrize("size, out, bins", [
    (7, 3, [(0, 3), (2, 5), (4, 7)]), (5, 2, [(0, 3), (2, 5)]), (6, 1, [(0, 6)]), (3, 5, [(0, 1), (0, 2), (1, 2), (1, 3), (2, 3)])])
def test_adaptive_bins_overlap_as_pytorch(size, out, bins):
    assert F.adaptive_bins(size, out) == bins


@pytest.mark.parametrize("shape, kwargs", [
    ((2, 3, 8, 8), dict(kernel_size=2)), ((2, 3, 9, 9), dict(kernel_size=3, stride=2)),
    ((2, 2, 8, 8), dict(kernel_size=3, stride=2, padding=1)), ((2, 2, 7, 7), dict(kernel_size=3, stride=1, dilation=2)),
    ((1, 1, 5, 5), dict(kernel_size=5))])
def test_max_pool2d_ties_route_to_one_position_per_window_as_torch(shape, kwargs):
    """With integer-valued inputs many windows hold their maximum more than once: each window must send
    its whole gradient to exactly one of those positions — the first in row-major order, like torch."""
    rng = np.random.default_rng(3)
    x = rng.integers(0, 3, size=shape).astype(np.float64)
    x[0, 0] = 1.0                                        # one channel entirely tied
    y, cache = F.max_pool2d(x, **kwargs)
    assert (y[0, 0] == 1.0).all()
    dy = np.ones_like(y)
    dx = F.max_pool2d_backward(dy, cache)
    y_t, (dx_t,) = torch_vjp(lambda t: TF.max_pool2d(t, **kwargs), dy, x)
    np.testing.assert_array_equal(y, y_t)
    np.testing.assert_array_equal(dx, dx_t)
    assert dx.sum() == y.size                        # every window's unit gradient lands exactly once
    # without overlap, a window's gradient is in one cell: the count of nonzero cells equals the windows
    if kwargs.get("stride", kwargs["kernel_size"]) == kwargs["kernel_size"]:
        assert np.count_nonzero(dx) == y.size
    # the chosen cell itself equals torch's return_indices, window by window
    _, indices = TF.max_pool2d(torch.from_numpy(x), **kwargs, return_indices=True)
    _, _, argmax, (r, s), (sh, sw), (dh, dw), ((top, _), (left, _)), (ho, wo) = cache
    rows = np.arange(ho)[:, None] * sh + (argmax // s) * dh - top
    cols = np.arange(wo)[None, :] * sw + (argmax % s) * dw - left
    np.testing.assert_array_equal(rows * shape[3] + cols, indices.numpy())


def test_max_pool2d_all_equal_window_picks_the_first_cell():
    x = np.zeros((1, 1, 4, 4))
    y, cache = F.max_pool2d(x, 2)
    dx = F.max_pool2d_backward(np.ones_like(y), cache)
    expected = np.zeros((4, 4))
    expected[::2, ::2] = 1
    np.testing.assert_array_equal(dx[0, 0], expected)


def test_max_pool2d_window_entirely_in_padding():
    """H = 1, kernel 2, dilation 2, padding 1: the window reads rows −1 and 1, both padding. torch returns −inf
    as juanji does (but with an out-of-range index, and its backward then writes that gradient into the next
    channel's plane — a torch bug, so only the forward is compared); juanji drops the window's gradient."""
    x = np.random.default_rng(5).standard_normal((2, 2, 1, 5))
    kwargs = dict(kernel_size=(2, 1), dilation=(2, 1), padding=(1, 0))
    y, cache = F.max_pool2d(x, **kwargs)
    np.testing.assert_array_equal(y, TF.max_pool2d(torch.from_numpy(x), **kwargs).numpy())
    assert y.shape == (2, 2, 1, 5) and np.isneginf(y).all()
    np.testing.assert_array_equal(F.max_pool2d_backward(np.ones_like(y), cache), np.zeros_like(x))


@st.composite
def pool_configs(draw):
    """A valid pooling configuration: padding ≤ kernel/2 (torch's rule), the window fits the padded input."""
    kernel = (draw(st.integers(1, 4)), draw(st.integers(1, 4)))
    stride = (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
    dilation = (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
    padding = (draw(st.integers(0, kernel[0] // 2)), draw(st.integers(0, kernel[1] // 2)))
    low = [max(1, dilation[a] * (kernel[a] - 1) + 1 - 2 * padding[a]) for a in range(2)]
    shape = (draw(st.integers(1, 2)), draw(st.integers(1, 3)),
             draw(st.integers(low[0], low[0] + 6)), draw(st.integers(low[1], low[1] + 6)))
    return shape, dict(kernel_size=kernel, stride=stride, padding=padding, dilation=dilation,
                       ceil_mode=draw(st.booleans())), draw(st.integers(0, 2**16))


@settings(max_examples=60, deadline=None)
@given(pool_configs())
def test_max_pool2d_matches_slow_reference(config):
    shape, kwargs, seed = config
    x = np.random.default_rng(seed).standard_normal(shape)
    y, _ = F.max_pool2d(x, **kwargs)
    expected = F.max_pool2d_reference(x, **kwargs)
    assert y.shape == expected.shape
    np.testing.assert_array_equal(y, expected)


@settings(max_examples=60, deadline=None)
@given(pool_configs(), st.booleans())
def test_max_pool2d_backward_matches_slow_reference(config, ties):
    """Also on inputs rounded to a few values, where windows hold ties (the first maximum wins)."""
    shape, kwargs, seed = config
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(shape)
    if ties:
        x = np.round(x)
    y, cache = F.max_pool2d(x, **kwargs)
    dy = rng.standard_normal(y.shape)
    assert_close(F.max_pool2d_backward(dy, cache), F.max_pool2d_backward_reference(dy, x, **kwargs),
                 "max_pool2d_backward vs reference")


@settings(max_examples=60, deadline=None)
@given(pool_configs(), st.booleans())
def test_avg_pool2d_backward_matches_slow_reference(config, count_include_pad):
    shape, kwargs, seed = config
    del kwargs["dilation"]
    kwargs["count_include_pad"] = count_include_pad
    rng = np.random.default_rng(seed)
    y, cache = F.avg_pool2d(rng.standard_normal(shape), **kwargs)
    dy = rng.standard_normal(y.shape)
    assert_close(F.avg_pool2d_backward(dy, cache), F.avg_pool2d_backward_reference(dy, shape, **kwargs),
                 "avg_pool2d_backward vs reference")


def test_pool_references_match_torch():
    """The references are themselves checked against torch, so the property tests above mean something."""
    rng = np.random.default_rng(4)
    x = np.round(rng.standard_normal((2, 2, 9, 8)) * 2)          # ties, too
    kwargs = dict(kernel_size=(3, 2), stride=(2, 3), padding=(1, 1), dilation=(2, 1), ceil_mode=True)
    expected = TF.max_pool2d(torch.from_numpy(x), **kwargs)
    np.testing.assert_array_equal(F.max_pool2d_reference(x, **kwargs), expected.numpy())
    dy = rng.standard_normal(expected.shape)
    _, (dx,) = torch_vjp(lambda t: TF.max_pool2d(t, **kwargs), dy, x)
    assert_close(F.max_pool2d_backward_reference(dy, x, **kwargs), dx, "max_pool2d_backward_reference vs torch")
    for count_include_pad in (True, False):
        kwargs = dict(kernel_size=(3, 2), stride=(2, 1), padding=(1, 1), ceil_mode=True,
                      count_include_pad=count_include_pad)
        dy = rng.standard_normal(TF.avg_pool2d(torch.zeros(2, 2, 8, 5), **kwargs).shape)
        _, (dx,) = torch_vjp(lambda t: TF.avg_pool2d(t, **kwargs), dy, x[:, :, :8, :5])
        assert_close(F.avg_pool2d_backward_reference(dy, (2, 2, 8, 5), **kwargs), dx,
                     "avg_pool2d_backward_reference vs torch")
