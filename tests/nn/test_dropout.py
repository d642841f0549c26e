"""Dropout, Dropout1d, Dropout2d and Dropout3d against torch.nn's: p and inplace drawn at random (positionally or by
keyword), float32 and float64, training and eval, batched, unbatched and non-contiguous inputs.  torch draws its
own masks, so juanji's mask (where y is 0) is put into torch's formula y = x · m / (1 − p); p = 0, p = 1 and
eval are deterministic and compared with torch's layers themselves.  Then the masks' statistics, torch's warnings
word for word, finite differences and refused arguments."""
import warnings
import zlib

import numpy as np
import pytest
import torch

from finite_difference import check_layer
from juanji import nn
from layer_check import DTYPES, assert_close, compare_with_torch

CLASSES = ["Dropout", "Dropout1d", "Dropout2d", "Dropout3d"]
# Inputs each layer takes without a warning: batched and unbatched.
SHAPES = {"Dropout": [(2, 3, 4, 5), (6,)], "Dropout1d": [(3, 4, 6), (4, 6)], "Dropout2d": [(2, 3, 4, 5)],
          "Dropout3d": [(2, 3, 2, 4, 3), (3, 2, 4, 3)]}
SEEDS = range(6)


def channel_axes(name, ndim):
    """How many leading axes one mask draw covers: every axis for Dropout, (N, C) or (C,) for the others."""
    if name == "Dropout":
        return ndim
    batched = {"Dropout1d": 3, "Dropout2d": 4, "Dropout3d": 5}[name]
    return 2 if ndim == batched else 1


def draw(name, seed, dtype):
    rng = np.random.default_rng([seed, zlib.crc32(name.encode())])
    shapes = SHAPES[name]
    shape = shapes[seed % len(shapes)]
    x = rng.standard_normal(shape[::-1]).astype(dtype).T if seed >= 3 else rng.standard_normal(shape).astype(dtype)
    p = [rng.uniform(0.05, 0.95), 0.0, 1.0, 0.5][seed % 4] if seed < 4 else rng.uniform(0, 1)
    arguments = [("p", float(p)), ("inplace", seed in (2, 3, 5))]      # in place: p = 1, 0.5 and a random p
    style = seed % 3
    args = tuple(v for _, v in arguments) if style == 0 else (float(p),) if style == 1 else ()
    kwargs = {} if style == 0 else dict(arguments[1:]) if style == 1 else dict(arguments)
    return x, p, dict(arguments)["inplace"], args, kwargs


@pytest.mark.parametrize("train", [True, False], ids=["train", "eval"])
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("name", CLASSES)
def test_dropout_matches_torch(name, seed, dtype, train):
    x, p, inplace, args, kwargs = draw(name, seed, dtype)
    layer = getattr(nn, name)(*args, **kwargs, rng=np.random.default_rng(seed)).train(train)
    twin = getattr(torch.nn, name)(*args, **kwargs).train(train)
    original = x.copy()
    y = layer(x)
    assert (y is x) == (inplace or not train or p == 0)       # eval and p = 0 return x itself, as torch
    dy = np.random.default_rng(seed).standard_normal(y.shape).astype(dtype)
    dx = layer.backward(dy)
    assert y.dtype == dx.dtype == dtype
    x_t = torch.from_numpy(original).requires_grad_(True)
    if not train or p in (0, 1):                              # deterministic: torch's own layer
        y_t = twin(x_t * 1)
    else:                                                     # juanji's mask in torch's formula
        kept = y != 0
        axes = channel_axes(name, y.ndim)
        assert (kept == kept.reshape(y.shape[:axes] + (-1,))[..., :1].reshape(
            y.shape[:axes] + (1,) * (y.ndim - axes))).all(), "a channel is dropped as a whole"
        y_t = x_t * torch.from_numpy(kept.astype(dtype)) / (1 - p)
    y_t.backward(torch.from_numpy(dy))
    assert_close(y, y_t, "y")
    assert_close(dx, x_t.grad, "dx")


@pytest.mark.parametrize("name", CLASSES)
@pytest.mark.parametrize("p", [0.2, 0.7])
def test_masks_keep_1_minus_p_and_scale_by_its_inverse(name, p):
    """Keep rate 1 − p within 5 standard errors over the draws (elements, or channels), the kept values scaled by
    exactly 1/(1 − p), so that E[y] = x."""
    shape = {"Dropout": (100, 200), "Dropout1d": (100, 200, 3), "Dropout2d": (100, 200, 2, 2),
             "Dropout3d": (100, 200, 1, 2, 2)}[name]
    y = getattr(nn, name)(p, rng=np.random.default_rng(1))(np.ones(shape))
    kept = y[(slice(None), slice(None)) + (0,) * (len(shape) - 2)] != 0
    assert abs(kept.mean() - (1 - p)) < 5 * np.sqrt(p * (1 - p) / kept.size)
    np.testing.assert_allclose(y[y != 0], 1 / (1 - p), rtol=1e-15)


def test_the_global_generator_draws_the_masks_reproducibly():
    from juanji import random as jrandom
    x = np.ones((4, 6, 5, 5), np.float32)
    jrandom.seed(3)
    first = nn.Dropout2d()(x)
    jrandom.seed(3)
    np.testing.assert_array_equal(nn.Dropout2d()(x), first)


@pytest.mark.parametrize("name, shape", [("Dropout2d", (2, 3, 5)), ("Dropout2d", (3, 5)),
                                         ("Dropout2d", (2, 3, 2, 2, 2)), ("Dropout3d", (3, 4, 5)),
                                         ("Dropout3d", (4, 5))])
def test_other_ranks_warn_as_torch_and_drop_as_torch(name, shape):
    """Dropout2d takes a 3-D input as (N, C, L) and Dropout3d anything but 4-D or 5-D as unbatched, with
    torch's warnings word for word; the mask is constant where torch's is."""
    x = np.random.default_rng(0).standard_normal(shape) + 5
    with warnings.catch_warnings(record=True) as ours:
        warnings.simplefilter("always")
        y = getattr(nn, name)(0.5, rng=np.random.default_rng(0))(x)
    with warnings.catch_warnings(record=True) as theirs:
        warnings.simplefilter("always")
        y_t = getattr(torch.nn, name)(0.5)(torch.from_numpy(x))
    assert [(w.category, str(w.message)) for w in ours] == [(w.category, str(w.message)) for w in theirs]
    assert ours and all(w.filename == __file__ for w in ours)
    torch_kept = (y_t != 0).numpy()
    axes = 2 if name == "Dropout2d" else 1
    for kept in (y != 0, torch_kept):                        # the same pattern: one draw per leading block
        blocks = kept.reshape(kept.shape[:axes] + (-1,))
        assert (blocks == blocks[..., :1]).all()


def test_channel_dropout_refuses_what_torch_refuses():
    with pytest.raises(ValueError, match=r"Dropout1d\(p=0.5, inplace=False\).*\(N, C, L\) or \(C, L\).*4-D"):
        nn.Dropout1d()(np.zeros((2, 3, 4, 5)))
    with pytest.raises(ValueError, match=r"Dropout2d.*at least 2 dimensions.*1-D"):
        with pytest.warns(UserWarning, match="Received a 1-D input to dropout2d"):
            nn.Dropout2d()(np.zeros(5))
    with pytest.raises(TypeError, match=r"Dropout\(p=0.5, inplace=False\).*floating-point.*int64"):
        nn.Dropout()(np.zeros(5, np.int64))


@pytest.mark.parametrize("name", CLASSES)
def test_eval_is_the_identity_as_torch(name):
    x = np.random.default_rng(2).standard_normal(SHAPES[name][0])
    compare_with_torch(getattr(nn, name)(0.4).eval(), getattr(torch.nn, name)(0.4), x)


class FixedMasks:
    """A generator whose every draw is the same (for finite differences, which run the layer many times)."""

    def random(self, shape, dtype):
        return np.random.default_rng(0).random(shape, dtype=dtype)


@pytest.mark.parametrize("name", CLASSES)
def test_finite_differences(name):
    layer = getattr(nn, name)(0.3, rng=FixedMasks())
    check_layer(layer, np.random.default_rng(4).standard_normal(SHAPES[name][0]), samples=12)


@pytest.mark.parametrize("name", CLASSES)
@pytest.mark.parametrize("make, error, fragments", [
    (lambda cls: cls(1.5), ValueError, ("p", "[0, 1]", "1.5")),
    (lambda cls: cls(-0.1), ValueError, ("p", "[0, 1]", "-0.1")),
    (lambda cls: cls("0.5"), TypeError, ("p", "'0.5'")),
    (lambda cls: cls(True), TypeError, ("p", "True")),
    (lambda cls: cls(0.5, "no"), TypeError, ("inplace", "'no'")),
    (lambda cls: cls(0.5, False, np.random.default_rng()), TypeError, ("positional",)),     # rng: keyword only
])
def test_bad_arguments_are_refused_at_construction(name, make, error, fragments):
    with pytest.raises(error) as info:
        make(getattr(nn, name))
    assert all(fragment in str(info.value) for fragment in fragments), str(info.value)
    assert name in str(info.value) or fragments == ("positional",)


def test_repr_is_torchs():
    for name in CLASSES:
        assert repr(getattr(nn, name)(0.25, True)) == repr(getattr(torch.nn, name)(0.25, True))
