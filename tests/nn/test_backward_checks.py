"""Two checks every layer gets from Module rather than from its own code: an output gradient ``dy`` of the
wrong shape is refused with one message naming the layer, and an empty batch (N = 0) flows through forward
and backward as in PyTorch (empty outputs, zero parameter gradients, running statistics untouched)."""
import re
import warnings

import numpy as np
import pytest

from juanji import models, nn
from test_cache import CASES, backward, build, forward


def wrong_shape(y):
    """A gradient of a different shape: one more column (a scalar loss gets a vector)."""
    shape = np.shape(y)
    return np.ones(shape[:-1] + (shape[-1] + 1,)) if shape else np.ones(2)


def dy_message(layer, expected, got):
    return re.escape(f"{layer._name()}: backward expected dy of shape {tuple(expected)} (the shape of its "
                     f"forward's output), got {tuple(got)}")


@pytest.mark.parametrize("name", CASES)
def test_a_wrong_dy_shape_names_the_layer_and_both_shapes_and_keeps_the_cache(name):
    layer, x = build(name)
    y = forward(layer, x)
    bad = wrong_shape(y)
    with pytest.raises(ValueError, match="^" + dy_message(layer, np.shape(y), bad.shape) + "$"):
        layer.backward(bad)
    # refused before anything ran: the cache is intact and a right dy gives what a fresh pass gives
    got = backward(layer, y)
    fresh, _ = build(name)
    fresh.load_state_dict(layer.state_dict())
    expected = backward(fresh, forward(fresh, x))
    if expected is None:
        assert got is None                          # Embedding: token ids get no gradient
    else:
        np.testing.assert_array_equal(got, expected)
    for (_, _, a), (_, _, b) in zip(layer.parameters(), fresh.parameters()):
        np.testing.assert_array_equal(a, b)


def test_a_scalar_dy_still_scales_the_loss():
    loss = nn.CrossEntropyLoss()
    logits = np.random.default_rng(0).standard_normal((3, 4))
    loss(logits, np.array([0, 1, 2]))
    unit = loss.retain_cache().backward()
    np.testing.assert_allclose(loss.backward(2.0), 2 * unit)


def test_a_subclass_passing_part_of_dy_to_super_backward_is_checked_once_against_its_own_output():
    """DenseLayer.backward hands dY[:, C:] to Sequential.backward: only the outer call checks."""
    layer = models.densenet.DenseLayer(4, growth_rate=2).to(np.float64)
    y = layer(np.random.default_rng(0).standard_normal((2, 4, 5, 5)))
    assert layer.backward(np.ones_like(y)).shape == (2, 4, 5, 5)
    layer(np.random.default_rng(0).standard_normal((2, 4, 5, 5)))
    with pytest.raises(ValueError, match=dy_message(layer, (2, 6, 5, 5), (2, 5, 5, 5))):
        layer.backward(np.ones((2, 5, 5, 5)))


def test_the_recorded_shape_follows_the_last_forward_and_no_grad_records_none():
    layer = nn.Linear(3, 2).to(np.float64)
    layer(np.ones((4, 3)))
    layer(np.ones((5, 3)))
    with pytest.raises(ValueError, match=dy_message(layer, (5, 2), (4, 2))):
        layer.backward(np.ones((4, 2)))
    with nn.no_grad():
        layer(np.ones((5, 3)))
    with pytest.raises(RuntimeError, match="backward called before forward"):
        layer.backward(np.ones((4, 2)))


@pytest.mark.parametrize("name", CASES)
@pytest.mark.parametrize("training", [True, False])
def test_an_empty_batch_gives_empty_outputs_and_gradients(name, training):
    layer, x = build(name)
    y_full = forward(layer.train(training), x)
    layer, _ = build(name)
    layer.train(training)
    buffers = {k: v.copy() for k, v in layer.state_dict().items()}
    with warnings.catch_warnings():
        warnings.simplefilter("error")              # no NumPy warning leaks either
        y = forward(layer, x[:0])
        dx = backward(layer, y)
    if name == "BatchNormAddReLU":                  # (dX, dShortcut)
        dx, dshortcut = dx
        assert dshortcut.shape == x[:0].shape
    if name.endswith("Loss"):
        assert np.isnan(y)                          # PyTorch's mean over no samples
        assert dx.shape == (0,) + x.shape[1:]
    else:
        assert y.shape == (0,) + np.shape(y_full)[1:] and y.dtype == y_full.dtype
        assert dx is None if name == "Embedding" else dx.shape == x[:0].shape
    for _, _, grad in layer.parameters():
        assert not grad.any()
    for key, value in layer.state_dict().items():   # BatchNorm's running statistics untouched
        counted = key == "num_batches_tracked" and training and "BatchNorm" in name     # as torch counts
        np.testing.assert_array_equal(value, buffers[key] + counted)


@pytest.mark.parametrize("name", ["lenet5", "resnet20", "spp_net", "text_cnn"])
def test_a_model_takes_an_empty_batch(name):
    model = models.create(name, num_classes=10)
    x = np.zeros((0,) + tuple(model.input_shape), np.int64 if name == "text_cnn" else np.float32)
    y = model(x)
    assert y.shape == (0, 10)
    dx = model.backward(np.ones_like(y))
    assert dx is None if name == "text_cnn" else dx.shape == x.shape
