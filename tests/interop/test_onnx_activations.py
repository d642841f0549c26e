"""ONNX export of the activations, the softmax family and channel dropout: each runs in onnxruntime and gives
juanji's output (float32, max |difference| ≤ 1e-6, as tests/interop/test_onnx.py), at opset 17 (the default),
at the oldest opset exported (13: HardSwish composed) and at 21."""
import warnings

import numpy as np
import pytest

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")

from juanji import nn  # noqa: E402
from juanji.interop.onnx import MIN_OPSET, to_onnx  # noqa: E402

TOLERANCE = 1e-6


def run_onnx(proto, x):
    session = ort.InferenceSession(proto.SerializeToString(), providers=["CPUExecutionProvider"])
    return session.run(None, {session.get_inputs()[0].name: x})[0]


CASES = [
    (lambda: nn.ReLU(inplace=True), (3, 4)),
    (lambda: nn.LeakyReLU(-0.3, True), (3, 4)),
    (lambda: nn.ReLU6(), (3, 4, 4)),
    (lambda: nn.ReLU6(inplace=True), (3, 4, 4)),
    (lambda: nn.Hardtanh(-0.5, 2.0), (3, 4)),
    (lambda: nn.Hardtanh(0.0, float("inf")), (3, 4)),
    (lambda: nn.Hardswish(), (3, 4, 4)),
    (lambda: nn.Hardswish(True), (3, 4, 4)),
    (lambda: nn.Hardsigmoid(), (3, 4)),
    (lambda: nn.SiLU(), (3, 4)),
    (lambda: nn.SiLU(inplace=True), (3, 4)),
    (lambda: nn.Mish(), (3, 4, 4)),
    (lambda: nn.GELU(), (3, 4)),
    (lambda: nn.GELU("tanh"), (3, 4)),
    (lambda: nn.ELU(), (3, 4)),
    (lambda: nn.ELU(0.4, inplace=True), (3, 4)),
    (lambda: nn.SELU(), (3, 4)),
    (lambda: nn.Softplus(), (3, 4)),
    (lambda: nn.Softplus(2.0, 1.5), (3, 4)),                 # the linear piece above βx = 1.5 shows
    (lambda: nn.Softplus(-1.5, 0.5), (3, 4)),
    (lambda: nn.PReLU(), (3, 4, 4)),
    (lambda: nn.PReLU(3), (3, 4, 4)),
    (lambda: nn.PReLU(5), (5,)),
    (lambda: nn.PReLU(2), (2, 7)),
    (lambda: nn.Softmax(), (3, 4)),                          # dim None: torch's implicit dim 1 of (N, 3, 4)
    (lambda: nn.Softmax(), (2, 3, 4)),
    (lambda: nn.LogSoftmax(1), (6,)),
    (lambda: nn.LogSoftmax(-1), (3, 4)),
    (lambda: nn.Softmin(dim=2), (3, 4)),
    (lambda: nn.Sequential(nn.Dropout1d(0.3), nn.Linear(4, 2)), (3, 4)),
    (lambda: nn.Sequential(nn.Conv2d(3, 4, 3), nn.Dropout2d(), nn.ReLU(True), nn.Dropout3d(0.2)), (3, 5, 5)),
]


@pytest.mark.filterwarnings("ignore:Implicit dimension choice")
@pytest.mark.parametrize("opset", [MIN_OPSET, 17, 21])
@pytest.mark.parametrize("make, shape", CASES)
def test_layer_runs_in_onnxruntime_as_in_juanji(make, shape, opset):
    rng = np.random.default_rng(0)
    layer = make().eval()
    for module in layer.modules():
        for key, param in module.params.items():
            param[...] = rng.uniform(-1, 1, param.shape)
    x = (rng.standard_normal((3, *shape)) * 1.5).astype(np.float32)
    proto = to_onnx(layer, input_shape=shape, opset=opset)
    got = run_onnx(proto, x)
    expected = layer(x.copy())
    assert got.shape == expected.shape
    np.testing.assert_allclose(got, expected, atol=TOLERANCE, rtol=0)
    assert not any(node.op_type == "Dropout" for node in proto.graph.node)


def test_hardswish_is_one_node_from_opset_14_and_gelu_is_composed_with_erf():
    ops = {opset: [node.op_type for node in to_onnx(nn.Hardswish(), input_shape=(4,), opset=opset).graph.node]
           for opset in (13, 14)}
    assert ops == {13: ["HardSigmoid", "Mul"], 14: ["HardSwish"]}
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert "Erf" in [node.op_type for node in to_onnx(nn.GELU(), input_shape=(4,)).graph.node]
