"""Export a juanji model to ONNX, for onnxruntime, TensorRT, OpenVINO or a browser.

    export(model, "lenet5.onnx")            # traced on a batch of model.input_shape, opset 17

The model is *traced*: a sample batch runs through it in eval mode and each layer's converter, looked up
by the layer's type in ``CONVERTERS``, emits the ONNX nodes that compute what the layer just computed.
Every converter therefore knows its input's static shape (only the batch axis stays symbolic, ``N``),
which is what lets padding resolved for ``ceil_mode``, adaptive pooling bins and spatial pyramids become
plain fixed-size ONNX operators.  Dropout vanishes and BatchNorm uses its running statistics (eval mode);
weights are stored as float32.  A layer type without a converter stops the export with an
``ONNXExportError`` naming the layer; supporting a new type is one function added to ``CONVERTERS``.

A subclass uses its base class's converter unless it overrides ``forward`` (``ConvBNReLU`` is converted
as the ``Sequential`` it is; ``DenseLayer``, whose forward concatenates, needs its own).
"""
from __future__ import annotations

import io
import os
from dataclasses import dataclass, field

import numpy as np

from .. import __version__, nn
from ..functional.geometry import adaptive_bins, pool_output_size
from ..models.densenet import DenseLayer
from ..models.googlenet import GoogLeNet
from ..models.resnet import PadShortcut, ResidualBlock
from ..nn.embedding import Embedding
from ..nn.permute import Permute
from ..nn.pooling1d import GlobalMaxPool1d
from ..nn.spp import AdaptiveMaxPool2d, SpatialPyramidPool2d

DEFAULT_OPSET = 17
MIN_OPSET = 13          # Softmax along one axis, Squeeze/Unsqueeze/Split with axes as inputs


class ONNXExportError(ValueError):
    """The model (or an option) cannot be expressed in ONNX; the message names the layer."""


@dataclass
class Tensor:
    """A tensor of the graph under construction: its ONNX name and its value on the sample batch."""
    name: str
    value: np.ndarray


@dataclass
class GraphBuilder:
    """Collects nodes and initialisers; ``convert`` dispatches a layer to its converter."""
    opset: int
    nodes: list = field(default_factory=list)
    initializers: list = field(default_factory=list)
    _used: set = field(default_factory=set)

    def unique(self, name: str) -> str:
        name = name or "x"
        candidate, index = name, 1
        while candidate in self._used:
            index += 1
            candidate = f"{name}_{index}"
        self._used.add(candidate)
        return candidate

    def constant(self, array, name: str) -> str:
        """Add ``array`` as an initialiser (floats as float32) and return its name."""
        from onnx import numpy_helper
        array = np.asarray(array)
        if array.dtype.kind == "f":
            array = array.astype(np.float32)
        name = self.unique(name)
        self.initializers.append(numpy_helper.from_array(array, name))
        return name

    def node(self, op_type: str, inputs, value, name: str, **attributes) -> Tensor:
        """Append one node computing ``value`` (the juanji result it must reproduce) from ``inputs``."""
        from onnx import helper
        output = self.unique(name)
        self.nodes.append(helper.make_node(op_type, list(inputs), [output], name=output, **attributes))
        return Tensor(output, value)

    def convert(self, module: nn.Module, x: Tensor, name: str) -> Tensor:
        converter = converter_for(module)
        if converter is None:
            kind = f"{type(module).__module__}.{type(module).__qualname__}"
            raise ONNXExportError(f"cannot export layer '{name or '(the model itself)'}' ({kind}) to ONNX: "
                                  f"no converter for it; add one to juanji.interop.onnx.CONVERTERS")
        return converter(self, module, x, name)


def converter_for(module: nn.Module):
    """The converter of ``module``'s type or of the nearest base class whose ``forward`` it inherits."""
    for cls in type(module).__mro__:
        if cls in CONVERTERS:
            return CONVERTERS[cls]
        if "forward" in vars(cls):
            return None
    return None


def _child(name: str, child: str) -> str:
    return f"{name}.{child}" if name else child


# -- containers ------------------------------------------------------------------------------------
def _sequential(g, module, x, name):
    for child_name, child in module.named_children():
        x = g.convert(child, x, _child(name, child_name))
    return x


def _residual(g, module, x, name):
    body = g.convert(module.body, x, _child(name, "body"))
    skip = g.convert(module.shortcut, x, _child(name, "shortcut"))
    return g.node("Add", [body.name, skip.name], body.value + skip.value, _child(name, "add"))


def _concat(g, module, x, name):
    outputs = [g.convert(branch, x, _child(name, branch_name)) for branch_name, branch in module.named_children()]
    return g.node("Concat", [o.name for o in outputs], np.concatenate([o.value for o in outputs], axis=module.dim),
                  name, axis=module.dim)


def _pass_through(g, module, x, name):
    """Identity, and Dropout in eval mode: no node at all."""
    return x


# -- layers with parameters --------------------------------------------------------------------------
def _conv(g, module, x, name):
    """Conv2d and Conv1d (its weight has one spatial axis): pads = [top, left, bottom, right] or [l, r]."""
    one_d = isinstance(module, nn.Conv1d)
    axes = slice(1, 2) if one_d else slice(0, 2)
    (top, bottom), (left, right) = module.pads
    pads = [left, right] if one_d else [top, left, bottom, right]
    weight = module.params["weight"]
    inputs = [x.name, g.constant(weight, _child(name, "weight"))]
    if "bias" in module.params:
        inputs.append(g.constant(module.params["bias"], _child(name, "bias")))
    return g.node("Conv", inputs, module(x.value), name, kernel_shape=list(weight.shape[2:]),
                  strides=list(module.stride[axes]), dilations=list(module.dilation[axes]), pads=pads,
                  group=module.groups)


def _linear(g, module, x, name):
    inputs = [x.name, g.constant(module.params["weight"], _child(name, "weight"))]
    if "bias" in module.params:
        inputs.append(g.constant(module.params["bias"], _child(name, "bias")))
    return g.node("Gemm", inputs, module(x.value), name, transB=1)


def _batch_norm(g, module, x, name):
    mean, var = module.buffers["running_mean"], module.buffers["running_var"]
    gamma = module.params.get("weight", np.ones_like(mean))
    beta = module.params.get("bias", np.zeros_like(mean))
    inputs = [x.name] + [g.constant(a, _child(name, key)) for a, key in
                         ((gamma, "weight"), (beta, "bias"), (mean, "running_mean"), (var, "running_var"))]
    return g.node("BatchNormalization", inputs, module(x.value), name, epsilon=float(module.eps))


def _embedding(g, module, x, name):
    """y[n, l] = weight[x[n, l]]: a Gather of rows (the token ids are int64)."""
    weight = g.constant(module.params["weight"], _child(name, "weight"))
    return g.node("Gather", [weight, x.name], module(x.value), name, axis=0)


# -- activations and shapes ------------------------------------------------------------------------
def _simple(op_type, **attributes):
    def convert(g, module, x, name):
        values = {key: get(module) for key, get in attributes.items()}
        return g.node(op_type, [x.name], module(x.value), name, **values)
    convert.__name__ = f"_{op_type.lower()}"
    return convert


def _flatten(g, module, x, name):
    y = module(x.value)
    if module.start_dim == 1 and module.end_dim in (-1, x.value.ndim - 1):
        return g.node("Flatten", [x.name], y, name, axis=1)
    shape = [0 if module.start_dim > 0 else -1, *y.shape[1:]]     # 0 copies the (symbolic) batch axis
    return g.node("Reshape", [x.name, g.constant(np.array(shape, dtype=np.int64), _child(name, "shape"))],
                  y, name)


# -- pooling -----------------------------------------------------------------------------------------
def _explicit_pads(x_shape, module):
    """([top, left, bottom, right], out (H', W')) with ceil_mode turned into extra bottom/right padding, so
    that every runtime computes PyTorch's output size (its last window starts inside input or padding)."""
    before, after, out = [], [], []
    for axis in range(2):
        size, k, s, p = x_shape[2 + axis], module.kernel_size[axis], module.stride[axis], module.padding[axis]
        d = module.dilation[axis]
        o = pool_output_size(size, k, s, p, d, module.ceil_mode)
        before.append(p)
        after.append(max(p, (o - 1) * s + d * (k - 1) + 1 - size - p))
        out.append(o)
    return before + after, out


def _max_pool(g, module, x, name):
    pads, _ = _explicit_pads(x.value.shape, module)
    return g.node("MaxPool", [x.name], module(x.value), name, kernel_shape=list(module.kernel_size),
                  strides=list(module.stride), pads=pads, dilations=list(module.dilation))


def _avg_pool(g, module, x, name):
    """AveragePool dividing by the real (unpadded) cells; with count_include_pad, a constant factor then
    turns that into PyTorch's divisor, which counts declared padding but not the ceil_mode overhang."""
    pads, out = _explicit_pads(x.value.shape, module)
    y = module(x.value)
    pooled = g.node("AveragePool", [x.name], y, _child(name, "pool") if module.count_include_pad else name,
                    kernel_shape=list(module.kernel_size), strides=list(module.stride), pads=pads,
                    count_include_pad=0)
    if not module.count_include_pad:
        return pooled
    real, counted = [], []
    for axis in range(2):
        size, k, s, p = x.value.shape[2 + axis], module.kernel_size[axis], module.stride[axis], module.padding[axis]
        start = np.arange(out[axis]) * s - p
        real.append(np.minimum(start + k, size) - np.maximum(start, 0))
        counted.append(np.minimum(start + k, size + p) - start)
    factor = np.outer(real[0], real[1]) / np.outer(counted[0], counted[1])
    if np.all(factor == 1):
        return pooled
    return g.node("Mul", [pooled.name, g.constant(factor, _child(name, "divisor_ratio"))], y, name)


def _adaptive(g, x, output_size, name, pool_op, global_op):
    """Adaptive pooling into PyTorch's bins: a global pool, one uniform pool when the bins tile the input,
    else one pool per bin column and per bin row (max and mean of a rectangle are separable)."""
    n, c, h, w = x.value.shape
    oh, ow = output_size
    if (oh, ow) == (1, 1):
        return g.node(global_op, [x.name], None, name).name
    if h % oh == 0 and w % ow == 0:
        kernel = [h // oh, w // ow]
        return g.node(pool_op, [x.name], None, name, kernel_shape=kernel, strides=kernel).name
    current, current_shape = x.name, (h, w)
    for axis, bins_out in ((3, ow), (2, oh)):
        size = current_shape[axis - 2]
        pieces = []
        for i, (start, end) in enumerate(adaptive_bins(size, bins_out)):
            piece = g.node("Slice", [current, *(g.constant(np.array([v], dtype=np.int64), _child(name, key))
                                                for key, v in (("start", start), ("end", end), ("axis", axis)))],
                           None, _child(name, f"bin{axis}_{i}"))
            kernel = [end - start, 1] if axis == 2 else [1, end - start]
            pieces.append(g.node(pool_op, [piece.name], None, _child(name, f"pool{axis}_{i}"),
                                 kernel_shape=kernel).name)
        current = g.node("Concat", pieces, None, _child(name, f"axis{axis}") if axis == 3 else name, axis=axis).name
        current_shape = (h, ow)
    return current


def _adaptive_avg_pool(g, module, x, name):
    return Tensor(_adaptive(g, x, module.output_size, name, "AveragePool", "GlobalAveragePool"), module(x.value))


def _adaptive_max_pool(g, module, x, name):
    return Tensor(_adaptive(g, x, module.output_size, name, "MaxPool", "GlobalMaxPool"), module(x.value))


def _global_pool(op_type):
    def convert(g, module, x, name):
        pooled = g.node(op_type, [x.name], None, _child(name, "pool"))
        return g.node("Flatten", [pooled.name], module(x.value), name, axis=1)
    convert.__name__ = f"_{op_type.lower()}"
    return convert


def _spatial_pyramid_pool(g, module, x, name):
    """Each level: adaptive max pool into l×l bins, flattened as (C, l, l); the levels concatenated."""
    levels = []
    for level in module.levels:
        pooled = _adaptive(g, x, (level, level), _child(name, f"level{level}"), "MaxPool", "GlobalMaxPool")
        levels.append(g.node("Flatten", [pooled], None, _child(name, f"level{level}_flat"), axis=1).name)
    return g.node("Concat", levels, module(x.value), name, axis=1)


# -- blocks of the model zoo -------------------------------------------------------------------------
def _residual_block(g, module, x, name):
    """ResNet's block: ReLU(body(x) + downsample(x)), the body being every child but downsample and relu."""
    out = x
    for child_name, child in module.named_children():
        if child_name not in ("downsample", "relu"):
            out = g.convert(child, out, _child(name, child_name))
    skip = g.convert(module.downsample, x, _child(name, "downsample"))
    total = g.node("Add", [out.name, skip.name], out.value + skip.value, _child(name, "add"))
    return g.convert(module.relu, total, _child(name, "relu"))


def _pad_shortcut(g, module, x, name):
    """x[:, :, ::s, ::s] followed by ``extra_channels`` zero channels."""
    s = module.stride

    def ints(values, key):
        return g.constant(np.array(values, dtype=np.int64), _child(name, key))

    kept = g.node("Slice", [x.name, ints([0, 0], "starts"), ints([2**62, 2**62], "ends"), ints([2, 3], "axes"),
                            ints([s, s], "steps")], None, _child(name, "subsample"))
    pads = ints([0, 0, 0, 0, 0, module.extra_channels, 0, 0], "pads")
    return g.node("Pad", [kept.name, pads], module(x.value), name)


def _dense_layer(g, module, x, name):
    """DenseNet's layer: [x, F(x)] along the channels, F being the layer's children in order."""
    new = _sequential(g, module, x, name)
    return g.node("Concat", [x.name, new.name], np.concatenate([x.value, new.value], axis=1),
                  _child(name, "concat"), axis=1)


def _googlenet(g, module, x, name):
    """The trunk, in eval mode: the auxiliary classifiers compute nothing then."""
    for child_name, child in module.named_children():
        if not child_name.startswith("aux"):
            x = g.convert(child, x, _child(name, child_name))
    return x


CONVERTERS = {
    nn.Sequential: _sequential, nn.Residual: _residual, nn.Concat: _concat,
    nn.Identity: _pass_through, nn.Dropout: _pass_through,
    nn.Conv2d: _conv, nn.Conv1d: _conv, nn.Linear: _linear,
    nn.BatchNorm1d: _batch_norm, nn.BatchNorm2d: _batch_norm, Embedding: _embedding,
    nn.ReLU: _simple("Relu"), nn.Sigmoid: _simple("Sigmoid"), nn.Tanh: _simple("Tanh"),
    nn.LeakyReLU: _simple("LeakyRelu", alpha=lambda m: float(m.negative_slope)),
    nn.Softmax: _simple("Softmax", axis=lambda m: m.dim),
    nn.Flatten: _flatten, Permute: _simple("Transpose", perm=lambda m: list(m.dims)),
    nn.MaxPool2d: _max_pool, nn.AvgPool2d: _avg_pool,
    nn.AdaptiveAvgPool2d: _adaptive_avg_pool, AdaptiveMaxPool2d: _adaptive_max_pool,
    nn.GlobalAvgPool2d: _global_pool("GlobalAveragePool"), GlobalMaxPool1d: _global_pool("GlobalMaxPool"),
    SpatialPyramidPool2d: _spatial_pyramid_pool,
    ResidualBlock: _residual_block, PadShortcut: _pad_shortcut, DenseLayer: _dense_layer, GoogLeNet: _googlenet,
}


def to_onnx(model: nn.Module, input_shape=None, input_dtype=None, opset: int = DEFAULT_OPSET,
            normalization=None, graph_name: str | None = None):
    """The ``onnx.ModelProto`` of ``model`` (checked with ``onnx.checker``); see ``export``."""
    import onnx
    from onnx import helper

    newest = onnx.defs.onnx_opset_version()
    if not isinstance(opset, int) or not MIN_OPSET <= opset <= newest:
        raise ONNXExportError(f"opset must be an int from {MIN_OPSET} to {newest} (the newest this onnx "
                              f"package knows), got {opset!r}")
    input_shape = tuple(input_shape or getattr(model, "input_shape", ()))
    if not input_shape:
        raise ONNXExportError(f"{type(model).__name__} has no input_shape; pass input_shape=(C, H, W)")
    dtype = np.dtype(input_dtype or getattr(model, "input_dtype", np.float32))
    if normalization is not None and dtype.kind != "f":
        raise ONNXExportError("normalization applies to float (image) inputs only")
    sample = np.zeros((1, *input_shape), dtype=dtype if dtype.kind != "f" else model.dtype or np.float32)

    g = GraphBuilder(opset)
    x = Tensor(g.unique("input"), sample)
    if normalization is not None:
        mean, std = (np.asarray(v, dtype=np.float32).reshape(-1, *[1] * (len(input_shape) - 1))
                     for v in normalization)
        centred = g.node("Sub", [x.name, g.constant(mean, "normalize.mean")], None, "normalize.centre")
        x = g.node("Div", [centred.name, g.constant(std, "normalize.std")], sample, "normalize")
    was_training = model.training
    model.eval()
    try:
        y = g.convert(model, x, "")
    finally:
        model.train(was_training)
    if y.name == "input" or not g.nodes or g.nodes[-1].output[0] != y.name:
        y = g.node("Identity", [y.name], y.value, "output")
    elem = {np.dtype(np.float32): onnx.TensorProto.FLOAT, np.dtype(np.int64): onnx.TensorProto.INT64}
    if np.dtype(np.float32 if dtype.kind == "f" else dtype) not in elem:
        raise ONNXExportError(f"input dtype {dtype} cannot be exported; use float32 or int64")
    inputs = [helper.make_tensor_value_info("input", elem[np.dtype(np.float32 if dtype.kind == "f" else dtype)],
                                            ["N", *input_shape])]
    outputs = [helper.make_tensor_value_info(y.name, onnx.TensorProto.FLOAT, ["N", *y.value.shape[1:]])]
    graph = helper.make_graph(g.nodes, graph_name or getattr(model, "name", None) or type(model).__name__,
                              inputs, outputs, initializer=g.initializers)
    opsets = [helper.make_opsetid("", opset)]
    proto = helper.make_model(graph, opset_imports=opsets, producer_name="juanji", producer_version=__version__,
                              ir_version=helper.find_min_ir_version_for(opsets))
    onnx.checker.check_model(proto, full_check=True)
    return proto


def export(model: nn.Module, path, input_shape=None, input_dtype=None, opset: int = DEFAULT_OPSET,
           normalization=None) -> "onnx.ModelProto":  # noqa: F821
    """Write ``model`` to ``path`` as an ONNX file (atomically: a failed export leaves ``path`` as it was).

    ``input_shape`` (without the batch axis) defaults to ``model.input_shape``; the input is float32, or
    int64 token ids for a model with ``input_dtype = np.int64`` (the text CNN).  ``normalization`` =
    (mean, std) per channel puts ``(x − mean) / std`` in front, so that the graph takes pixels in [0, 1]
    as ``juanji predict`` does.  The batch axis is symbolic (``N``); the output is float32 (N, classes).
    Returns the checked ``onnx.ModelProto``.
    """
    from ..io import write_atomically
    proto = to_onnx(model, input_shape, input_dtype, opset, normalization)
    buffer = io.BytesIO(proto.SerializeToString())
    write_atomically(os.fspath(path), lambda f: f.write(buffer.getvalue()))
    return proto
