"""ConvTranspose1d and ConvTranspose2d against torch.nn's twins: every constructor argument drawn at random
(positionally in torch's order for some draws, by keyword for others), float32 and float64, batched, unbatched
and non-contiguous inputs, forward's output_size; y, dx, dW and db compared; finite differences; torch's
default initialisation bounds; the arguments torch refuses refused here at construction; summary's MACs."""
import inspect

import numpy as np
import pytest
import torch

from finite_difference import check_layer
from juanji import nn
from juanji.models.summary import summarize
from layer_check import DTYPES, assert_close, compare_with_torch, randomise_state

LAYERS = {1: (nn.ConvTranspose1d, torch.nn.ConvTranspose1d), 2: (nn.ConvTranspose2d, torch.nn.ConvTranspose2d)}


def draw(seed, dims):
    """(arguments in torch's order as a dict, input shape) of a random valid layer and input."""
    rng = np.random.default_rng(seed)

    def each(low, high):        # an int, or a tuple of ``dims`` ints
        values = tuple(int(v) for v in rng.integers(low, high, dims))
        return values[0] if rng.integers(0, 2) and len(set(values)) == 1 else values

    while True:
        groups = int(rng.integers(1, 4))
        kernel_size, stride, dilation = each(1, 4), each(1, 4), each(1, 3)
        strides, dilations = [(v,) * dims if isinstance(v, int) else v for v in (stride, dilation)]
        padding = each(0, 3)
        output_padding = tuple(int(rng.integers(0, max(s, d))) for s, d in zip(strides, dilations))
        args = dict(in_channels=groups * int(rng.integers(1, 3)), out_channels=groups * int(rng.integers(1, 3)),
                    kernel_size=kernel_size, stride=stride, padding=padding, output_padding=output_padding,
                    groups=groups, bias=bool(rng.integers(0, 2)), dilation=dilation, padding_mode="zeros",
                    device=[None, "cpu"][int(rng.integers(0, 2))])
        shape = (int(rng.integers(1, 4)), args["in_channels"], *rng.integers(1, 6, dims))
        layer = LAYERS[dims][1](**{k: v for k, v in args.items() if k != "device"})
        try:
            if min(layer(torch.zeros(shape)).shape[2:]) > 0:
                return args, tuple(int(v) for v in shape)
        except RuntimeError:          # an output of negative size
            pass


def build(args, dims, dtype, positional):
    """juanji's layer (the arguments positionally in torch's order, or by keyword) and torch's twin."""
    ours, theirs = LAYERS[dims]
    layer = ours(*args.values(), dtype) if positional else ours(**args, dtype=dtype)
    twin = theirs(**{k: v for k, v in args.items() if k != "device"})
    randomise_state(layer)
    return layer, twin


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("dims", [1, 2])
@pytest.mark.parametrize("seed", range(8))
def test_matches_torch(seed, dims, dtype):
    args, shape = draw(seed, dims)
    layer, twin = build(args, dims, dtype, positional=seed % 2 == 0)
    x = np.random.default_rng(seed).standard_normal(shape).astype(dtype)
    compare_with_torch(layer, twin, x, steps=2, seed=seed)


@pytest.mark.parametrize("layer_args, shape", [
    ((16, 8, 4, 2, 1), (9, 16, 6, 6)),          # DCGAN's upsampling (4×4, stride 2, padding 1)
    ((12, 6, 3, 3, 1, 2, 3), (5, 12, 4, 7)),    # stride 3, output_padding, groups
    ((10, 24, 4, 1, 0), (6, 10, 1, 1)),         # DCGAN's first layer: 1×1 → 4×4 at stride 1
    ((6, 4, (2, 5), (1, 2), (0, 2), 0, 2, True, (1, 2)), (4, 6, 3, 8)),
])
@pytest.mark.usefixtures("kernels", "batch_threads")
def test_matches_torch_on_both_kernel_sets(layer_args, shape):
    """ConvTranspose2d's plans on NumPy's and on the compiled kernels (the "phases" forward), serially and with the
    batch split over two threads: y, dx, dW and db against torch in float32 and float64, over two steps."""
    for dtype in DTYPES:
        layer, twin = nn.ConvTranspose2d(*layer_args, dtype=dtype), torch.nn.ConvTranspose2d(*layer_args)
        randomise_state(layer)
        compare_with_torch(layer, twin, np.random.default_rng(1).standard_normal(shape).astype(dtype), steps=2)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("dims", [1, 2])
@pytest.mark.parametrize("seed", range(3))
def test_unbatched_and_non_contiguous_inputs(seed, dims, dtype):
    args, shape = draw(20 + seed, dims)
    layer, twin = build(args, dims, dtype, positional=False)
    x = np.random.default_rng(seed).standard_normal(shape[::-1]).astype(dtype).T       # a transposed view
    assert not x.flags.c_contiguous
    compare_with_torch(layer, twin, x, seed=seed)
    y = compare_with_torch(layer, twin, np.ascontiguousarray(x[0]), seed=seed)        # (C, …): unbatched
    assert y.ndim == dims + 1


@pytest.mark.parametrize("dims", [1, 2])
@pytest.mark.parametrize("seed", range(4))
def test_forward_output_size_picks_output_padding_as_torch(seed, dims):
    """forward(x, output_size): every size from the smallest to that plus stride − 1, given as the spatial sizes
    or with N, C in front (C alone for an unbatched input); y, dx, dW, db as torch's."""
    rng = np.random.default_rng(seed)
    stride = (2, 3)[:dims] if dims == 2 else (3,)
    layer = LAYERS[dims][0](4, 6, 3, stride, 1, groups=2, dilation=2, dtype=np.float64)
    twin = LAYERS[dims][1](4, 6, 3, stride, 1, groups=2, dilation=2).double()
    twin.load_state_dict({k: torch.from_numpy(v.copy()) for k, v in layer.state_dict().items()})
    shape = (2, 4, *rng.integers(2, 5, dims))
    smallest = [(n - 1) * s - 2 + 2 * 2 + 1 for n, s in zip(shape[2:], stride)]
    for extra in np.ndindex(*stride):
        size = [m + e for m, e in zip(smallest, extra)]
        for batched in (True, False):
            x = rng.standard_normal(shape if batched else shape[1:])
            requested = [*x.shape[:-dims], *size] if extra[0] % 2 else size
            x_t = torch.from_numpy(x.copy()).requires_grad_(True)
            y_t = twin(x_t, output_size=requested)
            y = layer(x, output_size=requested)
            dy = rng.standard_normal(y.shape)
            y_t.backward(torch.from_numpy(dy))
            assert_close(y, y_t, f"y for output_size {requested}")
            assert_close(layer.backward(dy), x_t.grad, "dx")
            assert_close(layer.grads["weight"], twin.weight.grad, "dW")
            assert_close(layer.grads["bias"], twin.bias.grad, "db")
            twin.zero_grad()


@pytest.mark.parametrize("dims", [1, 2])
def test_finite_differences(dims):
    layer = LAYERS[dims][0](4, 6, 3, 2, 1, 1, groups=2, dilation=2, dtype=np.float64)
    check_layer(layer, np.random.default_rng(3).standard_normal((2, 4, *(4,) * dims)))


@pytest.mark.parametrize("dims", [1, 2])
def test_default_init_and_dtype(dims):
    """weight (in, out/groups, k…) and bias (out,) uniform within ±1/√(out/groups · Πk), as torch's
    reset_parameters; dtype None is float32, torch's dtypes and NumPy's names are accepted."""
    layer = LAYERS[dims][0](6, 8, 3, groups=2)
    weight, bias = layer.params["weight"], layer.params["bias"]
    assert weight.shape == (6, 4, *(3,) * dims) and bias.shape == (8,) and weight.dtype == np.float32
    bound = 1 / np.sqrt(4 * 3 ** dims)
    assert np.abs(weight).max() <= bound and np.abs(bias).max() <= bound and np.abs(weight).max() > bound / 2
    assert LAYERS[dims][0](2, 2, 3, dtype=torch.float64).dtype == np.float64
    assert LAYERS[dims][0](2, 2, 3, dtype="float64", device=torch.device("cpu")).dtype == np.float64


def test_signature_is_torchs_with_rng_keyword_only():
    for dims, (ours, theirs) in LAYERS.items():
        mine = list(inspect.signature(ours.__init__).parameters.values())
        assert [(p.name, p.default) for p in mine[:-1]] == \
            [(p.name, p.default) for p in inspect.signature(theirs.__init__).parameters.values()]
        assert mine[-1].name == "rng" and mine[-1].kind is inspect.Parameter.KEYWORD_ONLY
    first = nn.ConvTranspose2d(2, 3, 3, rng=np.random.default_rng(0))
    assert np.array_equal(first.params["weight"], nn.ConvTranspose2d(2, 3, 3, rng=np.random.default_rng(0))
                          .params["weight"])


@pytest.mark.parametrize("make, error, fragments", [
    (lambda: nn.ConvTranspose2d(2, 2, 3, padding_mode="reflect"), ValueError,
     ("ConvTranspose2d", '"zeros"', "reflect")),
    (lambda: nn.ConvTranspose1d(2, 2, 3, padding_mode="circular"), ValueError, ("ConvTranspose1d", "circular")),
    (lambda: nn.ConvTranspose2d(2, 2, 3, stride=2, output_padding=2), ValueError,
     ("ConvTranspose2d", "output_padding (2, 2)", "stride (2, 2)", "dilation (1, 1)")),
    (lambda: nn.ConvTranspose1d(2, 2, 3, output_padding=1), ValueError, ("ConvTranspose1d", "output_padding (1,)")),
    (lambda: nn.ConvTranspose2d(3, 4, 3, groups=2), ValueError, ("ConvTranspose2d", "in_channels (3)", "groups (2)")),
    (lambda: nn.ConvTranspose2d(0, 4, 3), ValueError, ("ConvTranspose2d", "in_channels", "0")),
    (lambda: nn.ConvTranspose2d(2, 4, (3, 3, 3)), TypeError, ("ConvTranspose2d", "kernel_size", "(3, 3, 3)")),
    (lambda: nn.ConvTranspose2d(2, 4, 3, padding="same"), TypeError, ("ConvTranspose2d", "padding", "'same'")),
    (lambda: nn.ConvTranspose2d(2, 4, 3, padding=-1), ValueError, ("ConvTranspose2d", "padding", "-1")),
    (lambda: nn.ConvTranspose2d(2, 4, 3, stride=0), ValueError, ("ConvTranspose2d", "stride", "0")),
    (lambda: nn.ConvTranspose1d(2, 4, 2.5), TypeError, ("ConvTranspose1d", "kernel_size", "2.5")),
    (lambda: nn.ConvTranspose2d(2, 4, 3, bias="yes"), TypeError, ("ConvTranspose2d", "bias", "'yes'")),
    (lambda: nn.ConvTranspose2d(2, 4, 3, dtype=np.int32), TypeError, ("ConvTranspose2d", "dtype")),
    (lambda: nn.ConvTranspose2d(2, 4, 3, device="cuda"), ValueError, ("ConvTranspose2d", "device", "'cuda'")),
])
def test_bad_arguments_are_refused_at_construction(make, error, fragments):
    with pytest.raises(error) as info:
        make()
    assert all(fragment in str(info.value) for fragment in fragments), str(info.value)


def test_bad_inputs_and_output_sizes_are_refused():
    layer = nn.ConvTranspose2d(2, 4, 3, stride=2)
    for x, fragments in [(np.zeros((1, 3, 4, 4), np.float32), ("2", "(1, 3, 4, 4)")),
                         (np.zeros((4, 4), np.float32), ("(N, C, H, W)", "(4, 4)"))]:
        with pytest.raises(ValueError) as info:
            layer(x)
        assert "ConvTranspose2d" in str(info.value) and all(f in str(info.value) for f in fragments)
    x = np.zeros((1, 2, 4, 4), np.float32)
    with pytest.raises(ValueError, match=r"requested an output size of \[11, 9\], but valid sizes range from "
                                         r"\[9, 9\] to \[10, 10\]"):
        layer(x, output_size=(11, 9))
    with pytest.raises(ValueError, match="output_size must have 2 or 4 elements"):
        layer(x, output_size=(9, 9, 9))
    with pytest.raises(ValueError, match="not positive"):
        nn.ConvTranspose2d(2, 4, 1, padding=1)(x[:, :, :1, :1])


def test_summary_counts_input_elements_times_weights_per_input():
    """MACs = C·H·W · (K/groups)·R·S per sample: each input pixel meets its row of the weight."""
    model = nn.Sequential(nn.ConvTranspose2d(4, 6, 3, stride=2, padding=1, output_padding=1, groups=2))
    row = summarize(model, (4, 5, 7))[0]
    assert row.output_shape == (6, 10, 14) and row.macs == 4 * 5 * 7 * 3 * 3 * 3
    row = summarize(nn.Sequential(nn.ConvTranspose1d(6, 2, 4, dilation=2)), (6, 9))[0]
    assert row.macs == 6 * 9 * 2 * 4
