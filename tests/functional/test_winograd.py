"""The compiled Winograd F(2×2, 3×3) convolution (juanji.functional.compiled.winograd): which layers take it (and
which of them make their forward by the direct loops instead), forward and both gradients against PyTorch (float64
and float32, odd sizes, asymmetric padding, uneven batch splits), alone and after the direct forward, and against
the slow loop references on random geometry, its float32 error against the direct method's, and the uncompiled
loops against the compiled ones."""
import numpy as np
import pytest
import torch.nn.functional as TF
from hypothesis import given, settings
from hypothesis import strategies as st

from juanji.functional import conv, plan
from juanji.functional.plan import ConvPlan
from juanji.functional.compiled import winograd
from juanji.runtime import kernels
from kernel_check import DTYPES, assert_close, torch_vjp

WINOGRAD = ConvPlan("winograd", "winograd", "winograd")
DIRECT_FORWARD = ConvPlan("direct", "winograd", "winograd")      # few channels: the direct loops' forward first
PLANS = [pytest.param(WINOGRAD, id="winograd"), pytest.param(DIRECT_FORWARD, id="direct-forward")]


@pytest.mark.usefixtures("numba_kernels")
@pytest.mark.parametrize("kernel, kwargs, takes", [
    (3, dict(padding=1), True), (3, dict(padding=0), True), (3, dict(padding=2), True),
    (3, dict(padding=((0, 2), (1, 0))), True),
    (3, dict(padding=3), False), (3, dict(stride=2, padding=1), False), (3, dict(dilation=2, padding=2), False),
    (3, dict(groups=2, padding=1), False), (5, dict(padding=2), False), (1, dict(), False)])
def test_winograd_takes_the_3x3_stride_1_layers_only(kernel, kwargs, takes):
    x, w = np.ones((2, 32, 9, 9)), np.ones((32, 32 // kwargs.get("groups", 1), kernel, kernel))
    chosen = conv.conv2d(x, w, **kwargs)[1][-1]
    assert (chosen == WINOGRAD) == takes
    assert (chosen.weight_grad == "winograd") == takes


@pytest.mark.usefixtures("numba_kernels")
@pytest.mark.parametrize("c, k, size, chosen", [
    (3, 16, 32, ConvPlan("direct", "direct", "compiled_col2im")),     # few enough for the direct gradients too
    (16, 16, 32, DIRECT_FORWARD), (24, 24, 32, DIRECT_FORWARD), (32, 32, 32, WINOGRAD),  # ResNet-20's 16 → 16 first
    (8, 8, 8, DIRECT_FORWARD), (16, 16, 16, WINOGRAD), (64, 64, 8, WINOGRAD)])
def test_layers_of_few_channels_make_their_forward_by_the_direct_loops(c, k, size, chosen):
    """C·K / (C + K) at most 4 on any map, at most 12 on maps of 32×32 outputs and more (plan.direct_forward); batch
    64, so that no layer here is a call small enough for the direct loops whatever its channels."""
    pads = ((1, 1), (1, 1))
    assert plan.plan_conv((64, c, size, size), (k, c, 3, 3), (1, 1), pads, (1, 1), 1) == chosen


def explicitly_padded(pads):
    """torch's conv2d of the input padded by ((top, bottom), (left, right)), for asymmetric padding."""
    (top, bottom), (left, right) = pads
    return lambda x, w, b: TF.conv2d(TF.pad(x, (left, right, top, bottom)), w, b)


@pytest.mark.usefixtures("numba_kernels", "batch_threads")
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("forced", PLANS)
@pytest.mark.parametrize("shape, k, pads, bias", [
    pytest.param((3, 4, 8, 8), 5, ((1, 1), (1, 1)), True, id="same-even"),
    pytest.param((3, 3, 9, 7), 4, ((1, 1), (1, 1)), True, id="same-odd-sizes"),
    pytest.param((2, 5, 7, 10), 2, ((0, 0), (0, 0)), False, id="valid"),
    pytest.param((3, 2, 6, 5), 3, ((2, 2), (2, 2)), True, id="pad2"),
    pytest.param((2, 3, 5, 6), 4, ((0, 2), (1, 0)), True, id="asymmetric"),
    pytest.param((1, 2, 3, 3), 2, ((0, 0), (0, 0)), True, id="one-output"),
    pytest.param((3, 16, 8, 8), 16, ((1, 1), (1, 1)), False, id="resnet-like"),
    pytest.param((1, 2, 32, 32), 37, ((1, 1), (1, 1)), True, id="output-channels-in-groups"),
])
def test_winograd_matches_torch_and_numpy(shape, k, pads, bias, dtype, forced):
    rng = np.random.default_rng(0)
    x = rng.standard_normal(shape).astype(dtype)
    w = (rng.standard_normal((k, shape[1], 3, 3)) / np.sqrt(9 * shape[1])).astype(dtype)
    b = rng.standard_normal(k).astype(dtype) if bias else None
    y, cache = conv.conv2d(x, w, b, padding=pads, plan=forced)
    assert cache[-1] == forced
    dy = rng.standard_normal(y.shape).astype(dtype)
    dx, dw, db = conv.conv2d_backward(dy, cache)
    y_t, (dx_t, dw_t, db_t) = torch_vjp(explicitly_padded(pads), dy, x, w, b)
    assert y.dtype == dx.dtype == dw.dtype == dtype
    for name, got, expected in (("y", y, y_t), ("dx", dx, dx_t), ("dW", dw, dw_t)):
        assert_close(got, expected, f"{name} vs torch")
    if bias:
        assert_close(db, db_t, "db vs torch")
    no_dx, dw_alone, _ = conv.conv2d_backward(dy, cache, need_dx=False)
    assert no_dx is None
    np.testing.assert_array_equal(dw_alone, dw)


@pytest.mark.usefixtures("numba_kernels", "batch_threads")
@pytest.mark.parametrize("samples_per_block", [1, 2, 3])
@pytest.mark.parametrize("need_dx", [True, False])
def test_winograd_block_by_block_matches_torch(monkeypatch, samples_per_block, need_dx):
    """Blocks of 1–3 samples over a batch of 7 (one or two slices of it): several blocks per slice and a
    short last block, in the forward and in both gradients (dX and dW cross every block boundary)."""
    n, c, k, size = 7, 3, 4, 6
    tiles = (size // 2) ** 2
    blocks = ConvPlan("winograd", "winograd", "winograd", block_bytes=16 * tiles * max(c, k) * 8 * samples_per_block)
    rng = np.random.default_rng(samples_per_block)
    x, w, b = rng.standard_normal((n, c, size, size)), rng.standard_normal((k, c, 3, 3)), rng.standard_normal(k)
    y, cache = conv.conv2d(x, w, b, padding=1, plan=blocks)
    dy = rng.standard_normal(y.shape)
    dx, dw, db = conv.conv2d_backward(dy, cache, need_dx=need_dx)
    y_t, (dx_t, dw_t, db_t) = torch_vjp(explicitly_padded(((1, 1), (1, 1))), dy, x, w, b)
    assert_close(y, y_t, "y vs torch")
    assert_close(dw, dw_t, "dW vs torch")
    assert_close(db, db_t, "db vs torch")
    if need_dx:
        assert_close(dx, dx_t, "dx vs torch")
    else:
        assert dx is None


@pytest.mark.usefixtures("numba_kernels")
@settings(max_examples=60, deadline=None)
@given(st.integers(1, 3), st.integers(1, 4), st.integers(1, 4),
       st.tuples(st.integers(0, 2), st.integers(0, 2), st.integers(0, 2), st.integers(0, 2)),
       st.tuples(st.integers(0, 6), st.integers(0, 6)), st.integers(0, 2**16), st.sampled_from([WINOGRAD, DIRECT_FORWARD]))
def test_winograd_matches_the_slow_references_on_random_geometry(n, c, k, pads, extra, seed, forced):
    """Any padding from 0 to 2 on each side and any map size that leaves at least one output."""
    top, bottom, left, right = pads
    h, w = 3 - top - bottom + extra[0], 3 - left - right + extra[1]
    if h < 1 or w < 1:
        h, w = max(h, 1) + 2, max(w, 1) + 2
    rng = np.random.default_rng(seed)
    x, weight, b = rng.standard_normal((n, c, h, w)), rng.standard_normal((k, c, 3, 3)), rng.standard_normal(k)
    padding = ((top, bottom), (left, right))
    y, cache = conv.conv2d(x, weight, b, padding=padding, plan=forced)
    assert_close(y, conv.conv2d_reference(x, weight, b, padding=padding), "y vs conv2d_reference")
    dy = rng.standard_normal(y.shape)
    dx, dw, db = conv.conv2d_backward(dy, cache)
    dx_ref, dw_ref, db_ref = conv.conv2d_backward_reference(dy, x, weight, padding=padding)
    assert_close(dx, dx_ref, "dx vs conv2d_backward_reference")
    assert_close(dw, dw_ref, "dW vs conv2d_backward_reference")


@pytest.mark.parametrize("channels, size", [(16, 16), (64, 8), (3, 12)])
def test_winograd_float32_error_stays_near_the_direct_methods(monkeypatch, channels, size):
    """Against the float64 result: F(2×2, 3×3)'s transforms add a few roundings per output, so its float32
    error may exceed the direct method's (by at most 4×) but stays within 16 float32 epsilons of the largest
    value.  The direct method's own error moves with the order of BLAS's sums (dW of 3 channels differs
    between OpenBLAS's SkylakeX and Haswell kernels), so the comparison floors it at 2 epsilons."""
    if not kernels.numba_available():
        pytest.skip("Numba is not installed")
    monkeypatch.setattr(plan, "COMPILED_MIN_ELEMENTS", 0)
    rng = np.random.default_rng(0)
    x = rng.standard_normal((8, channels, size, size))
    w = rng.standard_normal((16, channels, 3, 3)) * np.sqrt(2 / (9 * channels))
    b = rng.standard_normal(16)
    monkeypatch.setattr(kernels, "_chosen", "numpy")
    y, cache = conv.conv2d(x, w, b, padding=1)
    dy = rng.standard_normal(y.shape)
    truth = (y, *conv.conv2d_backward(dy, cache))
    errors = {}
    for backend in ("numpy", "numba"):
        monkeypatch.setattr(kernels, "_chosen", backend)
        y32, cache32 = conv.conv2d(*(a.astype(np.float32) for a in (x, w, b)), padding=1,
                                   plan=WINOGRAD if backend == "numba" else None)
        got = (y32, *conv.conv2d_backward(dy.astype(np.float32), cache32))
        errors[backend] = [np.abs(g - t).max() / np.abs(t).max() for g, t in zip(got, truth)]
    epsilon = np.finfo(np.float32).eps
    for name, direct, fast in zip(("y", "dx", "dW", "db"), errors["numpy"], errors["numba"]):
        assert fast <= 16 * epsilon, f"{name}: Winograd's float32 error {fast:.2e}"
        assert fast <= 4 * max(direct, 2 * epsilon), f"{name}: Winograd {fast:.2e} against direct {direct:.2e}"


def test_the_uncompiled_loops_compute_what_the_compiled_ones_do():
    if not kernels.numba_available():
        pytest.skip("Numba is not installed")
    rng = np.random.default_rng(3)
    th, tw = 2, 3
    xp = rng.standard_normal((2, 3, 2 * th + 2, 2 * tw + 2))
    for loop, args, out_shape in (
            (winograd.input_transform, (xp, th, tw), (16, 2 * th * tw, 3)),
            (winograd.output_transform, (rng.standard_normal((16, 2 * th * tw, 4)), th, tw, rng.standard_normal(4)),
             (2, 4, 2 * th - 1, 2 * tw)),
            (winograd.output_adjoint, (rng.standard_normal((2, 4, 2 * th - 1, 2 * tw - 1)), th, tw),
             (16, 2 * th * tw, 4)),
            (winograd.input_adjoint, (rng.standard_normal((16, 2 * th * tw, 3)), th, tw), xp.shape)):
        compiled, uncompiled = np.zeros(out_shape), np.zeros(out_shape)
        loop(*args, compiled)
        loop.py_func(*args, uncompiled)
        np.testing.assert_array_equal(compiled, uncompiled)
