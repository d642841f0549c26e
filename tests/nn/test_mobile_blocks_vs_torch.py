"""The mobile networks' blocks (juanji.models.mobile_blocks) against torch twins written as torchvision writes them
(torchvision is not installed beside this torch): squeeze-excitation, and the inverted residual blocks of MobileNet
v2, v3 and EfficientNet with batch norms in training mode and stochastic depth drawing the same masks; forward, dx,
every parameter gradient and the running statistics, float64 and float32.  Kept here, beside layer_check."""
import numpy as np
import pytest
import torch

from juanji import nn
from juanji import random as jrandom
from juanji.interop import from_torch
from juanji.models.efficientnet import mbconv
from juanji.models.mobile_blocks import SqueezeExcitation
from juanji.models.mobilenet_v2 import inverted_residual as v2_block
from juanji.models.mobilenet_v3 import inverted_residual as v3_block
from layer_check import DTYPES, assert_close, compare_with_torch, randomise_state
from test_stochastic_depth import TorchStochasticDepth


class TorchHardsigmoid(torch.nn.Module):
    """relu6(x + 3) / 6 by autograd: torch's own Hardsigmoid backward multiplies by the float32 constant 1.0f/6.0f,
    3e-8 off in float64 (juanji's Hardsigmoid is compared with torch's in test_activations_vs_torch)."""

    def forward(self, x):
        return (x + 3).clamp(0, 6) / 6


class TorchSqueezeExcitation(torch.nn.Module):
    """torchvision.ops.SqueezeExcitation."""

    def __init__(self, input_channels, squeeze_channels, activation=torch.nn.ReLU, scale_activation=torch.nn.Sigmoid):
        super().__init__()
        self.avgpool = torch.nn.AdaptiveAvgPool2d(1)
        self.fc1 = torch.nn.Conv2d(input_channels, squeeze_channels, 1)
        self.fc2 = torch.nn.Conv2d(squeeze_channels, input_channels, 1)
        self.activation = activation()
        self.scale_activation = scale_activation()

    def forward(self, input):
        scale = self.scale_activation(self.fc2(self.activation(self.fc1(self.avgpool(input)))))
        return scale * input


class TorchInvertedResidual(torch.nn.Module):
    """torchvision's InvertedResidual (MobileNet v2: body ``conv``; v3: ``block``) and MBConv (with
    ``stochastic_depth`` on the residual branch)."""

    def __init__(self, body_name, layers, residual, stochastic_depth=None):
        super().__init__()
        self.body_name, self.residual = body_name, residual
        setattr(self, body_name, torch.nn.Sequential(*layers))
        if stochastic_depth is not None:
            self.stochastic_depth = stochastic_depth

    def forward(self, input):
        result = getattr(self, self.body_name)(input)
        if self.residual:
            if hasattr(self, "stochastic_depth"):
                result = self.stochastic_depth(result)
            result = result + input
        return result


def _make_divisible(v, divisor, min_value=None):
    """torchvision.models._utils._make_divisible."""
    if min_value is None:
        min_value = divisor
    new_v = max(min_value, int(v + divisor / 2) // divisor * divisor)
    if new_v < 0.9 * v:
        new_v += divisor
    return new_v


def conv_norm_act(c_in, c_out, kernel, stride=1, groups=1, act=torch.nn.ReLU, eps=1e-5, momentum=0.1):
    """torchvision.ops.Conv2dNormActivation."""
    layers = [torch.nn.Conv2d(c_in, c_out, kernel, stride, (kernel - 1) // 2, groups=groups, bias=False),
              torch.nn.BatchNorm2d(c_out, eps=eps, momentum=momentum)]
    return torch.nn.Sequential(*layers, *([act()] if act else []))


def torch_v2_block(c_in, c_out, stride, t):
    hidden = c_in * t
    layers = [conv_norm_act(c_in, hidden, 1, act=torch.nn.ReLU6)] if t != 1 else []
    layers += [conv_norm_act(hidden, hidden, 3, stride, hidden, torch.nn.ReLU6),
               torch.nn.Conv2d(hidden, c_out, 1, bias=False), torch.nn.BatchNorm2d(c_out)]
    return TorchInvertedResidual("conv", layers, stride == 1 and c_in == c_out)


def torch_v3_block(c_in, kernel, expanded, c_out, use_se, activation, stride):
    act = {"RE": torch.nn.ReLU, "HS": torch.nn.Hardswish}[activation]
    norm = dict(eps=0.001, momentum=0.01)
    layers = [conv_norm_act(c_in, expanded, 1, act=act, **norm)] if expanded != c_in else []
    layers.append(conv_norm_act(expanded, expanded, kernel, stride, expanded, act, **norm))
    if use_se:
        layers.append(TorchSqueezeExcitation(expanded, _make_divisible(expanded // 4, 8),
                                             scale_activation=TorchHardsigmoid))
    layers.append(conv_norm_act(expanded, c_out, 1, act=None, **norm))
    return TorchInvertedResidual("block", layers, stride == 1 and c_in == c_out)


def torch_mbconv(c_in, c_out, t, kernel, stride, p, rng):
    expanded = c_in * t
    layers = [conv_norm_act(c_in, expanded, 1, act=torch.nn.SiLU)] if expanded != c_in else []
    layers += [conv_norm_act(expanded, expanded, kernel, stride, expanded, torch.nn.SiLU),
               TorchSqueezeExcitation(expanded, max(1, c_in // 4), activation=torch.nn.SiLU),
               conv_norm_act(expanded, c_out, 1, act=None)]
    return TorchInvertedResidual("block", layers, stride == 1 and c_in == c_out, TorchStochasticDepth(p, "row", rng))


def image(shape, dtype, seed=1):
    return np.random.default_rng(seed).standard_normal(shape).astype(dtype)


SE_CASES = [(nn.ReLU, torch.nn.ReLU, nn.Sigmoid, torch.nn.Sigmoid),
            (nn.ReLU, torch.nn.ReLU, nn.Hardsigmoid, TorchHardsigmoid),
            (nn.SiLU, torch.nn.SiLU, nn.Sigmoid, torch.nn.Sigmoid)]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("act, torch_act, gate, torch_gate", SE_CASES, ids=["relu-sigmoid", "relu-hardsigmoid",
                                                                             "silu-sigmoid"])
def test_squeeze_excitation(act, torch_act, gate, torch_gate, dtype):
    jrandom.seed(0)
    layer = SqueezeExcitation(6, 3, activation=act, scale_activation=gate).to(dtype)
    randomise_state(layer)
    twin = TorchSqueezeExcitation(6, 3, activation=torch_act, scale_activation=torch_gate)
    compare_with_torch(layer, twin, image((3, 6, 5, 4), dtype) * 2, steps=2)


# (juanji block, its torch twin, input shape): residual and not, with and without squeeze-excitation
BLOCKS = {
    "v2-expand1": (lambda: v2_block(8, 8, 1, 1), lambda: torch_v2_block(8, 8, 1, 1), (2, 8, 6, 6)),
    "v2-residual": (lambda: v2_block(4, 4, 1, 6), lambda: torch_v2_block(4, 4, 1, 6), (2, 4, 6, 6)),
    "v2-stride2": (lambda: v2_block(4, 6, 2, 6), lambda: torch_v2_block(4, 6, 2, 6), (2, 4, 7, 7)),
    "v3-se-relu-stride2": (lambda: v3_block(16, 3, 16, 16, True, "RE", 2),
                           lambda: torch_v3_block(16, 3, 16, 16, True, "RE", 2), (2, 16, 6, 6)),
    "v3-se-hardswish-residual": (lambda: v3_block(8, 5, 24, 8, True, "HS", 1),
                                 lambda: torch_v3_block(8, 5, 24, 8, True, "HS", 1), (2, 8, 5, 5)),
    "v3-no-se": (lambda: v3_block(8, 3, 16, 12, False, "RE", 1),
                 lambda: torch_v3_block(8, 3, 16, 12, False, "RE", 1), (2, 8, 5, 5)),
}


def mbconv_pair(c_in, c_out, t, kernel, stride, p):
    """juanji's MBConv, its stochastic depth given a generator, and the twin given its twin."""
    block = mbconv(c_in, c_out, t, kernel, stride, p)
    block.stochastic_depth.rng = np.random.default_rng(9)
    return block, torch_mbconv(c_in, c_out, t, kernel, stride, p, np.random.default_rng(9))


MBCONVS = {"mbconv-expand1": (8, 4, 1, 3, 1, 0.0), "mbconv-residual-dropped": (4, 4, 6, 3, 1, 0.5),
           "mbconv-stride2": (4, 8, 6, 5, 2, 0.5)}


@pytest.mark.parametrize("train", [True, False], ids=["train", "eval"])
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", list(BLOCKS) + list(MBCONVS))
def test_inverted_residual_blocks(name, dtype, train):
    jrandom.seed(0)
    if name in MBCONVS:
        block, twin = mbconv_pair(*MBCONVS[name])
        shape = (4, MBCONVS[name][0], 5, 5)
    else:
        make, make_twin, shape = BLOCKS[name]
        block, twin = make(), make_twin()
    block.to(dtype)
    randomise_state(block)
    compare_with_torch(block.train(train), twin, image(shape, dtype), steps=3)


def test_from_torch_loads_a_torch_block_and_gives_its_output():
    torch.manual_seed(0)
    twin = torch_v3_block(8, 5, 24, 8, True, "HS", 1).double().eval()
    with torch.no_grad():
        for module in twin.modules():
            if isinstance(module, torch.nn.BatchNorm2d):
                module.running_mean.uniform_(-0.5, 0.5)
                module.running_var.uniform_(0.5, 1.5)
    block = from_torch(v3_block(8, 5, 24, 8, True, "HS", 1).to(np.float64).eval(), twin.state_dict())
    x = image((2, 8, 5, 5), np.float64)
    assert_close(block(x), twin(torch.from_numpy(x)), "y")
