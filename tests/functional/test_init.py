"""Initialisers against torch.nn.init: fans, gains, bounds and standard deviations; and initialize()."""
import math

import numpy as np
import pytest
import torch

from juanji import init as jinit
from juanji import models
from juanji.functional import init as F

SHAPES = [(64, 3, 3, 3), (16, 6, 5, 5), (120, 400), (10, 84), (32, 1, 7, 7), (8, 4, 1, 3)]


@pytest.mark.parametrize("shape", SHAPES)
def test_fans_equal_torch(shape):
    assert F.fans(shape) == torch.nn.init._calculate_fan_in_and_fan_out(torch.empty(shape))


@pytest.mark.parametrize("nonlinearity, param", [("relu", None), ("tanh", None), ("sigmoid", None),
                                                 ("linear", None), ("leaky_relu", None), ("leaky_relu", 0.2),
                                                 ("leaky_relu", math.sqrt(5)), ("selu", None)])
def test_gain_equals_torch(nonlinearity, param):
    assert F.gain(nonlinearity, param) == pytest.approx(torch.nn.init.calculate_gain(nonlinearity, param), rel=1e-12)


def _torch_sample(fill, shape):
    tensor = torch.empty(shape, dtype=torch.float64)
    torch.manual_seed(0)
    fill(tensor)
    return tensor.numpy()


UNIFORM = [  # juanji initialiser, torch equivalent, the bound of the uniform distribution
    (lambda s, r: F.kaiming_uniform(s, r, nonlinearity="relu", dtype=np.float64),
     lambda t: torch.nn.init.kaiming_uniform_(t, nonlinearity="relu"), lambda fi, fo: math.sqrt(6 / fi)),
    (lambda s, r: F.kaiming_uniform(s, r, mode="fan_out", nonlinearity="relu", dtype=np.float64),
     lambda t: torch.nn.init.kaiming_uniform_(t, mode="fan_out", nonlinearity="relu"),
     lambda fi, fo: math.sqrt(6 / fo)),
    (lambda s, r: F.xavier_uniform(s, r, dtype=np.float64), torch.nn.init.xavier_uniform_,
     lambda fi, fo: math.sqrt(6 / (fi + fo))),
    (lambda s, r: F.lecun_uniform(s, r, dtype=np.float64), None, lambda fi, fo: math.sqrt(3 / fi)),
    (lambda s, r: F.torch_default(s, r, dtype=np.float64)[0],
     lambda t: torch.nn.init.kaiming_uniform_(t, a=math.sqrt(5)), lambda fi, fo: 1 / math.sqrt(fi)),
]


@pytest.mark.parametrize("shape", SHAPES[:3])
@pytest.mark.parametrize("ours, theirs, bound", UNIFORM)
def test_uniform_initialisers_have_torchs_bounds(shape, ours, theirs, bound):
    sample = ours((200,) + shape[1:] if len(shape) > 2 else (2000, shape[1]), np.random.default_rng(0))
    expected = bound(*F.fans(sample.shape))
    assert np.abs(sample).max() <= expected
    assert np.abs(sample).max() > 0.99 * expected                      # the bound is reached, not a smaller one
    assert sample.std() == pytest.approx(expected / math.sqrt(3), rel=0.02)
    if theirs is not None:
        reference = _torch_sample(theirs, sample.shape)
        assert np.abs(reference).max() <= expected and np.abs(reference).max() > 0.99 * expected


NORMAL = [
    (lambda s, r: F.kaiming_normal(s, r, nonlinearity="relu", dtype=np.float64),
     lambda t: torch.nn.init.kaiming_normal_(t, nonlinearity="relu"), lambda fi, fo: math.sqrt(2 / fi)),
    (lambda s, r: F.xavier_normal(s, r, dtype=np.float64), torch.nn.init.xavier_normal_,
     lambda fi, fo: math.sqrt(2 / (fi + fo))),
    (lambda s, r: F.lecun_normal(s, r, dtype=np.float64), None, lambda fi, fo: 1 / math.sqrt(fi)),
]


@pytest.mark.parametrize("ours, theirs, std", NORMAL)
def test_normal_initialisers_have_torchs_std(ours, theirs, std):
    shape = (256, 64, 3, 3)
    expected = std(*F.fans(shape))
    sample = ours(shape, np.random.default_rng(0))
    assert sample.mean() == pytest.approx(0, abs=0.01 * expected)
    assert sample.std() == pytest.approx(expected, rel=0.01)
    if theirs is not None:
        assert _torch_sample(theirs, shape).std() == pytest.approx(expected, rel=0.01)


def test_initialisers_honour_dtype():
    rng = np.random.default_rng(0)
    for name, initialiser in F.INITIALISERS.items():
        assert initialiser((4, 3, 3, 3), rng).dtype == np.float32, name
        assert initialiser((4, 3, 3, 3), rng, dtype=np.float64).dtype == np.float64, name


@pytest.mark.parametrize("scheme", jinit.SCHEMES)
def test_initialize_redraws_weights_in_place_and_zeroes_biases(scheme):
    model = models.create("lenet5")
    arrays = {name: param for name, param, _ in model.parameters()}
    before = {name: param.copy() for name, param in arrays.items()}
    jinit.initialize(model, scheme, np.random.default_rng(1))
    for name, param, _ in model.parameters():
        assert param is arrays[name]                                    # same arrays: optimizers stay valid
        if scheme == "torch":
            np.testing.assert_array_equal(param, before[name])
        elif name.endswith("bias"):
            assert not param.any()
        else:
            assert not np.array_equal(param, before[name])
    conv = model[0].params["weight"]
    if scheme == "kaiming_normal":
        assert conv.std() == pytest.approx(math.sqrt(2 / 25), rel=0.35)  # 150 samples: a loose check


def test_unknown_scheme_lists_the_known_ones():
    with pytest.raises(ValueError, match="unknown initialisation 'he'.*kaiming_uniform"):
        jinit.initialize(models.create("lenet5"), "he", np.random.default_rng(0))
