"""Upsample, UpsamplingNearest2d and UpsamplingBilinear2d (torch.nn's), on ``juanji.functional.upsample``."""
from __future__ import annotations

import numbers

from ..functional import upsample as F
from .module import Module

# The input ranks of each mode: 3 (N, C, L) or 4 (N, C, H, W).
RANKS = {"nearest": (3, 4), "nearest-exact": (3, 4), "area": (3, 4), "linear": (3,), "bilinear": (4,),
         "bicubic": (4,)}


class Upsample(Module):
    """``torch.nn.Upsample``: x (N, C, L) or (N, C, H, W) → y (N, C, *size), ``size`` given or ⌊in · scale_factor⌋.

    Modes: 'nearest' and 'nearest-exact' (3-d or 4-d input), 'linear' (3-d), 'bilinear' and 'bicubic' (4-d),
    'area' (adaptive average pooling to the output size); 'trilinear' (5-d volumes) is not available.
    ``align_corners`` (interpolating modes only; None = False) maps the corner pixels' centres onto each other.
    With a scale_factor, torch's coordinates use 1/scale_factor unless ``recompute_scale_factor`` (then in/out).
    Every mode is separable: y = A_h · x · A_wᵀ, dX = A_hᵀ · dY · A_w (``juanji.functional.upsample``).
    As in torch, a 3-d input is a batch of sequences, not an unbatched image.
    """

    def __init__(self, size=None, scale_factor=None, mode: str = "nearest", align_corners=None,
                 recompute_scale_factor=None):
        super().__init__()
        name = type(self).__name__
        if mode not in RANKS:
            refused = " ('trilinear' needs 5-d volumes, which juanji does not have)" if mode == "trilinear" else ""
            raise ValueError(f"{name}: mode must be one of {sorted(RANKS)}, got {mode!r}{refused}")
        if (size is None) == (scale_factor is None):
            raise ValueError(f"{name}: give exactly one of size and scale_factor (got size={size!r}, "
                             f"scale_factor={scale_factor!r})")
        if align_corners is not None:
            if mode not in ("linear", "bilinear", "bicubic"):
                raise ValueError(f"{name}: align_corners can only be set with the interpolating modes linear | "
                                 f"bilinear | bicubic, not with mode={mode!r}")
            if not isinstance(align_corners, bool):
                raise TypeError(f"{name}: align_corners must be None, True or False, got {align_corners!r}")
        if recompute_scale_factor is not None:
            if not isinstance(recompute_scale_factor, bool):
                raise TypeError(f"{name}: recompute_scale_factor must be None, True or False, "
                                f"got {recompute_scale_factor!r}")
            if recompute_scale_factor and size is not None:
                raise ValueError(f"{name}: recompute_scale_factor is not meaningful with an explicit size")
        self.size = None if size is None else self._positive(size, "size", numbers.Integral, int)
        self.scale_factor = (None if scale_factor is None
                             else self._positive(scale_factor, "scale_factor", numbers.Real, float))
        self.mode, self.align_corners, self.recompute_scale_factor = mode, align_corners, recompute_scale_factor

    def _positive(self, value, key, kind, cast):
        """An int/float, or a tuple/list of them, all positive, as ``cast`` (a tuple stays a tuple)."""
        values = value if isinstance(value, (tuple, list)) else (value,)
        if not values or not all(isinstance(v, kind) and not isinstance(v, bool) for v in values):
            raise TypeError(f"{type(self).__name__}: {key} must be a number or a tuple of numbers, got {value!r}")
        if min(values) <= 0:
            raise ValueError(f"{type(self).__name__}: {key} must be positive, got {value!r}")
        return tuple(cast(v) for v in values) if isinstance(value, (tuple, list)) else cast(value)

    def output_size(self, spatial) -> tuple[int, ...]:
        """The output's spatial sizes for an input's ``spatial`` sizes."""
        dims = len(spatial)
        given = self.size if self.size is not None else self.scale_factor
        given = given if isinstance(given, tuple) else (given,) * dims
        if len(given) != dims:
            key = "size" if self.size is not None else "scale_factor"
            raise ValueError(f"{self!r}: {key} {given} has {len(given)} entries for an input of {dims} spatial "
                             f"dimensions {tuple(spatial)}")
        if self.size is not None:
            return given
        return tuple(F.output_size(n, None, factor) for n, factor in zip(spatial, given))

    def forward(self, x):
        ranks = RANKS[self.mode]
        self._check_input(x, " or ".join(("(N, C, L)", "(N, C, H, W)")[r - 3] for r in ranks) + f" for mode "
                          f"{self.mode!r}", ranks)
        size = self.output_size(x.shape[2:])
        if min(size) <= 0:
            raise ValueError(f"{self!r}: an input of spatial size {x.shape[2:]} gives an empty output {size}")
        scales = None
        if self.scale_factor is not None and not self.recompute_scale_factor and self.mode != "area":
            scales = self.scale_factor if isinstance(self.scale_factor, tuple) else (self.scale_factor,) * len(size)
        y, cache = F.interpolate(x, size, self.mode, bool(self.align_corners), scales)
        self.save_for_backward(cache)
        return y

    def backward(self, dy):
        cache, = self.saved_for_backward()
        return F.interpolate_backward(dy, cache)

    def extra_repr(self):
        text = f"size={self.size}" if self.size is not None else f"scale_factor={self.scale_factor}"
        text += f", mode={self.mode!r}"
        if self.align_corners is not None:
            text += f", align_corners={self.align_corners}"
        return text


class UpsamplingNearest2d(Upsample):
    """``torch.nn.UpsamplingNearest2d``: Upsample(size, scale_factor, mode='nearest')."""

    def __init__(self, size=None, scale_factor=None):
        super().__init__(size, scale_factor, mode="nearest")


class UpsamplingBilinear2d(Upsample):
    """``torch.nn.UpsamplingBilinear2d``: Upsample(size, scale_factor, mode='bilinear', align_corners=True)."""

    def __init__(self, size=None, scale_factor=None):
        super().__init__(size, scale_factor, mode="bilinear", align_corners=True)
