"""The blocks of the mobile networks (MobileNet v2 and v3, EfficientNet), torchvision's, with its names:
conv → norm → activation, squeeze-and-excitation, and the inverted residual block built of them."""
from __future__ import annotations

import numpy as np

from .. import nn
from ..nn.stochastic_depth import StochasticDepth


def make_divisible(value: float, divisor: int = 8, min_value: int | None = None) -> int:
    """torchvision's ``_make_divisible``: ``value`` rounded to the nearest multiple of ``divisor`` (at least
    ``min_value``, by default ``divisor``), one ``divisor`` more where rounding lost over 10 %."""
    min_value = divisor if min_value is None else min_value
    rounded = max(min_value, int(value + divisor / 2) // divisor * divisor)
    return rounded + divisor if rounded < 0.9 * value else rounded


class Conv2dNormActivation(nn.Sequential):
    """torchvision's ``Conv2dNormActivation``: children "0" conv (no bias, padding (k − 1)/2), "1" norm, and "2"
    the activation unless ``activation_layer`` is None.  x (N, C, H, W) → y (N, K, ⌈H/s⌉, ⌈W/s⌉) for odd k.
    ``norm_layer`` and ``activation_layer`` are called with the channels and with nothing."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int = 3, stride: int = 1, groups: int = 1,
                 norm_layer=nn.BatchNorm2d, activation_layer=nn.ReLU):
        layers = [nn.Conv2d(in_channels, out_channels, kernel_size, stride, (kernel_size - 1) // 2, groups=groups,
                            bias=False), norm_layer(out_channels)]
        if activation_layer is not None:
            layers.append(activation_layer())
        super().__init__(*layers)


class SqueezeExcitation(nn.Module):
    """torchvision's ``ops.SqueezeExcitation`` (Hu et al. 2018): each channel scaled by a gate computed from the
    global average of all channels, y = x · s, s = scale_activation(fc2(activation(fc1(avgpool(x))))), fc1 and fc2
    1×1 convs (C → squeeze_channels → C).  x (N, C, H, W) → y (N, C, H, W), s (N, C, 1, 1).
    x reaches y directly and through the gate:  dS = Σ_hw dY · x,  dX = dY · s + avgpool.backward(… dS)."""

    GATE = ("avgpool", "fc1", "activation", "fc2", "scale_activation")     # the children, in the gate's order

    def __init__(self, input_channels: int, squeeze_channels: int, activation=nn.ReLU, scale_activation=nn.Sigmoid):
        super().__init__()
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc1 = nn.Conv2d(input_channels, squeeze_channels, 1)
        self.fc2 = nn.Conv2d(squeeze_channels, input_channels, 1)
        self.activation = activation()
        self.scale_activation = scale_activation()

    def scale(self, x):
        """s (N, C, 1, 1), the gate of each channel."""
        for key in self.GATE:
            x = getattr(self, key)(x)
        return x

    def forward(self, x):
        self._check_input(x, "(N, C, H, W)", 4, self.fc1.in_channels)
        scale = self.scale(x)
        self.save_for_backward(x, scale)
        return x * scale

    def backward(self, dy):
        x, scale = self.saved_for_backward()
        grad = np.einsum("nchw,nchw->nc", dy, x)[:, :, None, None]           # dS = Σ_hw dY · x
        for key in reversed(self.GATE):
            grad = getattr(self, key).backward(grad)
        return dy * scale + grad


class InvertedResidual(nn.Module):
    """An inverted residual block (MobileNet v2's, v3's; EfficientNet's MBConv): its ``layers`` (expand, depthwise,
    [squeeze-excitation,] project) as the Sequential ``body_name`` ("conv" in MobileNet v2, "block" elsewhere).
    With ``residual`` (stride 1, as many channels out as in) y = body(x) + x — with ``stochastic_depth_prob`` the
    body's output passes a row-mode ``StochasticDepth`` first — else y = body(x).
    dX = body.backward(dY) (+ dY along the shortcut)."""

    def __init__(self, layers: list[nn.Module], residual: bool, body_name: str = "block",
                 stochastic_depth_prob: float | None = None):
        super().__init__()
        setattr(self, body_name, nn.Sequential(*layers))
        self._body = body_name
        self.use_res_connect = residual
        if stochastic_depth_prob is not None:
            self.stochastic_depth = StochasticDepth(stochastic_depth_prob, "row")

    def branch(self) -> list[str]:
        """The names of the children x passes through: the body, then the stochastic depth where the block has one
        and a shortcut."""
        drop = self.use_res_connect and "stochastic_depth" in self._modules
        return [self._body] + (["stochastic_depth"] if drop else [])

    def forward(self, x):
        y = x
        for key in self.branch():
            y = getattr(self, key)(y)
        return y + x if self.use_res_connect else y

    def backward(self, dy):
        dx = dy
        for key in reversed(self.branch()):
            dx = getattr(self, key).backward(dx)
        return dx + dy if self.use_res_connect else dx
