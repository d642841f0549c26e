"""ONNX export: every zoo model and every converter option runs in onnxruntime and gives juanji's output
(float32, max |difference| ≤ 1e-6, the README's claim, for the zoo's logits and the layer options); the
graph passes onnx.checker; unsupported layers are named in the error."""
import subprocess
import sys

import numpy as np
import pytest

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")

from juanji import checkpoint as ckpt  # noqa: E402
from juanji import models, nn  # noqa: E402
from juanji import random as jrandom  # noqa: E402
from juanji.cli import main  # noqa: E402
from juanji.interop.onnx import CONVERTERS, MIN_OPSET, ONNXExportError, export, to_onnx  # noqa: E402
from juanji.nn.embedding import Embedding  # noqa: E402
from juanji.nn.permute import Permute  # noqa: E402
from juanji.nn.pooling1d import GlobalMaxPool1d  # noqa: E402
from juanji.nn.spp import AdaptiveMaxPool2d, SpatialPyramidPool2d  # noqa: E402

TOLERANCE = 1e-6        # absolute: the outputs here are of order one (at most 4), where float32 steps by 1.2e-7 at 1
# Models whose construction and forward pass take several seconds on a small CPU.
SLOW = {"alexnet", "zfnet", "spp_net", "densenet121", "resnet34", "resnet50", "vgg16", "vgg16_bn", "vgg19",
        "vgg19_bn"}


def run_onnx(proto, x):
    session = ort.InferenceSession(proto.SerializeToString(), providers=["CPUExecutionProvider"])
    return session.run(None, {session.get_inputs()[0].name: x})[0]


def randomise_buffers(model, rng):
    """Running statistics away from (0, 1), so that exporting BatchNorm wrongly would show."""
    for module in model.modules():
        for key, buffer in module.buffers.items():
            buffer[...] = rng.uniform(0.5, 1.5, buffer.shape) if "var" in key else rng.normal(0, 0.2, buffer.shape)


def sample_input(shape, dtype, rng, batch=2, vocab=None):
    if np.dtype(dtype).kind == "i":
        return rng.integers(0, vocab, (batch, *shape)).astype(np.int64)
    return rng.standard_normal((batch, *shape)).astype(np.float32)


def assert_matches(model, x, opset=17, **kwargs):
    model.eval()
    proto = to_onnx(model, input_shape=x.shape[1:], input_dtype=x.dtype, opset=opset, **kwargs)
    got = run_onnx(proto, x)
    expected = model(x)
    assert got.shape == expected.shape
    np.testing.assert_allclose(got, expected, atol=TOLERANCE, rtol=0)
    return proto


def _zoo_case(name):
    return pytest.param(name, marks=pytest.mark.slow) if name in SLOW else name


@pytest.mark.parametrize("name", [_zoo_case(name) for name in models.names()])
def test_every_zoo_model_runs_in_onnxruntime_as_in_juanji(name):
    jrandom.seed(0)
    rng = np.random.default_rng(0)
    if name == "text_cnn":
        model = models.create(name, vocab_size=50, seq_len=16)
        x = sample_input(model.input_shape, np.int64, rng, vocab=50)
    else:
        channels, size = (1, 28) if name.startswith("lenet") else (3, 32)
        model = models.create(name, num_classes=10, in_channels=channels, input_size=size)
        x = sample_input(model.input_shape, np.float32, rng)
    randomise_buffers(model, rng)
    proto = assert_matches(model, x)
    assert not any(node.op_type == "Dropout" for node in proto.graph.node)
    assert proto.graph.input[0].type.tensor_type.shape.dim[0].dim_param == "N"


CONV_CASES = [
    (lambda: nn.Conv2d(3, 4, 3), (3, 9, 9)),
    (lambda: nn.Conv2d(3, 4, 3, padding=1, bias=False), (3, 9, 9)),
    (lambda: nn.Conv2d(3, 4, (3, 5), stride=(2, 1), padding=(1, 2)), (3, 10, 9)),
    (lambda: nn.Conv2d(3, 4, 4, padding="same"), (3, 9, 8)),              # asymmetric: 1 before, 2 after
    (lambda: nn.Conv2d(3, 4, (2, 4), padding="same", dilation=(1, 2)), (3, 7, 9)),
    (lambda: nn.Conv2d(3, 4, 3, padding="valid", dilation=2), (3, 11, 11)),
    (lambda: nn.Conv2d(4, 6, 3, stride=2, padding=1, groups=2), (4, 9, 9)),
    (lambda: nn.Conv2d(4, 4, 3, padding=1, groups=4), (4, 8, 8)),          # depthwise
    (lambda: nn.Conv1d(3, 5, 3), (3, 12)),
    (lambda: nn.Conv1d(3, 5, 4, padding="same", dilation=2), (3, 12)),
    (lambda: nn.Conv1d(4, 6, 3, stride=2, padding=2, groups=2, bias=False), (4, 13)),
]
POOL_CASES = [
    (lambda: nn.MaxPool2d(2), (2, 8, 8)),
    (lambda: nn.MaxPool2d(3, 2, ceil_mode=True), (2, 8, 8)),              # last window overhangs
    (lambda: nn.MaxPool2d(3, 2, padding=1, ceil_mode=True), (2, 10, 7)),  # ceil window in the padding: dropped
    (lambda: nn.MaxPool2d(2, 2, padding=1, ceil_mode=True), (2, 7, 8)),  # one ceil window starts in padding
    (lambda: nn.MaxPool2d((2, 3), (1, 2), padding=(1, 1), dilation=2), (2, 9, 9)),
    (lambda: nn.AvgPool2d(2), (2, 8, 8)),
    (lambda: nn.AvgPool2d(3, 2, padding=1), (2, 9, 9)),
    (lambda: nn.AvgPool2d(3, 2, padding=1, count_include_pad=False), (2, 9, 9)),
    (lambda: nn.AvgPool2d(3, 2, ceil_mode=True), (2, 8, 8)),
    (lambda: nn.AvgPool2d(3, 2, padding=1, ceil_mode=True), (2, 8, 7)),
    (lambda: nn.AvgPool2d(3, 2, padding=1, ceil_mode=True, count_include_pad=False), (2, 8, 7)),
    (lambda: nn.AvgPool2d(2, 2, padding=1, ceil_mode=True), (2, 7, 8)),
    (lambda: nn.AdaptiveAvgPool2d(1), (2, 7, 5)),
    (lambda: nn.AdaptiveAvgPool2d(2), (2, 8, 6)),                        # bins tile: one AveragePool
    (lambda: nn.AdaptiveAvgPool2d((3, 4)), (2, 7, 5)),                   # overlapping bins
    (lambda: AdaptiveMaxPool2d(1), (2, 7, 5)),
    (lambda: AdaptiveMaxPool2d((3, 2)), (2, 7, 5)),
    (lambda: nn.GlobalAvgPool2d(), (2, 5, 6)),
    (lambda: SpatialPyramidPool2d((1, 2, 3)), (2, 7, 9)),
    (lambda: GlobalMaxPool1d(), (3, 11)),
]
OTHER_CASES = [
    (lambda: nn.Linear(6, 4), (6,)),
    (lambda: nn.Linear(6, 4, bias=False), (6,)),
    (lambda: nn.BatchNorm2d(3), (3, 4, 4)),
    (lambda: nn.BatchNorm2d(3, eps=1e-3, affine=False), (3, 4, 4)),
    (lambda: nn.BatchNorm1d(5), (5,)),
    (lambda: nn.BatchNorm1d(5), (5, 7)),
    (lambda: nn.ReLU(), (3, 4)),
    (lambda: nn.LeakyReLU(0.2), (3, 4)),
    (lambda: nn.Sigmoid(), (3, 4)),
    (lambda: nn.Tanh(), (3, 4)),
    (lambda: nn.Softmax(dim=1), (3, 4)),
    (lambda: nn.Softmax(dim=-1), (2, 3, 4)),
    (lambda: nn.Flatten(), (2, 3, 4)),
    (lambda: nn.Flatten(2), (2, 3, 4)),
    (lambda: nn.Identity(), (3,)),                                       # the graph is a single Identity
    (lambda: nn.Sequential(nn.Dropout(0.5), nn.Linear(3, 2)), (3,)),
    (lambda: Permute(0, 2, 1), (3, 5)),
    (lambda: nn.Residual(nn.Sequential(nn.Conv2d(3, 3, 3, padding=1), nn.ReLU())), (3, 6, 6)),
    (lambda: nn.Residual(nn.Conv2d(3, 5, 3, stride=2, padding=1), nn.Conv2d(3, 5, 1, stride=2)), (3, 6, 6)),
    (lambda: nn.Concat(nn.Conv2d(3, 2, 1), nn.Sequential(nn.MaxPool2d(3, 1, 1), nn.Conv2d(3, 4, 1))), (3, 5, 5)),
    (lambda: nn.Concat(nn.Linear(4, 2), nn.Identity(), dim=-1), (4,)),
]


@pytest.mark.parametrize("make, shape", CONV_CASES + POOL_CASES + OTHER_CASES)
def test_layer_options_match_onnxruntime(make, shape):
    jrandom.seed(1)
    rng = np.random.default_rng(1)
    layer = make()
    randomise_buffers(layer, rng)
    assert_matches(layer, sample_input(shape, np.float32, rng, batch=3))


def test_embedding_exports_as_gather_of_int64_ids():
    jrandom.seed(2)
    model = nn.Sequential(Embedding(20, 6), Permute(0, 2, 1), nn.Conv1d(6, 4, 3), GlobalMaxPool1d())
    x = np.random.default_rng(2).integers(0, 20, (4, 9))
    proto = assert_matches(model, x)
    assert proto.graph.input[0].type.tensor_type.elem_type == onnx.TensorProto.INT64
    assert proto.graph.node[0].op_type == "Gather"


@pytest.mark.parametrize("opset", [MIN_OPSET, 17, 21])
def test_opsets(opset):
    model = models.create("lenet5")
    x = sample_input(model.input_shape, np.float32, np.random.default_rng(3))
    proto = assert_matches(model, x, opset=opset)
    assert proto.opset_import[0].version == opset


@pytest.mark.parametrize("opset", [12, 10_000, "17"])
def test_unsupported_opset_is_refused(opset):
    with pytest.raises(ONNXExportError, match="opset must be an int from 13"):
        to_onnx(models.create("lenet5"), opset=opset)


class Doubler(nn.Module):
    def forward(self, x):
        return 2 * x


class SquaredConv(nn.Conv2d):
    """A Conv2d whose forward computes something else: it must not be exported as a Conv."""

    def forward(self, x):
        return super().forward(x) ** 2


class PlainConv(nn.Conv2d):
    """A Conv2d subclass that keeps Conv2d's forward: exported with Conv2d's converter."""


def test_unsupported_layer_is_named_with_its_dotted_path_and_type():
    model = nn.Sequential(nn.Conv2d(1, 2, 3), nn.Sequential(nn.ReLU(), Doubler()))
    with pytest.raises(ONNXExportError, match=r"layer '1\.1' \(test_onnx\.Doubler\).*CONVERTERS"):
        to_onnx(model, input_shape=(1, 6, 6))
    with pytest.raises(ONNXExportError, match=r"layer '0' \(test_onnx\.SquaredConv\)"):
        to_onnx(nn.Sequential(SquaredConv(1, 2, 3)), input_shape=(1, 6, 6))
    with pytest.raises(ONNXExportError, match=r"layer '\(the model itself\)' \(test_onnx\.Doubler\)"):
        to_onnx(Doubler(), input_shape=(3,))


def test_a_subclass_keeping_forward_uses_its_base_converter_and_a_new_type_is_one_function():
    assert_matches(nn.Sequential(PlainConv(1, 2, 3)), sample_input((1, 6, 6), np.float32, np.random.default_rng(4)))
    CONVERTERS[Doubler] = lambda g, module, x, name: g.node("Add", [x.name, x.name], module(x.value), name)
    try:
        assert_matches(nn.Sequential(nn.Linear(3, 3), Doubler()), np.ones((2, 3), dtype=np.float32))
    finally:
        del CONVERTERS[Doubler]


def test_export_writes_a_checked_file_with_normalisation_inside(tmp_path):
    model = models.create("lenet5").eval()
    mean, std = [0.3], [0.4]
    path = tmp_path / "lenet5.onnx"
    export(model, path, normalization=(mean, std))
    onnx.checker.check_model(str(path), full_check=True)
    pixels = np.random.default_rng(5).random((3, 1, 28, 28), dtype=np.float32)
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    got = session.run(None, {"input": pixels})[0]
    np.testing.assert_allclose(got, model((pixels - 0.3) / 0.4), atol=TOLERANCE, rtol=0)


def test_failed_export_leaves_the_previous_file(tmp_path):
    path = tmp_path / "model.onnx"
    path.write_bytes(b"previous")
    with pytest.raises(ONNXExportError):
        export(nn.Sequential(Doubler()), path, input_shape=(3,))
    assert path.read_bytes() == b"previous"


def test_cli_export_of_a_checkpoint(tmp_path, capsys):
    jrandom.seed(6)
    model = models.create("lenet5")
    meta = {"data": {"classes": list("0123456789"), "normalization": [[0.5], [0.25]], "input_shape": [1, 28, 28]}}
    ckpt.save(tmp_path / "best.npz", model, **meta)
    assert main(["export", str(tmp_path), str(tmp_path / "m.onnx"), "--opset", "15"]) == 0
    out = capsys.readouterr().out
    assert out.startswith(f"wrote {tmp_path / 'm.onnx'}: lenet5, opset 15") and "normalised inside" in out
    pixels = np.random.default_rng(6).random((2, 1, 28, 28), dtype=np.float32)
    got = run_onnx(onnx.load(str(tmp_path / "m.onnx")), pixels)
    np.testing.assert_allclose(got, model.eval()((pixels - 0.5) / 0.25), atol=TOLERANCE, rtol=0)


def test_cli_export_errors_are_one_line(tmp_path, capsys):
    ckpt.save(tmp_path / "best.npz", models.create("lenet5"))
    assert main(["export", str(tmp_path), str(tmp_path / "m.onnx"), "--opset", "7"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("juanji: error: opset must be an int from 13") and err.count("\n") == 1
    assert not (tmp_path / "m.onnx").exists()
    assert main(["export", str(tmp_path), str(tmp_path)]) == 2
    assert "is a folder" in capsys.readouterr().err


def test_cli_export_without_onnx_says_how_to_get_it(tmp_path):
    ckpt.save(tmp_path / "best.npz", models.create("lenet5"))
    code = ("import sys; sys.modules['onnx'] = None; from juanji.cli import main; "
            f"sys.exit(main(['export', {str(tmp_path)!r}, {str(tmp_path / 'm.onnx')!r}]))")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 2
    assert result.stderr == "juanji: error: juanji export needs the onnx package: pip install onnx\n"
