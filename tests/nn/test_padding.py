"""The padding layers against torch.nn's: every class, padding drawn at random (an int or torch's tuple, negative
amounts cropping), called positionally or by keyword, on batched, unbatched and non-contiguous inputs, float64
and float32; finite differences; bad arguments refused at construction, bad inputs in forward, naming the layer."""
import numpy as np
import pytest
import torch

from finite_difference import check_layer
from juanji import nn
from layer_check import DTYPES, compare_with_torch

CLASSES = ["ZeroPad1d", "ZeroPad2d", "ConstantPad1d", "ConstantPad2d", "ReflectionPad1d", "ReflectionPad2d",
           "ReplicationPad1d", "ReplicationPad2d", "CircularPad1d", "CircularPad2d"]


def dims_of(name):
    return int(name[-2])


def draw(rng, name):
    """(arguments in torch's order, input shape) that torch accepts: sizes larger than any padding, crops
    that leave at least one entry."""
    dims = dims_of(name)
    sizes = [int(s) for s in rng.integers(4, 8, dims)]
    if rng.random() < 0.3:
        padding = int(rng.integers(0, 4))
    else:
        padding = tuple(int(p) for p in rng.integers(-2, 4, 2 * dims))
    args = [padding]
    if name.startswith("Constant"):
        args.append(float(np.round(rng.uniform(-2, 2), 2)))
    rank = dims + int(rng.integers(1, 3))           # unbatched (C, …) or batched (N, C, …)
    if name.startswith(("Zero", "Constant")):
        rank = dims + int(rng.integers(0, 4))        # any rank with the padded axes
    lead = [int(s) for s in rng.integers(1, 4, rank - dims)]
    return args, (*lead, *sizes)


def make_input(rng, shape, dtype):
    if rng.random() < 0.5 and len(shape) >= 2:
        return rng.standard_normal((*shape[:-2], shape[-1], shape[-2])).astype(dtype).swapaxes(-1, -2)
    return rng.standard_normal(shape).astype(dtype)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("seed", range(8))
@pytest.mark.parametrize("name", CLASSES)
def test_random_padding_matches_torch(name, seed, dtype):
    rng = np.random.default_rng(seed * 31 + CLASSES.index(name))
    args, shape = draw(rng, name)
    if seed % 2:
        keywords = dict(zip(["padding", "value"], args))
        layer, reference = getattr(nn, name)(**keywords), getattr(torch.nn, name)(**keywords)
    else:
        layer, reference = getattr(nn, name)(*args), getattr(torch.nn, name)(*args)
    assert repr(layer) == repr(reference) and layer.padding == reference.padding
    y = compare_with_torch(layer, reference, make_input(rng, shape, dtype), seed=seed)
    assert y.dtype == dtype


@pytest.mark.parametrize("name", CLASSES)
def test_finite_differences(name):
    dims = dims_of(name)
    args = [(2, -1, 1, 3)[:2 * dims]] + ([0.7] if name.startswith("Constant") else [])
    check_layer(getattr(nn, name)(*args), np.random.default_rng(2).standard_normal((2, 3, *(5,) * dims)))


def test_constant_pads_take_any_rank_as_torch():
    x = np.arange(6.0)
    np.testing.assert_array_equal(nn.ZeroPad1d((1, 2))(x), torch.nn.ZeroPad1d((1, 2))(torch.from_numpy(x)))
    x = np.ones((2, 1, 2, 3, 4))
    np.testing.assert_array_equal(nn.ConstantPad2d(1, 3.0)(x), torch.nn.ConstantPad2d(1, 3.0)(torch.from_numpy(x)))


def test_integer_inputs_are_padded_as_torch():
    x = np.arange(12).reshape(1, 3, 4)
    np.testing.assert_array_equal(nn.ReflectionPad1d(2)(x), torch.nn.ReflectionPad1d(2)(torch.from_numpy(x)))
    np.testing.assert_array_equal(nn.ConstantPad1d(1, 2.5)(x), torch.nn.ConstantPad1d(1, 2.5)(torch.from_numpy(x)))


@pytest.mark.parametrize("make, error, fragment", [
    (lambda: nn.ZeroPad2d((1, 2, 3)), TypeError, "ZeroPad2d: padding must be an int or a tuple of 4 ints"),
    (lambda: nn.ReflectionPad1d((1, 2, 3, 4)), TypeError, "ReflectionPad1d: padding must be an int or a tuple of 2"),
    (lambda: nn.ReplicationPad2d(1.5), TypeError, "ReplicationPad2d: padding must be an int or a tuple of 4 ints"),
    (lambda: nn.CircularPad1d((1.0, 2)), TypeError, "got (1.0, 2)"),
    (lambda: nn.ConstantPad1d(1, "0"), TypeError, "ConstantPad1d: value must be a number, got '0'"),
    (lambda: nn.ConstantPad2d(1, None), TypeError, "ConstantPad2d: value must be a number"),
])
def test_bad_arguments_are_refused_at_construction(make, error, fragment):
    with pytest.raises(error) as info:
        make()
    assert fragment in str(info.value)


@pytest.mark.parametrize("layer, shape, fragment", [
    (nn.ReflectionPad2d(3), (1, 2, 3, 5), "each side must be less than the size"),
    (nn.ReflectionPad2d(1), (3, 5), "expected input of shape (N, C, H, W) or (C, H, W), got 2-D"),
    (nn.ReplicationPad1d(1), (2, 2, 3, 5), "expected input of shape (N, C, L) or (C, L), got 4-D"),
    (nn.CircularPad1d(6), (1, 2, 5), "wraps around more than once"),
    (nn.ReplicationPad1d((-3, -2)), (1, 2, 5), "leaves no entry"),
    (nn.ZeroPad2d(1), (5,), "expected input of shape (…, H, W), got 1-D"),
    (nn.ConstantPad1d(-3, 0.0), (2, 5), "crops more than the axis holds"),
])
def test_inputs_torch_refuses_are_refused_naming_the_layer(layer, shape, fragment):
    with pytest.raises(ValueError) as info:
        layer(np.zeros(shape))
    assert str(info.value).startswith(repr(layer)) and fragment in str(info.value), str(info.value)
