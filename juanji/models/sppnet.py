"""SPP-net (He et al. 2014, "Spatial Pyramid Pooling in Deep Convolutional Networks for Visual
Recognition"): ZFNet's five conv layers, a spatial pyramid pool instead of the last max pool, then
the fully connected classifier.  The pyramid's output length does not depend on the image size, so
one model takes inputs of any size ≥ ``input_size``'s stem can handle (e.g. 28, 32, 45 pixels).
"""
from __future__ import annotations

from collections import OrderedDict

from .. import nn
from .alexnet import classifier, conv_features, layer_table
from .blocks import finish


def spp_net(num_classes: int = 10, in_channels: int = 1, input_size: int = 28,
            levels=(1, 2, 4)) -> nn.Sequential:
    """SPP-net: ZFNet's conv layers + spatial pyramid pooling (levels 1, 2, 4) — any input size."""
    features, channels = conv_features(layer_table("zfnet", input_size)[:-1], in_channels)
    spp = nn.SpatialPyramidPool2d(levels)
    model = nn.Sequential(OrderedDict(
        features=features, spp=spp, classifier=classifier(spp.output_features(channels), num_classes)))
    return finish(model, in_channels, input_size)
