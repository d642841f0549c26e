"""Stochastic depth (Huang et al. 2016, "Deep Networks with Stochastic Depth"): a residual branch dropped whole,
torchvision's ``ops.StochasticDepth``; an inverted dropout whose mask has one draw per sample (or per batch)."""
from __future__ import annotations

from .dropout import Dropout

MODES = ("row", "batch")


class StochasticDepth(Dropout):
    """``torchvision.ops.StochasticDepth(p, mode)``, applied to a residual branch before its sum with the shortcut.
    In training y = x · m / (1 − p), m ~ Bernoulli(1 − p) drawn once per sample (``mode="row"``: each sample's
    branch dropped with probability p) or once for the whole batch (``"batch"``); p = 1 gives y = 0 · x.  In eval,
    or with p = 0, y = x.  x (N, …) → y (N, …);  dX = dY · m / (1 − p).  Masks come from ``rng`` (keyword-only) or
    juanji's global generator (``juanji.random``), so a run resumed from its checkpoint draws the same ones."""

    def __init__(self, p: float, mode: str, *, rng=None):
        super().__init__(p, rng=rng)
        if mode not in MODES:
            raise ValueError(f"StochasticDepth: mode must be 'row' or 'batch', got {mode!r}")
        self.mode = mode

    def mask_shape(self, x) -> tuple:
        """(N, 1, …, 1) for "row", (1, …, 1) for "batch"."""
        if x.ndim == 0:
            raise ValueError(f"{self!r}: expected an input of shape (N, …), got a 0-D input")
        return ((x.shape[0] if self.mode == "row" else 1),) + (1,) * (x.ndim - 1)

    def extra_repr(self):
        return f"p={self.p}, mode={self.mode}"
