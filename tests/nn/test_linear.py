"""Linear, Flatten, Unflatten and Identity against torch.nn's: every constructor argument drawn at random,
positional or keyword, inputs with any leading axes (none: unbatched), non-contiguous views, float64 and float32;
finite differences; bad arguments refused at construction, bad inputs in forward, naming the layer."""
import numpy as np
import pytest
import torch

from finite_difference import check_layer
from juanji import nn
from layer_check import DTYPES, TORCH_DTYPE, compare_with_torch, randomise_state


def make_input(rng, shape, dtype, transposed):
    if transposed and len(shape) >= 2:
        return rng.standard_normal((*shape[:-2], shape[-1], shape[-2])).astype(dtype).swapaxes(-1, -2)
    return rng.standard_normal(shape).astype(dtype)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("seed", range(10))
def test_linear_random_arguments_match_torch(seed, dtype):
    rng = np.random.default_rng(seed)
    args = [int(rng.integers(1, 7)), int(rng.integers(1, 7)), bool(rng.random() < 0.7), rng.choice([None, "cpu"]),
            TORCH_DTYPE[np.dtype(dtype)]]
    if seed % 2:
        layer, reference = nn.Linear(*args), torch.nn.Linear(*args)
    else:
        keywords = dict(zip(["in_features", "out_features", "bias", "device", "dtype"], args))
        layer, reference = nn.Linear(**keywords), torch.nn.Linear(**keywords)
    assert repr(layer) == repr(reference) and layer.dtype == dtype
    randomise_state(layer, seed)
    lead = [(), (3,), (2, 3), (1, 2, 2), (0,)][seed % 5]
    x = make_input(rng, (*lead, args[0]), dtype, transposed=seed % 3 == 0)
    y = compare_with_torch(layer, reference, x, seed=seed)
    assert y.shape == (*lead, args[1])


def test_linear_finite_differences():
    rng = np.random.default_rng(4)
    check_layer(nn.Linear(3, 2, dtype=np.float64), rng.standard_normal((2, 4, 3)))
    check_layer(nn.Linear(5, 3, bias=False, dtype=np.float64), rng.standard_normal(5))


def test_linear_rng_is_keyword_only():
    a, b = (nn.Linear(3, 2, rng=np.random.default_rng(1)) for _ in range(2))
    np.testing.assert_array_equal(a.params["weight"], b.params["weight"])
    with pytest.raises(TypeError):
        nn.Linear(3, 2, True, None, None, np.random.default_rng(1))


@pytest.mark.parametrize("make, error, fragment", [
    (lambda: nn.Linear(3, 2, device="cuda:0"), ValueError, "Linear: device must be None or 'cpu'"),
    (lambda: nn.Linear(3, 2, dtype=np.int32), TypeError, "Linear: dtype must be float32 or float64"),
    (lambda: nn.Linear(3.0, 2), ValueError, "Linear: in_features must be a positive int, got 3.0"),
    (lambda: nn.Flatten(1.5), TypeError, "Flatten: start_dim must be an int"),
    (lambda: nn.Unflatten(1, 6), TypeError, "Unflatten: unflattened_size must be a tuple or list of ints"),
    (lambda: nn.Unflatten(1, (2, -1, -1)), TypeError, "at most one −1"),
    (lambda: nn.Unflatten("1", (2, 3)), TypeError, "Unflatten: dim must be an int"),
])
def test_bad_arguments_are_refused_at_construction(make, error, fragment):
    with pytest.raises(error) as info:
        make()
    assert fragment in str(info.value)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("seed", range(8))
def test_flatten_random_dims_match_torch(seed, dtype):
    rng = np.random.default_rng(seed)
    shape = tuple(int(s) for s in rng.integers(1, 4, int(rng.integers(1, 5))))
    ndim = len(shape)
    start = int(rng.integers(-ndim, ndim))
    end = int(rng.integers(start % ndim, ndim)) - (ndim if rng.random() < 0.5 else 0)
    layer, reference = ((nn.Flatten(start, end), torch.nn.Flatten(start, end)) if seed % 2 else
                        (nn.Flatten(start_dim=start, end_dim=end), torch.nn.Flatten(start_dim=start, end_dim=end)))
    assert repr(layer) == repr(reference)
    compare_with_torch(layer, reference, make_input(rng, shape, dtype, transposed=seed % 3 == 0), seed=seed)


def test_flatten_refuses_what_torch_refuses():
    with pytest.raises(ValueError, match=r"Flatten\(start_dim=2, end_dim=1\): start_dim cannot come after end_dim"):
        nn.Flatten(2, 1)(np.zeros((2, 3, 4)))
    with pytest.raises(IndexError, match="dimension 1 out of range for a 1-D input"):
        nn.Flatten()(np.zeros(3))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("dim, sizes, shape", [
    (1, (2, 3), (4, 6)), (-1, [2, -1], (3, 2, 8)), (0, (3, 1, 2), (6, 5)), (-2, (1, -1), (2, 3, 4)),
    (0, (2, 2, 3), (12,)), (1, (0, 5), (2, 0, 3))])
def test_unflatten_matches_torch(dim, sizes, shape, dtype):
    layer, reference = nn.Unflatten(dim, sizes), torch.nn.Unflatten(dim, sizes)
    assert repr(layer) == repr(reference) and layer.unflattened_size == sizes
    rng = np.random.default_rng(0)
    compare_with_torch(layer, reference, make_input(rng, shape, dtype, transposed=dim == 0))
    if 0 not in shape:
        check_layer(nn.Unflatten(dim, sizes), rng.standard_normal(shape))


def test_unflatten_refuses_sizes_that_do_not_fill_the_axis():
    with pytest.raises(ValueError, match=r"Unflatten\(dim=1, unflattened_size=\(2, 4\)\): .* does not fill axis 1"):
        nn.Unflatten(1, (2, 4))(np.zeros((3, 6)))
    with pytest.raises(ValueError, match="does not fill"):
        nn.Unflatten(1, (4, -1))(np.zeros((3, 6)))
    with pytest.raises(IndexError, match="dimension 2 out of range"):
        nn.Unflatten(2, (2, 3))(np.zeros((3, 6)))


@pytest.mark.parametrize("dtype", DTYPES)
def test_identity_takes_and_ignores_arguments_as_torch(dtype):
    layer, reference = nn.Identity(54, unused_argument1=0.1), torch.nn.Identity(54, unused_argument1=0.1)
    assert repr(layer) == repr(reference) == "Identity()"
    x = make_input(np.random.default_rng(1), (2, 3, 4), dtype, transposed=True)
    assert compare_with_torch(layer, reference, x) is x
