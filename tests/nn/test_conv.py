"""Conv1d and Conv2d against torch.nn with every constructor argument drawn at random (padding_mode, 'same' and
'valid', groups, dilation, bias, device, dtype), called positionally in torch's order or by keyword, on batched,
unbatched and non-contiguous inputs, in float64 and float32; a finite-difference check per padding mode; bad
arguments refused at construction, naming the layer and the argument."""
import numpy as np
import pytest
import torch

from finite_difference import check_layer
from juanji import nn
from layer_check import DTYPES, TORCH_DTYPE, compare_with_torch, randomise_state

MODES = ["zeros", "reflect", "replicate", "circular"]
NAMES = ["in_channels", "out_channels", "kernel_size", "stride", "padding", "dilation", "groups", "bias",
         "padding_mode", "device", "dtype"]

pytestmark = pytest.mark.filterwarnings("ignore:Using padding=.same. with even kernel:UserWarning")


def draw(rng, dims, dtype):
    """(torch's arguments in order, x's shape): every argument drawn; the input large enough for the kernel
    and for the padding mode (reflect: each side less than the size; circular: at most the size)."""
    groups = int(rng.choice([1, 1, 2, 3]))
    c, k = groups * int(rng.integers(1, 3)), groups * int(rng.integers(1, 3))

    def per_axis(low, high):
        values = tuple(int(v) for v in rng.integers(low, high + 1, dims))
        return values[0] if (dims == 1 or len(set(values)) == 1) and rng.random() < 0.5 else values

    kernel, dilation = per_axis(1, 4), per_axis(1, 3)
    stride = 1 if rng.random() < 0.4 else per_axis(1, 3)
    each = [(v,) * dims if isinstance(v, int) else v for v in (kernel, stride, dilation)]
    reach = [d * (r - 1) + 1 for r, d in zip(each[0], each[2])]
    if all(s == 1 for s in each[1]) and rng.random() < 0.6:
        padding = str(rng.choice(["same", "valid"]))
    else:
        padding = per_axis(0, 3)
    if padding == "same":
        pads = [((t - 1) // 2, t - 1 - (t - 1) // 2) for t in reach]
    else:
        pads = [(p, p) for p in ((0,) * dims if padding == "valid" else
                                 (padding,) * dims if isinstance(padding, int) else padding)]
    mode = str(rng.choice(MODES))
    sizes = []
    for (before, after), span in zip(pads, reach):
        low = max(1, span - before - after, max(before, after) + (mode == "reflect"))
        sizes.append(low + int(rng.integers(0, 5)))
    args = [c, k, kernel, stride, padding, dilation, groups, bool(rng.random() < 0.7), mode,
            rng.choice([None, "cpu"]), TORCH_DTYPE[np.dtype(dtype)]]
    batch = () if rng.random() < 0.3 else (int(rng.integers(1, 4)),)
    return args, (*batch, c, *sizes)


def make_input(rng, shape, dtype):
    """Standard normal of ``shape``; half the time a transposed view (last two axes), not contiguous."""
    if rng.random() < 0.5 and len(shape) >= 2:
        swapped = (*shape[:-2], shape[-1], shape[-2])
        return rng.standard_normal(swapped).astype(dtype).swapaxes(-1, -2)
    return rng.standard_normal(shape).astype(dtype)


def build(layer_cls, torch_cls, args, positional):
    if positional:
        return layer_cls(*args), torch_cls(*args)
    kwargs = dict(zip(NAMES, args))
    return layer_cls(**kwargs), torch_cls(**kwargs)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("seed", range(30))
@pytest.mark.parametrize("layer_cls, torch_cls, dims", [(nn.Conv2d, torch.nn.Conv2d, 2),
                                                         (nn.Conv1d, torch.nn.Conv1d, 1)])
def test_random_arguments_match_torch(layer_cls, torch_cls, dims, seed, dtype):
    rng = np.random.default_rng(seed)
    args, shape = draw(rng, dims, dtype)
    layer, reference = build(layer_cls, torch_cls, args, positional=seed % 2 == 0)
    assert layer.dtype == dtype and repr(layer) == repr(reference)
    randomise_state(layer, seed)
    x = make_input(rng, shape, dtype)
    y = compare_with_torch(layer, reference, x, seed=seed)
    assert y.shape == layer.output_shape(x.shape)


@pytest.mark.parametrize("seed", range(6))
def test_padding_modes_on_the_compiled_kernels_too(kernels, seed):
    """The padded input goes through whichever kernels the plan picks (Winograd, depthwise rows, …)."""
    rng = np.random.default_rng(100 + seed)
    mode = MODES[seed % 4]
    groups = 3 if seed % 3 == 0 else 1
    args = [3, 3 * (1 + seed % 2), 3, 1 + seed % 2, 1 + seed % 2, 1, groups, True, mode]
    layer, reference = nn.Conv2d(*args, dtype=np.float64), torch.nn.Conv2d(*args)
    randomise_state(layer, seed)
    compare_with_torch(layer, reference, rng.standard_normal((2, 3, 7, 8)), steps=2, seed=seed)


@pytest.mark.parametrize("mode", MODES)
def test_finite_differences(mode):
    rng = np.random.default_rng(7)
    check_layer(nn.Conv2d(2, 3, (3, 2), stride=(1, 2), padding=(2, 1), dilation=(1, 2), padding_mode=mode,
                          dtype=np.float64), rng.standard_normal((2, 2, 5, 6)))
    check_layer(nn.Conv1d(2, 4, 3, padding="same", dilation=2, groups=2, padding_mode=mode, dtype=np.float64),
                rng.standard_normal((2, 5)))


def test_unbatched_input_gives_the_batch_of_one_without_its_axis():
    rng = np.random.default_rng(3)
    for layer, x in ((nn.Conv2d(3, 4, 3, padding=1, padding_mode="reflect"), rng.standard_normal((3, 6, 5))),
                     (nn.Conv1d(3, 4, 3, padding=2, padding_mode="circular"), rng.standard_normal((3, 7)))):
        layer.to(np.float64)
        dy = rng.standard_normal(layer.output_shape(x.shape))
        y, dx = layer(x), layer.backward(dy)
        grads = {k: g.copy() for k, g in layer.grads.items()}
        np.testing.assert_array_equal(y, layer(x[None])[0])
        np.testing.assert_array_equal(dx, layer.backward(dy[None])[0])
        for key, grad in grads.items():
            np.testing.assert_array_equal(grad, layer.grads[key])


def test_input_grad_false_skips_dx_with_a_padding_mode():
    layer = nn.Conv2d(2, 3, 3, padding=1, padding_mode="replicate")
    layer.input_grad = False
    layer(np.ones((1, 2, 4, 4), np.float32))
    assert layer.backward(np.ones((1, 3, 4, 4), np.float32)) is None


def test_no_grad_keeps_nothing_with_a_padding_mode():
    layer = nn.Conv1d(2, 3, 3, padding=1, padding_mode="reflect")
    with nn.no_grad():
        layer(np.ones((1, 2, 5), np.float32))
    assert layer._saved is None


def test_torch_and_numpy_dtypes_and_the_default():
    assert nn.Conv2d(1, 1, 1).dtype == np.float32
    for dtype in (np.float64, "float64", np.dtype("float64"), torch.float64):
        assert nn.Conv2d(1, 1, 1, dtype=dtype).dtype == np.float64
        assert nn.Conv1d(1, 1, 1, dtype=dtype).dtype == np.float64


def test_the_rng_is_keyword_only_and_seeds_the_weights():
    a = nn.Conv2d(2, 3, 3, rng=np.random.default_rng(5))
    b = nn.Conv2d(2, 3, 3, rng=np.random.default_rng(5))
    np.testing.assert_array_equal(a.params["weight"], b.params["weight"])
    with pytest.raises(TypeError):
        nn.Conv2d(2, 3, 3, 1, 0, 1, 1, True, "zeros", None, None, np.random.default_rng(5))


@pytest.mark.parametrize("make, error, fragments", [
    (lambda: nn.Conv2d(3, 4, 3, padding_mode="mirror"), ValueError, ("Conv2d", "padding_mode", "'mirror'")),
    (lambda: nn.Conv1d(3, 4, 3, padding_mode="zero"), ValueError, ("Conv1d", "padding_mode", "'zero'")),
    (lambda: nn.Conv2d(3, 4, 3, device="cuda"), ValueError, ("Conv2d", "device", "'cuda'")),
    (lambda: nn.Conv1d(3, 4, 3, device="meta"), ValueError, ("Conv1d", "device", "'meta'")),
    (lambda: nn.Conv2d(3, 4, 3, dtype=np.float16), TypeError, ("Conv2d", "dtype", "float16")),
    (lambda: nn.Conv2d(3, 4, 3, dtype=torch.int64), TypeError, ("Conv2d", "dtype", "torch.int64")),
    (lambda: nn.Conv2d(3, 4, 3, stride=2, padding="same", padding_mode="reflect"), ValueError,
     ("Conv2d", "'same'", "stride")),
    (lambda: nn.Conv1d(3, 4, (3, 3)), TypeError, ("Conv1d", "kernel_size", "(3, 3)")),
    (lambda: nn.Conv1d(3, 4, 3, stride=(1, 2)), TypeError, ("Conv1d", "stride", "(1, 2)")),
    (lambda: nn.Conv1d(3, 4, 3, groups=0), ValueError, ("Conv1d", "groups", "0")),
    (lambda: nn.Conv2d(3, 4, 3, dilation=0), ValueError, ("Conv2d", "dilation", "0")),
    (lambda: nn.Conv2d(3, 4, 3, padding=(1, -1)), ValueError, ("Conv2d", "padding", "-1")),
    (lambda: nn.Conv2d(True, 4, 3), ValueError, ("Conv2d", "in_channels", "True")),
])
def test_bad_arguments_are_refused_at_construction(make, error, fragments):
    with pytest.raises(error) as info:
        make()
    for fragment in fragments:
        assert fragment in str(info.value), (fragment, str(info.value))


@pytest.mark.parametrize("layer, shape, fragments", [
    (nn.Conv2d(2, 3, 3, padding=2, padding_mode="reflect"), (1, 2, 2, 5), ("reflect", "less than")),
    (nn.Conv1d(2, 3, 3, padding=3, padding_mode="circular"), (1, 2, 2), ("circular", "wraps around")),
    (nn.Conv2d(2, 3, 3, padding=1, padding_mode="replicate"), (3, 5, 5), ("(N, 2, H, W) or (2, H, W)", "(3, 5, 5)")),
    (nn.Conv1d(2, 3, 3), (2,), ("(N, 2, L) or (2, L)", "(2,)")),
])
def test_inputs_torch_refuses_are_refused_naming_the_layer(layer, shape, fragments):
    with pytest.raises(ValueError) as info:
        layer(np.zeros(shape, np.float32))
    assert str(info.value).startswith(repr(layer))
    for fragment in fragments:
        assert fragment in str(info.value), (fragment, str(info.value))
