"""conv_transpose2d / conv_transpose2d_backward against torch.nn.functional.conv_transpose2d and against the slow
scatter-loop references, for randomly drawn geometries (every argument: stride, padding, output_padding, groups,
dilation, bias), on NumPy's and the compiled kernels (the conv2d plans they reuse, and the "phases" forward),
float32 and float64, serially and with the batch split over two threads."""
import numpy as np
import pytest
import torch
import torch.nn.functional as TF
from hypothesis import given, settings
from hypothesis import strategies as st

from juanji.functional import conv_transpose as F
from juanji.functional import plan
from kernel_check import DTYPES, TOLERANCE, assert_close, torch_vjp

pytestmark = pytest.mark.usefixtures("kernels", "batch_threads")


def draw(seed):
    """A random valid geometry: (x shape, weight shape, bias?, stride, padding, output_padding, groups, dilation).
    output_padding < stride or < dilation (torch's rule), so that it may also exceed the stride."""
    rng = np.random.default_rng(seed)
    while True:
        groups = int(rng.integers(1, 4))
        c, k = groups * int(rng.integers(1, 3)), groups * int(rng.integers(1, 3))
        kernel = tuple(int(v) for v in rng.integers(1, 5, 2))
        stride = tuple(int(v) for v in rng.integers(1, 4, 2))
        dilation = tuple(int(v) for v in rng.integers(1, 4, 2))
        padding = tuple(int(v) for v in rng.integers(0, 4, 2))
        output_padding = tuple(int(rng.integers(0, max(s, d))) for s, d in zip(stride, dilation))
        shape = (int(rng.integers(1, 4)), c, int(rng.integers(1, 7)), int(rng.integers(1, 7)))
        out = [F.output_size(shape[2 + a], kernel[a], stride[a], padding[a], output_padding[a], dilation[a])
               for a in range(2)]
        if min(out) > 0:
            return shape, (c, k // groups, *kernel), bool(rng.integers(0, 2)), stride, padding, output_padding, \
                groups, dilation


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("seed", range(12))
def test_conv_transpose2d_matches_torch_and_the_reference(seed, dtype):
    shape, w_shape, has_bias, stride, padding, output_padding, groups, dilation = draw(seed)
    rng = np.random.default_rng(100 + seed)
    x = rng.standard_normal(shape).astype(dtype)
    w = rng.standard_normal(w_shape).astype(dtype)
    b = rng.standard_normal(w_shape[1] * groups).astype(dtype) if has_bias else None
    geometry = (stride, padding, output_padding, groups, dilation)
    y, cache = F.conv_transpose2d(x, w, b, *geometry)
    dy = rng.standard_normal(y.shape).astype(dtype)
    dx, dw, db = F.conv_transpose2d_backward(dy, cache)
    y_t, (dx_t, dw_t, db_t) = torch_vjp(lambda *t: TF.conv_transpose2d(*t, *geometry), dy, x, w, b)
    assert y.dtype == dx.dtype == dw.dtype == dtype
    assert_close(y, y_t, "y")
    assert_close(dx, dx_t, "dx")
    assert_close(dw, dw_t, "dW")
    if has_bias:
        assert_close(db, db_t, "db")
    else:
        assert db is None
    assert_close(F.conv_transpose2d_reference(x, w, b, *geometry), y_t, "reference y")
    dx_r, dw_r, db_r = F.conv_transpose2d_backward_reference(dy, x, w, *geometry)
    assert_close(dx_r, dx_t, "reference dx")
    assert_close(dw_r, dw_t, "reference dW")


def test_output_padding_beyond_the_stride_extends_the_input_and_crops_dx():
    """Stride 1, dilation 2, output_padding 1: the convolution this is the input gradient of has one more output
    per axis than x has pixels; x is extended by zeros, dX cropped back."""
    rng = np.random.default_rng(7)
    x, w = rng.standard_normal((2, 3, 4, 5)), rng.standard_normal((3, 2, 2, 3))
    y, cache = F.conv_transpose2d(x, w, None, 1, 1, 1, 1, 2)
    dy = rng.standard_normal(y.shape)
    dx, dw, _ = F.conv_transpose2d_backward(dy, cache)
    y_t, (dx_t, dw_t) = torch_vjp(lambda *t: TF.conv_transpose2d(*t, None, 1, 1, 1, 1, 2), dy, x, w)
    assert dx.shape == x.shape and dx.flags.c_contiguous
    assert_close(y, y_t, "y")
    assert_close(dx, dx_t, "dx")
    assert_close(dw, dw_t, "dW")


def test_backward_without_dx():
    rng = np.random.default_rng(8)
    x, w = rng.standard_normal((2, 2, 3, 3)), rng.standard_normal((2, 3, 3, 3))
    y, cache = F.conv_transpose2d(x, w, None, 2, 1)
    dx, dw, db = F.conv_transpose2d_backward(np.ones_like(y), cache, need_dx=False)
    assert dx is None and db is None and dw.shape == w.shape


def test_an_empty_output_is_refused():
    with pytest.raises(ValueError, match=r"conv_transpose2d: .*\(1, 1\).*not positive"):
        F.conv_transpose2d(np.zeros((1, 1, 1, 1)), np.zeros((1, 1, 1, 1)), None, 1, 1)


@st.composite
def geometries(draw):
    """A valid transposed convolution: (x shape, weight shape, stride, padding, output_padding, groups, dilation)."""
    groups = draw(st.integers(1, 3))
    c, k = groups * draw(st.integers(1, 3)), groups * draw(st.integers(1, 3))
    kernel, stride, dilation = (draw(st.tuples(st.integers(1, high), st.integers(1, high))) for high in (5, 3, 3))
    padding = draw(st.tuples(st.integers(0, 3), st.integers(0, 3)))
    output_padding = tuple(draw(st.integers(0, max(s, d) - 1)) for s, d in zip(stride, dilation))
    # sizes from 1 up, above the least that gives a positive output
    low = [max(1, (2 * p - d * (r - 1) - o + s - 1) // s + 1) for r, s, p, o, d in
           zip(kernel, stride, padding, output_padding, dilation)]
    size = tuple(draw(st.integers(least, least + 6)) for least in low)
    return (draw(st.integers(1, 5)), c, *size), (c, k // groups, *kernel), stride, padding, output_padding, groups, \
        dilation


def phases_plan(x_shape, w_shape, stride, padding, output_padding, groups, dilation, block):
    """The "phases" plan of this geometry with ``block`` samples per block, whatever the kernels in use."""
    stride, pads, dilation, out = F._geometry(x_shape, w_shape, stride, padding, output_padding, dilation)
    conv_out = F.output_shape(out, w_shape[2:], stride, pads, dilation)
    chosen = plan.plan_conv_transpose(x_shape[:2] + conv_out, w_shape, out, stride, pads, dilation, groups)
    return chosen._replace(forward="phases", block=block)


@settings(max_examples=12, deadline=None)
@given(geometries(), st.integers(1, 3), st.booleans(), st.sampled_from(DTYPES), st.integers(0, 2**16))
def test_phases_forward_matches_torch_and_the_reference(geometry, block, has_bias, dtype, seed):
    """The "phases" forward forced on any geometry, blocks of 1 to 3 samples (a last block cut short): y against
    torch and the scatter-loop reference; the backward from its cache (conv2d's kernels) against torch."""
    x_shape, w_shape, *arguments = geometry
    rng = np.random.default_rng(seed)
    x, w = rng.standard_normal(x_shape).astype(dtype), rng.standard_normal(w_shape).astype(dtype)
    b = rng.standard_normal(w_shape[1] * arguments[3]).astype(dtype) if has_bias else None
    y, cache = F.conv_transpose2d(x, w, b, *arguments, plan=phases_plan(x_shape, w_shape, *arguments, block))
    assert cache[-1].forward == "phases" and y.dtype == dtype
    dy = rng.standard_normal(y.shape).astype(dtype)
    y_t, (dx_t, dw_t, db_t) = torch_vjp(lambda *t: TF.conv_transpose2d(*t, *arguments), dy, x, w, b)
    assert_close(y, y_t, "y vs torch")
    assert_close(y, F.conv_transpose2d_reference(x, w, b, *arguments), "y vs the reference", dtype=dtype)
    dx, dw, db = F.conv_transpose2d_backward(dy, cache)
    assert_close(dx, dx_t, "dx")
    assert_close(dw, dw_t, "dW")
    if has_bias:
        assert_close(db, db_t, "db")


def blocks_plan(x_shape, w_shape, stride, padding, output_padding, groups, dilation, block_bytes):
    """This geometry's plan with the backward "blocks" (dY's columns ``block_bytes`` at a time, dX and dW from each
    block), whatever the kernels in use."""
    stride, pads, dilation, out = F._geometry(x_shape, w_shape, stride, padding, output_padding, dilation)
    conv_out = F.output_shape(out, w_shape[2:], stride, pads, dilation)
    chosen = plan.plan_conv_transpose(x_shape[:2] + conv_out, w_shape, out, stride, pads, dilation, groups)
    return chosen._replace(backward=chosen.backward._replace(forward="compiled_blocks", weight_grad="blocks",
                                                             block_bytes=block_bytes))


@settings(max_examples=15, deadline=None)
@given(geometries().filter(lambda geometry: geometry[5] == 1), st.sampled_from([1, 2000, plan.GATHER_BLOCK_BYTES]),
       st.sampled_from(DTYPES), st.integers(0, 2**16))
def test_blocks_backward_matches_torch_and_the_reference(geometry, block_bytes, dtype, seed):
    """dX and dW by the backward "blocks" forced on any ungrouped geometry, blocks of one sample, of a few (2 kB of
    columns: a last block often cut short) and of the whole batch: against torch and the scatter-loop reference."""
    x_shape, w_shape, *arguments = geometry
    rng = np.random.default_rng(seed)
    x, w = rng.standard_normal(x_shape).astype(dtype), rng.standard_normal(w_shape).astype(dtype)
    y, cache = F.conv_transpose2d(x, w, None, *arguments, plan=blocks_plan(x_shape, w_shape, *arguments, block_bytes))
    dy = rng.standard_normal(y.shape).astype(dtype)
    _, (dx_t, dw_t) = torch_vjp(lambda *t: TF.conv_transpose2d(*t, None, *arguments), dy, x, w)
    dx, dw, db = F.conv_transpose2d_backward(dy, cache)
    assert cache[-1].backward.weight_grad == "blocks" and dx.dtype == dw.dtype == dtype and db is None
    dx_r, dw_r, _ = F.conv_transpose2d_backward_reference(dy, x, w, *arguments)
    for name, got, torchs, reference in (("dx", dx, dx_t, dx_r), ("dW", dw, dw_t, dw_r)):
        assert_close(got, torchs, f"{name} vs torch")
        assert_close(got, reference, f"{name} vs the reference", dtype=dtype)


@pytest.mark.parametrize("value", [np.inf, np.nan])
def test_blocks_backward_spreads_inf_and_nan_as_the_reference(value):
    """A non-finite dY reaches exactly the dX and dW entries the scatter-loop reference's reach (blocks of one
    sample: the columns of the padding are 0, never a product with the inf beside them)."""
    rng = np.random.default_rng(5)
    x, w = rng.random((3, 2, 5, 6)), rng.random((2, 3, 4, 3))
    arguments = ((2, 3), (2, 1), (1, 0), 1, (1, 2))
    y, cache = F.conv_transpose2d(x, w, None, *arguments, plan=blocks_plan(x.shape, w.shape, *arguments, 1))
    dy = rng.random(y.shape)
    for index in ((0, 0, 3, 4), (1, 1, 5, 7), (2, 2, 2, 2)):
        dy[index] = value
    dx, dw, _ = F.conv_transpose2d_backward(dy, cache)
    dx_r, dw_r, _ = F.conv_transpose2d_backward_reference(dy, x, w, *arguments)
    for got, expected in ((dx, dx_r), (dw, dw_r)):
        assert np.array_equal(np.isnan(got), np.isnan(expected)) and np.array_equal(np.isinf(got), np.isinf(expected))
        assert np.isfinite(expected).any() and not np.isfinite(expected).all()
        assert_close(np.nan_to_num(got, posinf=0, neginf=0), np.nan_to_num(expected, posinf=0, neginf=0))


@pytest.mark.parametrize("value", [np.inf, np.nan])
def test_phases_forward_spreads_inf_and_nan_as_torch(value):
    """Non-finite inputs reach exactly the outputs torch's reach: the products of border pixels that fall outside
    y (on the spare columns and rows of the phases) go nowhere."""
    rng = np.random.default_rng(4)
    x, w = rng.random((3, 2, 5, 6)), rng.random((2, 3, 4, 3))
    for index in ((0, 0, 0, 0), (1, 1, 4, 5), (2, 0, 2, 0), (2, 1, 0, 5)):
        x[index] = value
    arguments = ((2, 3), (2, 1), (1, 0), 1, (1, 2))
    y, _ = F.conv_transpose2d(x, w, None, *arguments, plan=phases_plan(x.shape, w.shape, *arguments, 2))
    y_t = TF.conv_transpose2d(torch.from_numpy(x), torch.from_numpy(w), None, *arguments).numpy()
    assert np.array_equal(np.isnan(y), np.isnan(y_t)) and np.array_equal(np.isinf(y), np.isinf(y_t))
    assert np.isfinite(y_t).any() and not np.isfinite(y_t).all()
    finite = np.isfinite(y_t)
    assert np.abs(y[finite] - y_t[finite]).max() <= TOLERANCE[np.dtype(np.float64)] * max(1, np.abs(y_t[finite]).max())


@pytest.mark.parametrize("x_shape, w_shape, stride, padding, chosen", [
    ((64, 64, 16, 16), (64, 32, 4, 4), 2, 1, "phases"),              # DCGAN's upsampling (the benchmark's row)
    ((64, 100, 1, 1), (100, 512, 4, 4), 1, 0, "phases"),              # DCGAN's first layer: 1×1 → 4×4
    ((32, 16, 16, 16), (16, 64, 3, 3), 1, 1, "full_convolution"),     # 16 → 16 at stride 1: GEMMs of one size
    ((32, 16, 16, 16), (16, 64, 3, 3), 1, 0, "full_convolution"),     # 16 → 18: 1.27 times the GEMM
])
def test_plan_takes_phases_on_the_compiled_kernels(kernels, x_shape, w_shape, stride, padding, chosen):
    """On the compiled kernels, "phases" where col2im would run and where the full convolution's GEMM would be at
    least twice the size; NumPy's kernels keep conv2d_input_grad's.  A block holds about a megabyte of products
    and at least ``CONV_TRANSPOSE_MIN_COLUMNS`` pixels (or the whole batch)."""
    stride, pads, dilation, out = F._geometry(x_shape, w_shape, stride, padding, 0, 1)
    got = plan.plan_conv_transpose(x_shape, w_shape, out, stride, pads, dilation, 1)
    expected = plan.input_grad_method((x_shape[0], w_shape[1], *out), w_shape, stride, pads, dilation, 1,
                                      x_shape[2] * x_shape[3])
    assert got.forward == (chosen if kernels == "numba" else expected)
    conv_plan = plan.plan_conv((x_shape[0], w_shape[1], *out), w_shape, stride, pads, dilation, 1)
    if conv_plan[:2] == ("compiled_im2col", "per_sample"):      # dX and dW from the same blocks of dY's columns
        conv_plan = conv_plan._replace(forward="compiled_blocks", weight_grad="blocks",
                                       block_bytes=plan.GATHER_BLOCK_BYTES)
    assert got.backward == conv_plan
    assert (got.backward.weight_grad == "blocks") == (kernels == "numba" and chosen == "phases" and stride == (2, 2))
    if got.forward == "phases":
        pixels, per_sample = x_shape[2] * x_shape[3], w_shape[1] * w_shape[2] * w_shape[3] * x_shape[2] * x_shape[3] * 4
        assert got.block * pixels >= min(plan.CONV_TRANSPOSE_MIN_COLUMNS, x_shape[0] * pixels)
        assert (got.block - 1) * pixels < plan.CONV_TRANSPOSE_MIN_COLUMNS or \
            got.block * per_sample <= plan.CONV_TRANSPOSE_BLOCK_BYTES
