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


# Every layer class of juanji.nn with an input it accepts (the last entry: a loss, called with labels).
CASES = {
    "Sequential": (lambda: nn.Sequential(nn.Conv2d(3, 4, 3), nn.ReLU()), image),
    "Residual": (lambda: nn.Residual(nn.Conv2d(3, 3, 3, padding=1)), image),
    "Concat": (lambda: nn.Concat(nn.Conv2d(3, 2, 1), nn.Identity()), image),
    "Conv1d": (lambda: nn.Conv1d(3, 4, 3, padding=1), lambda: image()[:, :, 0]),
    "Conv2d": (lambda: nn.Conv2d(3, 4, 3, padding=1), image),
    "Linear": (lambda: nn.Linear(5, 4), lambda: image()[:, 0, 0, :5]),
    "Flatten": (nn.Flatten, image),
    "Identity": (nn.Identity, image),
    "ReLU": (nn.ReLU, image),
    "LeakyReLU": (nn.LeakyReLU, image),
    "Sigmoid": (nn.Sigmoid, image),
    "Tanh": (nn.Tanh, image),
    "Softmax": (lambda: nn.Softmax(1), image),
    "Dropout": (lambda: nn.Dropout(0.5, rng=np.random.default_rng(1)), image),
    "BatchNorm1d": (lambda: nn.BatchNorm1d(3), lambda: image()[:, :, 0]),
    "BatchNorm2d": (lambda: nn.BatchNorm2d(3), image),
    "BatchNormReLU": (lambda: nn.BatchNormReLU(nn.BatchNorm2d(3)), image),
    "BatchNormAddReLU": (lambda: nn.BatchNormAddReLU(nn.BatchNorm2d(3)), image),
    "MaxPool2d": (lambda: nn.MaxPool2d(2), image),
    "AvgPool2d": (lambda: nn.AvgPool2d(3, 2, padding=1), image),
    "AdaptiveAvgPool2d": (lambda: nn.AdaptiveAvgPool2d(4), image),
    "GlobalAvgPool2d": (nn.GlobalAvgPool2d, image),
    "CrossEntropyLoss": (nn.CrossEntropyLoss, lambda: image()[:, 0, 0, :4]),
    "Embedding": (lambda: nn.Embedding(7, 3), lambda: np.arange(10).reshape(2, 5) % 7),
    "Permute": (lambda: nn.Permute(0, 2, 1), lambda: image()[:, :, 0]),
    "GlobalMaxPool1d": (nn.GlobalMaxPool1d, lambda: image()[:, :, 0]),
    "AdaptiveMaxPool2d": (lambda: nn.AdaptiveMaxPool2d(3), image),
    "SpatialPyramidPool2d": (lambda: nn.SpatialPyramidPool2d((1, 2)), image),
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
    if isinstance(layer, nn.CrossEntropyLoss):
        return layer(x, np.arange(len(x)) % x.shape[1])
    if isinstance(layer, nn.BatchNormAddReLU):         # a residual block's end: the body's output, the shortcut's
        return layer(x, x[::-1].copy())
    return layer(x)


def backward(layer, y):
    return layer.backward() if isinstance(layer, nn.CrossEntropyLoss) else layer.backward(np.ones_like(y))


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
