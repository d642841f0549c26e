"""Batch normalisation layers (``torch.nn.BatchNorm1d`` / ``BatchNorm2d``), and the checks of the arguments
that every normalisation layer shares with torch's (device, dtype, eps, momentum, flags)."""
from __future__ import annotations

import numbers

import numpy as np

from ..functional import norm as F
from .module import Module, factory_dtype

def check_positive_int(layer: str, name: str, value) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value <= 0:
        raise ValueError(f"{layer}: {name} must be a positive int, got {value!r}")
    return int(value)


def check_real(layer: str, name: str, value, low=None, high=None, low_open=False, none=False) -> float | None:
    """``value`` as a float in [low, high] (``low_open``: above low), or None where ``none`` allows it."""
    if value is None and none:
        return None
    in_range = (isinstance(value, numbers.Real) and not isinstance(value, bool) and np.isfinite(value)
                and (low is None or value > low or (value == low and not low_open))
                and (high is None or value <= high))
    if not in_range:
        bounds = (f" {'>' if low_open else '≥'} {low}" if low is not None else "") + \
                 (f" and ≤ {high}" if high is not None else "")
        raise ValueError(f"{layer}: {name} must be a finite number{bounds}{' or None' if none else ''}, "
                         f"got {value!r}")
    return float(value)


def check_ints(layer: str, name: str, value, dims: int, low: int) -> tuple[int, ...]:
    """``value`` as ``dims`` ints ≥ ``low`` (an int, or a tuple/list of ``dims`` ints), else an error naming the
    layer and ``name``: a window's kernel_size, stride, padding, dilation."""
    values = (value,) * dims if isinstance(value, (int, np.integer)) else value
    if (not isinstance(values, (tuple, list)) or len(values) != dims
            or not all(isinstance(v, (int, np.integer)) and not isinstance(v, bool) for v in values)):
        raise TypeError(f"{layer}: {name} must be an int or a tuple of {dims} ints, got {value!r}")
    if min(values) < low:
        raise ValueError(f"{layer}: {name} must be {'positive' if low else 'non-negative'}, got {value!r}")
    return tuple(int(v) for v in values)


def check_flag(layer: str, name: str, value) -> bool:
    if not isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{layer}: {name} must be True or False, got {value!r}")
    return bool(value)


def init_running_norm(layer: Module, num_features, eps, momentum, affine, track_running_stats, device, dtype,
                      bias, eps_may_be_zero=False) -> None:
    """torch's ``_NormBase``: γ = 1 (``weight``) and β = 0 (``bias``, unless bias=False) where ``affine``;
    running_mean = 0, running_var = 1 and ``num_batches_tracked`` = 0 (int64) where ``track_running_stats``.
    ``eps`` > 0 (torch's batch norm refuses 0 in training), or ≥ 0 with ``eps_may_be_zero``."""
    name = type(layer).__name__
    dtype = factory_dtype(name, device, dtype)
    layer.num_features = check_positive_int(name, "num_features", num_features)
    layer.eps = check_real(name, "eps", eps, 0, low_open=not eps_may_be_zero)
    layer.momentum = check_real(name, "momentum", momentum, 0, 1, none=True)
    layer.affine = check_flag(name, "affine", affine)
    layer.track_running_stats = check_flag(name, "track_running_stats", track_running_stats)
    layer.has_bias = check_flag(name, "bias", bias)
    ones, zeros = np.ones(layer.num_features, dtype=dtype), np.zeros(layer.num_features, dtype=dtype)
    if layer.affine:
        layer.params["weight"], layer.grads["weight"] = ones.copy(), zeros.copy()
        if layer.has_bias:
            layer.params["bias"], layer.grads["bias"] = zeros.copy(), zeros.copy()
    if layer.track_running_stats:
        layer.buffers = {"running_mean": zeros.copy(), "running_var": ones.copy(),
                         "num_batches_tracked": np.zeros((), dtype=np.int64)}


def scale_and_shift(layer: Module, dtype) -> tuple[np.ndarray, np.ndarray]:
    """(γ, β) of a layer with ``weight``/``bias`` parameters, 1 and 0 (in ``dtype``) where it has none."""
    c = layer.num_features
    gamma, beta = layer.params.get("weight"), layer.params.get("bias")
    return (np.ones(c, dtype=dtype) if gamma is None else gamma), (np.zeros(c, dtype=dtype) if beta is None else beta)


class _BatchNorm(Module):
    """torch's ``_BatchNorm``: in training the batch's statistics normalise, and update the running ones with
    ``momentum`` (None: their cumulative average over ``num_batches_tracked`` batches); in eval the running
    statistics normalise — or the batch's again where ``track_running_stats`` is False (no running buffers)."""
    _ndims: tuple[int, ...]
    _shape_desc: str
    optional_buffers = ("num_batches_tracked",)         # checkpoints from before it was kept lack it

    def __init__(self, num_features: int, eps: float = 1e-5, momentum: float | None = 0.1, affine: bool = True,
                 track_running_stats: bool = True, device=None, dtype=None, *, bias: bool = True):
        super().__init__()
        init_running_norm(self, num_features, eps, momentum, affine, track_running_stats, device, dtype, bias)

    def forward(self, x):
        y, cache = self._normalise(x)
        self.save_for_backward(cache)
        return y

    def _normalise(self, x, relu: bool = False, residual=None, cap: float = float("inf")):
        """(y, cache) of ``F.batch_norm`` on x with this layer's parameters and statistics; ``relu``, ``residual``
        and ``cap`` ask the compiled kernels' sweep for min(max(y (+ residual), 0), cap) instead (``nn.fuse``)."""
        self._check_input(x, self._shape_desc.format(C=self.num_features), self._ndims, self.num_features)
        gamma, beta = scale_and_shift(self, x.dtype)
        updates = self.training and self.track_running_stats
        tracked = self.buffers.get("num_batches_tracked")
        factor = (1 / (int(tracked) + 1) if self.momentum is None else self.momentum) if updates else 0.0
        y, cache = F.batch_norm(x, gamma, beta, self.buffers.get("running_mean"), self.buffers.get("running_var"),
                                self.training or not self.track_running_stats, factor, self.eps,
                                reduce=self._statistics_sum(), relu=relu, residual=residual, cap=cap)
        if updates:
            tracked += 1
        return y, cache

    def backward(self, dy):
        cache, = self.saved_for_backward()
        return self._normalise_backward(dy, cache)

    def _normalise_backward(self, dy, cache, clamped=None):
        """dX of ``_normalise``'s y, with dγ and dβ written into ``grads``; ``clamped``: as
        ``F.batch_norm_backward``'s (dy is then dZ of the fused activation)."""
        dx, dgamma, dbeta = F.batch_norm_backward(dy, cache, reduce=self._gradient_sum(dy, cache), clamped=clamped)
        for key, grad in (("weight", dgamma), ("bias", dbeta)):
            if key in self.grads:
                np.copyto(self.grads[key], grad)
        return dx

    def _statistics_sum(self):
        """None: the statistics of this process's batch (``juanji.distributed.SyncBatchNorm`` sums them
        over processes)."""
        return None

    def _gradient_sum(self, dy, cache):
        return None

    def extra_repr(self):
        return (f"{self.num_features}, eps={self.eps}, momentum={self.momentum}, affine={self.affine}, "
                f"bias={self.has_bias}, track_running_stats={self.track_running_stats}")


class BatchNorm1d(_BatchNorm):
    """Normalises each feature over the batch (and length): x (N, C) or (N, C, L)."""
    _ndims, _shape_desc = (2, 3), "(N, {C}) or (N, {C}, L)"


class BatchNorm2d(_BatchNorm):
    """Normalises each channel over (N, H, W): x (N, C, H, W)."""
    _ndims, _shape_desc = (4,), "(N, {C}, H, W)"
