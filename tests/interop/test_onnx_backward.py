"""The backward pass as ONNX operators (``juanji.interop.onnx_backward``), run by onnxruntime and compared with
juanji's own backward: every supported layer on its own (any dY), whole models (saliency and every layer's
gradient, Grad-CAM's), max-pool ties, the deconvnet, and what is refused."""
import json
import subprocess
import sys

import numpy as np
import pytest

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")

from juanji import checkpoint as ckpt  # noqa: E402
from juanji import models, nn  # noqa: E402
from juanji import random as jrandom  # noqa: E402
from juanji.interop.onnx import ONNXExportError  # noqa: E402
from juanji.interop.onnx_backward import BACKWARDS, deconvnet_onnx, saliency_onnx  # noqa: E402
from juanji.models.resnet import PadShortcut, ResidualBlock  # noqa: E402
from juanji.viz.chain import layer_chain, run_chain  # noqa: E402
from juanji.viz.deconvnet import deconvnet  # noqa: E402
from juanji.viz.saliency import class_score_gradient  # noqa: E402


def session(proto):
    return ort.InferenceSession(proto.SerializeToString(), providers=["CPUExecutionProvider"])


def assert_close(got, expected, what=""):
    """float32 agreement: within 1e-5 of each value, or 1e-6 of the largest (sums taken in another order)."""
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-6 * float(np.abs(expected).max()), err_msg=what)


def ties(shape, seed):
    """Values from {0, ½, 1, 1½}: most pooling windows hold a tied maximum, and ReLUs see exact zeros."""
    return (np.random.default_rng(seed).integers(0, 4, shape) / 2).astype(np.float32)


# -- each layer's backward on its own: dX for a random dY ------------------------------------------------------
LAYERS = [
    (nn.Conv2d(4, 6, 3, stride=2, padding=1, dilation=2, groups=2), (4, 10, 9)),   # output_padding (1, 0)
    (nn.Conv2d(3, 5, (4, 2), stride=(3, 1), padding=(2, 1)), (3, 11, 8)),
    (nn.Conv2d(2, 3, 4, padding="same"), (2, 7, 7)),                    # asymmetric padding
    (nn.Conv1d(3, 4, 5, stride=2, padding=2), (3, 12)),
    (nn.Linear(6, 4), (3, 6)),                                          # any leading axes
    (nn.MaxPool2d(3, 2, 1), (3, 9, 9)),                                 # overlapping windows, ties, padding
    (nn.MaxPool2d(2, ceil_mode=True), (2, 7, 5)),
    (nn.MaxPool2d(3, 1, dilation=2), (2, 8, 8)),
    (nn.MaxPool1d(3, 2), (3, 11)),
    (nn.AvgPool2d(3, 2, 1), (2, 8, 7)),
    (nn.AvgPool2d(3, 2, 1, ceil_mode=True, count_include_pad=False), (2, 8, 7)),
    (nn.AvgPool2d(2, divisor_override=3), (2, 6, 6)),
    (nn.AvgPool1d(4, 3, 2, ceil_mode=True), (3, 13)),
    (nn.AdaptiveAvgPool2d((3, 5)), (2, 7, 11)),                         # overlapping bins
    (nn.AdaptiveAvgPool2d(1), (4, 8, 8)),
    (nn.AdaptiveAvgPool1d(4), (3, 10)),
    (nn.GlobalAvgPool2d(), (4, 5, 3)),
    (nn.Flatten(), (2, 3, 4)),
    (nn.Flatten(start_dim=2), (2, 3, 4)),
    (nn.ReLU(), (3, 4, 4)), (nn.LeakyReLU(0.2), (3, 4, 4)), (nn.Tanh(), (3, 4, 4)), (nn.Sigmoid(), (3, 4, 4)),
    (nn.Dropout(0.5), (3, 4)), (nn.Identity(), (3, 4)),
    (PadShortcut(2, 3), (2, 7, 6)),
    (nn.Residual(nn.Sequential(nn.Conv2d(2, 2, 3, padding=1), nn.ReLU())), (2, 5, 5)),
]


def with_statistics(layer):
    for key in ("running_mean", "running_var"):
        layer.buffers[key][...] = np.random.default_rng(len(key)).uniform(0.5, 2, layer.num_features)
    layer.params["weight"][...] = np.random.default_rng(3).standard_normal(layer.num_features)
    return layer


LAYERS += [(with_statistics(nn.BatchNorm2d(3)), (3, 4, 4)), (with_statistics(nn.BatchNorm1d(5)), (5,))]


@pytest.mark.parametrize("layer, shape", LAYERS, ids=[f"{type(layer).__name__}-{i}" for i, (layer, _)
                                                      in enumerate(LAYERS)])
def test_each_layers_backward_is_juanjis(layer, shape):
    jrandom.seed(1)
    model = nn.Sequential(layer).eval()
    x = ties((2, *shape), 2) - 0.5
    proto = saliency_onnx(model, input_shape=shape)
    y = model(x)
    dy = np.random.default_rng(3).standard_normal(y.shape).astype(np.float32)
    expected = model.backward(dy)
    got, = session(proto).run(["input_gradient"], {"input": x, "seed": dy})
    assert got.shape == x.shape
    assert_close(got, expected, type(layer).__name__)


def test_every_layer_type_with_a_backward_is_tested_on_its_own():
    tested = {type(layer) for layer, _ in LAYERS} | {nn.Sequential, ResidualBlock}     # ResNet-20's, below
    assert set(BACKWARDS) - tested == set()


# -- whole models: saliency and the gradient at every layer (Grad-CAM's) ----------------------------------------
def chain_gradients(model, x, classes):
    """∂S_c/∂(every chain layer's output) and ∂S_c/∂x by juanji's layer backward, as viz.pictures.inside."""
    chain = layer_chain(model)
    outputs = run_chain(chain, x)
    d = np.zeros_like(outputs[-1])
    d[np.arange(len(x)), classes] = 1
    gradients = {}
    for name, layer in reversed(chain):
        gradients[name] = d
        d = layer.backward(d)
    return d, gradients


@pytest.mark.parametrize("name, options, normalization", [
    ("lenet5", {}, ([0.286], [0.353])),
    ("lenet5-classic", {}, None),                                       # tanh, average pooling
    ("resnet20", {}, ([0.49, 0.48, 0.45], [0.25, 0.24, 0.26])),         # batch norm, residual blocks, option A
    ("mobilenet_v1", dict(in_channels=1, input_size=28, width_mult=0.25), None),     # depthwise convolutions
])
def test_saliency_and_every_layers_gradient_are_juanjis_backward(name, options, normalization):
    jrandom.seed(4)
    model = models.create(name, num_classes=10, **options).eval()
    chain = layer_chain(model)
    names = [n for n, _ in chain]
    proto = saliency_onnx(model, normalization=normalization, gradients=names)
    pixels = np.random.default_rng(5).random((3, *model.input_shape), dtype=np.float32)
    classes = np.array([1, 7, 7])
    outputs = session(proto).run(None, {"input": pixels, "seed": np.eye(10, dtype=np.float32)[classes]})
    x = pixels
    if normalization:
        mean, std = (np.array(v, dtype=np.float32).reshape(-1, 1, 1) for v in normalization)
        x = (pixels - mean) / std
    expected, gradients = chain_gradients(model, x, classes)
    assert_close(outputs[0], expected, "input")
    _, same = class_score_gradient(model, x, classes)                  # what viz.saliency computes
    assert_close(outputs[0], same, "saliency")
    for layer, got in zip(names, outputs[1:]):
        assert_close(got, gradients[layer], layer)


@pytest.mark.parametrize("pixels", ["blank", "plateaus"])
def test_max_pool_ties_send_the_gradient_to_the_first_maximum(pixels):
    """LeNet-5 with weights in 32nds on pixels in halves: the sums up to the poolings are exact in float32, so
    ties stay ties in juanji, PyTorch and onnxruntime alike.  A blank image makes every map constant (a 4-way tie
    in each max-pool window), four grey levels tie many windows: the gradient goes to the first maximum in
    row-major order in all three (onnxruntime: MaxPool's indices), the same numbers to the last bit."""
    import torch
    jrandom.seed(6)
    model = models.create("lenet5").eval()
    for _, param, _ in model.parameters():
        param[...] = np.round(param * 32) / 32
    x = np.zeros((2, 1, 28, 28), np.float32) if pixels == "blank" else ties((2, 1, 28, 28), 7)
    classes = np.array([0, 9])
    got, = session(saliency_onnx(model)).run(["input_gradient"], {"input": x, "seed": np.eye(10, dtype=np.float32)[
        classes]})
    _, expected = class_score_gradient(model, x, classes)
    np.testing.assert_array_equal(got, expected)
    assert np.count_nonzero(expected) > 100
    layers = [torch.nn.Conv2d(1, 6, 5, padding=2), torch.nn.ReLU(), torch.nn.MaxPool2d(2), torch.nn.Conv2d(6, 16, 5),
              torch.nn.ReLU(), torch.nn.MaxPool2d(2), torch.nn.Flatten(), torch.nn.Linear(400, 120), torch.nn.ReLU(),
              torch.nn.Linear(120, 84), torch.nn.ReLU(), torch.nn.Linear(84, 10)]
    twin = torch.nn.Sequential(*layers)
    twin.load_state_dict({key: torch.tensor(value) for key, value in model.state_dict().items()})
    t = torch.tensor(x, requires_grad=True)
    twin(t)[np.arange(2), classes].sum().backward()
    np.testing.assert_array_equal(got, t.grad.numpy())


# -- the deconvnet --------------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", ["lenet5", "resnet20"])
def test_the_deconvnet_graph_projects_as_viz_deconvnet(name):
    """A signal at each layer with maps (the others all 0) projects as juanji's deconvnet: ReLUs of the chain pass
    max(0, r), those inside a residual block their mask."""
    jrandom.seed(8)
    model = models.create(name).eval()
    chain = layer_chain(model)
    image = np.random.default_rng(9).standard_normal(model.input_shape).astype(np.float32)
    outputs = dict(zip([n for n, _ in chain], run_chain(chain, image[None])))
    layers = [n for n, y in outputs.items() if y.ndim == 4]
    proto = deconvnet_onnx(model, layers)
    graph = session(proto)
    for layer in layers:
        channel = outputs[layer].shape[1] // 2
        expected, (i, j) = deconvnet(model, image, layer, channel)
        signals = {f"{n}/signal": np.zeros_like(outputs[n]) for n in layers}
        signals[f"{layer}/signal"][0, channel, i, j] = outputs[layer][0, channel, i, j]
        got, = graph.run(["projection"], {"input": image[None], **signals})
        assert_close(got[0], expected, layer)


# -- what has no ONNX backward ----------------------------------------------------------------------------------
@pytest.mark.parametrize("model, fragment", [
    (nn.Sequential(nn.Conv2d(1, 2, 3), nn.GELU()),
     "saliency is not available for layer '1' (juanji.nn.activation.GELU)"),
    (nn.Sequential(nn.Conv2d(1, 2, 3, padding=1, padding_mode="reflect")),
     "saliency is not available for layer '0' (Conv2d with padding_mode='reflect')"),
    (nn.Sequential(nn.BatchNorm2d(1, track_running_stats=False)), "track_running_stats=False"),
])
def test_a_layer_without_an_onnx_backward_is_named(model, fragment):
    with pytest.raises(ONNXExportError, match=fragment.replace("(", r"\(").replace(")", r"\)")):
        saliency_onnx(model, input_shape=(1, 6, 6))
    with pytest.raises(ONNXExportError, match="opset 15: its max pooling backward needs ScatterElements"):
        saliency_onnx(models.create("lenet5"), opset=15)


def test_an_export_of_a_model_without_an_onnx_backward_says_so_and_keeps_the_note(tmp_path):
    """MobileNet v2's ReLU6 has no ONNX backward: ``juanji export --web`` writes the page without saliency.onnx and
    deconvnet.onnx, and says why (static.json too, whose reason the page shows where the pictures would be)."""
    jrandom.seed(10)
    model = models.create("mobilenet_v2", num_classes=10, in_channels=1, input_size=28, width_mult=0.25)
    ckpt.save(tmp_path / "mobilenet.npz", model, data={"classes": [str(i) for i in range(10)]})
    result = subprocess.run([sys.executable, "-m", "juanji.cli", "export", tmp_path / "mobilenet.npz", "--web",
                             tmp_path / "page", "--data", tmp_path / "no-data"], capture_output=True, text=True,
                            timeout=300)
    assert result.returncode == 0, result.stderr
    why = ("saliency is not available for layer 'features.18.2' (juanji.nn.activation.ReLU6): juanji has no ONNX "
           "backward for it (juanji.interop.onnx_backward.BACKWARDS)")
    assert result.stdout.splitlines()[-1] == f"no saliency, Grad-CAM or deconvnet on the page: {why}"
    entry = json.loads((tmp_path / "page" / "static.json").read_text())["runs"][0]
    assert entry["backward"] is None and entry["unavailable"]["saliency"] == why
    assert sorted(p.name for p in (tmp_path / "page" / "run").glob("*.onnx")) == ["model.onnx"]


# -- the type lookup the backward shares with the forward converters (``onnx.function_for``) ---------------------
class PlainReLU(nn.ReLU):
    """Keeps ReLU's forward: ReLU's converter and ReLU's backward."""


class RewrittenReLU(nn.ReLU):
    """Has a forward of its own: ReLU's backward is not assumed for it (its converter is given in the test)."""

    def forward(self, x):
        return super().forward(x)


def test_a_subclass_keeping_forward_has_its_base_backward_and_one_overriding_it_is_named():
    from juanji.interop.onnx import CONVERTERS
    jrandom.seed(11)
    model = nn.Sequential(nn.Conv2d(1, 2, 3), PlainReLU()).eval()
    proto = saliency_onnx(model, input_shape=(1, 6, 6))
    x = ties((2, 1, 6, 6), 12) - 0.5
    dy = np.random.default_rng(13).standard_normal(model(x).shape).astype(np.float32)
    got, = session(proto).run(["input_gradient"], {"input": x, "seed": dy})
    assert_close(got, model.backward(dy))
    CONVERTERS[RewrittenReLU] = CONVERTERS[nn.ReLU]
    try:
        with pytest.raises(ONNXExportError, match=r"saliency is not available for layer '1' \(test_onnx_backward\."
                                                  r"RewrittenReLU\): juanji has no ONNX backward"):
            saliency_onnx(nn.Sequential(nn.Conv2d(1, 2, 3), RewrittenReLU()), input_shape=(1, 6, 6))
    finally:
        del CONVERTERS[RewrittenReLU]
