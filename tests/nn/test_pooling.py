"""The pooling layers against torch.nn's twins — MaxPool1d/2d (with return_indices), AvgPool1d/2d (divisor_override),
AdaptiveAvgPool1d/2d, AdaptiveMaxPool1d/2d (None in output_size, return_indices), MaxUnpool1d/2d (output_size) —
with every constructor argument drawn at random (positionally in torch's order for some draws, by keyword for
others), float32 and float64, batched, unbatched and non-contiguous inputs: y, the indices (exactly) and dx;
finite differences; the arguments torch refuses refused at construction."""
import numpy as np
import pytest
import torch

from finite_difference import check_gradients, check_layer
from juanji import nn
from layer_check import DTYPES, assert_close, compare_with_torch

MAX = {1: (nn.MaxPool1d, torch.nn.MaxPool1d), 2: (nn.MaxPool2d, torch.nn.MaxPool2d)}
AVG = {1: (nn.AvgPool1d, torch.nn.AvgPool1d), 2: (nn.AvgPool2d, torch.nn.AvgPool2d)}
ADAPTIVE_AVG = {1: (nn.AdaptiveAvgPool1d, torch.nn.AdaptiveAvgPool1d),
                2: (nn.AdaptiveAvgPool2d, torch.nn.AdaptiveAvgPool2d)}
ADAPTIVE_MAX = {1: (nn.AdaptiveMaxPool1d, torch.nn.AdaptiveMaxPool1d),
                2: (nn.AdaptiveMaxPool2d, torch.nn.AdaptiveMaxPool2d)}
UNPOOL = {1: (nn.MaxUnpool1d, torch.nn.MaxUnpool1d), 2: (nn.MaxUnpool2d, torch.nn.MaxUnpool2d)}


def each(rng, dims, low, high):
    """An int, or a tuple of ``dims`` ints in [low, high)."""
    values = tuple(int(v) for v in rng.integers(low, high, dims))
    return values[0] if rng.integers(0, 2) and len(set(values)) == 1 else values


def as_tuple(value, dims):
    return (value,) * dims if isinstance(value, int) else value


def make_input(rng, shape, dtype, layout):
    """Normal values (no ties) in one of three layouts: batched, batched non-contiguous (a transposed view) or
    unbatched (the batch axis dropped)."""
    x = rng.standard_normal(shape[::-1]).astype(dtype).T if layout == "strided" else \
        rng.standard_normal(shape).astype(dtype)
    return x[0] if layout == "unbatched" else x


def build(pair, args, positional):
    ours, theirs = pair
    return (ours(*args.values()) if positional else ours(**args)), theirs(**args)


def draw_window(rng, dims, dilation=True):
    """kernel_size, stride (or None), padding ≤ ⌊kernel/2⌋, dilation; and an input size the window fits in."""
    kernel = each(rng, dims, 1, 5)
    stride = None if rng.integers(0, 3) == 0 else each(rng, dims, 1, 4)
    padding = tuple(int(rng.integers(0, k // 2 + 1)) for k in as_tuple(kernel, dims))
    dil = each(rng, dims, 1, 4) if dilation else 1
    reach = [d * (k - 1) + 1 for d, k in zip(as_tuple(dil, dims), as_tuple(kernel, dims))]
    spatial = tuple(int(max(1, r - 2 * p) + rng.integers(0, 7)) for r, p in zip(reach, padding))
    return kernel, stride, padding, dil, spatial


def compare_pair(layer, twin, x, seed, extra=(), extra_torch=()):
    """A layer returning (y, indices) or taking extra inputs: y and indices as torch's (indices int64 and equal),
    dx of a random dy as torch's.  Returns juanji's output."""
    out = layer(x, *extra)
    x_t = torch.from_numpy(x.copy()).requires_grad_(True)
    out_t = twin(x_t, *extra_torch)
    y, y_t = (out[0], out_t[0]) if isinstance(out, tuple) else (out, out_t)
    if isinstance(out, tuple):
        assert out[1].dtype == np.int64, out[1].dtype
        np.testing.assert_array_equal(out[1], out_t[1].numpy())
    assert y.dtype == x.dtype
    assert_close(y, y_t, "y")
    dy = np.random.default_rng(seed).standard_normal(y.shape).astype(x.dtype)
    y_t.backward(torch.from_numpy(dy))
    dx = layer.backward(dy)
    assert dx.dtype == x.dtype and dx.shape == x.shape
    assert_close(dx, x_t.grad, "dx")
    return out


LAYOUTS = ["batched", "strided", "unbatched"]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("dims", [1, 2])
@pytest.mark.parametrize("seed", range(10))
def test_max_pool(seed, dims, dtype):
    rng = np.random.default_rng(seed)
    while True:
        kernel, stride, padding, dilation, spatial = draw_window(rng, dims)
        args = dict(kernel_size=kernel, stride=stride, padding=padding if dims == 2 else padding[0],
                    dilation=dilation, return_indices=bool(rng.integers(0, 2)), ceil_mode=bool(rng.integers(0, 2)))
        shape = (int(rng.integers(1, 4)), int(rng.integers(1, 4)), *spatial)
        y = MAX[dims][1](**dict(args, return_indices=False))(torch.zeros(shape))
        if y.numel() and torch.isfinite(y).all():    # no window entirely in the padding (torch: undefined)
            break
    layer, twin = build(MAX[dims], args, positional=seed % 2 == 0)
    x = make_input(rng, shape, dtype, LAYOUTS[seed % 3])
    if args["return_indices"]:
        compare_pair(layer, twin, x, seed)
    else:
        compare_with_torch(layer, twin, x, seed=seed)
    assert layer.output_shape(x.shape) == layer(x)[0].shape if args["return_indices"] else layer(x).shape


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("dims", [1, 2])
@pytest.mark.parametrize("seed", range(10))
def test_avg_pool(seed, dims, dtype):
    rng = np.random.default_rng(seed)
    kernel, stride, padding, _, spatial = draw_window(rng, dims, dilation=False)
    args = dict(kernel_size=kernel, stride=stride, padding=padding if dims == 2 else padding[0],
                ceil_mode=bool(rng.integers(0, 2)), count_include_pad=bool(rng.integers(0, 2)))
    if dims == 2:
        args["divisor_override"] = [None, int(rng.integers(1, 7)), -int(rng.integers(1, 4))][seed % 3]
    layer, twin = build(AVG[dims], args, positional=seed % 2 == 1)
    shape = (int(rng.integers(1, 4)), int(rng.integers(1, 4)), *spatial)
    compare_with_torch(layer, twin, make_input(rng, shape, dtype, LAYOUTS[seed % 3]), seed=seed)


def draw_output_size(rng, dims, none):
    """An int or a tuple, some entries None (keep the input's size) where ``none``."""
    if rng.integers(0, 3) == 0:
        return int(rng.integers(1, 7))
    return tuple(None if none and rng.integers(0, 3) == 0 else int(rng.integers(1, 7)) for _ in range(dims))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("dims", [1, 2])
@pytest.mark.parametrize("seed", range(8))
def test_adaptive_pools(seed, dims, dtype):
    """Bins that tile, overlap, and outnumber the pixels; torch's 1-d layers take an int or a 1-tuple, the 2-d
    ones None entries too."""
    rng = np.random.default_rng(seed)
    shape = (int(rng.integers(1, 4)), int(rng.integers(1, 4)), *rng.integers(1, 10, dims))
    size = draw_output_size(rng, dims, none=dims == 2)
    layer, twin = build(ADAPTIVE_AVG[dims], dict(output_size=size), positional=seed % 2 == 0)
    compare_with_torch(layer, twin, make_input(rng, shape, dtype, LAYOUTS[seed % 3]), seed=seed)
    args = dict(output_size=size, return_indices=bool(seed % 2))
    layer, twin = build(ADAPTIVE_MAX[dims], args, positional=seed % 4 < 2)
    x = make_input(rng, shape, dtype, LAYOUTS[(seed + 1) % 3])
    if args["return_indices"]:
        compare_pair(layer, twin, x, seed)
    else:
        compare_with_torch(layer, twin, x, seed=seed)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("dims", [1, 2])
@pytest.mark.parametrize("seed", range(8))
def test_max_unpool_inverts_max_pool_with_indices(seed, dims, dtype):
    """MaxPool(return_indices=True) then MaxUnpool of its output and indices, overlapping windows too (where two
    windows name one cell), with and without output_size (given with or without N, C); y and dx as torch's."""
    rng = np.random.default_rng(seed)
    kernel, stride, padding, _, spatial = draw_window(rng, dims, dilation=False)
    args = dict(kernel_size=kernel, stride=stride, padding=padding if dims == 2 else padding[0])
    layout = LAYOUTS[seed % 3]
    shape = (int(rng.integers(1, 4)), int(rng.integers(1, 4)), *spatial)
    x = make_input(rng, shape, dtype, layout)
    pooled, indices = MAX[dims][1](**args, return_indices=True)(torch.from_numpy(x.copy()))
    if not torch.isfinite(pooled).all():
        pytest.skip("a window entirely in the padding")
    layer, twin = build(UNPOOL[dims], args, positional=seed % 2 == 0)
    strides = as_tuple(stride or kernel, dims)
    default = [(n - 1) * s - 2 * p + k for n, s, p, k in zip(pooled.shape[-dims:], strides,
                                                               as_tuple(args["padding"], dims), as_tuple(kernel, dims))]
    # output sizes torch accepts (strictly within stride of the default) that hold every index: the default,
    # the pooled input's own size, the largest
    candidates = [None, list(spatial), [d + s - 1 for d, s in zip(default, strides)]]
    fits = [c for c in candidates if all(d - s < v < d + s for v, d, s in zip(c or default, default, strides))
            and np.prod(c or default) > indices.max().item()]
    if not fits:
        pytest.skip("no output size holds the indices")
    size = fits[seed % len(fits)]
    extra = () if size is None else ([*x.shape[:-dims], *size] if x.ndim == dims + 2 and seed % 2 else size,)
    values = pooled.numpy().copy()
    y = compare_pair(layer, twin, values, seed, (indices.numpy(), *extra), (indices, *extra))
    assert list(y.shape[-dims:]) == list(size or default)


@pytest.mark.parametrize("make, shape", [
    (lambda: nn.MaxPool2d(3, 2, 1, 2), (2, 3, 9, 8)), (lambda: nn.MaxPool1d(3, 2, 1, ceil_mode=True), (2, 3, 10)),
    (lambda: nn.AvgPool2d((3, 2), 2, (1, 0), True, False), (2, 3, 8, 7)),
    (lambda: nn.AvgPool2d(3, divisor_override=5), (2, 2, 6, 6)), (lambda: nn.AvgPool1d(4, 3, 2), (2, 3, 11)),
    (lambda: nn.AdaptiveAvgPool2d((3, None)), (2, 3, 7, 5)), (lambda: nn.AdaptiveAvgPool1d(4), (2, 3, 9)),
    (lambda: nn.AdaptiveMaxPool2d((None, 3)), (2, 3, 7, 5)), (lambda: nn.AdaptiveMaxPool1d(4), (2, 3, 9))])
def test_finite_differences(make, shape):
    check_layer(make(), np.random.default_rng(4).standard_normal(shape))


@pytest.mark.parametrize("dims", [1, 2])
def test_finite_differences_of_max_unpool(dims):
    """Windows that do not overlap: every index distinct.  (Where two inputs name one cell, the forward keeps the
    later and torch's backward, copied here, still gives each dY at that cell — not the forward's derivative.)"""
    size = (9, 8)[-dims:]
    x = np.random.default_rng(5).standard_normal((2, 3) + tuple(n // 2 for n in size))
    _, indices = MAX[dims][0](2, return_indices=True)(np.random.default_rng(6).standard_normal((2, 3, *size)))
    layer = UNPOOL[dims][0](2)
    dy = np.random.default_rng(7).standard_normal((2, 3, *size))
    check_gradients(layer, x, lambda x: [layer(x, indices, size)], [dy], lambda: layer.backward(dy))


def test_max_pool_indices_feed_max_unpool_in_a_segnet_step():
    """The encoder-decoder pattern: pool with indices, unpool to the pre-pool size; the maxima are back in their
    places, everything else zero; backward through both routes dY to the maxima."""
    x = np.random.default_rng(8).standard_normal((2, 3, 6, 7))
    pool, unpool = nn.MaxPool2d(2, return_indices=True), nn.MaxUnpool2d(2)
    y, indices = pool(x)
    restored = unpool(y, indices, output_size=x.shape)
    assert restored.shape == x.shape
    kept = restored != 0
    np.testing.assert_array_equal(restored[kept], x[kept])
    assert kept.sum() == y.size
    dx = pool.backward(unpool.backward(np.ones_like(restored)))
    np.testing.assert_array_equal(dx, kept.astype(dx.dtype))


def test_repr_and_defaults():
    assert nn.MaxPool2d(2).stride == (2, 2) and nn.MaxPool1d(3).stride == (3,)
    assert repr(nn.MaxPool1d(3, return_indices=True)) == \
        "MaxPool1d(kernel_size=3, stride=3, padding=0, return_indices=True)"
    assert repr(nn.AdaptiveMaxPool2d((None, 2))) == "AdaptiveMaxPool2d(output_size=(None, 2))"
    assert repr(nn.AvgPool2d(3, divisor_override=2)).endswith("divisor_override=2)")


@pytest.mark.parametrize("make, error, fragments", [
    (lambda: nn.MaxPool2d(3, padding=2), ValueError, ("MaxPool2d", "padding (2, 2)", "(3, 3)")),
    (lambda: nn.MaxPool2d(3, padding=2, dilation=2), ValueError, ("MaxPool2d", "padding (2, 2)")),
    (lambda: nn.MaxPool1d(2, padding=2), ValueError, ("MaxPool1d", "padding (2,)")),
    (lambda: nn.AvgPool1d(3, padding=2), ValueError, ("AvgPool1d", "padding")),
    (lambda: nn.MaxPool2d(0), ValueError, ("MaxPool2d", "kernel_size")),
    (lambda: nn.MaxPool1d((2, 2)), TypeError, ("MaxPool1d", "kernel_size", "(2, 2)")),
    (lambda: nn.MaxPool2d(2, return_indices="yes"), TypeError, ("MaxPool2d", "return_indices")),
    (lambda: nn.MaxPool2d(2, 2, 0, 1, False, 1), TypeError, ("MaxPool2d", "ceil_mode")),
    (lambda: nn.AvgPool2d(2, stride="2"), TypeError, ("AvgPool2d", "stride", "'2'")),
    (lambda: nn.AvgPool2d(2, divisor_override=0), ValueError, ("AvgPool2d", "divisor_override", "0")),
    (lambda: nn.AvgPool2d(2, divisor_override=1.5), ValueError, ("AvgPool2d", "divisor_override", "1.5")),
    (lambda: nn.AvgPool2d(2, count_include_pad=None), TypeError, ("AvgPool2d", "count_include_pad")),
    (lambda: nn.AdaptiveAvgPool2d(0), ValueError, ("AdaptiveAvgPool2d", "output_size", "0")),
    (lambda: nn.AdaptiveAvgPool2d(None), TypeError, ("AdaptiveAvgPool2d", "output_size", "None")),
    (lambda: nn.AdaptiveAvgPool1d(None), TypeError, ("AdaptiveAvgPool1d", "output_size", "None")),
    (lambda: nn.AdaptiveMaxPool2d((2, 2, 2)), TypeError, ("AdaptiveMaxPool2d", "output_size")),
    (lambda: nn.AdaptiveMaxPool1d(2, return_indices=1), TypeError, ("AdaptiveMaxPool1d", "return_indices")),
    (lambda: nn.MaxUnpool2d(2, padding=-1), ValueError, ("MaxUnpool2d", "padding", "-1")),
    (lambda: nn.MaxUnpool1d(0), ValueError, ("MaxUnpool1d", "kernel_size")),
])
def test_bad_arguments_are_refused_at_construction(make, error, fragments):
    with pytest.raises(error) as info:
        make()
    assert all(fragment in str(info.value) for fragment in fragments), str(info.value)


def test_bad_inputs_are_refused_naming_the_layer():
    x = np.zeros((1, 2, 3, 3), np.float32)
    indices = np.zeros((1, 2, 3, 3), np.int64)
    for call, fragments in [
            (lambda: nn.MaxPool1d(2)(x), ("MaxPool1d", "(N, C, L) or (C, L)", "(1, 2, 3, 3)")),
            (lambda: nn.MaxPool2d(2)(x[0, 0]), ("MaxPool2d", "(N, C, H, W) or (C, H, W)", "(3, 3)")),
            (lambda: nn.MaxPool2d(5)(x), ("MaxPool2d", "(3, 3)", "(5, 5)")),
            (lambda: nn.MaxUnpool2d(2)(x, indices.astype(np.float32)), ("MaxUnpool2d", "integer", "float32")),
            (lambda: nn.MaxUnpool2d(2)(x, indices[0]), ("MaxUnpool2d", "(2, 3, 3)")),
            (lambda: nn.MaxUnpool2d(2)(x, indices + 36), ("MaxUnpool2d", "36", "6×6")),
            (lambda: nn.MaxUnpool2d(2)(x, indices, output_size=(9, 6)), ("MaxUnpool2d", "output_size", "(9, 6)")),
            (lambda: nn.MaxUnpool2d(2)(x, indices, output_size=(2, 6, 6)), ("MaxUnpool2d", "2 or 4 elements"))]:
        with pytest.raises(ValueError) as info:
            call()
        assert all(fragment in str(info.value) for fragment in fragments), str(info.value)
