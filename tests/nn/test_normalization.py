"""BatchNorm1d / BatchNorm2d with every torch argument drawn at random — momentum=None (the cumulative average
over num_batches_tracked), track_running_stats=False (batch statistics in eval too), affine, bias=False, eps,
device, dtype — against torch.nn over several steps in training and eval (forward, dx, dγ, dβ, running
statistics and the batch count); finite differences; nn.fuse and SyncBatchNorm with those options; the
batch count in state_dicts, checkpoints and torch's state_dicts; bad arguments refused."""
import numpy as np
import pytest
import torch

from finite_difference import check_layer
from juanji import checkpoint as ckpt
from juanji import distributed, models, nn
from juanji import random as jrandom
from juanji.interop import from_torch, to_torch
from layer_check import DTYPES, compare_with_torch, randomise_state

CLASSES = {"BatchNorm1d": (nn.BatchNorm1d, torch.nn.BatchNorm1d), "BatchNorm2d": (nn.BatchNorm2d, torch.nn.BatchNorm2d)}
SEEDS = range(8)


def draw_options(rng):
    """Every argument of torch's constructor but device and dtype, drawn."""
    return dict(num_features=int(rng.integers(1, 5)), eps=float(rng.choice([1e-5, 1e-3, 0.1])),
                momentum=None if rng.random() < 0.4 else float(rng.uniform(0.05, 1.0)),
                affine=bool(rng.random() < 0.6), track_running_stats=bool(rng.random() < 0.6),
                bias=bool(rng.random() < 0.6))


def build(cls, options, dtype, positional):
    """cls with ``options``, positionally in torch's order (device "cpu" and dtype too) or by keyword."""
    o = options
    if positional:
        return cls(o["num_features"], o["eps"], o["momentum"], o["affine"], o["track_running_stats"], "cpu", dtype,
                   bias=o["bias"])
    return cls(**o, device=None, dtype=dtype)


def draw_input(rng, name, c, dtype):
    """(N, C) or (N, C, L) for BatchNorm1d, (N, C, H, W) for BatchNorm2d, N ≥ 2; half of them a
    non-contiguous (transposed) view."""
    n = int(rng.integers(2, 5))
    if name == "BatchNorm1d":
        shape = (n, c) if rng.random() < 0.5 else (n, c, int(rng.integers(1, 6)))
    else:
        shape = (n, c, int(rng.integers(1, 5)), int(rng.integers(1, 5)))
    x = (rng.standard_normal(shape) * 2 + 0.5).astype(dtype)
    return x.T.copy().T if rng.random() < 0.5 else x


@pytest.mark.usefixtures("kernels", "batch_threads")
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("name", CLASSES)
def test_random_options_match_torch_over_steps(name, seed, dtype):
    rng = np.random.default_rng(seed)
    options = draw_options(rng)
    ours, theirs = CLASSES[name]
    layer = build(ours, options, dtype, positional=seed % 2 == 0)
    randomise_state(layer, seed)
    layer.train(bool(rng.random() < 0.6))
    twin = theirs(**options)
    x = draw_input(rng, name, options["num_features"], dtype)
    y = compare_with_torch(layer, twin, x, steps=3, seed=seed)
    assert y.shape == x.shape and y.flags.c_contiguous
    assert ("running_mean" in layer.buffers) == options["track_running_stats"]
    assert ("bias" in layer.params) == (options["affine"] and options["bias"])


@pytest.mark.parametrize("momentum", [None, 0.1])
def test_num_batches_tracked_counts_training_steps_and_momentum_none_averages_them(momentum):
    layer = nn.BatchNorm1d(2, momentum=momentum, dtype=np.float64)
    batches = [np.random.default_rng(i).standard_normal((4, 2)) * (i + 1) + i for i in range(5)]
    for x in batches:
        layer(x)
    layer.eval()(batches[0])
    assert layer.buffers["num_batches_tracked"] == 5 and layer.buffers["num_batches_tracked"].dtype == np.int64
    if momentum is None:        # the plain mean of the batches' means and unbiased variances
        np.testing.assert_allclose(layer.buffers["running_mean"], np.mean([b.mean(0) for b in batches], 0))
        np.testing.assert_allclose(layer.buffers["running_var"], np.mean([b.var(0, ddof=1) for b in batches], 0))


def test_without_running_statistics_eval_normalises_by_the_batch():
    layer = nn.BatchNorm2d(3, track_running_stats=False, dtype=np.float64).eval()
    assert layer.buffers == {} and list(layer.state_dict()) == ["weight", "bias"]
    x = np.random.default_rng(0).standard_normal((2, 3, 4, 4)) * 3 + 1
    mean, var = x.mean(axis=(0, 2, 3), keepdims=True), x.var(axis=(0, 2, 3), keepdims=True)
    np.testing.assert_allclose(layer(x), (x - mean) / np.sqrt(var + 1e-5), atol=1e-12)
    with pytest.raises(ValueError, match="more than 1 value per channel"):
        layer(np.ones((1, 3, 1, 1)))


def test_a_layer_without_arrays_follows_its_input_dtype():
    layer = nn.BatchNorm1d(3, affine=False, track_running_stats=False)
    assert layer.dtype is None
    for dtype in DTYPES:
        x = np.random.default_rng(0).standard_normal((4, 3)).astype(dtype)
        assert layer(x).dtype == layer.backward(np.ones_like(x)).dtype == dtype


@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("name", CLASSES)
def test_finite_differences(name, seed):
    rng = np.random.default_rng(seed)
    options = draw_options(rng)
    layer = build(CLASSES[name][0], options, np.float64, positional=False)
    randomise_state(layer, seed)
    layer.train(bool(seed % 2 == 0))
    check_layer(layer, draw_input(rng, name, options["num_features"], np.float64), seed=seed)


def test_no_grad_keeps_nothing():
    layer = nn.BatchNorm2d(2, momentum=None, track_running_stats=False)
    with nn.no_grad():
        layer(np.ones((2, 2, 3, 3), np.float32))
    with pytest.raises(RuntimeError, match="backward called before forward"):
        layer.backward(np.ones((2, 2, 3, 3), np.float32))


# -- nn.fuse and SyncBatchNorm with the new options -----------------------------------------------------------------
OPTIONS = [dict(), dict(momentum=None), dict(track_running_stats=False), dict(bias=False),
           dict(affine=False, track_running_stats=False, momentum=None)]


@pytest.mark.usefixtures("kernels")
@pytest.mark.parametrize("options", OPTIONS, ids=lambda o: ",".join(f"{k}={v}" for k, v in o.items()) or "default")
def test_fused_batch_norms_compute_what_the_unfused_ones_do(options, kernels):
    """BatchNormReLU and BatchNormAddReLU take over every option: the same outputs, gradients and buffers (the
    batch count among them) as the batch norm and ReLU unfused, training then eval — bit for bit on NumPy's
    kernels, to rounding on the compiled ones."""
    rng = np.random.default_rng(0)
    plain = nn.BatchNorm2d(3, dtype=np.float64, **options)
    randomise_state(plain)
    fused = nn.fuse(nn.Sequential(nn.BatchNorm2d(3, dtype=np.float64, **options), nn.ReLU()))[0]
    fused.load_state_dict(plain.state_dict())
    assert type(fused) is nn.BatchNormReLU and fused.track_running_stats == plain.track_running_stats
    add_relu = nn.BatchNormAddReLU(nn.BatchNorm2d(3, dtype=np.float64, **options))
    add_relu.load_state_dict(plain.state_dict())
    exact = kernels == "numpy"
    plain.retain_cache()                            # its backward runs twice: for the ReLU, then for the sum's ReLU

    def same(got, want):
        np.testing.assert_allclose(got, want, rtol=0, atol=0 if exact else 1e-12)

    for step, training in enumerate([True, True, False]):
        for layer in (plain, fused, add_relu):
            layer.train(training)
        x, s = rng.standard_normal((2, 3, 4, 4)) + step, rng.standard_normal((2, 3, 4, 4))
        dz = rng.standard_normal(x.shape)
        y = plain(x)
        z, z_sum = np.maximum(y, 0), np.maximum(y + s, 0)
        same(fused(x), z)
        same(fused.backward(dz), plain.backward(dz * (z > 0)))
        for key, grad in fused.grads.items():
            same(grad, plain.grads[key])
        same(add_relu(x, s), z_sum)
        dx, ds = add_relu.backward(dz)
        same(ds, dz * (z_sum > 0))
        same(dx, plain.backward(ds))
        for key, grad in add_relu.grads.items():
            same(grad, plain.grads[key])
        for layer in (fused, add_relu):
            for name, value in plain.state_dict().items():
                same(layer.state_dict()[name], value)
    tracked = options.get("track_running_stats", True)
    assert int(fused.buffers.get("num_batches_tracked", -1)) == (int(plain.buffers["num_batches_tracked"])
                                                                 if tracked else -1)


class OneProcess:
    """A communicator of one process: the sums over processes are the process's own."""
    size = 1

    def allreduce_(self, array):
        return array


@pytest.mark.parametrize("seed", range(4))
def test_sync_batch_norm_over_one_process_is_torchs_batch_norm(seed):
    """convert_sync_batchnorm keeps every option; over one process the synchronised sums are the local ones."""
    rng = np.random.default_rng(seed)
    options = draw_options(rng)
    layer = nn.BatchNorm2d(**options, dtype=np.float64)
    randomise_state(layer, seed)
    model = distributed.convert_sync_batchnorm(nn.Sequential(layer), OneProcess())
    assert type(model[0]).__name__ == "SyncBatchNorm" and model[0].momentum == options["momentum"]
    compare_with_torch(model, torch.nn.Sequential(torch.nn.BatchNorm2d(**options)),
                       draw_input(rng, "BatchNorm2d", options["num_features"], np.float64), steps=3)


def test_sync_batch_norm_takes_torchs_signature_and_refuses_a_process_group():
    import inspect
    theirs = [(p.name, p.default) for p in inspect.signature(torch.nn.SyncBatchNorm.__init__).parameters.values()]
    ours = [(p.name, p.default) for p in inspect.signature(distributed.SyncBatchNorm.__init__).parameters.values()]
    assert ours[:len(theirs)] == theirs and ours[len(theirs):] == [("comm", None)]
    layer = distributed.SyncBatchNorm(3, 1e-3, None, True, False, None, "cpu", np.float64, bias=False)
    assert layer.momentum is None and layer.buffers == {} and list(layer.params) == ["weight"]
    with pytest.raises(ValueError, match="SyncBatchNorm: process_group must be None"):
        distributed.SyncBatchNorm(3, process_group=object())


# -- num_batches_tracked in state_dicts, checkpoints and torch's state_dicts ----------------------------------------
def test_state_dict_names_are_torchs_and_old_state_dicts_without_the_count_still_load(tmp_path):
    model = nn.Sequential(nn.Conv2d(2, 3, 3), nn.BatchNorm2d(3), nn.BatchNorm2d(3, track_running_stats=False))
    twin = torch.nn.Sequential(torch.nn.Conv2d(2, 3, 3), torch.nn.BatchNorm2d(3),
                               torch.nn.BatchNorm2d(3, track_running_stats=False))
    assert list(model.state_dict()) == list(twin.state_dict())
    model(np.ones((2, 2, 5, 5), np.float32))
    state = model.state_dict()
    old = {name: value for name, value in state.items() if not name.endswith("num_batches_tracked")}
    fresh = nn.Sequential(nn.Conv2d(2, 3, 3), nn.BatchNorm2d(3), nn.BatchNorm2d(3, track_running_stats=False))
    fresh.load_state_dict(old)                      # strict: the count may be missing, and stays as it was
    assert fresh[1].buffers["num_batches_tracked"] == 0
    fresh.load_state_dict(state)
    assert fresh[1].buffers["num_batches_tracked"] == 1
    with pytest.raises(KeyError, match="1.running_mean"):
        fresh.load_state_dict({k: v for k, v in old.items() if k != "1.running_mean"})

    jrandom.seed(0)
    network = models.create("resnet20", num_classes=3, in_channels=1, input_size=8)
    network(np.random.default_rng(0).standard_normal((2, 1, 8, 8)).astype(np.float32))
    ckpt.save(tmp_path / "new.npz", network)
    arrays = dict(np.load(tmp_path / "new.npz"))
    np.savez(tmp_path / "old.npz", **{k: v for k, v in arrays.items() if not k.endswith("num_batches_tracked")})
    for path, count in ((tmp_path / "old.npz", 0), (tmp_path / "new.npz", 1)):
        fresh = models.create("resnet20", num_classes=3, in_channels=1, input_size=8)
        loaded = ckpt.restore_model(ckpt.load(path, fresh), fresh)     # the sizes checked against the model
        np.testing.assert_array_equal(loaded.bn1.buffers["running_var"], network.bn1.buffers["running_var"])
        assert loaded.bn1.buffers["num_batches_tracked"] == count


def test_the_count_travels_to_and_from_torch():
    twin = torch.nn.Sequential(torch.nn.BatchNorm1d(2, momentum=None))
    twin(torch.randn(4, 2))
    twin(torch.randn(4, 2))
    model = from_torch(nn.Sequential(nn.BatchNorm1d(2, momentum=None)), twin.state_dict())
    assert model[0].buffers["num_batches_tracked"] == 2
    model(np.ones((3, 2), np.float32))
    back = torch.nn.Sequential(torch.nn.BatchNorm1d(2, momentum=None))
    back.load_state_dict({k: torch.from_numpy(v) for k, v in to_torch(model).items()})
    assert back[0].num_batches_tracked.item() == 3
    older = {k: v for k, v in twin.state_dict().items() if not k.endswith("num_batches_tracked")}
    assert from_torch(nn.Sequential(nn.BatchNorm1d(2)), older)[0].buffers["num_batches_tracked"] == 0


# -- bad arguments and inputs -----------------------------------------------------------------------------------
@pytest.mark.parametrize("kwargs, error, fragments", [
    (dict(num_features=0), ValueError, ("num_features", "0")),
    (dict(num_features=2.0), ValueError, ("num_features", "2.0")),
    (dict(num_features=True), ValueError, ("num_features", "True")),
    (dict(eps=0.0), ValueError, ("eps", "> 0", "0.0")),
    (dict(eps=float("nan")), ValueError, ("eps", "nan")),
    (dict(eps="small"), ValueError, ("eps", "'small'")),
    (dict(momentum=-0.1), ValueError, ("momentum", "or None", "-0.1")),
    (dict(momentum=1.5), ValueError, ("momentum", "≤ 1", "1.5")),
    (dict(affine="yes"), TypeError, ("affine", "'yes'")),
    (dict(track_running_stats=1), TypeError, ("track_running_stats", "1")),
    (dict(bias=None), TypeError, ("bias", "None")),
    (dict(device="cuda"), ValueError, ("device", "'cuda'", "cpu")),
    (dict(device=torch.device("cuda", 0)), ValueError, ("device", "cuda:0")),
    (dict(dtype=np.int32), TypeError, ("dtype", "float32 or float64")),
    (dict(dtype=torch.float16), TypeError, ("dtype", "torch.float16")),
])
@pytest.mark.parametrize("name", CLASSES)
def test_bad_arguments_are_refused_naming_the_layer_and_argument(name, kwargs, error, fragments):
    arguments = {"num_features": 3, **kwargs}
    with pytest.raises(error) as info:
        CLASSES[name][0](**arguments)
    message = str(info.value)
    assert message.startswith(f"{name}: ") and all(fragment in message for fragment in fragments), message


def test_good_factory_arguments_are_taken():
    assert nn.BatchNorm2d(2, device="cpu", dtype="float64").dtype == np.float64
    assert nn.BatchNorm2d(2, device=torch.device("cpu"), dtype=torch.float64).dtype == np.float64
    assert nn.BatchNorm1d(2).dtype == np.float32


@pytest.mark.parametrize("layer, shape, fragments", [
    (nn.BatchNorm1d(3), (4, 3, 2, 2), ("(N, 3) or (N, 3, L)", "(4, 3, 2, 2)")),
    (nn.BatchNorm1d(3), (3,), ("(N, 3) or (N, 3, L)", "(3,)")),
    (nn.BatchNorm2d(3), (3, 4, 4), ("(N, 3, H, W)", "(3, 4, 4)")),
    (nn.BatchNorm2d(3, track_running_stats=False), (2, 4, 3, 3), ("3 channels", "(2, 4, 3, 3)")),
    (nn.BatchNorm1d(3, momentum=None), (1, 3), ("more than 1 value per channel", "(1, 3)")),
])
def test_bad_inputs_are_named(layer, shape, fragments):
    with pytest.raises(ValueError) as info:
        layer(np.ones(shape, np.float32))
    assert all(fragment in str(info.value) for fragment in fragments), str(info.value)

