"""A model's layer table, as torchinfo's / Keras' ``summary``: each leaf layer's output shape,
parameter count and multiply-accumulates (MACs), from one forward pass on a zero batch of one.

MACs count the multiply-adds of layers with a weight matrix or kernel (Conv, Linear): per sample,
(output elements) × (weight elements per output) = K·H'·W' · (C/groups)·R·S for a conv,
out·in for a Linear; biases, BN, activations and pooling are not counted.  1 MAC = 2 FLOPs.
"""
from __future__ import annotations

import functools
import inspect
import math
from dataclasses import dataclass

import numpy as np


@dataclass
class Row:
    name: str                       # dotted name, as in state_dict
    kind: str                       # the layer's class
    output_shape: tuple | None      # per sample (without the batch axis); None: not run by forward
    params: int
    macs: int


def layer_macs(module, output) -> int:
    """Multiply-accumulates of one sample through ``module`` whose output (batch of 1) is ``output``."""
    weight = module.params.get("weight")
    if weight is None or weight.ndim < 2:
        return 0
    return output[0].size * math.prod(weight.shape[1:])


def summarize(model, input_shape=None) -> list[Row]:
    """One Row per leaf module in call order, then any leaf with parameters that the forward pass did not
    run (e.g. GoogLeNet's auxiliary heads in eval mode).  ``input_shape`` is one sample's shape, (C, H, W)
    by default ``model.input_shape``; the zeros have ``model.input_dtype`` where a model sets one (token
    ids), else the parameters' dtype.  The model runs in eval mode and is restored to its previous mode."""
    shape = tuple(input_shape or model.input_shape)
    leaves = [(name, module) for name, module in model.named_modules() if not module._modules]
    rows, ran = [], set()

    def recording(name, module):
        forward = module.forward

        def wrapper(x):
            y = forward(x)
            rows.append(Row(name, type(module).__name__, y.shape[1:], _count(module), layer_macs(module, y)))
            ran.add(name)
            return y
        return wrapper

    was_training = model.training
    model.eval()
    try:
        for name, module in leaves:
            object.__setattr__(module, "forward", recording(name, module))
        model(np.zeros((1,) + shape, dtype=getattr(model, "input_dtype", None) or model.dtype or np.float32))
    finally:
        for _, module in leaves:
            del module.__dict__["forward"]
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


def estimate_memory(builder, batch_size: int = 1, **kwargs) -> tuple[int, int, int]:
    """(parameters, activation values per sample, bytes to train on batches of ``batch_size``) of
    ``builder(**kwargs)``, estimated without building it at a size larger than its defaults.

    The model is measured (``reference``) with every numeric argument cut to at most its default; each
    argument that was cut then scales the counts up by its ratio (squared for ``input_size`` and
    ``width_mult``, which grow both image sides or both channel counts; the parameters only for
    ``WEIGHT_ONLY`` arguments): exact when no argument exceeds its default, an upper bound otherwise.  Bytes, float32: parameters ×4 (weights, gradients, two optimizer
    slots), activations ×3 per sample (outputs, cached inputs, gradients)."""
    defaults = {k: p.default for k, p in inspect.signature(builder).parameters.items()}
    probe, factor, param_factor = {}, 1.0, 1.0
    for key, value in kwargs.items():
        default = defaults.get(key)
        big = max(value) if isinstance(value, (tuple, list)) and value else value
        small = max(default) if isinstance(default, (tuple, list)) and default else default
        if (isinstance(big, (int, float)) and not isinstance(big, bool) and isinstance(small, (int, float))
                and 0 < small < big):
            power = 2 if key in ("input_size", "width_mult") or big is not value else 1
            if key in WEIGHT_ONLY:
                param_factor *= (big / small) ** power
            else:
                factor *= (big / small) ** power
            value = default
        probe[key] = tuple(value) if isinstance(value, list) else value
    params, activations = reference(builder, tuple(sorted(probe.items())))
    params, activations = math.ceil(params * factor * param_factor), math.ceil(activations * factor)
    return params, activations, 4 * (4 * params + 3 * activations * batch_size)


@functools.lru_cache(maxsize=32)
def reference(builder, kwargs: tuple) -> tuple[int, int]:
    """(parameters, activation values per sample) of ``builder(**dict(kwargs))``, measured once."""
    rows = summarize(builder(**dict(kwargs)))
    return sum(r.params for r in rows), sum(math.prod(r.output_shape) for r in rows if r.output_shape is not None)
