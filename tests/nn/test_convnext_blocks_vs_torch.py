"""ConvNeXt's layers (juanji.models.convnext) against torch twins written as torchvision writes them (torchvision is
not installed beside this torch): LayerNorm2d, and the CNBlock — its layer scale's hand-written backward, with
stochastic depth drawing the same masks in training; forward, dx and every parameter gradient, float64 and float32.
Kept here, beside layer_check; the whole network against torchvision is tests/models/test_torchvision_equality.py."""
import numpy as np
import pytest
import torch
import torch.nn.functional as TF

from juanji import random as jrandom
from juanji.interop import from_torch
from juanji.models.convnext import CNBlock, LayerNorm2d
from layer_check import DTYPES, assert_close, compare_with_torch, randomise_state
from test_stochastic_depth import TorchStochasticDepth


class TorchLayerNorm2d(torch.nn.LayerNorm):
    """torchvision.models.convnext.LayerNorm2d."""

    def forward(self, x):
        x = x.permute(0, 2, 3, 1)
        x = TF.layer_norm(x, self.normalized_shape, self.weight, self.bias, self.eps)
        return x.permute(0, 3, 1, 2)


class TorchPermute(torch.nn.Module):
    """torchvision.ops.misc.Permute."""

    def __init__(self, dims):
        super().__init__()
        self.dims = dims

    def forward(self, x):
        return torch.permute(x, self.dims)


class TorchCNBlock(torch.nn.Module):
    """torchvision.models.convnext.CNBlock, its StochasticDepth reading its draws from a NumPy generator."""

    def __init__(self, dim, layer_scale, stochastic_depth_prob, rng):
        super().__init__()
        self.block = torch.nn.Sequential(
            torch.nn.Conv2d(dim, dim, kernel_size=7, padding=3, groups=dim, bias=True),
            TorchPermute([0, 2, 3, 1]),
            torch.nn.LayerNorm(dim, eps=1e-6),
            torch.nn.Linear(in_features=dim, out_features=4 * dim, bias=True),
            torch.nn.GELU(),
            torch.nn.Linear(in_features=4 * dim, out_features=dim, bias=True),
            TorchPermute([0, 3, 1, 2]),
        )
        self.layer_scale = torch.nn.Parameter(torch.ones(dim, 1, 1) * layer_scale)
        self.stochastic_depth = TorchStochasticDepth(stochastic_depth_prob, "row", rng)

    def forward(self, input):
        result = self.layer_scale * self.block(input)
        result = self.stochastic_depth(result)
        return result + input


def image(shape, dtype, seed=1):
    return np.random.default_rng(seed).standard_normal(shape).astype(dtype)


@pytest.mark.parametrize("dtype", DTYPES)
def test_layer_norm_2d(dtype):
    layer = LayerNorm2d(6, eps=1e-6).to(dtype)
    randomise_state(layer)
    compare_with_torch(layer, TorchLayerNorm2d(6, eps=1e-6), image((3, 6, 4, 5), dtype) * 2 + 1, steps=2)


def cn_block_pair(dim, p, seed=9):
    """juanji's block, its stochastic depth given a generator, and the twin given the generator's twin."""
    block = CNBlock(dim, 1e-6, p)
    block.stochastic_depth.rng = np.random.default_rng(seed)
    return block, TorchCNBlock(dim, 1e-6, p, np.random.default_rng(seed))


@pytest.mark.parametrize("train", [True, False], ids=["train", "eval"])
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("dim, p", [(4, 0.0), (8, 0.5)], ids=["no-drop", "dropped"])
def test_cn_block(dim, p, dtype, train):
    """Layer scales of order one (randomise_state), so that γ ⊙ block(x) is not lost beside x."""
    jrandom.seed(0)
    block, twin = cn_block_pair(dim, p)
    block.to(dtype)
    randomise_state(block)
    compare_with_torch(block.train(train), twin, image((4, dim, 6, 5), dtype), steps=3)


def test_from_torch_loads_a_torch_block_and_gives_its_output():
    torch.manual_seed(0)
    twin = TorchCNBlock(8, 1e-6, 0.1, np.random.default_rng(0)).double().eval()
    with torch.no_grad():
        twin.layer_scale.uniform_(0.5, 1.5)
    block = from_torch(CNBlock(8).to(np.float64).eval(), twin.state_dict())
    x = image((2, 8, 5, 5), np.float64)
    assert_close(block(x), twin(torch.from_numpy(x)), "y")
