"""Every model of the zoo trains: one SGD step on 28×28×1 and 32×32×3 batches of 2 gives finite,
non-zero gradients for every parameter, and (on the 28×28×1 batch) two more steps lower the loss."""
import inspect
from itertools import pairwise

import numpy as np
import pytest

from juanji import models, nn, optim
from juanji import random as jrandom

INPUTS = [(1, 28), (3, 32)]
# The image models: every builder taking (num_classes, in_channels, input_size).
IMAGE_MODELS = [name for name in models.names()
                if {"num_classes", "in_channels", "input_size"} <= set(inspect.signature(
                    models._REGISTRY[name]).parameters)]


def biases_feeding_batch_norm(model):
    """Names of conv biases followed directly by a training-mode BatchNorm: their gradient is 0 in exact
    arithmetic (BN subtracts the batch mean), so only rounding noise is left of it."""
    names = []
    for prefix, module in model.named_modules():
        children = list(module.named_children())
        for (name, layer), (_, after) in pairwise(children):
            if "bias" in layer.params and isinstance(after, nn.BatchNorm2d):
                names.append(f"{prefix}.{name}.bias" if prefix else f"{name}.bias")
    return names


def loss_and_backward(model, loss_fn, x, labels):
    jrandom.seed(7)                   # the same dropout masks every step: one fixed function to descend
    loss = loss_fn(model(x), labels)
    model.backward(loss_fn.backward())
    return float(loss)


@pytest.mark.parametrize("in_channels, size", INPUTS)
@pytest.mark.parametrize("name", IMAGE_MODELS)
def test_model_trains_on_small_images(name, in_channels, size):
    jrandom.seed(0)
    model = models.create(name, num_classes=10, in_channels=in_channels, input_size=size)
    assert model.input_shape == (in_channels, size, size)
    rng = np.random.default_rng(1)
    x = rng.standard_normal((2, in_channels, size, size)).astype(np.float32)
    labels = np.array([3, 7])
    if models.is_segmentation(name):                # a class per pixel: a left and a right half
        labels = np.repeat(np.repeat(labels[:, None, None], size, axis=1), size, axis=2)
        labels[:, :, : size // 2] = 0
    loss_fn = nn.CrossEntropyLoss()
    optimizer = optim.SGD(model.parameters(), lr=0.002)

    first = loss_and_backward(model, loss_fn, x, labels)
    assert np.isfinite(first)
    exempt = set(biases_feeding_batch_norm(model))
    for pname, param, grad in model.parameters():
        assert grad.shape == param.shape and grad.dtype == param.dtype, pname
        assert np.all(np.isfinite(grad)), f"{name}: non-finite gradient for {pname}"
        assert pname in exempt or np.any(grad != 0), f"{name}: zero gradient for {pname}"
    optimizer.step()
    if in_channels == 3:              # the loss check runs on the cheaper 28×28×1 batch
        return
    losses = [first, loss_and_backward(model, loss_fn, x, labels)]
    optimizer.step()
    losses.append(loss_and_backward(model, loss_fn, x, labels))
    assert losses[-1] < losses[0], f"{name}: losses {losses}"


def test_create_accepts_hyphens_and_underscores():
    assert models.create("vgg11-bn", num_classes=3, in_channels=1, input_size=28).name == "vgg11_bn"
    assert models.create("lenet5_classic").name == "lenet5-classic"
    with pytest.raises(ValueError, match="did you mean 'resnet18'"):
        models.create("resnet81")


def test_the_zoo_is_complete():
    expected = {"lenet5", "alexnet", "zfnet", "googlenet", "resnet18", "resnet34", "resnet50", "resnet20",
                "resnet56", "densenet121", "densenet_bc_100", "mobilenet_v1", "spp_net", "vgg_small",
                "densenet_bc_40", "mobilenet_v2", "mobilenet_v3_small", "efficientnet_b0",
                "convnext_tiny"}
    expected |= {f"vgg{d}{bn}" for d in (11, 13, 16, 19) for bn in ("", "_bn")}
    assert expected <= set(IMAGE_MODELS)


def test_every_model_has_a_one_line_description():
    for name in models.names():
        assert models.describe(name) and "\n" not in models.describe(name)
