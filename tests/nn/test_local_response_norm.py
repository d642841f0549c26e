"""LocalResponseNorm with every torch argument drawn at random (odd and even sizes, windows wider than the
channels) against torch.nn on 3-D to 5-D and non-contiguous inputs, in float32 and float64; AlexNet's setting;
finite differences; bad arguments and inputs refused."""
import numpy as np
import pytest
import torch

from finite_difference import check_layer
from juanji import nn
from layer_check import DTYPES, compare_with_torch

SEEDS = range(12)


def draw(rng):
    """(size, alpha, beta, k) and an input (N, C, *) of 3 to 5 axes."""
    options = dict(size=int(rng.integers(1, 8)), alpha=float(rng.choice([1e-4, 0.1, 1.0, 3.0])),
                   beta=float(rng.choice([0.5, 0.75, 1.0, 2.0])), k=float(rng.choice([0.5, 1.0, 2.0])))
    shape = (int(rng.integers(1, 4)), int(rng.integers(1, 8))) + tuple(int(s) for s in
                                                                      rng.integers(1, 4, int(rng.integers(1, 4))))
    return options, shape


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("seed", SEEDS)
def test_random_options_match_torch(seed, dtype):
    rng = np.random.default_rng(seed)
    options, shape = draw(rng)
    layer = (nn.LocalResponseNorm(*options.values()) if seed % 2 == 0 else nn.LocalResponseNorm(**options))
    x = (rng.standard_normal(shape) * 2).astype(dtype)
    x = x.T.copy().T if rng.random() < 0.5 else x          # half of them a non-contiguous (transposed) view
    y = compare_with_torch(layer, torch.nn.LocalResponseNorm(**options), x, steps=2, seed=seed)
    assert y.shape == shape


@pytest.mark.parametrize("dtype", DTYPES)
def test_alexnets_setting(dtype):
    layer = nn.LocalResponseNorm(size=5, alpha=1e-4, beta=0.75, k=2.0)
    x = (np.random.default_rng(0).standard_normal((2, 16, 6, 6)) * 20).astype(dtype)
    compare_with_torch(layer, torch.nn.LocalResponseNorm(size=5, alpha=1e-4, beta=0.75, k=2.0), x)


@pytest.mark.parametrize("seed", range(4))
def test_finite_differences(seed):
    rng = np.random.default_rng(seed)
    options, shape = draw(rng)
    check_layer(nn.LocalResponseNorm(**options), rng.standard_normal(shape), seed=seed)


def test_no_grad_keeps_nothing():
    layer = nn.LocalResponseNorm(3)
    with nn.no_grad():
        layer(np.ones((2, 4, 3), np.float32))
    with pytest.raises(RuntimeError, match="backward called before forward"):
        layer.backward(np.ones((2, 4, 3), np.float32))


@pytest.mark.parametrize("make, fragments", [
    (lambda: nn.LocalResponseNorm(0), ("size", "0")),
    (lambda: nn.LocalResponseNorm(2.0), ("size", "2.0")),
    (lambda: nn.LocalResponseNorm(3, alpha="x"), ("alpha", "'x'")),
    (lambda: nn.LocalResponseNorm(3, beta=float("nan")), ("beta", "nan")),
    (lambda: nn.LocalResponseNorm(3, k=None), ("k", "None")),
])
def test_bad_arguments_are_refused_naming_the_argument(make, fragments):
    with pytest.raises(ValueError) as info:
        make()
    assert str(info.value).startswith("LocalResponseNorm: ") and all(f in str(info.value) for f in fragments)


def test_a_2d_input_is_refused_as_in_torch():
    with pytest.raises(ValueError, match=r"LocalResponseNorm\(3.*3-D or more.*\(4, 5\)"):
        nn.LocalResponseNorm(3)(np.ones((4, 5), np.float32))
