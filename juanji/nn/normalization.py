"""Batch normalisation layers (``torch.nn.BatchNorm1d`` / ``BatchNorm2d``)."""
from __future__ import annotations

import numpy as np

from ..functional import norm as F
from .module import Module


class _BatchNorm(Module):
    _ndims: tuple[int, ...]
    _shape_desc: str

    def __init__(self, num_features: int, eps: float = 1e-5, momentum: float = 0.1, affine: bool = True,
                 dtype=np.float32):
        super().__init__()
        if not isinstance(num_features, (int, np.integer)) or num_features <= 0:
            raise ValueError(f"{type(self).__name__}: num_features must be a positive int, got {num_features!r}")
        self.num_features, self.eps, self.momentum, self.affine = num_features, eps, momentum, affine
        ones, zeros = np.ones(num_features, dtype=dtype), np.zeros(num_features, dtype=dtype)
        if affine:
            self.params = {"weight": ones.copy(), "bias": zeros.copy()}
            self.grads = {"weight": zeros.copy(), "bias": zeros.copy()}
        self.buffers = {"running_mean": zeros.copy(), "running_var": ones.copy()}

    def forward(self, x):
        y, cache = self._normalise(x)
        self.save_for_backward(cache)
        return y

    def _normalise(self, x, relu: bool = False, residual=None):
        """(y, cache) of ``F.batch_norm`` on x with this layer's parameters and statistics; ``relu`` and
        ``residual`` ask the compiled kernels' sweep for max(y (+ residual), 0) instead (``juanji.nn.fuse``)."""
        self._check_input(x, self._shape_desc.format(C=self.num_features), self._ndims, self.num_features)
        mean, var = self.buffers["running_mean"], self.buffers["running_var"]
        if self.affine:
            gamma, beta = self.params["weight"], self.params["bias"]
        else:       # γ = 1, β = 0 in the buffers' dtype, which follows .to()
            gamma, beta = np.ones_like(mean), np.zeros_like(mean)
        return F.batch_norm(x, gamma, beta, mean, var, self.training, self.momentum, self.eps,
                            reduce=self._statistics_sum(), relu=relu, residual=residual)

    def backward(self, dy):
        cache, = self.saved_for_backward()
        return self._normalise_backward(dy, cache)

    def _normalise_backward(self, dy, cache):
        """dX of ``_normalise``'s y, with dγ and dβ written into ``grads``."""
        dx, dgamma, dbeta = F.batch_norm_backward(dy, cache, reduce=self._gradient_sum(dy, cache))
        if self.affine:
            np.copyto(self.grads["weight"], dgamma)
            np.copyto(self.grads["bias"], dbeta)
        return dx

    def _statistics_sum(self):
        """None: the statistics of this process's batch (``juanji.distributed.SyncBatchNorm`` sums them
        over processes)."""
        return None

    def _gradient_sum(self, dy, cache):
        return None

    def extra_repr(self):
        return f"{self.num_features}, eps={self.eps}, momentum={self.momentum}, affine={self.affine}"


class BatchNorm1d(_BatchNorm):
    """Normalises each feature over the batch (and length): x (N, C) or (N, C, L)."""
    _ndims, _shape_desc = (2, 3), "(N, {C}) or (N, {C}, L)"


class BatchNorm2d(_BatchNorm):
    """Normalises each channel over (N, H, W): x (N, C, H, W)."""
    _ndims, _shape_desc = (4,), "(N, {C}, H, W)"
