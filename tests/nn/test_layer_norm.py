"""LayerNorm and GroupNorm with every torch argument drawn at random, against torch.nn (forward, dx, dγ, dβ) in
float32 and float64, on batched, unbatched and non-contiguous inputs (ConvNeXt's channel norm on a permuted
view); finite differences; no MACs in the summary; bad arguments and inputs refused."""
import numpy as np
import pytest
import torch

from finite_difference import check_layer
from juanji import nn
from juanji.models.summary import summarize
from layer_check import DTYPES, compare_with_torch, randomise_state

pytestmark = pytest.mark.usefixtures("batch_threads")
SEEDS = range(10)


def draw_layer_norm(rng):
    """(normalized_shape as an int, list, tuple or torch.Size; eps; elementwise_affine; bias), and an input
    shape: 0 to 2 leading axes before the normalised ones (0: an unbatched input)."""
    shape = tuple(int(s) for s in rng.integers(1, 5, int(rng.integers(1, 4))))
    kind = int(rng.integers(4))
    normalized = shape[0] if kind == 0 and len(shape) == 1 else [list, tuple, torch.Size, tuple][kind](shape)
    options = dict(normalized_shape=normalized, eps=float(rng.choice([1e-5, 1e-3, 0.1])),
                   elementwise_affine=bool(rng.random() < 0.7), bias=bool(rng.random() < 0.6))
    return options, tuple(int(s) for s in rng.integers(1, 4, int(rng.integers(0, 3)))) + shape


def draw_group_norm(rng):
    """(num_groups, num_channels, eps, affine, bias) and an input (N, C, *) with 0 to 2 spatial axes."""
    groups = int(rng.integers(1, 4))
    channels = groups * int(rng.integers(1, 4))
    options = dict(num_groups=groups, num_channels=channels, eps=float(rng.choice([1e-5, 1e-3, 0.1])),
                   affine=bool(rng.random() < 0.7), bias=bool(rng.random() < 0.6))
    shape = (int(rng.integers(1, 4)), channels) + tuple(int(s) for s in rng.integers(1, 5, int(rng.integers(3))))
    # torch refuses one value in all of the batch's groups: then two samples
    return options, shape if np.prod(shape) > groups else (2,) + shape[1:]


def build_layer_norm(o, dtype, positional):
    if positional:
        return nn.LayerNorm(o["normalized_shape"], o["eps"], o["elementwise_affine"], o["bias"], "cpu", dtype)
    return nn.LayerNorm(**o, device=None, dtype=dtype)


def build_group_norm(o, dtype, positional):
    if positional:
        return nn.GroupNorm(o["num_groups"], o["num_channels"], o["eps"], o["affine"], None, dtype, bias=o["bias"])
    return nn.GroupNorm(**o, dtype=dtype)


CASES = {"LayerNorm": (draw_layer_norm, build_layer_norm, torch.nn.LayerNorm),
         "GroupNorm": (draw_group_norm, build_group_norm, torch.nn.GroupNorm)}


def draw_input(rng, shape, dtype):
    x = (rng.standard_normal(shape) * 2 + 1).astype(dtype)
    return x.T.copy().T if rng.random() < 0.5 else x     # half of them a non-contiguous (transposed) view


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("name", CASES)
def test_random_options_match_torch(name, seed, dtype):
    draw, build, theirs = CASES[name]
    rng = np.random.default_rng(seed)
    options, shape = draw(rng)
    layer = build(options, dtype, positional=seed % 2 == 0)
    randomise_state(layer, seed)
    layer.train(bool(rng.random() < 0.5))           # the same in both modes
    y = compare_with_torch(layer, theirs(**options), draw_input(rng, shape, dtype), steps=2, seed=seed)
    assert y.shape == shape


@pytest.mark.parametrize("dtype", DTYPES)
def test_convnext_channel_norm_on_a_permuted_view(dtype):
    """ConvNeXt: (N, C, H, W) permuted to (N, H, W, C), a non-contiguous view, normalised over C."""
    layer = nn.LayerNorm(6, eps=1e-6, dtype=dtype)
    randomise_state(layer)
    x = np.random.default_rng(0).standard_normal((2, 6, 5, 4)).astype(dtype).transpose(0, 2, 3, 1)
    assert not x.flags.c_contiguous
    compare_with_torch(layer, torch.nn.LayerNorm(6, eps=1e-6), x)


@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("name", CASES)
def test_finite_differences(name, seed):
    draw, build, _ = CASES[name]
    rng = np.random.default_rng(seed)
    options, shape = draw(rng)
    layer = build(options, np.float64, positional=False)
    randomise_state(layer, seed)
    check_layer(layer, draw_input(rng, shape, np.float64), seed=seed)


def test_a_single_value_per_row_normalises_to_the_shift():
    """One value per row: x̂ = 0, y = β and dX = 0, as torch."""
    layer = nn.LayerNorm(1, dtype=np.float64)
    randomise_state(layer)
    compare_with_torch(layer, torch.nn.LayerNorm(1), np.random.default_rng(0).standard_normal((3, 1)))
    layer = nn.GroupNorm(2, 2, dtype=np.float64)
    randomise_state(layer)
    compare_with_torch(layer, torch.nn.GroupNorm(2, 2), np.random.default_rng(0).standard_normal((3, 2)))


def test_layers_without_parameters_follow_their_input_dtype_and_no_grad_keeps_nothing():
    for layer, shape in ((nn.LayerNorm((2, 3), elementwise_affine=False), (4, 2, 3)),
                         (nn.GroupNorm(1, 2, affine=False), (4, 2, 3))):
        assert layer.dtype is None and layer.params == {}
        for dtype in DTYPES:
            x = np.random.default_rng(0).standard_normal(shape).astype(dtype)
            assert layer(x).dtype == layer.backward(np.ones_like(x)).dtype == dtype
        with nn.no_grad():
            layer(np.ones(shape, np.float32))
        with pytest.raises(RuntimeError, match="backward called before forward"):
            layer.backward(np.ones(shape, np.float32))


def test_the_summary_counts_no_macs_for_an_elementwise_weight():
    model = nn.Sequential(nn.Conv2d(2, 4, 3, padding=1), nn.LayerNorm((4, 5, 5)), nn.GroupNorm(2, 4))
    rows = summarize(model, input_shape=(2, 5, 5))
    assert [row.macs for row in rows] == [4 * 25 * 2 * 9, 0, 0]
    assert [row.params for row in rows] == [4 * 2 * 9 + 4, 2 * 100, 2 * 4]


@pytest.mark.parametrize("make, error, fragments", [
    (lambda: nn.LayerNorm(0), ValueError, ("LayerNorm: normalized_shape", "0")),
    (lambda: nn.LayerNorm((3, -1)), ValueError, ("LayerNorm: normalized_shape", "-1")),
    (lambda: nn.LayerNorm(()), ValueError, ("LayerNorm: normalized_shape", "at least one axis")),
    (lambda: nn.LayerNorm("C"), ValueError, ("LayerNorm: normalized_shape", "'C'")),
    (lambda: nn.LayerNorm(2.5), TypeError, ("LayerNorm: normalized_shape", "2.5")),
    (lambda: nn.LayerNorm(4, eps=-1e-5), ValueError, ("LayerNorm: eps", "-1e-05")),
    (lambda: nn.LayerNorm(4, elementwise_affine=None), TypeError, ("LayerNorm: elementwise_affine", "None")),
    (lambda: nn.LayerNorm(4, bias="no"), TypeError, ("LayerNorm: bias", "'no'")),
    (lambda: nn.LayerNorm(4, device="mps"), ValueError, ("LayerNorm: device", "'mps'")),
    (lambda: nn.LayerNorm(4, dtype=np.float16), TypeError, ("LayerNorm: dtype", "float16")),
    (lambda: nn.GroupNorm(3, 4), ValueError, ("GroupNorm: num_channels must be divisible by num_groups", "4", "3")),
    (lambda: nn.GroupNorm(0, 4), ValueError, ("GroupNorm: num_groups", "0")),
    (lambda: nn.GroupNorm(2, 4.0), ValueError, ("GroupNorm: num_channels", "4.0")),
    (lambda: nn.GroupNorm(2, 4, eps=float("inf")), ValueError, ("GroupNorm: eps", "inf")),
    (lambda: nn.GroupNorm(2, 4, affine=1), TypeError, ("GroupNorm: affine", "1")),
    (lambda: nn.GroupNorm(2, 4, bias=0), TypeError, ("GroupNorm: bias", "0")),
    (lambda: nn.GroupNorm(2, 4, device="cuda:0"), ValueError, ("GroupNorm: device", "'cuda:0'")),
    (lambda: nn.GroupNorm(2, 4, dtype="int64"), TypeError, ("GroupNorm: dtype", "int64")),
])
def test_bad_arguments_are_refused_naming_the_layer_and_argument(make, error, fragments):
    with pytest.raises(error) as info:
        make()
    assert all(fragment in str(info.value) for fragment in fragments), str(info.value)


@pytest.mark.parametrize("layer, x, error, fragments", [
    (nn.LayerNorm((3, 4)), np.ones((2, 4, 3), np.float32), ValueError, ("(*, 3, 4)", "(2, 4, 3)")),
    (nn.LayerNorm((3, 4)), np.ones((4,), np.float32), ValueError, ("(*, 3, 4)", "(4,)")),
    (nn.LayerNorm(3), np.ones((2, 3), np.float64), TypeError, ("float32", "float64")),
    (nn.LayerNorm(3), np.ones((2, 3), np.int64), TypeError, ("floating-point",)),
    (nn.GroupNorm(2, 4), np.ones((2, 6, 3), np.float32), ValueError, ("(N, 4, *)", "6 channels")),
    (nn.GroupNorm(2, 4), np.ones((4,), np.float32), ValueError, ("(N, 4, *)", "(4,)")),
    (nn.GroupNorm(3, 3), np.ones((1, 3, 1), np.float32), ValueError, ("more than 1 value per group", "(1, 3, 1)")),
])
def test_bad_inputs_are_named(layer, x, error, fragments):
    with pytest.raises(error) as info:
        layer(x)
    message = str(info.value)
    assert message.startswith(repr(layer)) and all(fragment in message for fragment in fragments), message
