"""The U-Net's skip connection (juanji.models.unet.skip: an nn.Concat of Identity and the level below):
forward, input and parameter gradients equal a torch twin written by hand, and finite differences agree."""
from collections import OrderedDict

import numpy as np
import pytest
import torch

from finite_difference import check_layer
from juanji import nn
from juanji import random as jrandom
from juanji.models.unet import skip
from layer_check import compare_with_torch, randomise_state


class TorchSkip(torch.nn.Module):
    """torch's U-Net skip, written out: y = cat([x, down(x)], dim=1), children named as juanji's."""

    def __init__(self, down):
        super().__init__()
        self.skip, self.down = torch.nn.Identity(), down

    def forward(self, x):
        return torch.cat([self.skip(x), self.down(x)], dim=1)


def juanji_level():
    return skip(nn.Sequential(OrderedDict(pool=nn.MaxPool2d(2), conv=nn.Conv2d(3, 4, 3, padding=1),
                                          bn=nn.BatchNorm2d(4), relu=nn.ReLU(),
                                          up=nn.ConvTranspose2d(4, 2, 2, stride=2))))


def torch_level():
    t = torch.nn
    return TorchSkip(t.Sequential(OrderedDict(pool=t.MaxPool2d(2), conv=t.Conv2d(3, 4, 3, padding=1),
                                              bn=t.BatchNorm2d(4), relu=t.ReLU(),
                                              up=t.ConvTranspose2d(4, 2, 2, stride=2))))


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_skip_connection_equals_torch(dtype):
    jrandom.seed(0)
    module = juanji_level().to(dtype)
    randomise_state(module)
    x = np.random.default_rng(1).standard_normal((2, 3, 8, 8)).astype(dtype)
    y = compare_with_torch(module, torch_level(), x, steps=2)
    assert y.shape == (2, 5, 8, 8)


def test_skip_connection_passes_x_through_and_splits_the_gradient():
    module = skip(nn.Conv2d(3, 2, 1)).to(np.float64)
    x = np.random.default_rng(0).standard_normal((2, 3, 4, 4))
    y = module(x)
    np.testing.assert_array_equal(y[:, :3], x)                  # the skip half is x itself
    dy = np.random.default_rng(1).standard_normal(y.shape)
    conv = module.down
    expected = dy[:, :3] + np.einsum("nkhw,kc->nchw", dy[:, 3:], conv.params["weight"][:, :, 0, 0])
    np.testing.assert_allclose(module.backward(dy), expected, rtol=1e-12)


def test_skip_connection_gradients_by_finite_differences():
    jrandom.seed(0)
    module = juanji_level().to(np.float64).eval()     # eval: BN a fixed affine map, differentiable everywhere
    randomise_state(module)
    x = np.random.default_rng(2).standard_normal((2, 3, 6, 6))
    check_layer(module, x, samples=8)
