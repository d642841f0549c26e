"""ConvNeXt's layers against float64 finite differences in training mode (the block's layer scale and stochastic
depth, the channel LayerNorm), and the network's small-input stem, stochastic depth schedule and torchvision's
initialisation.  Their comparison with torch twins is tests/nn/test_convnext_blocks_vs_torch.py; with torchvision
itself, test_torchvision_equality.py."""
import numpy as np
import pytest

from finite_difference import check_gradients, check_layer
from juanji import models, nn
from juanji import random as jrandom
from juanji.models.convnext import CNBlock, LayerNorm2d
from juanji.nn.stochastic_depth import StochasticDepth


def image(shape, seed=1):
    return np.random.default_rng(seed).standard_normal(shape)


def test_layer_norm_2d_finite_differences():
    layer = LayerNorm2d(5, eps=1e-6).to(np.float64)
    rng = np.random.default_rng(0)
    for array in layer.params.values():
        array[...] = rng.uniform(0.5, 1.5, array.shape)
    check_layer(layer, image((2, 5, 3, 4)) * 2 + 1, samples=10)


def test_layer_norm_2d_normalises_each_pixel_over_its_channels():
    layer = LayerNorm2d(6, eps=0.0).to(np.float64)
    y = layer(image((2, 6, 3, 4)) * 3 + 2)
    np.testing.assert_allclose(y.mean(axis=1), 0, atol=1e-13)
    np.testing.assert_allclose(y.var(axis=1), 1, atol=1e-12)
    with pytest.raises(ValueError, match=r"expected input of shape \(N, 6, H, W\) with 6 channels"):
        layer(np.zeros((2, 3, 4, 6)))


def test_cn_block_finite_differences_in_training():
    """γ of order one: the layer scale's gradient dγ = Σ dR ⊙ B and the branch's share of dX are not lost."""
    jrandom.seed(0)
    block = CNBlock(4, layer_scale=0.7).to(np.float64).train()
    block.params["layer_scale"][...] = np.random.default_rng(3).uniform(0.5, 1.5, (4, 1, 1))
    check_layer(block, image((3, 4, 5, 5)), samples=10)


def test_cn_block_with_its_stochastic_depth_finite_differences_in_training():
    """p = 0.5: the same draws at every evaluation (a fixed function), some samples of four dropped (y = x)."""
    jrandom.seed(0)
    block = CNBlock(4, layer_scale=0.7, stochastic_depth_prob=0.5).to(np.float64).train()
    x = image((4, 4, 5, 5))

    def outputs(x):
        block.stochastic_depth.rng = np.random.default_rng(1)
        return [block(x)]

    y = outputs(x)[0]
    dropped = [n for n in range(4) if np.array_equal(y[n], x[n])]
    assert 0 < len(dropped) < 4
    dy = image(y.shape, seed=2)
    check_gradients(block, x, outputs, [dy], lambda: block.backward(dy), samples=10)


def test_cn_block_backward_leaves_its_gradient_untouched():
    jrandom.seed(0)
    block = CNBlock(4, layer_scale=0.5).to(np.float64)
    dy = image((2, 4, 3, 3), seed=2)
    block(image((2, 4, 3, 3)))
    saved = dy.copy()
    block.backward(dy)
    np.testing.assert_array_equal(dy, saved)


@pytest.mark.parametrize("size, kernel, stride, end", [(28, 3, 1, 3), (32, 3, 1, 4), (64, 4, 4, 2)])
def test_small_inputs_use_a_3x3_stride_1_stem(size, kernel, stride, end):
    model = models.create("convnext_tiny", num_classes=10, in_channels=1, input_size=size).eval()
    stem = model.features[0][0]
    assert stem.kernel_size == (kernel, kernel) and stem.stride == (stride, stride)
    assert model.features(np.zeros((1, 1, size, size), np.float32)).shape[1:] == (768, end, end)


def test_stochastic_depth_grows_linearly_to_0_1_over_its_18_blocks():
    model = models.create("convnext_tiny", num_classes=10, in_channels=1, input_size=28)
    blocks = [m for m in model.modules() if isinstance(m, CNBlock)]
    assert [b.stochastic_depth.p for b in blocks] == [0.1 * i / 17 for i in range(18)]
    assert all(isinstance(b.stochastic_depth, StochasticDepth) and b.stochastic_depth.mode == "row" for b in blocks)


def test_initialisation_is_torchvisions():
    """Conv and Linear weights N(0, 0.02²), their biases 0, every layer scale 1e-6, LayerNorms γ = 1, β = 0."""
    jrandom.seed(0)
    model = models.create("convnext_tiny", num_classes=10, in_channels=3, input_size=32)
    weights = [m.params["weight"] for m in model.modules() if isinstance(m, (nn.Conv2d, nn.Linear))]
    values = np.concatenate([w.ravel() for w in weights])
    assert abs(values.std() - 0.02) < 2e-4 and abs(values.mean()) < 1e-4
    for module in model.modules():
        if isinstance(module, (nn.Conv2d, nn.Linear)):
            assert not module.params["bias"].any()
        if isinstance(module, CNBlock):
            assert np.all(module.params["layer_scale"] == np.float32(1e-6))
        if isinstance(module, nn.LayerNorm):
            assert np.all(module.params["weight"] == 1) and not module.params["bias"].any()


def test_builder_arguments_are_checked():
    with pytest.raises(ValueError, match=r"stochastic_depth_prob must be in \[0, 1\]"):
        models.create("convnext_tiny", stochastic_depth_prob=-0.1)
    # torchvision's 28,589,128, less 990 of the fc's rows (768 + 1 each) and 7 of each 4×4 stem filter's 16 taps
    assert models.create("convnext_tiny", input_size=32, num_classes=10).num_parameters() == \
        28_589_128 - 990 * 769 - 3 * 96 * 7
