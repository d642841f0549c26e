"""AdaptiveMaxPool2d and SpatialPyramidPool2d: forward and backward against torch in float64 (1e-10),
finite differences, and outputs of one length for any input size."""
import numpy as np
import pytest
import torch
import torch.nn.functional as TF

from juanji import models
from juanji.functional import spp as F
from juanji.nn.spp import AdaptiveMaxPool2d, SpatialPyramidPool2d

# (input H, W) and bins: dividing evenly, overlapping bins (H not a multiple), more bins than pixels.
CASES = [((8, 8), (4, 4)), ((7, 10), (3, 4)), ((5, 6), (1, 1)), ((3, 2), (5, 4)), ((13, 9), (6, 2))]


def distinct(shape, seed=0):
    """Inputs without ties (a random permutation of spaced values): arg-max is unambiguous."""
    rng = np.random.default_rng(seed)
    return (rng.permutation(np.prod(shape)).reshape(shape) * 0.01 + rng.random(shape) * 1e-3).astype(np.float64)


@pytest.mark.parametrize("size, bins", CASES)
def test_adaptive_max_pool_matches_torch(size, bins):
    x = distinct((2, 3) + size)
    layer = AdaptiveMaxPool2d(bins)
    y = layer(x)
    dy = np.random.default_rng(1).standard_normal(y.shape)
    xt = torch.tensor(x, requires_grad=True)
    yt = TF.adaptive_max_pool2d(xt, bins)
    yt.backward(torch.tensor(dy))
    np.testing.assert_allclose(y, yt.detach().numpy(), rtol=0, atol=1e-10)
    np.testing.assert_allclose(layer.backward(dy), xt.grad.numpy(), rtol=0, atol=1e-10)


def test_ties_go_to_the_first_position_as_torch():
    x = np.ones((1, 1, 4, 4))
    y, cache = F.adaptive_max_pool2d(x, 2)
    dx = F.adaptive_max_pool2d_backward(np.ones_like(y), cache)
    xt = torch.tensor(x, requires_grad=True)
    TF.adaptive_max_pool2d(xt, 2).sum().backward()
    np.testing.assert_array_equal(dx, xt.grad.numpy())


@pytest.mark.parametrize("size", [(9, 9), (6, 11), (2, 3)])
def test_spatial_pyramid_pool_matches_torch(size):
    levels = (1, 2, 4)
    x = distinct((2, 5) + size, seed=2)
    layer = SpatialPyramidPool2d(levels)
    y = layer(x)
    assert y.shape == (2, layer.output_features(5)) == (2, 5 * 21)
    dy = np.random.default_rng(3).standard_normal(y.shape)
    xt = torch.tensor(x, requires_grad=True)
    yt = torch.cat([TF.adaptive_max_pool2d(xt, level).flatten(1) for level in levels], dim=1)
    yt.backward(torch.tensor(dy))
    np.testing.assert_allclose(y, yt.detach().numpy(), rtol=0, atol=1e-10)
    np.testing.assert_allclose(layer.backward(dy), xt.grad.numpy(), rtol=0, atol=1e-10)


def test_spatial_pyramid_pool_finite_differences():
    x = distinct((2, 3, 7, 6), seed=4)
    layer = SpatialPyramidPool2d((1, 3, 2))
    dy = np.random.default_rng(5).standard_normal(layer(x).shape)
    dx = layer.backward(dy)
    numeric = np.zeros_like(x)
    h = 1e-6                       # far below the 0.01 gap between values: no arg-max changes
    for index in np.ndindex(x.shape):
        step = np.zeros_like(x)
        step[index] = h
        numeric[index] = ((layer(x + step) - layer(x - step)) * dy).sum() / (2 * h)
    np.testing.assert_allclose(dx, numeric, rtol=0, atol=1e-8)


def test_spp_net_takes_any_input_size():
    model = models.create("spp_net", num_classes=4, in_channels=1, input_size=28).eval()
    for size in [(28, 28), (32, 45), (19, 23)]:
        assert model(np.zeros((2, 1) + size, dtype=np.float32)).shape == (2, 4)


def test_bad_levels_are_rejected():
    with pytest.raises(ValueError, match="levels"):
        SpatialPyramidPool2d((1, 0))
