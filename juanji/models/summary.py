"""A model's layer table, as torchinfo's / Keras' ``summary``: each leaf layer's output shape,
parameter count and multiply-accumulates (MACs), from one forward pass on a zero batch of one.

MACs count the multiply-adds of layers with a weight matrix or kernel (Conv, Linear): per sample,
(output elements) × (weight elements per output) = K·H'·W' · (C/groups)·R·S for a conv,
(input elements) × (weight elements per input) = C·H·W · (K/groups)·R·S for a transposed conv, out·in for
a Linear; biases, BN, activations and pooling are not counted.  1 MAC = 2 FLOPs.
"""
from __future__ import annotations

import functools
import inspect
import math
from dataclasses import dataclass, field

import numpy as np


@dataclass
class Row:
    name: str                       # dotted name, as in state_dict
    kind: str                       # the layer's class
    output_shape: tuple | None      # per sample (without the batch axis); None: not run by forward
    params: int
    macs: int
    kept: int = 0                   # values its kernels keep from forward to backward (a conv's columns)
    scratch: dict = field(default_factory=dict)     # {key: values} of the thread's scratch memory it uses


def layer_macs(module, output, input=None) -> int:
    """Multiply-accumulates of one sample through ``module`` whose output (batch of 1) is ``output``; a transposed
    convolution (weight (C, K/groups, R, S)) multiplies each of its ``input``'s elements by K/groups·R·S weights."""
    weight = module.params.get("weight")
    if weight is None or weight.ndim < 2 or getattr(module, "lookup", False):     # a table read: no multiply-adds
        return 0
    if getattr(module, "elementwise_weight", False):     # a norm's per-element scale (LayerNorm over (C, H, W))
        return 0
    if getattr(module, "transposed", False) and input is not None:
        return input[0].size * math.prod(weight.shape[1:])
    return output[0].size * math.prod(weight.shape[1:])


def summarize(model, input_shape=None) -> list[Row]:
    """One Row per leaf module in call order — and per container holding parameters of its own (ConvNeXt's block
    its layer scale), after its children — then any of them with parameters that the forward pass did not
    run (e.g. GoogLeNet's auxiliary heads in eval mode).  ``input_shape`` is one sample's shape, (C, H, W)
    by default ``model.input_shape``; the zeros have ``model.input_dtype`` where a model sets one (token
    ids), else the parameters' dtype.  The model runs in eval mode and is restored to its previous mode."""
    shape = tuple(input_shape or model.input_shape)
    leaves = [(name, module) for name, module in model.named_modules() if not module._modules or module.params]
    rows, ran = [], set()

    def record(name):
        def hook(module, inputs, y):
            y = y[0] if isinstance(y, tuple) else y         # a pooling's (output, indices)
            kept, scratch = (module.workspace_values(inputs[0].shape) if hasattr(module, "workspace_values")
                             else ({}, {}))
            rows.append(Row(name, type(module).__name__, y.shape[1:], _count(module),
                            layer_macs(module, y, inputs[0] if inputs else None), sum(kept.values()), scratch))
            ran.add(name)
        return hook

    was_training = model.training
    model.eval()
    handles = [module.register_forward_hook(record(name)) for name, module in leaves]
    try:
        model(np.zeros((1,) + shape, dtype=getattr(model, "input_dtype", None) or model.dtype or np.float32))
    finally:
        for handle in handles:
            handle.remove()
        model.train(was_training)
    rows += [Row(name, type(module).__name__, None, _count(module), 0)
             for name, module in leaves if name not in ran and module.params]
    return rows


def _count(module) -> int:
    return sum(p.size for p in module.params.values())


def _si(count: int) -> str:
    """1814073344 → '1.81 G', 416520 → '416.5 K'."""
    for scale, prefix in ((1e9, "G"), (1e6, "M"), (1e3, "K")):
        if count >= scale:
            return f"{count / scale:.{2 if prefix == 'G' else 1}f} {prefix}"
    return f"{count} "


def format_summary(rows: list[Row], input_shape) -> str:
    """The table of ``rows`` with totals: parameters, MACs (and FLOPs = 2·MACs), activation memory."""
    header = ("Layer", "Type", "Output shape", "Params", "MACs")
    lines = [(r.name or "(model)", r.kind,
              "×".join(map(str, r.output_shape)) if r.output_shape is not None else "not run",
              f"{r.params:,}", f"{r.macs:,}") for r in rows]
    widths = [max(len(line[i]) for line in [header] + lines) for i in range(5)]

    def fmt(line):
        return "  ".join(c.ljust(w) if i < 3 else c.rjust(w) for i, (c, w) in enumerate(zip(line, widths)))

    rule = "-" * len(fmt(header))
    total_params = sum(r.params for r in rows)
    total_macs = sum(r.macs for r in rows)
    activations = sum(math.prod(r.output_shape) for r in rows if r.output_shape is not None)
    macs = f"Total MACs: {total_macs:,} per sample ({_si(total_macs)}MACs = {_si(2 * total_macs)}FLOPs)"
    memory = f"Layer outputs: {activations:,} values per sample ({activations * 4 / 2 ** 20:.1f} MiB in float32)"
    return "\n".join([fmt(header), rule, *map(fmt, lines), rule, f"Input: {'×'.join(map(str, input_shape))}",
                      f"Total params: {total_params:,}", macs, memory])


WEIGHT_ONLY = ("num_classes", "in_channels", "vocab_size")    # they size weight matrices, not layer outputs

# (parameters, activation values per sample, kernel workspace values per sample) of each zoo builder at its
# defaults, as ``measure`` counts them (tests/models/test_memory_estimate.py checks every entry).
AT_DEFAULTS = {
    "alexnet": (61100840, 1107432, 6046587),
    "convnext_tiny": (28589128, 33571048, 1241856),
    "densenet121": (7978856, 38613480, 44323948),
    "densenet_bc_100": (769210, 10104118, 9514572),
    "densenet_bc_40": (176170, 2659858, 3708492),
    "efficientnet_b0": (5288548, 19875520, 1182484),
    "googlenet": (6624904, 11100024, 9753136),
    "lenet5": (61706, 15002, 56248),
    "lenet5_classic": (61706, 15002, 56248),
    "mobilenet_v1": (4231976, 15131112, 1184536),
    "mobilenet_v2": (3504872, 19466856, 1143768),
    "mobilenet_v3_small": (2542856, 4107344, 1071968),
    "resnet18": (11689512, 8055272, 19296768),
    "resnet20": (269722, 651402, 1741952),
    "resnet34": (21797672, 12445672, 30586368),
    "resnet50": (25557032, 36056552, 19877888),
    "resnet56": (853018, 1855626, 4838528),
    "spp_net": (42559690, 413834, 2170384),
    "text_cnn": (32261, 8453, 9728),
    "unet": (117243, 295568, 935280),
    "vgg11": (132863336, 16458216, 43790592),
    "vgg11_bn": (132868840, 23884264, 43790592),
    "vgg13": (133047848, 26092008, 111226368),
    "vgg13_bn": (133053736, 38334952, 111226368),
    "vgg16": (138357544, 28701160, 122967552),
    "vgg16_bn": (138365992, 42248680, 122967552),
    "vgg19": (143667240, 31310312, 134708736),
    "vgg19_bn": (143678248, 46162408, 134708736),
    "vgg_small": (388714, 275786, 818640),
    "zfnet": (62357608, 3407432, 8276784),
}


def estimate_memory(builder, batch_size: int = 1, measured: bool = False, **kwargs) -> tuple[int, int, int, int]:
    """(parameters, activation values per sample, kernel workspace values per sample, bytes to train on batches
    of ``batch_size``) of ``builder(**kwargs)``, without building it at that size.

    The counts at a reference are scaled up by the ratio of every numeric argument above its default
    (squared for ``input_size``, ``width_mult`` and ``base_channels``, which grow both image sides or both
    channel counts, and twice that for ``input_size`` and ``seq_len``, whose valid convolutions cut a
    constant off; for ``WEIGHT_ONLY`` arguments, each of which sizes one layer no larger than the whole,
    the parameters only, by 1 + Σ (ratio − 1)): an upper bound, as layers grow with their arguments.  The reference is
    the builder's defaults (``AT_DEFAULTS``: free), or with ``measured`` the model built with every
    argument cut to at most its default (``measure``: exact when none was cut).
    Bytes, float32: parameters ×4 (weights, gradients, two optimizer slots), activations ×3 per sample
    (outputs, cached inputs, gradients), and the kernels' workspace per sample (``measure``'s)."""
    defaults = {k: p.default for k, p in inspect.signature(builder).parameters.items()}
    probe, factor, param_factor = {}, 1.0, 1.0     # param_factor: 1 + Σ (ratio − 1), as each sizes one layer
    for key, value in kwargs.items():
        default = defaults.get(key)
        big = max(value) if isinstance(value, (tuple, list)) and value else value
        small = max(default) if isinstance(default, (tuple, list)) and default else default
        if (isinstance(big, (int, float)) and not isinstance(big, bool) and isinstance(small, (int, float))
                and 0 < small < big):
            ratio = (big / small) ** (2 if key in ("input_size", "width_mult", "base_channels") or big is not value else 1)
            if key in ("input_size", "seq_len"):    # valid convolutions: (s − 4)/(s₀ − 4) > s/s₀
                ratio *= 2
            if key in WEIGHT_ONLY:
                param_factor += ratio - 1
            else:
                factor *= ratio
            value = default
        probe[key] = tuple(value) if isinstance(value, list) else value
    reference = measure(builder, tuple(sorted(probe.items()))) if measured else AT_DEFAULTS[builder.__name__]
    params = math.ceil(reference[0] * factor * param_factor)
    activations, workspace = (math.ceil(values * factor) for values in reference[1:])
    return params, activations, workspace, 4 * (4 * params + (3 * activations + workspace) * batch_size)


@functools.lru_cache(maxsize=32)
def measure(builder, kwargs: tuple) -> tuple[int, int, int]:
    """(parameters, activation values per sample, kernel workspace values per sample) of
    ``builder(**dict(kwargs))``, built and run once.  The workspace: what every layer keeps from forward to
    backward (the convolutions' columns, on NumPy's kernels), and the thread's scratch memory, which holds
    each key's largest array (``Row.scratch``)."""
    rows = summarize(builder(**dict(kwargs)))
    scratch = {}
    for row in rows:
        for key, values in row.scratch.items():
            scratch[key] = max(scratch.get(key, 0), values)
    return (sum(r.params for r in rows), sum(math.prod(r.output_shape) for r in rows if r.output_shape is not None),
            sum(r.kept for r in rows) + sum(scratch.values()))
