"""Instance normalisation (``torch.nn.InstanceNorm1d`` / ``InstanceNorm2d``): each sample's channel by its
own statistics over the length or the image, batched or not."""
from __future__ import annotations

import math
import warnings

from ..functional import sample_norm as F
from .layer_norm import _SampleNorm
from .normalization import init_running_norm


class _InstanceNorm(_SampleNorm):
    """torch's ``_InstanceNorm``: μ, σ² of each (sample, channel) normalise in training, and in eval too unless
    ``track_running_stats``; running statistics, where tracked, are updated in training with ``momentum``
    (None: 0, as torch: they stay) from the mean over the samples of theirs, and normalise in eval.
    γ, β (C,) where ``affine`` (β unless bias=False).  ``num_batches_tracked`` is kept, as torch, never counted."""
    _spatial: int                   # spatial axes: 1 (L) or 2 (H, W)
    _shape_desc: str
    optional_buffers = ("num_batches_tracked",)

    def __init__(self, num_features: int, eps: float = 1e-5, momentum: float = 0.1, affine: bool = False,
                 track_running_stats: bool = False, device=None, dtype=None, *, bias: bool = True):
        super().__init__()
        init_running_norm(self, num_features, eps, momentum, affine, track_running_stats, device, dtype, bias,
                          eps_may_be_zero=True)

    def forward(self, x):
        batched = self._spatial + 2
        self._check_input(x, self._shape_desc.format(C=self.num_features), (batched - 1, batched))
        channels = x.shape[x.ndim - self._spatial - 1]
        if channels != self.num_features:
            message = (f"{self!r}: expected input of shape {self._shape_desc.format(C=self.num_features)}, got "
                       f"shape {x.shape} ({channels} channels)")
            if self.affine or self.track_running_stats:
                raise ValueError(message)
            warnings.warn(f"{message}; without affine or running statistics num_features is not used",
                          stacklevel=2)
        use_input_stats = self.training or not self.track_running_stats
        if use_input_stats and math.prod(x.shape[x.ndim - self._spatial:]) == 1:
            raise ValueError(f"{self!r}: expected more than 1 spatial element when training, got input of shape "
                             f"{x.shape}")
        unbatched = x.ndim < batched
        y, cache = F.instance_norm(x[None] if unbatched else x, self.params.get("weight"), self.params.get("bias"),
                                   self.buffers.get("running_mean"), self.buffers.get("running_var"),
                                   use_input_stats, self.momentum or 0.0, self.eps)
        self.save_for_backward(cache, unbatched)
        return y[0] if unbatched else y

    def extra_repr(self):
        return (f"{self.num_features}, eps={self.eps}, momentum={self.momentum}, affine={self.affine}, "
                f"track_running_stats={self.track_running_stats}")


class InstanceNorm1d(_InstanceNorm):
    """Normalises each sample's channel over its length: x (N, C, L) or unbatched (C, L)."""
    _spatial, _shape_desc = 1, "(N, {C}, L) or ({C}, L)"


class InstanceNorm2d(_InstanceNorm):
    """Normalises each sample's channel over its image: x (N, C, H, W) or unbatched (C, H, W)."""
    _spatial, _shape_desc = 2, "(N, {C}, H, W) or ({C}, H, W)"
