"""MobileNet v3 Small (Howard et al. 2019, "Searching for MobileNetV3"), torchvision's: a 3×3 conv, 11 inverted
residual blocks (ReLU or Hardswish, 3×3 or 5×5 depthwise, squeeze-excitation gated by a Hardsigmoid in nine of
them), a 1×1 conv to 576 channels, global average pool, fc 1024 → Hardswish → dropout → fc.  Batch norms have
ε = 0.001 and momentum 0.01, as torchvision's.

Small inputs (< 64 pixels): the first conv has stride 1 instead of 2 (28×28 ends at 2×2, 32×32 at 2×2).
"""
from __future__ import annotations

import functools
from collections import OrderedDict

from .. import nn
from .blocks import finish, is_small
from .mobile_blocks import Conv2dNormActivation, InvertedResidual, SqueezeExcitation, make_divisible

# (input channels, kernel, expanded channels, output channels, squeeze-excitation, activation, stride) — Table 2
# of the paper, as torchvision's _mobilenet_v3_conf("mobilenet_v3_small").
SMALL = [(16, 3, 16, 16, True, "RE", 2), (16, 3, 72, 24, False, "RE", 2), (24, 3, 88, 24, False, "RE", 1),
         (24, 5, 96, 40, True, "HS", 2), (40, 5, 240, 40, True, "HS", 1), (40, 5, 240, 40, True, "HS", 1),
         (40, 5, 120, 48, True, "HS", 1), (48, 5, 144, 48, True, "HS", 1), (48, 5, 288, 96, True, "HS", 2),
         (96, 5, 576, 96, True, "HS", 1), (96, 5, 576, 96, True, "HS", 1)]
ACTIVATIONS = {"RE": nn.ReLU, "HS": nn.Hardswish}
BatchNorm = functools.partial(nn.BatchNorm2d, eps=0.001, momentum=0.01)


def inverted_residual(in_channels, kernel, expanded, out_channels, use_se, activation, stride) -> InvertedResidual:
    """[1×1 expand,] k×k depthwise (stride s), [squeeze-excitation with C/4 channels rounded to 8 and a Hardsigmoid
    gate,] 1×1 linear projection, in ``block``."""
    act = ACTIVATIONS[activation]
    layers = [Conv2dNormActivation(in_channels, expanded, 1, norm_layer=BatchNorm, activation_layer=act)
              ] if expanded != in_channels else []
    layers.append(Conv2dNormActivation(expanded, expanded, kernel, stride, groups=expanded, norm_layer=BatchNorm,
                                       activation_layer=act))
    if use_se:
        layers.append(SqueezeExcitation(expanded, make_divisible(expanded // 4, 8), scale_activation=nn.Hardsigmoid))
    layers.append(Conv2dNormActivation(expanded, out_channels, 1, norm_layer=BatchNorm, activation_layer=None))
    return InvertedResidual(layers, stride == 1 and in_channels == out_channels)


def mobilenet_v3_small(num_classes: int = 1000, in_channels: int = 3, input_size: int = 224,
                       width_mult: float = 1.0, dropout: float = 0.2) -> nn.Sequential:
    """MobileNet v3 Small (torchvision): inverted residuals, squeeze-excitation, Hardswish, 2.5 M parameters."""
    if width_mult <= 0:
        raise ValueError(f"mobilenet_v3_small: width_mult must be positive, got {width_mult}")

    def width(channels):
        return make_divisible(channels * width_mult, 8)

    setting = [(width(c), k, width(e), width(o), se, act, s) for c, k, e, o, se, act, s in SMALL]
    layers = [Conv2dNormActivation(in_channels, setting[0][0], 3, 1 if is_small(input_size) else 2,
                                   norm_layer=BatchNorm, activation_layer=nn.Hardswish)]
    layers += [inverted_residual(*block) for block in setting]
    channels = setting[-1][3]
    layers.append(Conv2dNormActivation(channels, 6 * channels, 1, norm_layer=BatchNorm,
                                       activation_layer=nn.Hardswish))
    last = width(1024)
    model = nn.Sequential(OrderedDict(
        features=nn.Sequential(*layers), avgpool=nn.AdaptiveAvgPool2d(1), flatten=nn.Flatten(),
        classifier=nn.Sequential(nn.Linear(6 * channels, last), nn.Hardswish(), nn.Dropout(dropout),
                                 nn.Linear(last, num_classes))))
    return finish(model, in_channels, input_size)
