"""The mobile networks' blocks (squeeze-excitation, inverted residuals with and without stochastic depth) against
float64 finite differences in training mode, torchvision's channel rounding, and the three networks' small-input
stem and stochastic depth schedule.  Their comparison with torch twins is tests/nn/test_mobile_blocks_vs_torch.py;
with torchvision itself, test_torchvision_equality.py."""
import numpy as np
import pytest

from finite_difference import check_gradients, check_layer
from juanji import models, nn
from juanji import random as jrandom
from juanji.models.efficientnet import mbconv
from juanji.models.mobile_blocks import InvertedResidual, SqueezeExcitation, make_divisible
from juanji.models.mobilenet_v2 import inverted_residual as v2_block
from juanji.models.mobilenet_v3 import inverted_residual as v3_block
from juanji.nn.stochastic_depth import StochasticDepth


def image(shape, seed=1):
    return np.random.default_rng(seed).standard_normal(shape)


@pytest.mark.parametrize("value, divisor, expected", [
    (32, 8, 32), (16 * 0.75, 8, 16), (72 // 4, 8, 24), (16 // 4, 8, 8), (240 // 4, 8, 64), (576 // 4, 8, 144),
    (1280 * 0.35, 8, 448), (10, 8, 16), (3, 8, 8), (11, 4, 12)])
def test_make_divisible_is_torchvisions(value, divisor, expected):
    """The nearest multiple, at least the divisor, never more than 10 % below the value (18 → 16 is 11 % off: 24)."""
    assert make_divisible(value, divisor) == expected


@pytest.mark.parametrize("act, gate", [(nn.ReLU, nn.Hardsigmoid), (nn.SiLU, nn.Sigmoid)])
def test_squeeze_excitation_finite_differences(act, gate):
    """The gradient reaches x directly (dY · s) and through the gate (dS = Σ_hw dY · x)."""
    jrandom.seed(0)
    layer = SqueezeExcitation(6, 3, activation=act, scale_activation=gate).to(np.float64)
    for array in layer.params.values():                     # gates away from saturation and the kinks at ±3
        array *= 2
    check_layer(layer, image((2, 6, 4, 5)) * 2, samples=10)


@pytest.mark.parametrize("make, shape", [
    (lambda: v2_block(4, 4, 1, 6), (3, 4, 5, 5)),                              # residual
    (lambda: v2_block(4, 6, 2, 6), (3, 4, 6, 6)),                              # strided
    (lambda: v3_block(8, 5, 24, 8, True, "HS", 1), (3, 8, 5, 5)),              # squeeze-excitation, Hardswish
    (lambda: v3_block(16, 3, 16, 16, True, "RE", 2), (3, 16, 6, 6)),           # no expansion
    (lambda: mbconv(4, 8, 6, 3, 2, 0.5), (3, 4, 6, 6))],                       # SiLU, no shortcut: no drop
    ids=["v2-residual", "v2-stride2", "v3-se-hardswish", "v3-no-expand", "mbconv-stride2"])
def test_inverted_residual_finite_differences_in_training(make, shape):
    jrandom.seed(0)
    check_layer(make().to(np.float64).train(), image(shape))


def test_mbconv_with_its_stochastic_depth_finite_differences_in_training():
    """A residual MBConv with p = 0.5: the same draws at every evaluation (a fixed function), some samples of four
    dropped (y = x for them; their x still reaches the others' outputs through the batch statistics)."""
    jrandom.seed(0)
    block = mbconv(4, 4, 6, 3, 1, 0.5).to(np.float64).train()
    x = image((4, 4, 5, 5))

    def outputs(x):
        block.stochastic_depth.rng = np.random.default_rng(1)
        return [block(x)]

    y = outputs(x)[0]
    dropped = [n for n in range(4) if np.array_equal(y[n], x[n])]
    assert 0 < len(dropped) < 4
    dy = image(y.shape, seed=2)
    check_gradients(block, x, outputs, [dy], lambda: block.backward(dy), samples=10)


def test_a_block_without_shortcut_is_its_body():
    block = v2_block(4, 6, 1, 6).to(np.float64).eval()
    x = image((2, 4, 5, 5))
    assert not block.use_res_connect
    np.testing.assert_array_equal(block(x), block.conv(x))
    residual = v2_block(4, 4, 1, 6).to(np.float64).eval()
    np.testing.assert_allclose(residual(x), residual.conv(x) + x, rtol=0, atol=1e-15)


NAMES = ["mobilenet_v2", "mobilenet_v3_small", "efficientnet_b0"]


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("size, stride", [(28, 1), (32, 1), (64, 2)])
def test_small_inputs_use_a_stride_1_stem_and_end_at_2x2(name, size, stride):
    model = models.create(name, num_classes=10, in_channels=1, input_size=size).eval()
    assert model.features[0][0].stride == (stride, stride)
    assert model.features(np.zeros((1, 1, size, size), np.float32)).shape[2:] == (2, 2)


def test_efficientnet_stochastic_depth_grows_linearly_over_its_16_blocks():
    model = models.create("efficientnet_b0", num_classes=10, in_channels=1, input_size=28)
    blocks = [m for m in model.modules() if isinstance(m, InvertedResidual)]
    assert [b.stochastic_depth.p for b in blocks] == [0.2 * i / 16 for i in range(16)]
    assert sum(b.use_res_connect for b in blocks) == 9
    assert all(isinstance(b.stochastic_depth, StochasticDepth) and b.stochastic_depth.mode == "row" for b in blocks)


def test_builder_arguments_are_checked():
    with pytest.raises(ValueError, match="width_mult must be positive"):
        models.create("mobilenet_v2", width_mult=0)
    with pytest.raises(ValueError, match=r"stochastic_depth_prob must be in \[0, 1\]"):
        models.create("efficientnet_b0", stochastic_depth_prob=1.5)
    assert models.create("mobilenet_v3_small", width_mult=0.5, input_size=32).num_parameters() < 2_542_856
