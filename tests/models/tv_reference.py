"""Reference data shared by make_torchvision_fixtures.py (run where torchvision is installed) and the
tests (run without it): which torchvision models juanji reproduces, deterministic weights and inputs
regenerated from a seed with NumPy alone, and juanji's side of the comparison.
"""
from __future__ import annotations

import json
import math
import pathlib
import zlib

import numpy as np

from juanji import models
from juanji.interop import from_torch

FIXTURES = pathlib.Path(__file__).parent / "fixtures"
TABLE = FIXTURES / "torchvision.json"
SEED = 2024
BATCH, SIZE, CLASSES = 2, 224, 1000
PROJECTIONS = 8          # random directions each sample's input gradient is projected on
SUBSAMPLE = 8            # the stored input gradient keeps every 8th row and column

# name -> keyword arguments of torchvision.models.<name>(...) giving juanji's default architecture.
TORCHVISION_MODELS = {
    "alexnet": {}, "vgg11": {}, "vgg13": {}, "vgg16": {}, "vgg19": {},
    "vgg11_bn": {}, "vgg13_bn": {}, "vgg16_bn": {}, "vgg19_bn": {},
    "googlenet": {"aux_logits": False, "init_weights": False},
    "resnet18": {}, "resnet34": {}, "resnet50": {}, "densenet121": {},
    "mobilenet_v2": {}, "mobilenet_v3_small": {}, "efficientnet_b0": {}, "convnext_tiny": {},
}
# mobilenet_v3_small's recorded input gradient is 5e-9 (relative) from the exact one: torch's float64 Hardsigmoid
# backward multiplies by the float32 constant 1/6 (see juanji.nn.Hardsigmoid); its logits agree to 2e-15.
# Architectures compared by their key/shape table and parameter count only: (juanji kwargs, torchvision kwargs).
TABLE_ONLY = {"googlenet_aux": ("googlenet", {"aux_logits": True}, {"aux_logits": True, "init_weights": False})}


def _rng(*words) -> np.random.Generator:
    return np.random.default_rng([SEED] + [zlib.crc32(str(w).encode()) for w in words])


def seeded_state_dict(shapes: dict) -> dict:
    """Float64 weights for a key → shape table, each array from its own stream (seeded by its name):
    conv/fc weights He-uniform U(±√(6/fan_in)); BN scales and running variances U(0.5, 1.5); biases and
    running means U(±0.1); ``num_batches_tracked`` 0.  Random BN statistics make eval mode non-trivial."""
    state = {}
    for name, shape in shapes.items():
        leaf = name.rsplit(".", 1)[-1]
        if leaf == "num_batches_tracked":
            state[name] = np.array(0, dtype=np.int64)
            continue
        value = _rng(name).random(tuple(shape))          # U(0, 1), then shifted and scaled in place
        if leaf == "running_var" or (leaf == "weight" and len(shape) == 1):
            value += 0.5
        elif leaf in ("running_mean", "bias"):
            value -= 0.5
            value *= 0.2
        else:
            value -= 0.5
            value *= 2 * math.sqrt(6 / math.prod(shape[1:]))
        state[name] = value
    return state


def seeded_inputs():
    """x (2, 3, 224, 224) ~ U(−1, 1), the logits' cotangent dy (2, 1000) ~ U(−1, 1) and the projection
    directions (8, 3, 224, 224) ~ U(−1, 1)."""
    x = 2 * _rng("x").random((BATCH, 3, SIZE, SIZE)) - 1
    dy = 2 * _rng("dy").random((BATCH, CLASSES)) - 1
    directions = 2 * _rng("directions").random((PROJECTIONS,) + x.shape[1:]) - 1
    return x, dy, directions


def summarize_gradient(dx, directions) -> dict:
    """The compact record of an input gradient (N, 3, H, W): a subsample (N, 3, 28, 28) and each
    sample's projections on the random directions (N, 8) — an error anywhere in dx moves them.
    In eval mode samples are independent, so any leading part of the batch can be compared alone."""
    return {"dx_sub": dx[:, :, ::SUBSAMPLE, ::SUBSAMPLE],
            "dx_proj": dx.reshape(len(dx), -1) @ directions.reshape(PROJECTIONS, -1).T}


def juanji_model(name: str, state_dict: dict):
    """juanji's ``name`` at 224×224×3, 1000 classes, float64, eval mode, loaded with ``from_torch``."""
    model = models.create(name, num_classes=CLASSES, in_channels=3, input_size=SIZE).to(np.float64).eval()
    return from_torch(model, state_dict)


def juanji_outputs(model, x, dy, directions) -> dict:
    """logits = model(x) and the record of dL/dx for L = Σ dy ⊙ logits."""
    logits = model(x)
    return {"logits": logits, **summarize_gradient(model.backward(dy), directions)}


def load_table() -> dict:
    return json.loads(TABLE.read_text())


def relative_error(actual, expected) -> float:
    """max |actual − expected| / max |expected|."""
    return float(np.abs(actual - expected).max() / np.abs(expected).max())
