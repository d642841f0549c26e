"""Max pooling's plans: the compiled forward loop (``compiled.pool``) and the compiled backward scatter against the
slow references, NumPy's kernels and torch, inf and NaN included; the plan kept in the cache and what the
backward runs; and the layers' plans made once per input shape and kernel set (``plan.Plans``)."""
import numpy as np
import pytest
import torch
import torch.nn.functional as TF
from hypothesis import given, settings
from hypothesis import strategies as st

from juanji import nn
from juanji.functional import plan
from juanji.functional import pool as F
from juanji.runtime import kernels
from kernel_check import DTYPES, assert_close, torch_vjp
from test_pool_kernels import pool_configs

COMPILED = plan.PoolPlan("compiled", "compiled")


def numpy_plan(shape, kwargs) -> plan.PoolPlan:
    """NumPy's plan for this pooling ("writes" where the windows tile the input, else "masks")."""
    chosen = kernels.get_kernels()
    kernels.set_kernels("numpy")
    try:
        return F.max_pool2d_plan(shape, **kwargs)
    finally:
        kernels.set_kernels(chosen)


@pytest.mark.usefixtures("batch_threads")
@settings(max_examples=50, deadline=None)
@given(pool_configs(), st.sampled_from(DTYPES), st.booleans())
def test_compiled_max_pool_matches_the_references_numpy_and_torch(config, dtype, ties):
    """Forward: y equal to the reference and to NumPy's kernel, the arg-max equal to NumPy's (ties: the first);
    backward: dX close to the reference, NumPy's and torch's.  Serially and split over 2 threads."""
    shape, kwargs, seed = config
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(shape).astype(dtype)
    if ties:
        x = np.round(x)
    y, cache = F.max_pool2d(x, **kwargs, plan=COMPILED)
    y_numpy, cache_numpy = F.max_pool2d(x, **kwargs, plan=numpy_plan(shape, kwargs))
    assert y.dtype == dtype and cache[1] == COMPILED
    np.testing.assert_array_equal(y, F.max_pool2d_reference(x, **kwargs))
    np.testing.assert_array_equal(y, y_numpy)
    np.testing.assert_array_equal(cache[2], cache_numpy[2])
    dy = rng.standard_normal(y.shape).astype(dtype)
    dx = F.max_pool2d_backward(dy, cache)
    assert dx.dtype == dtype and dx.shape == shape
    assert_close(dx, F.max_pool2d_backward_reference(dy, x, **kwargs), "dx vs reference", dtype=dtype)
    assert_close(dx, F.max_pool2d_backward(dy, cache_numpy), "dx vs numpy", dtype=dtype)
    assert_close(y, TF.max_pool2d(torch.from_numpy(x), **kwargs).numpy(), "y vs torch", dtype=dtype)
    if not np.isneginf(y).any():    # a window wholly in the padding: torch's backward writes out of the plane
        _, (dx_t,) = torch_vjp(lambda t: TF.max_pool2d(t, **kwargs), dy, x)
        assert_close(dx, dx_t, "dx vs torch", dtype=dtype)


@pytest.mark.usefixtures("batch_threads")
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("kwargs", [dict(kernel_size=2), dict(kernel_size=3, stride=2, padding=1),
                                    dict(kernel_size=2, stride=1, dilation=2, ceil_mode=True)])
def test_compiled_max_pool_propagates_nan_and_inf_as_numpys_kernel_and_torch(kwargs, dtype):
    """A NaN in a window makes its output NaN (torch's y), +∞ wins, −∞ loses to any number; the arg-max (where
    the gradient goes) is NumPy's kernel's, so both plans' backward agree."""
    rng = np.random.default_rng(7)
    x = rng.standard_normal((2, 3, 7, 8)).astype(dtype)
    x[0, 0, 1, 1] = x[1, 2, 4, 3] = x[0, 1, 0, 0] = np.nan
    x[0, 2, 2, 2] = x[1, 0, 5, 5] = np.inf
    x[1, 1, :3, :3] = -np.inf
    x[1, 1, 2, 2] = np.nan
    y, cache = F.max_pool2d(x, **kwargs, plan=COMPILED)
    y_numpy, cache_numpy = F.max_pool2d(x, **kwargs, plan=numpy_plan(x.shape, kwargs))
    y_t = TF.max_pool2d(torch.from_numpy(x), **kwargs).numpy()
    assert np.isnan(y).any() and np.isposinf(y).any()
    np.testing.assert_array_equal(y, y_t)               # NaN where torch has NaN (equal_nan by default)
    np.testing.assert_array_equal(y, y_numpy)
    np.testing.assert_array_equal(cache[2], cache_numpy[2])
    dy = rng.standard_normal(y.shape).astype(dtype)
    np.testing.assert_allclose(F.max_pool2d_backward(dy, cache), F.max_pool2d_backward(dy, cache_numpy),
                               rtol=1e-6, atol=1e-6)


def test_the_plan_takes_the_compiled_forward_on_small_inputs_and_numpys_otherwise(numba_kernels):
    limit = plan.MAX_POOL_COMPILED_MAX_ELEMENTS
    small, large = (1, limit // 64, 8, 8), (2, limit // 64, 8, 8)
    assert F.max_pool2d_plan(small, 2) == COMPILED
    assert F.max_pool2d_plan(large, 2) == plan.PoolPlan("window_planes", "writes")
    assert F.max_pool2d_plan(large, 3, 2, 1) == plan.PoolPlan("window_planes", "compiled")
    assert numpy_plan(small, dict(kernel_size=2)) == plan.PoolPlan("window_planes", "writes")
    assert numpy_plan((1, 1, 9, 9), dict(kernel_size=2)) == plan.PoolPlan("window_planes", "masks")   # a gap
    assert numpy_plan(small, dict(kernel_size=3, stride=2, padding=1)) == plan.PoolPlan("window_planes", "masks")


def test_the_backward_runs_the_plan_its_forward_kept(numba_kernels):
    """A forward on the compiled kernels and its backward after a switch to NumPy's: the kept plan runs (the
    compiled scatter), whose dX equals what NumPy's plan gives."""
    rng = np.random.default_rng(3)
    x = rng.standard_normal((2, 3, 8, 8))
    y, cache = F.max_pool2d(x, 3, 2, 1)
    assert cache[1] == COMPILED
    dy = rng.standard_normal(y.shape)
    kernels.set_kernels("numpy")
    dx = F.max_pool2d_backward(dy, cache)
    _, numpy_cache = F.max_pool2d(x, 3, 2, 1)
    assert numpy_cache[1] == plan.PoolPlan("window_planes", "masks")
    assert_close(dx, F.max_pool2d_backward(dy, numpy_cache), "dx")


def test_layers_make_each_plan_once_per_shape_and_kernel_set(numba_kernels):
    """The layers' plans are kept by input shape and kernel set: asked again, the same plan object; on another
    kernel set or shape, that one's plan (never a stale one); at 2 threads the same (plans read no threads)."""
    rng = np.random.default_rng(4)
    pool, conv = nn.MaxPool2d(2), nn.Conv2d(3, 4, 3, padding=1, dtype=np.float64)
    x = rng.standard_normal((1, 3, 8, 8))

    def plans():
        pool(x), conv(x)
        return pool.saved_for_backward()[0][1], conv.saved_for_backward()[0][-1]

    first = plans()
    assert first[0] == COMPILED and plans()[0] is first[0] and plans()[1] is first[1]
    kernels.set_kernels("numpy")
    on_numpy = plans()
    assert on_numpy[0] == numpy_plan(x.shape, dict(kernel_size=2))
    assert on_numpy[1] == plan.plan_conv(x.shape, (4, 3, 3, 3), (1, 1), ((1, 1), (1, 1)), (1, 1), 1)
    kernels.set_kernels("numba")
    assert plans() == first
    x = rng.standard_normal((64, 3, 16, 16))
    assert plans()[0] == plan.PoolPlan("window_planes", "writes")


def test_plans_are_kept_for_a_bounded_number_of_shapes():
    plans = plan.Plans()
    for size in range(plan.Plans.KEPT + 3):
        plans.get((size,), lambda size=size: size)
    assert plans.get((0,), lambda: "again") == "again"          # forgotten when the table was full
    assert plans.get((plan.Plans.KEPT + 2,), lambda: "new") == plan.Plans.KEPT + 2
    assert len(plans._made) <= plan.Plans.KEPT


def test_a_max_pool_layer_derives_its_geometry_once_per_shape_and_refuses_each_bad_input_every_time():
    """The layer keeps each input shape's geometry and plan together (``Plans``): asked again, the same ones, whose
    y, indices and dX are the functional kernel's; an input whose window does not fit, of the wrong rank, or not
    floating-point (of a shape already planned) is refused at every call with the same line, and leaves no plan."""
    rng = np.random.default_rng(5)
    pool = nn.MaxPool2d(3, 2, 1, ceil_mode=True, return_indices=True)
    x = rng.standard_normal((2, 3, 6, 7))
    kept = []
    for _ in range(2):
        pool(x)
        kept.append(pool.saved_for_backward()[0][1])
    (geometry, chosen), = pool._plans._made.values()
    assert geometry == F.pool_geometry(x.shape, 3, 2, 1, 1, True) and kept[0] is kept[1] is chosen
    y, indices = pool(x)
    assert chosen == F.max_pool2d_plan(x.shape, 3, 2, 1, ceil_mode=True)
    y_f, cache = F.max_pool2d(x, 3, 2, 1, ceil_mode=True)
    np.testing.assert_array_equal(y, y_f)
    np.testing.assert_array_equal(indices, F.max_pool2d_indices(cache))
    dy = rng.standard_normal(y.shape)
    np.testing.assert_array_equal(pool.backward(dy), F.max_pool2d_backward(dy, cache))
    made = dict(pool._plans._made)
    for bad, error, fragment in [(np.zeros((1, 3, 1, 0)), ValueError, "smaller than the kernel"),
                                 (x[0, 0], ValueError, "(N, C, H, W) or (C, H, W)"),
                                 (x.astype(np.int64), TypeError, "floating-point")]:
        lines = set()
        for _ in range(2):
            with pytest.raises(error, match="MaxPool2d") as info:
                pool(bad)
            lines.add(str(info.value))
        (line,) = lines
        assert fragment in line and "\n" not in line, line
    assert pool._plans._made == made
