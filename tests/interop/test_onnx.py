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
from juanji.models.convnext import CNBlock, LayerNorm2d  # noqa: E402
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
    (lambda: CNBlock(6, layer_scale=0.5, stochastic_depth_prob=0.3), (6, 5, 4)),     # ConvNeXt's, a visible scale
]


@pytest.mark.parametrize("make, shape", CONV_CASES + POOL_CASES + OTHER_CASES)
def test_layer_options_match_onnxruntime(make, shape):
    jrandom.seed(1)
    rng = np.random.default_rng(1)
    layer = make()
    randomise_buffers(layer, rng)
    assert_matches(layer, sample_input(shape, np.float32, rng, batch=3))


# The normalisation layers at the opsets where their export changes: LayerNormalization from 17, ReduceMean's
# axes an input from 18; GroupNorm always composed; LRN native for an odd size on 4-D input, else composed.
NORM_CASES = [
    (lambda: nn.BatchNorm2d(3, momentum=None, bias=False), (3, 4, 4)),
    (lambda: nn.BatchNorm2d(3, track_running_stats=False), (3, 4, 4)),                # batch statistics in eval
    (lambda: nn.BatchNorm1d(4, 1e-3, 0.1, False, False), (4, 6)),
    (lambda: nn.LayerNorm(6), (3, 6)),
    (lambda: nn.LayerNorm((4, 5), elementwise_affine=False), (3, 4, 5)),
    (lambda: nn.LayerNorm([4, 5], eps=1e-3, bias=False), (3, 4, 5)),
    (lambda: LayerNorm2d(6, eps=1e-6), (6, 4, 5)),                                   # over the channels of NCHW
    (lambda: nn.GroupNorm(2, 4), (4, 5, 3)),
    (lambda: nn.GroupNorm(3, 6, affine=False), (6, 5)),
    (lambda: nn.GroupNorm(1, 3, eps=1e-3, bias=False), (3, 4, 4)),
    (lambda: nn.InstanceNorm2d(3), (3, 4, 5)),
    (lambda: nn.InstanceNorm2d(3, affine=True, bias=False), (3, 4, 5)),
    (lambda: nn.InstanceNorm1d(3, affine=True), (3, 6)),
    (lambda: nn.InstanceNorm1d(3, affine=True, track_running_stats=True), (3, 6)),     # running statistics
    (lambda: nn.LocalResponseNorm(5), (7, 4, 4)),                                       # ONNX's LRN
    (lambda: nn.LocalResponseNorm(3, 0.3, 0.7, 1.5), (4, 3, 3)),
    (lambda: nn.LocalResponseNorm(4, 0.3, 0.7, 1.5), (7, 4, 4)),                        # even: composed
    (lambda: nn.LocalResponseNorm(3, 0.3, 0.7, 1.5), (7, 6)),                           # 3-D: composed
    (lambda: nn.LocalResponseNorm(2, 0.3, 0.7, 1.5), (5, 3, 2, 2)),                     # 5-D: composed
]


@pytest.mark.parametrize("opset", [MIN_OPSET, 17, 18])
@pytest.mark.parametrize("make, shape", NORM_CASES)
def test_normalisation_layers_match_onnxruntime(make, shape, opset):
    rng = np.random.default_rng(7)
    layer = make()
    randomise_buffers(layer, rng)
    for array in layer.params.values():
        array[...] = rng.normal(0, 1, array.shape)
    proto = assert_matches(layer, sample_input(shape, np.float32, rng, batch=3) * 2, opset=opset)
    ops = {node.op_type for node in proto.graph.node}
    if isinstance(layer, nn.LayerNorm):
        assert ("LayerNormalization" in ops) == (opset >= 17)
    if isinstance(layer, nn.LocalResponseNorm):
        assert ("LRN" in ops) == (layer.size % 2 == 1 and len(shape) == 3)


def test_batch_statistics_cannot_be_traced_on_one_value_per_channel():
    with pytest.raises(ONNXExportError, match=r"BatchNorm1d with track_running_stats=False"):
        to_onnx(nn.BatchNorm1d(4, track_running_stats=False), input_shape=(4,))


def test_embedding_exports_as_gather_of_int64_ids():
    jrandom.seed(2)
    model = nn.Sequential(Embedding(20, 6), Permute(0, 2, 1), nn.Conv1d(6, 4, 3), GlobalMaxPool1d())
    x = np.random.default_rng(2).integers(0, 20, (4, 9))
    proto = assert_matches(model, x)
    assert proto.graph.input[0].type.tensor_type.elem_type == onnx.TensorProto.INT64
    assert proto.graph.node[0].op_type == "Gather"


# Convolutions' padding modes (a Pad, or Slice + Concat for circular, before the Conv), the padding layers (negative
# amounts crop: a Slice), pixel shuffles, Unflatten, Linear on more than 2 axes.
PADDING_CASES = [
    (lambda: nn.Conv2d(3, 4, 3, padding=1, padding_mode="reflect"), (3, 6, 7)),
    (lambda: nn.Conv2d(3, 4, (2, 3), padding="same", padding_mode="replicate", dilation=(2, 1)), (3, 6, 7)),
    (lambda: nn.Conv2d(4, 6, 3, stride=2, padding=(2, 1), groups=2, padding_mode="circular"), (4, 7, 6)),
    (lambda: nn.Conv1d(3, 5, 4, padding="same", padding_mode="reflect", bias=False), (3, 9)),
    (lambda: nn.Conv1d(3, 5, 3, padding=3, padding_mode="circular"), (3, 5)),
    (lambda: nn.ZeroPad2d((1, -2, 2, 0)), (3, 5, 6)),
    (lambda: nn.ZeroPad1d(2), (3, 5)),
    (lambda: nn.ConstantPad2d((2, 1, -1, 3), 1.5), (3, 5, 6)),
    (lambda: nn.ConstantPad1d((0, 3), -0.5), (3, 5)),
    (lambda: nn.ReflectionPad2d((2, -1, 3, 1)), (3, 5, 6)),
    (lambda: nn.ReflectionPad1d((3, -2)), (3, 5)),
    (lambda: nn.ReplicationPad2d((-2, 3, 1, -1)), (3, 5, 6)),
    (lambda: nn.ReplicationPad1d(4), (3, 5)),
    (lambda: nn.CircularPad2d((2, -1, -2, 3)), (3, 5, 6)),
    (lambda: nn.CircularPad1d((3, -2)), (3, 7)),
    (lambda: nn.ZeroPad2d(0), (3, 5, 6)),                                # nothing to pad: an Identity
    (lambda: nn.PixelShuffle(2), (12, 3, 4)),
    (lambda: nn.PixelUnshuffle(2), (3, 4, 6)),
    (lambda: nn.Unflatten(1, (2, -1, 3)), (12, 5)),
    (lambda: nn.Sequential(nn.Flatten(), nn.Unflatten(1, [3, -1])), (3, 2, 2)),
    (lambda: nn.Linear(7, 4), (3, 7)),                                   # MatMul and Add
    (lambda: nn.Linear(7, 4, bias=False), (2, 3, 7)),
    (lambda: nn.Identity(3, unused=True), (3, 4)),
]


@pytest.mark.parametrize("make, shape", PADDING_CASES)
def test_padding_shuffle_and_reshape_layers_match_onnxruntime(make, shape):
    jrandom.seed(8)
    assert_matches(make(), sample_input(shape, np.float32, np.random.default_rng(8), batch=3))


def test_pixel_shuffles_are_depth_to_space_in_crd_order_not_the_dcr_default():
    """DepthToSpace CRD reads channel c·r² + i·r + j, as torch; the default DCR (and SpaceToDepth, the inverse of
    DCR) order the channels (i·r + j)·C + c: with C > 1 they give another array, so PixelUnshuffle is composed."""
    from onnx import helper
    x = np.random.default_rng(9).standard_normal((2, 8, 3, 2)).astype(np.float32)
    shuffled = nn.PixelShuffle(2)(x)
    proto = assert_matches(nn.PixelShuffle(2), x)
    assert [(n.op_type, helper.get_attribute_value(n.attribute[1])) for n in proto.graph.node] == [
        ("DepthToSpace", b"CRD")]
    node = helper.make_node("SpaceToDepth", ["x"], ["y"], blocksize=2)
    graph = helper.make_graph([node], "s2d", [helper.make_tensor_value_info("x", onnx.TensorProto.FLOAT, None)],
                              [helper.make_tensor_value_info("y", onnx.TensorProto.FLOAT, None)])
    space_to_depth = run_onnx(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), shuffled)
    assert not np.array_equal(space_to_depth, x)
    proto = assert_matches(nn.PixelUnshuffle(2), shuffled)
    assert "SpaceToDepth" not in {n.op_type for n in proto.graph.node}


@pytest.mark.parametrize("make", [
    lambda: Embedding(12, 5, max_norm=1.0), lambda: Embedding(12, 5, max_norm=2.0, norm_type=1.5),
    lambda: Embedding(12, 5, padding_idx=-1, scale_grad_by_freq=True, _freeze=True)])
def test_embedding_options_export(make):
    """max_norm: the rows the layer renormalises in place are scaled on the way out of the Gather."""
    jrandom.seed(10)
    layer = make()
    layer.weight[...] *= 2
    assert_matches(nn.Sequential(layer, nn.Flatten()), np.random.default_rng(10).integers(0, 12, (4, 6)))


@pytest.mark.parametrize("model, shape, fragment", [
    (nn.Sequential(Embedding(5, 2, max_norm=1.0, norm_type=float("inf")), nn.Flatten()), (3,), "norm_type inf"),
    (nn.ZeroPad2d(1), (4,), "pads the batch axis"),
    (nn.PixelShuffle(2), (2, 4, 3, 3), "on a 5-D input"),
])
def test_what_onnx_cannot_say_is_refused_naming_the_layer(model, shape, fragment):
    dtype = np.int64 if isinstance(model[0] if isinstance(model, nn.Sequential) else model, Embedding) else None
    with pytest.raises(ONNXExportError, match=fragment):
        to_onnx(model, input_shape=shape, input_dtype=dtype)


# Transposed convolutions (an output_padding of stride or more: less end padding, or a Pad), the 1-d poolings,
# divisor_override, adaptive poolings keeping an axis (None), and Upsample: Resize for whole-number factors,
# else a Gather of the source indices (nearest modes) or MatMul by the interpolation matrices.
RESAMPLING_CASES = [
    (lambda: nn.ConvTranspose2d(4, 6, 3), (4, 5, 5)),
    (lambda: nn.ConvTranspose2d(4, 6, (3, 2), 2, 1, 1, 2, False, (1, 2)), (4, 5, 4)),
    (lambda: nn.ConvTranspose2d(2, 3, 3, padding=1, output_padding=1, dilation=2), (2, 4, 4)),   # op ≥ stride
    (lambda: nn.ConvTranspose2d(2, 3, 2, output_padding=(1, 0), dilation=(2, 1)), (2, 4, 4)),    # op > padding
    (lambda: nn.ConvTranspose1d(4, 6, 3, 2, 1, 1, 2, True, 2), (4, 7)),
    (lambda: nn.ConvTranspose1d(3, 2, 2, output_padding=1, dilation=3, bias=False), (3, 5)),
    (lambda: nn.MaxPool1d(3, 2, 1, ceil_mode=True), (3, 10)),
    (lambda: nn.MaxPool1d(2, dilation=2), (3, 9)),
    (lambda: nn.AvgPool1d(3, 2, 1, ceil_mode=True), (3, 10)),
    (lambda: nn.AvgPool1d(3, 2, 1, count_include_pad=False), (3, 10)),
    (lambda: nn.AvgPool2d(3, 2, 1, ceil_mode=True, divisor_override=5), (2, 8, 7)),
    (lambda: nn.AvgPool2d(2, divisor_override=-3), (2, 8, 8)),
    (lambda: nn.AdaptiveAvgPool1d(3), (3, 10)),
    (lambda: nn.AdaptiveAvgPool1d(1), (3, 10)),
    (lambda: nn.AdaptiveMaxPool1d(4), (3, 10)),
    (lambda: nn.AdaptiveAvgPool2d((None, 3)), (2, 5, 7)),
    (lambda: nn.AdaptiveMaxPool2d((3, None)), (2, 5, 7)),
    (lambda: nn.Upsample(scale_factor=2), (2, 4, 5)),                                     # Resize
    (lambda: nn.Upsample(scale_factor=(3, 1), mode="nearest-exact"), (2, 4, 5)),          # Resize
    (lambda: nn.Upsample(scale_factor=2, mode="bilinear"), (2, 4, 5)),                    # Resize
    (lambda: nn.Upsample(size=(8, 15), mode="bicubic"), (2, 4, 5)),                       # × 3: MatMul
    (lambda: nn.Upsample(scale_factor=3, mode="linear"), (2, 6)),                         # × 3: MatMul
    (lambda: nn.Upsample(scale_factor=1.7), (2, 4, 5)),
    (lambda: nn.Upsample(size=(7, 3), mode="nearest-exact"), (2, 4, 5)),
    (lambda: nn.Upsample(scale_factor=2.01), (2, 6, 5)),                 # out = 2·in: torch reads o >> 1 in 2-d
    (lambda: nn.UpsamplingBilinear2d(scale_factor=2), (2, 4, 5)),
    (lambda: nn.Upsample(scale_factor=(1.5, 0.8), mode="bilinear", recompute_scale_factor=True), (2, 4, 5)),
    (lambda: nn.Upsample(scale_factor=1.05, mode="bicubic"), (2, 4, 5)),   # out = in, yet not a copy
    (lambda: nn.Upsample(size=9, mode="linear", align_corners=True), (2, 6)),
    (lambda: nn.Upsample(scale_factor=0.5, mode="area"), (2, 8, 7)),
    (lambda: nn.Upsample(size=4, mode="area"), (2, 9)),
]


@pytest.mark.parametrize("make, shape", RESAMPLING_CASES)
def test_transposed_convolutions_poolings_and_upsampling_match_onnxruntime(make, shape):
    jrandom.seed(3)
    rng = np.random.default_rng(3)
    layer = make()
    proto = assert_matches(layer, sample_input(shape, np.float32, rng, batch=3))
    if isinstance(layer, nn.Upsample) and layer.mode != "area":
        resized = [node.op_type for node in proto.graph.node] == ["Resize"]
        assert resized == (layer.scale_factor in (2, (3, 1), 2.01) and not layer.align_corners)


class SegNetStep(nn.Module):
    """Encoder-decoder step: max pooling with indices, a convolution, unpooling at the remembered places."""

    def __init__(self, dims):
        super().__init__()
        self.pool = (nn.MaxPool1d if dims == 1 else nn.MaxPool2d)(2, return_indices=True)
        self.conv = (nn.Conv1d if dims == 1 else nn.Conv2d)(2, 2, 3, padding=1)
        self.unpool = (nn.MaxUnpool1d if dims == 1 else nn.MaxUnpool2d)(2)

    def forward(self, x):
        y, indices = self.pool(x)
        return self.unpool(self.conv(y), indices, output_size=x.shape)


def _segnet_step(g, module, x, name):
    from juanji.interop.onnx import max_pool_with_indices, max_unpool
    y, indices = max_pool_with_indices(g, module.pool, x, f"{name}.pool")
    y = g.convert(module.conv, y, f"{name}.conv")
    return max_unpool(g, module.unpool, y, indices, name, output_size=x.value.shape)


@pytest.mark.parametrize("dims, shape", [(1, (2, 9)), (2, (2, 7, 6))])
def test_max_pool_indices_and_max_unpool_export_through_a_modules_converter(dims, shape):
    """MaxPool's ONNX indices count over the whole tensor: Mod by the plane gives torch's; MaxUnpool is a
    ScatterElements of the planes into zeros, the batch axis symbolic (the graph runs on any batch size)."""
    jrandom.seed(4)
    CONVERTERS[SegNetStep] = _segnet_step
    try:
        model = SegNetStep(dims)
        proto = assert_matches(model, sample_input(shape, np.float32, np.random.default_rng(4), batch=3))
        x = sample_input(shape, np.float32, np.random.default_rng(5), batch=5)
        np.testing.assert_allclose(run_onnx(proto, x), model(x), atol=TOLERANCE, rtol=0)
    finally:
        del CONVERTERS[SegNetStep]
    assert {"MaxPool", "Mod", "ScatterElements"} <= {node.op_type for node in proto.graph.node}


@pytest.mark.parametrize("layer, shape, fragment", [
    (nn.MaxPool2d(2, return_indices=True), (2, 4, 4), r"MaxPool2d with return_indices=True\) on its own"),
    (nn.AdaptiveMaxPool1d(2, return_indices=True), (2, 4), r"AdaptiveMaxPool1d with return_indices=True"),
    (nn.MaxUnpool2d(2), (2, 4, 4), r"MaxUnpool2d\) on its own: it takes the indices")])
def test_layers_that_pass_indices_are_refused_on_their_own(layer, shape, fragment):
    with pytest.raises(ONNXExportError, match=fragment):
        to_onnx(nn.Sequential(layer), input_shape=shape)


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
