"""Inverted dropout: scaled at training time so evaluation is the identity."""
from __future__ import annotations

from .. import random as jrandom
from .module import Module


class Dropout(Module):
    """``torch.nn.Dropout``: in training y = x · m / (1 − p) with m ~ Bernoulli(1 − p) per element;
    in eval y = x.  dX = dY · m / (1 − p).  Masks come from ``rng`` or the global juanji generator."""

    def __init__(self, p: float = 0.5, rng=None):
        super().__init__()
        if not 0 <= p < 1:
            raise ValueError(f"Dropout: p must be in [0, 1), got {p}")
        self.p, self.rng = p, rng
        self._scale = None          # m / (1 − p) of the last forward; None when it was the identity
        self._ran = False

    def forward(self, x):
        self._ran = True
        if not self.training or self.p == 0:
            self._scale = None
            return x
        rng = self.rng or jrandom.generator()
        keep = rng.random(x.shape, dtype=x.dtype) >= self.p
        self._scale = keep * x.dtype.type(1 / (1 - self.p))
        return x * self._scale

    def backward(self, dy):
        if not self._ran:
            raise RuntimeError(f"{self!r}: backward called before forward")
        return dy if self._scale is None else dy * self._scale

    def extra_repr(self):
        return f"p={self.p}"
