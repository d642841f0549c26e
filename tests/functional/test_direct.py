"""The compiled direct convolution (juanji.functional.compiled.direct): which layers the plan gives it (few input
channels and filters, small calls), y and the gradients against the slow loop references and against torch on random
geometry (any kernel, dilation and padding per side, odd and even filter counts, one and two threads), an inf or NaN
reaching only what reads it, the uncompiled loops against the compiled ones, and a layer that keeps no columns."""
import numpy as np
import pytest
import torch.nn.functional as TF
from hypothesis import example, given, settings
from hypothesis import strategies as st

from juanji import nn
from juanji.functional import conv as F
from juanji.functional import plan
from juanji.functional.compiled import direct
from juanji.runtime import kernels as backend_module
from kernel_check import assert_close, torch_vjp

pytestmark = pytest.mark.usefixtures("numba_kernels")

FIVE, NONE = ((2, 2), (2, 2)), ((0, 0), (0, 0))


@pytest.mark.parametrize("x_shape, w_shape, stride, pads, dilation, groups, takes", [
    ((64, 1, 28, 28), (6, 1, 5, 5), (1, 1), FIVE, (1, 1), 1, True),              # LeNet-5's first layer
    ((16, 4, 9, 9), (16, 4, 5, 5), (1, 1), FIVE, (1, 1), 1, True),
    ((16, 3, 9, 9), (4, 3, 3, 3), (1, 1), NONE, (2, 2), 1, True),                # dilated 3×3: no Winograd
    ((16, 3, 9, 9), (4, 3, 3, 3), (1, 1), ((1, 1), (1, 1)), (1, 1), 1, True),    # 3×3: Winograd's transforms cost more
    ((16, 5, 9, 9), (6, 5, 5, 5), (1, 1), FIVE, (1, 1), 1, False),               # too many channels
    ((16, 1, 9, 9), (17, 1, 5, 5), (1, 1), FIVE, (1, 1), 1, False),              # too many filters
    ((16, 1, 9, 9), (6, 1, 5, 5), (2, 2), FIVE, (1, 1), 1, False),               # strided
    ((2, 4, 9, 9), (4, 2, 5, 5), (1, 1), FIVE, (1, 1), 2, False),                # grouped
    ((1, 6, 14, 14), (16, 6, 5, 5), (1, 1), NONE, (1, 1), 1, True),              # LeNet-5's second at batch 1
    ((2, 6, 14, 14), (16, 6, 5, 5), (1, 1), NONE, (1, 1), 1, True),              # 480,000 multiply-adds
    ((4, 6, 14, 14), (16, 6, 5, 5), (1, 1), NONE, (1, 1), 1, False),             # 960,000
    ((1, 64, 4, 4), (64, 64, 1, 1), (1, 1), NONE, (1, 1), 1, False),             # a small call, but 1×1
])
def test_the_plan_gives_the_direct_loops_few_channels_and_filters_or_small_calls(x_shape, w_shape, stride, pads,
                                                                                  dilation, groups, takes,
                                                                                  monkeypatch):
    """On the compiled kernels, at stride 1 without groups, 3×3 layers included: at most 4 input channels and 16
    filters, or a kernel larger than 1×1 in a call of at most 2¹⁹ multiply-adds; dW by the same loops, dX by NumPy's
    rule.  On NumPy's kernels, never."""
    layer = (x_shape, w_shape, stride, pads, dilation, groups)
    planned = plan.plan_conv(*layer)
    assert (planned.forward == "direct") == takes
    if takes:
        assert planned.weight_grad == "direct"
        assert planned.input_grad == plan.numpy_plan(*layer).input_grad
    monkeypatch.setattr(backend_module, "_chosen", "numpy")
    assert plan.plan_conv(*layer) == plan.numpy_plan(*layer)


@st.composite
def layers(draw):
    """(x shape, weight shape, padding ((top, bottom), (left, right)), dilation) of a direct layer whose (dilated)
    kernel fits in the padded input: 1–4 samples, 1–6 channels, 1–7 filters (a last one alone where odd), kernels
    1–6 along each axis (fewer offsets than the loops take at a time, and some left over)."""
    n, c, k = draw(st.integers(1, 4)), draw(st.integers(1, 6)), draw(st.integers(1, 7))
    kernel = (draw(st.integers(1, 6)), draw(st.integers(1, 6)))
    dilation = (draw(st.integers(1, 2)), draw(st.integers(1, 2)))
    pads = tuple((draw(st.integers(0, 3)), draw(st.integers(0, 3))) for _ in range(2))
    reach = [d * (r - 1) + 1 - sum(p) for r, d, p in zip(kernel, dilation, pads)]
    h, w = (max(1, size) + draw(st.integers(0, 6)) for size in reach)
    return (n, c, h, w), (k, c, *kernel), pads, dilation


def direct_plan(x_shape, w_shape, pads, dilation):
    """The direct loops for the layer, whatever the plan's rule would pick (a plain 3×3 would be Winograd's)."""
    return plan.numpy_plan(x_shape, w_shape, (1, 1), pads, dilation, 1)._replace(forward="direct",
                                                                                 weight_grad="direct")


def arrays(x_shape, w_shape, dtype, seed):
    rng = np.random.default_rng(seed)
    return (rng.standard_normal(x_shape).astype(dtype), rng.standard_normal(w_shape).astype(dtype),
            rng.standard_normal(w_shape[0]).astype(dtype))


@pytest.mark.usefixtures("batch_threads")
@settings(max_examples=40, deadline=None)
@given(layers(), st.booleans(), st.integers(0, 2**16))
def test_direct_matches_the_slow_references(layer, bias, seed):
    """y, dX, dW and db (float64) as the loops over outputs and kernel offsets; backward without dX gives the
    same dW."""
    x_shape, w_shape, pads, dilation = layer
    x, w, b = arrays(x_shape, w_shape, np.float64, seed)
    b = b if bias else None
    y, cache = F.conv2d(x, w, b, 1, pads, dilation, plan=direct_plan(*layer))
    assert cache[-1].forward == "direct"
    assert_close(y, F.conv2d_reference(x, w, b, padding=pads, dilation=dilation), "y vs conv2d_reference")
    dy = np.random.default_rng(seed + 1).standard_normal(y.shape)
    expected = F.conv2d_backward_reference(dy, x, w, padding=pads, dilation=dilation)
    got = F.conv2d_backward(dy, cache)
    for name, mine, want in zip(["dx", "dW", "db"], got, expected):
        assert_close(mine, want, f"{name} vs conv2d_backward_reference")
    no_dx, dw_alone, _ = F.conv2d_backward(dy, cache, need_dx=False)
    assert no_dx is None
    np.testing.assert_array_equal(dw_alone, got[1])


@pytest.mark.usefixtures("batch_threads")
@settings(max_examples=40, deadline=None)
@given(layers(), st.sampled_from([np.float32, np.float64]), st.integers(0, 2**16))
def test_direct_matches_torch(layer, dtype, seed):
    """y, dX, dW, db against torch (x padded by torch.nn.functional.pad for the sides drawn apart), float32 to 1e-4
    and float64 to 1e-10, the dtype kept (no silent upcast)."""
    x_shape, w_shape, pads, dilation = layer
    x, w, b = arrays(x_shape, w_shape, dtype, seed)
    y, cache = F.conv2d(x, w, b, 1, pads, dilation, plan=direct_plan(*layer))
    dy = np.random.default_rng(seed + 1).standard_normal(y.shape).astype(dtype)
    dx, dw, db = F.conv2d_backward(dy, cache)
    (top, bottom), (left, right) = pads
    y_t, grads = torch_vjp(lambda t, u, v: TF.conv2d(TF.pad(t, (left, right, top, bottom)), u, v,
                                                     dilation=dilation), dy, x, w, b)
    for name, got, want in zip(["y", "dx", "dW", "db"], (y, dx, dw, db), (y_t, *grads)):
        assert got.dtype == dtype, f"{name} is {got.dtype}"
        assert_close(got, want, f"{name} vs torch")


@settings(max_examples=40, deadline=None)
@given(layers(), st.sampled_from(["x", "weight"]), st.integers(0, 2**16),
       st.sampled_from([np.inf, -np.inf, np.nan]))
# 3×3 unpadded on 4×5: x's last column is read by the offsets v = 2 alone, yet lies in the spare columns of the runs
# of v = 0 and 1, where dY's zeros meet it
@example(((1, 1, 4, 5), (2, 1, 3, 3), ((0, 0), (0, 0)), (1, 1)), "x", 9, np.inf)
@example(((2, 2, 6, 6), (3, 2, 3, 3), ((1, 1), (1, 1)), (1, 1)), "weight", 4, np.nan)
def test_a_non_finite_value_reaches_only_what_reads_it(layer, where, spot, value):
    """One inf or NaN in x or in the weight (at flat index ``spot`` modulo its size): y, dW and db, what the direct
    loops compute, non-finite exactly where the slow references' are, and the finite ones as theirs (float64).  (dX
    is NumPy's kernels', whose full convolution multiplies an inf tap by dY's zero padding.)"""
    x_shape, w_shape, pads, dilation = layer
    x, w, b = arrays(x_shape, w_shape, np.float64, spot)
    target = x if where == "x" else w
    target.flat[spot % target.size] = value
    with np.errstate(invalid="ignore"):     # inf · 0 where an output reads the padding, the references' too
        y, cache = F.conv2d(x, w, b, 1, pads, dilation, plan=direct_plan(*layer))
        dy = np.random.default_rng(spot + 1).standard_normal(y.shape)
        _, dw, db = F.conv2d_backward(dy, cache, need_dx=False)
        _, dw_expected, db_expected = F.conv2d_backward_reference(dy, x, w, padding=pads, dilation=dilation)
        y_expected = F.conv2d_reference(x, w, b, padding=pads, dilation=dilation)
    for name, mine, want in (("y", y, y_expected), ("dW", dw, dw_expected), ("db", db, db_expected)):
        np.testing.assert_allclose(mine, want, rtol=1e-10, atol=1e-10, err_msg=name)   # NaN and ±inf where want's


def test_the_uncompiled_loops_compute_what_the_compiled_ones_do():
    rng = np.random.default_rng(3)
    x, w, b = rng.standard_normal((2, 2, 7, 6)), rng.standard_normal((3, 2, 3, 2)), rng.standard_normal(3)
    x[1, 0, 2, 5] = np.inf                  # the second sample's dW sums row by row
    corner, dilation = (1, 0), (2, 1)
    ho, wo = 7 + 1 + 2 - 2 * 2, 6 - 1           # padded by (1, 2) rows and (0, 0) columns
    y = {}
    for name, loop in (("compiled", direct.forward_loop), ("uncompiled", direct.forward_loop.py_func)):
        y[name] = np.empty((2, 3, ho, wo))
        loop(x, w, b, y[name], corner, dilation)
    np.testing.assert_allclose(y["compiled"], y["uncompiled"], rtol=1e-12, atol=1e-12)   # sums fused, reordered
    dy = rng.standard_normal((2, 3, ho, wo))
    sums = {}
    for name, loop in (("compiled", direct.weight_grad_loop), ("uncompiled", direct.weight_grad_loop.py_func)):
        sums[name] = np.zeros((3, 12))
        loop(dy, x, sums[name], (3, 2), corner, dilation)
    np.testing.assert_allclose(sums["compiled"], sums["uncompiled"], rtol=1e-12, atol=1e-12)


def test_lenet5s_first_layer_keeps_no_columns_and_its_gradients_match_torch():
    """nn.Conv2d(1, 6, 5, padding=2) on the compiled kernels: its cache holds the input, its workspace nothing
    (im2col's columns would be 25 copies of the input), and its gradients are torch's."""
    layer = nn.Conv2d(1, 6, 5, padding=2, dtype=np.float64, rng=np.random.default_rng(0))
    x = np.random.default_rng(1).standard_normal((8, 1, 28, 28))
    y = layer(x)
    dy = np.random.default_rng(2).standard_normal(y.shape)
    assert layer._workspace.nbytes() == 0
    dx = layer.backward(dy)
    y_t, (dx_t, dw_t, db_t) = torch_vjp(lambda t, u, v: TF.conv2d(t, u, v, padding=2), dy, x,
                                        layer.params["weight"], layer.params["bias"])
    for name, got, want in (("y", y, y_t), ("dx", dx, dx_t), ("dW", layer.grads["weight"], dw_t),
                            ("db", layer.grads["bias"], db_t)):
        assert_close(got, want, f"{name} vs torch")
