"""The backward pass of a juanji model as ONNX operators: saliency, Grad-CAM's gradients and ZFNet's deconvnet
where only onnxruntime runs (the page of ``juanji export RUN --web DIR``).

    saliency_onnx(model, normalization=(mean, std), gradients=["features.3"])
        inputs  "input" (N, C, H, W), pixels as ``to_onnx``'s;  "seed" (N, K) = ∂S/∂logits (one-hot(c): S = score c)
        outputs "input_gradient" ∂S/∂x (N, C, H, W), x the network's (normalised) input, as ``viz.saliency``;
                then "L/gradient" = ∂S/∂(output of layer L) for each L of ``gradients`` (Grad-CAM's α)
    deconvnet_onnx(model, layers=["0", "3"], normalization=(mean, std))
        inputs  "input";  "L/signal" (N, *L's output shape) for each L of ``layers``: the signal put at L's output
        output  "projection" (N, C, H, W), as ``viz.deconvnet``; feed one nonzero signal at a time (the others
                0): the chain's ReLUs pass max(0, signal) back, and max(0, a + b) is not max(0, a) + max(0, b)

The graph is the forward pass (traced by ``juanji.interop.onnx``'s converters, which record here each layer's
input) followed by the backward pass, layer by layer from the logits down: each layer's dX from dY written as
ONNX operators by the function of ``BACKWARDS`` for its type, in the order of ``onnx.CONVERTERS`` and taking its
geometry from the same places.  A ReLU's mask is Where(x > 0, dY, 0); a convolution's dX is ConvTranspose with
the same weights (output_padding making up the rows a stride left unread); max pooling routes dY to the switch
of each window, the index of its first maximum (MaxPool's second output, as onnxruntime computes it: the first
in row-major order, as juanji and PyTorch; values equal only up to float32 rounding, sums taken in another order,
may tie-break otherwise), by ScatterElements adding where windows overlap; average poolings
spread dY / divisor over each window (a ConvTranspose with a kernel of ones), adaptive ones by their averaging
matrices; Linear is MatMul by W; BatchNorm in eval multiplies by γ/√(σ² + ε); a residual block sums the
gradients of its two branches.  A layer type without a backward stops the export with an ``ONNXExportError``
("saliency is not available for layer X …"); ScatterElements' reduction needs opset 16.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .. import nn
from ..functional import pool as pool_kernels
from ..models.resnet import PadShortcut, ResidualBlock
from ..viz.chain import layer_chain
from .onnx import (DEFAULT_OPSET, GraphBuilder, ONNXExportError, Tensor, _child, _explicit_pads, checked_opset,
                   conv_axes, exposed, finished, float_info, function_for, max_pool_attributes, qualified_type, trace,
                   zeros_of_shape)

MIN_BACKWARD_OPSET = 16         # ScatterElements with reduction="add" (max pooling's overlapping windows)


@dataclass
class BackwardBuilder(GraphBuilder):
    """A ``GraphBuilder`` that also keeps the input of every layer it converts (``inputs``, by dotted name), which
    the backward pass reads (a ReLU's mask, a pooling's switches, shapes); ``gradients``: the ONNX name of
    ∂S/∂(output) of each layer gone back through; ``seeds``: graph inputs added to the gradient at a layer's
    output; ``signal_relus``: the ReLUs that pass max(0, dY) back (the deconvnet's rule) instead of the mask.
    An array given to ``constant`` twice (a weight, by its forward and its backward) is stored once."""
    inputs: dict = field(default_factory=dict)
    gradients: dict = field(default_factory=dict)
    seeds: dict = field(default_factory=dict)
    signal_relus: frozenset = frozenset()
    _stored: dict = field(default_factory=dict)     # id(array) → (the array, kept alive so the id stays its, name)

    def convert(self, module, x, name):
        self.inputs[name] = x
        return super().convert(module, x, name)

    def constant(self, array, name: str) -> str:
        if id(array) not in self._stored:
            self._stored[id(array)] = array, super().constant(array, name)
        return self._stored[id(array)][1]


def backward(g: BackwardBuilder, module: nn.Module, dy: str | None, name: str) -> str | None:
    """The name of ∂S/∂(module's input) given ``dy``, the name of ∂S/∂(its output) (None: zero, nothing reached
    it yet), a seed for the layer added first."""
    if name in g.seeds:
        dy = g.seeds[name] if dy is None else g.step("Add", [dy, g.seeds[name]], _child(name, "seeded"))
    if dy is None:
        return None
    function = function_for(BACKWARDS, module)
    if function is None:
        raise ONNXExportError(f"saliency is not available for layer '{name or '(the model itself)'}' "
                              f"({qualified_type(module)}): juanji has no ONNX backward for it "
                              f"(juanji.interop.onnx_backward.BACKWARDS)")
    g.gradients[name] = dy
    return function(g, module, dy, name)


# -- containers ------------------------------------------------------------------------------------
def _sequential(g, module, dy, name):
    for child_name, child in reversed(list(module.named_children())):
        dy = backward(g, child, dy, _child(name, child_name))
    return dy


def _residual(g, module, dy, name):
    """dX = body.backward(dY) + shortcut.backward(dY)."""
    body = backward(g, module.body, dy, _child(name, "body"))
    skip = backward(g, module.shortcut, dy, _child(name, "shortcut"))
    return g.step("Add", [body, skip], _child(name, "backward"))


def _pass_through(g, module, dy, name):
    return dy


# -- layers with parameters --------------------------------------------------------------------------
def _output_padding(size, out, kernel, stride, dilation, before, after):
    """What a ConvTranspose adds at the end to give back ``size`` from ``out``: the rows a stride left unread,
    size − (s(out − 1) + d(k − 1) + 1 − before − after), always below the stride."""
    return size - (stride * (out - 1) + dilation * (kernel - 1) + 1 - before - after)


def _transposed(g, dy, x: Tensor, out_shape, weight, kernel, strides, dilations, before, after, group, name):
    """ConvTranspose of dY by ``weight`` (the convolution's own layout, (K, C/groups, k…)) back to x's shape."""
    spatial, out = x.value.shape[2:], out_shape[2:]
    padding = [_output_padding(*sizes) for sizes in zip(spatial, out, kernel, strides, dilations, before, after)]
    return g.step("ConvTranspose", [dy, g.constant(weight, _child(name, "backward.weight"))], _child(name, "backward"),
                  kernel_shape=list(kernel), strides=list(strides), dilations=list(dilations),
                  pads=list(before) + list(after), output_padding=padding, group=group)


def _conv(g, module, dy, name):
    """Conv2d and Conv1d with zero padding: dX = dY ∗ rot180(W), the transposed convolution with the same
    weights, strides, dilations and groups (a padding_mode other than zeros has no backward here)."""
    if module.explicit_padding:
        raise ONNXExportError(f"saliency is not available for layer '{name}' ({type(module).__name__} with "
                              f"padding_mode='{module.padding_mode}'): juanji has no ONNX backward for it")
    axes = conv_axes(module)
    before, after = zip(*module.pads[axes])
    weight = module.params["weight"]
    return _transposed(g, dy, g.inputs[name], g.traced[name].value.shape, weight, weight.shape[2:],
                       module.stride[axes], module.dilation[axes], before, after, module.groups, name)


def _linear(g, module, dy, name):
    """dX = dY · W (any leading axes)."""
    return g.step("MatMul", [dy, g.constant(module.params["weight"], _child(name, "backward.weight"))],
                  _child(name, "backward"))


def _batch_norm(g, module, dy, name):
    """In eval, with the running statistics: dX = dY · γ/√(σ² + ε), per channel (axis 1)."""
    if "running_var" not in module.buffers:
        raise ONNXExportError(f"saliency is not available for layer '{name}' ({type(module).__name__} with "
                              f"track_running_stats=False): it normalises by each batch's own statistics")
    var = module.buffers["running_var"].astype(np.float64)
    gamma = module.params.get("weight", np.ones_like(var))
    scale = gamma / np.sqrt(var + module.eps)
    ndim = g.inputs[name].value.ndim
    return g.step("Mul", [dy, g.constant(scale.reshape((-1,) + (1,) * (ndim - 2)), _child(name, "backward.scale"))],
                  _child(name, "backward"))


# -- activations and shapes ------------------------------------------------------------------------
def _relu(g, module, dy, name):
    """dX = dY · [x > 0] as Where(x > 0, dY, 0); in the deconvnet, max(0, dY) (``signal_relus``)."""
    if name in g.signal_relus:
        return g.step("Relu", [dy], _child(name, "backward"))
    positive = g.step("Greater", [g.inputs[name].name, g.scalar(0.0, _child(name, "zero"))], _child(name, "mask"))
    return g.step("Where", [positive, dy, g.scalar(0.0, _child(name, "zero"))], _child(name, "backward"))


def _leaky_relu(g, module, dy, name):
    """dX = dY where x > 0, slope · dY elsewhere."""
    positive = g.step("Greater", [g.inputs[name].name, g.scalar(0.0, _child(name, "zero"))], _child(name, "mask"))
    sloped = g.step("Mul", [dy, g.scalar(module.negative_slope, _child(name, "slope"))], _child(name, "sloped"))
    return g.step("Where", [positive, dy, sloped], _child(name, "backward"))


def _tanh(g, module, dy, name):
    """dX = dY · (1 − y²)."""
    y = g.traced[name].name
    square = g.step("Mul", [y, y], _child(name, "square"))
    slope = g.step("Sub", [g.scalar(1.0, _child(name, "one")), square], _child(name, "slope"))
    return g.step("Mul", [dy, slope], _child(name, "backward"))


def _sigmoid(g, module, dy, name):
    """dX = dY · y(1 − y)."""
    y = g.traced[name].name
    rest = g.step("Sub", [g.scalar(1.0, _child(name, "one")), y], _child(name, "rest"))
    slope = g.step("Mul", [y, rest], _child(name, "slope"))
    return g.step("Mul", [dy, slope], _child(name, "backward"))


def _flatten(g, module, dy, name):
    """dY reshaped to x's shape (the batch axis inferred)."""
    shape = g.inputs[name].value.shape
    return g.step("Reshape", [dy, g.ints([-1, *shape[1:]], _child(name, "backward.shape"))],
                  _child(name, "backward"))


# -- pooling -----------------------------------------------------------------------------------------
def _max_pool(g, module, dy, name):
    """MaxPool1d and MaxPool2d: each dY added at the switch of its window.  MaxPool's second output indexes the
    whole tensor, ((n·C + c)·H + h)·W + w; dY scattered there into zeros of x's size, then shaped as x."""
    x = g.inputs[name].name
    pooled, switches = g.unique(_child(name, "switch.pool")), g.unique(_child(name, "switches"))
    g.emit("MaxPool", [x], [pooled, switches], switches, **max_pool_attributes(g.inputs[name].value.shape, module))
    flat = g.ints([-1], _child(name, "backward.flat"))
    cells = g.step("Shape", [g.step("Reshape", [x, flat], _child(name, "cells"))], _child(name, "cell_count"))
    zeros = zeros_of_shape(g, cells, _child(name, "zeros"))
    routed = g.step("ScatterElements", [zeros, g.step("Reshape", [switches, flat], _child(name, "flat_switches")),
                                        g.step("Reshape", [dy, flat], _child(name, "flat_dy"))],
                    _child(name, "routed"), axis=0, reduction="add")
    return g.step("Reshape", [routed, g.step("Shape", [x], _child(name, "shape"))], _child(name, "backward"))


def _avg_pool(g, module, dy, name):
    """AvgPool1d and AvgPool2d: dY / divisor spread evenly over each window, a ConvTranspose of dY / divisor by a
    kernel of ones per channel.  Each window's divisor is juanji's own (the window sums of ones over their means:
    the real cells, those with the padding, or divisor_override)."""
    x = g.inputs[name]
    kernel, stride, padding, _ = module.geometry()
    spatial = (1,) * (2 - module.dims) + x.value.shape[2:]
    ones = np.ones((1, 1, *spatial))
    sums, _ = pool_kernels.avg_pool2d(ones, kernel, stride, padding, module.ceil_mode, True, 1)
    means, _ = pool_kernels.avg_pool2d(ones, kernel, stride, padding, module.ceil_mode, module.count_include_pad,
                                       module.divisor_override)
    divisor = np.divide(sums, means, out=np.ones_like(sums), where=means != 0)[0, 0]
    share = g.step("Div", [dy, g.constant(divisor.reshape(g.traced[name].value.shape[2:]), _child(name, "divisor"))],
                   _child(name, "share"))
    pads, _ = _explicit_pads(x.value.shape, module)
    dims = len(module.kernel_size)
    channels = x.value.shape[1]
    return _transposed(g, share, x, g.traced[name].value.shape, np.ones((channels, 1, *module.kernel_size)),
                       module.kernel_size, module.stride, (1,) * dims, pads[:dims], pads[dims:], channels, name)


def _spread(g, dy, spatial, out, name):
    """dX = A_hᵀ · dY · A_w (or dY · A_w in 1-d): adaptive average pooling's backward, with its averaging matrices
    (``functional.pool.adaptive_matrix``); an axis pooled to its own size needs none."""
    matrices = [pool_kernels.adaptive_matrix(size, o, np.float32) for size, o in zip(spatial, out)]
    last = matrices[-1]
    if last.shape[0] != last.shape[1]:
        dy = g.step("MatMul", [dy, g.constant(last, _child(name, "backward.columns"))], _child(name, "backward.w"))
    if len(matrices) == 2 and matrices[0].shape[0] != matrices[0].shape[1]:
        dy = g.step("MatMul", [g.constant(matrices[0].T, _child(name, "backward.rows")), dy],
                    _child(name, "backward.h"))
    return dy


def _adaptive_avg_pool(g, module, dy, name):
    """AdaptiveAvgPool1d/2d: ``_spread``."""
    spatial = g.inputs[name].value.shape[2:]
    return _spread(g, dy, spatial, module.resolved_output_size(spatial), name)


def _global_avg_pool(g, module, dy, name):
    """GlobalAvgPool2d, (N, C, H, W) → (N, C): dY seen as (N, C, 1, 1), then ``_spread``."""
    shape = g.inputs[name].value.shape
    cells = g.step("Reshape", [dy, g.ints([-1, shape[1], 1, 1], _child(name, "backward.cells"))],
                   _child(name, "backward.unflat"))
    return _spread(g, cells, shape[2:], (1, 1), name)


# -- blocks of the model zoo -------------------------------------------------------------------------
def _residual_block(g, module, dy, name):
    """ResNet's block: dZ = ReLU.backward(dY); dX = body.backward(dZ) + downsample.backward(dZ)."""
    dz = backward(g, module.relu, dy, _child(name, "relu"))
    body = dz
    for key in reversed(module._body):
        body = backward(g, getattr(module, key), body, _child(name, key))
    skip = backward(g, module.downsample, dz, _child(name, "downsample"))
    return g.step("Add", [body, skip], _child(name, "backward"))


def _pad_shortcut(g, module, dy, name):
    """dX[:, :, ::s, ::s] = dY[:, :C], 0 elsewhere: the first C channels of dY, spread to every s-th cell by a
    ConvTranspose of stride s with a 1×1 kernel of ones per channel."""
    x = g.inputs[name]
    channels, s = x.value.shape[1], module.stride
    bounds = [g.ints([value], _child(name, key)) for value, key in ((0, "backward.start"),
                                                                    (channels, "backward.end"), (1, "backward.axis"))]
    kept = g.step("Slice", [dy, *bounds], _child(name, "backward.kept"))
    out_shape = (None, channels, *g.traced[name].value.shape[2:])
    return _transposed(g, kept, x, out_shape, np.ones((channels, 1, 1, 1)), (1, 1), (s, s), (1, 1), (0, 0), (0, 0),
                       channels, name)


BACKWARDS = {
    nn.Sequential: _sequential, nn.Residual: _residual, nn.Identity: _pass_through, nn.Dropout: _pass_through,
    nn.Conv2d: _conv, nn.Conv1d: _conv, nn.Linear: _linear, nn.BatchNorm1d: _batch_norm, nn.BatchNorm2d: _batch_norm,
    nn.ReLU: _relu, nn.LeakyReLU: _leaky_relu, nn.Tanh: _tanh, nn.Sigmoid: _sigmoid, nn.Flatten: _flatten,
    nn.MaxPool2d: _max_pool, nn.MaxPool1d: _max_pool, nn.AvgPool2d: _avg_pool, nn.AvgPool1d: _avg_pool,
    nn.AdaptiveAvgPool2d: _adaptive_avg_pool, nn.AdaptiveAvgPool1d: _adaptive_avg_pool,
    nn.GlobalAvgPool2d: _global_avg_pool, ResidualBlock: _residual_block, PadShortcut: _pad_shortcut,
}


def _forward(model, input_shape, opset, normalization, signal_relus=frozenset()):
    """A ``BackwardBuilder`` holding ``model``'s forward pass: (it, the logits, the graph input)."""
    if checked_opset(opset) < MIN_BACKWARD_OPSET:
        raise ONNXExportError(f"saliency is not available at opset {opset}: its max pooling backward needs "
                              f"ScatterElements with reduction='add', opset {MIN_BACKWARD_OPSET} or later")
    if np.dtype(getattr(model, "input_dtype", np.float32)).kind != "f":
        raise ONNXExportError("saliency is not available for a model of token ids: its input has no gradient")
    g = BackwardBuilder(opset, signal_relus=frozenset(signal_relus))
    g.unique("seed")                                # graph inputs' names, kept from the nodes
    logits, graph_input = trace(g, model, input_shape, None, normalization)
    return g, logits, graph_input


def _at_input(g, dx, output: str):
    """The graph output ``output``: what the backward pass brought to the network's input (after the
    normalisation, as juanji's saliency and deconvnet)."""
    return g.node("Identity", [dx], g.traced["input"].value, output)


def saliency_onnx(model: nn.Module, input_shape=None, opset: int = DEFAULT_OPSET, normalization=None,
                  gradients=(), graph_name: str | None = None):
    """The checked ``onnx.ModelProto`` of ∂S/∂x (see the module docstring); ``gradients``: dotted names of layers
    whose ∂S/∂output are graph outputs too, after "input_gradient" and in that order."""
    g, logits, graph_input = _forward(model, input_shape, opset, normalization)
    seed = float_info(Tensor("seed", logits.value))
    dx = _at_input(g, backward(g, model, "seed", ""), "input_gradient")
    shown = exposed(g, gradients, lambda name: g.gradients[name], "/gradient")
    return finished(g, model, [graph_input, seed], [float_info(t) for t in (dx, *shown)],
                    graph_name and f"{graph_name} saliency")


def deconvnet_onnx(model: nn.Sequential, layers, input_shape=None, opset: int = DEFAULT_OPSET, normalization=None,
                   graph_name: str | None = None):
    """The checked ``onnx.ModelProto`` of ZFNet's deconvnet projection (see the module docstring): ``layers``, the
    ``viz.chain.layer_chain`` names that take a signal; the ReLUs of that chain pass max(0, signal) back, those
    inside a block the mask, as ``viz.deconvnet``."""
    chain = layer_chain(model)
    names = [name for name, _ in chain]
    unknown = [name for name in layers if name not in names]
    if unknown or not layers:
        raise ONNXExportError(f"the deconvnet takes signals at layers of {', '.join(names)}, not "
                              f"{', '.join(map(repr, unknown)) or 'none'}")
    g, _, graph_input = _forward(model, input_shape, opset, normalization,
                                 {name for name, layer in chain if isinstance(layer, nn.ReLU)})
    g.seeds = {name: g.unique(f"{name}/signal") for name in layers}
    signals = [float_info(Tensor(g.seeds[name], g.traced[name].value)) for name in layers]
    dx = None
    for name, layer in reversed(chain[:max(names.index(name) for name in layers) + 1]):
        dx = backward(g, layer, dx, name)
    return finished(g, model, [graph_input, *signals], [float_info(_at_input(g, dx, "projection"))],
                    graph_name and f"{graph_name} deconvnet")
