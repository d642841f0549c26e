"""What one cell of a layer's output is made of, so that the page can redo its arithmetic with the numbers the
network used: a batch norm's statistics, a residual block's two summands F(x) and shortcut(x), the branches a
concatenation stacks, or that the layer works channel by channel.  Convolutions and poolings are described by
their kernel and window elsewhere (``serve.views.kernels`` and ``window``)."""
from __future__ import annotations

import numpy as np

from .. import nn
from ..models.convnext import CNBlock
from ..models.densenet import DenseLayer
from ..models.mobile_blocks import InvertedResidual
from ..models.resnet import PadShortcut, ResidualBlock
from ..nn.normalization import scale_and_shift

# Layers whose map k is a function of map k of their input alone, cell by cell or (adaptive pooling) over a
# region of it: there "its input: map k" is true.
PER_CHANNEL = (nn.ELU, nn.GELU, nn.SELU, nn.SiLU, nn.Hardsigmoid, nn.Hardswish, nn.Hardtanh, nn.LeakyReLU, nn.Mish,
               nn.PReLU, nn.ReLU, nn.ReLU6, nn.Sigmoid, nn.Softplus, nn.Tanh, nn.Dropout, nn.Dropout2d, nn.Identity,
               nn.AdaptiveAvgPool2d, nn.AdaptiveMaxPool2d)


def parts(layer, x) -> dict | None:
    """The numbers behind ``layer``'s output for its input x (1, C, H, W), the layer in eval mode and run under
    ``no_grad``; None for a layer this module does not take apart (its cells come from all of x).

    - ``{"kind": "batch_norm", mean, var, eps, weight, bias, running}``: y[k] = (x[k] − μ_k) / √(σ²_k + ε)·γ_k + β_k;
      μ, σ², γ, β each (C,), the statistics those the layer normalises with (``running``: the running ones, as
      in eval; else x's own);
    - ``{"kind": "residual", body, shortcut, relu, body_layers, shortcut_reads}``: y = [ReLU](F(x) + S(x)),
      F(x) and S(x) each (C', H', W'); ``shortcut_reads`` {"kind": "identity"} (S(x)[k] = x[k]),
      {"kind": "subsample", stride, channels} (S(x)[k, i, j] = x[k, s·i, s·j] for k < channels, 0 beyond) or
      {"kind": "layers", layers} (a projection that mixes channels);
    - ``{"kind": "concat", branches: [{name, channels, identity, layers}]}``: the branches' outputs one after
      the other along channels, map c of the output being map c − (the channels before) of its branch, and of
      x itself where the branch is the identity;
    - ``{"kind": "per_channel"}``: map k is computed from map k of x alone (``PER_CHANNEL``).
    """
    if isinstance(layer, nn.BatchNorm2d):
        return _batch_norm(layer, x)
    if isinstance(layer, ResidualBlock):
        body = x
        for name in layer._body:                       # the block's own order of its body's layers
            body = getattr(layer, name)(body)
        return _residual(body, layer.downsample(x), True, layer._body, layer.downsample)
    if isinstance(layer, InvertedResidual) and layer.use_res_connect:
        body = x
        for name in layer.branch():
            body = getattr(layer, name)(body)
        return _residual(body, x, False, layer.branch(), nn.Identity())
    if isinstance(layer, CNBlock):
        body = layer.stochastic_depth(layer.params["layer_scale"] * layer.block(x))
        return _residual(body, x, False, ["γ ⊙ block"], nn.Identity())
    if isinstance(layer, DenseLayer):
        return {"kind": "concat", "branches": [
            {"name": "input", "channels": layer.in_channels, "identity": True, "layers": []},
            {"name": "F", "channels": layer.conv2.out_channels, "identity": False, "layers": _names(layer)}]}
    if isinstance(layer, nn.Concat):
        return {"kind": "concat", "branches": [
            {"name": name, "channels": int(branch(x).shape[1]), "identity": isinstance(branch, nn.Identity),
             "layers": _names(branch)} for name, branch in layer.named_children()]}
    if isinstance(layer, PER_CHANNEL):
        return {"kind": "per_channel"}
    return None


def _batch_norm(layer, x) -> dict:
    mean, var = layer.buffers.get("running_mean"), layer.buffers.get("running_var")
    running = not layer.training and mean is not None
    if not running:                                    # the batch's statistics (biased variance, as the layer)
        mean, var = x.mean(axis=(0, 2, 3)), x.var(axis=(0, 2, 3))
    gamma, beta = scale_and_shift(layer, x.dtype)
    return {"kind": "batch_norm", "mean": mean, "var": var, "eps": float(layer.eps), "weight": gamma, "bias": beta,
            "running": running}


def _residual(body, shortcut, relu: bool, body_layers, shortcut_layer) -> dict:
    if isinstance(shortcut_layer, nn.Identity):
        reads = {"kind": "identity"}
    elif isinstance(shortcut_layer, PadShortcut):
        reads = {"kind": "subsample", "stride": shortcut_layer.stride,
                 "channels": int(shortcut.shape[1]) - shortcut_layer.extra_channels}
    else:
        reads = {"kind": "layers", "layers": _names(shortcut_layer)}
    return {"kind": "residual", "body": body[0], "shortcut": shortcut[0], "relu": relu,
            "body_layers": list(body_layers), "shortcut_reads": reads}


def _names(module) -> list[str]:
    """The types of a branch's layers in order ("Conv2d", "BatchNorm2d" …), or of the branch itself."""
    children = [type(child).__name__ for _, child in module.named_children()]
    return children or [type(module).__name__]
