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

    def forward(self, x):
        if not self.training or self.p == 0:
            self.save_for_backward(None)        # the identity: no scale
            return x
        rng = self.rng or jrandom.generator()
        keep = rng.random(x.shape, dtype=x.dtype) >= self.p
        scale = keep * x.dtype.type(1 / (1 - self.p))      # m / (1 − p)
        self.save_for_backward(scale)
        return x * scale

    def backward(self, dy):
        scale, = self.saved_for_backward()
        return dy if scale is None else dy * scale

    def extra_repr(self):
        return f"p={self.p}"
