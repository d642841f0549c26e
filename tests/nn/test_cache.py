"""One cache mechanism for every layer (``Module.save_for_backward`` / ``saved_for_backward``): no cache after a
forward under no_grad (and backward then says so), the cache released after backward, kept under
``retain_cache()`` so that backward can run twice."""
import inspect

import numpy as np
import pytest

from juanji import nn

NOT_KEPT = r"backward called before forward \(or after a forward under no_grad\)"


def image(n=2, c=3, size=6):
    return np.random.default_rng(0).standard_normal((n, c, size, size))


# Every layer class of juanji.nn with an input it accepts (the losses: see ``forward`` for their targets).
CASES = {
    "Sequential": (lambda: nn.Sequential(nn.Conv2d(3, 4, 3), nn.ReLU()), image),
    "Residual": (lambda: nn.Residual(nn.Conv2d(3, 3, 3, padding=1)), image),
    "Concat": (lambda: nn.Concat(nn.Conv2d(3, 2, 1), nn.Identity()), image),
    "Conv1d": (lambda: nn.Conv1d(3, 4, 3, padding=1), lambda: image()[:, :, 0]),
    "Conv2d": (lambda: nn.Conv2d(3, 4, 3, padding=1), image),
    "Linear": (lambda: nn.Linear(5, 4), lambda: image()[:, 0, 0, :5]),
    "Flatten": (nn.Flatten, image),
    "Identity": (nn.Identity, image),
    "Unflatten": (lambda: nn.Unflatten(1, (3, 1)), image),
    "ZeroPad1d": (lambda: nn.ZeroPad1d((1, -2)), lambda: image()[:, :, 0]),
    "ZeroPad2d": (lambda: nn.ZeroPad2d(1), image),
    "ConstantPad1d": (lambda: nn.ConstantPad1d(2, 0.5), lambda: image()[:, :, 0]),
    "ConstantPad2d": (lambda: nn.ConstantPad2d((1, 0, 2, -1), 0.5), image),
    "ReflectionPad1d": (lambda: nn.ReflectionPad1d(2), lambda: image()[:, :, 0]),
    "ReflectionPad2d": (lambda: nn.ReflectionPad2d((1, 2, 3, 0)), image),
    "ReplicationPad1d": (lambda: nn.ReplicationPad1d(3), lambda: image()[:, :, 0]),
    "ReplicationPad2d": (lambda: nn.ReplicationPad2d(2), image),
    "CircularPad1d": (lambda: nn.CircularPad1d(2), lambda: image()[:, :, 0]),
    "CircularPad2d": (lambda: nn.CircularPad2d((1, 2, 2, 1)), image),
    "PixelShuffle": (lambda: nn.PixelShuffle(2), lambda: image(c=8)),
    "PixelUnshuffle": (lambda: nn.PixelUnshuffle(3), image),
    "ReLU": (nn.ReLU, image),
    "LeakyReLU": (nn.LeakyReLU, image),
    "Sigmoid": (nn.Sigmoid, image),
    "Tanh": (nn.Tanh, image),
    "Softmax": (lambda: nn.Softmax(1), image),
    "Dropout": (lambda: nn.Dropout(0.5, rng=np.random.default_rng(1)), image),
    "Dropout1d": (lambda: nn.Dropout1d(0.5, rng=np.random.default_rng(1)), lambda: image()[:, :, 0]),
    "Dropout2d": (lambda: nn.Dropout2d(0.5, rng=np.random.default_rng(1)), image),
    "StochasticDepth": (lambda: nn.StochasticDepth(0.5, "row", rng=np.random.default_rng(1)), image),
    "Dropout3d": (lambda: nn.Dropout3d(0.5, rng=np.random.default_rng(1)), lambda: image()[:, :, None]),
    "LogSoftmax": (lambda: nn.LogSoftmax(1), image),
    "Softmin": (lambda: nn.Softmin(1), image),
    "ReLU6": (nn.ReLU6, image),
    "Hardtanh": (nn.Hardtanh, image),
    "Hardswish": (nn.Hardswish, image),
    "Hardsigmoid": (nn.Hardsigmoid, image),
    "SiLU": (nn.SiLU, image),
    "Mish": (nn.Mish, image),
    "GELU": (nn.GELU, image),
    "ELU": (nn.ELU, image),
    "SELU": (nn.SELU, image),
    "Softplus": (nn.Softplus, image),
    "PReLU": (lambda: nn.PReLU(3), image),
    "BatchNorm1d": (lambda: nn.BatchNorm1d(3), lambda: image()[:, :, 0]),
    "BatchNorm2d": (lambda: nn.BatchNorm2d(3), image),
    "BatchNormReLU": (lambda: nn.BatchNormReLU(nn.BatchNorm2d(3)), image),
    "BatchNormAddReLU": (lambda: nn.BatchNormAddReLU(nn.BatchNorm2d(3)), image),
    "BatchNormReLU6": (lambda: nn.BatchNormReLU6(nn.BatchNorm2d(3)), image),
    "FusedBatchNorm": (lambda: nn.FusedBatchNorm(nn.BatchNorm2d(3)), image),
    "FoldedConv2d": (lambda: nn.FoldedConv2d(nn.Conv2d(3, 4, 3, padding=1), nn.FusedBatchNorm(nn.BatchNorm2d(4))),
                     image),
    "GroupNorm": (lambda: nn.GroupNorm(3, 3), image),
    "LayerNorm": (lambda: nn.LayerNorm((6, 6)), image),
    "InstanceNorm1d": (lambda: nn.InstanceNorm1d(3, affine=True), lambda: image()[:, :, 0]),
    "InstanceNorm2d": (lambda: nn.InstanceNorm2d(3, track_running_stats=True), image),
    "LocalResponseNorm": (lambda: nn.LocalResponseNorm(2), image),
    "MaxPool2d": (lambda: nn.MaxPool2d(2), image),
    "AvgPool2d": (lambda: nn.AvgPool2d(3, 2, padding=1), image),
    "AdaptiveAvgPool2d": (lambda: nn.AdaptiveAvgPool2d(4), image),
    "GlobalAvgPool2d": (nn.GlobalAvgPool2d, image),
    "CrossEntropyLoss": (nn.CrossEntropyLoss, lambda: image()[:, 0, 0, :4]),
    "NLLLoss": (nn.NLLLoss, lambda: image()[:, 0, 0, :4]),
    "MSELoss": (nn.MSELoss, image),
    "L1Loss": (nn.L1Loss, image),
    "SmoothL1Loss": (nn.SmoothL1Loss, image),
    "HuberLoss": (nn.HuberLoss, image),
    "BCELoss": (nn.BCELoss, lambda: 1 / (1 + np.exp(-image()))),
    "BCEWithLogitsLoss": (nn.BCEWithLogitsLoss, image),
    "KLDivLoss": (lambda: nn.KLDivLoss(reduction="batchmean"), image),
    "Embedding": (lambda: nn.Embedding(7, 3), lambda: np.arange(10).reshape(2, 5) % 7),
    "Permute": (lambda: nn.Permute(0, 2, 1), lambda: image()[:, :, 0]),
    "GlobalMaxPool1d": (nn.GlobalMaxPool1d, lambda: image()[:, :, 0]),
    "AdaptiveMaxPool2d": (lambda: nn.AdaptiveMaxPool2d(3), image),
    "SpatialPyramidPool2d": (lambda: nn.SpatialPyramidPool2d((1, 2)), image),
    "ConvTranspose1d": (lambda: nn.ConvTranspose1d(3, 4, 3, stride=2), lambda: image()[:, :, 0]),
    "ConvTranspose2d": (lambda: nn.ConvTranspose2d(3, 4, 3, stride=2, padding=1, output_padding=1), image),
    "MaxPool1d": (lambda: nn.MaxPool1d(3, 2, 1), lambda: image()[:, :, 0]),
    "AvgPool1d": (lambda: nn.AvgPool1d(2), lambda: image()[:, :, 0]),
    "AdaptiveAvgPool1d": (lambda: nn.AdaptiveAvgPool1d(4), lambda: image()[:, :, 0]),
    "AdaptiveMaxPool1d": (lambda: nn.AdaptiveMaxPool1d(4), lambda: image()[:, :, 0]),
    "MaxUnpool1d": (lambda: nn.MaxUnpool1d(2), lambda: image()[:, :, 0]),
    "MaxUnpool2d": (lambda: nn.MaxUnpool2d(2), image),
    "Upsample": (lambda: nn.Upsample(scale_factor=2, mode="bilinear"), image),
    "UpsamplingNearest2d": (lambda: nn.UpsamplingNearest2d(size=(7, 9)), image),
    "UpsamplingBilinear2d": (lambda: nn.UpsamplingBilinear2d(scale_factor=1.5), image),
}


def test_every_layer_class_is_covered():
    classes = {name for name in nn.__all__ if inspect.isclass(getattr(nn, name))} - {"Module"}
    assert classes == set(CASES)


def build(name):
    make, data = CASES[name]
    layer = make()
    if layer.dtype is not None:
        layer.to(np.float64)
    return layer, data()


def forward(layer, x):
    if isinstance(layer, (nn.CrossEntropyLoss, nn.NLLLoss)):
        return layer(x, np.arange(len(x)) % x.shape[1])
    if is_loss(layer):                                  # the other losses: a target of the input's shape
        return layer(x, np.full_like(x, 0.5))
    if isinstance(layer, (nn.MaxUnpool1d, nn.MaxUnpool2d)):    # each value to a distinct cell of the output plane
        return layer(x, np.broadcast_to(np.arange(x.shape[-1]), x.shape))
    if isinstance(layer, nn.BatchNormAddReLU):         # a residual block's end: the body's output, the shortcut's
        return layer(x, x[::-1].copy())
    return layer(x)


def is_loss(layer):
    return type(layer).__name__.endswith("Loss")


def backward(layer, y):
    return layer.backward() if is_loss(layer) else layer.backward(np.ones_like(y))


def caches(layer):
    return [module._saved for module in layer.modules()]


@pytest.mark.parametrize("name", CASES)
def test_no_grad_forward_keeps_no_cache_and_backward_says_so(name):
    layer, x = build(name)
    backward(layer, forward(layer, x))              # a cache from an earlier pass must be dropped too
    forward(layer, x)
    with nn.no_grad():
        y = forward(layer, x)
    assert caches(layer) == [None] * len(caches(layer))
    with pytest.raises(RuntimeError, match=NOT_KEPT):
        backward(layer, y)


@pytest.mark.parametrize("name", CASES)
def test_backward_before_forward_raises_the_same_error_naming_the_layer(name):
    twin, x = build(name)
    y = forward(twin, x)                        # an output gradient of the right shape
    layer, _ = build(name)
    with pytest.raises(RuntimeError, match=NOT_KEPT) as error:
        backward(layer, y)
    # the layer itself, or in a container the layer whose backward ran first
    assert any(str(error.value) == f"{module!r}: {NOT_KEPT.replace(chr(92), '')}" for module in layer.modules())


@pytest.mark.parametrize("name", CASES)
def test_backward_releases_the_cache_and_retain_cache_keeps_it(name):
    layer, x = build(name)
    y = forward(layer, x)
    assert any(cache is not None for cache in caches(layer))
    first = backward(layer, y)
    assert caches(layer) == [None] * len(caches(layer))
    with pytest.raises(RuntimeError, match=NOT_KEPT):
        backward(layer, y)

    assert layer.retain_cache() is layer
    y = forward(layer, x)
    once = backward(layer, y)
    grads = [g.copy() for _, _, g in layer.parameters()]
    twice = backward(layer, y)
    if once is None:
        assert first is twice is None           # Embedding: token ids get no gradient
    else:
        np.testing.assert_array_equal(once, twice)
    for before, (_, _, after) in zip(grads, layer.parameters()):
        np.testing.assert_array_equal(before, after)
    layer.retain_cache(False)
    backward(layer, y)
    assert caches(layer) == [None] * len(caches(layer))
