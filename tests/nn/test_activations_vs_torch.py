"""juanji.nn's activations and softmax family against torch.nn's twins: every constructor argument drawn at random
(passed positionally, by keyword or both), float32 and float64, batched, unbatched and non-contiguous inputs with
the kinks among their values, in place and not; forward, dx and PReLU's weight gradient compared by
tests/layer_check.py's rule.  Then finite differences, inputs of ±1e4, torch's implicit softmax dim with its
warning, in-place semantics, and arguments refused at construction."""
import warnings
import zlib

import numpy as np
import pytest
import torch

from finite_difference import check_layer
from juanji import nn
from juanji.models.summary import summarize
from layer_check import DTYPES, TORCH_DTYPE, assert_close, compare_with_torch, randomise_state

SEEDS = range(8)
ELEMENTWISE = ["ReLU", "LeakyReLU", "Sigmoid", "Tanh", "ReLU6", "Hardtanh", "Hardswish", "Hardsigmoid", "SiLU",
               "Mish", "GELU", "ELU", "SELU", "Softplus", "PReLU"]
ALONG_DIM = ["Softmax", "LogSoftmax", "Softmin"]
IN_PLACE = ["ReLU", "LeakyReLU", "ReLU6", "Hardtanh", "Hardswish", "Hardsigmoid", "SiLU", "Mish", "ELU", "SELU"]
SHAPES = [(2, 3, 4, 5), (3, 4, 5), (4, 6), (7,)]      # a batch of maps, one map (C, H, W), (N, F), a vector


def flag(rng):
    return bool(rng.integers(2))


def either(rng, *choices):
    return choices[rng.integers(len(choices))]


# Each layer's torch parameters in torch's order, drawn over what torch accepts: [(name, value), ...].
DRAWS = {
    "ReLU": lambda rng, x: [("inplace", flag(rng))],
    "LeakyReLU": lambda rng, x: [("negative_slope", either(rng, 0.01, 0.0, rng.uniform(-1, 1), rng.uniform(0, .3))),
                                 ("inplace", flag(rng))],
    "Sigmoid": lambda rng, x: [],
    "Tanh": lambda rng, x: [],
    "ReLU6": lambda rng, x: [("inplace", flag(rng))],
    "Hardtanh": lambda rng, x: [("min_val", (low := rng.uniform(-3, 1))), ("max_val", low + rng.uniform(0.1, 4)),
                                ("inplace", flag(rng))],
    "Hardswish": lambda rng, x: [("inplace", flag(rng))],
    "Hardsigmoid": lambda rng, x: [("inplace", flag(rng))],
    "SiLU": lambda rng, x: [("inplace", flag(rng))],
    "Mish": lambda rng, x: [("inplace", flag(rng))],
    "GELU": lambda rng, x: [("approximate", either(rng, "none", "tanh"))],
    "ELU": lambda rng, x: [("alpha", either(rng, 1.0, rng.uniform(0, 3), rng.uniform(-1, 0))), ("inplace", flag(rng))],
    "SELU": lambda rng, x: [("inplace", flag(rng))],
    "Softplus": lambda rng, x: [("beta", either(rng, 1.0, rng.uniform(0.2, 3), -rng.uniform(0.2, 3))),
                                ("threshold", either(rng, 20.0, rng.uniform(0.5, 8)))],
    "PReLU": lambda rng, x: [("num_parameters", either(rng, 1, x.shape[1] if x.ndim >= 2 else 1)),
                             ("init", rng.uniform(-1, 1))],
    "Softmax": lambda rng, x: [("dim", int(rng.integers(-x.ndim, x.ndim)))],
    "LogSoftmax": lambda rng, x: [("dim", int(rng.integers(-x.ndim, x.ndim)))],
    "Softmin": lambda rng, x: [("dim", int(rng.integers(-x.ndim, x.ndim)))],
}


def kinks(layer):
    """The inputs where the layer's derivative jumps (each must get torch's one-sided choice)."""
    name = type(layer).__name__
    if name in ("Hardtanh", "ReLU6"):
        return [layer.min_val, layer.max_val]
    if name == "Softplus":
        return [layer.threshold / layer.beta]
    return {"ReLU": [0], "LeakyReLU": [0], "Hardswish": [-3, 3], "Hardsigmoid": [-3, 3], "ELU": [0], "SELU": [0],
            "PReLU": [0]}.get(name, [])


def draw_input(rng, seed, dtype):
    """Values of scale 4 (past ±3 and 6) shaped as SHAPES[seed % 4]; for seeds 4 to 7 a transposed view (not
    contiguous)."""
    shape = SHAPES[seed % len(SHAPES)]
    if len(shape) > 1 and seed % 8 >= 4:
        return (rng.standard_normal(shape[::-1]) * 4).astype(dtype).T
    return (rng.standard_normal(shape) * 4).astype(dtype)


def split(arguments, rng):
    """(args, kwargs): all positional, all by keyword, or the first few positional and the rest by keyword."""
    cut = [len(arguments), 0, int(rng.integers(len(arguments) + 1))][rng.integers(3)]
    return tuple(value for _, value in arguments[:cut]), dict(arguments[cut:])


class ExactSixth(torch.autograd.Function):
    """The identity, whose backward scales by (1/6) / float(1.0f/6.0f): torch's Hardsigmoid backward multiplies by
    one_sixth = 1.0f / 6.0f, a float32 constant even in float64 (3e-8 off), which this makes exactly 1/6."""
    FACTOR = (1 / 6) / float(np.float32(1 / 6))

    @staticmethod
    def forward(ctx, x):
        return x.clone()

    @staticmethod
    def backward(ctx, dy):
        return dy * ExactSixth.FACTOR


class ExactHardsigmoid(torch.nn.Hardsigmoid):
    """torch's Hardsigmoid with its float64 gradient made exact (``ExactSixth``)."""

    def forward(self, x):
        return super().forward(ExactSixth.apply(x))


def torch_twin(name, args, kwargs, dtype):
    exact = name == "Hardsigmoid" and dtype == np.float64
    return (ExactHardsigmoid if exact else getattr(torch.nn, name))(*args, **kwargs)


def compare_in_place(layer, torch_layer, x, seed=0):
    """An in-place layer writes y into x (a view too) and returns x itself; y and dx against torch's twin, run on a
    copy of x that is not a leaf (torch may then work in place)."""
    dtype, original = x.dtype, x.copy()
    torch_layer = torch_layer.to(TORCH_DTYPE[dtype])
    y = layer(x)
    assert y is x
    dy = np.random.default_rng(seed).standard_normal(y.shape).astype(dtype)
    dx = layer.backward(dy)
    x_t = torch.from_numpy(original).requires_grad_(True)
    y_t = torch_layer(x_t * 1)
    y_t.backward(torch.from_numpy(dy))
    assert y.dtype == dx.dtype == dtype
    assert_close(y, y_t, "y")
    assert_close(dx, x_t.grad, "dx")


def torch_supports_in_place_backward(name, arguments):
    """torch refuses the backward of an in-place LeakyReLU or ELU with a negative slope or alpha (it works from the
    output); juanji keeps a copy of x there, and is compared with torch's out-of-place twin."""
    values = dict(arguments)
    return not (name == "LeakyReLU" and values.get("negative_slope", 0.01) < 0
                or name == "ELU" and values.get("alpha", 1.0) < 0)


@pytest.mark.filterwarnings("ignore:Implicit dimension choice")        # a draw that leaves dim at None
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("name", ELEMENTWISE + ALONG_DIM)
def test_layer_matches_torch(name, seed, dtype):
    rng = np.random.default_rng([seed, zlib.crc32(name.encode())])
    x = draw_input(rng, seed, dtype)
    arguments = DRAWS[name](rng, x)
    if arguments and rng.random() < 0.25:                    # sometimes the last one left at its default
        arguments.pop()
    args, kwargs = split(arguments, rng)
    layer = getattr(nn, name)(*args, **kwargs, **({"dtype": dtype} if name == "PReLU" else {}))
    for value in kinks(layer):                               # a few elements exactly at each kink
        x[tuple(rng.integers(size, size=3) for size in x.shape)] = value
    if name == "PReLU":
        np.testing.assert_array_equal(layer.params["weight"], np.asarray(dict(arguments).get("init", 0.25), dtype))
        if seed % 2:
            randomise_state(layer, seed)
    if getattr(layer, "inplace", False):
        if not torch_supports_in_place_backward(name, arguments):
            args, kwargs = (), {**dict(arguments), "inplace": False}
        compare_in_place(layer, torch_twin(name, args, kwargs, dtype), x, seed)
    else:
        compare_with_torch(layer, torch_twin(name, args, kwargs, dtype), x, seed=seed)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", ELEMENTWISE + ALONG_DIM)
def test_inputs_of_1e4_stay_finite_and_match_torch(name, dtype):
    """No overflow anywhere: Softplus, Mish, SiLU, GELU and the softmax family stay finite for |x| up to 1e4."""
    x = np.array([[-1e4, -1e3, -100, -30, -3, -1e-3, 0, 1e-3, 3, 30, 100, 1e3, 1e4]], dtype)
    args = [-1] if name in ALONG_DIM else []
    layer = getattr(nn, name)(*args, **({"dtype": dtype} if name == "PReLU" else {}))
    with warnings.catch_warnings():
        warnings.simplefilter("error")                      # no overflow or invalid-value RuntimeWarning
        y = layer(x)
        dx = layer.backward(np.ones_like(y))
    assert np.isfinite(y).all() and np.isfinite(dx).all()
    compare_with_torch(layer, torch_twin(name, args, {}, dtype), x)


def default_layer(name):
    if name == "PReLU":
        layer = nn.PReLU(3, dtype=np.float64)
        randomise_state(layer)
        return layer
    return getattr(nn, name)(*([1] if name in ALONG_DIM else []))


@pytest.mark.parametrize("name", ELEMENTWISE + ALONG_DIM)
def test_finite_differences(name):
    layer = default_layer(name)
    x = np.random.default_rng(3).standard_normal((2, 3, 4, 5)) * 3
    for kink in kinks(layer):                               # central differences across a kink mean nothing
        x[np.abs(x - kink) < 1e-3] += 0.01
    check_layer(layer, x, samples=12)


# -- softmax family: torch's implicit dim ------------------------------------------------------------------

@pytest.mark.parametrize("ndim", [0, 1, 2, 3, 4])
@pytest.mark.parametrize("name", ALONG_DIM)
def test_dim_none_takes_torchs_implicit_dim_with_its_warning(name, ndim):
    """dim=None: axis 0 for 0-, 1- and 3-D inputs (one sample), else 1 — and torch's warning, word for word."""
    x = np.random.default_rng(ndim).standard_normal((2, 3, 4, 5)[:ndim])
    layer, twin = getattr(nn, name)(), getattr(torch.nn, name)()
    with warnings.catch_warnings(record=True) as ours:
        warnings.simplefilter("always")
        layer(x)
    with warnings.catch_warnings(record=True) as theirs:
        warnings.simplefilter("always")
        twin(torch.from_numpy(x))
    assert [(w.category, str(w.message)) for w in ours] == [(w.category, str(w.message)) for w in theirs]
    assert len(ours) == 1 and "Implicit dimension choice" in str(ours[0].message)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        compare_with_torch(layer, twin, x)


def test_the_implicit_dim_warning_points_at_the_caller():
    with pytest.warns(UserWarning, match="Implicit dimension choice for log_softmax") as record:
        nn.LogSoftmax()(np.zeros((2, 3)))
    assert record[0].filename == __file__


@pytest.mark.parametrize("name", ALONG_DIM)
def test_dim_out_of_range_names_the_layer(name):
    with pytest.raises(ValueError, match=rf"{name}\(dim=3\).*out of range.*3-D"):
        getattr(nn, name)(3)(np.zeros((2, 3, 4)))
    y = getattr(nn, name)(-1)(np.zeros(()))                 # a 0-D input: one element along its one axis
    assert y.shape == () and y.dtype == np.float64


# -- in place ---------------------------------------------------------------------------------------------

@pytest.mark.parametrize("name", IN_PLACE)
def test_in_place_writes_the_output_into_the_input_and_backward_is_unchanged(name):
    rng = np.random.default_rng(5)
    x = (rng.standard_normal((2, 3, 4)) * 4).astype(np.float32)
    dy = rng.standard_normal(x.shape).astype(np.float32)
    plain = getattr(nn, name)()
    expected = plain(x.copy())
    expected_dx = plain.backward(dy)
    base = x.copy()
    view = base.transpose(2, 0, 1)                          # in place through a non-contiguous view
    layer = getattr(nn, name)(inplace=True)
    y = layer(view)
    assert y is view and y.base is base
    np.testing.assert_array_equal(base, expected)
    np.testing.assert_array_equal(layer.backward(dy.transpose(2, 0, 1)), expected_dx.transpose(2, 0, 1))


@pytest.mark.parametrize("name", IN_PLACE)
def test_in_place_under_no_grad_keeps_nothing(name):
    x = np.linspace(-5, 5, 24).reshape(2, 3, 4)
    layer = getattr(nn, name)(inplace=True)
    with nn.no_grad():
        y = layer(x)
    assert y is x and layer._saved is None
    with pytest.raises(RuntimeError, match="before forward"):
        layer.backward(np.ones_like(y))


def test_inplace_appears_in_the_repr_as_in_torch():
    for name in ["ReLU", "ReLU6", "SiLU", "SELU"]:
        assert repr(getattr(nn, name)(inplace=True)) == repr(getattr(torch.nn, name)(inplace=True))
        assert repr(getattr(nn, name)()) == repr(getattr(torch.nn, name)())


# -- torch's other spellings and dtypes -----------------------------------------------------------------------

def test_hardtanh_takes_torchs_deprecated_min_value_and_max_value():
    x = np.linspace(-3, 3, 13)
    for kwargs in (dict(min_value=-2.0), dict(max_value=0.5), dict(min_value=-0.5, max_value=2.5)):
        with pytest.warns(FutureWarning, match="is deprecated and renamed to `m.._val`"):
            layer = nn.Hardtanh(**kwargs)
        with pytest.warns(FutureWarning):
            twin = torch.nn.Hardtanh(**kwargs)
        compare_with_torch(layer, twin, x)


@pytest.mark.parametrize("dtype", [None, np.float32, "float64", torch.float64, np.dtype(np.float64)])
def test_prelu_dtype_and_device_as_torch_spells_them(dtype):
    layer = nn.PReLU(2, 0.1, "cpu", dtype)
    expected = np.float32 if dtype is None or dtype is np.float32 else np.float64
    assert layer.params["weight"].dtype == layer.grads["weight"].dtype == expected
    assert nn.PReLU(device=torch.device("cpu")).params["weight"].dtype == np.float32


def test_prelu_macs_are_not_counted_and_its_slopes_are_parameters():
    rows = summarize(nn.Sequential(nn.Conv2d(3, 4, 3), nn.PReLU(4)), (3, 8, 8))
    assert (rows[1].kind, rows[1].params, rows[1].macs) == ("PReLU", 4, 0)
    assert rows[0].macs == 4 * 6 * 6 * 3 * 3 * 3


# -- refused --------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("make, error, fragments", [
    (lambda: nn.ReLU(inplace="yes"), TypeError, ("ReLU", "inplace", "'yes'")),
    (lambda: nn.Hardswish(1), TypeError, ("Hardswish", "inplace", "1")),
    (lambda: nn.LeakyReLU("0.1"), TypeError, ("LeakyReLU", "negative_slope", "'0.1'")),
    (lambda: nn.LeakyReLU(float("nan")), ValueError, ("LeakyReLU", "negative_slope", "nan")),
    (lambda: nn.Hardtanh(1.0, 0.0), ValueError, ("Hardtanh", "max_val (0.0)", "min_val (1.0)")),
    (lambda: nn.Hardtanh(1.0, 1.0), ValueError, ("Hardtanh", "max_val (1.0)", "greater")),
    (lambda: nn.GELU("erf"), ValueError, ("GELU", "approximate", "'none' or 'tanh'", "'erf'")),
    (lambda: nn.Softplus(0), ValueError, ("Softplus", "beta", "non-zero")),
    (lambda: nn.Softplus(1.0, None), TypeError, ("Softplus", "threshold", "None")),
    (lambda: nn.ELU(float("inf")), ValueError, ("ELU", "alpha", "finite", "inf")),
    (lambda: nn.PReLU(0), ValueError, ("PReLU", "num_parameters", "positive", "0")),
    (lambda: nn.PReLU(2.0), ValueError, ("PReLU", "num_parameters", "2.0")),
    (lambda: nn.PReLU(init="a"), TypeError, ("PReLU", "init", "'a'")),
    (lambda: nn.PReLU(device="cuda"), ValueError, ("PReLU", "device", "'cuda'")),
    (lambda: nn.PReLU(dtype=np.int32), TypeError, ("PReLU", "dtype", "floating-point")),
    (lambda: nn.PReLU(dtype="bogus"), TypeError, ("PReLU", "dtype", "'bogus'")),
    (lambda: nn.Softmax(1.5), TypeError, ("Softmax", "dim", "1.5")),
    (lambda: nn.LogSoftmax(True), TypeError, ("LogSoftmax", "dim", "True")),
    (lambda: nn.Sigmoid(1), TypeError, ("Sigmoid", "no arguments", "1")),
    (lambda: nn.Tanh(inplace=True), TypeError, ("Tanh", "no arguments", "inplace=True")),
])
def test_bad_arguments_are_refused_at_construction(make, error, fragments):
    with pytest.raises(error) as info:
        make()
    message = str(info.value)
    assert all(fragment in message for fragment in fragments), message


@pytest.mark.parametrize("name", ELEMENTWISE + ALONG_DIM)
def test_non_float_input_is_refused_naming_the_layer(name):
    layer = default_layer(name)
    for bad, fragment in ((np.zeros((2, 3), np.int64), "int64"), ([[1.0, 2.0]], "list")):
        with pytest.raises(TypeError, match=rf"{type(layer).__name__}\(.*{fragment}"):
            layer(bad)


def test_prelu_refuses_a_channel_or_dtype_mismatch():
    with pytest.raises(ValueError, match=r"PReLU\(num_parameters=3\).*\(N, 3, \*\).*\(3, 4\)"):
        nn.PReLU(3)(np.zeros((3, 4), np.float32))
    with pytest.raises(ValueError, match=r"\(N, 3, \*\).*\(3,\)"):
        nn.PReLU(3)(np.zeros(3, np.float32))              # a vector has one channel, as in torch
    with pytest.raises(TypeError, match=r"PReLU.*float32 but the input is float64"):
        nn.PReLU()(np.zeros((2, 3)))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("make, twin", [
    (lambda: nn.LeakyReLU(-0.4, inplace=True), lambda: torch.nn.LeakyReLU(-0.4)),
    (lambda: nn.ELU(-0.7, True), lambda: torch.nn.ELU(-0.7)),
], ids=["LeakyReLU", "ELU"])
def test_in_place_with_a_negative_slope_keeps_a_copy_of_the_input(make, twin, dtype):
    """The output no longer tells x's sign, so in place keeps x (torch refuses this backward)."""
    x = (np.random.default_rng(6).standard_normal((3, 4)) * 3).astype(dtype)
    x[0, :2] = 0
    compare_in_place(make(), twin(), x)
