"""nn.fuse: a batch norm and the ReLU (or ReLU6) after it as one layer (and a residual block's end as one), an
explicit transform of the model (its folding of batch norms into convs in inference: test_fused_fold.py). The
fused model computes what the unfused one does — bit for bit on NumPy's kernels, to rounding on the compiled
ones — and what torch does; its state_dict names and arrays are the unfused model's, so optimizers and
checkpoints carry over."""
from collections import OrderedDict

import numpy as np
import pytest
import torch

from juanji import distributed, models, nn, optim
from juanji import random as jrandom
from juanji.runtime import kernels as backend
from closeness import assert_close
from layer_check import DTYPES, compare_with_torch, randomise_state
from test_containers import cnn_pair, pair, sequential_pair

ZOO = [("lenet5", 1, 28), ("resnet20", 3, 16), ("resnet18", 3, 16), ("vgg_small", 1, 16),
       ("mobilenet_v1", 3, 16), ("mobilenet_v2", 3, 8), ("densenet_bc_40", 3, 16), ("googlenet", 3, 16),
       ("mobilenet_v3_small", 3, 16)]


def twins(name, channels, size, dtype):
    """The same zoo model twice, the second fused."""
    jrandom.seed(0)
    model = models.create(name, num_classes=5, in_channels=channels, input_size=size).to(dtype)
    other = models.create(name, num_classes=5, in_channels=channels, input_size=size).to(dtype)
    other.load_state_dict(model.state_dict())
    return model, nn.fuse(other)


@pytest.mark.usefixtures("kernels")
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name, channels, size", ZOO, ids=[z[0] for z in ZOO])
def test_a_fused_zoo_model_computes_what_the_unfused_one_does(name, channels, size, dtype, kernels):
    model, fused = twins(name, channels, size, dtype)
    assert list(fused.state_dict()) == list(model.state_dict())
    rng = np.random.default_rng(0)
    for step in range(2):       # training: the batch statistics, then the running ones updated twice
        x = rng.standard_normal((3, channels, size, size)).astype(dtype)
        jrandom.seed(step)              # the same dropout masks for both
        y = model(x)
        jrandom.seed(step)
        y_fused = fused(x)
        dy = rng.standard_normal(y.shape).astype(dtype)
        got = [y_fused, fused.backward(dy), *(g for _, _, g in fused.parameters()), *fused.state_dict().values()]
        want = [y, model.backward(dy), *(g for _, _, g in model.parameters()), *model.state_dict().values()]
        for a, b in zip(got, want):
            assert a.dtype == b.dtype and a.dtype in (dtype, np.int64)     # int64: num_batches_tracked
            if kernels == "numpy":
                np.testing.assert_array_equal(a, b)
            else:       # the compiled sweep may sum in another order: a few ulps of the largest value
                tolerance = (1e-12 if dtype == np.float64 else 1e-5) * max(1.0, float(np.abs(b).max()))
                np.testing.assert_allclose(a, b, rtol=0, atol=tolerance)
    model.eval(), fused.eval()
    x = rng.standard_normal((2, channels, size, size)).astype(dtype)
    np.testing.assert_allclose(fused(x), model(x), rtol=0, atol=1e-5 * max(1.0, float(np.abs(model(x)).max())))


@pytest.mark.usefixtures("kernels")
@pytest.mark.parametrize("dtype", DTYPES)
def test_a_fused_network_matches_torch(dtype):
    model, twin = cnn_pair()
    model = nn.fuse(model.to(dtype))
    assert [type(layer).__name__ for layer in model][1:3] == ["BatchNormReLU", "Identity"]
    randomise_state(model)
    model[9].p = twin[9].p = 0.0
    compare_with_torch(model, twin, np.random.default_rng(0).standard_normal((2, 3, 11, 10)).astype(dtype), steps=3)


@pytest.mark.usefixtures("kernels")
@pytest.mark.parametrize("dtype", DTYPES)
def test_a_fused_network_with_relu6_matches_torch(dtype):
    """MobileNet v2's pairs (a conv's and a depthwise conv's batch norm + ReLU6) with γ large enough that some
    outputs are clamped at 6: training steps, then eval (with grad enabled: unfolded, and backward)."""
    model, twin = sequential_pair(pair("Conv2d", 3, 4, 1, bias=False), pair("BatchNorm2d", 4), pair("ReLU6"),
                                  pair("Conv2d", 4, 4, 3, padding=1, groups=4, bias=False), pair("BatchNorm2d", 4),
                                  pair("ReLU6"), pair("Flatten"), pair("Linear", 4 * 25, 3))
    model = nn.fuse(model.to(dtype))
    assert [type(layer).__name__ for layer in model][1:6] == ["BatchNormReLU6", "Identity", "FoldedConv2d",
                                                              "BatchNormReLU6", "Identity"]
    randomise_state(model)
    for index in (1, 4):
        model[index].params["weight"] *= 8
    clamped = []
    for index in (1, 4):
        model[index].register_forward_hook(lambda module, args, z: clamped.append((z == 6).any() and (z == 0).any()))
    x = np.random.default_rng(0).standard_normal((3, 3, 5, 5)).astype(dtype)
    compare_with_torch(model, twin, x, steps=2)
    model.eval()
    compare_with_torch(model, twin, x, steps=1)
    assert len(clamped) == 6 and all(clamped)


@pytest.mark.usefixtures("kernels")
@pytest.mark.parametrize("dtype", DTYPES)
def test_a_fused_relu6_pair_passes_no_infinite_or_nan_gradient_where_its_output_is_clamped(dtype):
    """BatchNormReLU6's backward masks dZ as ReLU6's does: dZ = ±∞ or NaN where z is clamped to 0 or 6 gives 0
    there, so dX, dγ and dβ stay finite and equal torch's (before: 0 · ∞ = NaN through the batch norm's sums)."""
    model, twin = sequential_pair(pair("BatchNorm2d", 3), pair("ReLU6"))
    model = nn.fuse(model.to(dtype))
    assert type(model[0]).__name__ == "BatchNormReLU6"
    randomise_state(model)
    model[0].params["weight"] *= 8
    twin = twin.to(torch.float64 if dtype == np.float64 else torch.float32)
    twin.load_state_dict({key: torch.from_numpy(value.copy()) for key, value in model.state_dict().items()})
    x = np.random.default_rng(0).standard_normal((2, 3, 4, 8)).astype(dtype)
    z = model(x)
    clamped = np.flatnonzero((z == 0) | (z == 6))
    assert clamped.size >= 6 and (z == 6).any()
    dz = np.random.default_rng(1).standard_normal(z.shape).astype(dtype)
    dz.flat[clamped[:6]] = [np.inf, -np.inf, np.nan, np.inf, np.nan, -np.inf]
    dx = model.backward(dz)
    leaf = torch.from_numpy(x).requires_grad_()
    twin(leaf).backward(torch.from_numpy(dz))
    assert np.isfinite(dx).all()
    assert_close(dx, leaf.grad, "dx")
    for key, torch_key in (("weight", "0.weight"), ("bias", "0.bias")):
        assert_close(model[0].grads[key], dict(twin.named_parameters())[torch_key].grad, key)


def test_fusing_keeps_the_arrays_so_an_optimizer_made_before_keeps_training():
    jrandom.seed(0)
    model = models.create("resnet20", num_classes=3, in_channels=1, input_size=8)
    optimizer = optim.SGD(model.parameters(), lr=0.1)
    arrays = {name: param for name, param, _ in model.parameters()}
    fused = nn.fuse(model)
    assert all(param is arrays[name] for name, param, _ in fused.parameters())
    before = {name: param.copy() for name, param in arrays.items()}
    x = np.random.default_rng(0).standard_normal((2, 1, 8, 8)).astype(np.float32)
    fused.backward(np.ones_like(fused(x)))
    optimizer.step()
    assert all(not np.array_equal(arrays[name], before[name]) for name in ("layer1.0.bn2.weight", "fc.weight"))


def test_only_a_plain_batch_norm_followed_by_a_plain_relu_or_relu6_is_fused():
    """... and only a plain Conv2d padding with zeros right before a 2-d batch norm folds it in (FoldedConv2d)."""
    model = nn.Sequential(nn.Conv2d(1, 2, 3), nn.BatchNorm2d(2), nn.LeakyReLU(), nn.BatchNorm2d(2), nn.Tanh(),
                          nn.BatchNorm2d(2), nn.ReLU(), nn.BatchNorm1d(2), nn.Flatten())
    kinds = [type(layer).__name__ for layer in nn.fuse(model)]
    assert kinds == ["FoldedConv2d", "FusedBatchNorm", "LeakyReLU", "BatchNorm2d", "Tanh", "BatchNormReLU",
                     "Identity", "BatchNorm1d", "Flatten"]
    model = nn.Sequential(nn.Conv2d(1, 2, 3, padding=1, padding_mode="reflect"), nn.BatchNorm2d(2), nn.ReLU6(),
                          nn.Hardtanh(0, 6), nn.BatchNorm2d(2), nn.Hardtanh(0, 6), nn.Conv1d(2, 2, 1),
                          nn.BatchNorm1d(2), nn.ReLU6(), nn.Conv2d(2, 3, 1), nn.BatchNorm2d(2))
    kinds = [type(layer).__name__ for layer in nn.fuse(model)]
    assert kinds == ["Conv2d", "BatchNormReLU6", "Identity", "Hardtanh", "BatchNorm2d", "Hardtanh", "Conv1d",
                     "BatchNormReLU6", "Identity", "Conv2d", "BatchNorm2d"]


def test_synchronised_batch_norms_are_left_alone_and_a_fused_model_cannot_be_converted():
    class OneProcess:           # convert_sync_batchnorm only stores its communicator
        size = 1
    model = nn.Sequential(nn.Conv2d(1, 2, 3), nn.BatchNorm2d(2), nn.ReLU())
    synchronised = nn.fuse(distributed.convert_sync_batchnorm(model, OneProcess()))
    assert [type(layer).__name__ for layer in synchronised] == ["Conv2d", "SyncBatchNorm", "ReLU"]
    for fused in (nn.fuse(nn.Sequential(nn.Conv2d(1, 2, 3), nn.BatchNorm2d(2), nn.ReLU())),
                  nn.fuse(nn.Sequential(nn.BatchNorm2d(2), nn.ReLU6()))):
        with pytest.raises(ValueError, match="convert before nn.fuse"):
            distributed.convert_sync_batchnorm(fused, OneProcess())


@pytest.mark.parametrize("chosen", backend.BACKENDS)
def test_fuse_where_it_pays_fuses_on_either_kernel_set(monkeypatch, chosen):
    """Inference folds on both; on NumPy's kernels training runs the unfused layers' kernels (test above)."""
    monkeypatch.setattr(backend, "_chosen", chosen)
    model = nn.fuse_where_it_pays(nn.Sequential(OrderedDict(conv=nn.Conv2d(1, 2, 3), bn=nn.BatchNorm2d(2),
                                                            relu=nn.ReLU())))
    assert [type(layer).__name__ for layer in model] == ["FoldedConv2d", "BatchNormReLU", "Identity"]


def test_hooks_see_every_layer_of_a_sequential_fused_or_not():
    model = nn.fuse(nn.Sequential(nn.Conv2d(1, 2, 3), nn.BatchNorm2d(2), nn.ReLU(), nn.Flatten()))
    seen = []
    for layer in model:
        layer.register_forward_hook(lambda module, args, output: seen.append(type(module).__name__))
    model(np.zeros((2, 1, 5, 5), np.float32))
    assert seen == ["FoldedConv2d", "BatchNormReLU", "Identity", "Flatten"]
