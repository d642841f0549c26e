"""Random draws of the losses' constructor arguments, inputs and targets, shared by the tests of the loss classes
(test_loss.py) and of juanji.nn.functional (test_functional.py): each draw is the constructor's arguments by
torch's names, an input and a target."""
import inspect

import numpy as np
import torch

LOSSES = ["CrossEntropyLoss", "NLLLoss", "MSELoss", "L1Loss", "SmoothL1Loss", "HuberLoss", "BCELoss",
          "BCEWithLogitsLoss", "KLDivLoss"]


# -- random draws of every constructor argument -----------------------------------------------------------------

def draw_array(rng, shape, dtype, contiguous=True, low=None, high=None):
    """Standard normal (or uniform in [low, high]) values; a transposed view when not ``contiguous``."""
    stored = shape if contiguous else shape[::-1]
    values = rng.standard_normal(stored) if low is None else rng.uniform(low, high, stored)
    values = values.astype(dtype)
    return values if contiguous else values.T


def draw_shape(rng, low_rank=0, high_rank=4):
    return tuple(int(s) for s in rng.integers(1, 5, int(rng.integers(low_rank, high_rank + 1))))


def draw_reduction(rng, values, allowed=("mean", "sum", "none"), legacy=True):
    """reduction, or (a quarter of the time) the deprecated size_average/reduce that decide it."""
    if legacy and rng.random() < 0.25:
        size_average, reduce = [(None, True), (None, False), (True, None), (False, None), (True, True),
                                (False, True), (True, False), (False, False)][rng.integers(8)]
        values.update(size_average=size_average, reduce=reduce)
    elif rng.random() < 0.8:
        values["reduction"] = str(rng.choice(allowed))


def draw_class_loss(name, rng, dtype):
    """Logits (or log-probabilities) (C,), (N, C) or (N, C, d1, …); class indices with some ignored, or (cross
    entropy) class probabilities; weight, ignore_index, label smoothing."""
    n_classes, rank = int(rng.integers(2, 6)), int(rng.integers(1, 5))
    shape = (n_classes,) if rank == 1 else (int(rng.integers(1, 5)), n_classes) + draw_shape(rng, rank - 2, rank - 2)
    x = draw_array(rng, shape, dtype, contiguous=rng.random() < 0.5) * 3
    values = {}
    if rng.random() < 0.5:
        values["weight"] = rng.uniform(0.2, 2.0, n_classes)
    ignore_index = int(rng.choice([-100, -1, 255, int(rng.integers(n_classes))]))
    if ignore_index != -100 or rng.random() < 0.5:
        values["ignore_index"] = ignore_index
    draw_reduction(rng, values)
    if name == "CrossEntropyLoss" and rng.random() < 0.6:
        values["label_smoothing"] = float(rng.choice([rng.uniform(0, 1), 1.0]))
    if name == "CrossEntropyLoss" and rng.random() < 0.3:
        if ignore_index >= 0:                       # a class index, which probabilities do not have
            values.pop("ignore_index")
        target = np.moveaxis(rng.dirichlet(np.ones(n_classes), shape[:1] + shape[2:] if rank > 1 else ()), -1,
                             1 if rank > 1 else 0).astype(dtype)
        return values, x, target
    index_shape = shape[:1] + shape[2:] if rank > 1 else ()
    target = np.asarray(rng.integers(0, n_classes, index_shape)).astype(rng.choice([np.int64, np.int32]))
    target[np.asarray(rng.random(index_shape)) < 0.3] = ignore_index
    target.flat[0] = (ignore_index + 1) % n_classes          # one target kept, so that the mean is not 0/0
    return values, x, target


def draw_elementwise_loss(name, rng, dtype):
    """An input of any rank (0-d too) and a target of its shape, with each loss's own arguments."""
    shape = draw_shape(rng)
    contiguous = rng.random() < 0.5
    x, target = draw_array(rng, shape, dtype, contiguous), draw_array(rng, shape, dtype)
    values = {}
    draw_reduction(rng, values, legacy=name != "HuberLoss", allowed=("mean", "sum", "none") + (
        ("batchmean",) if name == "KLDivLoss" else ()))
    if name == "SmoothL1Loss" and rng.random() < 0.8:
        values["beta"] = float(rng.choice([0.0, rng.uniform(0.1, 2.0)]))
    if name == "HuberLoss" and rng.random() < 0.8:
        values["delta"] = float(rng.uniform(0.1, 2.0))
    if name == "BCELoss":
        x = draw_array(rng, shape, dtype, contiguous, low=0.02, high=0.98)
        target = rng.uniform(0, 1, shape).astype(dtype) if rng.random() < 0.5 else \
            rng.integers(0, 2, shape).astype(dtype)
    if name in ("BCELoss", "BCEWithLogitsLoss") and rng.random() < 0.6:
        values["weight"] = rng.uniform(0.2, 2.0, broadcasting_shape(rng, shape))
    if name == "BCEWithLogitsLoss":
        x *= 4
        target = rng.uniform(0, 1, shape).astype(dtype)
        if rng.random() < 0.6:
            values["pos_weight"] = rng.uniform(0.2, 3.0, broadcasting_shape(rng, shape))
    if name == "KLDivLoss":
        if rng.random() < 0.6:
            values["log_target"] = bool(rng.random() < 0.5)
        target = rng.uniform(0, 1, shape).astype(dtype)
        target[rng.random(shape) < 0.2] = 0
        if values.get("log_target"):
            target = rng.standard_normal(shape).astype(dtype) - 1
    return values, x, target


def broadcasting_shape(rng, shape):
    """A trailing part of ``shape`` with some sizes 1: what broadcasts to ``shape``."""
    tail = shape[len(shape) - int(rng.integers(0, len(shape) + 1)):]
    return tuple(1 if rng.random() < 0.3 else s for s in tail)


def draw(name, seed, dtype):
    rng = np.random.default_rng([seed, LOSSES.index(name)])
    drawing = draw_class_loss if name in ("CrossEntropyLoss", "NLLLoss") else draw_elementwise_loss
    values, x, target = drawing(name, rng, dtype)
    return values, np.asarray(x), np.asarray(target), bool(rng.random() < 0.5)


def torch_names(name):
    return [p.name for p in inspect.signature(getattr(torch.nn, name).__init__).parameters.values()][1:]


def construct(cls, name, values, positional, convert=lambda v: v):
    """``cls`` from ``values`` in torch's order positionally (defaults filled in) or by keyword."""
    defaults = {p.name: p.default for p in inspect.signature(getattr(torch.nn, name).__init__).parameters.values()}
    values = {key: convert(value) if isinstance(value, np.ndarray) else value for key, value in values.items()}
    if positional:
        names = torch_names(name)
        last = max([names.index(key) for key in values], default=-1)
        return cls(*[values.get(key, defaults[key]) for key in names[:last + 1]])
    return cls(**values)
