"""GoogLeNet / Inception v1 (Szegedy et al. 2015, "Going Deeper with Convolutions") as torchvision builds
it: conv + BN (ε = 0.001) + ReLU units, ceil-mode max pools, and — torchvision's known deviation from
the paper — a 3×3 conv in the "5×5" branch.  Auxiliary classifiers are optional (off by default).

Small inputs (< 64 pixels): conv1 is 3×3 stride 1 and maxpool1 is left out (28×28 reaches inception5
at 4×4, 32×32 at 4×4); otherwise conv1 is 7×7 stride 2 followed by maxpool1, as torchvision.
"""
from __future__ import annotations

from collections import OrderedDict
from functools import partial

from .. import nn
from .blocks import ConvBNReLU, finish, is_small

BasicConv2d = partial(ConvBNReLU, eps=0.001)

# Inception modules (in, 1×1, 3×3 reduce, 3×3, "5×5" reduce, "5×5", pool proj) — Table 1 of the paper —
# and the ceil-mode max pools (kernel size) between them.
STAGES = [
    ("inception3a", (192, 64, 96, 128, 16, 32, 32)), ("inception3b", (256, 128, 128, 192, 32, 96, 64)),
    ("maxpool3", 3),
    ("inception4a", (480, 192, 96, 208, 16, 48, 64)), ("inception4b", (512, 160, 112, 224, 24, 64, 64)),
    ("inception4c", (512, 128, 128, 256, 24, 64, 64)), ("inception4d", (512, 112, 144, 288, 32, 64, 64)),
    ("inception4e", (528, 256, 160, 320, 32, 128, 128)),
    ("maxpool4", 2),
    ("inception5a", (832, 256, 160, 320, 32, 128, 128)), ("inception5b", (832, 384, 192, 384, 48, 128, 128)),
]
# The auxiliary classifiers read the outputs of these modules.
AUX_TAPS = {"inception4a": "aux1", "inception4d": "aux2"}


class InceptionModule(nn.Concat):
    """Four parallel branches concatenated: 1×1 | 1×1 → 3×3 | 1×1 → 3×3 ("5×5") | 3×3 max pool → 1×1.
    x (N, C, H, W) → (N, ch1x1 + ch3x3 + ch5x5 + pool_proj, H, W)."""

    def __init__(self, in_channels, ch1x1, ch3x3red, ch3x3, ch5x5red, ch5x5, pool_proj):
        super().__init__(OrderedDict(
            branch1=BasicConv2d(in_channels, ch1x1, 1),
            branch2=nn.Sequential(BasicConv2d(in_channels, ch3x3red, 1),
                                  BasicConv2d(ch3x3red, ch3x3, 3, padding=1)),
            branch3=nn.Sequential(BasicConv2d(in_channels, ch5x5red, 1),
                                  BasicConv2d(ch5x5red, ch5x5, 3, padding=1)),
            branch4=nn.Sequential(nn.MaxPool2d(3, 1, 1, ceil_mode=True),
                                  BasicConv2d(in_channels, pool_proj, 1))))


def inception_aux(in_channels: int, num_classes: int, dropout: float = 0.7) -> nn.Sequential:
    """Auxiliary classifier: 4×4 average pool → 1×1 conv (128) → fc 1024 → ReLU → dropout → fc.
    x (N, C, H, W) → logits (N, num_classes)."""
    return nn.Sequential(OrderedDict(
        avgpool=nn.AdaptiveAvgPool2d(4), conv=BasicConv2d(in_channels, 128, 1), flatten=nn.Flatten(),
        fc1=nn.Linear(2048, 1024), relu=nn.ReLU(), dropout=nn.Dropout(dropout),
        fc2=nn.Linear(1024, num_classes)))


class GoogLeNet(nn.Module):
    """The trunk runs its children in order; x (N, C, H, W) → logits (N, num_classes).

    With ``aux_logits``, a forward pass in training mode also computes the two auxiliary classifiers'
    logits into ``self.aux_outputs`` (a tuple (aux1, aux2); empty otherwise).  Train with
    loss = CE(logits) + 0.3·(CE(aux1) + CE(aux2)) and call ``backward(dlogits, aux_grads=(d1, d2))``.
    """

    def __init__(self, num_classes: int = 1000, in_channels: int = 3, input_size: int = 224,
                 aux_logits: bool = False, dropout: float = 0.2, dropout_aux: float = 0.7):
        super().__init__()
        if is_small(input_size):
            stem = [("conv1", BasicConv2d(in_channels, 64, 3, padding=1))]
        else:
            stem = [("conv1", BasicConv2d(in_channels, 64, 7, stride=2, padding=3)),
                    ("maxpool1", nn.MaxPool2d(3, 2, ceil_mode=True))]
        trunk = stem + [("conv2", BasicConv2d(64, 64, 1)), ("conv3", BasicConv2d(64, 192, 3, padding=1)),
                        ("maxpool2", nn.MaxPool2d(3, 2, ceil_mode=True))]
        for name, spec in STAGES:
            layer = nn.MaxPool2d(spec, 2, ceil_mode=True) if name.startswith("maxpool") else InceptionModule(*spec)
            trunk.append((name, layer))
        trunk += [("avgpool", nn.AdaptiveAvgPool2d(1)), ("flatten", nn.Flatten()),
                  ("dropout", nn.Dropout(dropout)), ("fc", nn.Linear(1024, num_classes))]
        for name, layer in trunk:
            setattr(self, name, layer)
        self._trunk = [layer for _, layer in trunk]
        self._taps = {}         # trunk layer → the auxiliary head reading its output
        if aux_logits:
            self.aux1 = inception_aux(512, num_classes, dropout_aux)
            self.aux2 = inception_aux(528, num_classes, dropout_aux)
            self._taps = {getattr(self, tap): getattr(self, aux) for tap, aux in AUX_TAPS.items()}
        self.aux_logits = aux_logits
        self.aux_outputs = ()

    def forward(self, x):
        aux_outputs = []
        for layer in self._trunk:
            x = layer(x)
            if self.training and layer in self._taps:
                aux_outputs.append(self._taps[layer](x))
        self.aux_outputs = tuple(aux_outputs)
        return x

    def backward(self, dy, aux_grads=()):
        """dX of the logits' gradient ``dy`` plus, when given, the auxiliary logits' gradients."""
        if aux_grads and len(aux_grads) != len(self.aux_outputs):
            raise ValueError(f"GoogLeNet.backward: {len(aux_grads)} auxiliary gradients for "
                             f"{len(self.aux_outputs)} auxiliary outputs")
        pending = dict(zip(self._taps.values(), aux_grads))
        for layer in reversed(self._trunk):
            head = self._taps.get(layer)
            if head in pending:
                dy = dy + head.backward(pending[head])
            dy = layer.backward(dy)
        return dy


def googlenet(num_classes: int = 1000, in_channels: int = 3, input_size: int = 224,
              aux_logits: bool = False) -> GoogLeNet:
    """GoogLeNet / Inception v1 (torchvision), 6.6 M parameters at 1000 classes (13.0 M with aux heads)."""
    return finish(GoogLeNet(num_classes, in_channels, input_size, aux_logits), in_channels, input_size)
