"""Activation layers with torch.nn's names and constructor arguments: elementwise ones (an input of any shape),
PReLU with its learned slopes, and the softmax family along one dimension."""
from __future__ import annotations

import math
import numbers
import warnings

import numpy as np

from ..functional import activation as F
from ..runtime.grad_mode import is_grad_enabled
from .module import Module, factory_dtype


# -- argument checks, at construction and at the boundary ----------------------------------------------
def _flag(layer: str, name: str, value) -> bool:
    if not isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{layer}: {name} must be True or False, got {value!r}")
    return bool(value)


def _real(layer: str, name: str, value, finite: bool = True) -> float:
    """``value`` as a float: a real number (not a bool), finite unless ``finite`` is False (never NaN)."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real):
        raise TypeError(f"{layer}: {name} must be a real number, got {value!r}")
    value = float(value)
    if math.isnan(value) or (finite and math.isinf(value)):
        raise ValueError(f"{layer}: {name} must be a {'finite ' if finite else ''}number, got {value!r}")
    return value


def _check_float_array(layer: Module, x) -> None:
    if not isinstance(x, np.ndarray):
        raise TypeError(f"{layer!r}: expected a NumPy array, got {type(x).__name__}")
    if x.dtype.kind != "f":
        raise TypeError(f"{layer!r}: expected a floating-point input, got dtype {x.dtype} "
                        f"(convert first, e.g. x.astype(np.float32))")


def _no_arguments(layer: str, args, kwargs) -> None:
    """torch's Sigmoid and Tanh take ``*args, **kwargs`` and refuse any (``Module.__init__``'s)."""
    if args or kwargs:
        given = [repr(a) for a in args] + [f"{k}={v!r}" for k, v in kwargs.items()]
        raise TypeError(f"{layer} takes no arguments, got {', '.join(given)}")


# -- elementwise activations ---------------------------------------------------------------------------
class _Elementwise(Module):
    """y = f(x) for each element of an input of any shape;  dX = dY · f′(x).

    With ``inplace=True`` y is written into x, and x is returned, as torch does.  What backward needs is kept
    before x is overwritten: the output itself where f′ is a function of the output (``keeps_output``), else a
    copy of x (only while grad is enabled)."""

    inplace = False
    keeps_output = False        # backward works from the output y instead of the input x

    def forward(self, x):
        _check_float_array(self, x)
        keeps_output = self.keeps_output
        if self.inplace:
            kept = x.copy() if not keeps_output and is_grad_enabled() else None
            y = self._forward(x, x)
        else:
            kept, y = x, self._forward(x, None)
        self.save_for_backward(y if keeps_output else kept)
        return y

    def backward(self, dy):
        kept, = self.saved_for_backward()
        return self._backward(dy, kept)

    def _forward(self, x, out):
        """y = f(x), written into ``out`` where given (x itself in place)."""
        raise NotImplementedError

    def _backward(self, dy, kept):
        """dX from dY and what forward kept (y where ``keeps_output``, else x)."""
        raise NotImplementedError

    def extra_repr(self):
        return "inplace=True" if self.inplace else ""


class ReLU(_Elementwise):
    """``torch.nn.ReLU``: y = max(x, 0);  dX = dY · [x > 0]  (0 at the kink, as torch)."""

    keeps_output = True         # [y > 0] = [x > 0]

    def __init__(self, inplace: bool = False):
        super().__init__()
        self.inplace = _flag("ReLU", "inplace", inplace)

    def _forward(self, x, out):
        return F.relu(x, out=out)

    def _backward(self, dy, y):
        return F.relu_backward(dy, y)


class LeakyReLU(_Elementwise):
    """``torch.nn.LeakyReLU``: y = x if x > 0 else slope · x;  dX = dY · (1 if x > 0 else slope)."""

    def __init__(self, negative_slope: float = 0.01, inplace: bool = False):
        super().__init__()
        self.negative_slope = _real("LeakyReLU", "negative_slope", negative_slope)
        self.inplace = _flag("LeakyReLU", "inplace", inplace)

    @property
    def keeps_output(self):
        return self.negative_slope >= 0         # then y has x's sign

    def _forward(self, x, out):
        return F.leaky_relu(x, self.negative_slope, out=out)

    def _backward(self, dy, kept):
        return F.leaky_relu_backward(dy, kept, self.negative_slope)

    def extra_repr(self):
        return f"negative_slope={self.negative_slope}" + (", inplace=True" if self.inplace else "")


class Hardtanh(_Elementwise):
    """``torch.nn.Hardtanh``: y = min(max(x, min_val), max_val);  dX = dY · [min_val < x < max_val]  (0 at the
    bounds, as torch).  ``min_value``/``max_value`` are torch's deprecated spellings (FutureWarning)."""

    keeps_output = True         # y is strictly inside the bounds exactly where x is

    def __init__(self, min_val: float = -1.0, max_val: float = 1.0, inplace: bool = False,
                 min_value: float | None = None, max_value: float | None = None):
        super().__init__()
        name = type(self).__name__
        for old, new, value in (("min_value", "min_val", min_value), ("max_value", "max_val", max_value)):
            if value is not None:
                warnings.warn(f"keyword argument `{old}` is deprecated and renamed to `{new}`", FutureWarning,
                              stacklevel=2)
        min_val = _real(name, "min_val", min_val if min_value is None else min_value, finite=False)
        max_val = _real(name, "max_val", max_val if max_value is None else max_value, finite=False)
        if not max_val > min_val:
            raise ValueError(f"{name}: max_val ({max_val}) must be greater than min_val ({min_val})")
        self.min_val, self.max_val = min_val, max_val
        self.inplace = _flag(name, "inplace", inplace)

    def _forward(self, x, out):
        return F.hardtanh(x, self.min_val, self.max_val, out=out)

    def _backward(self, dy, y):
        return F.hardtanh_backward(dy, y, self.min_val, self.max_val)

    def extra_repr(self):
        return f"min_val={self.min_val}, max_val={self.max_val}" + (", inplace=True" if self.inplace else "")


class ReLU6(Hardtanh):
    """``torch.nn.ReLU6``: Hardtanh(0, 6), as in torch: y = min(max(x, 0), 6);  dX = dY · [0 < x < 6]."""

    def __init__(self, inplace: bool = False):
        super().__init__(0.0, 6.0, inplace)

    def extra_repr(self):
        return "inplace=True" if self.inplace else ""


class Hardsigmoid(_Elementwise):
    """``torch.nn.Hardsigmoid``: y = min(max(x + 3, 0), 6) / 6;  dX = dY / 6 · [−3 < x < 3]  (exactly 1/6: torch's
    float64 backward multiplies by the float32 constant 1.0f / 6.0f, 3·10⁻⁸ off)."""

    def __init__(self, inplace: bool = False):
        super().__init__()
        self.inplace = _flag("Hardsigmoid", "inplace", inplace)

    def _forward(self, x, out):
        return F.hardsigmoid(x, out=out)

    def _backward(self, dy, x):
        return F.hardsigmoid_backward(dy, x)


class Hardswish(_Elementwise):
    """``torch.nn.Hardswish``: y = x · min(max(x + 3, 0), 6) / 6;  dX = dY · (0 for x ≤ −3, x/3 + 1/2 between,
    1 for x ≥ 3)."""

    def __init__(self, inplace: bool = False):
        super().__init__()
        self.inplace = _flag("Hardswish", "inplace", inplace)

    def _forward(self, x, out):
        return F.hardswish(x, out=out)

    def _backward(self, dy, x):
        return F.hardswish_backward(dy, x)


class Sigmoid(_Elementwise):
    """``torch.nn.Sigmoid``: y = σ(x);  dX = dY · y (1 − y)."""

    keeps_output = True

    def __init__(self, *args, **kwargs):
        _no_arguments("Sigmoid", args, kwargs)
        super().__init__()

    def _forward(self, x, out):
        return F.sigmoid(x)

    def _backward(self, dy, y):
        return F.sigmoid_backward(dy, y)


class Tanh(_Elementwise):
    """``torch.nn.Tanh``: y = tanh x;  dX = dY · (1 − y²)."""

    keeps_output = True

    def __init__(self, *args, **kwargs):
        _no_arguments("Tanh", args, kwargs)
        super().__init__()

    def _forward(self, x, out):
        return F.tanh(x)

    def _backward(self, dy, y):
        return F.tanh_backward(dy, y)


class SiLU(_Elementwise):
    """``torch.nn.SiLU``: y = x · σ(x);  dX = dY · σ(x) (1 + x (1 − σ(x)))."""

    def __init__(self, inplace: bool = False):
        super().__init__()
        self.inplace = _flag("SiLU", "inplace", inplace)

    def _forward(self, x, out):
        return F.silu(x, out=out)

    def _backward(self, dy, x):
        return F.silu_backward(dy, x)


class Mish(_Elementwise):
    """``torch.nn.Mish``: y = x · tanh(softplus(x));  dX = dY · (t + x σ(x) (1 − t²)), t = tanh(softplus(x))."""

    def __init__(self, inplace: bool = False):
        super().__init__()
        self.inplace = _flag("Mish", "inplace", inplace)

    def _forward(self, x, out):
        return F.mish(x, out=out)

    def _backward(self, dy, x):
        return F.mish_backward(dy, x)


class GELU(_Elementwise):
    """``torch.nn.GELU``: y = x · Φ(x) (approximate="none", Φ by an erf accurate to float64) or
    x · (1 + tanh(√(2/π)(x + 0.044715 x³))) / 2 (approximate="tanh");  dX = dY · (Φ(x) + x φ(x)), or the tanh
    form's derivative."""

    def __init__(self, approximate: str = "none"):
        super().__init__()
        if approximate not in ("none", "tanh"):
            raise ValueError(f"GELU: approximate must be 'none' or 'tanh', got {approximate!r}")
        self.approximate = approximate

    def _forward(self, x, out):
        return F.gelu(x, self.approximate)

    def _backward(self, dy, x):
        return F.gelu_backward(dy, x, self.approximate)

    def extra_repr(self):
        return f"approximate={self.approximate!r}"


class ELU(_Elementwise):
    """``torch.nn.ELU``: y = x if x > 0 else α (e^x − 1);  dX = dY · (1 if x > 0 else α e^x)."""

    def __init__(self, alpha: float = 1.0, inplace: bool = False):
        super().__init__()
        self.alpha = _real("ELU", "alpha", alpha)
        self.inplace = _flag("ELU", "inplace", inplace)

    def _forward(self, x, out):
        return F.elu(x, self.alpha, out=out)

    def _backward(self, dy, x):
        return F.elu_backward(dy, x, self.alpha)

    def extra_repr(self):
        return f"alpha={self.alpha}" + (", inplace=True" if self.inplace else "")


class SELU(_Elementwise):
    """``torch.nn.SELU``: y = λ (x if x > 0 else α (e^x − 1)), λ ≈ 1.0507, α ≈ 1.6733 (self-normalising);
    dX = dY · λ (1 if x > 0 else α e^x)."""

    def __init__(self, inplace: bool = False):
        super().__init__()
        self.inplace = _flag("SELU", "inplace", inplace)

    def _forward(self, x, out):
        return F.selu(x, out=out)

    def _backward(self, dy, x):
        return F.selu_backward(dy, x)


class Softplus(_Elementwise):
    """``torch.nn.Softplus``: y = log(1 + e^(βx)) / β, or x where βx > threshold;  dX = dY · σ(βx), or dY.
    Computed without overflow for any x (torch's formula overflows above βx ≈ 88 in float32 when the threshold
    is raised that far)."""

    def __init__(self, beta: float = 1.0, threshold: float = 20.0):
        super().__init__()
        self.beta = _real("Softplus", "beta", beta)
        if self.beta == 0:
            raise ValueError("Softplus: beta must be non-zero (y = log(1 + e^(βx)) / β), got 0")
        self.threshold = _real("Softplus", "threshold", threshold, finite=False)

    def _forward(self, x, out):
        return F.softplus(x, self.beta, self.threshold)

    def _backward(self, dy, x):
        return F.softplus_backward(dy, x, self.beta, self.threshold)

    def extra_repr(self):
        return f"beta={self.beta}, threshold={self.threshold}"


class PReLU(_Elementwise):
    """``torch.nn.PReLU``: y = x if x > 0 else a_c · x with a learned slope a_c per channel (axis 1;
    ``num_parameters`` = 1: one slope for every element, any shape), param ``weight`` (num_parameters,) set to
    ``init``;  dX = dY · (1 if x > 0 else a_c),  d weight_c = Σ dY · x · [x ≤ 0] over all but axis 1."""

    def __init__(self, num_parameters: int = 1, init: float = 0.25, device=None, dtype=None):
        super().__init__()
        if isinstance(num_parameters, (bool, np.bool_)) or not isinstance(num_parameters, numbers.Integral) \
                or num_parameters < 1:
            raise ValueError(f"PReLU: num_parameters must be a positive int, got {num_parameters!r}")
        self.num_parameters = int(num_parameters)
        self.init = _real("PReLU", "init", init)
        self.params["weight"] = np.full(self.num_parameters, self.init, factory_dtype("PReLU", device, dtype))
        self.grads["weight"] = np.zeros_like(self.params["weight"])

    def forward(self, x):
        _check_float_array(self, x)
        weight = self.params["weight"]
        if x.dtype != weight.dtype:
            raise TypeError(f"{self!r}: parameters are {weight.dtype} but the input is {x.dtype}; "
                            f"convert the input or call .to({x.dtype}) on the model")
        channels = x.shape[1] if x.ndim >= 2 else 1
        if self.num_parameters not in (1, channels):
            raise ValueError(f"{self!r}: expected input of shape (N, {self.num_parameters}, *) (the channels on "
                             f"axis 1), got shape {x.shape}")
        return super().forward(x)

    def _forward(self, x, out):
        return F.prelu(x, self.params["weight"])

    def _backward(self, dy, x):
        dx, dw = F.prelu_backward(dy, x, self.params["weight"])
        np.copyto(self.grads["weight"], dw)
        return dx

    def extra_repr(self):
        return f"num_parameters={self.num_parameters}"


# -- the softmax family ----------------------------------------------------------------------------------
def implicit_dim(ndim: int) -> int:
    """torch's axis for ``dim=None``: 0 for a 0-, 1- or 3-D input (taken for one sample), else 1."""
    return 0 if ndim in (0, 1, 3) else 1


class _AlongDim(Module):
    """A normalisation of x along ``dim``; ``dim=None`` takes torch's implicit choice (``implicit_dim``) with
    torch's deprecation warning at every call.  A 0-D input is one element along its only axis."""

    function = ""               # torch's functional name, in the warning

    def __init__(self, dim: int | None = None):
        super().__init__()
        if dim is not None and (isinstance(dim, (bool, np.bool_)) or not isinstance(dim, numbers.Integral)):
            raise TypeError(f"{type(self).__name__}: dim must be an int or None, got {dim!r}")
        self.dim = None if dim is None else int(dim)

    def axis(self, ndim: int) -> int:
        """The axis normalised over for an ndim-D input (``dim``, or the implicit one), without warning."""
        return implicit_dim(ndim) if self.dim is None else self.dim

    def forward(self, x):
        _check_float_array(self, x)
        if self.dim is None:
            warnings.warn(f"Implicit dimension choice for {self.function} has been deprecated. Change the call to "
                          f"include dim=X as an argument.", UserWarning, stacklevel=3)
        elif not -max(x.ndim, 1) <= self.dim < max(x.ndim, 1):
            raise ValueError(f"{self!r}: dim {self.dim} is out of range for a {x.ndim}-D input of shape {x.shape}")
        axis = self.axis(x.ndim)
        y = self._forward(x.reshape(1) if x.ndim == 0 else x, axis)
        self.save_for_backward(y, axis)
        return y.reshape(x.shape)

    def backward(self, dy):
        y, axis = self.saved_for_backward()
        return self._backward(dy.reshape(y.shape), y, axis).reshape(dy.shape)

    def extra_repr(self):
        return f"dim={self.dim}"


class Softmax(_AlongDim):
    """``torch.nn.Softmax``: y = e^x / Σ e^x along ``dim`` (stable);  dX = y ⊙ (dY − Σ dY ⊙ y).  For
    probabilities; train with CrossEntropyLoss on the logits instead."""

    function = "softmax"

    def _forward(self, x, axis):
        return F.softmax(x, axis)

    def _backward(self, dy, y, axis):
        return F.softmax_backward(dy, y, axis)


class LogSoftmax(_AlongDim):
    """``torch.nn.LogSoftmax``: y = x − log Σ e^x along ``dim`` (log-sum-exp, stable for any x);
    dX = dY − e^y Σ dY."""

    function = "log_softmax"

    def _forward(self, x, axis):
        return F.log_softmax(x, axis)

    def _backward(self, dy, y, axis):
        return F.log_softmax_backward(dy, y, axis)


class Softmin(_AlongDim):
    """``torch.nn.Softmin``: y = softmax(−x) along ``dim``;  dX = −y ⊙ (dY − Σ dY ⊙ y)."""

    function = "softmin"

    def _forward(self, x, axis):
        return F.softmin(x, axis)

    def _backward(self, dy, y, axis):
        return F.softmin_backward(dy, y, axis)
