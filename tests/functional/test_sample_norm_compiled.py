"""The compiled per-sample normalisations (juanji.functional.compiled.sample_norm): layer, group and instance norm
on the row loops against NumPy's kernels and torch — forward, dx, dγ, dβ in float64 and float32, odd sizes,
groups 1 and C, with and without γ, β, layer norm over 1 to 3 trailing axes, 1 and 2 threads; the plan the
forward chose kept in the cache for the backward; the uncompiled loops; rows far from zero; constant rows."""
import numpy as np
import pytest
import torch
import torch.nn.functional as TF

from juanji.functional import plan
from juanji.functional import sample_norm as S
from juanji.functional.compiled import sample_norm as C
from juanji.runtime import kernels
from kernel_check import DTYPES, assert_close, torch_vjp

pytestmark = [pytest.mark.usefixtures("batch_threads"),
              pytest.mark.skipif(not kernels.numba_available(), reason="Numba is not installed")]

# name: (x shape, ours(x, γ, β), torch's(x, γ, β), γ and β's shape)
CASES = {
    "layer (7, 5) k=1": ((7, 5), lambda x, g, b: S.layer_norm(x, 1, g, b, 1e-3),
                         lambda t, g, b: TF.layer_norm(t, (5,), g, b, 1e-3), (5,)),
    "layer (3, 4, 64) k=1": ((3, 4, 64), lambda x, g, b: S.layer_norm(x, 1, g, b, 1e-3),
                             lambda t, g, b: TF.layer_norm(t, (64,), g, b, 1e-3), (64,)),
    "layer (5, 3, 7) k=2": ((5, 3, 7), lambda x, g, b: S.layer_norm(x, 2, g, b, 1e-3),
                            lambda t, g, b: TF.layer_norm(t, (3, 7), g, b, 1e-3), (3, 7)),
    "layer (3, 2, 5, 3) k=3": ((3, 2, 5, 3), lambda x, g, b: S.layer_norm(x, 3, g, b, 1e-3),
                               lambda t, g, b: TF.layer_norm(t, (2, 5, 3), g, b, 1e-3), (2, 5, 3)),
    "group (5, 6, 7) G=1": ((5, 6, 7), lambda x, g, b: S.group_norm(x, 1, g, b, 1e-3),
                            lambda t, g, b: TF.group_norm(t, 1, g, b, 1e-3), (6,)),
    "group (3, 6, 5, 3) G=3": ((3, 6, 5, 3), lambda x, g, b: S.group_norm(x, 3, g, b, 1e-3),
                               lambda t, g, b: TF.group_norm(t, 3, g, b, 1e-3), (6,)),
    "group (3, 6, 5, 3) G=C": ((3, 6, 5, 3), lambda x, g, b: S.group_norm(x, 6, g, b, 1e-3),
                               lambda t, g, b: TF.group_norm(t, 6, g, b, 1e-3), (6,)),
    "group (7, 4) no spatial axes": ((7, 4), lambda x, g, b: S.group_norm(x, 2, g, b, 1e-3),
                                     lambda t, g, b: TF.group_norm(t, 2, g, b, 1e-3), (4,)),
    "instance (3, 5, 9)": ((3, 5, 9), lambda x, g, b: S.instance_norm(x, g, b, eps=1e-3),
                           lambda t, g, b: TF.instance_norm(t, weight=g, bias=b, eps=1e-3), (5,)),
    "instance (1, 3, 4, 5)": ((1, 3, 4, 5), lambda x, g, b: S.instance_norm(x, g, b, eps=1e-3),
                              lambda t, g, b: TF.instance_norm(t, weight=g, bias=b, eps=1e-3), (3,)),
}


def arrays(rng, dtype, *shapes, loc=0.5):
    return [(rng.standard_normal(shape) * 2 + loc).astype(dtype) for shape in shapes]


def forward_backward(backend, monkeypatch, ours, x, gamma, beta, dy):
    """(y, dx, dγ, dβ) with the forward on ``backend``'s kernels, and the plan its cache kept."""
    monkeypatch.setattr(kernels, "_chosen", backend)
    y, cache = ours(x, gamma, beta)
    return (y, *S.normalization_backward(dy, cache)), cache.plan


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("affine", ["both", "none"])       # γ alone: test_sample_norm_kernels.py
@pytest.mark.parametrize("case", CASES)
def test_the_loops_match_numpys_kernels_and_torch(case, affine, dtype, monkeypatch):
    shape, ours, theirs, affine_shape = CASES[case]
    rng = np.random.default_rng(len(case))
    x, dy, gamma, beta = arrays(rng, dtype, shape, shape, affine_shape, affine_shape)
    gamma, beta = (gamma if affine != "none" else None), (beta if affine == "both" else None)
    compiled, chosen = forward_backward("numba", monkeypatch, ours, x, gamma, beta, dy)
    numpy, numpy_chosen = forward_backward("numpy", monkeypatch, ours, x, gamma, beta, dy)
    y_t, (dx_t, dgamma_t, dbeta_t) = torch_vjp(theirs, dy, x, gamma, beta)
    assert (chosen, numpy_chosen) == ("compiled", "numpy")
    for name, got, want, torchs in zip(("y", "dx", "dγ", "dβ"), compiled, numpy, (y_t, dx_t, dgamma_t, dbeta_t)):
        if name == "dγ" and gamma is None:
            assert got is None and want is None
            continue
        assert got.dtype == dtype and got.shape == want.shape
        assert_close(got, want, f"{name} against NumPy's", dtype)
        if torchs is not None:
            assert_close(got, torchs, f"{name} against torch's")


def test_non_contiguous_inputs_as_convnexts_channel_norm(monkeypatch):
    """(N, C, H, W) permuted to (N, H, W, C), a view, normalised over C; dY a view too."""
    rng = np.random.default_rng(4)
    x, dy, gamma, beta = arrays(rng, np.float32, (2, 6, 5, 4), (2, 6, 5, 4), (6,), (6,))
    x, dy = x.transpose(0, 2, 3, 1), dy.transpose(0, 2, 3, 1)
    assert not x.flags.c_contiguous and not dy.flags.c_contiguous
    results = [forward_backward(backend, monkeypatch, lambda x, g, b: S.layer_norm(x, 1, g, b), x, gamma, beta,
                                dy)[0] for backend in ("numba", "numpy")]
    y_t, gradients = torch_vjp(lambda t, g, b: TF.layer_norm(t, (6,), g, b), dy, x, gamma, beta)
    for got, want, torchs in zip(*results, (y_t, *gradients)):
        assert_close(got, want, dtype=np.float32)
        assert_close(got, torchs)


def test_the_plan_is_chosen_by_the_backend_and_kept_for_the_backward(monkeypatch):
    """A forward on the compiled kernels is differentiated on them, whichever kernels are chosen by then."""
    rng = np.random.default_rng(1)
    x, dy, gamma, beta = arrays(rng, np.float64, (3, 4, 5), (3, 4, 5), (4,), (4,))
    monkeypatch.setattr(kernels, "_chosen", "numba")
    assert plan.sample_norm_kernels() == "compiled"
    _, cache = S.group_norm(x, 2, gamma, beta)
    monkeypatch.setattr(kernels, "_chosen", "numpy")
    assert plan.sample_norm_kernels() == "numpy"
    assert cache.plan == "compiled" and cache.mean.dtype == np.float64
    _, numpy_cache = S.group_norm(x, 2, gamma, beta)
    assert numpy_cache.plan == "numpy"
    for got, want in zip(S.normalization_backward(dy, cache), S.normalization_backward(dy, numpy_cache)):
        assert_close(got, want)


def test_the_uncompiled_loops_agree_with_the_compiled_ones():
    """``py_func`` is each loop as plain Python, the readable reference: the same numbers."""
    rng = np.random.default_rng(2)
    for x, gamma, beta, forward, backward in (
            (rng.standard_normal((2, 3, 2, 5)), rng.standard_normal((3, 2)), rng.standard_normal((3, 2)),
             C.group_norm_forward_loop, C.group_norm_backward_loop),
            (rng.standard_normal((4, 7)), rng.standard_normal(7), rng.standard_normal(7),
             C.layer_norm_forward_loop, C.layer_norm_backward_loop)):
        dy, rows = rng.standard_normal(x.shape), (x.shape[:2] if x.ndim == 4 else x.shape[:1])
        results = []
        for compiled in (True, False):
            run_forward, run_backward = (forward, backward) if compiled else (forward.py_func, backward.py_func)
            y, mean, var = np.empty_like(x), np.empty(rows), np.empty(rows)
            run_forward(x, gamma, beta, 1e-3, y, mean, var)
            dx, dgamma, dbeta = np.empty_like(x), np.zeros(gamma.shape), np.zeros(gamma.shape)
            run_backward(dy, x, mean, 1 / np.sqrt(var + 1e-3), gamma, dx, dgamma, dbeta)
            results.append((y, mean, var, dx, dgamma, dbeta))
        for got, want in zip(*results):
            assert np.allclose(got, want, rtol=1e-12, atol=1e-13)


@pytest.mark.parametrize("dtype, loc", [(np.float32, 2e3), (np.float64, 1e5)])
@pytest.mark.parametrize("case", ["layer (3, 4, 64) k=1", "group (3, 6, 5, 3) G=3"])
def test_rows_far_from_zero_keep_their_precision(case, dtype, loc, monkeypatch):
    """μ = 1000 σ in float32, 50,000 σ in float64: Σx²/K − μ² would lose μ²/σ² (10⁹ in float64: a tenth of its
    digits); the loops' float64 sums, shifted by the row's first value, keep y, dX, dγ, dβ the float64 results
    of the same values within the dtype's tolerance."""
    shape, ours, theirs, affine_shape = CASES[case]
    rng = np.random.default_rng(3)
    (x,), (dy, gamma, beta) = arrays(rng, dtype, shape, loc=loc), arrays(rng, dtype, shape, affine_shape, affine_shape)
    compiled, _ = forward_backward("numba", monkeypatch, ours, x, gamma, beta, dy)
    y, gradients = torch_vjp(theirs, *(a.astype(np.float64) for a in (dy, x, gamma, beta)))
    for name, got, want in zip(("y", "dx", "dγ", "dβ"), compiled, (y, *gradients)):
        assert_close(got, want, name, dtype)


@pytest.mark.filterwarnings("ignore:divide by zero:RuntimeWarning", "ignore:invalid value:RuntimeWarning")
@pytest.mark.parametrize("backend", ["numba", "numpy"])
def test_a_constant_row_without_eps_gives_nan_as_torch_not_an_error(backend, monkeypatch):
    """σ = 0 with ε = 0: 1/σ = ∞ and x̂ = 0 · ∞ (NumPy's kernels warn of both, the loops run on)."""
    x = np.ones((2, 4, 3))
    monkeypatch.setattr(kernels, "_chosen", backend)
    y, cache = S.group_norm(x, 2, eps=0.0)
    dx = S.normalization_backward(x, cache)[0]
    torchs = torch_vjp(lambda t: TF.group_norm(t, 2, eps=0.0), x, x)
    assert np.isnan(torchs[0]).all() and np.isnan(torchs[1][0]).all()
    assert np.isnan(y).all() and np.isnan(dx).all()
