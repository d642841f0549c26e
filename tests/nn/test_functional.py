"""juanji.nn.functional against torch.nn.functional: the same signatures, and the same values for every argument
drawn at random (the loss classes' draws, plus the functional-only ``weight`` of mse_loss, l1_loss and
huber_loss), with torch's warnings; softmax and log-softmax with torch's implicit dim; errors naming the
function."""
import inspect
import re
import warnings

import numpy as np
import pytest
import torch
import torch.nn.functional as TF

from closeness import DTYPES, assert_close
from juanji.nn import functional as F
from loss_draws import LOSSES, draw, torch_names

FUNCTIONS = {"CrossEntropyLoss": "cross_entropy", "NLLLoss": "nll_loss", "MSELoss": "mse_loss", "L1Loss": "l1_loss",
             "SmoothL1Loss": "smooth_l1_loss", "HuberLoss": "huber_loss", "BCELoss": "binary_cross_entropy",
             "BCEWithLogitsLoss": "binary_cross_entropy_with_logits", "KLDivLoss": "kl_div"}
TORCH_DTYPE = {np.dtype(np.float64): torch.float64, np.dtype(np.float32): torch.float32}


def parameters(function):
    return [(p.name, p.kind, p.default) for p in inspect.signature(function).parameters.values()]


@pytest.mark.parametrize("name", sorted(F.__all__))
def test_the_signature_is_torchs(name):
    assert parameters(getattr(F, name)) == parameters(getattr(TF, name))


def call(function, values, x, target, positional):
    """``function(x, target, ...)`` with ``values`` in the function's order positionally (defaults filled in),
    or by keyword; and the text of every warning it gives."""
    signature = inspect.signature(function).parameters
    if not positional:
        return warned(function, x, target, **values)
    names = list(signature)[2:]
    last = max([names.index(key) for key in values], default=-1)
    return warned(function, x, target, *[values.get(key, signature[key].default) for key in names[:last + 1]])


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("seed", range(10))
@pytest.mark.parametrize("name", LOSSES)
def test_each_loss_function_matches_torchs(name, seed, dtype):
    values, x, target, positional = draw(name, seed, dtype)
    rng = np.random.default_rng(seed)
    if name in ("MSELoss", "L1Loss", "HuberLoss") and rng.random() < 0.6:
        values["weight"] = rng.uniform(0.2, 2.0, x.shape)       # the functions' own: one weight per element
    torch_values = {key: torch.from_numpy(np.asarray(value, dtype)) if isinstance(value, np.ndarray) else value
                    for key, value in values.items()}
    target_t = torch.from_numpy(target.astype(np.int64) if target.dtype.kind in "iu" else target.copy())
    y, ours = call(getattr(F, FUNCTIONS[name]), values, x, target, positional)
    y_t, theirs = call(getattr(TF, FUNCTIONS[name]), torch_values, torch.from_numpy(x.copy()), target_t, positional)
    assert ours == theirs
    assert np.asarray(y).dtype == dtype
    assert_close(y, y_t, FUNCTIONS[name])


def test_a_weight_is_taken_in_the_inputs_dtype():
    x, target = np.zeros((2, 3), np.float32), np.array([0, 2])
    assert F.cross_entropy(x, target, weight=np.array([1.0, 2.0, 3.0])).dtype == np.float32
    assert F.mse_loss(x, x, weight=np.ones((2, 3))).dtype == np.float32


def warned(function, *args, **kwargs):
    """``function(*args, **kwargs)`` and the text of every warning it gives."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        y = function(*args, **kwargs)
    return y, [str(w.message) for w in caught]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", [(), (4,), (2, 3), (2, 3, 4), (2, 3, 2, 2)])
@pytest.mark.parametrize("name", ["softmax", "log_softmax"])
def test_softmax_and_log_softmax_match_torchs_with_and_without_dim(name, shape, dtype):
    x = np.asarray(np.random.default_rng(len(shape)).standard_normal(shape) * 5).astype(dtype)
    for dim in [None] + (list(range(-len(shape), len(shape))) if shape else [0, -1]):
        y, ours = warned(getattr(F, name), x, dim)
        y_t, theirs = warned(getattr(TF, name), torch.from_numpy(x.copy()), dim)
        assert ours == theirs and y.dtype == dtype and y.shape == shape
        assert_close(y, y_t, f"{name} dim={dim}")
    y = getattr(F, name)(x, -1, 3, np.float64)                     # dtype: the input is cast first
    assert y.dtype == np.float64
    assert_close(y, getattr(TF, name)(torch.from_numpy(x.copy()), -1, dtype=torch.float64), name)


def test_softmax_of_extreme_logits_is_finite():
    x = np.array([[1e4, -1e4, 0.0], [3e4, 3e4, 3e4]], np.float32)
    with np.errstate(over="raise", invalid="raise", divide="raise"):
        np.testing.assert_allclose(F.softmax(x, 1), [[1, 0, 0], [1 / 3, 1 / 3, 1 / 3]], rtol=1e-6)
        assert np.isfinite(F.log_softmax(x, 1)).all()


@pytest.mark.parametrize("call_it, error_type, fragments", [
    (lambda: F.cross_entropy(np.zeros((2, 3)), np.array([0, 3])), ValueError, ("cross_entropy:", "class index 3")),
    (lambda: F.cross_entropy(np.zeros((2, 3)), np.array([0, 1]), reduction="avg"), ValueError,
     ("cross_entropy:", "'avg'")),
    (lambda: F.nll_loss(np.zeros((2, 3)), np.zeros((2, 3))), TypeError, ("nll_loss:", "integers")),
    (lambda: F.mse_loss(np.zeros(3), np.zeros(3), weight=np.ones(1)), ValueError,
     ("mse_loss:", "weight of shape (1,)", "must have the input's shape (3,)")),
    (lambda: F.huber_loss(np.zeros(3), np.zeros(3), delta=-1.0), ValueError, ("huber_loss:", "delta", "> 0")),
    (lambda: F.binary_cross_entropy(np.full(2, 2.0), np.zeros(2)), ValueError,
     ("binary_cross_entropy:", "between 0 and 1")),
    (lambda: F.binary_cross_entropy_with_logits(np.zeros((2, 3)), np.zeros((2, 3)), pos_weight=np.ones(2)),
     ValueError, ("binary_cross_entropy_with_logits:", "pos_weight of shape (2,)")),
    (lambda: F.kl_div(np.zeros(3), np.zeros(3), reduction="batch"), ValueError,
     ("kl_div:", "'batchmean'", "'batch'")),
    (lambda: F.softmax(np.zeros((2, 3)), 2), IndexError, ("softmax:", "dim 2", "2-d")),
    (lambda: F.log_softmax(np.zeros(3), 0, dtype=np.int64), TypeError, ("log_softmax:", "floating-point", "int64")),
    (lambda: F.log_softmax([1.0, 2.0], 0), TypeError, ("log_softmax:", "NumPy array", "list")),
])
def test_errors_name_the_function(call_it, error_type, fragments):
    with pytest.raises(error_type, match="(?s)" + ".*".join(re.escape(f) for f in fragments)):
        call_it()


def test_the_functions_take_the_classes_arguments_in_the_same_order():
    """What a user ports from one form to the other: the class's parameters, in order, after input and target."""
    for name, function in FUNCTIONS.items():
        names = [p for p in inspect.signature(getattr(F, function)).parameters][2:]
        assert names[:len(torch_names(name))] == torch_names(name), name


def test_dtype_casts_an_integer_input_first_and_stacklevel_places_the_warning():
    x = np.arange(6).reshape(2, 3)
    assert_close(F.softmax(x, 1, dtype=np.float64), TF.softmax(torch.from_numpy(x), 1, dtype=torch.float64), "softmax")
    for stacklevel, where in [(3, __file__), (2, F.__file__)]:         # the caller, or the function itself
        with pytest.warns(UserWarning, match="Implicit dimension choice for log_softmax") as caught:
            F.log_softmax(x.astype(np.float32), _stacklevel=stacklevel)
        assert caught[0].filename == where
