"""Activation layers; each keeps what its backward needs (the input, or the output where cheaper)."""
from __future__ import annotations

from ..functional import activation as F
from .module import Module


class _Activation(Module):
    def _saved(self):
        if self._cache is None:
            raise RuntimeError(f"{self!r}: backward called before forward")
        return self._cache

    _cache = None


class ReLU(_Activation):
    """y = max(x, 0);  dX = dY · [x > 0]"""

    def forward(self, x):
        self._cache = x
        return F.relu(x)

    def backward(self, dy):
        return F.relu_backward(dy, self._saved())


class LeakyReLU(_Activation):
    """y = x if x > 0 else slope · x;  dX = dY · (1 or slope)"""

    def __init__(self, negative_slope: float = 0.01):
        super().__init__()
        self.negative_slope = negative_slope

    def forward(self, x):
        self._cache = x
        return F.leaky_relu(x, self.negative_slope)

    def backward(self, dy):
        return F.leaky_relu_backward(dy, self._saved(), self.negative_slope)

    def extra_repr(self):
        return f"negative_slope={self.negative_slope}"


class Sigmoid(_Activation):
    """y = σ(x);  dX = dY · y (1 − y)"""

    def forward(self, x):
        self._cache = F.sigmoid(x)
        return self._cache

    def backward(self, dy):
        return F.sigmoid_backward(dy, self._saved())


class Tanh(_Activation):
    """y = tanh x;  dX = dY · (1 − y²)"""

    def forward(self, x):
        self._cache = F.tanh(x)
        return self._cache

    def backward(self, dy):
        return F.tanh_backward(dy, self._saved())


class Softmax(_Activation):
    """y = e^x / Σ e^x along ``dim`` (stable);  dX = y ⊙ (dY − Σ dY ⊙ y).  For probabilities; train with
    CrossEntropyLoss on the logits instead."""

    def __init__(self, dim: int = -1):
        super().__init__()
        self.dim = dim

    def forward(self, x):
        self._cache = F.softmax(x, axis=self.dim)
        return self._cache

    def backward(self, dy):
        return F.softmax_backward(dy, self._saved(), axis=self.dim)

    def extra_repr(self):
        return f"dim={self.dim}"
