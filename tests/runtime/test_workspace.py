"""Workspace memory reuse, and that reusing memory never changes a result: outputs are fresh arrays, and a
layer's columns survive other layers' forward passes until its own backward."""
import numpy as np

from juanji import nn
from juanji.runtime.workspace import Workspace


def test_get_reuses_memory_that_is_large_enough_and_of_the_same_dtype():
    workspace = Workspace()
    first = workspace.get("a", (4, 5), np.float32)
    assert first.shape == (4, 5) and first.dtype == np.float32
    smaller = workspace.get("a", (2, 3), np.float32)
    assert np.shares_memory(first, smaller)
    larger = workspace.get("a", (5, 5), np.float32)
    assert not np.shares_memory(first, larger) and larger.shape == (5, 5)
    assert np.shares_memory(larger, workspace.get("a", (20,), np.float32))
    assert not np.shares_memory(larger, workspace.get("a", (6,), np.float32))   # 25 > 4 × 6: given back
    workspace.get("a", (5, 5), np.float32)
    assert workspace.get("a", (5, 5), np.float64).dtype == np.float64
    assert not np.shares_memory(workspace.get("a", (5,), np.float64), workspace.get("b", (5,), np.float64))
    assert workspace.nbytes() == 5 * 8 + 5 * 8        # "a" shrank to 5 float64 (25 > 4 × 5), "b" holds 5
    workspace.clear()
    assert workspace.nbytes() == 0


def test_outputs_are_fresh_arrays():
    rng = np.random.default_rng(0)
    layer = nn.Conv2d(3, 4, 3, padding=1)
    x1, x2 = rng.standard_normal((2, 2, 3, 6, 6), dtype=np.float32)
    y1 = layer(x1)
    kept = y1.copy()
    y2 = layer(x2)
    np.testing.assert_array_equal(y1, kept)
    dx2 = layer.backward(np.ones_like(y2))
    layer(x1)
    dx1 = layer.backward(np.ones_like(y1))
    assert not np.shares_memory(dx1, dx2)


def test_columns_survive_other_layers_using_the_scratch_memory():
    """Layer a's backward after layer b (same shapes, same scratch keys) ran forward and backward equals
    a's backward run at once."""
    rng = np.random.default_rng(1)
    for stride in (1, 2):
        a, b = nn.Conv2d(3, 5, 3, stride=stride, padding=1), nn.Conv2d(3, 5, 3, stride=stride, padding=1)
        x, other = rng.standard_normal((2, 2, 3, 7, 7), dtype=np.float32)
        dy = rng.standard_normal(a(x).shape, dtype=np.float32)
        expected_dx = a.backward(dy)
        expected_dw = a.grads["weight"].copy()
        a(x)
        b.backward(np.ones_like(b(other)))
        np.testing.assert_array_equal(a.backward(dy), expected_dx)
        np.testing.assert_array_equal(a.grads["weight"], expected_dw)


def test_each_thread_has_its_own_scratch_workspace():
    import threading
    from juanji.runtime.workspace import scratch
    mine, theirs = scratch(), []
    assert scratch() is mine
    other = threading.Thread(target=lambda: theirs.append(scratch()))
    other.start()
    other.join()
    assert isinstance(theirs[0], Workspace) and theirs[0] is not mine
