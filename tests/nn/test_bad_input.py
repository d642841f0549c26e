"""Bad input is refused with a ValueError/TypeError naming the layer (its repr), what it expected and what
it got — never a raw NumPy broadcasting or indexing error; backward before forward is a RuntimeError;
a failed load_state_dict changes nothing."""
import re

import numpy as np
import pytest

from juanji import nn


def raises_naming(error_type, layer_text, *fragments):
    """pytest.raises for ``error_type`` whose message contains ``layer_text`` and every fragment, verbatim."""
    return pytest.raises(error_type, match="(?s)" + ".*".join(re.escape(f) for f in (layer_text, *fragments)))


def forward_error(layer, x, error_type, *fragments):
    with raises_naming(error_type, repr(layer), *fragments) as info:
        layer(x)
    assert "broadcast" not in str(info.value) and "operands" not in str(info.value)


# -- shapes -----------------------------------------------------------------------------------------

def test_conv2d_channel_mismatch():
    forward_error(nn.Conv2d(3, 8, 3), np.zeros((2, 4, 5, 5), np.float32), ValueError,
                  "(N, 3, H, W)", "(2, 4, 5, 5)")


def test_conv2d_2d_input():
    """(C, H, W) is an unbatched sample, as in torch; fewer axes are refused, and so is the wrong C."""
    forward_error(nn.Conv2d(3, 8, 3), np.zeros((5, 5), np.float32), ValueError, "(N, 3, H, W) or (3, H, W)", "(5, 5)")
    forward_error(nn.Conv2d(3, 8, 3), np.zeros((4, 5, 5), np.float32), ValueError, "(3, H, W)", "(4, 5, 5)")


def test_conv1d_4d_input_and_channel_mismatch():
    forward_error(nn.Conv1d(3, 8, 3), np.zeros((2, 3, 5, 5), np.float32), ValueError, "(N, 3, L)", "(2, 3, 5, 5)")
    forward_error(nn.Conv1d(3, 8, 3), np.zeros((2, 2, 5), np.float32), ValueError, "(N, 3, L)", "(2, 2, 5)")


def test_batch_norm2d_channel_mismatch():
    forward_error(nn.BatchNorm2d(3), np.zeros((2, 5, 4, 4), np.float32), ValueError, "(N, 3, H, W)", "(2, 5, 4, 4)")
    forward_error(nn.BatchNorm2d(3), np.zeros((2, 3, 4), np.float32), ValueError, "(N, 3, H, W)", "(2, 3, 4)")


def test_batch_norm1d_channel_mismatch():
    forward_error(nn.BatchNorm1d(4), np.zeros((8, 3), np.float32), ValueError, "(N, 4)", "(8, 3)")


def test_linear_feature_mismatch():
    """Linear takes (*, in_features), as torch: any leading axes, the last one must match."""
    forward_error(nn.Linear(4, 2), np.zeros((5, 3), np.float32), ValueError, "(*, 4)", "(5, 3)")
    forward_error(nn.Linear(4, 2), np.zeros((5, 4, 1), np.float32), ValueError, "(*, 4)", "(5, 4, 1)")
    forward_error(nn.Linear(4, 2), np.zeros((), np.float32), ValueError, "(*, 4)", "0-D")


@pytest.mark.parametrize("layer, shape, reach", [
    (nn.Conv2d(2, 4, 5), (1, 2, 4, 6), "(5, 5)"),
    (nn.Conv2d(2, 4, 3, dilation=3), (1, 2, 6, 6), "(7, 7)"),
    (nn.MaxPool2d(3), (1, 2, 2, 8), "(3, 3)"),
    (nn.MaxPool2d(3, padding=1, dilation=3), (1, 2, 4, 4), "(7, 7)"),
    (nn.AvgPool2d((2, 4)), (1, 2, 5, 3), "(2, 4)"),
])
def test_input_smaller_than_kernel(layer, shape, reach):
    forward_error(layer, np.zeros(shape, np.float32), ValueError, str(shape[2:]), reach)


def test_conv1d_input_shorter_than_kernel():
    forward_error(nn.Conv1d(2, 4, 5, padding=1), np.zeros((1, 2, 2), np.float32), ValueError, "5")


@pytest.mark.parametrize("layer", [nn.MaxPool2d(2), nn.AvgPool2d(2), nn.AdaptiveAvgPool2d(2), nn.GlobalAvgPool2d()])
def test_pooling_needs_4d(layer):
    """torch's 2-d poolings also take an unbatched (C, H, W); fewer axes are refused (GlobalAvgPool2d: 4-d only)."""
    forward_error(layer, np.zeros((3, 4), np.float32), ValueError, "(N, C, H, W)", "(3, 4)")
    if isinstance(layer, nn.GlobalAvgPool2d):
        forward_error(layer, np.zeros((2, 3, 4), np.float32), ValueError, "(N, C, H, W)", "(2, 3, 4)")


# -- dtypes ------------------------------------------------------------------------------------------

@pytest.mark.parametrize("layer, shape", [
    (nn.Conv2d(3, 4, 3), (1, 3, 5, 5)), (nn.Conv1d(3, 4, 3), (1, 3, 5)), (nn.Linear(3, 2), (4, 3)),
    (nn.BatchNorm2d(3), (2, 3, 2, 2)), (nn.BatchNorm1d(3), (4, 3)), (nn.MaxPool2d(2), (1, 3, 4, 4)),
    (nn.AvgPool2d(2), (1, 3, 4, 4)), (nn.AdaptiveAvgPool2d(1), (1, 3, 4, 4)), (nn.GlobalAvgPool2d(), (1, 3, 4, 4))])
@pytest.mark.parametrize("bad", [np.uint8, np.int64, np.bool_])
def test_non_float_input(layer, shape, bad):
    forward_error(layer, np.zeros(shape, bad), TypeError, "floating-point", np.dtype(bad).name)


@pytest.mark.parametrize("layer, shape", [
    (nn.Conv2d(3, 4, 3), (1, 3, 5, 5)), (nn.Conv1d(3, 4, 3), (1, 3, 5)), (nn.Linear(3, 2), (4, 3)),
    (nn.BatchNorm2d(3), (2, 3, 2, 2)), (nn.BatchNorm1d(3, affine=False), (4, 3))])
def test_float64_input_to_a_float32_layer(layer, shape):
    forward_error(layer, np.zeros(shape, np.float64), TypeError, "float32", "float64")
    forward_error(layer.to(np.float64), np.zeros(shape, np.float32), TypeError, "float64", "float32")


def test_a_list_is_not_an_array():
    forward_error(nn.Linear(2, 2), [[1.0, 2.0]], TypeError, "(*, 2)", "list")


# -- CrossEntropyLoss ----------------------------------------------------------------------------------

@pytest.mark.parametrize("labels, error_type, fragments", [
    (np.array([0, 3, 1]), ValueError, ("3", "3 classes", "0..2")),
    (np.array([0, -1, 1]), ValueError, ("-1", "3 classes")),
    (np.array([0.0, 1.0, 2.0]), TypeError, ("integers", "float64")),
    (np.array([True, False, True]), TypeError, ("integers", "bool")),
    (np.array([[0], [1], [2]]), ValueError, ("(3,)", "(3, 1)")),
    (np.array([0, 1]), ValueError, ("(3,)", "(3, 3)", "(2,)")),
])
def test_cross_entropy_bad_labels(labels, error_type, fragments):
    criterion = nn.CrossEntropyLoss()
    logits = np.zeros((3, 3), np.float32)
    with raises_naming(error_type, repr(criterion), *fragments):
        criterion(logits, labels)


def test_cross_entropy_bad_logits():
    criterion = nn.CrossEntropyLoss(label_smoothing=0.1)
    with raises_naming(ValueError, repr(criterion), "(N, C)", "(2, 3, 4)"):
        criterion(np.zeros((2, 3, 4), np.float32), np.array([0, 1]))
    with raises_naming(TypeError, repr(criterion), "floating-point", "int64"):
        criterion(np.zeros((2, 3), np.int64), np.array([0, 1]))


# -- construction -------------------------------------------------------------------------------------

@pytest.mark.parametrize("make, error_type, fragments", [
    (lambda: nn.Conv2d(3, 8, 3, padding="full"), ValueError, ("Conv2d", "'full'")),
    (lambda: nn.Conv2d(3, 8, 3, padding="SAME"), ValueError, ("Conv2d", "'SAME'")),
    (lambda: nn.Conv2d(3, 8, 3, padding=-1), ValueError, ("Conv2d", "-1")),
    (lambda: nn.Conv2d(3, 8, 3, padding=1.5), TypeError, ("Conv2d", "1.5")),
    (lambda: nn.Conv1d(3, 8, 3, padding="causal"), ValueError, ("Conv1d", "'causal'")),
    (lambda: nn.Conv2d(3, 8, 3, stride=2, padding="same"), ValueError, ("Conv2d", "'same'", "stride 2")),
    (lambda: nn.Conv2d(3, 8, 3, stride=(1, 2), padding="same"), ValueError, ("Conv2d", "'same'", "(1, 2)")),
    (lambda: nn.Conv1d(3, 8, 3, stride=2, padding="same"), ValueError, ("Conv1d", "'same'", "stride")),
    (lambda: nn.Conv2d(3, 8, 3, groups=2), ValueError, ("Conv2d", "in_channels (3)", "groups (2)")),
    (lambda: nn.Conv2d(4, 6, 3, groups=4), ValueError, ("Conv2d", "out_channels (6)", "groups (4)")),
    (lambda: nn.Conv1d(3, 6, 3, groups=2), ValueError, ("Conv1d", "in_channels (3)", "groups (2)")),
    (lambda: nn.Conv2d(3, 8, 0), ValueError, ("Conv2d", "kernel_size", "0")),
    (lambda: nn.Conv2d(3, 8, (3, 3, 3)), TypeError, ("Conv2d", "kernel_size", "(3, 3, 3)")),
    (lambda: nn.Conv2d(0, 8, 3), ValueError, ("Conv2d", "in_channels", "0")),
    (lambda: nn.Linear(3, 0), ValueError, ("Linear", "out_features", "0")),
    (lambda: nn.BatchNorm2d(0), ValueError, ("BatchNorm2d", "num_features", "0")),
    (lambda: nn.MaxPool2d(3, padding=2), ValueError, ("MaxPool2d", "padding (2, 2)", "(3, 3)")),
    (lambda: nn.MaxPool2d(0), ValueError, ("MaxPool2d", "kernel_size")),
    (lambda: nn.AvgPool2d(2, stride="2"), TypeError, ("AvgPool2d", "stride", "'2'")),
    (lambda: nn.Dropout(1.5), ValueError, ("Dropout", "[0, 1]", "1.5")),
    (lambda: nn.CrossEntropyLoss(label_smoothing=1.5), ValueError, ("CrossEntropyLoss", "1.5")),
])
def test_construction_errors_name_the_layer(make, error_type, fragments):
    with raises_naming(error_type, *fragments):
        make()


# -- backward before forward --------------------------------------------------------------------------

@pytest.mark.parametrize("layer", [
    nn.Conv2d(2, 3, 3), nn.Conv1d(2, 3, 3), nn.Linear(2, 3), nn.BatchNorm1d(2), nn.BatchNorm2d(2),
    nn.ReLU(), nn.LeakyReLU(), nn.Sigmoid(), nn.Tanh(), nn.Softmax(1), nn.Dropout(0.5),
    nn.MaxPool2d(2), nn.AvgPool2d(2), nn.AdaptiveAvgPool2d(2), nn.GlobalAvgPool2d(), nn.Flatten(),
    nn.Concat(nn.ReLU(), nn.Tanh()), nn.CrossEntropyLoss()], ids=lambda layer: type(layer).__name__)
def test_backward_before_forward(layer):
    with raises_naming(RuntimeError, repr(layer).splitlines()[0], "backward", "before forward"):
        layer.backward(np.ones((2, 2, 2, 2), np.float32))


@pytest.mark.parametrize("container", [
    nn.Sequential(nn.Linear(2, 3), nn.ReLU()), nn.Residual(nn.Sequential(nn.Linear(2, 2), nn.ReLU()))])
def test_containers_backward_before_forward_reach_a_layer_that_says_so(container):
    with pytest.raises(RuntimeError, match="before forward"):
        container.backward(np.ones((2, 2), np.float32))


# -- containers -------------------------------------------------------------------------------------------

def test_residual_shape_mismatch_suggests_a_projection():
    block = nn.Residual(nn.Conv2d(2, 4, 3, padding=1))
    with pytest.raises(ValueError, match=r"(?s)\(1, 4, 5, 5\).*\(1, 2, 5, 5\).*projection"):
        block(np.zeros((1, 2, 5, 5), np.float32))


def test_concat_shape_mismatch():
    block = nn.Concat(nn.Conv2d(2, 4, 3, padding=1), nn.Conv2d(2, 4, 3))
    with pytest.raises(ValueError, match=r"(?s)Concat.*\(1, 4, 5, 5\).*\(1, 4, 3, 3\)"):
        block(np.zeros((1, 2, 5, 5), np.float32))


def test_sequential_refuses_a_non_module():
    with pytest.raises(TypeError, match=r"Sequential.*element 1.*ufunc.*not a Module"):
        nn.Sequential(nn.ReLU(), np.tanh)


# -- load_state_dict -------------------------------------------------------------------------------------

def small_net():
    return nn.Sequential(nn.Conv2d(2, 3, 3), nn.BatchNorm2d(3), nn.ReLU(), nn.Flatten(), nn.Linear(3, 2))


def snapshot(model):
    return {name: value.copy() for name, value in model.state_dict().items()}


def assert_unchanged(model, before):
    after = model.state_dict()
    assert list(after) == list(before)
    for name in before:
        np.testing.assert_array_equal(after[name], before[name], err_msg=name)


def test_load_state_dict_missing_key_changes_nothing():
    """A missing key is a KeyError (documented in Module.load_state_dict, and what juanji.checkpoint
    catches) naming the key; nothing is copied."""
    model, other = small_net(), small_net()
    before = snapshot(model)
    state = other.state_dict()
    del state["1.running_var"]
    with pytest.raises(KeyError, match=r"Sequential.*missing keys \['1.running_var'\]"):
        model.load_state_dict(state)
    assert_unchanged(model, before)


def test_load_state_dict_unexpected_key_changes_nothing():
    model, other = small_net(), small_net()
    before = snapshot(model)
    state = other.state_dict()
    state["5.weight"] = np.zeros(3, np.float32)
    with pytest.raises(KeyError, match=r"unexpected keys \['5.weight'\]"):
        model.load_state_dict(state)
    assert_unchanged(model, before)


def test_load_state_dict_wrong_shape_changes_nothing():
    """The bad array is the last one: the earlier, well-shaped ones must not have been copied either."""
    model, other = small_net(), small_net()
    before = snapshot(model)
    state = other.state_dict()
    state["4.bias"] = np.zeros(3, np.float32)
    with pytest.raises(ValueError, match=r"Sequential.*'4.bias'.*\(2,\).*\(3,\)"):
        model.load_state_dict(state)
    assert_unchanged(model, before)
    assert not np.array_equal(before["0.weight"], state["0.weight"])   # a load would have been visible


@pytest.mark.parametrize("make", [lambda d: nn.Conv2d(1, 1, 1, dtype=d), lambda d: nn.Linear(1, 1, dtype=d),
                                  lambda d: nn.BatchNorm2d(1, dtype=d), lambda d: nn.PReLU(dtype=d)])
def test_a_dtype_numpy_cannot_name_is_refused(make):
    with pytest.raises(TypeError, match="dtype must be float32 or float64 .*'bogus'"):
        make("bogus")


@pytest.mark.parametrize("bad", [np.float16, "float16", np.int32, "half"])
def test_to_refuses_a_dtype_the_kernels_do_not_compute_in(bad):
    """The constructors refuse float16 and integers; ``Module.to`` refuses them too, with the same words, and
    leaves the model as it was."""
    model = nn.Sequential(nn.Conv2d(1, 2, 3, stride=2), nn.ReLU())
    with pytest.raises(TypeError, match="Sequential.to: dtype must be float32 or float64"):
        model.to(bad)
    assert model[0].params["weight"].dtype == np.float32
    assert model.to("float64")[0].params["weight"].dtype == np.float64
