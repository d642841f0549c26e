"""The kernels of nn.fuse's ReLU6 pairs and folded batch norms: the compiled batch norm sweep with ReLU6 after it
(z = min(max(BN(x), 0), 6), whose backward is BN's of dZ · [0 < z < 6]); a batch norm in eval as y = s·x + t
(``batch_norm_fold``, torch's ``fuse_conv_bn_weights``); and ``shift_and_clamp``, the batch norm's shift and
the activation after it written over the folded convolution's output — against torch, the unfused layers, NumPy's
kernels and the uncompiled loops, at 1 and 2 threads, NaN and ±∞ included."""
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as TF
from hypothesis import given, settings
from hypothesis import strategies as st
from torch.nn.utils.fusion import fuse_conv_bn_weights

from juanji.functional import activation, norm
from juanji.functional.compiled import norm as compiled_norm
from juanji.runtime import kernels
from kernel_check import DTYPES, assert_close, torch_vjp

ACTIVATIONS = {"none": (-math.inf, math.inf, lambda t: t), "relu": (0.0, math.inf, TF.relu),
               "relu6": (0.0, 6.0, TF.relu6)}
SHAPES = st.tuples(st.integers(1, 4), st.integers(1, 5), st.integers(1, 6), st.integers(1, 6))


def close_and_equally_non_finite(ours, theirs, what):
    """NaN and ±∞ where torch has them (NaN as NaN), the suite's closeness elsewhere."""
    theirs = theirs.numpy()
    finite = np.isfinite(theirs)
    np.testing.assert_array_equal(ours[~finite], theirs[~finite], what)
    assert_close(ours[finite], theirs[finite], f"{what} vs torch")


def statistics(rng, channels, dtype):
    """γ, β, μ, σ² of a batch norm that has seen some batches (γ may be negative or 0)."""
    gamma = rng.standard_normal(channels) * 2
    gamma[rng.random(channels) < 0.2] = 0
    return [a.astype(dtype) for a in (gamma, rng.standard_normal(channels), rng.standard_normal(channels),
                                      rng.uniform(0.2, 3, channels))]


@pytest.mark.usefixtures("numba_kernels", "batch_threads")
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("training", [True, False])
@settings(max_examples=15, deadline=None)
@given(shape=SHAPES, seed=st.integers(0, 2**16))
def test_batch_norm_with_relu6_fused_matches_torch_and_the_unfused_pair(shape, seed, training, dtype):
    """The compiled sweep's z is the unfused batch norm's y clamped to [0, 6], bit for bit; BN's backward of
    dZ · [0 < z < 6] (ReLU6's mask, from z) gives torch's gradients; the running statistics are the unfused
    layer's."""
    rng = np.random.default_rng(seed)
    x = (rng.standard_normal(shape) * 4 + 1).astype(dtype)
    gamma, beta, mean, var = statistics(rng, shape[1], dtype)
    state, state_unfused = (mean.copy(), var.copy()), (mean.copy(), var.copy())
    if training and x.size == shape[1]:
        return                          # one value per channel: refused in training (tested elsewhere)
    z, cache = norm.batch_norm(x, gamma, beta, *state, training, 0.2, 1e-3, relu=True, cap=6)
    y, _ = norm.batch_norm(x, gamma, beta, *state_unfused, training, 0.2, 1e-3)
    assert z.dtype == dtype and np.array_equal(z, activation.hardtanh(y, 0, 6))
    for got, want in zip(state, state_unfused):
        assert np.array_equal(got, want)
    dz = rng.standard_normal(shape).astype(dtype)
    grads = norm.batch_norm_backward(activation.hardtanh_backward(dz, z, 0, 6), cache)
    running = [torch.from_numpy(mean.copy()), torch.from_numpy(var.copy())]
    z_t, torch_grads = torch_vjp(lambda t, g, b: TF.relu6(TF.batch_norm(t, *running, g, b, training, 0.2, 1e-3)),
                                 dz, x, gamma, beta)
    assert_close(z, z_t, "z vs torch")
    for name, got, want in zip(["dx", "dγ", "dβ"], grads, torch_grads):
        assert got.dtype == dtype
        assert_close(got, want, f"{name} vs torch")


@pytest.mark.usefixtures("numba_kernels")
@pytest.mark.parametrize("dtype", DTYPES)
def test_relu6_fused_keeps_nan_and_clamps_infinities_as_torch(dtype):
    x = np.array([np.nan, np.inf, -np.inf, 7, 3, -1], dtype).reshape(1, 1, 6)
    args = (np.ones(1, dtype), np.zeros(1, dtype), np.zeros(1, dtype), np.ones(1, dtype), False)
    z, _ = norm.batch_norm(x, *args, eps=0.0, relu=True, cap=6)
    z_t = TF.relu6(TF.batch_norm(torch.from_numpy(x), *(torch.from_numpy(a) for a in args[2:4]),
                                 *(torch.from_numpy(a) for a in args[:2]), False, eps=0.0))
    close_and_equally_non_finite(z, z_t, "z")
    assert np.isnan(z[0, 0, 0]) and z[0, 0, 1:].tolist() == [6, 0, 6, 3, 0]


@pytest.mark.usefixtures("numba_kernels")
def test_the_uncompiled_relu6_sweep_agrees_with_the_compiled_one():
    rng = np.random.default_rng(1)
    x3 = rng.standard_normal((3, 2, 7)) * 5
    results = []
    for loop in (compiled_norm.batch_norm_forward_loop, compiled_norm.batch_norm_forward_loop.py_func):
        mean, var, y, inv_std = np.zeros(2), np.zeros(2), np.empty_like(x3), np.empty(2)
        loop(x3, np.ones(2) * 5, np.full(2, 0.5), mean, var, 1e-5, True, True, None, y, inv_std, 6.0)
        results.append((mean, var, y, inv_std))
    assert (results[0][2] == 6).any() and (results[0][2] == 0).any()
    for got, want in zip(*results):
        np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-13)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("bias", [True, False])
def test_the_fold_is_torchs(dtype, bias):
    """(s·W, s·b + t) are torch's ``fuse_conv_bn_weights``: W (K, C, R, S) scaled per output channel."""
    rng = np.random.default_rng(2)
    gamma, beta, mean, var = statistics(rng, 4, dtype)
    weight, b = rng.standard_normal((4, 3, 3, 2)).astype(dtype), rng.standard_normal(4).astype(dtype)
    scale, shift = norm.batch_norm_fold(gamma, beta, mean, var, 1e-3)
    assert scale.shape == shift.shape == (4,)
    tensors = [torch.from_numpy(a) for a in (weight, b if bias else np.zeros(4, dtype), mean, var)]
    weight_t, bias_t = fuse_conv_bn_weights(*tensors[:2], *tensors[2:], 1e-3, torch.from_numpy(gamma),
                                            torch.from_numpy(beta))
    assert_close(weight * scale.reshape(-1, 1, 1, 1), weight_t, "s·W", dtype)
    assert_close((b * scale if bias else 0) + shift, bias_t, "s·b + t", dtype)


@pytest.mark.usefixtures("kernels", "batch_threads")
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("kind", list(ACTIVATIONS))
@settings(max_examples=12, deadline=None)
@given(shape=SHAPES, residual=st.booleans(), seed=st.integers(0, 2**16))
def test_shift_and_clamp_is_the_batch_norm_in_eval_and_its_activation(shape, residual, seed, kind, dtype):
    """Over s·x (the folded conv's output) it gives act(BN(x) (+ r)) as torch computes it, NaN and ±∞ included,
    in place; the compiled loop is NumPy's kernels' (bit for bit: the same sums in the same dtype) and its own
    uncompiled loop's."""
    rng = np.random.default_rng(seed)
    x = (rng.standard_normal(shape) * 4).astype(dtype)
    x.reshape(-1)[rng.integers(0, x.size, 2)] = rng.choice([np.nan, np.inf, -np.inf], 2)
    r = rng.standard_normal(shape).astype(dtype) if residual else None
    gamma, beta, mean, var = statistics(rng, shape[1], dtype)
    low, high, act = ACTIVATIONS[kind]
    scale, shift = norm.batch_norm_fold(gamma, beta, mean, var, 1e-3)
    with np.errstate(invalid="ignore"):          # ±∞ · 0 where γ = 0: NaN, as torch
        y = x * scale.astype(dtype).reshape(1, -1, 1, 1)
    before = y.copy()
    z = norm.shift_and_clamp(y, shift, r, low, high)
    assert z is y and z.dtype == dtype
    bn = TF.batch_norm(torch.from_numpy(x), *(torch.from_numpy(a) for a in (mean, var, gamma, beta)), False, 0.1,
                       1e-3)
    close_and_equally_non_finite(z, act(bn if r is None else bn + torch.from_numpy(r)), "act(BN(x) (+ r))")
    with np.errstate(invalid="ignore"):
        want = np.minimum(np.maximum(before + shift.astype(dtype).reshape(1, -1, 1, 1) + (0 if r is None else r),
                                     low), high)
    np.testing.assert_array_equal(z, want)
    if kernels.get_kernels() == "numba":
        again = before.reshape(shape[:2] + (-1,)).copy()
        compiled_norm.shift_and_clamp_loop.py_func(again, shift.astype(dtype), None if r is None else
                                                   r.reshape(again.shape), dtype(low), dtype(high))
        np.testing.assert_array_equal(again.reshape(shape), z)


@pytest.mark.parametrize("backend", kernels.BACKENDS)
def test_shift_and_clamp_refuses_what_it_cannot_write_in_place(backend, monkeypatch):
    if backend == "numba" and not kernels.numba_available():
        pytest.skip("Numba is not installed")
    monkeypatch.setattr(kernels, "_chosen", backend)
    y = np.zeros((2, 3, 4, 4), np.float32)
    with pytest.raises(ValueError, match="y must be contiguous"):
        norm.shift_and_clamp(y[:, :, ::2], np.zeros(3))
    with pytest.raises(ValueError, match=r"residual of shape \(2, 3, 4, 1\) is not y's"):
        norm.shift_and_clamp(y, np.zeros(3), np.zeros((2, 3, 4, 1), np.float32))
