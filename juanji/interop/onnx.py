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

import functools
import os
from dataclasses import dataclass, field

import numpy as np

from .. import __version__, nn
from ..functional import activation as F
from ..functional import upsample
from ..functional.geometry import adaptive_bins, pool_output_size
from ..models.convnext import CNBlock, LayerNorm2d
from ..models.densenet import DenseLayer
from ..models.googlenet import GoogLeNet
from ..models.mobile_blocks import InvertedResidual, SqueezeExcitation
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
    """Collects nodes and initialisers, the only code that makes them (``emit``, ``node``, ``step``; ``constant``,
    ``ints``, ``scalar``), every name unique; ``convert`` dispatches a layer to its converter and keeps what it
    returned in ``traced`` under the layer's dotted name ("input": the graph's input, normalised)."""
    opset: int
    nodes: list = field(default_factory=list)
    initializers: list = field(default_factory=list)
    traced: dict = field(default_factory=dict)
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

    def ints(self, values, name: str) -> str:
        """An int64 initialiser (a shape, axes, pads, Slice's bounds); its name."""
        return self.constant(np.array(values, dtype=np.int64), name)

    def scalar(self, value, name: str) -> str:
        """A float32 scalar initialiser; its name."""
        return self.constant(np.array(value, dtype=np.float32), name)

    # The arguments before ** of emit, node and step are positional only, so that ONNX attributes of any name pass
    # through (ConstantOfShape's is called value).
    def emit(self, op_type: str, inputs, outputs, name: str, /, **attributes) -> None:
        """Append one node reading ``inputs`` into ``outputs`` (names from ``unique``), itself called ``name``: the
        one place nodes are made; ``node`` and ``step`` for one output, directly for several (MaxPool's indices)."""
        from onnx import helper
        self.nodes.append(helper.make_node(op_type, list(inputs), list(outputs), name=name, **attributes))

    def node(self, op_type: str, inputs, value, name: str, /, **attributes) -> Tensor:
        """Append one node computing ``value`` (the juanji result it must reproduce) from ``inputs``; the node and
        its output are called ``name``, made unique."""
        output = self.unique(name)
        self.emit(op_type, inputs, [output], output, **attributes)
        return Tensor(output, value)

    def step(self, op_type: str, inputs, name: str, /, **attributes) -> str:
        """``node`` of an intermediate result, whose value no one reads (a step of a composed layer, of the backward
        pass): its output's name."""
        return self.node(op_type, inputs, None, name, **attributes).name

    def convert(self, module: nn.Module, x: Tensor, name: str) -> Tensor:
        converter = function_for(CONVERTERS, module)
        if converter is None:
            raise ONNXExportError(f"cannot export layer '{name or '(the model itself)'}' ({qualified_type(module)}) "
                                  f"to ONNX: no converter for it; add one to juanji.interop.onnx.CONVERTERS")
        self.traced[name] = converter(self, module, x, name)
        return self.traced[name]


def function_for(table: dict, module: nn.Module):
    """The function of ``table`` (``CONVERTERS``, ``onnx_backward.BACKWARDS``) for ``module``'s type or for the
    nearest base class whose ``forward`` it inherits; None where there is none."""
    for cls in type(module).__mro__:
        if cls in table:
            return table[cls]
        if "forward" in vars(cls):
            return None
    return None


def qualified_type(module: nn.Module) -> str:
    """The module's type as an error names it: juanji.nn.activation.GELU."""
    return f"{type(module).__module__}.{type(module).__qualname__}"


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
    """Conv2d and Conv1d (its weight has one spatial axis): pads = [top, left, bottom, right] or [l, r]; a
    padding_mode other than zeros pads first (``_padded``: Pad reflect / edge, circular by Slice + Concat), as
    the layer does, and the Conv pads nothing."""
    axes = conv_axes(module)
    before, after = zip(*module.pads[axes])
    pads = [*before, *after]
    source = x.name
    if module.explicit_padding:
        source = _padded(g, x, module.pads[axes], module.padding_mode, 0.0, _child(name, "pad")).name
        pads = [0] * len(pads)
    weight = module.params["weight"]
    inputs = [source, g.constant(weight, _child(name, "weight"))]
    if "bias" in module.params:
        inputs.append(g.constant(module.params["bias"], _child(name, "bias")))
    return g.node("Conv", inputs, module(x.value), name, kernel_shape=list(weight.shape[2:]),
                  strides=list(module.stride[axes]), dilations=list(module.dilation[axes]), pads=pads,
                  group=module.groups)


def conv_axes(module) -> slice:
    """Which entries of a Conv2d's or Conv1d's (N, C, H, W) geometry (stride, dilation, pads) are its own: a
    Conv1d, computed as a Conv2d of height 1, has only the second."""
    return slice(1, 2) if isinstance(module, nn.Conv1d) else slice(0, 2)


def _linear(g, module, x, name):
    """Gemm on (N, in); on (N, …, in) a MatMul by Wᵀ (then Add of the bias), as Linear takes any leading axes."""
    if x.value.ndim != 2:
        y = module(x.value)
        weight_t = g.constant(module.params["weight"].T, _child(name, "weight_t"))
        if "bias" not in module.params:
            return g.node("MatMul", [x.name, weight_t], y, name)
        product = g.step("MatMul", [x.name, weight_t], _child(name, "matmul"))
        return g.node("Add", [product, g.constant(module.params["bias"], _child(name, "bias"))], y, name)
    inputs = [x.name, g.constant(module.params["weight"], _child(name, "weight"))]
    if "bias" in module.params:
        inputs.append(g.constant(module.params["bias"], _child(name, "bias")))
    return g.node("Gemm", inputs, module(x.value), name, transB=1)


def _batch_norm(g, module, x, name):
    """BatchNormalization with the running statistics (also an InstanceNorm's that tracks them, in eval); a batch
    norm without them (track_running_stats=False) normalises by the batch's in eval too: standardised over every
    axis but the channels' by primitives, then γ, β."""
    if "running_mean" not in module.buffers:
        if x.value.size == x.value.shape[1]:
            raise ONNXExportError(f"cannot export layer '{name}' ({type(module).__name__} with "
                                  f"track_running_stats=False) on input {x.value.shape[1:]}: it normalises by the "
                                  f"batch's statistics, which the traced sample of one has a single value of")
        axes = [0] + list(range(2, x.value.ndim))
        normalised = _standardized(g, x.name, axes, module.eps, name)
        return _affine(g, normalised, module.params.get("weight"), module.params.get("bias"),
                       (-1,) + (1,) * (x.value.ndim - 2), module(x.value), name)
    mean, var = module.buffers["running_mean"], module.buffers["running_var"]
    gamma = module.params.get("weight", np.ones_like(mean))
    beta = module.params.get("bias", np.zeros_like(mean))
    inputs = [x.name] + [g.constant(a, _child(name, key)) for a, key in
                         ((gamma, "weight"), (beta, "bias"), (mean, "running_mean"), (var, "running_var"))]
    return g.node("BatchNormalization", inputs, module(x.value), name, epsilon=float(module.eps))


def _reduce_mean(g, source, axes, name):
    """ReduceMean keeping the axes: ``axes`` an attribute before opset 18, an input from it."""
    if g.opset >= 18:
        return g.step("ReduceMean", [source, g.ints(axes, _child(name, "axes"))], name, keepdims=1)
    return g.step("ReduceMean", [source], name, axes=list(axes), keepdims=1)


def _standardized(g, source, axes, eps, name):
    """(x − μ) / √(σ² + ε), μ and the biased σ² over ``axes``, as ReduceMean, Sub, Mul, Add, Sqrt and Div;
    returns the result's name."""
    centred = g.step("Sub", [source, _reduce_mean(g, source, axes, _child(name, "mean"))], _child(name, "centred"))
    var = _reduce_mean(g, g.step("Mul", [centred, centred], _child(name, "square")), axes, _child(name, "var"))
    var_eps = g.step("Add", [var, g.scalar(eps, _child(name, "eps"))], _child(name, "var_eps"))
    return g.step("Div", [centred, g.step("Sqrt", [var_eps], _child(name, "std"))], _child(name, "normalised"))


def _affine(g, source, gamma, beta, shape, y, name):
    """γ · source + β, γ and β seen in ``shape`` (None: left out), as Mul and Add; the last node is ``name``."""
    steps = [(op, array, key) for op, array, key in (("Mul", gamma, "weight"), ("Add", beta, "bias"))
             if array is not None]
    if not steps:
        return g.node("Identity", [source], y, name)
    for i, (op_type, array, key) in enumerate(steps):
        last = i == len(steps) - 1
        out = g.node(op_type, [source, g.constant(array.reshape(shape), _child(name, key))], y if last else None,
                     name if last else _child(name, "scaled"))
        source = out.name
    return out


def _layer_norm(g, module, x, name, y=None):
    """LayerNormalization over the last len(normalized_shape) axes from opset 17; before it, composed.  ``y``: the
    output on the traced value where the module itself does not compute it from x (LayerNorm2d)."""
    k, y = len(module.normalized_shape), module(x.value) if y is None else y
    gamma, beta = module.params.get("weight"), module.params.get("bias")
    if g.opset < 17:
        normalised = _standardized(g, x.name, list(range(x.value.ndim - k, x.value.ndim)), module.eps, name)
        return _affine(g, normalised, gamma, beta, module.normalized_shape, y, name)
    scale = gamma if gamma is not None else np.ones(module.normalized_shape, dtype=np.float32)
    inputs = [x.name, g.constant(scale, _child(name, "weight"))]
    if beta is not None:
        inputs.append(g.constant(beta, _child(name, "bias")))
    return g.node("LayerNormalization", inputs, y, name, axis=-k, epsilon=float(module.eps))


def _layer_norm_2d(g, module, x, name):
    """ConvNeXt's LayerNorm over the channels of (N, C, H, W): Transpose to (N, H, W, C), the LayerNorm, back."""
    y = module(x.value)
    last = g.node("Transpose", [x.name], x.value.transpose(0, 2, 3, 1), _child(name, "channels_last"),
                  perm=[0, 2, 3, 1])
    normed = _layer_norm(g, module, last, _child(name, "norm"), y.transpose(0, 2, 3, 1))
    return g.node("Transpose", [normed.name], y, name, perm=[0, 3, 1, 2])


def _group_norm(g, module, x, name):
    """Reshaped (N, G, C/G · …), standardised over the last axis by primitives, reshaped back, then γ, β per
    channel (ONNX's GroupNormalization needs opset 18, and until opset 21 scales per group)."""
    shape = x.value.shape

    def reshape(source, target, key):
        return g.step("Reshape", [source, g.ints(target, _child(name, key + "_shape"))], _child(name, key))

    grouped = reshape(x.name, [0, module.num_groups, -1], "groups")      # 0: the (symbolic) batch axis as it is
    normalised = reshape(_standardized(g, grouped, [2], module.eps, name), [0, *shape[1:]], "channels")
    return _affine(g, normalised, module.params.get("weight"), module.params.get("bias"),
                   (-1,) + (1,) * (len(shape) - 2), module(x.value), name)


def _instance_norm(g, module, x, name):
    """InstanceNormalization (γ = 1, β = 0 where the layer has none); with running statistics, which it
    normalises by in eval, a BatchNormalization."""
    if module.track_running_stats:
        return _batch_norm(g, module, x, name)
    c = x.value.shape[1]
    gamma = module.params.get("weight", np.ones(c, dtype=np.float32))
    beta = module.params.get("bias", np.zeros(c, dtype=np.float32))
    inputs = [x.name, g.constant(gamma, _child(name, "weight")), g.constant(beta, _child(name, "bias"))]
    return g.node("InstanceNormalization", inputs, module(x.value), name, epsilon=float(module.eps))


def _local_response_norm(g, module, x, name):
    """LRN on (N, C, H, W) for an odd size (α/n and the bias k as torch's; ONNX centres an even window one
    channel later than torch).  Otherwise composed: the window's mean of x² as an AveragePool (n, 1) over the
    channels of x² seen as (N, 1, C, rest), zero-padded as torch, then x / (k + α · mean)^β."""
    y, n, shape = module(x.value), module.size, x.value.shape
    if n % 2 and len(shape) == 4:
        return g.node("LRN", [x.name], y, name, size=n, alpha=module.alpha, beta=module.beta, bias=module.k)

    square = g.step("Mul", [x.name, x.name], _child(name, "square"))
    column = g.step("Reshape", [square, g.ints([0, 1, shape[1], -1], _child(name, "column_shape"))],
                    _child(name, "column"))
    mean = g.step("AveragePool", [column], _child(name, "window_mean"), kernel_shape=[n, 1], strides=[1, 1],
                  pads=[n // 2, 0, (n - 1) // 2, 0], count_include_pad=1)
    mean = g.step("Reshape", [mean, g.ints([0, *shape[1:]], _child(name, "mean_shape"))], _child(name, "mean"))
    scaled = g.step("Mul", [mean, g.scalar(module.alpha, _child(name, "alpha"))], _child(name, "scaled"))
    base = g.step("Add", [scaled, g.scalar(module.k, _child(name, "k"))], _child(name, "base"))
    denominator = g.step("Pow", [base, g.scalar(module.beta, _child(name, "beta"))], _child(name, "denominator"))
    return g.node("Div", [x.name, denominator], y, name)


def _embedding(g, module, x, name):
    """y[n, l] = weight[x[n, l]]: a Gather of rows (the token ids are int64).  With max_norm, the rows the layer
    would renormalise in place are scaled on the way out instead: y · max_norm / (‖y‖_p + 1e−7) where
    ‖y‖_p > max_norm (p = norm_type, finite; the norm as Abs, Pow, ReduceSum, Pow)."""
    weight = g.constant(module.weight, _child(name, "weight"))
    if module.max_norm is None:
        return g.node("Gather", [weight, x.name], module(x.value), name, axis=0)
    p = float(module.norm_type)
    if not np.isfinite(p):
        raise ONNXExportError(f"cannot export layer '{name}' (Embedding with max_norm): norm_type {module.norm_type} "
                              f"is not exported (only finite p-norms)")
    rows = g.step("Gather", [weight, x.name], _child(name, "gather"))
    absolute = g.step("Abs", [rows], _child(name, "abs"))
    powered = g.step("Pow", [absolute, g.scalar(p, _child(name, "p"))], _child(name, "pow"))
    total = g.step("ReduceSum", [powered, g.ints([-1], _child(name, "axes"))], _child(name, "sum"), keepdims=1)
    norm = g.step("Pow", [total, g.scalar(1 / p, _child(name, "inverse_p"))], _child(name, "norm"))
    limit = g.scalar(module.max_norm, _child(name, "max_norm"))
    norm_eps = g.step("Add", [norm, g.scalar(1e-7, _child(name, "eps"))], _child(name, "norm_eps"))
    shrink = g.step("Div", [limit, norm_eps], _child(name, "shrink"))
    over = g.step("Greater", [norm, limit], _child(name, "over"))
    scale = g.step("Where", [over, shrink, g.scalar(1.0, _child(name, "one"))], _child(name, "scale"))
    return g.node("Mul", [rows, scale], module(x.value), name)


# -- activations and shapes ------------------------------------------------------------------------
def _traced(module, x):
    """The layer's output on the traced value; a layer working in place gets a copy, so that the traced value
    stays the input that the graph's other readers of it see."""
    return module(x.value.copy() if getattr(module, "inplace", False) else x.value)


def _simple(op_type, **attributes):
    def convert(g, module, x, name):
        values = {key: get(module) for key, get in attributes.items()}
        return g.node(op_type, [x.name], _traced(module, x), name, **values)
    convert.__name__ = f"_{op_type.lower()}"
    return convert


def _clip(g, module, x, name):
    """Hardtanh and ReLU6: Clip between min_val and max_val (inputs of the node since opset 11)."""
    bounds = [g.scalar(module.min_val, _child(name, "min")), g.scalar(module.max_val, _child(name, "max"))]
    return g.node("Clip", [x.name, *bounds], _traced(module, x), name)


def _hardswish(g, module, x, name):
    """HardSwish from opset 14; before it x · HardSigmoid(x) with HardSwish's α = 1/6, β = 1/2."""
    y = _traced(module, x)
    if g.opset >= 14:
        return g.node("HardSwish", [x.name], y, name)
    gate = g.step("HardSigmoid", [x.name], _child(name, "gate"), alpha=1 / 6, beta=0.5)
    return g.node("Mul", [x.name, gate], y, name)


def _silu(g, module, x, name):
    """x · Sigmoid(x)"""
    gate = g.step("Sigmoid", [x.name], _child(name, "sigmoid"))
    return g.node("Mul", [x.name, gate], _traced(module, x), name)


def _mish(g, module, x, name):
    """x · Tanh(Softplus(x))"""
    gate = g.step("Tanh", [g.step("Softplus", [x.name], _child(name, "softplus"))], _child(name, "tanh"))
    return g.node("Mul", [x.name, gate], _traced(module, x), name)


def _gelu(g, module, x, name):
    """x · (1 + Erf(x/√2)) / 2, or x · (1 + Tanh(√(2/π) (x + 0.044715 x³))) / 2 (approximate="tanh"); composed,
    so that every opset has it (ONNX's Gelu is opset 20's)."""
    def mul(a, value, key):
        return g.step("Mul", [a, g.scalar(value, _child(name, key + "_factor"))], _child(name, key))

    if module.approximate == "tanh":
        square = g.step("Mul", [x.name, x.name], _child(name, "square"))
        cube = g.step("Mul", [square, x.name], _child(name, "cube"))
        inner = g.step("Add", [x.name, mul(cube, F.GELU_KAPPA, "kappa")], _child(name, "inner"))
        curve = g.step("Tanh", [mul(inner, F.SQRT_2_OVER_PI, "scaled")], _child(name, "tanh"))
    else:
        curve = g.step("Erf", [mul(x.name, F.SQRT1_2, "scaled")], _child(name, "erf"))
    gate = g.step("Add", [curve, g.scalar(1.0, _child(name, "one"))], _child(name, "gate"))
    half = mul(x.name, 0.5, "half")
    return g.node("Mul", [half, gate], _traced(module, x), name)


def _softplus(g, module, x, name):
    """Where(βx > threshold, x, Softplus(βx) / β)"""
    z = x.name
    if module.beta != 1:
        z = g.step("Mul", [x.name, g.scalar(module.beta, _child(name, "beta"))], _child(name, "scaled"))
    soft = g.step("Softplus", [z], _child(name, "softplus"))
    if module.beta != 1:
        soft = g.step("Div", [soft, g.scalar(module.beta, _child(name, "beta"))], _child(name, "unscaled"))
    linear = g.step("Greater", [z, g.scalar(module.threshold, _child(name, "threshold"))], _child(name, "linear"))
    return g.node("Where", [linear, x.name, soft], _traced(module, x), name)


def _prelu(g, module, x, name):
    """PRelu with the slopes shaped (C, 1, …, 1) to broadcast over axis 1 (one slope: shape (1,))."""
    weight = module.params["weight"]
    shape = (1,) if weight.size == 1 else (-1,) + (1,) * (x.value.ndim - 2)
    slope = g.constant(weight.reshape(shape), _child(name, "weight"))
    return g.node("PRelu", [x.name, slope], _traced(module, x), name)


def _along_dim(op_type, negate=False):
    """Softmax and LogSoftmax along the layer's dim (torch's implicit one for dim=None); Softmin as
    Softmax(Neg(x))."""
    def convert(g, module, x, name):
        source = g.step("Neg", [x.name], _child(name, "neg")) if negate else x.name
        return g.node(op_type, [source], module(x.value), name, axis=module.axis(x.value.ndim))
    convert.__name__ = f"_{op_type.lower()}{'_of_negated' if negate else ''}"
    return convert


def _flatten(g, module, x, name):
    y = module(x.value)
    if module.start_dim == 1 and module.end_dim in (-1, x.value.ndim - 1):
        return g.node("Flatten", [x.name], y, name, axis=1)
    shape = [0 if module.start_dim > 0 else -1, *y.shape[1:]]     # 0 copies the (symbolic) batch axis
    return g.node("Reshape", [x.name, g.ints(shape, _child(name, "shape"))], y, name)


def _unflatten(g, module, x, name):
    """Reshape to the static shape, the batch axis copied (0), or inferred (−1) where it is the axis split."""
    y = module(x.value)
    if module.dim % x.value.ndim == 0:
        shape = [*module.unflattened_size, *x.value.shape[1:]]
    else:
        shape = [0, *y.shape[1:]]
    return g.node("Reshape", [x.name, g.ints(shape, _child(name, "shape"))], y, name)


def _pixel_shuffle(g, module, x, name):
    """DepthToSpace in CRD order: input channel c·r² + i·r + j goes to channel c, offset (i, j), as torch (the
    default DCR order would read channel (i·r + j)·C + c)."""
    _check_rank(module, x, name, 4)
    return g.node("DepthToSpace", [x.name], module(x.value), name, blocksize=module.upscale_factor, mode="CRD")


def _pixel_unshuffle(g, module, x, name):
    """(N, C, H·r, W·r) → Reshape (N, C, H, r, W, r) → Transpose (N, C, r, r, H, W) → Reshape (N, C·r², H, W):
    torch's channel order c·r² + i·r + j, which ONNX's SpaceToDepth (order (i·r + j)·C + c) does not give."""
    _check_rank(module, x, name, 4)
    _, c, h, w = x.value.shape
    r = module.downscale_factor

    blocks = g.step("Reshape", [x.name, g.ints([0, c, h // r, r, w // r, r], _child(name, "blocks_shape"))],
                    _child(name, "blocks"))
    moved = g.step("Transpose", [blocks], _child(name, "transpose"), perm=[0, 1, 3, 5, 2, 4])
    return g.node("Reshape", [moved, g.ints([0, c * r * r, h // r, w // r], _child(name, "shape"))], module(x.value),
                  name)


def _check_rank(module, x, name, ndim):
    if x.value.ndim != ndim:
        raise ONNXExportError(f"cannot export layer '{name}' ({type(module).__name__}) on a {x.value.ndim}-D input: "
                              f"only on {ndim}-D (N, C, H, W)")


# -- padding -----------------------------------------------------------------------------------------
_ONNX_PAD_MODES = {"constant": "constant", "reflect": "reflect", "replicate": "edge"}


def _padded(g, x, pads, mode, value, name, y=None) -> Tensor:
    """Nodes padding the last len(pads) axes of x by pads ((before, after), …; negative crops) in
    ``functional.pad``'s ``mode``; the last node is ``name`` with value ``y``.  Constant, reflect, replicate:
    one Pad (modes constant / reflect / edge) of the positive sides, then a Slice of the negative ones (both
    rules read the uncropped input).  Circular: the Slice first (torch wraps the cropped array), then per axis
    Concat(its last ``before`` entries, itself, its first ``after``)."""
    shape = list(x.value.shape)
    first = len(shape) - len(pads)
    if first < 1:
        raise ONNXExportError(f"cannot export layer '{name}': it pads the batch axis of a {len(shape)}-D input")

    current, emitted = x.name, len(g.nodes)

    def crop():
        nonlocal current
        axes = [first + a for a, (before, after) in enumerate(pads) if min(before, after) < 0]
        if axes:
            starts = [max(-pads[a - first][0], 0) for a in axes]
            ends = [shape[a] - max(-pads[a - first][1], 0) for a in axes]
            bounds = [g.ints(values, _child(name, key)) for values, key in
                      ((starts, "crop_starts"), (ends, "crop_ends"), (axes, "crop_axes"))]
            current = g.step("Slice", [current, *bounds], _child(name, "crop"))
            for a, start, end in zip(axes, starts, ends):
                shape[a] = end - start

    def wrapped(source, start, end, axis, key):
        bounds = [g.ints([v], _child(name, k)) for v, k in ((start, "wrap_start"), (end, "wrap_end"),
                                                              (axis, "wrap_axis"))]
        return g.step("Slice", [source, *bounds], _child(name, key))

    if mode == "circular":
        crop()
        for a, (before, after) in enumerate(pads, start=first):
            if before > 0 or after > 0:
                size, parts = shape[a], [current]
                if before > 0:
                    parts.insert(0, wrapped(current, size - before, size, a, f"before{a}"))
                if after > 0:
                    parts.append(wrapped(current, 0, after, a, f"after{a}"))
                current = g.step("Concat", parts, _child(name, f"wrap{a}"), axis=a)
                shape[a] += max(before, 0) + max(after, 0)
    else:
        grow = [(max(before, 0), max(after, 0)) for before, after in pads]
        if any(map(any, grow)):
            zeros = [0] * first
            amounts = zeros + [b for b, _ in grow] + zeros + [a for _, a in grow]     # [begins…, ends…]
            inputs = [current, g.ints(amounts, _child(name, "pads"))]
            if mode == "constant":
                inputs.append(g.scalar(value, _child(name, "value")))
            current = g.step("Pad", inputs, _child(name, "pad"), mode=_ONNX_PAD_MODES[mode])
            for a, (b, e) in enumerate(grow, start=first):
                shape[a] += b + e
        crop()
    if len(g.nodes) == emitted:
        return g.node("Identity", [x.name], y, name)
    last = g.nodes[-1]                  # nothing reads it yet: it takes the converter's name
    last.name = last.output[0] = g.unique(name)
    return Tensor(last.output[0], y)


def _pad_layer(g, module, x, name):
    """ZeroPad, ConstantPad, ReflectionPad, ReplicationPad, CircularPad (1-d and 2-d): ``_padded``."""
    y = module(x.value)
    if not any(module.padding):
        return Tensor(x.name, y)
    return _padded(g, x, module.pads, module.mode, module.value, name, y)


# -- pooling -----------------------------------------------------------------------------------------
def _explicit_pads(x_shape, module):
    """([begin of each spatial axis, …, end of each, …], output sizes) of a 1-d or 2-d pooling, with ceil_mode
    turned into extra end padding, so that every runtime computes PyTorch's output size (its last window starts
    inside input or padding)."""
    before, after, out = [], [], []
    for axis in range(len(module.kernel_size)):
        size, k, s, p = x_shape[2 + axis], module.kernel_size[axis], module.stride[axis], module.padding[axis]
        d = module.dilation[axis]
        o = pool_output_size(size, k, s, p, d, module.ceil_mode)
        before.append(p)
        after.append(max(p, (o - 1) * s + d * (k - 1) + 1 - size - p))
        out.append(o)
    return before + after, out


def _refuse_indices(module, name):
    """A pooling with return_indices=True returns (output, indices); a graph path carries one tensor."""
    if getattr(module, "return_indices", False):
        raise ONNXExportError(f"cannot export layer '{name}' ({type(module).__name__} with return_indices=True) on "
                              f"its own: it returns (output, indices); give the module that uses the indices a "
                              f"converter calling juanji.interop.onnx.max_pool_with_indices and max_unpool")


def max_pool_attributes(x_shape, module) -> dict:
    """The attributes of the MaxPool node of a MaxPool1d/MaxPool2d on an input of ``x_shape``."""
    pads, _ = _explicit_pads(x_shape, module)
    return dict(kernel_shape=list(module.kernel_size), strides=list(module.stride), pads=pads,
                dilations=list(module.dilation))


def _max_pool(g, module, x, name):
    """MaxPool1d and MaxPool2d."""
    _refuse_indices(module, name)
    return g.node("MaxPool", [x.name], module(x.value), name, **max_pool_attributes(x.value.shape, module))


def max_pool_with_indices(g, module, x, name) -> tuple[Tensor, Tensor]:
    """(output, indices) of a MaxPool1d/MaxPool2d with return_indices=True, for the converter of a module that
    routes the indices (an encoder-decoder's MaxUnpool).  ONNX MaxPool's second output counts over the whole
    tensor, ((n·C + c)·H + h)·W + w; Mod by the plane's size gives PyTorch's per-plane indices."""
    y, indices = module(x.value)
    output, raw = g.unique(name), g.unique(_child(name, "flat_indices"))
    g.emit("MaxPool", [x.name], [output, raw], output, **max_pool_attributes(x.value.shape, module))
    plane = g.ints(int(np.prod(x.value.shape[2:])), _child(name, "plane"))
    return Tensor(output, y), g.node("Mod", [raw, plane], indices, _child(name, "indices"))


def zeros_of_shape(g, shape: str, name: str) -> str:
    """A float32 tensor of zeros whose shape is the int64 tensor named ``shape`` (ConstantOfShape); its name."""
    from onnx import TensorProto, helper
    return g.step("ConstantOfShape", [shape], name, value=helper.make_tensor("value", TensorProto.FLOAT, [1], [0.0]))


def max_unpool(g, module, x, indices, name, output_size=None) -> Tensor:
    """MaxUnpool1d/MaxUnpool2d of x at PyTorch's per-plane ``indices`` (Tensors): ScatterElements of the flattened
    planes into zeros of (N, C, H·W) — N from the input's shape, the batch axis staying symbolic — then Reshape."""
    y = module(x.value, indices.value, output_size)
    c, plane = y.shape[1], int(np.prod(y.shape[2:]))

    flat = g.ints([0, c, -1], _child(name, "flat_shape"))
    batch = g.step("Slice", [g.step("Shape", [x.name], _child(name, "shape")), g.ints([0], _child(name, "zero")),
                             g.ints([1], _child(name, "one"))], _child(name, "batch"))
    shape = g.step("Concat", [batch, g.ints([c, plane], _child(name, "plane_shape"))], _child(name, "zeros_shape"),
                   axis=0)
    zeros = zeros_of_shape(g, shape, _child(name, "zeros"))
    flat_indices = g.step("Reshape", [indices.name, flat], _child(name, "flat_indices"))
    flat_values = g.step("Reshape", [x.name, flat], _child(name, "flat_values"))
    scattered = g.step("ScatterElements", [zeros, flat_indices, flat_values], _child(name, "scatter"), axis=2)
    return g.node("Reshape", [scattered, g.ints([0, c, *y.shape[2:]], _child(name, "shape_out"))], y, name)


def _max_unpool(g, module, x, name):
    raise ONNXExportError(f"cannot export layer '{name}' ({type(module).__name__}) on its own: it takes the indices "
                          f"of a MaxPool as a second input; give the module that routes them a converter calling "
                          f"juanji.interop.onnx.max_pool_with_indices and max_unpool")


def _avg_pool(g, module, x, name):
    """AvgPool1d and AvgPool2d: AveragePool dividing by the real (unpadded) cells; with count_include_pad, a
    constant factor then turns that into PyTorch's divisor, which counts declared padding but not the ceil_mode
    overhang.  With divisor_override: the window sums (AveragePool counting every cell, times the window's size)
    divided by it."""
    pads, out = _explicit_pads(x.value.shape, module)
    y = module(x.value)
    kernel = list(module.kernel_size)
    override = getattr(module, "divisor_override", None)
    if override is not None:
        pooled = g.step("AveragePool", [x.name], _child(name, "pool"), kernel_shape=kernel,
                        strides=list(module.stride), pads=pads, count_include_pad=1)
        return g.node("Mul", [pooled, g.scalar(np.prod(kernel) / override, _child(name, "divisor_override"))], y, name)
    pooled = g.node("AveragePool", [x.name], y, _child(name, "pool") if module.count_include_pad else name,
                    kernel_shape=kernel, strides=list(module.stride), pads=pads, count_include_pad=0)
    if not module.count_include_pad:
        return pooled
    real, counted = [], []
    for axis in range(len(kernel)):
        size, k, s, p = x.value.shape[2 + axis], module.kernel_size[axis], module.stride[axis], module.padding[axis]
        start = np.arange(out[axis]) * s - p
        real.append(np.minimum(start + k, size) - np.maximum(start, 0))
        counted.append(np.minimum(start + k, size + p) - start)
    factor = functools.reduce(np.multiply.outer, real) / functools.reduce(np.multiply.outer, counted)
    if np.all(factor == 1):
        return pooled
    return g.node("Mul", [pooled.name, g.constant(factor, _child(name, "divisor_ratio"))], y, name)


def _adaptive(g, x, output_size, name, pool_op, global_op):
    """Adaptive pooling of 1 or 2 spatial axes into PyTorch's bins: a global pool, one uniform pool when the bins
    tile the input, else along each axis in turn (the last first) one pool per bin, concatenated — max and mean of
    a rectangle are separable; an axis whose bins are its cells is left as it is.  Returns the output's name."""
    spatial = x.value.shape[2:]
    dims = len(spatial)
    if all(o == 1 for o in output_size):
        return g.step(global_op, [x.name], name)
    if all(size % o == 0 for size, o in zip(spatial, output_size)):
        kernel = [size // o for size, o in zip(spatial, output_size)]
        return g.step(pool_op, [x.name], name, kernel_shape=kernel, strides=kernel)
    current = x.name
    for axis in reversed([a for a in range(dims) if spatial[a] != output_size[a]]):
        pieces = []
        for i, (start, end) in enumerate(adaptive_bins(spatial[axis], output_size[axis])):
            bounds = [g.ints([v], _child(name, key)) for key, v in (("start", start), ("end", end), ("axis", axis + 2))]
            piece = g.step("Slice", [current, *bounds], _child(name, f"bin{axis + 2}_{i}"))
            kernel = [1] * dims
            kernel[axis] = end - start
            pieces.append(g.step(pool_op, [piece], _child(name, f"pool{axis + 2}_{i}"), kernel_shape=kernel))
        current = g.step("Concat", pieces, _child(name, f"axis{axis + 2}") if axis else name, axis=axis + 2)
    return current


def _adaptive_avg_pool(g, module, x, name):
    """AdaptiveAvgPool1d/2d (None in output_size: that axis's input size)."""
    size = module.resolved_output_size(x.value.shape[2:])
    return Tensor(_adaptive(g, x, size, name, "AveragePool", "GlobalAveragePool"), module(x.value))


def _adaptive_max_pool(g, module, x, name):
    """AdaptiveMaxPool1d/2d (refused with return_indices)."""
    _refuse_indices(module, name)
    size = module.resolved_output_size(x.value.shape[2:])
    return Tensor(_adaptive(g, x, size, name, "MaxPool", "GlobalMaxPool"), module(x.value))


def _global_pool(op_type):
    def convert(g, module, x, name):
        pooled = g.step(op_type, [x.name], _child(name, "pool"))
        return g.node("Flatten", [pooled], module(x.value), name, axis=1)
    convert.__name__ = f"_{op_type.lower()}"
    return convert


def _spatial_pyramid_pool(g, module, x, name):
    """Each level: adaptive max pool into l×l bins, flattened as (C, l, l); the levels concatenated."""
    levels = []
    for level in module.levels:
        pooled = _adaptive(g, x, (level, level), _child(name, f"level{level}"), "MaxPool", "GlobalMaxPool")
        levels.append(g.step("Flatten", [pooled], _child(name, f"level{level}_flat"), axis=1))
    return g.node("Concat", levels, module(x.value), name, axis=1)


# -- transposed convolutions and upsampling ---------------------------------------------------------
def _conv_transpose(g, module, x, name):
    """ConvTranspose1d/2d: ONNX's ConvTranspose has torch's weight layout (in, out/groups, k…), pads
    [begin…, end…] and output_padding added at the end, as torch.  onnxruntime refuses an output_padding of stride
    or more (torch allows it below the dilation): that one becomes less end padding, and where it exceeds the
    padding, a zero Pad at the end before the bias is added (those outputs receive nothing but the bias)."""
    weight, bias = module.params["weight"], module.params.get("bias")
    y = module(x.value)
    inputs = [x.name, g.constant(weight, _child(name, "weight"))]
    attributes = dict(kernel_shape=list(module.kernel_size), strides=list(module.stride),
                      dilations=list(module.dilation), group=module.groups)
    if all(op < s for op, s in zip(module.output_padding, module.stride)):
        if bias is not None:
            inputs.append(g.constant(bias, _child(name, "bias")))
        return g.node("ConvTranspose", inputs, y, name, pads=list(module.padding) * 2,
                      output_padding=list(module.output_padding), **attributes)
    ends = [p - op for p, op in zip(module.padding, module.output_padding)]
    grown = [max(-end, 0) for end in ends]
    current = g.step("ConvTranspose", inputs, _child(name, "conv") if any(grown) or bias is not None else name,
                     pads=list(module.padding) + [max(end, 0) for end in ends], **attributes)
    if any(grown):
        pads = g.ints([0] * (2 + len(grown)) + [0, 0] + grown, _child(name, "pads"))
        current = g.step("Pad", [current, pads], _child(name, "pad") if bias is not None else name)
    if bias is None:
        return Tensor(current, y)
    shaped = g.constant(bias.reshape(-1, *[1] * len(grown)), _child(name, "bias"))
    return g.node("Add", [current, shaped], y, name)


# mode → (Resize's mode, coordinate_transformation_mode, nearest_mode); nearest-exact's ⌊(o + ½)/k⌋ is
# round_prefer_ceil((o + ½)/k − ½)
_RESIZE = {"nearest": ("nearest", "asymmetric", "floor"),
           "nearest-exact": ("nearest", "half_pixel", "round_prefer_ceil"),
           "linear": ("linear", "half_pixel", None), "bilinear": ("linear", "half_pixel", None),
           "bicubic": ("cubic", "half_pixel", None)}


def _upsample(g, module, x, name):
    """Upsample (and UpsamplingNearest2d / UpsamplingBilinear2d).  Resize where it gives torch's values to float32
    rounding: every axis enlarged by an integer factor k, the nearest modes reading ⌊o/k⌋ (or ⌊(o + ½)/k⌋) as
    torch does there, the interpolating modes (bicubic: A = −0.75) without align_corners and k a power of two
    (bicubic: 1 or 2), where 1/k is exact.  Elsewhere Resize's
    own float32 coordinates (o/scale where torch takes o·(1/scale)) pick other pixels near ties and other
    weights, so the layer's own separable form is exported: a Gather of its source indices along each axis
    (nearest modes), or MatMul by its interpolation matrices, y = A_h · x · A_wᵀ (juanji.functional.upsample).
    'area' is adaptive average pooling."""
    y = module(x.value)
    spatial, size = x.value.shape[2:], y.shape[2:]
    if module.mode == "area":
        return Tensor(_adaptive(g, x, size, name, "AveragePool", "GlobalAveragePool"), y)
    factors = [o // n if o % n == 0 else 0 for n, o in zip(spatial, size)]
    scales = module.scale_factor if isinstance(module.scale_factor, tuple) else (module.scale_factor,) * len(size)
    torch_scales = None if module.scale_factor is None or module.recompute_scale_factor else scales
    nearest = module.mode in ("nearest", "nearest-exact")
    if nearest:
        exact = module.mode == "nearest-exact"
        sources = [upsample.nearest_indices(n, o, None if torch_scales is None else torch_scales[a], exact,
                                            x.value.dtype, len(size) == 2)
                   for a, (n, o) in enumerate(zip(spatial, size))]
        resizable = all(k and np.array_equal(source, (2 * np.arange(o) + exact) // (2 * k))
                        for k, source, o in zip(factors, sources, size))
    else:       # Resize's float32 weights are torch's to rounding where 1/k is exact (bicubic: k ≤ 2 only)
        allowed = (1, 2) if module.mode == "bicubic" else (1, 2, 4, 8, 16)
        resizable = not module.align_corners and all(
            k in allowed and (torch_scales is None or torch_scales[a] == k) for a, k in enumerate(factors))
    if resizable:
        mode, coordinates, nearest_mode = _RESIZE[module.mode]
        attributes = dict(mode=mode, coordinate_transformation_mode=coordinates)
        if nearest_mode:
            attributes["nearest_mode"] = nearest_mode
        if mode == "cubic":
            attributes.update(cubic_coeff_a=upsample.CUBIC_A, exclude_outside=0)
        factor = g.constant(np.array([1, 1, *factors], dtype=np.float32), _child(name, "scales"))
        return g.node("Resize", [x.name, "", factor], y, name, **attributes)
    if nearest:
        steps = [(a, "Gather", sources[a]) for a in range(len(size))]
    else:
        matrices = [upsample.interpolation_matrix(n, o, module.mode, bool(module.align_corners),
                                                  None if torch_scales is None else torch_scales[a], x.value.dtype,
                                                  len(size) == 2) for a, (n, o) in enumerate(zip(spatial, size))]
        steps = [(a, "MatMul", m) for a, m in enumerate(matrices) if m.shape != (m.shape[0],) * 2
                 or not np.array_equal(m, np.eye(m.shape[0]))]
    current = x.name
    for index, (a, op_type, array) in enumerate(reversed(steps)):       # the last axis first
        key = name if index == len(steps) - 1 else _child(name, f"axis{a + 2}")
        if op_type == "Gather":
            current = g.step("Gather", [current, g.constant(array, _child(name, f"indices{a + 2}"))], key, axis=a + 2)
        elif a == len(size) - 1:
            current = g.step("MatMul", [current, g.constant(array.T, _child(name, f"matrix{a + 2}"))], key)
        else:
            current = g.step("MatMul", [g.constant(array, _child(name, f"matrix{a + 2}")), current], key)
    return Tensor(current, y)


# -- blocks of the model zoo -------------------------------------------------------------------------
def _residual_block(g, module, x, name):
    """ResNet's block: ReLU(body(x) + downsample(x)), the body being its layers named in ``_body``, in order."""
    out = x
    for key in module._body:
        out = g.convert(getattr(module, key), out, _child(name, key))
    skip = g.convert(module.downsample, x, _child(name, "downsample"))
    total = g.node("Add", [out.name, skip.name], out.value + skip.value, _child(name, "add"))
    return g.convert(module.relu, total, _child(name, "relu"))


def _pad_shortcut(g, module, x, name):
    """x[:, :, ::s, ::s] followed by ``extra_channels`` zero channels."""
    s = module.stride

    bounds = [g.ints(values, _child(name, key)) for values, key in
              (([0, 0], "starts"), ([2**62, 2**62], "ends"), ([2, 3], "axes"), ([s, s], "steps"))]
    kept = g.step("Slice", [x.name, *bounds], _child(name, "subsample"))
    pads = g.ints([0, 0, 0, 0, 0, module.extra_channels, 0, 0], _child(name, "pads"))
    return g.node("Pad", [kept, pads], module(x.value), name)


def _dense_layer(g, module, x, name):
    """DenseNet's layer: [x, F(x)] along the channels, F being the layer's children in order."""
    new = _sequential(g, module, x, name)
    return g.node("Concat", [x.name, new.name], np.concatenate([x.value, new.value], axis=1),
                  _child(name, "concat"), axis=1)


def _squeeze_excitation(g, module, x, name):
    """x · gate(x): the gate's layers (global average pool, fc1, activation, fc2, scale activation), then a Mul
    broadcasting the (N, C, 1, 1) gate over x."""
    scale = x
    for key in module.GATE:
        scale = g.convert(getattr(module, key), scale, _child(name, key))
    return g.node("Mul", [x.name, scale.name], x.value * scale.value, name)


def _inverted_residual(g, module, x, name):
    """The body (and the stochastic depth, an identity in eval), plus x where the block has a shortcut."""
    out = x
    for key in module.branch():
        out = g.convert(getattr(module, key), out, _child(name, key))
    if not module.use_res_connect:
        return out
    return g.node("Add", [out.name, x.name], out.value + x.value, _child(name, "add"))


def _cn_block(g, module, x, name):
    """ConvNeXt's block: x + layer_scale · block(x) (the stochastic depth is an identity in eval), a Mul by the
    (C, 1, 1) scale broadcast over (N, C, H, W), then the Add."""
    branch = g.convert(module.block, x, _child(name, "block"))
    gamma = module.params["layer_scale"]
    scaled = g.node("Mul", [branch.name, g.constant(gamma, _child(name, "layer_scale"))], gamma * branch.value,
                    _child(name, "scale"))
    scaled = g.convert(module.stochastic_depth, scaled, _child(name, "stochastic_depth"))
    return g.node("Add", [scaled.name, x.name], scaled.value + x.value, _child(name, "add"))


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
    nn.LayerNorm: _layer_norm, nn.GroupNorm: _group_norm, nn.InstanceNorm1d: _instance_norm,
    nn.InstanceNorm2d: _instance_norm, nn.LocalResponseNorm: _local_response_norm,
    nn.ReLU: _simple("Relu"), nn.Sigmoid: _simple("Sigmoid"), nn.Tanh: _simple("Tanh"),
    nn.LeakyReLU: _simple("LeakyRelu", alpha=lambda m: float(m.negative_slope)),
    nn.Softmax: _along_dim("Softmax"), nn.LogSoftmax: _along_dim("LogSoftmax"),
    nn.Softmin: _along_dim("Softmax", negate=True),
    nn.Hardtanh: _clip, nn.Hardsigmoid: _simple("HardSigmoid", alpha=lambda m: 1 / 6, beta=lambda m: 0.5),
    nn.Hardswish: _hardswish, nn.SiLU: _silu, nn.Mish: _mish, nn.GELU: _gelu, nn.Softplus: _softplus,
    nn.ELU: _simple("Elu", alpha=lambda m: m.alpha),
    nn.SELU: _simple("Selu", alpha=lambda m: F.SELU_ALPHA, gamma=lambda m: F.SELU_SCALE), nn.PReLU: _prelu,
    nn.Flatten: _flatten, Permute: _simple("Transpose", perm=lambda m: list(m.dims)),
    nn.Unflatten: _unflatten, nn.PixelShuffle: _pixel_shuffle, nn.PixelUnshuffle: _pixel_unshuffle,
    **{cls: _pad_layer for cls in (nn.ZeroPad1d, nn.ZeroPad2d, nn.ConstantPad1d, nn.ConstantPad2d, nn.ReflectionPad1d,
                                   nn.ReflectionPad2d, nn.ReplicationPad1d, nn.ReplicationPad2d, nn.CircularPad1d,
                                   nn.CircularPad2d)},
    nn.MaxPool2d: _max_pool, nn.AvgPool2d: _avg_pool, nn.MaxPool1d: _max_pool, nn.AvgPool1d: _avg_pool,
    nn.AdaptiveAvgPool2d: _adaptive_avg_pool, AdaptiveMaxPool2d: _adaptive_max_pool,
    nn.AdaptiveAvgPool1d: _adaptive_avg_pool, nn.AdaptiveMaxPool1d: _adaptive_max_pool,
    nn.MaxUnpool1d: _max_unpool, nn.MaxUnpool2d: _max_unpool,
    nn.ConvTranspose1d: _conv_transpose, nn.ConvTranspose2d: _conv_transpose, nn.Upsample: _upsample,
    nn.GlobalAvgPool2d: _global_pool("GlobalAveragePool"), GlobalMaxPool1d: _global_pool("GlobalMaxPool"),
    SpatialPyramidPool2d: _spatial_pyramid_pool,
    ResidualBlock: _residual_block, PadShortcut: _pad_shortcut, DenseLayer: _dense_layer, GoogLeNet: _googlenet,
    SqueezeExcitation: _squeeze_excitation, InvertedResidual: _inverted_residual,
    LayerNorm2d: _layer_norm_2d, CNBlock: _cn_block,
}


def to_onnx(model: nn.Module, input_shape=None, input_dtype=None, opset: int = DEFAULT_OPSET,
            normalization=None, graph_name: str | None = None, expose=()):
    """The ``onnx.ModelProto`` of ``model`` (checked with ``onnx.checker``); see ``export``.  ``expose``: dotted
    names of layers (as ``model.named_modules`` gives them; "input": the normalised input) whose outputs are
    graph outputs too, after the logits and in that order (a page showing feature maps reads them)."""
    g = GraphBuilder(checked_opset(opset))
    y, graph_input = trace(g, model, input_shape, input_dtype, normalization)
    shown = exposed(g, expose, lambda name: g.traced[name].name, "/output")
    return finished(g, model, [graph_input], [float_info(t) for t in (y, *shown)], graph_name)


def checked_opset(opset) -> int:
    import onnx
    newest = onnx.defs.onnx_opset_version()
    if not isinstance(opset, int) or not MIN_OPSET <= opset <= newest:
        raise ONNXExportError(f"opset must be an int from {MIN_OPSET} to {newest} (the newest this onnx "
                              f"package knows), got {opset!r}")
    return opset


def trace(g: GraphBuilder, model: nn.Module, input_shape=None, input_dtype=None, normalization=None):
    """Convert ``model`` into ``g`` on a sample batch of one, in eval mode: (its output Tensor, the graph input
    "input" (N, *input_shape) as an ``onnx.ValueInfoProto``); the options as ``export``'s."""
    import onnx
    from onnx import helper

    input_shape = tuple(input_shape or getattr(model, "input_shape", ()))
    if not input_shape:
        raise ONNXExportError(f"{type(model).__name__} has no input_shape; pass input_shape=(C, H, W)")
    dtype = np.dtype(input_dtype or getattr(model, "input_dtype", np.float32))
    if normalization is not None and dtype.kind != "f":
        raise ONNXExportError("normalization applies to float (image) inputs only")
    elem = {np.dtype(np.float32): onnx.TensorProto.FLOAT, np.dtype(np.int64): onnx.TensorProto.INT64}
    if np.dtype(np.float32 if dtype.kind == "f" else dtype) not in elem:
        raise ONNXExportError(f"input dtype {dtype} cannot be exported; use float32 or int64")
    sample = np.zeros((1, *input_shape), dtype=dtype if dtype.kind != "f" else model.dtype or np.float32)

    x = Tensor(g.unique("input"), sample)
    if normalization is not None:
        mean, std = (np.asarray(v, dtype=np.float32).reshape(-1, *[1] * (len(input_shape) - 1))
                     for v in normalization)
        centred = g.step("Sub", [x.name, g.constant(mean, "normalize.mean")], "normalize.centre")
        x = g.node("Div", [centred, g.constant(std, "normalize.std")], sample, "normalize")
    g.traced["input"] = x
    was_training = model.training
    model.eval()
    try:
        y = g.convert(model, x, "")
    finally:
        model.train(was_training)
    if y.name == "input" or not g.nodes or g.nodes[-1].output[0] != y.name:
        y = g.node("Identity", [y.name], y.value, "output")
    graph_input = helper.make_tensor_value_info("input", elem[np.dtype(np.float32 if dtype.kind == "f" else dtype)],
                                                ["N", *input_shape])
    return y, graph_input


def exposed(g: GraphBuilder, names, source_of, suffix: str) -> list[Tensor]:
    """An Identity node named name + suffix for each of ``names`` (layers ``g`` converted; "input" too), reading
    the tensor named ``source_of(name)``, of the shape of the layer's output: the graph outputs a caller asked
    for, in that order (a layer passed through, as Dropout in eval, has no tensor of its own to name)."""
    missing = [name for name in names if name not in g.traced]
    if missing:
        raise ONNXExportError(f"cannot expose {', '.join(map(repr, missing))}: no such layer was converted")
    return [g.node("Identity", [source_of(name)], g.traced[name].value, f"{name}{suffix}") for name in names]


def float_info(t: Tensor):
    """A float32 graph output, or input (a seed of the backward pass), named as t: (N, *t's shape without its batch
    axis)."""
    import onnx
    from onnx import helper
    return helper.make_tensor_value_info(t.name, onnx.TensorProto.FLOAT, ["N", *t.value.shape[1:]])


def finished(g: GraphBuilder, model: nn.Module, inputs, outputs, graph_name: str | None = None):
    """The checked ``onnx.ModelProto`` of the nodes and initialisers of ``g``, with these graph inputs and outputs
    (``onnx.ValueInfoProto``s)."""
    import onnx
    from onnx import helper

    graph = helper.make_graph(g.nodes, graph_name or getattr(model, "name", None) or type(model).__name__,
                              inputs, outputs, initializer=g.initializers)
    opsets = [helper.make_opsetid("", g.opset)]
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
    proto = to_onnx(model, input_shape, input_dtype, opset, normalization)
    save(proto, path)
    return proto


def save(proto, path) -> None:
    """Write the ``onnx.ModelProto`` to ``path`` atomically (a failed write leaves ``path`` as it was)."""
    from ..io import write_atomically
    data = proto.SerializeToString()
    write_atomically(os.fspath(path), lambda f: f.write(data))
