"""The zoo's own blocks (residual blocks with option-A/B shortcuts, dense layers, Inception modules,
GoogLeNet's auxiliary heads) against float64 finite differences, in training mode."""
import numpy as np
import pytest

from juanji import models, nn
from juanji import random as jrandom
from juanji.runtime import kernels
from juanji.models.densenet import dense_block, transition
from juanji.models.googlenet import InceptionModule
from juanji.models.resnet import BasicBlock, Bottleneck, PadShortcut, resnet
from finite_difference import check_gradients, check_layer


def simple(model, shape, seed=1):
    check_layer(model.to(np.float64), np.random.default_rng(seed).standard_normal(shape), seed=seed)


def maybe_fused(model, fused: bool):
    return nn.fuse(model) if fused else model


@pytest.mark.usefixtures("kernels")     # compiled: Winograd, and (fused) batch norms with the ReLUs and sums after them
@pytest.mark.parametrize("fused", [False, True], ids=["unfused", "fused"])
@pytest.mark.parametrize("block, shortcut", [(BasicBlock, "A"), (BasicBlock, "B"), (Bottleneck, "B")])
def test_resnet_blocks(block, shortcut, fused):
    jrandom.seed(0)
    model = resnet(block, (1, 2), (4, 8), num_classes=3, in_channels=2, input_size=8, shortcut=shortcut)
    simple(maybe_fused(model, fused), (2, 2, 8, 8))


@pytest.mark.usefixtures("numba_kernels")
def test_resnet20_fused_runs_every_relu_in_a_batch_norm_and_agrees_with_numpys_kernels(monkeypatch):
    """After ``nn.fuse`` each of ResNet-20's 19 ReLUs runs inside the batch norm before it (the 9 at the
    blocks' ends with the shortcut's sum: ``BatchNormAddReLU``), on the compiled kernels' one sweep.  Output
    and gradients are those of the unfused model on NumPy's kernels (float64)."""
    jrandom.seed(0)
    model = models.create("resnet20", num_classes=10, in_channels=3, input_size=32).to(np.float64)
    twin = models.create("resnet20", num_classes=10, in_channels=3, input_size=32).to(np.float64)
    twin.load_state_dict(model.state_dict())
    fused = nn.fuse(model)
    kinds = [type(layer) for layer in fused.modules()]
    assert (kinds.count(nn.BatchNormReLU), kinds.count(nn.BatchNormAddReLU), kinds.count(nn.ReLU)) == (10, 9, 0)
    rng = np.random.default_rng(0)
    x, dy = rng.standard_normal((3, 3, 32, 32)), rng.standard_normal((3, 10))
    results = {}
    for backend, network in (("numba", fused), ("numpy", twin)):
        monkeypatch.setattr(kernels, "_chosen", backend)
        results[backend] = (network(x), network.backward(dy), *(grad.copy() for _, _, grad in network.parameters()))
    for got, want in zip(results["numba"], results["numpy"]):
        np.testing.assert_allclose(got, want, rtol=0, atol=1e-10 * max(1, np.abs(want).max()))


def test_pad_shortcut_subsamples_and_appends_zero_channels():
    x = np.arange(2 * 3 * 5 * 5, dtype=np.float64).reshape(2, 3, 5, 5)
    layer = PadShortcut(2, 4)
    y = layer(x)
    assert y.shape == (2, 7, 3, 3) and not y[:, 3:].any()
    np.testing.assert_array_equal(y[:, :3], x[:, :, ::2, ::2])
    simple(layer, (2, 3, 5, 5))


@pytest.mark.usefixtures("kernels")     # compiled, fused: the batch norm + ReLU pairs in one sweep
@pytest.mark.parametrize("fused", [False, True], ids=["unfused", "fused"])
def test_dense_block_and_transition(fused):
    jrandom.seed(0)
    model = maybe_fused(nn.Sequential(dense_block(3, 4, growth_rate=2, bn_size=2), transition(10, 5)), fused)
    assert model(np.zeros((2, 4, 6, 6), np.float32)).shape == (2, 5, 3, 3)
    simple(model, (2, 4, 6, 6))


@pytest.mark.usefixtures("kernels")     # compiled, fused: the batch norm + ReLU pairs in one sweep
@pytest.mark.parametrize("fused", [False, True], ids=["unfused", "fused"])
def test_inception_module(fused):
    jrandom.seed(0)
    module = maybe_fused(InceptionModule(3, 2, 2, 3, 1, 2, 2), fused)
    assert module(np.zeros((2, 3, 5, 5), np.float32)).shape == (2, 9, 5, 5)
    assert [name for name, _ in module.named_children()] == ["branch1", "branch2", "branch3", "branch4"]
    simple(module, (2, 3, 5, 5))


def test_googlenet_auxiliary_heads():
    jrandom.seed(0)
    model = models.create("googlenet", num_classes=3, in_channels=1, input_size=16, aux_logits=True)
    for module in model.modules():
        if isinstance(module, nn.Dropout):
            module.p = 0.0                            # deterministic: finite differences need it
    model.to(np.float64)
    x = np.random.default_rng(3).standard_normal((2, 1, 16, 16))
    logits = model(x)
    assert logits.shape == (2, 3) and [a.shape for a in model.aux_outputs] == [(2, 3), (2, 3)]
    rng = np.random.default_rng(4)
    cotangents = [rng.standard_normal((2, 3)) for _ in range(3)]

    def outputs(x):
        return [model(x), *model.aux_outputs]

    check_gradients(model, x, outputs, cotangents,
                    lambda: model.backward(cotangents[0], aux_grads=cotangents[1:]), samples=2,
                    params=["conv1.conv.weight", "inception4a.branch3.1.bn.weight", "aux1.conv.conv.weight",
                            "aux1.fc2.bias", "aux2.fc1.weight", "inception4e.branch1.conv.weight"])
    model.eval()
    model(x)
    assert model.aux_outputs == ()
