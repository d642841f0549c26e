"""Losses with torch.nn's constructors: ``loss(input, target)`` gives the loss, ``backward(dy=None)`` gives
d loss / d input (``dy``, default 1, scales it; for reduction='none' it has the loss's shape).  The checks of
arguments and targets here are shared with ``juanji.nn.functional``."""
from __future__ import annotations

import numbers
import os
import sys
import warnings

import numpy as np

from ..functional import loss as F
from .module import Module

LEGACY_WARNING = "size_average and reduce args will be deprecated, please use reduction='{}' instead."
CLASS_LAYOUT = "(C,), (N, C) or (N, C, d1, ...)"


def warn(message: str) -> None:
    """A UserWarning placed at the first frame outside juanji.nn (the user's line), where torch's point."""
    level, frame = 2, sys._getframe(1)
    while frame is not None and os.path.dirname(frame.f_code.co_filename) == os.path.dirname(__file__):
        level, frame = level + 1, frame.f_back
    warnings.warn(message, UserWarning, stacklevel=level)


# -- arguments, checked where they are given ----------------------------------------------------------------

def _is_flag(value) -> bool:
    return isinstance(value, (bool, np.bool_)) or (isinstance(value, numbers.Integral) and value in (0, 1))


def resolve_reduction(owner: str, size_average, reduce, reduction, allowed=F.REDUCTIONS) -> str:
    """torch's reduction: the deprecated ``size_average``/``reduce``, when either is given, decide it (both
    true or None: 'mean'; ``reduce`` alone true: 'sum'; ``reduce`` false: 'none') with torch's warning, and
    ``reduction`` is not read; 'elementwise_mean' is the old name of 'mean'."""
    for name, value in (("size_average", size_average), ("reduce", reduce)):
        if value is not None and not _is_flag(value):
            raise TypeError(f"{owner}: {name} must be None, True or False, got {value!r}")
    if size_average is not None or reduce is not None:
        reduce = True if reduce is None else bool(reduce)
        size_average = True if size_average is None else bool(size_average)
        reduction = ("mean" if size_average else "sum") if reduce else "none"
        warn(LEGACY_WARNING.format(reduction))
        return reduction
    if reduction == "elementwise_mean":
        warn("reduction='elementwise_mean' is deprecated. Please use reduction='mean' instead.")
        return "mean"
    if not isinstance(reduction, str) or reduction not in allowed:
        raise ValueError(f"{owner}: reduction must be one of {', '.join(map(repr, allowed))}, got {reduction!r}")
    return reduction


def check_real(owner: str, name: str, value, low: float, low_inclusive: bool = True, high: float | None = None):
    """A real number ≥ low (> low unless ``low_inclusive``) and ≤ high, returned as a float."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real):
        raise TypeError(f"{owner}: {name} must be a real number, got {value!r}")
    if not ((value >= low if low_inclusive else value > low) and (high is None or value <= high)):
        bound = f"{'≥' if low_inclusive else '>'} {low}" + (f" and ≤ {high}" if high is not None else "")
        raise ValueError(f"{owner}: {name} must be {bound}, got {value!r}")
    return float(value)


def check_int(owner: str, name: str, value) -> int:
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{owner}: {name} must be an integer, got {value!r}")
    return int(value)


def check_flag(owner: str, name: str, value) -> bool:
    if not isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{owner}: {name} must be True or False, got {value!r}")
    return bool(value)


def check_weight(owner: str, name: str, weight, ndim: int | None = None):
    """A numeric array (or None) as given: ``ndim`` 1 for per-class weights (C,), any rank otherwise (it must
    broadcast to the input, checked with the input)."""
    if weight is None:
        return None
    array = np.asarray(weight)
    if array.dtype.kind not in "fiu":
        raise TypeError(f"{owner}: {name} must be an array of numbers, got dtype {array.dtype}")
    if ndim is not None and array.ndim != ndim:
        raise ValueError(f"{owner}: {name} must be a 1-D array of one weight per class (C,), got shape "
                         f"{array.shape}")
    return array


# -- inputs and targets, checked when the loss is computed ---------------------------------------------------

def check_input(owner: str, input, class_layout: bool = False):
    """A floating-point NumPy array (or NumPy scalar, as arithmetic on 0-d arrays gives); with
    ``class_layout``, of rank ≥ 1: (C,), (N, C) or (N, C, d1, ...)."""
    if isinstance(input, np.generic):
        input = np.asarray(input)
    if not isinstance(input, np.ndarray):
        raise TypeError(f"{owner}: expected the input as a NumPy array, got {type(input).__name__}")
    if input.dtype.kind != "f":
        raise TypeError(f"{owner}: expected a floating-point input, got dtype {input.dtype} "
                        f"(convert first, e.g. x.astype(np.float32))")
    if class_layout and input.ndim == 0:
        raise ValueError(f"{owner}: expected input of shape {CLASS_LAYOUT}, got a 0-d input")
    return input


def check_class_target(owner: str, input, target, ignore_index: int, probabilities: bool = True):
    """Class indices (integers, of the input's shape without C, each in [0, C) or ``ignore_index``) or, when
    ``probabilities``, floating-point class probabilities of the input's shape."""
    target = np.asarray(target)
    n_classes = input.shape[1] if input.ndim > 1 else input.shape[0]
    index_shape = input.shape[:1] + input.shape[2:] if input.ndim > 1 else ()
    expected = f"a class-index target of shape {index_shape}" + (
        f" or class probabilities of shape {input.shape}" if probabilities else "")
    if target.dtype.kind == "f" and probabilities and target.shape == input.shape:
        if ignore_index >= 0:
            raise ValueError(f"{owner}: ignore_index ({ignore_index}) is a class index, which class-probability "
                             f"targets do not have (as in PyTorch, only a negative ignore_index goes with them)")
        return target
    if target.dtype.kind not in "iu":
        kinds = "integers (class indices)" + (" or floating-point class probabilities" if probabilities else "")
        raise TypeError(f"{owner}: target must be {kinds}, got dtype {target.dtype} of shape {target.shape} "
                        f"(expected {expected})")
    if target.shape != index_shape:
        raise ValueError(f"{owner}: for input of shape {input.shape} (layout {CLASS_LAYOUT}) expected {expected}, "
                         f"got {target.shape}")
    outside = (target != ignore_index) & ((target < 0) | (target >= n_classes))
    if outside.any():
        raise ValueError(f"{owner}: target holds class index {target[outside].flat[0]}, out of range for "
                         f"{n_classes} classes (expected 0..{n_classes - 1}, or ignore_index={ignore_index})")
    return target


def check_class_weight(owner: str, weight, input):
    n_classes = input.shape[1] if input.ndim > 1 else input.shape[0]
    if weight is not None and weight.shape != (n_classes,):
        raise ValueError(f"{owner}: weight has {weight.shape[0]} entries but the input has {n_classes} classes "
                         f"(input of shape {input.shape}, layout {CLASS_LAYOUT})")


def check_target(owner: str, input, target):
    """A floating-point target of the input's shape (PyTorch would broadcast others, with a warning)."""
    target = np.asarray(target)
    if target.dtype.kind != "f":
        raise TypeError(f"{owner}: expected a floating-point target, got dtype {target.dtype} "
                        f"(convert it, e.g. target.astype(np.float32))")
    if target.shape != input.shape:
        raise ValueError(f"{owner}: expected a target of the input's shape {input.shape}, got {target.shape} "
                         f"(PyTorch would broadcast the two, with a warning; reshape the target)")
    return target


def check_broadcasts(owner: str, name: str, array, input, exact: bool = False):
    """``array`` broadcasts to the input's shape without enlarging it (or, ``exact``, has that shape)."""
    if array is None:
        return
    try:
        fits = array.shape == input.shape if exact else np.broadcast_shapes(array.shape, input.shape) == input.shape
    except ValueError:
        fits = False
    if not fits:
        relation = "must have" if exact else "must broadcast to"
        raise ValueError(f"{owner}: {name} of shape {array.shape} {relation} the input's shape {input.shape}")


def check_probabilities(owner: str, input):
    if input.size and not (input.min() >= 0 and input.max() <= 1):
        raise ValueError(f"{owner}: all elements of input should be between 0 and 1 (probabilities; give logits "
                         f"to BCEWithLogitsLoss), got values in [{input.min()}, {input.max()}]")


KL_MEAN_WARNING = ("reduction: 'mean' divides the total loss by both the batch size and the support size."
                   "'batchmean' divides only by the batch size, and aligns with the KL div math definition."
                   "'mean' will be changed to behave the same as 'batchmean' in the next major release.")


# -- the layers ------------------------------------------------------------------------------------------------

class _Loss(Module):
    """A loss: the reduction, ``forward(input, target)`` keeping the kernel's cache, ``backward(dy=None)``.
    Subclasses give ``_loss(input, target) -> (loss, cache)`` and ``_backward(cache, dy)``."""

    reductions = F.REDUCTIONS
    class_layout = False        # inputs (C,), (N, C) or (N, C, d1, ...) rather than any shape
    _defaults: dict = {}

    def __init__(self, size_average=None, reduce=None, reduction: str = "mean"):
        super().__init__()
        self.reduction = resolve_reduction(type(self).__name__, size_average, reduce, reduction, self.reductions)

    def forward(self, input, target):
        input = check_input(repr(self), input, class_layout=self.class_layout)
        for name, value in self.buffers.items():
            if value.dtype != input.dtype:
                raise TypeError(f"{self!r}: {name} is {value.dtype} but the input is {input.dtype}; convert the "
                                f"input or call .to({input.dtype}) on the loss")
        loss, cache = self._loss(input, target)
        self.save_for_backward(cache)
        return loss

    def backward(self, dy=None):
        """d loss / d input; ``dy`` (default 1) scales it, of the loss's shape for reduction='none'."""
        cache, = self.saved_for_backward()
        return self._backward(cache, dy)

    def extra_repr(self):
        settings = [f"{name}={getattr(self, name)!r}" for name, default in self._defaults.items()
                    if getattr(self, name) != default]
        return ", ".join([f"{name}=<{value.shape} array>" for name, value in self.buffers.items()] + settings)


class _WeightedLoss(_Loss):
    """A loss with a ``weight`` (and BCEWithLogitsLoss's ``pos_weight``): buffers, saved and converted by
    ``to`` as torch's are, kept in juanji's default float32."""

    def __init__(self, weight=None, size_average=None, reduce=None, reduction: str = "mean", *,
                 weight_ndim: int | None = None):
        super().__init__(size_average, reduce, reduction)
        self._set_weight("weight", weight, weight_ndim)

    def _set_weight(self, name: str, weight, ndim: int | None = None) -> None:
        weight = check_weight(type(self).__name__, name, weight, ndim)
        if weight is not None:
            self.buffers[name] = weight.astype(np.float32)

    @property
    def weight(self):
        return self.buffers.get("weight")


class CrossEntropyLoss(_WeightedLoss):
    """``torch.nn.CrossEntropyLoss``: log-softmax and negative log-likelihood fused (log-sum-exp).  Logits
    (N, C), (C,) or (N, C, d1, …); target class indices (N,), () or (N, d1, …) — integers in [0, C) or
    ``ignore_index`` — or class probabilities of the logits' shape.  ``weight`` (C,) rescales each class,
    ``label_smoothing`` ε mixes the target with the uniform distribution (the exact formula and the 'mean'
    denominator: ``juanji.functional.loss.cross_entropy``).  ``backward()`` = d loss / d logits."""

    class_layout = True
    _defaults = {"ignore_index": -100, "reduction": "mean", "label_smoothing": 0.0}

    def __init__(self, weight=None, size_average=None, ignore_index: int = -100, reduce=None,
                 reduction: str = "mean", label_smoothing: float = 0.0):
        super().__init__(weight, size_average, reduce, reduction, weight_ndim=1)
        name = type(self).__name__
        self.ignore_index = check_int(name, "ignore_index", ignore_index)
        self.label_smoothing = check_real(name, "label_smoothing", label_smoothing, 0.0, high=1.0)

    def _loss(self, input, target):
        target = check_class_target(repr(self), input, target, self.ignore_index)
        check_class_weight(repr(self), self.weight, input)
        return F.cross_entropy(input, target, self.label_smoothing, self.weight, self.ignore_index, self.reduction)

    _backward = staticmethod(F.cross_entropy_backward)


class NLLLoss(_WeightedLoss):
    """``torch.nn.NLLLoss``: ℓ_n = −w_{t_n}·input[n, t_n] on log-probabilities (N, C), (C,) or (N, C, d1, …)
    and class indices (N,), () or (N, d1, …); ``ignore_index`` entries count for nothing."""

    class_layout = True
    _defaults = {"ignore_index": -100, "reduction": "mean"}

    def __init__(self, weight=None, size_average=None, ignore_index: int = -100, reduce=None,
                 reduction: str = "mean"):
        super().__init__(weight, size_average, reduce, reduction, weight_ndim=1)
        self.ignore_index = check_int(type(self).__name__, "ignore_index", ignore_index)

    def _loss(self, input, target):
        target = check_class_target(repr(self), input, target, self.ignore_index, probabilities=False)
        check_class_weight(repr(self), self.weight, input)
        return F.nll_loss(input, target, self.weight, self.ignore_index, self.reduction)

    _backward = staticmethod(F.nll_loss_backward)


class MSELoss(_Loss):
    """``torch.nn.MSELoss``: ℓ = (input − target)², any shape (target of the input's shape)."""

    _defaults = {"reduction": "mean"}

    def _loss(self, input, target):
        return F.mse_loss(input, check_target(repr(self), input, target), reduction=self.reduction)

    _backward = staticmethod(F.mse_loss_backward)


class L1Loss(_Loss):
    """``torch.nn.L1Loss``: ℓ = |input − target|, any shape."""

    _defaults = {"reduction": "mean"}

    def _loss(self, input, target):
        return F.l1_loss(input, check_target(repr(self), input, target), reduction=self.reduction)

    _backward = staticmethod(F.l1_loss_backward)


class SmoothL1Loss(_Loss):
    """``torch.nn.SmoothL1Loss``: ℓ = ½d²/β where |d| < β, else |d| − ½β (d = input − target; β = 0 is L1)."""

    _defaults = {"reduction": "mean", "beta": 1.0}

    def __init__(self, size_average=None, reduce=None, reduction: str = "mean", beta: float = 1.0):
        super().__init__(size_average, reduce, reduction)
        self.beta = check_real(type(self).__name__, "beta", beta, 0.0)

    def _loss(self, input, target):
        return F.smooth_l1_loss(input, check_target(repr(self), input, target), self.beta, self.reduction)

    _backward = staticmethod(F.smooth_l1_loss_backward)


class HuberLoss(_Loss):
    """``torch.nn.HuberLoss``: ℓ = ½d² where |d| < δ, else δ(|d| − ½δ) (d = input − target, δ > 0)."""

    _defaults = {"reduction": "mean", "delta": 1.0}

    def __init__(self, reduction: str = "mean", delta: float = 1.0):
        super().__init__(None, None, reduction)
        self.delta = check_real(type(self).__name__, "delta", delta, 0.0, low_inclusive=False)

    def _loss(self, input, target):
        return F.huber_loss(input, check_target(repr(self), input, target), self.delta, reduction=self.reduction)

    _backward = staticmethod(F.huber_loss_backward)


class BCELoss(_WeightedLoss):
    """``torch.nn.BCELoss``: ℓ = −w·(t·log x + (1 − t)·log(1 − x)) on probabilities x in [0, 1], each log
    clamped to ≥ −100 as torch; ``weight`` broadcasts to the input."""

    _defaults = {"reduction": "mean"}

    def __init__(self, weight=None, size_average=None, reduce=None, reduction: str = "mean"):
        super().__init__(weight, size_average, reduce, reduction)

    def _loss(self, input, target):
        target = check_target(repr(self), input, target)
        check_broadcasts(repr(self), "weight", self.weight, input)
        check_probabilities(repr(self), input)
        return F.binary_cross_entropy(input, target, self.weight, self.reduction)

    _backward = staticmethod(F.binary_cross_entropy_backward)


class BCEWithLogitsLoss(_WeightedLoss):
    """``torch.nn.BCEWithLogitsLoss``: sigmoid and binary cross-entropy fused, stable for any logits;
    ``weight`` broadcasts to the input, ``pos_weight`` (the weight of positive examples, per class along the
    last axis) too."""

    _defaults = {"reduction": "mean"}

    def __init__(self, weight=None, size_average=None, reduce=None, reduction: str = "mean", pos_weight=None):
        super().__init__(weight, size_average, reduce, reduction)
        self._set_weight("pos_weight", pos_weight)

    @property
    def pos_weight(self):
        return self.buffers.get("pos_weight")

    def _loss(self, input, target):
        target = check_target(repr(self), input, target)
        check_broadcasts(repr(self), "weight", self.weight, input)
        check_broadcasts(repr(self), "pos_weight", self.pos_weight, input)
        return F.binary_cross_entropy_with_logits(input, target, self.weight, self.pos_weight, self.reduction)

    _backward = staticmethod(F.binary_cross_entropy_with_logits_backward)


class KLDivLoss(_Loss):
    """``torch.nn.KLDivLoss``: ℓ = t·(log t − x) for log-probabilities x and probabilities t (``log_target``:
    log-probabilities, ℓ = e^t·(t − x)); reduction 'batchmean' divides the sum by the batch size (the KL
    divergence), 'mean' by the number of elements (with torch's warning)."""

    reductions = F.REDUCTIONS + ("batchmean",)
    _defaults = {"reduction": "mean", "log_target": False}

    def __init__(self, size_average=None, reduce=None, reduction: str = "mean", log_target: bool = False):
        super().__init__(size_average, reduce, reduction)
        self.log_target = check_flag(type(self).__name__, "log_target", log_target)

    def _loss(self, input, target):
        target = check_target(repr(self), input, target)
        if self.reduction == "mean":
            warn(KL_MEAN_WARNING)
        return F.kl_div(input, target, self.log_target, self.reduction)

    _backward = staticmethod(F.kl_div_backward)
