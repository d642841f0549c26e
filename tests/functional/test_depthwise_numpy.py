"""NumPy's depthwise kernels ("depthwise_shifts": a multiply-add per kernel offset over runs of a channel's planes;
"depthwise_channels_last": the same over the outputs that read x, the channels innermost) against the slow loop
references, torch (forward, dX, dW, db) and finite differences, on random geometry and blocks down to a few planes,
also with an inf or NaN in x or the weight; the plan's rule that picks them; and their memory, the input's and the
output's size rather than R·S times the input's."""
import tracemalloc

import numpy as np
import pytest
import torch.nn.functional as TF
from hypothesis import example, given, settings
from hypothesis import strategies as st

import juanji
from finite_difference import check_layer
from juanji import nn
from juanji.functional import conv as F
from juanji.functional import geometry as G
from juanji.functional import plan
from juanji.runtime import kernels as backend_module
from kernel_check import assert_close, torch_vjp

pytestmark = pytest.mark.filterwarnings("ignore:Using padding=.same. with even kernel:UserWarning")


KERNELS = ["depthwise_shifts", "depthwise_channels_last"]


def shifts(block_bytes=plan.DEPTHWISE_BLOCK_BYTES, kernel="depthwise_shifts"):
    return plan.ConvPlan(kernel, kernel, kernel, block_bytes)


@st.composite
def depthwise_layers(draw):
    """(x shape, weight shape, stride, padding as resolved ((top, bottom), (left, right)), dilation) of a depthwise
    layer with m filters per channel whose (dilated) kernel fits in the padded input; 'same' (stride 1) pads an
    even kernel one more after, other paddings are drawn per side."""
    n, c, m = draw(st.integers(1, 3)), draw(st.integers(1, 4)), draw(st.integers(1, 2))
    kernel = (draw(st.integers(1, 7)), draw(st.integers(1, 7)))
    dilation = (draw(st.integers(1, 2)), draw(st.integers(1, 2)))
    stride = (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
    if stride == (1, 1) and draw(st.booleans()):
        pads = G.resolve_padding("same", kernel, dilation)
    else:
        pads = tuple((draw(st.integers(0, 3)), draw(st.integers(0, 3))) for _ in range(2))
    reach = [d * (k - 1) + 1 - sum(p) for k, d, p in zip(kernel, dilation, pads)]
    h, w = (max(1, size) + draw(st.integers(0, 5)) for size in reach)
    return (n, c, h, w), (m * c, 1, *kernel), stride, pads, dilation


def arrays(x_shape, w_shape, dtype, seed, bias=True):
    rng = np.random.default_rng(seed)
    return (rng.standard_normal(x_shape).astype(dtype), rng.standard_normal(w_shape).astype(dtype),
            rng.standard_normal(w_shape[0]).astype(dtype) if bias else None)


@settings(max_examples=80, deadline=None)
@given(depthwise_layers(), st.sampled_from([1, 300, 5000, plan.DEPTHWISE_BLOCK_BYTES]), st.booleans(),
       st.integers(0, 2**16))
# blocks of one plane: every sample's channels one at a time, at stride 3 and with a multiplier
@example(((2, 3, 9, 8), (6, 1, 3, 2), (3, 2), ((1, 0), (2, 1)), (2, 1)), 1, True, 0)
@pytest.mark.parametrize("kernel", KERNELS)
def test_shifts_match_the_slow_references(kernel, layer, block_bytes, bias, seed):
    """Any kernel 1–7, stride 1–3, dilation 1–2, padding per side, multiplier 1–2, in blocks from one plane
    (``block_bytes`` 1) to the default's: y, dX, dW and db as the loops over outputs and kernel offsets."""
    x_shape, w_shape, stride, pads, dilation = layer
    x, w, b = arrays(x_shape, w_shape, np.float64, seed, bias)
    kwargs = dict(stride=stride, padding=pads, dilation=dilation, groups=x_shape[1])
    y, cache = F.conv2d(x, w, b, plan=shifts(block_bytes, kernel), **kwargs)
    assert cache[-1].forward == kernel
    assert_close(y, F.conv2d_reference(x, w, b, **kwargs), "y vs conv2d_reference")
    dy = np.random.default_rng(seed + 1).standard_normal(y.shape)
    expected = F.conv2d_backward_reference(dy, x, w, **kwargs)
    for name, got, want in zip(["dx", "dW", "db"], F.conv2d_backward(dy, cache), expected):
        assert_close(got, want, f"{name} vs conv2d_backward_reference")


@settings(max_examples=60, deadline=None)
@given(depthwise_layers(), st.sampled_from(["x", "weight"]), st.integers(0, 2**16),
       st.sampled_from([np.inf, -np.inf, np.nan]))
# 3×3 unpadded on 4×5: x's last column is read by the taps v = 2 alone, yet lies in the spare columns of v = 0 and 1
# (dW), and those of the tap (0, 0) write into it (dX)
@example(((1, 1, 4, 5), (1, 1, 3, 3), (1, 1), ((0, 0), (0, 0)), (1, 1)), "x", 9, np.inf)
@example(((1, 1, 4, 5), (1, 1, 3, 3), (1, 1), ((0, 0), (0, 0)), (1, 1)), "weight", 0, np.inf)
# padded: the outputs whose window meets the padding read 0 · inf = NaN there, as a padded convolution does
@example(((1, 1, 3, 3), (1, 1, 3, 3), (1, 1), ((1, 1), (1, 1)), (1, 1)), "weight", 0, np.inf)
@pytest.mark.parametrize("kernel", KERNELS)
def test_a_non_finite_value_reaches_only_what_reads_it(kernel, layer, where, spot, value):
    """One inf or NaN in x or in the weight (at flat index ``spot`` modulo its size): y, dX, dW and db non-finite
    exactly where the slow references' are, and the finite ones as theirs (float64, blocks of one plane).  The
    shifted runs' spare columns (past W') meet pixels that no output of that offset reads, with dY's zeros:
    inf · 0 = NaN there must not reach dW (an inf in x) or dX (an inf tap)."""
    x_shape, w_shape, stride, pads, dilation = layer
    x, w, b = arrays(x_shape, w_shape, np.float64, spot)
    target = x if where == "x" else w
    target.flat[spot % target.size] = value
    kwargs = dict(stride=stride, padding=pads, dilation=dilation, groups=x_shape[1])
    with np.errstate(invalid="ignore"):     # inf · 0 where an output reads the padding, the references' too
        y, cache = F.conv2d(x, w, b, plan=shifts(1, kernel), **kwargs)
        dy = np.random.default_rng(spot + 1).standard_normal(y.shape)
        got = (y, *F.conv2d_backward(dy, cache))
        expected = (F.conv2d_reference(x, w, b, **kwargs), *F.conv2d_backward_reference(dy, x, w, **kwargs))
    for name, mine, want in zip(["y", "dx", "dW", "db"], got, expected):
        np.testing.assert_allclose(mine, want, rtol=1e-10, atol=1e-10, err_msg=name)   # NaN and ±inf where want's


@settings(max_examples=30, deadline=None)
@given(depthwise_layers(), st.integers(0, 2**16), st.sampled_from([np.inf, -np.inf, np.nan]))
@pytest.mark.parametrize("kernel", KERNELS)
def test_a_non_finite_bias_reaches_its_filters_outputs_alone(kernel, layer, seed, value):
    """The bias is added to a block's runs, the spare values past each output row included, before the outputs are
    copied into y: an inf or NaN bias makes its filter's outputs, every one, that value and no other filter's
    (blocks of one plane and of the default size, float64)."""
    x_shape, w_shape, stride, pads, dilation = layer
    x, w, b = arrays(x_shape, w_shape, np.float64, seed)
    spot = seed % w_shape[0]
    b[spot] = value
    kwargs = dict(stride=stride, padding=pads, dilation=dilation, groups=x_shape[1])
    expected = F.conv2d_reference(x, w, b, **kwargs)
    for block_bytes in (1, plan.DEPTHWISE_BLOCK_BYTES):
        y, _ = F.conv2d(x, w, b, plan=shifts(block_bytes, kernel), **kwargs)
        np.testing.assert_array_equal(y[:, spot], np.full_like(y[:, spot], value))
        others = np.arange(w_shape[0]) != spot
        assert_close(y[:, others], expected[:, others], "the other filters' y vs conv2d_reference")


@settings(max_examples=40, deadline=None)
@given(depthwise_layers(), st.sampled_from([np.float32, np.float64]), st.integers(0, 2**16))
@pytest.mark.usefixtures("batch_threads")
@pytest.mark.parametrize("kernel", KERNELS)
def test_shifts_match_torch(kernel, layer, dtype, seed):
    """y, dX, dW, db against torch (x padded by torch.nn.functional.pad for the sides drawn apart), float32 to
    1e-4 and float64 to 1e-10, one and two threads, and the dtype kept (no silent upcast)."""
    x_shape, w_shape, stride, pads, dilation = layer
    x, w, b = arrays(x_shape, w_shape, dtype, seed)
    c = x_shape[1]
    y, cache = F.conv2d(x, w, b, stride, pads, dilation, c, plan=shifts(2000, kernel))
    dy = np.random.default_rng(seed + 1).standard_normal(y.shape).astype(dtype)
    dx, dw, db = F.conv2d_backward(dy, cache)
    (top, bottom), (left, right) = pads
    y_t, grads = torch_vjp(lambda t, u, v: TF.conv2d(TF.pad(t, (left, right, top, bottom)), u, v, stride,
                                                     dilation=dilation, groups=c), dy, x, w, b)
    for name, got, want in zip(["y", "dx", "dW", "db"], (y, dx, dw, db), (y_t, *grads)):
        assert got.dtype == dtype, f"{name} is {got.dtype}"
        assert_close(got, want, f"{name} vs torch")


@pytest.mark.parametrize("kernel, stride, padding, dilation, m", [
    (7, 1, 3, 1, 1),            # ConvNeXt's
    (3, 2, 1, 1, 1),            # MobileNet's downsampling
    (4, 1, "same", 2, 2),       # an even dilated kernel: 'same' pads one more after
    ((3, 5), (2, 3), (2, 1), (2, 1), 2),
])
def test_a_depthwise_layer_passes_finite_differences(kernel, stride, padding, dilation, m, monkeypatch):
    """nn.Conv2d(groups=C) in float64 on NumPy's kernels (which plan it "depthwise_shifts", or on maps of at most
    DEPTHWISE_CHANNELS_LAST_MAX_PIXELS outputs "depthwise_channels_last"): dX, dW and db against central
    differences, no torch."""
    monkeypatch.setattr(backend_module, "_chosen", "numpy")
    layer = nn.Conv2d(3, 3 * m, kernel, stride, padding, dilation, groups=3, dtype=np.float64,
                      rng=np.random.default_rng(0))
    x = np.random.default_rng(1).standard_normal((2, 3, 9, 10))
    out_h, out_w = layer(x).shape[2:]
    expected = "depthwise_channels_last" if out_h * out_w <= plan.DEPTHWISE_CHANNELS_LAST_MAX_PIXELS else \
        "depthwise_shifts"
    assert layer.saved_for_backward()[0][-1].forward == expected
    check_layer(layer, x, samples=8)


@pytest.mark.parametrize("kernels, backend", [("numpy", "numpy"), ("numba small maps", "numba")])
def test_the_plan_runs_every_depthwise_layer_by_the_shifts_on_numpys_kernels(kernels, backend, monkeypatch):
    """Every depthwise layer — 3×3 at stride 1 and 2, 7×7, dilated, with 2 filters per channel — on NumPy's
    kernels, and on the compiled ones where their general loops do not pay (maps under DEPTHWISE_MIN_PIXELS), by
    the shifts, or by the channels-last kernel where the output map has at most 8×8 pixels (9×9: the shifts);
    a grouped layer that is not depthwise keeps its GEMMs, and one input channel without groups its GEMMs on NumPy's
    kernels, the direct loops on the compiled ones."""
    monkeypatch.setattr(backend_module, "_chosen", backend)
    monkeypatch.setattr(plan, "COMPILED_MIN_ELEMENTS", 0)
    one = ((1, 1), (1, 1))
    dilated = ((1, 1), ((2, 2), (2, 2)), (2, 2))
    layers = [((4, 8, 16, 16), (8, 1, 3, 3), (1, 1), one, (1, 1), 8),
              ((4, 8, 16, 16), (8, 1, 3, 3), (2, 2), one, (1, 1), 8),          # 8×8 outputs
              ((4, 8, 8, 8), (8, 1, 7, 7), (1, 1), ((3, 3), (3, 3)), (1, 1), 8),
              ((4, 8, 16, 16), (8, 1, 3, 3), *dilated, 8),
              ((4, 8, 9, 9), (8, 1, 3, 3), *dilated, 8),
              ((4, 8, 8, 8), (8, 1, 3, 3), *dilated, 8),
              ((4, 8, 8, 8), (16, 1, 5, 5), (1, 1), ((2, 2), (2, 2)), (1, 1), 8)]
    small = [False, True, True, False, False, True, True]
    if backend == "numba":
        if not backend_module.numba_available():
            pytest.skip("Numba is not installed (pip install 'juanji[fast]')")
        small = [size for size, layer in zip(small, layers)
                 if not plan.depthwise_rows(layer[1][2:], layer[2], layer[4], layer[3])]
        layers = [layer for layer in layers if not plan.depthwise_rows(layer[1][2:], layer[2], layer[4], layer[3])]
    assert len(layers) == (7 if backend == "numpy" else 5)
    for layer, on_small_map in zip(layers, small):
        expected = shifts(kernel="depthwise_channels_last" if on_small_map else "depthwise_shifts")
        assert plan.plan_conv(*layer) == expected, layer
    grouped = plan.plan_conv((4, 8, 8, 8), (8, 4, 3, 3), (1, 1), one, (1, 1), 2).forward
    assert grouped == ("grouped" if backend == "numpy" else "compiled_grouped")     # its columns gathered
    one_channel = plan.plan_conv((4, 1, 8, 8), (6, 1, 5, 5), (1, 1), ((2, 2), (2, 2)), (1, 1), 1).forward
    assert one_channel == ("im2col" if backend == "numpy" else "direct")


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("kernel", KERNELS)
def test_backward_without_dx_and_the_inputs_untouched(kernel, dtype):
    x, w, b = arrays((3, 4, 9, 9), (8, 1, 5, 5), dtype, 4)
    copies = [a.copy() for a in (x, w, b)]
    y, cache = F.conv2d(x, w, b, 2, 2, 1, 4, plan=shifts(3000, kernel))
    dy = np.random.default_rng(5).standard_normal(y.shape).astype(dtype)
    dx, dw, db = F.conv2d_backward(dy, cache, need_dx=False)
    _, dw_full, db_full = F.conv2d_backward(dy, cache)
    assert dx is None
    np.testing.assert_array_equal(dw, dw_full)
    np.testing.assert_array_equal(db, db_full)
    for original, copy in zip((x, w, b), copies):
        np.testing.assert_array_equal(original, copy)


def peak_bytes(function):
    """The largest memory NumPy held at once (tracemalloc traces its arrays) while ``function`` ran, less what
    was held before."""
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        function()
        return tracemalloc.get_traced_memory()[1] - before
    finally:
        tracemalloc.stop()


@pytest.mark.parametrize("kernel", KERNELS)
def test_the_shifts_hold_the_input_and_output_not_r_s_copies_of_the_input(kernel):
    """A 7×7 depthwise layer at ConvNeXt's first stage on 28×28 images, forward and backward: what either NumPy
    kernel allocates beyond y, dX and the cache is a few blocks per thread, where the grouped GEMMs' columns are 49
    copies of the input."""
    x, w, b = arrays((8, 96, 28, 28), (96, 1, 7, 7), np.float32, 6)
    dy = np.random.default_rng(7).standard_normal(x.shape).astype(np.float32)
    kwargs = dict(stride=1, padding=3, dilation=1, groups=96)

    def train_step(chosen):
        _, cache = F.conv2d(x, w, b, plan=chosen, **kwargs)
        F.conv2d_backward(dy, cache)

    shifted = peak_bytes(lambda: train_step(shifts(kernel=kernel)))
    grouped = peak_bytes(lambda: train_step(plan.ConvPlan("grouped", "grouped", "col2im")))
    threads = juanji.get_num_threads()
    assert shifted <= 2 * x.nbytes + threads * 2 * plan.DEPTHWISE_BLOCK_BYTES     # y, dX and the blocks
    assert grouped >= 49 * x.nbytes
