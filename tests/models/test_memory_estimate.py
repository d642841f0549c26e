"""The memory estimate that guards model building: its table is the models' true size, it bounds from above, and
its kernel workspace is what the kernels hold."""
import math
import threading

import numpy as np
import pytest

from juanji import models
from juanji.model_memory import check_model_memory
from juanji import nn
from juanji.models.summary import AT_DEFAULTS, estimate_memory, measure, summarize
from juanji.runtime import kernels
from juanji.runtime.workspace import scratch

BIG = {"alexnet", "zfnet", "spp_net", "densenet121", "googlenet", "mobilenet_v1", "resnet18", "resnet34", "resnet50",
       "densenet_bc_100", "resnet56"} | {name for name in AT_DEFAULTS if name.startswith("vgg") and name != "vgg_small"}


@pytest.mark.parametrize("name", [pytest.param(n, marks=pytest.mark.slow) if n in BIG else n
                                  for n in sorted(AT_DEFAULTS)])
def test_the_table_holds_each_models_size_at_its_defaults(name):
    builder = models._REGISTRY[models._lookup(name)]
    assert AT_DEFAULTS[name] == measure(builder, ())


def test_every_registered_model_has_an_entry():
    assert {models._REGISTRY[n].__name__ for n in models.names()} == set(AT_DEFAULTS)


@pytest.mark.parametrize("name, kwargs", [
    ("lenet5", {"input_size": 64}), ("lenet5", {"input_size": 100, "num_classes": 1000, "in_channels": 3}),
    ("resnet20", {"num_classes": 100, "input_size": 48}), ("text_cnn", {"vocab_size": 500, "seq_len": 40}),
    ("vgg_small", {"input_size": 64, "in_channels": 7}), ("spp_net", {"input_size": 60}),
])
def test_the_estimate_bounds_the_real_size_from_above(name, kwargs):
    builder = models._REGISTRY[name]
    real = measure(builder, tuple(sorted(kwargs.items())))
    for measured in (False, True):
        params, activations, _, _ = estimate_memory(builder, measured=measured, **kwargs)
        assert params >= real[0] and activations >= real[1]
        if len(kwargs) == 1:
            assert params <= 10 * real[0]       # a bound, not a refusal of everything


def test_at_or_below_the_defaults_the_measured_estimate_is_exact():
    builder = models._REGISTRY["resnet20"]
    kwargs = {"num_classes": 10, "input_size": 28, "in_channels": 1}
    assert estimate_memory(builder, measured=True, **kwargs)[:3] == measure(builder, tuple(sorted(kwargs.items())))


def test_refusal_names_the_sizes_and_the_limit():
    with pytest.raises(MemoryError, match=r"^juanji x: lenet5 \(input_size=60000\) would need about .* GiB to train "
                                          r"on batches of 1 .* the limit is"):
        check_model_memory("lenet5", source="juanji x", input_size=60_000)
    with pytest.raises(ValueError, match="num_classes must be an integer in 1..1,000,000, got True"):
        check_model_memory("lenet5", num_classes=True)


@pytest.mark.parametrize("name, kwargs", [
    ("resnet20", {"num_classes": 10, "input_size": 12, "in_channels": 1}),       # im2col, full convolution, 1×1
    ("mobilenet_v2", {"num_classes": 10, "input_size": 16, "width_mult": 0.25}),  # depthwise: no columns
    ("unet", {"input_size": 16}),
])
def test_the_workspace_counted_is_what_a_train_step_holds(name, kwargs, monkeypatch):
    """A forward and backward on NumPy's kernels, in a thread of its own (fresh scratch memory): the layers'
    workspaces hold exactly the values ``summarize`` counts as kept (depthwise layers none), and the thread's
    scratch memory at most its largest array per key."""
    monkeypatch.setattr(kernels, "_chosen", "numpy")
    model = models.create(name, **kwargs)
    rows = summarize(model)
    kept, most = sum(row.kept for row in rows), {}
    for row in rows:
        for key, values in row.scratch.items():
            most[key] = max(most.get(key, 0), values)
    batch, held = 3, {}

    def train_step():
        y = model(np.random.default_rng(0).standard_normal((batch, *model.input_shape)).astype(np.float32))
        model.backward(np.ones_like(y))
        held["scratch"] = scratch().nbytes()

    model.train()
    thread = threading.Thread(target=train_step)
    thread.start()
    thread.join()
    convolutions = [m for m in model.modules() if isinstance(m, nn.Conv2d)]
    assert sum(m._workspace.nbytes() for m in convolutions) == 4 * batch * kept
    assert 0 < held["scratch"] <= 4 * batch * sum(most.values())
    if name == "mobilenet_v2":
        assert all(m._workspace.nbytes() == 0 for m in convolutions if m.groups == m.in_channels > 1)


@pytest.mark.parametrize("layer", [
    lambda: nn.ConvTranspose2d(6, 4, 2, stride=2),                                  # U-Net's up: col2im
    lambda: nn.ConvTranspose2d(6, 4, 3, stride=2, padding=1, output_padding=1),     # col2im into a padded y
    lambda: nn.ConvTranspose2d(4, 6, 3, padding=1),                                 # the full convolution
    lambda: nn.ConvTranspose2d(6, 4, 3, output_padding=1, dilation=2),              # x extended by zeros
    lambda: nn.ConvTranspose1d(4, 6, 3, stride=2),
    lambda: nn.ConvTranspose2d(4, 4, 3, stride=2, padding=1, output_padding=1, groups=4),     # depthwise: col2im
    lambda: nn.ConvTranspose2d(8, 4, 2, stride=2, groups=4),                                # 2 channels per filter
], ids=["2x2 stride 2", "padded stride 2", "stride 1", "extended", "1-d", "depthwise", "depthwise 2 to 1"])
def test_a_transposed_convolutions_workspace_is_what_a_train_step_holds(layer, monkeypatch):
    """A forward and backward on NumPy's kernels, in a thread of its own: the thread's scratch memory holds what
    ``summarize`` counts (the convolution's columns among it, made by the backward; a depthwise one's, whose shifts
    hold none, made by the forward's col2im), and the cache the extended x counted as kept."""
    monkeypatch.setattr(kernels, "_chosen", "numpy")
    layer = layer()
    shape = (layer.in_channels, 5) if layer.dims == 1 else (layer.in_channels, 5, 5)
    (row,) = summarize(layer, shape)
    batch, held = 3, {}

    def train_step():
        x = np.random.default_rng(0).standard_normal((batch, *shape)).astype(np.float32)
        y = layer(x)
        layer.backward(np.ones_like(y))
        held["x"] = layer.saved_for_backward()[0][0]         # the cache's x (retained)
        held["scratch"] = scratch().nbytes()

    layer.train().retain_cache()
    thread = threading.Thread(target=train_step)
    thread.start()
    thread.join()
    assert held["scratch"] == 4 * batch * sum(row.scratch.values()) > 0
    assert held["x"].size == batch * (row.kept or math.prod(shape))
