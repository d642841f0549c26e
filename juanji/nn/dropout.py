"""Inverted dropout, of elements and of whole channels: scaled at training time so evaluation is the identity."""
from __future__ import annotations

import numbers
import warnings

import numpy as np

from .. import random as jrandom
from ..functional import dropout as F
from .module import Module


class Dropout(Module):
    """``torch.nn.Dropout``: in training y = x · m / (1 − p) with m ~ Bernoulli(1 − p) per element (p = 1:
    y = 0 · x); in eval, or with p = 0, y = x itself.  dX = dY · m / (1 − p).  ``inplace=True`` writes y into
    x and returns x, as torch.  Masks come from ``rng`` (juanji's own, keyword-only) or the global juanji
    generator."""

    def __init__(self, p: float = 0.5, inplace: bool = False, *, rng=None):
        super().__init__()
        name = type(self).__name__
        if isinstance(p, (bool, np.bool_)) or not isinstance(p, numbers.Real):
            raise TypeError(f"{name}: p must be a number in [0, 1], got {p!r}")
        if not 0 <= p <= 1:
            raise ValueError(f"{name}: p (the probability of a zero) must be in [0, 1], got {p}")
        if not isinstance(inplace, (bool, np.bool_)):
            raise TypeError(f"{name}: inplace must be True or False, got {inplace!r}")
        self.p, self.inplace, self.rng = p, bool(inplace), rng

    def mask_shape(self, x) -> tuple:
        """The shape of the mask drawn for x: one draw per element."""
        return x.shape

    def forward(self, x):
        if not isinstance(x, np.ndarray) or x.dtype.kind != "f":
            raise TypeError(f"{self!r}: expected a floating-point NumPy array, got "
                            f"{getattr(x, 'dtype', type(x).__name__)}")
        shape = self.mask_shape(x)
        if not self.training or self.p == 0:
            self.save_for_backward(None)        # the identity: no scale
            return x
        scale = F.dropout_scale(shape, self.p, x.dtype, self.rng or jrandom.generator())
        self.save_for_backward(scale)
        return F.dropout(x, scale, out=x if self.inplace else None)

    def backward(self, dy):
        scale, = self.saved_for_backward()
        return dy if scale is None else F.dropout_backward(dy, scale)

    def extra_repr(self):
        return f"p={self.p}, inplace={self.inplace}"


def _channel_mask(shape) -> tuple:
    """(N, C, 1, …, 1): one draw per channel of each sample."""
    return shape[:2] + (1,) * (len(shape) - 2)


class Dropout1d(Dropout):
    """``torch.nn.Dropout1d``: zeroes whole channels of (N, C, L), or of an unbatched (C, L), each with
    probability p, the rest scaled by 1 / (1 − p);  dX = dY · m / (1 − p)."""

    def mask_shape(self, x):
        if x.ndim not in (2, 3):
            raise ValueError(f"{self!r}: expected input of shape (N, C, L) or (C, L), got {x.ndim}-D input of "
                             f"shape {x.shape}")
        return _channel_mask(x.shape) if x.ndim == 3 else (x.shape[0], 1)


class Dropout2d(Dropout):
    """``torch.nn.Dropout2d``: zeroes whole channels of (N, C, H, W), each with probability p, the rest scaled by
    1 / (1 − p);  dX = dY · m / (1 − p).  As torch, a 3-D input is taken as (N, C, L) (with torch's warning), and
    another number of dimensions ≥ 2 warns and drops along axes 0 and 1."""

    def mask_shape(self, x):
        if x.ndim not in (3, 4):
            warnings.warn(f"dropout2d: Received a {x.ndim}-D input to dropout2d, which is deprecated and will "
                          "result in an error in a future release. To retain the behavior and silence this warning, "
                          "please use dropout instead. Note that dropout2d exists to provide channel-wise dropout on "
                          "inputs with 2 spatial dimensions, a channel dimension, and an optional batch dimension "
                          "(i.e. 3D or 4D inputs).", UserWarning, stacklevel=4)
        if x.ndim == 3:
            warnings.warn("dropout2d: Received a 3D input to dropout2d and assuming that channel-wise 1D dropout "
                          "behavior is desired - input is interpreted as shape (N, C, L), where C is the channel "
                          "dim. This behavior will change in a future release to interpret the input as one without "
                          "a batch dimension, i.e. shape (C, H, W). To maintain the 1D channel-wise dropout "
                          "behavior, please switch to using dropout1d instead.", UserWarning, stacklevel=4)
        if x.ndim < 2:
            raise ValueError(f"{self!r}: channel dropout needs at least 2 dimensions (N, C, …), got {x.ndim}-D "
                             f"input of shape {x.shape}")
        return _channel_mask(x.shape)


class Dropout3d(Dropout):
    """``torch.nn.Dropout3d``: zeroes whole channels of (N, C, D, H, W), or of an unbatched (C, D, H, W), each with
    probability p, the rest scaled by 1 / (1 − p);  dX = dY · m / (1 − p).  As torch, another number of
    dimensions warns and is taken as unbatched (its first axis the channels)."""

    def mask_shape(self, x):
        if x.ndim not in (4, 5):
            warnings.warn(f"dropout3d: Received a {x.ndim}-D input to dropout3d, which is deprecated and will "
                          "result in an error in a future release. To retain the behavior and silence this warning, "
                          "please use dropout instead. Note that dropout3d exists to provide channel-wise dropout on "
                          "inputs with 3 spatial dimensions, a channel dimension, and an optional batch dimension "
                          "(i.e. 4D or 5D inputs).", UserWarning, stacklevel=4)
        if x.ndim == 0:
            raise ValueError(f"{self!r}: channel dropout needs at least 1 dimension, got a 0-D input")
        return _channel_mask(x.shape) if x.ndim == 5 else _channel_mask((1,) + x.shape)[1:]
