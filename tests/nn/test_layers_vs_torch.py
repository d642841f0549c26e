"""Every layer against its torch.nn twin: forward, dx and every parameter gradient (and BatchNorm's running
statistics), in float64 (≤ 1e-10 of scale) and float32 (≤ 1e-4 of scale, and float32 all the way through)."""
import numpy as np
import pytest
import torch

import juanji
from juanji import nn
from layer_check import DTYPES, assert_close, compare_with_torch, randomise_state

# Every test runs on NumPy's and on the compiled kernels (``kernels``), serially and with the batch split
# over two threads (``batch_threads``); the batch3 cases split unevenly (1 + 2 samples).
pytestmark = [pytest.mark.filterwarnings("ignore:Using padding=.same. with even kernel:UserWarning"),
              pytest.mark.usefixtures("kernels", "batch_threads")]


def make_input(shape, dtype, seed=1):
    return np.random.default_rng(seed).standard_normal(shape).astype(dtype)


def check(layer_cls, torch_cls, args, kwargs, shape, dtype, steps=1, train=True, dtype_kwarg=True):
    """Build both layers from the same arguments (juanji's with ``dtype=``), randomise juanji's state, and
    compare."""
    layer = layer_cls(*args, **kwargs, **({"dtype": dtype} if dtype_kwarg else {}))
    randomise_state(layer)
    layer.train(train)
    return compare_with_torch(layer, torch_cls(*args, **kwargs), make_input(shape, dtype), steps=steps)


# (N, C, H, W), (K, kernel), keyword arguments
CONV2D_CASES = [
    pytest.param((1, 3, 7, 7), (4, 3), dict(padding=1), id="batch1"),
    pytest.param((3, 3, 7, 7), (4, 3), dict(padding=1), id="batch3-uneven-split"),
    pytest.param((3, 4, 7, 7), (8, 3), dict(stride=2, padding=1, groups=2), id="batch3-groups2-stride2"),
    pytest.param((2, 3, 9, 11), (5, 3), dict(), id="odd-sizes"),
    pytest.param((2, 3, 8, 8), (4, 3), dict(stride=2, padding=1), id="stride2-remainder"),
    pytest.param((2, 2, 9, 10), (3, 3), dict(stride=3, padding=1), id="stride3-remainder"),
    pytest.param((2, 3, 9, 9), (4, 3), dict(padding=2, dilation=2), id="dilation2"),
    pytest.param((2, 4, 7, 7), (6, 3), dict(padding=1, groups=2), id="groups2"),
    pytest.param((2, 4, 7, 7), (4, 3), dict(padding=1, groups=4), id="depthwise"),
    pytest.param((2, 4, 6, 6), (8, 3), dict(stride=2, groups=4), id="depthwise-multiplier2"),
    pytest.param((2, 5, 6, 7), (3, 1), dict(), id="1x1"),
    pytest.param((2, 2, 5, 6), (3, (7, 8)), dict(padding=1), id="kernel-as-large-as-padded-input"),
    pytest.param((2, 3, 7, 6), (4, 4), dict(padding="same"), id="same-even-kernel"),
    pytest.param((2, 3, 9, 8), (4, (4, 2)), dict(padding="same", dilation=(2, 3)), id="same-even-kernel-dilation"),
    pytest.param((2, 3, 8, 7), (4, 3), dict(padding="valid"), id="valid"),
    pytest.param((2, 3, 9, 10), (4, (3, 5)), dict(stride=(2, 1), padding=(1, 2)), id="asymmetric"),
    pytest.param((2, 3, 7, 7), (4, 3), dict(padding=1, bias=False), id="no-bias"),
]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape, args, kwargs", CONV2D_CASES)
def test_conv2d(shape, args, kwargs, dtype):
    check(nn.Conv2d, torch.nn.Conv2d, (shape[1], *args), kwargs, shape, dtype)


CONV1D_CASES = [
    pytest.param((1, 3, 9), (4, 3), dict(padding=1), id="batch1"),
    pytest.param((3, 3, 9), (4, 3), dict(padding=1), id="batch3-uneven-split"),
    pytest.param((2, 3, 10), (4, 3), dict(stride=2, padding=1), id="stride2-remainder"),
    pytest.param((2, 3, 11), (4, 3), dict(stride=3), id="stride3-remainder"),
    pytest.param((2, 3, 11), (4, 3), dict(dilation=2, padding=2), id="dilation2"),
    pytest.param((2, 4, 9), (6, 3), dict(groups=2, padding=1), id="groups2"),
    pytest.param((2, 4, 9), (4, 5), dict(groups=4, padding=2), id="depthwise"),
    pytest.param((2, 3, 8), (5, 4), dict(padding="same"), id="same-even-kernel"),
    pytest.param((2, 3, 9), (5, 4), dict(padding="same", dilation=3), id="same-even-kernel-dilation3"),
    pytest.param((2, 3, 8), (5, 3), dict(padding="valid"), id="valid"),
    pytest.param((2, 3, 6), (2, 8), dict(padding=1), id="kernel-as-large-as-padded-input"),
    pytest.param((2, 3, 7), (4, 1), dict(bias=False), id="1x1-no-bias"),
]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape, args, kwargs", CONV1D_CASES)
def test_conv1d(shape, args, kwargs, dtype):
    check(nn.Conv1d, torch.nn.Conv1d, (shape[1], *args), kwargs, shape, dtype)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape, out, bias", [((1, 5), 3, True), ((7, 4), 6, True), ((3, 8), 2, False)])
def test_linear(shape, out, bias, dtype):
    check(nn.Linear, torch.nn.Linear, (shape[1], out), dict(bias=bias), shape, dtype)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape, kwargs", [
    ((2, 3, 4, 5), dict()), ((2, 3, 4, 5), dict(start_dim=2)), ((2, 3, 4, 5), dict(start_dim=1, end_dim=2)),
    ((1, 6), dict())])
def test_flatten(shape, kwargs, dtype):
    check(nn.Flatten, torch.nn.Flatten, (), kwargs, shape, dtype, dtype_kwarg=False)


ACTIVATIONS = [
    pytest.param(nn.ReLU, torch.nn.ReLU, (), id="ReLU"),
    pytest.param(nn.LeakyReLU, torch.nn.LeakyReLU, (), id="LeakyReLU"),
    pytest.param(nn.LeakyReLU, torch.nn.LeakyReLU, (0.2,), id="LeakyReLU-0.2"),
    pytest.param(nn.Sigmoid, torch.nn.Sigmoid, (), id="Sigmoid"),
    pytest.param(nn.Tanh, torch.nn.Tanh, (), id="Tanh"),
    pytest.param(nn.Softmax, torch.nn.Softmax, (1,), id="Softmax-dim1"),
    pytest.param(nn.Softmax, torch.nn.Softmax, (-1,), id="Softmax-dim-1"),
    pytest.param(nn.Identity, torch.nn.Identity, (), id="Identity"),
]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", [(4, 6), (2, 3, 4, 5), (3, 2, 3, 4)])
@pytest.mark.parametrize("layer_cls, torch_cls, args", ACTIVATIONS)
def test_activation(layer_cls, torch_cls, args, shape, dtype):
    check(layer_cls, torch_cls, args, {}, shape, dtype, dtype_kwarg=False)


POOL_CASES = [
    pytest.param((2, 3, 8, 8), dict(kernel_size=2), id="2x2"),
    pytest.param((3, 2, 7, 7), dict(kernel_size=3, stride=2, padding=1), id="batch3-uneven-split"),
    pytest.param((1, 2, 7, 9), dict(kernel_size=2, stride=2), id="batch1-odd-sizes"),
    pytest.param((2, 3, 9, 9), dict(kernel_size=3, stride=2), id="overlapping-3x3-stride2"),
    pytest.param((2, 2, 8, 8), dict(kernel_size=3, stride=2, padding=1), id="padding"),
    pytest.param((2, 2, 10, 10), dict(kernel_size=3, stride=3), id="stride3-remainder"),
    pytest.param((2, 2, 8, 9), dict(kernel_size=3, stride=2, ceil_mode=True), id="ceil-mode"),
    pytest.param((2, 2, 8, 7), dict(kernel_size=3, stride=2, padding=1, ceil_mode=True), id="ceil-mode-padding"),
    pytest.param((2, 2, 6, 7), dict(kernel_size=(2, 3), stride=(1, 2), padding=(1, 1)), id="asymmetric"),
    pytest.param((2, 2, 5, 5), dict(kernel_size=5), id="kernel-as-large-as-input"),
]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape, kwargs", POOL_CASES + [
    pytest.param((2, 2, 9, 9), dict(kernel_size=3, stride=1, dilation=2), id="dilation2"),
    pytest.param((2, 2, 9, 10), dict(kernel_size=3, stride=2, padding=1, dilation=(2, 3)), id="dilation-padding"),
    pytest.param((2, 2, 9, 8), dict(kernel_size=2, stride=2, dilation=2, ceil_mode=True), id="dilation-ceil")])
def test_max_pool2d(shape, kwargs, dtype):
    check(nn.MaxPool2d, torch.nn.MaxPool2d, (), kwargs, shape, dtype, dtype_kwarg=False)


@pytest.mark.parametrize("count_include_pad", [True, False])
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape, kwargs", POOL_CASES)
def test_avg_pool2d(shape, kwargs, dtype, count_include_pad):
    check(nn.AvgPool2d, torch.nn.AvgPool2d, (), dict(kwargs, count_include_pad=count_include_pad), shape,
          dtype, dtype_kwarg=False)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape, output_size", [
    ((2, 3, 7, 7), 3), ((2, 3, 5, 5), 2), ((2, 3, 7, 5), (3, 2)), ((2, 3, 6, 6), (1, 1)), ((1, 2, 5, 7), 1),
    ((2, 2, 3, 4), (5, 6))])
def test_adaptive_avg_pool2d(shape, output_size, dtype):
    check(nn.AdaptiveAvgPool2d, torch.nn.AdaptiveAvgPool2d, (output_size,), {}, shape, dtype, dtype_kwarg=False)


class TorchGlobalAvgPool2d(torch.nn.Module):
    def forward(self, x):
        return x.mean(dim=(2, 3))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", [(2, 3, 5, 7), (1, 4, 1, 1), (3, 2, 4, 4)])
def test_global_avg_pool2d(shape, dtype):
    y = check(nn.GlobalAvgPool2d, TorchGlobalAvgPool2d, (), {}, shape, dtype, dtype_kwarg=False)
    assert y.shape == shape[:2]


BATCH_NORMS = [
    pytest.param(nn.BatchNorm1d, torch.nn.BatchNorm1d, (8, 3), id="BatchNorm1d-NC"),
    pytest.param(nn.BatchNorm1d, torch.nn.BatchNorm1d, (4, 3, 5), id="BatchNorm1d-NCL"),
    pytest.param(nn.BatchNorm2d, torch.nn.BatchNorm2d, (2, 3, 4, 5), id="BatchNorm2d"),
    pytest.param(nn.BatchNorm2d, torch.nn.BatchNorm2d, (1, 3, 3, 3), id="BatchNorm2d-batch1"),
    pytest.param(nn.BatchNorm2d, torch.nn.BatchNorm2d, (3, 2, 4, 3), id="BatchNorm2d-batch3-uneven-split"),
]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("kwargs", [dict(), dict(momentum=0.3, eps=1e-3), dict(affine=False)])
@pytest.mark.parametrize("layer_cls, torch_cls, shape", BATCH_NORMS)
def test_batch_norm_training_several_steps(layer_cls, torch_cls, shape, kwargs, dtype):
    """Four training steps on inputs of changing mean and scale: outputs, gradients and the running
    statistics after every step (running_var uses the unbiased batch variance, as torch)."""
    check(layer_cls, torch_cls, (shape[1],), kwargs, shape, dtype, steps=4)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("kwargs", [dict(), dict(affine=False)])
@pytest.mark.parametrize("layer_cls, torch_cls, shape", BATCH_NORMS)
def test_batch_norm_eval(layer_cls, torch_cls, shape, kwargs, dtype):
    check(layer_cls, torch_cls, (shape[1],), kwargs, shape, dtype, steps=2, train=False)


# -- CrossEntropyLoss -------------------------------------------------------------------------------

@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("smoothing", [0.0, 0.1, 0.7])
@pytest.mark.parametrize("n, c", [(1, 3), (8, 5), (5, 10)])
def test_cross_entropy_loss(n, c, smoothing, dtype):
    rng = np.random.default_rng(n * c)
    logits = (rng.standard_normal((n, c)) * 3).astype(dtype)
    labels = rng.integers(0, c, n)
    criterion = nn.CrossEntropyLoss(label_smoothing=smoothing).retain_cache()     # two backward passes
    loss = criterion(logits, labels)
    dlogits = criterion.backward()
    logits_t = torch.from_numpy(logits.copy()).requires_grad_(True)
    loss_t = torch.nn.CrossEntropyLoss(label_smoothing=smoothing)(logits_t, torch.from_numpy(labels))
    loss_t.backward()
    assert loss.dtype == dlogits.dtype == dtype
    assert_close(loss, loss_t, "loss")
    assert_close(dlogits, logits_t.grad, "dlogits")
    scaled = criterion.backward(2.5)
    assert scaled.dtype == dtype
    assert_close(scaled, 2.5 * logits_t.grad, "2.5 · dlogits")


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("smoothing", [0.0, 0.1])
def test_cross_entropy_loss_large_logits(smoothing, dtype):
    logits = np.array([[1e4, -1e4, 0.0, 5.0], [-1e4, 1e4, 1e4, 0.0], [0.0, 0.0, 0.0, 1e4]], dtype=dtype)
    labels = np.array([0, 2, 1])
    criterion = nn.CrossEntropyLoss(label_smoothing=smoothing)
    with np.errstate(over="raise", divide="raise", invalid="raise"):      # underflow to 0 is fine
        loss = criterion(logits, labels)
        dlogits = criterion.backward()
    logits_t = torch.from_numpy(logits.copy()).requires_grad_(True)
    loss_t = torch.nn.functional.cross_entropy(logits_t, torch.from_numpy(labels), label_smoothing=smoothing)
    loss_t.backward()
    assert not np.isnan(loss) and np.isfinite(dlogits).all()
    assert_close(loss, loss_t, "loss")
    assert_close(dlogits, logits_t.grad, "dlogits")


# -- Dropout ------------------------------------------------------------------------------------------

@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("p", [0.2, 0.5, 0.9])
def test_dropout_training_matches_torch_with_the_same_mask(p, dtype):
    """torch draws its own mask, so juanji's mask (the zeros of y) is applied to torch's formula
    y = x · m / (1 − p); forward and backward must agree with it exactly."""
    juanji.random.seed(0)
    layer = nn.Dropout(p)
    x = make_input((4, 3, 5, 5), dtype)
    y = layer(x)
    dy = make_input(y.shape, dtype, seed=2)
    dx = layer.backward(dy)
    mask = torch.from_numpy((y != 0).astype(dtype))
    x_t = torch.from_numpy(x.copy()).requires_grad_(True)
    y_t = x_t * mask / (1 - p)
    y_t.backward(torch.from_numpy(dy))
    assert y.dtype == dx.dtype == dtype
    assert_close(y, y_t, "y")
    assert_close(dx, x_t.grad, "dx")
    np.testing.assert_array_equal(dx != 0, y != 0)      # the same mask forward and backward


@pytest.mark.parametrize("p", [0.1, 0.5, 0.8])
def test_dropout_mask_statistics(p):
    """Keep rate 1 − p (within 5 standard errors over 2·10⁵ draws), kept values scaled by exactly
    1/(1 − p), so E[y] = x; masks are independent across calls and reproducible from the seed."""
    juanji.random.seed(123)
    layer = nn.Dropout(p)
    x = np.ones((200, 1000), dtype=np.float64)
    y = layer(x)
    kept = y != 0
    n = x.size
    assert abs(kept.mean() - (1 - p)) < 5 * np.sqrt(p * (1 - p) / n)
    np.testing.assert_allclose(y[kept], 1 / (1 - p), rtol=1e-15)
    assert abs(y.mean() - 1) < 5 * np.sqrt(p / (1 - p) / n)
    second = layer(x) != 0
    assert abs((kept & second).mean() - (1 - p) ** 2) < 5 * np.sqrt(n) / n
    juanji.random.seed(123)
    np.testing.assert_array_equal(nn.Dropout(p)(x), y)


@pytest.mark.parametrize("dtype", DTYPES)
def test_dropout_eval_and_p0_are_the_identity(dtype):
    x = make_input((3, 4), dtype)
    layer = nn.Dropout(0.5).eval()
    np.testing.assert_array_equal(layer(x), x)
    np.testing.assert_array_equal(layer.backward(2 * x), 2 * x)
    train_p0 = nn.Dropout(0.0)
    np.testing.assert_array_equal(train_p0(x), x)
    np.testing.assert_array_equal(train_p0.backward(x), x)
    torch_eval = torch.nn.Dropout(0.5).eval()(torch.from_numpy(x))
    np.testing.assert_array_equal(layer(x), torch_eval.numpy())


def test_dropout_own_rng_is_independent_of_the_global_one():
    x = np.ones((50, 50))
    a = nn.Dropout(0.5, rng=np.random.default_rng(7))(x)
    juanji.random.seed(999)
    b = nn.Dropout(0.5, rng=np.random.default_rng(7))(x)
    np.testing.assert_array_equal(a, b)


def test_padded_1x1_columns_survive_another_layers_forward():
    """A padded 1×1 convolution keeps its padded input as its columns: another conv's forward before
    its backward must not overwrite them (they live in the layer's own memory, not in scratch)."""
    rng = np.random.default_rng(3)
    first, second = nn.Conv2d(4, 4, 1, padding=1), nn.Conv2d(4, 4, 1, padding=1)
    x, other = rng.standard_normal((2, 2, 4, 5, 5), dtype=np.float32)
    y = first(x)
    second(other)
    dy = rng.standard_normal(y.shape, dtype=np.float32)
    first.backward(dy)
    reference = torch.nn.Conv2d(4, 4, 1, padding=1)
    with torch.no_grad():
        reference.weight.copy_(torch.from_numpy(first.params["weight"]))
        reference.bias.copy_(torch.from_numpy(first.params["bias"]))
    reference(torch.from_numpy(x)).backward(torch.from_numpy(dy))
    assert_close(first.grads["weight"], reference.weight.grad.numpy(), np.float32)
