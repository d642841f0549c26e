"""The compiled loops of depthwise 3×3 layers at stride 1 or 2 (MobileNet's): plane by plane ("depthwise_rows", dX
by the forward's loop or by spreading dY, "depthwise_scatter") and channels innermost on small maps
("depthwise_channels"), against the slow references and torch on random geometry (float64 and float32, one and two
threads), their uncompiled loops, an inf or NaN, and the plan's rule between them."""
import numpy as np
import pytest
import torch.nn.functional as TF
from hypothesis import given, settings
from hypothesis import strategies as st

from juanji.functional import conv, plan
from juanji.functional.compiled import depthwise as compiled_depthwise
from juanji.functional.plan import ConvPlan
from juanji.runtime import kernels
from kernel_check import DTYPES, assert_close, torch_vjp

CHANNELS = ConvPlan("depthwise_channels", "depthwise_channels", "depthwise_channels")


def plans(stride, m):
    """The plans that run a 3×3 layer at ``stride`` with ``m`` filters per channel: the row loops (dX by the
    forward's loop where it applies, by spreading dY always), and the channels-innermost loops at m = 1."""
    forced = [ConvPlan("depthwise_rows", "depthwise_rows", "depthwise_scatter")]
    if stride == 1 and m == 1:
        forced.append(ConvPlan("depthwise_rows", "depthwise_rows", "depthwise_rows"))
    return forced + ([CHANNELS] if m == 1 else [])


@st.composite
def layers_3x3(draw):
    """(x shape, m, stride, ((top, bottom), (left, right))): a 3×3 depthwise layer, each side padded by 0 to 2, on a
    map of 1 to 9 rows and columns that the padded window fits."""
    stride = draw(st.sampled_from([1, 2]))
    pads = tuple((draw(st.integers(0, 2)), draw(st.integers(0, 2))) for _ in range(2))
    h, w = (max(1, 3 - sum(side)) + draw(st.integers(0, 6)) for side in pads)
    return (draw(st.integers(1, 4)), draw(st.integers(1, 5)), h, w), draw(st.integers(1, 2)), stride, pads


@settings(max_examples=80, deadline=None)
@given(layers_3x3(), st.sampled_from(DTYPES), st.booleans(), st.integers(0, 2**16))
@pytest.mark.usefixtures("batch_threads", "numba_kernels")
def test_the_3x3_loops_match_the_slow_references_and_torch(layer, dtype, bias, seed):
    """y, dX and dW of every plan that runs the layer, against the loop references (run in float64) and torch,
    the dtype kept; on two threads the planes or samples are cut into two runs, unevenly where odd."""
    x_shape, m, stride, pads = layer
    c = x_shape[1]
    rng = np.random.default_rng(seed)
    x, w = rng.standard_normal(x_shape), rng.standard_normal((m * c, 1, 3, 3))
    b = rng.standard_normal(m * c) if bias else None
    kwargs = dict(stride=stride, padding=pads, groups=c)
    expected = conv.conv2d_reference(x, w, b, **kwargs)
    dy = rng.standard_normal(expected.shape)
    dx_ref, dw_ref, _ = conv.conv2d_backward_reference(dy, x, w, **kwargs)
    (top, bottom), (left, right) = pads
    _, (dx_t, dw_t, _) = torch_vjp(lambda t, u, v: TF.conv2d(TF.pad(t, (left, right, top, bottom)), u, v, stride,
                                                             groups=c), dy, x, w, b)
    cast = [None if a is None else a.astype(dtype) for a in (x, w, b, dy)]
    for chosen in plans(stride, m):
        y, cache = conv.conv2d(*cast[:3], plan=chosen, **kwargs)
        dx, dw, _ = conv.conv2d_backward(cast[3], cache, need_db=False)
        for name, got, want, torch_ in (("y", y, expected, None), ("dx", dx, dx_ref, dx_t), ("dW", dw, dw_ref, dw_t)):
            assert got.dtype == dtype, f"{name} of {chosen} is {got.dtype}"
            assert_close(got, want, f"{name} vs the reference, {chosen}", dtype=dtype)
            if torch_ is not None:
                assert_close(got, torch_, f"{name} vs torch, {chosen}", dtype=dtype)


@pytest.mark.parametrize("where", ["x", "weight"])
@pytest.mark.parametrize("value", [np.inf, -np.inf, np.nan])
@pytest.mark.parametrize("stride", [1, 2])
@pytest.mark.usefixtures("numba_kernels")
def test_an_inf_or_nan_reaches_what_reads_it(where, value, stride):
    """One non-finite value in x or in a filter: y, dW and dX non-finite exactly where the references' are, the rest
    as theirs.  dX by the forward's loop over dY is left out for a non-finite filter: it multiplies the filter by
    dY's zero padding (inf · 0 = NaN) where the reference adds nothing."""
    rng = np.random.default_rng(3)
    x, w = rng.standard_normal((2, 3, 5, 6)), rng.standard_normal((3, 1, 3, 3))
    (x if where == "x" else w)[1, 0, 2, 1] = value
    kwargs = dict(stride=stride, padding=1, groups=3)
    with np.errstate(invalid="ignore"):
        expected = conv.conv2d_reference(x, w, None, **kwargs)
        dy = rng.standard_normal(expected.shape)
        dx_ref, dw_ref, _ = conv.conv2d_backward_reference(dy, x, w, **kwargs)
        for chosen in plans(stride, 1):
            y, cache = conv.conv2d(x, w, None, plan=chosen, **kwargs)
            dx, dw, _ = conv.conv2d_backward(dy, cache)
            checks = [("y", y, expected), ("dW", dw, dw_ref)]
            if where == "x" or chosen.input_grad != "depthwise_rows":
                checks.append(("dx", dx, dx_ref))
            for name, got, want in checks:
                np.testing.assert_allclose(got, want, rtol=1e-10, atol=1e-10, err_msg=f"{name}, {chosen}")
    assert not np.isfinite(y).all() and not np.isfinite(dw if where == "x" else dx).all()     # it did reach them


@pytest.mark.skipif(not kernels.numba_available(), reason="Numba is not installed")
@pytest.mark.parametrize("step", [1, 2])
def test_the_uncompiled_3x3_loops_agree_with_the_compiled_ones(step):
    """``py_func`` of each 3×3 loop (the row loop in two runs; asymmetric padding; at stride 2 a last row that no
    window reads; dX from two filters per channel): the same numbers as the compiled loop."""
    rng = np.random.default_rng(6)
    x, w, b = rng.standard_normal((3, 4, 7, 6)), rng.standard_normal((4, 1, 3, 3)), rng.standard_normal(4)
    pads = (2, 0)
    out = ((7 + 2 + 1 - 3) // step + 1, (6 + 0 + 1 - 3) // step + 1)      # bottom 1, right 1
    dy, dy_two = rng.standard_normal((3, 4, *out)), rng.standard_normal((3, 8, *out))
    by_channel = np.ascontiguousarray(w[:, 0].transpose(1, 2, 0))
    calls = [(compiled_depthwise.depthwise_forward_3x3, (x, w, b), (3, 4, *out), (pads, step, 2)),
             (compiled_depthwise.depthwise_input_grad_3x3, (dy_two, np.concatenate([w, -w])), x.shape, (pads, step)),
             (compiled_depthwise.depthwise_forward_channels, (x, by_channel, b), (3, 4, *out), (pads, step)),
             (compiled_depthwise.depthwise_input_grad_channels, (dy, by_channel), x.shape, (pads, step))]
    for loop, inputs, shape, settings_ in calls:
        first, second = np.zeros(shape), np.zeros(shape)
        loop(*inputs, first, *settings_)
        loop.py_func(*inputs, second, *settings_)
        assert np.allclose(first, second, rtol=1e-13, atol=1e-13) and np.abs(first).max() > 0, loop
    sums = compiled_depthwise.depthwise_weight_grad_channels(dy, x, pads, step)
    assert np.allclose(sums, compiled_depthwise.depthwise_weight_grad_channels.py_func(dy, x, pads, step),
                       rtol=1e-13, atol=1e-13)


@pytest.mark.usefixtures("numba_kernels")
def test_the_plan_keeps_the_channels_innermost_up_to_7x7_outputs(monkeypatch):
    """MobileNet v2's 3×3 layers at batch 64 on 32×32 images, with the library's thresholds: the compiled loops at
    every size (small arrays included), channels innermost on outputs of at most 7×7 with one filter per channel,
    else the row loops, dX by the forward's loop at stride 1 and one filter per channel, by spreading dY otherwise."""
    monkeypatch.setattr(plan, "COMPILED_MIN_ELEMENTS", 1 << 19)
    one = ((1, 1), (1, 1))

    def chosen(size, channels, stride, m=1, batch=64):
        return plan.plan_conv((batch, channels, size, size), (m * channels, 1, 3, 3), (stride, stride), one, (1, 1),
                              channels)
    assert chosen(32, 32, 1) == ConvPlan("depthwise_rows", "depthwise_rows", "depthwise_rows")
    assert chosen(32, 96, 2) == ConvPlan("depthwise_rows", "depthwise_rows", "depthwise_scatter")
    assert chosen(8, 192, 1) == ConvPlan("depthwise_rows", "depthwise_rows", "depthwise_rows")     # 8×8 out
    for size, channels, stride in ((8, 192, 2), (4, 384, 1), (4, 576, 2), (2, 960, 1), (7, 160, 1), (14, 576, 2)):
        assert chosen(size, channels, stride) == CHANNELS, (size, channels, stride)
    assert chosen(2, 960, 1, batch=1) == CHANNELS                       # 3840 values: compiled all the same
    assert chosen(4, 8, 1, m=2) == ConvPlan("depthwise_rows", "depthwise_rows", "depthwise_scatter")
    assert plan.plan_conv((2, 8, 4, 4), (8, 1, 3, 3), (1, 1), ((2, 2), (2, 2)), (2, 2), 8).forward == \
        "depthwise_channels_last"                                       # dilated: NumPy's on small maps
