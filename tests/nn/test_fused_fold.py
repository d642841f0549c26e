"""nn.fuse's folding: a Conv2d and the batch norm after it as one convolution in inference (eval under no_grad),
y = (s·W) ⋆ x + s·b, then the batch norm's shift and the activation after it in place on y; everywhere else the
two layers as they were. Against torch's eval and the unfused model (float64 ≤ 1e-10, float32 to its rounding)
over random conv geometry on both kernel sets; the zoo folded; the switch between train and eval, hooks and
checkpoints unchanged by it."""
import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from juanji import checkpoint, distributed, models, nn, optim
from juanji import random as jrandom
from juanji.models.resnet import Bottleneck, resnet
from juanji.functional.plan import Plans, plan_conv
from juanji.nn.fused import FoldedConv2d, FusedBatchNorm
from juanji.runtime import kernels as backend
from layer_check import randomise_state
from closeness import assert_close

ACTIVATIONS = {"none": (None, None), "ReLU": (nn.ReLU, torch.nn.ReLU), "ReLU6": (nn.ReLU6, torch.nn.ReLU6)}
# (name, channels, size, convs folded): every Conv2d right before a BatchNorm2d; "bottlenecks" is a small ResNet of
# Bottleneck blocks whose shortcuts are 1×1 convs + BN (option B)
ZOO = [("resnet20", 3, 8, 19), ("bottlenecks", 2, 8, 12), ("mobilenet_v1", 3, 8, 27), ("mobilenet_v2", 3, 8, 52),
       ("mobilenet_v3_small", 3, 8, 34), ("densenet_bc_40", 3, 8, 19), ("vgg_small", 1, 8, 6),
       ("unet", 1, 16, 10)]


def create(name, channels, size):
    if name == "bottlenecks":
        return resnet(Bottleneck, (1, 2), (4, 8), num_classes=5, in_channels=channels, input_size=size, shortcut="B")
    return models.create(name, num_classes=5, in_channels=channels, input_size=size)


def relative_tolerance(dtype):
    return 1e-10 if dtype == np.float64 else 1e-5


def assert_near(got, want, dtype):
    """Equal to the dtype's rounding, relative to the output's scale (folding rounds s·W, not W then s)."""
    assert got.dtype == want.dtype == dtype
    np.testing.assert_allclose(got, want, rtol=0, atol=relative_tolerance(dtype) * max(1.0, float(np.abs(want).max())))


def twins(name, channels, size, dtype):
    """The zoo model twice, with random parameters and statistics, the second fused."""
    jrandom.seed(0)
    model = create(name, channels, size).to(dtype)
    randomise_state(model)
    other = create(name, channels, size).to(dtype)
    other.load_state_dict(model.state_dict())
    return model, nn.fuse(other)


def inference(model, x):
    model.eval()
    with nn.no_grad():
        return model(x)


@pytest.mark.usefixtures("kernels")
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("name, channels, size, folded", ZOO, ids=[z[0] for z in ZOO])
def test_a_folded_zoo_model_infers_what_the_unfused_one_does(name, channels, size, folded, dtype):
    model, fused = twins(name, channels, size, dtype)
    assert sum(type(layer) is FoldedConv2d for layer in fused.modules()) == folded
    assert list(fused.state_dict()) == list(model.state_dict())
    x = np.random.default_rng(0).standard_normal((2, channels, size, size)).astype(dtype)
    assert_near(inference(fused, x), inference(model, x), dtype)


@pytest.mark.usefixtures("kernels", "batch_threads")
@settings(max_examples=12, deadline=None)
@given(n=st.integers(1, 3), c=st.integers(1, 4), k=st.integers(1, 4), size=st.integers(3, 7),
       kernel=st.sampled_from([1, 2, 3]), stride=st.integers(1, 2), padding=st.integers(0, 1),
       dilation=st.integers(1, 2), depthwise=st.booleans(), bias=st.booleans(),
       activation=st.sampled_from(list(ACTIVATIONS)), seed=st.integers(0, 2**16))
def test_a_folded_conv_and_batch_norm_infer_what_torch_does(n, c, k, size, kernel, stride, padding, dilation,
                                                            depthwise, bias, activation, seed):
    """conv → BN (→ ReLU or ReLU6) of any geometry, grouped (depthwise, K = 2C) or not, with or without a conv
    bias, in float64 and float32: torch's eval, and the unfused layers'."""
    if dilation * (kernel - 1) >= size + 2 * padding:
        return
    k, groups = (2 * c, c) if depthwise else (k, 1)
    ours, theirs = ACTIVATIONS[activation]
    rng = np.random.default_rng(seed)
    for dtype, torch_dtype in ((np.float64, torch.float64), (np.float32, torch.float32)):
        layers = [nn.Conv2d(c, k, kernel, stride, padding, dilation, groups, bias, dtype=dtype, rng=rng),
                  nn.BatchNorm2d(k, dtype=dtype)] + ([ours()] if ours else [])
        plain = nn.Sequential(*layers)
        randomise_state(plain, seed)
        twin = torch.nn.Sequential(torch.nn.Conv2d(c, k, kernel, stride, padding, dilation, groups, bias),
                                   torch.nn.BatchNorm2d(k), *([theirs()] if theirs else [])).to(torch_dtype).eval()
        twin.load_state_dict({key: torch.from_numpy(value) for key, value in plain.state_dict().items()})
        x = (rng.standard_normal((n, c, size, size)) * 2).astype(dtype)
        want = inference(plain, x)
        fused = nn.fuse(plain)
        assert type(fused[0]) is FoldedConv2d
        got = inference(fused, x)
        assert_near(got, want, dtype)
        with torch.no_grad():
            assert_close(got, twin(torch.from_numpy(x)), "folded vs torch's eval")


def conv_bn_relu(dtype=np.float64):
    jrandom.seed(1)
    model = nn.Sequential(nn.Conv2d(2, 3, 3, padding=1), nn.BatchNorm2d(3), nn.ReLU(), nn.Conv2d(3, 4, 1),
                          nn.BatchNorm2d(4), nn.Flatten(), nn.Linear(4 * 25, 2)).to(dtype)
    randomise_state(model)
    return model


def test_in_inference_the_conv_convolves_with_the_scaled_weights_and_the_batch_norm_works_in_place():
    model = conv_bn_relu()
    plain = conv_bn_relu()
    fused = nn.fuse(model).eval()
    x = np.random.default_rng(0).standard_normal((2, 2, 5, 5))
    gamma, beta, mean, var = (model[1].params["weight"], model[1].params["bias"], model[1].buffers["running_mean"],
                              model[1].buffers["running_var"])
    scale = (gamma / np.sqrt(var + 1e-5)).reshape(-1, 1, 1, 1)
    with nn.no_grad():
        y = fused[0](x)
        plain[0].params["weight"] *= scale
        plain[0].params["bias"] *= scale.ravel()
        np.testing.assert_allclose(y, plain[0](x), rtol=1e-14, atol=1e-14)       # (s·W) ⋆ x + s·b
        shifted = y + (beta - mean * scale.ravel()).reshape(1, -1, 1, 1)
        z = fused[1](y)
        assert z is y                                                            # shifted and clamped in place
        np.testing.assert_array_equal(z, np.maximum(shifted, 0))
        assert fused[1].folds() and fused[4].folds() and fused[1].conv is fused[0]
        fused.train()
        assert not fused[1].folds()
        fused.eval()
        handle = fused[0].register_forward_hook(lambda *args: None)
        assert not fused[1].folds() and fused[4].folds()
        handle.remove()
        handle = fused[1].register_forward_pre_hook(lambda *args: None)
        assert not fused[1].folds()
        handle.remove()
        fused[0].register_full_backward_hook(lambda *args: None)      # as data parallelism's: no part in inference
        assert fused[1].folds()
    assert not fused[1].folds()                                                  # grad enabled: a backward may follow


@pytest.mark.usefixtures("kernels")
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_training_and_inference_alternate_as_unfused(dtype, kernels):
    """Train steps (bit for bit on NumPy's kernels), inference (folding the weights the last step left), eval with
    grad enabled (unfolded: exact again) and training again, on ResNet-20 whose blocks' ends fold too."""
    model, fused = twins("resnet20", 3, 8, dtype)
    optimizers = [optim.SGD(m.parameters(), lr=0.1, momentum=0.9) for m in (model, fused)]
    rng = np.random.default_rng(0)
    exact = kernels == "numpy"
    for phase in range(2):
        model.train(), fused.train()
        x, dy = rng.standard_normal((4, 3, 8, 8)).astype(dtype), rng.standard_normal((4, 5)).astype(dtype)
        y, y_fused = model(x), fused(x)
        dx, dx_fused = model.backward(dy), fused.backward(dy)
        for optimizer in optimizers:
            optimizer.step()
        for got, want in ((y_fused, y), (dx_fused, dx), *zip(fused.state_dict().values(), model.state_dict().values())):
            if exact:
                np.testing.assert_array_equal(got, want)
            else:
                assert_near(got, want, got.dtype) if got.dtype.kind == "f" else np.testing.assert_array_equal(got, want)
        assert_near(inference(fused, x), inference(model, x), dtype)
        y, y_fused = model(x), fused(x)                  # eval, grad enabled
        (np.testing.assert_array_equal if exact else lambda a, b: assert_near(a, b, dtype))(y_fused, y)
        assert_near(fused.backward(dy), model.backward(dy), dtype)


class CountingPlans(Plans):
    """``Plans`` that record each plan they make: (input shape, kernel set, plan)."""

    def __init__(self):
        super().__init__()
        self.made = []

    def get(self, shape, make):
        def recorded():
            chosen = make()
            self.made.append((shape, backend.get_kernels(), chosen))
            return chosen
        return super().get(shape, recorded)


def test_a_folded_conv_makes_the_convs_plan_once_per_input_shape_and_kernel_set(numba_kernels):
    """Inference on two batch shapes and both kernel sets, each asked twice: one plan made per shape and kernel
    set, the very plan the unfused Conv2d keeps for that call (the direct loops on the compiled kernels, NumPy's
    otherwise), and the folded output the unfused one's all along."""
    plain, fused = conv_bn_relu(), nn.fuse(conv_bn_relu())
    folded = fused[0]
    folded._plans = CountingPlans()
    rng = np.random.default_rng(2)
    small, large = rng.standard_normal((2, 2, 5, 5)), rng.standard_normal((3, 2, 5, 5))
    calls = [("numba", small), ("numba", small), ("numba", large), ("numpy", small), ("numpy", small),
             ("numpy", large), ("numba", large), ("numpy", small)]
    for kernel_set, x in calls:
        backend.set_kernels(kernel_set)
        assert_near(inference(fused, x), inference(plain, x), np.float64)
    made = folded._plans.made
    assert [(shape, kernel_set) for shape, kernel_set, _ in made] == [
        (small.shape, "numba"), (large.shape, "numba"), (small.shape, "numpy"), (large.shape, "numpy")]
    for shape, kernel_set, chosen in made:
        assert chosen == plain[0]._plans._made[(shape, kernel_set)]
        backend.set_kernels(kernel_set)
        assert chosen == plan_conv(shape, (3, 2, 3, 3), (1, 1), ((1, 1), (1, 1)), (1, 1), 1)
        assert (chosen.forward == "direct") == (kernel_set == "numba")


def test_hooks_see_each_layers_own_output_in_inference_too():
    """A hook on a conv or its batch norm sees what it sees unfused (the pair then runs unfolded), but for what the
    fusion of the batch norm and its ReLU changes: the BatchNormReLU's output is the ReLU's."""
    model = conv_bn_relu()
    fused = nn.fuse(conv_bn_relu())
    x = np.random.default_rng(0).standard_normal((2, 2, 5, 5))
    seen = {}
    for label, network in (("plain", model), ("fused", fused)):
        for index, layer in enumerate(network):
            layer.register_forward_hook(lambda module, args, output, key=(label, index):
                                        seen.__setitem__(key, (args[0].copy(), output.copy())))
        inference(network, x)
    assert [type(layer).__name__ for layer in fused][:5] == ["FoldedConv2d", "BatchNormReLU", "Identity",
                                                            "FoldedConv2d", "FusedBatchNorm"]
    for index in range(len(model)):
        (x_fused, y_fused), (x_plain, y_plain) = seen["fused", index], seen["plain", index]
        # the pair's own difference: the batch norm's output is the ReLU's, which the Identity gets
        np.testing.assert_array_equal(x_fused, x_plain if index != 2 else y_plain)
        np.testing.assert_array_equal(y_fused, y_plain if index != 1 else np.maximum(y_plain, 0))


def test_a_checkpoint_of_a_fused_model_loads_into_an_unfused_one_and_back(tmp_path):
    jrandom.seed(0)
    fused = nn.fuse(models.create("mobilenet_v2", num_classes=4, in_channels=3, input_size=8))
    x = np.random.default_rng(0).standard_normal((2, 3, 8, 8)).astype(np.float32)
    fused.backward(np.ones_like(fused(x)))             # a training step's running statistics
    checkpoint.save(tmp_path / "fused.npz", fused)
    plain = models.create("mobilenet_v2", num_classes=4, in_channels=3, input_size=8)
    plain.load_state_dict(checkpoint.load(tmp_path / "fused.npz", plain).model_state)
    again = nn.fuse(models.create("mobilenet_v2", num_classes=4, in_channels=3, input_size=8))
    checkpoint.save(tmp_path / "plain.npz", plain)
    again.load_state_dict(checkpoint.load(tmp_path / "plain.npz", again).model_state)
    for name, value in fused.state_dict().items():
        np.testing.assert_array_equal(plain.state_dict()[name], value)
        np.testing.assert_array_equal(again.state_dict()[name], value)
    assert_near(inference(again, x), inference(plain, x), np.float32)


def test_a_folded_batch_norm_cannot_be_synchronised():
    class OneProcess:
        size = 1
    fused = nn.fuse(nn.Sequential(nn.Conv2d(1, 2, 3), nn.BatchNorm2d(2)))
    assert isinstance(fused[1], FusedBatchNorm)
    with pytest.raises(ValueError, match="FusedBatchNorm is a fused layer; convert before nn.fuse"):
        distributed.convert_sync_batchnorm(fused, OneProcess())
