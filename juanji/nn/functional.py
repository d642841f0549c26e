"""``torch.nn.functional``'s losses, softmax and log-softmax, by the same names and signatures, on NumPy arrays:
each returns the value only (a scalar of the input's dtype, or an array for reduction='none').  For a gradient
use the loss classes of ``juanji.nn`` (``CrossEntropyLoss()(x, t)`` then ``.backward()``).  Arguments and
targets are checked as the classes check them; a ``weight`` is taken in the input's dtype."""
from __future__ import annotations

import warnings

import numpy as np

from ..functional import activation as A
from ..functional import loss as F
from .loss import (KL_MEAN_WARNING, check_broadcasts, check_class_target, check_class_weight, check_flag,
                   check_input, check_int, check_probabilities, check_real, check_target, check_weight,
                   resolve_reduction, warn)

__all__ = ["cross_entropy", "nll_loss", "mse_loss", "l1_loss", "smooth_l1_loss", "huber_loss",
           "binary_cross_entropy", "binary_cross_entropy_with_logits", "kl_div", "log_softmax", "softmax"]


def cross_entropy(input, target, weight=None, size_average=None, ignore_index: int = -100, reduce=None,
                  reduction: str = "mean", label_smoothing: float = 0.0):
    """Softmax cross-entropy of logits (N, C), (C,) or (N, C, d1, …) against class indices or class
    probabilities; see ``juanji.nn.CrossEntropyLoss``."""
    owner = "cross_entropy"
    reduction = resolve_reduction(owner, size_average, reduce, reduction)
    ignore_index = check_int(owner, "ignore_index", ignore_index)
    label_smoothing = check_real(owner, "label_smoothing", label_smoothing, 0.0, high=1.0)
    weight = check_weight(owner, "weight", weight, ndim=1)
    input = check_input(owner, input, class_layout=True)
    target = check_class_target(owner, input, target, ignore_index)
    check_class_weight(owner, weight, input)
    return F.cross_entropy(input, target, label_smoothing, weight, ignore_index, reduction)[0]


def nll_loss(input, target, weight=None, size_average=None, ignore_index: int = -100, reduce=None,
             reduction: str = "mean"):
    """Negative log-likelihood of log-probabilities at class indices; see ``juanji.nn.NLLLoss``."""
    owner = "nll_loss"
    reduction = resolve_reduction(owner, size_average, reduce, reduction)
    ignore_index = check_int(owner, "ignore_index", ignore_index)
    weight = check_weight(owner, "weight", weight, ndim=1)
    input = check_input(owner, input, class_layout=True)
    target = check_class_target(owner, input, target, ignore_index, probabilities=False)
    check_class_weight(owner, weight, input)
    return F.nll_loss(input, target, weight, ignore_index, reduction)[0]


def _elementwise_arguments(owner, input, target, weight=None, exact_weight=True):
    """The checked input, target and weight of a loss of one input and one target of the same shape."""
    input = check_input(owner, input)
    target = check_target(owner, input, target)
    weight = check_weight(owner, "weight", weight)
    check_broadcasts(owner, "weight", weight, input, exact=exact_weight)
    return input, target, weight


def mse_loss(input, target, size_average=None, reduce=None, reduction: str = "mean", weight=None):
    """ℓ = w·(x − t)²; with a ``weight`` (of the input's shape), 'mean' divides by Σw, as torch's."""
    reduction = resolve_reduction("mse_loss", size_average, reduce, reduction)
    input, target, weight = _elementwise_arguments("mse_loss", input, target, weight)
    return F.mse_loss(input, target, weight, reduction)[0]


def l1_loss(input, target, size_average=None, reduce=None, reduction: str = "mean", weight=None):
    """ℓ = w·|x − t|; with a ``weight`` (of the input's shape), 'mean' divides by Σw, as torch's."""
    reduction = resolve_reduction("l1_loss", size_average, reduce, reduction)
    input, target, weight = _elementwise_arguments("l1_loss", input, target, weight)
    return F.l1_loss(input, target, weight, reduction)[0]


def smooth_l1_loss(input, target, size_average=None, reduce=None, reduction: str = "mean", beta: float = 1.0):
    """ℓ = ½d²/β where |d| < β, else |d| − ½β; see ``juanji.nn.SmoothL1Loss``."""
    reduction = resolve_reduction("smooth_l1_loss", size_average, reduce, reduction)
    beta = check_real("smooth_l1_loss", "beta", beta, 0.0)
    input, target, _ = _elementwise_arguments("smooth_l1_loss", input, target)
    return F.smooth_l1_loss(input, target, beta, reduction)[0]


def huber_loss(input, target, reduction: str = "mean", delta: float = 1.0, weight=None):
    """ℓ = w·(½d² where |d| < δ, else δ(|d| − ½δ)); with a ``weight`` (of the input's shape) 'mean' still
    divides by the number of elements, as torch's."""
    reduction = resolve_reduction("huber_loss", None, None, reduction)
    delta = check_real("huber_loss", "delta", delta, 0.0, low_inclusive=False)
    input, target, weight = _elementwise_arguments("huber_loss", input, target, weight)
    return F.huber_loss(input, target, delta, weight, reduction)[0]


def binary_cross_entropy(input, target, weight=None, size_average=None, reduce=None, reduction: str = "mean"):
    """Binary cross-entropy of probabilities in [0, 1]; see ``juanji.nn.BCELoss``."""
    owner = "binary_cross_entropy"
    reduction = resolve_reduction(owner, size_average, reduce, reduction)
    input, target, weight = _elementwise_arguments(owner, input, target, weight, exact_weight=False)
    check_probabilities(owner, input)
    return F.binary_cross_entropy(input, target, weight, reduction)[0]


def binary_cross_entropy_with_logits(input, target, weight=None, size_average=None, reduce=None,
                                     reduction: str = "mean", pos_weight=None):
    """Sigmoid and binary cross-entropy fused, stable; see ``juanji.nn.BCEWithLogitsLoss``."""
    owner = "binary_cross_entropy_with_logits"
    reduction = resolve_reduction(owner, size_average, reduce, reduction)
    input, target, weight = _elementwise_arguments(owner, input, target, weight, exact_weight=False)
    pos_weight = check_weight(owner, "pos_weight", pos_weight)
    check_broadcasts(owner, "pos_weight", pos_weight, input)
    return F.binary_cross_entropy_with_logits(input, target, weight, pos_weight, reduction)[0]


def kl_div(input, target, size_average=None, reduce=None, reduction: str = "mean", log_target: bool = False):
    """KL divergence of log-probabilities from a target distribution; see ``juanji.nn.KLDivLoss`` (reduction
    'mean' warns as torch's: 'batchmean' is the divergence)."""
    legacy = size_average is not None or reduce is not None
    reduction = resolve_reduction("kl_div", size_average, reduce, reduction, F.REDUCTIONS + ("batchmean",))
    if reduction == "mean" and not legacy:
        warn(KL_MEAN_WARNING)
    log_target = check_flag("kl_div", "log_target", log_target)
    input, target, _ = _elementwise_arguments("kl_div", input, target)
    return F.kl_div(input, target, log_target, reduction)[0]


def _softmax_arguments(name, input, dim, dtype, stacklevel):
    """The input (cast to ``dtype`` first, as torch's) and the axis: torch's implicit choice when ``dim`` is None
    (0 for a 0-, 1- or 3-d input, else 1), with its warning."""
    if dtype is not None:
        dtype = np.dtype(dtype)
        if dtype.kind != "f":
            raise TypeError(f"{name}: dtype must be a floating-point type, got {dtype}")
        input = input.astype(dtype) if isinstance(input, (np.ndarray, np.generic)) else input
    input = check_input(name, input)
    if dim is None:
        warnings.warn(f"Implicit dimension choice for {name} has been deprecated. Change the call to include "
                      f"dim=X as an argument.", UserWarning, stacklevel=stacklevel)
        dim = 0 if input.ndim in (0, 1, 3) else 1
    dim = check_int(name, "dim", dim)
    if not -max(input.ndim, 1) <= dim < max(input.ndim, 1):
        raise IndexError(f"{name}: dim {dim} is out of range for a {input.ndim}-d input")
    return input, dim


def log_softmax(input, dim=None, _stacklevel: int = 3, dtype=None):
    """log softmax along ``dim`` with the log-sum-exp shift (never overflows); ``dtype`` (a NumPy dtype) casts the
    input first; ``_stacklevel`` places the warning of an implicit ``dim``.  A 0-d input gives 0."""
    input, dim = _softmax_arguments("log_softmax", input, dim, dtype, _stacklevel)
    return A.log_softmax(input.reshape(1), axis=0).reshape(()) if input.ndim == 0 else A.log_softmax(input, dim)


def softmax(input, dim=None, _stacklevel: int = 3, dtype=None):
    """e^x / Σ e^x along ``dim`` (stable); ``dtype`` (a NumPy dtype) casts the input first; ``_stacklevel``
    places the warning of an implicit ``dim``.  A 0-d input gives 1."""
    input, dim = _softmax_arguments("softmax", input, dim, dtype, _stacklevel)
    return A.softmax(input.reshape(1), axis=0).reshape(()) if input.ndim == 0 else A.softmax(input, dim)
