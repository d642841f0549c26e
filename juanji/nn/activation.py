"""Activation layers; each keeps what its backward needs (the input, or the output where cheaper)."""
from __future__ import annotations

from ..functional import activation as F
from .module import Module


class ReLU(Module):
    """y = max(x, 0);  dX = dY · [x > 0]."""

    def forward(self, x):
        self.save_for_backward(x)
        return F.relu(x)

    def backward(self, dy):
        x_or_y, = self.saved_for_backward()
        return F.relu_backward(dy, x_or_y)


class LeakyReLU(Module):
    """y = x if x > 0 else slope · x;  dX = dY · (1 or slope)"""

    def __init__(self, negative_slope: float = 0.01):
        super().__init__()
        self.negative_slope = negative_slope

    def forward(self, x):
        self.save_for_backward(x)
        return F.leaky_relu(x, self.negative_slope)

    def backward(self, dy):
        x, = self.saved_for_backward()
        return F.leaky_relu_backward(dy, x, self.negative_slope)

    def extra_repr(self):
        return f"negative_slope={self.negative_slope}"


class Sigmoid(Module):
    """y = σ(x);  dX = dY · y (1 − y)"""

    def forward(self, x):
        y = F.sigmoid(x)
        self.save_for_backward(y)
        return y

    def backward(self, dy):
        y, = self.saved_for_backward()
        return F.sigmoid_backward(dy, y)


class Tanh(Module):
    """y = tanh x;  dX = dY · (1 − y²)"""

    def forward(self, x):
        y = F.tanh(x)
        self.save_for_backward(y)
        return y

    def backward(self, dy):
        y, = self.saved_for_backward()
        return F.tanh_backward(dy, y)


class Softmax(Module):
    """y = e^x / Σ e^x along ``dim`` (stable);  dX = y ⊙ (dY − Σ dY ⊙ y).  For probabilities; train with
    CrossEntropyLoss on the logits instead."""

    def __init__(self, dim: int = -1):
        super().__init__()
        self.dim = dim

    def forward(self, x):
        y = F.softmax(x, axis=self.dim)
        self.save_for_backward(y)
        return y

    def backward(self, dy):
        y, = self.saved_for_backward()
        return F.softmax_backward(dy, y, axis=self.dim)

    def extra_repr(self):
        return f"dim={self.dim}"
