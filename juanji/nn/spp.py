"""AdaptiveMaxPool2d and SpatialPyramidPool2d (He et al. 2014): fixed-size outputs from any input size."""
from __future__ import annotations

from ..functional import spp as F
from .module import Module
from .pooling import AdaptivePool


class AdaptiveMaxPool2d(AdaptivePool):
    """``torch.nn.AdaptiveMaxPool2d``: x (N, C, H, W) or (C, H, W) → y (N, C, *output_size), max over PyTorch's
    adaptive bins (None in output_size keeps that axis).  ``return_indices=True``: forward returns (y, indices),
    each maximum's flat index row · W + column in its plane.  Backward routes each gradient to its bin's arg-max
    (the first, on ties)."""

    pool, pool_backward, pool_indices = F.adaptive_max_pool2d, F.adaptive_max_pool2d_backward, \
        F.adaptive_max_pool2d_indices

    def __init__(self, output_size, return_indices: bool = False):
        super().__init__(output_size, return_indices)


class SpatialPyramidPool2d(Module):
    """Spatial pyramid pooling: x (N, C, H, W) → y (N, C·Σ l²) for ``levels`` (l₁, l₂, …).

    Each level max-pools the map into l×l adaptive bins (as AdaptiveMaxPool2d); the flattened levels
    are concatenated, so the output length is the same for every H, W.  SPP-net (He et al. 2014) puts
    it between the last conv layer and the first fully connected one.
    """

    def __init__(self, levels=(1, 2, 4)):
        super().__init__()
        levels = tuple(levels)
        if not levels or not all(isinstance(l, int) and l > 0 for l in levels):
            raise ValueError(f"SpatialPyramidPool2d: levels must be positive ints, got {levels!r}")
        self.levels = levels

    def output_features(self, channels: int) -> int:
        """C · Σ l²: the length of each output row for an input with ``channels`` channels."""
        return channels * sum(l * l for l in self.levels)

    def forward(self, x):
        self._check_input(x, "(N, C, H, W)", 4)
        y, cache = F.spatial_pyramid_pool2d(x, self.levels)
        self.save_for_backward(cache)
        return y

    def backward(self, dy):
        cache, = self.saved_for_backward()
        return F.spatial_pyramid_pool2d_backward(dy, cache)

    def extra_repr(self):
        return f"levels={self.levels}"
