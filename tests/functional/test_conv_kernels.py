"""conv2d / conv2d_backward against torch.nn.functional.conv2d, against the slow loop references (forward and
backward), and im2col/col2im adjointness."""
import numpy as np
import pytest
import torch
import torch.nn.functional as TF
from hypothesis import given, settings
from hypothesis import strategies as st

import juanji
from juanji.functional import conv as F
from juanji.functional import geometry as G
from juanji.functional import plan
from juanji.runtime import kernels as backend_kernels
from juanji.runtime.kernels import numba_available
from juanji.runtime.workspace import Workspace
from kernel_check import DTYPES, assert_close, torch_vjp

# Every test runs on NumPy's and on the compiled kernels (``kernels``), serially and with the batch split
# over two threads (``batch_threads``).
pytestmark = [pytest.mark.filterwarnings("ignore:Using padding=.same. with even kernel:UserWarning"),
              pytest.mark.usefixtures("kernels", "batch_threads")]

# (N, C, H, W), K, kernel, conv keyword arguments
CONV_CASES = [
    pytest.param((1, 3, 7, 7), 4, 3, dict(padding=1), id="batch1"),
    pytest.param((2, 3, 9, 11), 5, 3, dict(), id="odd-sizes"),
    pytest.param((2, 3, 8, 8), 4, 3, dict(stride=2, padding=1), id="stride2-remainder"),      # (8+2-3) % 2 = 1
    pytest.param((2, 2, 9, 10), 3, 3, dict(stride=3, padding=1), id="stride3-remainder"),     # (9+2-3) % 3 = 2
    pytest.param((2, 3, 9, 9), 4, 3, dict(padding=2, dilation=2), id="dilation2"),
    pytest.param((2, 3, 10, 9), 4, 3, dict(stride=2, dilation=(2, 1)), id="dilation-stride-mixed"),
    pytest.param((2, 4, 7, 7), 6, 3, dict(padding=1, groups=2), id="groups2"),
    pytest.param((2, 4, 7, 7), 4, 3, dict(padding=1, groups=4), id="depthwise"),
    pytest.param((2, 4, 6, 6), 8, 3, dict(stride=2, groups=4), id="depthwise-multiplier2"),
    pytest.param((2, 5, 6, 7), 3, 1, dict(), id="1x1"),
    pytest.param((2, 3, 6, 5), 7, 1, dict(), id="1x1-widening"),                 # dX by the full convolution
    pytest.param((3, 5, 3, 3), 7, 1, dict(), id="1x1-3x3-map"),                  # one GEMM over the batch
    pytest.param((3, 6, 2, 2), 4, 1, dict(bias=False), id="1x1-2x2-map-no-bias"),
    pytest.param((3, 3, 4, 4), 20, 1, dict(), id="1x1-widening-small-map"),      # dW and dX over the batch
    pytest.param((2, 6, 5, 5), 4, 1, dict(stride=2, groups=2), id="1x1-stride2-groups"),
    pytest.param((2, 2, 5, 6), 3, (7, 8), dict(padding=1), id="kernel-as-large-as-padded-input"),
    pytest.param((2, 3, 4, 4), 2, 4, dict(), id="kernel-as-large-as-input"),
    pytest.param((2, 3, 7, 6), 4, 4, dict(padding="same"), id="same-even-kernel"),
    pytest.param((2, 3, 9, 8), 4, 4, dict(padding="same", dilation=2), id="same-even-kernel-dilation2"),
    pytest.param((2, 3, 6, 7), 2, (2, 3), dict(padding="same", dilation=(3, 2)), id="same-asymmetric"),
    pytest.param((2, 3, 6, 7), 4, 3, dict(padding="same", groups=1), id="same-odd-kernel"),
    pytest.param((2, 3, 8, 7), 4, 3, dict(padding="valid"), id="valid"),
    pytest.param((2, 3, 9, 10), 4, (3, 5), dict(stride=(2, 1), padding=(1, 2)), id="asymmetric"),
    pytest.param((2, 3, 7, 7), 4, 3, dict(padding=1, bias=False), id="no-bias"),
]


def run_both(shape, k, kernel, kwargs, dtype, seed=0):
    """Forward and backward of juanji's kernel and of torch's on the same arrays."""
    rng = np.random.default_rng(seed)
    kwargs = dict(kwargs)
    use_bias = kwargs.pop("bias", True)
    kernel = (kernel, kernel) if isinstance(kernel, int) else kernel
    groups = kwargs.get("groups", 1)
    x = rng.standard_normal(shape).astype(dtype)
    w = rng.standard_normal((k, shape[1] // groups, *kernel)).astype(dtype)
    b = rng.standard_normal(k).astype(dtype) if use_bias else None
    y, cache = F.conv2d(x, w, b, **kwargs)
    dy = rng.standard_normal(y.shape).astype(dtype)
    dx, dw, db = F.conv2d_backward(dy, cache)
    y_t, (dx_t, dw_t, db_t) = torch_vjp(lambda *t: TF.conv2d(*t, **kwargs), dy, x, w, b)
    return (y, dx, dw, db), (y_t, dx_t, dw_t, db_t)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape, k, kernel, kwargs", CONV_CASES)
def test_conv2d_forward_backward_match_torch(shape, k, kernel, kwargs, dtype):
    ours, theirs = run_both(shape, k, kernel, kwargs, dtype)
    for name, a, b in zip(["y", "dx", "dW", "db"], ours, theirs):
        if b is None:
            assert a.shape == (k,)     # db is always computed; there is just no bias to compare it to
            continue
        assert a.dtype == dtype, f"{name} is {a.dtype}, expected {np.dtype(dtype)} (no silent upcast)"
        assert_close(a, b, name)


@pytest.mark.parametrize("conv_kwargs, skipped, left_out", [(dict(stride=2), "need_dx", 0),
                                                             (dict(padding=1), "need_db", 2)],
                         ids=["without dx", "without db"])
def test_a_gradient_not_needed_is_skipped_and_the_others_are_unchanged(conv_kwargs, skipped, left_out):
    """``need_dx`` False (the first layer): dx None; ``need_db`` False (nn.Conv2d without bias): db None; the other
    gradients of (dx, dW, db) are those of a full backward."""
    rng = np.random.default_rng(1)
    x, w = rng.standard_normal((2, 3, 6, 6)), rng.standard_normal((4, 3, 3, 3))
    y, cache = F.conv2d(x, w, **conv_kwargs)
    dy = rng.standard_normal(y.shape)
    full = F.conv2d_backward(dy, cache)
    for index, (ours, expected) in enumerate(zip(F.conv2d_backward(dy, cache, **{skipped: False}), full)):
        if index == left_out:
            assert ours is None
        else:
            np.testing.assert_array_equal(ours, expected)


def test_pointwise_layers_on_small_maps_make_their_gemms_over_the_batch():
    """1×1 at stride 1 without groups: on maps of at most POINTWISE_BATCH_MAX_PIXELS the grouped kernels at one
    group (channel-major columns, dW and dX from them), on larger maps per-sample GEMMs on the input itself; dX
    over the batch from dY's channel-major copy where dW made one (K > H'·W') and the layer widens, else by the full
    convolution whether the layer widens or not (at 1×1 both ways are the one product Wᵀ · dY); by col2im where
    the layer pads."""
    none = ((0, 0), (0, 0))
    for size in (2, 3):
        for k in (4, 16):
            assert plan.plan_conv((64, 8, size, size), (k, 8, 1, 1), (1, 1), none, (1, 1), 1) == \
                plan.ConvPlan("grouped", "grouped", "batch_col2im"), (size, k)
    for size, k, weight_grad, input_grad in ((4, 4, "per_sample", "full_convolution"),
                                             (4, 16, "per_sample", "full_convolution"),
                                             (4, 24, "batch", "batch_col2im"), (8, 4, "per_sample", "full_convolution"),
                                             (8, 72, "batch", "batch_col2im")):
        assert plan.plan_conv((64, 8, size, size), (k, 8, 1, 1), (1, 1), none, (1, 1), 1) == \
            plan.ConvPlan("pointwise", weight_grad, input_grad), (size, k)
    assert plan.plan_conv((64, 32, 4, 4), (24, 32, 1, 1), (1, 1), none, (1, 1), 1).input_grad == "full_convolution"
    padded = plan.plan_conv((64, 8, 2, 2), (16, 8, 1, 1), (1, 1), ((1, 1), (1, 1)), (1, 1), 1)
    assert padded.forward == "pointwise" and padded.input_grad.endswith("col2im")     # 4×4 out


@pytest.mark.parametrize("groups, k, padding, stride", [(1, 4, 1, 1), (1, 4, 0, 2), (3, 6, 0, 1), (3, 6, 1, 2),
                                                       (3, 3, 0, 1)])
def test_conv2d_does_not_modify_its_inputs(groups, k, padding, stride):
    """Including grouped layers, which keep x itself to copy the columns again in backward, and col2im
    paths that scatter into memory of the input's shape."""
    rng = np.random.default_rng(2)
    x, w, b = rng.standard_normal((2, 3, 5, 5)), rng.standard_normal((k, 3 // groups, 3, 3)), rng.standard_normal(k)
    copies = [a.copy() for a in (x, w, b)]
    y, cache = F.conv2d(x, w, b, stride=stride, padding=padding, groups=groups)
    F.conv2d_backward(rng.standard_normal(y.shape), cache)
    for original, copy in zip((x, w, b), copies):
        np.testing.assert_array_equal(original, copy)


# -- the slow reference and im2col/col2im ---------------------------------------------------------

@st.composite
def conv_configs(draw):
    """A valid conv configuration: groups divide C and K, padding 'same' only at stride 1, and the
    (dilated) kernel fits in the padded input."""
    groups = draw(st.sampled_from([1, 1, 2, 3]))
    c, k = groups * draw(st.integers(1, 2)), groups * draw(st.integers(1, 2))
    r, s = draw(st.integers(1, 4)), draw(st.integers(1, 4))
    dh, dw = draw(st.integers(1, 3)), draw(st.integers(1, 3))
    stride = (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
    if stride == (1, 1) and draw(st.booleans()):
        padding = draw(st.sampled_from(["same", "valid"]))
    else:
        padding = (draw(st.integers(0, 2)), draw(st.integers(0, 2)))
    pads = G.resolve_padding(padding, (r, s), (dh, dw))
    low_h, low_w = max(1, dh * (r - 1) + 1 - sum(pads[0])), max(1, dw * (s - 1) + 1 - sum(pads[1]))
    h, w = draw(st.integers(low_h, low_h + 6)), draw(st.integers(low_w, low_w + 6))
    return dict(shape=(draw(st.integers(1, 3)), c, h, w), weight=(k, c // groups, r, s),
                kwargs=dict(stride=stride, padding=padding, dilation=(dh, dw), groups=groups),
                bias=draw(st.booleans()), seed=draw(st.integers(0, 2**16)))


@settings(max_examples=60, deadline=None)
@given(conv_configs())
def test_conv2d_matches_slow_reference(config):
    rng = np.random.default_rng(config["seed"])
    x, w = rng.standard_normal(config["shape"]), rng.standard_normal(config["weight"])
    b = rng.standard_normal(config["weight"][0]) if config["bias"] else None
    y, _ = F.conv2d(x, w, b, **config["kwargs"])
    expected = F.conv2d_reference(x, w, b, **config["kwargs"])
    assert y.shape == expected.shape
    assert_close(y, expected, "conv2d vs conv2d_reference")


@settings(max_examples=60, deadline=None)
@given(conv_configs())
def test_conv2d_backward_matches_slow_reference(config):
    """The fast dX, dW, db (every path: per-sample or channel-major dW, full convolution or col2im dX)
    against the loops over kernel offsets; the weight- and input-gradient functions also on their own,
    making the channel-major dY themselves."""
    rng = np.random.default_rng(config["seed"])
    x, w = rng.standard_normal(config["shape"]), rng.standard_normal(config["weight"])
    y, cache = F.conv2d(x, w, **config["kwargs"])
    dy = rng.standard_normal(y.shape)
    expected = F.conv2d_backward_reference(dy, x, w, **config["kwargs"])
    for name, got, want in zip(["dx", "dW", "db"], F.conv2d_backward(dy, cache), expected):
        assert got.shape == want.shape
        assert_close(got, want, f"{name} vs conv2d_backward_reference")
    juanji.set_kernels("numpy")     # the two functions are pieces of NumPy's im2col kernels: their columns
    groups = config["kwargs"]["groups"]
    # every dW method the plan may name for this layer, forced, whatever the plan chose, on each layout of columns
    # it may keep: a grouped layer's channel-major; an ungrouped layer's sample-major, or on small maps channel-major
    # (one group).  The first is the layout the functions' default methods read.
    layouts = ([("grouped", ["grouped"])] if groups > 1 else
               [("im2col", ["per_sample", "batch"]), ("grouped", ["grouped"])])
    for forward, weight_methods in layouts:
        columns = plan.ConvPlan(forward, weight_methods[0], "col2im")
        x_shape, cols, weight, stride, dilation, pads, _, _ = F.conv2d(x, w, plan=columns, **config["kwargs"])[1]
        if forward == layouts[0][0]:
            assert_close(F.conv2d_weight_grad(dy, cols, w.shape, groups), expected[1], "conv2d_weight_grad")
        for method in weight_methods:
            assert_close(F.conv2d_weight_grad(dy, cols, w.shape, groups, method=method), expected[1],
                         f"{method} on {forward}'s columns")
    assert_close(F.conv2d_input_grad(dy, w, x.shape, stride, pads, dilation, groups), expected[0],
                 "conv2d_input_grad")
    input_methods = ["col2im"] + ([] if groups > 1 else ["compiled_col2im"] if numba_available() else [])
    if tuple(stride) == (1, 1) and plan.full_convolution_padding(pads, w.shape[2:], dilation) is not None:
        input_methods.append("full_convolution")
    for method in input_methods:
        assert_close(F.conv2d_input_grad(dy, w, x.shape, stride, pads, dilation, groups, method=method),
                     expected[0], method)


def test_conv2d_references_match_torch():
    """The references are themselves checked against torch, so the property tests above mean something."""
    rng = np.random.default_rng(3)
    x, w, b = rng.standard_normal((2, 4, 7, 8)), rng.standard_normal((6, 2, 3, 2)), rng.standard_normal(6)
    kwargs = dict(stride=(2, 1), padding=(1, 2), dilation=(1, 2), groups=2)
    expected = TF.conv2d(torch.from_numpy(x), torch.from_numpy(w), torch.from_numpy(b), **kwargs)
    assert_close(F.conv2d_reference(x, w, b, **kwargs), expected, "conv2d_reference vs torch")
    dy = rng.standard_normal(expected.shape)
    _, torch_grads = torch_vjp(lambda *t: TF.conv2d(*t, **kwargs), dy, x, w, b)
    for name, got, want in zip(["dx", "dW", "db"], F.conv2d_backward_reference(dy, x, w, **kwargs), torch_grads):
        assert_close(got, want, f"conv2d_backward_reference {name} vs torch")


@settings(max_examples=60, deadline=None)
@given(conv_configs())
def test_im2col_col2im_are_adjoint(config):
    """⟨im2col(x), c⟩ = ⟨x, col2im(c)⟩ for every x and c: col2im is exactly im2col's transpose, which is
    what makes dX = col2im(Wᵀ dY) the gradient."""
    rng = np.random.default_rng(config["seed"])
    k, _, r, s = config["weight"]
    n, c, h, w = config["shape"]
    stride, dilation = config["kwargs"]["stride"], config["kwargs"]["dilation"]
    pads = G.resolve_padding(config["kwargs"]["padding"], (r, s), dilation)
    padded = (n, c, h + sum(pads[0]), w + sum(pads[1]))
    out = G.output_shape((h, w), (r, s), stride, pads, dilation)
    xp = rng.standard_normal(padded)
    for channel_major, shape in ((False, (n, c * r * s, out[0] * out[1])),
                                 (True, (c * r * s, n * out[0] * out[1]))):
        cols = F.im2col(xp, (r, s), stride, dilation, out, channel_major=channel_major)
        assert cols.shape == shape
        other = rng.standard_normal(cols.shape)
        back = F.col2im(other, padded, (r, s), stride, dilation, out, channel_major=channel_major)
        assert back.shape == padded
        lhs, rhs = np.vdot(cols, other), np.vdot(xp, back)
        assert abs(lhs - rhs) <= 1e-12 * max(1.0, np.abs(cols).sum() * np.abs(other).max())


def test_im2col_layout():
    """Row c·R·S + r·S + s of the window of output (i, j) of sample n holds
    xp[n, c, i·stride + r·dilation, j·stride + s·dilation], in both layouts."""
    xp = np.arange(2 * 2 * 6 * 7, dtype=np.float64).reshape(2, 2, 6, 7)
    samples = F.im2col(xp, (2, 3), (2, 1), (2, 2), (2, 3))
    channels = F.im2col(xp, (2, 3), (2, 1), (2, 2), (2, 3), channel_major=True)
    assert samples.shape == (2, 12, 6) and channels.shape == (12, 12)
    for n, c, r, s, i, j in np.ndindex(2, 2, 2, 3, 2, 3):
        expected = xp[n, c, i * 2 + r * 2, j + s * 2]
        assert samples[n, c * 6 + r * 3 + s, i * 3 + j] == expected
        assert channels[c * 6 + r * 3 + s, n * 6 + i * 3 + j] == expected

def test_im2col_of_a_1x1_kernel_at_stride_1_is_the_input_itself():
    x = np.arange(2 * 3 * 4 * 5, dtype=np.float32).reshape(2, 3, 4, 5)
    cols = F.im2col(x, (1, 1), (1, 1), (1, 1), (4, 5))
    assert np.shares_memory(cols, x) and cols.shape == (2, 3, 20)
    np.testing.assert_array_equal(cols, x.reshape(2, 3, 20))
    assert not np.shares_memory(F.im2col(x, (1, 1), (2, 2), (1, 1), (2, 3)), x)     # stride 2: a copy


@pytest.mark.parametrize("x_shape, w_shape, stride, padding, groups", [
    ((3, 4, 9, 9), (6, 4, 3, 3), 1, 1, 1),          # im2col, col2im (K > C)
    ((3, 6, 9, 9), (4, 6, 3, 3), 1, 1, 1),          # full convolution (K ≤ C): its columns in the scratch
    ((3, 4, 9, 9), (6, 4, 3, 3), 2, 0, 1),
    ((3, 4, 8, 8), (72, 4, 3, 3), 1, 1, 1),         # K > H'·W': dW over the batch's columns side by side
    ((3, 4, 4, 4), (32, 4, 3, 3), 1, 1, 1),         # K > H'·W' on a small map: channel-major columns, one group
    ((3, 4, 6, 6), (6, 4, 1, 1), 1, 1, 1),          # pointwise, padded: the padded input is its columns
    ((3, 4, 6, 6), (6, 4, 1, 1), 1, 0, 1),          # pointwise: nothing kept
    ((3, 4, 3, 3), (6, 4, 1, 1), 1, 0, 1),          # pointwise on a small map: channel-major columns, one group
    ((3, 4, 4, 4), (24, 4, 1, 1), 1, 0, 1),         # pointwise, K > H'·W' and K > C: dX from dY channel-major
    ((3, 4, 7, 7), (6, 2, 3, 3), 1, 1, 2),          # grouped
    ((3, 4, 7, 7), (8, 1, 7, 7), 1, 3, 4),          # depthwise: nothing, in either memory
])
def test_workspace_values_are_what_the_numpy_kernels_hold(x_shape, w_shape, stride, padding, groups, monkeypatch):
    """The layer's workspace holds exactly the values ``workspace_values`` counts as kept, and the scratch
    memory those it counts there (each key once, at its largest)."""
    monkeypatch.setattr(backend_kernels, "_chosen", "numpy")
    rng = np.random.default_rng(8)
    x, w = rng.standard_normal(x_shape), rng.standard_normal(w_shape)
    workspace, scratch = Workspace(), Workspace()
    y, cache = F.conv2d(x, w, None, stride, padding, 1, groups, workspace, scratch)
    F.conv2d_backward(rng.standard_normal(y.shape), cache, scratch=scratch)
    pads = G.resolve_padding(padding, w_shape[2:], (1, 1))
    kept, used = F.workspace_values(x_shape, w_shape, (stride, stride), pads, (1, 1), groups)
    assert workspace.nbytes() == 8 * sum(kept.values())
    assert scratch.nbytes() == 8 * sum(used.values())


# -- the forwards by columns: NumPy's copies or the compiled gather, sample- or channel-major ----------------------

def forced_plans(groups):
    """Each forward by columns a layer may take, with the dW method of its columns' layout: grouped layers'
    columns channel-major; ungrouped layers' sample-major, or channel-major at one group (small maps)."""
    channel_major = [plan.ConvPlan(forward, "grouped", "col2im") for forward in ("grouped", "compiled_grouped")]
    # "compiled_blocks" keeps no columns (dW gathers them again): blocks of one sample, of a few (10 kB: the last
    # block of a chunk often shorter), and of the whole chunk
    blocks = [plan.ConvPlan("compiled_blocks", "compiled_batch", "compiled_col2im", block_bytes)
              for block_bytes in (1, 10_000, plan.GATHER_BLOCK_BYTES)]
    return channel_major + ([] if groups > 1 else [plan.ConvPlan(forward, "per_sample", "compiled_col2im")
                                                   for forward in ("im2col", "compiled_im2col")] + blocks)


@settings(max_examples=40, deadline=None)
@given(conv_configs())
def test_compiled_im2col_equals_numpys_and_its_uncompiled_loop(config):
    """The gathered columns are NumPy's (a padded copy, then a strided copy) exactly, in both layouts (the
    channel-major ones written through their sample-major view), from the compiled loop and from the loop itself:
    every window entry read from x, or 0 where it falls on the padding."""
    from juanji.functional.compiled import columns
    rng = np.random.default_rng(config["seed"])
    (n, c, h, w), (_, _, r, s) = config["shape"], config["weight"]
    stride, dilation = config["kwargs"]["stride"], config["kwargs"]["dilation"]
    pads = G.resolve_padding(config["kwargs"]["padding"], (r, s), dilation)
    out = G.output_shape((h, w), (r, s), stride, pads, dilation)
    x = rng.standard_normal((n, c, h, w))
    reads = columns.reads((h, w), (r, s), stride, dilation, pads, out)
    xp = G.pad2d(x, pads)
    for channel_major in (False, True):
        expected = F.im2col(xp, (r, s), stride, dilation, out, channel_major=channel_major)
        got = np.full(expected.shape, np.nan)
        columns.im2col(x, reads, got.reshape(-1, n, out[0] * out[1]).transpose(1, 0, 2) if channel_major else got)
        np.testing.assert_array_equal(got, expected)
    uncompiled = np.full((n, c * r * s, out[0] * out[1]), np.nan)
    columns.im2col_loop.py_func(x, uncompiled, reads)
    np.testing.assert_array_equal(uncompiled, F.im2col(xp, (r, s), stride, dilation, out))


@settings(max_examples=30, deadline=None)
@given(conv_configs())
def test_every_forward_by_columns_matches_the_slow_references(config):
    """y, dX, dW and db after each forward by columns, forced: the backward reads the columns in the layout its
    forward's plan kept."""
    rng = np.random.default_rng(config["seed"])
    x, w = rng.standard_normal(config["shape"]), rng.standard_normal(config["weight"])
    b = rng.standard_normal(config["weight"][0]) if config["bias"] else None
    kwargs = config["kwargs"]
    expected_y = F.conv2d_reference(x, w, b, **kwargs)
    dy = rng.standard_normal(expected_y.shape)
    expected = F.conv2d_backward_reference(dy, x, w, **kwargs)
    for chosen in forced_plans(kwargs["groups"]):
        y, cache = F.conv2d(x, w, b, plan=chosen, **kwargs)
        assert cache[-1] == chosen
        assert_close(y, expected_y, f"y by {chosen.forward}")
        for name, got, want in zip(("dx", "dW", "db"), F.conv2d_backward(dy, cache), expected):
            assert_close(got, want, f"{name} after {chosen.forward}")


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape, k, kernel, kwargs", [
    pytest.param((3, 6, 8, 8), 20, 3, dict(stride=2, padding=1), id="3x3-s2-K>H'W'"),
    pytest.param((3, 3, 15, 13), 5, 7, dict(stride=2, padding=3), id="7x7-s2-stem"),
    pytest.param((2, 4, 9, 10), 6, 3, dict(stride=(1, 2), padding=(2, 1), dilation=2), id="dilation-asymmetric"),
    pytest.param((3, 6, 8, 8), 8, 3, dict(stride=2, padding=1, groups=2), id="grouped"),
])
def test_every_forward_by_columns_matches_torch(shape, k, kernel, kwargs, dtype):
    """Each forward by columns, forced, and the backward after it, against torch in float32 and float64."""
    rng = np.random.default_rng(4)
    groups = kwargs.get("groups", 1)
    x = rng.standard_normal(shape).astype(dtype)
    w = rng.standard_normal((k, shape[1] // groups, kernel, kernel)).astype(dtype)
    b = rng.standard_normal(k).astype(dtype)
    y_t = TF.conv2d(*(torch.from_numpy(a) for a in (x, w, b)), **kwargs)
    dy = rng.standard_normal(y_t.shape).astype(dtype)
    _, (dx_t, dw_t, db_t) = torch_vjp(lambda *t: TF.conv2d(*t, **kwargs), dy, x, w, b)
    for chosen in forced_plans(groups):
        y, cache = F.conv2d(x, w, b, plan=chosen, **kwargs)
        ours = (y, *F.conv2d_backward(dy, cache))
        for name, got, want in zip(("y", "dx", "dW", "db"), ours, (y_t, dx_t, dw_t, db_t)):
            assert got.dtype == dtype, f"{name} by {chosen.forward} is {got.dtype}"
            assert_close(got, want, f"{name} by {chosen.forward}")


def test_every_forward_by_columns_propagates_inf_and_nan_as_the_reference():
    """An inf or NaN in x reaches exactly the outputs (and dW entries) whose windows read it, as the slow
    references': the padding the gather writes is 0, never a product with the inf beside it; and a
    non-contiguous x is read as it is."""
    rng = np.random.default_rng(6)
    x = rng.standard_normal((2, 3, 9, 7))
    x[0, 0, 0, 0], x[1, 2, 4, 3], x[0, 1, 8, 6] = np.inf, np.nan, -np.inf      # corners beside the padding
    x = np.asfortranarray(x)
    w, b = rng.standard_normal((5, 3, 3, 3)), rng.standard_normal(5)
    kwargs = dict(stride=2, padding=1)
    expected_y = F.conv2d_reference(x, w, b, **kwargs)
    dy = rng.standard_normal(expected_y.shape)
    _, expected_dw, _ = F.conv2d_backward_reference(dy, x, w, **kwargs)
    assert np.isnan(expected_y).any() and np.isinf(expected_y).any() and np.isfinite(expected_y).any()
    for chosen in forced_plans(1):
        y, cache = F.conv2d(x, w, b, plan=chosen, **kwargs)
        _, dw, _ = F.conv2d_backward(dy, cache)
        for name, got, want in (("y", y, expected_y), ("dW", dw, expected_dw)):
            np.testing.assert_array_equal(np.isnan(got), np.isnan(want), f"{name} by {chosen.forward}: NaN")
            np.testing.assert_array_equal(np.isposinf(got), np.isposinf(want), f"{name} by {chosen.forward}: inf")
            np.testing.assert_array_equal(np.isneginf(got), np.isneginf(want), f"{name} by {chosen.forward}: -inf")
            assert_close(np.nan_to_num(got, posinf=0, neginf=0), np.nan_to_num(want, posinf=0, neginf=0), name)


def test_the_plan_gathers_narrow_outputs_and_batches_small_maps(monkeypatch):
    """The compiled kernels gather the columns of layers other than 1×1 whose outputs are at most
    ``GATHER_MAX_WIDTH`` wide (channel-major columns: ``GATHER_CHANNEL_MAJOR_MAX_WIDTH``); ungrouped layers with
    more filters than output pixels, at most ``IM2COL_BATCH_MAX_PIXELS`` of them, keep channel-major columns at one
    group (on both kernel sets); where dW is one product over the batch ("batch"), the compiled kernels keep no
    columns ("compiled_blocks", "compiled_batch")."""
    def chosen(n, c, k, size, kernel, stride, padding, groups=1):
        pads = G.resolve_padding(padding, (kernel, kernel), (1, 1))
        found = plan.plan_conv((n, c, size, size), (k, c // groups, kernel, kernel), (stride, stride), pads, (1, 1),
                               groups)
        return found.forward, found.weight_grad
    layers = {"ResNet-20 16→32 @32 s2": (128, 16, 32, 32, 3, 2, 1), "64→128 @16 s2": (64, 64, 128, 16, 3, 2, 1),
              "ResNet-18 256→512 @14 s2": (16, 256, 512, 14, 3, 2, 1), "7×7 s2 stem @224": (16, 3, 64, 224, 7, 2, 3),
              "1×1 s2 @32": (128, 16, 32, 32, 1, 2, 0), "groups 4 @16 s2": (64, 64, 128, 16, 3, 2, 1, 4),
              "groups 2 @16": (64, 64, 64, 16, 3, 1, 1, 2)}
    numpy_plans = {"ResNet-20 16→32 @32 s2": ("im2col", "per_sample"), "64→128 @16 s2": ("im2col", "batch"),
                   "ResNet-18 256→512 @14 s2": ("grouped", "grouped"), "7×7 s2 stem @224": ("im2col", "per_sample"),
                   "1×1 s2 @32": ("im2col", "per_sample"), "groups 4 @16 s2": ("grouped", "grouped"),
                   "groups 2 @16": ("grouped", "grouped")}
    monkeypatch.setattr(backend_kernels, "_chosen", "numpy")
    assert {name: chosen(*layer) for name, layer in layers.items()} == numpy_plans
    if numba_available():
        monkeypatch.setattr(backend_kernels, "_chosen", "numba")
        gathered = {"ResNet-20 16→32 @32 s2", "ResNet-18 256→512 @14 s2", "groups 4 @16 s2"}
        assert {name: chosen(*layer) for name, layer in layers.items()} == {
            name: (("compiled_" if name in gathered else "") + forward, weight_grad)
            for name, (forward, weight_grad) in numpy_plans.items()} | {
            "64→128 @16 s2": ("compiled_blocks", "compiled_batch")}     # dW over the batch: no columns kept
