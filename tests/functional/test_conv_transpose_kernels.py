"""conv_transpose2d / conv_transpose2d_backward against torch.nn.functional.conv_transpose2d and against the slow
scatter-loop references, for randomly drawn geometries (every argument: stride, padding, output_padding, groups,
dilation, bias), on NumPy's and the compiled kernels (the conv2d plans they reuse), float32 and float64."""
import numpy as np
import pytest
import torch.nn.functional as TF

from juanji.functional import conv_transpose as F
from kernel_check import DTYPES, assert_close, torch_vjp

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
