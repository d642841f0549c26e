"""InstanceNorm1d / InstanceNorm2d with every torch argument drawn at random — affine, bias, track_running_stats
with momentum (None: statistics left as they are, as torch), eps — against torch.nn in training and eval over
several steps (forward, dx, dγ, dβ, running statistics), batched, unbatched and non-contiguous; finite
differences; torch's channel-count warning; bad arguments and inputs refused."""
import inspect
import warnings

import numpy as np
import pytest
import torch

from finite_difference import check_layer
from juanji import nn
from layer_check import DTYPES, compare_with_torch, randomise_state

pytestmark = pytest.mark.usefixtures("batch_threads")
CLASSES = {"InstanceNorm1d": (nn.InstanceNorm1d, torch.nn.InstanceNorm1d, 1),
           "InstanceNorm2d": (nn.InstanceNorm2d, torch.nn.InstanceNorm2d, 2)}
SEEDS = range(10)


def draw(rng, spatial):
    """Every argument of torch's constructor but device and dtype, and an input shape: (C, *) unbatched or
    (N, C, *), more than one value per channel."""
    options = dict(num_features=int(rng.integers(1, 5)), eps=float(rng.choice([1e-5, 1e-3, 0.1])),
                   momentum=None if rng.random() < 0.3 else float(rng.uniform(0.05, 1.0)),
                   affine=bool(rng.random() < 0.5), track_running_stats=bool(rng.random() < 0.5),
                   bias=bool(rng.random() < 0.6))
    sizes = tuple(int(s) for s in rng.integers(1, 5, spatial))
    sizes = sizes if np.prod(sizes) > 1 else (2,) + sizes[1:]
    batch = () if rng.random() < 0.3 else (int(rng.integers(1, 4)),)
    return options, batch + (options["num_features"],) + sizes


def build(cls, o, dtype, positional):
    if positional:
        return cls(o["num_features"], o["eps"], o["momentum"], o["affine"], o["track_running_stats"], "cpu", dtype,
                   bias=o["bias"])
    return cls(**o, device=None, dtype=dtype)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("name", CLASSES)
def test_random_options_match_torch_over_steps(name, seed, dtype):
    ours, theirs, spatial = CLASSES[name]
    rng = np.random.default_rng(seed)
    options, shape = draw(rng, spatial)
    layer = build(ours, options, dtype, positional=seed % 2 == 0)
    randomise_state(layer, seed)
    layer.train(bool(rng.random() < 0.6))
    x = (rng.standard_normal(shape) * 2 + 1).astype(dtype)
    x = x.T.copy().T if rng.random() < 0.5 else x          # half of them a non-contiguous (transposed) view
    y = compare_with_torch(layer, theirs(**options), x, steps=3, seed=seed)
    assert y.shape == shape         # num_batches_tracked, compared with torch's above, is never counted


def test_running_statistics_average_the_samples_and_momentum_none_keeps_them():
    x = np.random.default_rng(0).standard_normal((3, 2, 5)) * 2 + 1
    layer = nn.InstanceNorm1d(2, momentum=0.5, track_running_stats=True, dtype=np.float64)
    layer(x)
    np.testing.assert_allclose(layer.buffers["running_mean"], 0.5 * x.mean(axis=2).mean(axis=0))
    np.testing.assert_allclose(layer.buffers["running_var"], 0.5 + 0.5 * x.var(axis=2, ddof=1).mean(axis=0))
    still = nn.InstanceNorm1d(2, momentum=None, track_running_stats=True, dtype=np.float64)
    still(x)
    np.testing.assert_array_equal(still.buffers["running_mean"], 0)
    np.testing.assert_array_equal(still.buffers["running_var"], 1)
    assert layer.buffers["num_batches_tracked"] == still.buffers["num_batches_tracked"] == 0


@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("name", CLASSES)
def test_finite_differences(name, seed):
    ours, _, spatial = CLASSES[name]
    rng = np.random.default_rng(seed)
    options, shape = draw(rng, spatial)
    layer = build(ours, options, np.float64, positional=False)
    randomise_state(layer, seed)
    layer.train(seed % 2 == 0)
    check_layer(layer, rng.standard_normal(shape), seed=seed)


def test_another_channel_count_is_a_warning_without_affine_or_statistics_as_in_torch():
    x = np.random.default_rng(0).standard_normal((2, 5, 6)).astype(np.float32)
    with pytest.warns(UserWarning, match="num_features is not used"):
        y = nn.InstanceNorm1d(3)(x)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        expected = torch.nn.InstanceNorm1d(3)(torch.from_numpy(x)).numpy()
    np.testing.assert_allclose(y, expected, atol=1e-5)
    for layer in (nn.InstanceNorm1d(3, affine=True), nn.InstanceNorm1d(3, track_running_stats=True)):
        with pytest.raises(ValueError, match=r"\(N, 3, L\) or \(3, L\).*5 channels"):
            layer(x)


def test_no_grad_keeps_nothing_and_the_dtype_follows_the_input_without_arrays():
    layer = nn.InstanceNorm2d(2)
    assert layer.dtype is None
    for dtype in DTYPES:
        x = np.random.default_rng(0).standard_normal((2, 3, 3)).astype(dtype)
        assert layer(x).dtype == layer.backward(np.ones_like(x)).dtype == dtype
    with nn.no_grad():
        layer(np.ones((2, 2, 3, 3), np.float32))
    with pytest.raises(RuntimeError, match="backward called before forward"):
        layer.backward(np.ones((2, 2, 3, 3), np.float32))


@pytest.mark.parametrize("kwargs, error, fragments", [
    (dict(num_features=-2), ValueError, ("num_features", "-2")),
    (dict(eps=-0.1), ValueError, ("eps", "-0.1")),
    (dict(momentum=2.0), ValueError, ("momentum", "2.0")),
    (dict(affine="True"), TypeError, ("affine", "'True'")),
    (dict(track_running_stats=None), TypeError, ("track_running_stats", "None")),
    (dict(bias=1.0), TypeError, ("bias", "1.0")),
    (dict(device="cuda"), ValueError, ("device", "'cuda'")),
    (dict(dtype=np.complex64), TypeError, ("dtype", "complex64")),
])
@pytest.mark.parametrize("name", CLASSES)
def test_bad_arguments_are_refused_naming_the_layer_and_argument(name, kwargs, error, fragments):
    with pytest.raises(error) as info:
        CLASSES[name][0](**{"num_features": 3, **kwargs})
    message = str(info.value)
    assert message.startswith(f"{name}: ") and all(fragment in message for fragment in fragments), message


@pytest.mark.parametrize("layer, shape, fragments", [
    (nn.InstanceNorm1d(3), (2, 3, 4, 4), ("(N, 3, L) or (3, L)", "(2, 3, 4, 4)")),
    (nn.InstanceNorm2d(3), (3, 4), ("(N, 3, H, W) or (3, H, W)", "(3, 4)")),
    (nn.InstanceNorm2d(3), (2, 3, 1, 1), ("more than 1 spatial element", "(2, 3, 1, 1)")),
    (nn.InstanceNorm1d(3, track_running_stats=False).eval(), (3, 1), ("more than 1 spatial element", "(3, 1)")),
])
def test_bad_inputs_are_named(layer, shape, fragments):
    with pytest.raises(ValueError) as info:
        layer(np.ones(shape, np.float32))
    assert all(fragment in str(info.value) for fragment in fragments), str(info.value)


def test_eval_with_running_statistics_takes_a_single_spatial_element():
    layer = nn.InstanceNorm2d(2, track_running_stats=True, dtype=np.float64).eval()
    randomise_state(layer)
    compare_with_torch(layer, torch.nn.InstanceNorm2d(2, track_running_stats=True),
                       np.random.default_rng(0).standard_normal((3, 2, 1, 1)))


@pytest.mark.parametrize("name", CLASSES)
def test_the_constructor_signature_is_torchs(name):
    """InstanceNorm1d is not in test_signatures' list; both checked here the same way."""
    ours, theirs, _ = CLASSES[name]

    def described(cls):
        return [(p.name, p.kind, p.default) for p in inspect.signature(cls.__init__).parameters.values()]

    assert described(ours) == described(theirs)
