"""The compiled batch norm's rows loops (small maps: ``plan.BATCH_NORM_ROWS_MAX_PIXELS``): the plan that picks them
and is kept in the cache; forward and backward, with ReLU, ReLU6 (the mask taken in the backward's sweeps) or a
residual sum and ReLU, in training and eval, against the per-channel loops' uncompiled reference and torch, float64
and float32, running statistics, 1 and 2 threads (channels split), NaN and ±∞; their own uncompiled loops; and the
fused layers on them against torch."""
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as TF
from hypothesis import given, settings
from hypothesis import strategies as st

from juanji.functional import activation, norm, plan
from juanji.functional.compiled import norm as compiled_norm
from juanji.nn import BatchNorm2d
from juanji.nn.fused import BatchNormAddReLU, BatchNormReLU, BatchNormReLU6
from juanji.runtime import kernels
from kernel_check import DTYPES, assert_close, torch_vjp

# name: (relu, cap, residual, torch's activation after the batch norm (and the sum))
KINDS = {"none": (False, math.inf, False, lambda t: t), "relu": (True, math.inf, False, TF.relu),
         "relu6": (True, 6.0, False, TF.relu6), "residual": (True, math.inf, True, TF.relu)}
# (N, C) and (N, C, L) inputs, and maps of up to 8 × 8 pixels
SHAPES = st.tuples(st.integers(1, 5), st.integers(1, 6)).flatmap(lambda nc: st.one_of(
    st.just(nc), st.tuples(st.just(nc[0]), st.just(nc[1]), st.integers(1, 9)),
    st.tuples(st.just(nc[0]), st.just(nc[1]), st.integers(1, 8), st.integers(1, 8))))


def close_and_equally_non_finite(ours, theirs, what, dtype=None):
    """NaN and ±∞ where ``theirs`` has them, the suite's closeness elsewhere."""
    finite = np.isfinite(theirs)
    assert np.array_equal(ours[~finite], theirs[~finite], equal_nan=True), f"{what}: non-finite values differ"
    assert_close(ours[finite], theirs[finite], what, dtype)


@pytest.fixture
def split_channels(monkeypatch):
    """The rows loops split their channels over the threads however small the call."""
    monkeypatch.setattr(plan, "BATCH_NORM_ROWS_SPLIT_MIN_ELEMENTS", 0)


def reference(x, gamma, beta, mean, var, training, dz, low, cap, residual, eps=1e-3):
    """(z, μ, σ², dX, dγ, dβ) by the per-channel loops' plain Python (``py_func``), dZ taken where
    low < z < cap (ReLU6's), z > low (ReLU's: cap ∞), everywhere (no activation: low −∞), else 0."""
    x3 = x.reshape(x.shape[:2] + (-1,))
    c = x.shape[1]
    mean, var = (np.zeros(c), np.zeros(c)) if training else (mean.astype(float), var.astype(float))
    z, inv_std = np.empty_like(x3), np.empty(c)
    compiled_norm.batch_norm_forward_loop.py_func(
        x3, gamma.astype(float), beta.astype(float), mean, var, eps, training, low == 0, None if residual is None
        else residual.reshape(x3.shape), z, inv_std, cap)
    inside = (z > low) & ((z < cap) | (cap == math.inf))
    dy = np.where(inside | (low == -math.inf), dz.reshape(x3.shape), 0).astype(x.dtype)
    dx, dgamma, dbeta = np.empty_like(x3), np.empty(c), np.empty(c)
    compiled_norm.batch_norm_backward_loop.py_func(dy, x3, mean, inv_std.astype(x.dtype).astype(float),
                                                   gamma.astype(float), training, dx, dgamma, dbeta)
    return z.reshape(x.shape), mean, var, dx.reshape(x.shape), dgamma, dbeta


@pytest.mark.usefixtures("numba_kernels", "batch_threads", "split_channels")
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("training", [True, False])
@pytest.mark.parametrize("kind", list(KINDS))
@settings(max_examples=12, deadline=None)
@given(shape=SHAPES, seed=st.integers(0, 2**16))
def test_the_rows_loops_match_the_reference_loops_and_torch(shape, seed, kind, training, dtype):
    """z, dX, dγ, dβ and the running statistics: those of the per-channel reference loops (the mask applied
    apart) and torch's, the backward given dZ and z (``clamped``) where an activation with no residual follows."""
    rng = np.random.default_rng(seed)
    relu, cap, residual, act = KINDS[kind]
    x = (rng.standard_normal(shape) * 4 + 1).astype(dtype)
    if training and x.size == shape[1]:
        return                          # one value per channel: refused in training (tested elsewhere)
    c = shape[1]
    gamma, beta = (rng.standard_normal(c) * 3).astype(dtype), rng.standard_normal(c).astype(dtype)
    mean, var = rng.standard_normal(c).astype(dtype), rng.uniform(0.2, 3, c).astype(dtype)
    r = rng.standard_normal(shape).astype(dtype) if residual else None
    dz = rng.standard_normal(shape).astype(dtype)
    state = (mean.copy(), var.copy())
    z, cache = norm.batch_norm(x, gamma, beta, *state, training, 0.2, 1e-3, relu=relu, residual=r, cap=cap)
    assert cache.plan == "rows" and norm.masks_in_backward(cache)
    if relu and not residual:
        grads = norm.batch_norm_backward(dz, cache, clamped=(z, 0.0, cap))
    else:
        grads = norm.batch_norm_backward(activation.relu_backward(dz, z) if residual else dz, cache)
    low = 0.0 if relu else -math.inf
    z_ref, mean_ref, var_ref, *grads_ref = reference(x, gamma, beta, mean, var, training, dz, low, cap, r)
    assert z.dtype == dtype and all(g.dtype == dtype for g in grads)
    assert_close(z, z_ref, "z vs the reference loop", dtype)
    for name, got, want in zip(["dx", "dγ", "dβ"], grads, grads_ref):
        assert_close(got, want, f"{name} vs the reference loop", dtype)
    running = [torch.from_numpy(mean.copy()), torch.from_numpy(var.copy())]
    tensors = (x, gamma, beta) + ((r,) if residual else ())
    z_t, torch_grads = torch_vjp(lambda t, g, b, *s: act(TF.batch_norm(t, *running, g, b, training, 0.2, 1e-3)
                                                          + (s[0] if s else 0)), dz, *tensors)
    assert_close(z, z_t, "z vs torch")
    for name, got, want in zip(["dx", "dγ", "dβ"], grads, torch_grads):
        assert_close(got, want, f"{name} vs torch")
    if training:
        for got, want in zip(state, running):
            assert_close(got, want, "running statistics vs torch")
    else:
        assert np.array_equal(state[0], mean) and np.array_equal(state[1], var)


@pytest.mark.usefixtures("numba_kernels", "batch_threads", "split_channels")
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("training", [True, False])
def test_nan_and_infinities_stay_where_the_reference_loops_put_them(training, dtype):
    """A NaN or ±∞ in x: in training its channel's statistics and outputs are NaN, in eval only its own value
    (ReLU6 clamps ±∞, keeps NaN), as torch; the mask gives 0 where z is NaN, clamped, or dZ is ±∞ or NaN there
    (ReLU6's backward), and the other channels' gradients are the reference loops'."""
    rng = np.random.default_rng(3)
    x = (rng.standard_normal((4, 3, 3, 3)) * 4).astype(dtype)
    x[1, 0, 1, 1], x[2, 0, 0, 2], x[3, 0, 2, 0] = np.nan, np.inf, -np.inf
    gamma, beta = np.array([1.0, 8.0, -8.0], dtype), np.array([0.5, 1.0, 2.0], dtype)
    mean, var = np.zeros(3, dtype), np.ones(3, dtype)
    z, cache = norm.batch_norm(x, gamma, beta, mean.copy(), var.copy(), training, 0.2, 1e-3, relu=True, cap=6.0)
    running = [torch.from_numpy(mean.copy()), torch.from_numpy(var.copy())]
    z_t = TF.relu6(TF.batch_norm(torch.from_numpy(x), *running, torch.from_numpy(gamma), torch.from_numpy(beta),
                                 training, 0.2, 1e-3)).numpy()
    close_and_equally_non_finite(z, z_t, "z vs torch")
    assert np.isnan(z[:, 0]).all() == training and (z[:, 1:] == 6).any() and (z[:, 1:] == 0).any()
    dz = rng.standard_normal(x.shape).astype(dtype)
    clamped = np.argwhere((z[:, 1:] == 0) | (z[:, 1:] == 6))[:3] + [0, 1, 0, 0]
    assert len(clamped) == 3
    for (i, j, k, m), value in zip(clamped, (np.inf, np.nan, -np.inf)):
        dz[i, j, k, m] = value
    grads = norm.batch_norm_backward(dz, cache, clamped=(z, 0.0, 6.0))
    with np.errstate(invalid="ignore"):         # the reference's 0 · NaN, as ours
        *_, dx_ref, dgamma_ref, dbeta_ref = reference(x, gamma, beta, mean, var, training, dz, 0.0, 6.0, None)
    for name, got, want in zip(["dx", "dγ", "dβ"], grads, (dx_ref, dgamma_ref, dbeta_ref)):
        close_and_equally_non_finite(got, want, f"{name} vs the reference loop", dtype)
    assert np.isfinite(grads[0][:, 1:]).all() and np.isfinite(grads[0][:, 0]).all() == (not training)


@pytest.mark.usefixtures("numba_kernels")
def test_the_plan_takes_small_maps_by_rows_at_every_size_and_the_backward_follows_the_cache(monkeypatch):
    monkeypatch.setattr(plan, "COMPILED_MIN_ELEMENTS", 1 << 19)
    assert [plan.plan_batch_norm(shape) for shape in ((64, 384, 4, 4), (2, 3, 8, 8), (5, 3), (2, 3, 7),
                                                      (2, 3, 9, 8), (64, 128, 9, 9))] == \
        ["rows"] * 4 + ["numpy", "compiled"]
    x = np.random.default_rng(0).standard_normal((3, 2, 2, 2))
    assert norm.fuses_relu(x)
    z, cache = norm.batch_norm(x, np.ones(2), np.zeros(2), None, None, True, relu=True)
    assert cache.plan == "rows" and norm.masks_in_backward(cache)
    _, unfused = norm.batch_norm(x, np.ones(2), np.zeros(2), None, None, True, reduce=lambda a: a)
    assert unfused.plan == "numpy" and not norm.masks_in_backward(unfused)
    with pytest.raises(ValueError, match="clamped= needs the rows loops"):
        norm.batch_norm_backward(x, unfused, clamped=(z, 0.0, math.inf))
    monkeypatch.setattr(kernels, "_chosen", "numpy")
    assert plan.plan_batch_norm((64, 384, 4, 4)) == "numpy" and not norm.masks_in_backward(cache)


@pytest.mark.usefixtures("numba_kernels")
def test_the_uncompiled_rows_loops_agree_with_the_compiled_ones():
    rng = np.random.default_rng(1)
    n, c, length = 3, 4, 5
    x, r, dz = (rng.standard_normal((n, c * length)) * 3 for _ in range(3))
    gamma, beta = rng.standard_normal(c) * 4, rng.standard_normal(c)
    results = []
    for forward, backward in ((compiled_norm.batch_norm_rows_forward_loop,
                               compiled_norm.batch_norm_rows_backward_loop),
                              (compiled_norm.batch_norm_rows_forward_loop.py_func,
                               compiled_norm.batch_norm_rows_backward_loop.py_func)):
        mean, var, z, inv_std = np.zeros(c), np.zeros(c), np.empty_like(x), np.empty(c)
        for first, stop in ((0, 1), (1, c)):            # two chunks of channels, as two threads take them
            forward(x, length, gamma, beta, mean, var, 1e-5, True, True, r, z, inv_std, 6.0, first, stop)
        dx, dgamma, dbeta = np.empty_like(x), np.empty(c), np.empty(c)
        for first, stop in ((0, 3), (3, c)):
            backward(dz, x, length, mean, inv_std, gamma, True, z, 0.0, 6.0, dx, dgamma, dbeta, first, stop)
        results.append((mean, var, z, inv_std, dx, dgamma, dbeta))
    assert (results[0][2] == 6).any() and (results[0][2] == 0).any()
    for got, want in zip(*results):
        np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-13)


@pytest.mark.usefixtures("batch_threads", "split_channels")
@pytest.mark.parametrize("layer", [BatchNormReLU, BatchNormReLU6, BatchNormAddReLU])
@pytest.mark.parametrize("training", [True, False])
def test_the_fused_layers_on_small_maps_match_torch(layer, training, monkeypatch):
    """MobileNet v2's 2×2 maps (float32): the layers' output, dX (and dS), dγ, dβ and running statistics, with
    the compiled kernels at their own thresholds (the rows loops at every size)."""
    if not kernels.numba_available():
        pytest.skip("Numba is not installed")
    monkeypatch.setattr(kernels, "_chosen", "numba")
    rng = np.random.default_rng(2)
    x, s, dz = ((rng.standard_normal((5, 6, 2, 2)) * 3).astype(np.float32) for _ in range(3))
    batch_norm, twin = BatchNorm2d(6), torch.nn.BatchNorm2d(6)
    for key, value in (("weight", rng.standard_normal(6) * 4), ("bias", rng.standard_normal(6))):
        batch_norm.params[key][...] = value
        getattr(twin, key).data[...] = torch.from_numpy(value.astype(np.float32))
    fused = layer(batch_norm)
    fused.train(training)
    twin.train(training)
    act = TF.relu6 if layer is BatchNormReLU6 else TF.relu
    residual = layer is BatchNormAddReLU
    z = fused.forward(x, s) if residual else fused.forward(x)
    assert fused._saved[0].plan == "rows"
    grads = fused.backward(dz)
    leaves = [torch.from_numpy(a.copy()).requires_grad_() for a in (x, s)]
    z_t = act(twin(leaves[0]) + (leaves[1] if residual else 0))
    z_t.backward(torch.from_numpy(dz))
    assert_close(z, z_t, "z")
    assert_close(grads[0] if residual else grads, leaves[0].grad, "dx")
    if residual:
        assert_close(grads[1], leaves[1].grad, "ds")
    for key in ("weight", "bias"):
        assert_close(batch_norm.grads[key], getattr(twin, key).grad, key)
    for key in ("running_mean", "running_var"):
        assert_close(batch_norm.buffers[key], getattr(twin, key), key)
