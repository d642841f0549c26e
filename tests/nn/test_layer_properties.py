"""Property tests: hypothesis draws valid layer configurations and inputs; forward and every gradient must
match torch in float64 — serially and with the batch split over two threads however small (``batch_threads``),
so that batches of 3 samples are split unevenly (1 + 2)."""
import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from juanji import nn
from layer_check import compare_with_torch, randomise_state

pytestmark = [pytest.mark.filterwarnings("ignore:Using padding=.same. with even kernel:UserWarning"),
              pytest.mark.usefixtures("batch_threads")]

# batch_threads only sets the thread count for the whole test: sharing it between examples is what we want
# 3 first: hypothesis starts from (and shrinks towards) it, so every test splits 3 samples over 2 threads
BATCH = st.sampled_from([3, 1, 2])
SETTINGS = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


def reach(kernel, dilation):
    return dilation * (kernel - 1) + 1


@st.composite
def conv2d_configs(draw):
    """(x shape, Conv2d args): groups divide C and K, 'same'/'valid' only at stride 1 (torch refuses 'same'
    otherwise), the dilated kernel fits in the padded input."""
    groups = draw(st.sampled_from([1, 1, 2, 3]))
    c, k = groups * draw(st.integers(1, 3)), groups * draw(st.integers(1, 3))
    kernel = (draw(st.integers(1, 4)), draw(st.integers(1, 4)))
    dilation = (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
    stride = (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
    if stride == (1, 1) and draw(st.booleans()):
        padding = draw(st.sampled_from(["same", "valid"]))
    else:
        padding = (draw(st.integers(0, 3)), draw(st.integers(0, 3)))
    pads = (0, 0) if padding == "valid" else (
        (reach(kernel[0], dilation[0]) - 1, reach(kernel[1], dilation[1]) - 1) if padding == "same"
        else (2 * padding[0], 2 * padding[1]))
    low = [max(1, reach(kernel[a], dilation[a]) - pads[a]) for a in range(2)]
    shape = (draw(BATCH), c, draw(st.integers(low[0], low[0] + 6)), draw(st.integers(low[1], low[1] + 6)))
    return shape, (c, k, kernel), dict(stride=stride, padding=padding, dilation=dilation, groups=groups,
                                       bias=draw(st.booleans()))


@SETTINGS
@given(conv2d_configs(), st.integers(0, 2**16))
def test_conv2d_matches_torch(config, seed):
    shape, args, kwargs = config
    layer = nn.Conv2d(*args, **kwargs, dtype=np.float64)
    randomise_state(layer, seed)
    y = compare_with_torch(layer, torch.nn.Conv2d(*args, **kwargs),
                           np.random.default_rng(seed).standard_normal(shape), seed=seed)
    assert y.shape == layer.output_shape(shape)


@st.composite
def conv1d_configs(draw):
    groups = draw(st.sampled_from([1, 2]))
    c, k = groups * draw(st.integers(1, 3)), groups * draw(st.integers(1, 3))
    kernel, dilation, stride = draw(st.integers(1, 5)), draw(st.integers(1, 3)), draw(st.integers(1, 3))
    padding = draw(st.sampled_from(["same", "valid"])) if stride == 1 and draw(st.booleans()) else draw(st.integers(0, 3))
    pad = {"same": reach(kernel, dilation) - 1, "valid": 0}.get(padding, 2 * padding if isinstance(padding, int) else 0)
    low = max(1, reach(kernel, dilation) - pad)
    shape = (draw(BATCH), c, draw(st.integers(low, low + 8)))
    return shape, (c, k, kernel), dict(stride=stride, padding=padding, dilation=dilation, groups=groups,
                                       bias=draw(st.booleans()))


@SETTINGS
@given(conv1d_configs(), st.integers(0, 2**16))
def test_conv1d_matches_torch(config, seed):
    shape, args, kwargs = config
    layer = nn.Conv1d(*args, **kwargs, dtype=np.float64)
    randomise_state(layer, seed)
    compare_with_torch(layer, torch.nn.Conv1d(*args, **kwargs), np.random.default_rng(seed).standard_normal(shape),
                       seed=seed)


@st.composite
def pool_configs(draw, with_dilation):
    """kernel, stride, padding ≤ kernel/2 (torch's rule), dilation (max pooling only), ceil_mode; the input
    at least as large as the (dilated) window once padded."""
    kernel = (draw(st.integers(1, 4)), draw(st.integers(1, 4)))
    stride = (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
    padding = (draw(st.integers(0, kernel[0] // 2)), draw(st.integers(0, kernel[1] // 2)))
    dilation = (draw(st.integers(1, 3)), draw(st.integers(1, 3))) if with_dilation else (1, 1)
    low = [max(1, reach(kernel[a], dilation[a]) - 2 * padding[a]) for a in range(2)]
    shape = (draw(BATCH), draw(st.integers(1, 3)),
             draw(st.integers(low[0], low[0] + 7)), draw(st.integers(low[1], low[1] + 7)))
    kwargs = dict(kernel_size=kernel, stride=stride, padding=padding, ceil_mode=draw(st.booleans()))
    if with_dilation:
        kwargs["dilation"] = dilation
    assume(every_window_touches_the_input(shape, kwargs))
    return shape, kwargs


def every_window_touches_the_input(shape, kwargs):
    """False when some dilated window reads only padding (e.g. H = 1, kernel 2, dilation 2, padding 1).
    torch then returns −inf with an out-of-range index, and its backward writes that window's gradient
    into a neighbouring channel's plane — undefined behaviour not worth matching (juanji returns −inf and
    drops the gradient)."""
    kernel, stride, padding = kwargs["kernel_size"], kwargs["stride"], kwargs["padding"]
    dilation = kwargs.get("dilation", (1, 1))
    out = torch.nn.functional.max_pool2d(torch.zeros(1, 1, *shape[2:]), **dict(kwargs, dilation=dilation)).shape[2:]
    return all(any(padding[a] <= o * stride[a] + r * dilation[a] < padding[a] + shape[2 + a] for r in range(kernel[a]))
               for a in range(2) for o in range(out[a]))


@SETTINGS
@given(pool_configs(with_dilation=True), st.integers(0, 2**16))
def test_max_pool2d_matches_torch(config, seed):
    shape, kwargs = config
    layer = nn.MaxPool2d(**kwargs)
    y = compare_with_torch(layer, torch.nn.MaxPool2d(**kwargs), np.random.default_rng(seed).standard_normal(shape),
                           seed=seed)
    assert y.shape == layer.output_shape(shape)


@SETTINGS
@given(pool_configs(with_dilation=False), st.booleans(), st.integers(0, 2**16))
def test_avg_pool2d_matches_torch(config, count_include_pad, seed):
    shape, kwargs = config
    kwargs["count_include_pad"] = count_include_pad
    compare_with_torch(nn.AvgPool2d(**kwargs), torch.nn.AvgPool2d(**kwargs),
                       np.random.default_rng(seed).standard_normal(shape), seed=seed)


@SETTINGS
@given(st.integers(1, 9), st.integers(1, 9), st.integers(1, 6), st.integers(1, 6), st.integers(0, 2**16))
def test_adaptive_avg_pool2d_matches_torch(h, w, oh, ow, seed):
    compare_with_torch(nn.AdaptiveAvgPool2d((oh, ow)), torch.nn.AdaptiveAvgPool2d((oh, ow)),
                       np.random.default_rng(seed).standard_normal((3, 2, h, w)), seed=seed)


@SETTINGS
@given(st.sampled_from([(5, 3), (4, 3, 6), (2, 3, 4, 5), (3, 3, 1, 2)]), st.floats(0.0, 1.0),
       st.floats(1e-5, 1e-1), st.booleans(), st.integers(0, 2**16))
def test_batch_norm_matches_torch(shape, momentum, eps, affine, seed):
    cls, torch_cls = (nn.BatchNorm2d, torch.nn.BatchNorm2d) if len(shape) == 4 else (nn.BatchNorm1d, torch.nn.BatchNorm1d)
    layer = cls(3, eps=eps, momentum=momentum, affine=affine, dtype=np.float64)
    randomise_state(layer, seed)
    compare_with_torch(layer, torch_cls(3, eps=eps, momentum=momentum, affine=affine),
                       np.random.default_rng(seed).standard_normal(shape), steps=3, seed=seed)
