"""The padding kernels (juanji.functional.pad) against torch.nn.functional.pad and against their slow references:
every mode, padding and cropping (negative amounts), 1 and 2 padded axes, forward and backward, float32 and
float64; torch's rules for what it refuses."""
import numpy as np
import pytest
import torch
import torch.nn.functional as TF

from juanji.functional import pad as P
from kernel_check import DTYPES, assert_close, torch_vjp


def draw(rng, axes):
    """A shape (2, 3, sizes…) and torch's flat padding (last axis first), amounts from −3 to 4."""
    shape = (2, 3, *(int(s) for s in rng.integers(1, 7, axes)))
    return shape, tuple(int(p) for p in rng.integers(-3, 5, 2 * axes))


def torch_pad(mode, flat, value=0.5):
    return lambda x: TF.pad(x, flat, mode=mode, value=value) if mode == "constant" else TF.pad(x, flat, mode=mode)


def torch_refuses(x, mode, flat):
    try:
        torch_pad(mode, flat)(torch.from_numpy(x))
    except (RuntimeError, ValueError, NotImplementedError):
        return True
    return False


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("axes", [1, 2])
@pytest.mark.parametrize("mode", P.MODES)
def test_matches_torch_and_the_reference(mode, axes, dtype):
    """Many random paddings per case: those torch computes must be ours, forward and backward, to the bit for
    the forward (entries are only moved); those it refuses, we refuse."""
    rng = np.random.default_rng(P.MODES.index(mode) * 10 + axes)
    compared = 0
    for _ in range(80):
        if compared == 25:
            break
        shape, flat = draw(rng, axes)
        pads = P.pairs(flat)
        x = rng.standard_normal(shape).astype(dtype)
        try:
            y = P.pad(x, pads, mode, 0.5)
        except ValueError:
            assert torch_refuses(x, mode, flat) or mode == "circular", (shape, flat)
            continue
        dy = rng.standard_normal(y.shape).astype(dtype)
        expected, (dx_torch,) = torch_vjp(torch_pad(mode, flat), dy, x)
        np.testing.assert_array_equal(y, expected)
        np.testing.assert_array_equal(y, P.pad_reference(x, pads, mode, 0.5))
        dx = P.pad_backward(dy, shape, pads, mode)
        assert y.dtype == dx.dtype == dtype
        assert_close(dx, dx_torch, f"{mode} {shape} {flat}: dx")
        assert_close(dx, P.pad_backward_reference(dy, shape, pads, mode), f"{mode} {shape} {flat}: dx reference")
        compared += 1
    assert compared >= 15


def test_circular_wrapping_more_than_once_is_refused_where_torch_computes_garbage():
    """torch checks each side against the uncropped size; after a crop on the other side it then reads memory it
    has not written.  juanji refuses: each side at most the size left after cropping."""
    x = np.arange(5.0).reshape(1, 1, 5)
    with pytest.raises(ValueError, match="wraps around more than once: at most 2"):
        P.pad(x, ((3, -3),), "circular")
    np.testing.assert_array_equal(P.pad(x, ((2, -2),), "circular")[0, 0], [1, 2, 0, 1, 2])
    np.testing.assert_array_equal(P.pad(x, ((2, -2),), "circular"), TF.pad(torch.from_numpy(x), (2, -2), "circular"))


@pytest.mark.parametrize("mode, shape, pads, fragment", [
    ("reflect", (1, 2, 3), ((3, 0),), "less than the size"),
    ("replicate", (1, 2, 5), ((-3, -2),), "leaves no entry"),
    ("reflect", (1, 0, 5), ((1, 1),), "non-empty axes"),
    ("constant", (1, 2, 5), ((-4, -2),), "crops more than the axis holds"),
    ("circular", (1, 2, 5), ((-3, -3),), "crops more than the axis holds"),
    ("wrap", (1, 2, 5), ((1, 1),), "mode must be one of"),
    ("constant", (5,), ((1, 1), (1, 1)), "cannot pad the last 2 axes of a 1-D input"),
])
def test_refusals_say_why(mode, shape, pads, fragment):
    with pytest.raises(ValueError, match=fragment):
        P.pad(np.zeros(shape), pads, mode)


def test_one_empty_padded_axis_passes_reflect_and_replicate_as_in_torch():
    """torch refuses reflect/replicate when every padded axis comes out empty, not when one does."""
    x = np.ones((1, 1, 4, 5))
    assert P.pad(x, ((-2, -2), (1, 1)), "replicate").shape == (1, 1, 0, 7)
    assert tuple(TF.pad(torch.from_numpy(x), (1, 1, -2, -2), mode="replicate").shape) == (1, 1, 0, 7)


def test_the_input_is_not_changed_and_zero_padding_copies():
    x = np.arange(12.0).reshape(1, 3, 4)
    before = x.copy()
    y = P.pad(x, ((0, 0),), "reflect")
    y[...] = 0
    np.testing.assert_array_equal(x, before)
    P.pad_backward(np.ones((1, 3, 6)), x.shape, ((1, 1),), "circular")
    np.testing.assert_array_equal(x, before)


def test_pairs_read_torch_order_last_axis_first():
    assert P.pairs((1, 2, 3, 4)) == ((3, 4), (1, 2))
    assert P.pairs((5, -6)) == ((5, -6),)
