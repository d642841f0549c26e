"""Sequential, Residual and Concat against hand-built torch equivalents, and the Module contract:
dotted names equal to torch's, params/grads updated in place, state_dict round trip, train/eval, to()."""
from collections import OrderedDict

import numpy as np
import pytest
import torch

import juanji
from juanji import nn
from layer_check import DTYPES, TorchConcat, TorchResidual, compare_with_torch, randomise_state


def pair(kind, *args, **kwargs):
    """The same layer from both libraries (juanji's in float32; compare_with_torch casts as needed)."""
    return getattr(nn, kind)(*args, **kwargs), getattr(torch.nn, kind)(*args, **kwargs)


def sequential_pair(*pairs):
    return nn.Sequential(*(p[0] for p in pairs)), torch.nn.Sequential(*(p[1] for p in pairs))


def cnn_pair():
    """conv → BN → ReLU → max pool → conv → BN → ReLU → global average (adaptive 1×1) → flatten → linear."""
    return sequential_pair(pair("Conv2d", 3, 6, 3, padding=1), pair("BatchNorm2d", 6), pair("ReLU"),
                           pair("MaxPool2d", 3, 2, padding=1), pair("Conv2d", 6, 8, 3, stride=2, bias=False),
                           pair("BatchNorm2d", 8), pair("LeakyReLU", 0.1), pair("AdaptiveAvgPool2d", 1),
                           pair("Flatten"), pair("Dropout", 0.3), pair("Linear", 8, 5))


def residual_pair(projection):
    """A ResNet basic block; with ``projection`` it halves the size and widens 4 → 8 channels, so the
    shortcut is a strided 1×1 conv + BN."""
    c_out, stride = (8, 2) if projection else (4, 1)
    body = sequential_pair(pair("Conv2d", 4, c_out, 3, stride=stride, padding=1, bias=False),
                           pair("BatchNorm2d", c_out), pair("ReLU"),
                           pair("Conv2d", c_out, c_out, 3, padding=1, bias=False), pair("BatchNorm2d", c_out))
    shortcut = (sequential_pair(pair("Conv2d", 4, 8, 1, stride=2, bias=False), pair("BatchNorm2d", 8))
                if projection else (None, None))
    return nn.Residual(body[0], shortcut[0]), TorchResidual(body[1], shortcut[1])


def concat_pair():
    """Three Inception-like branches of different widths and an identity branch inside a Sequential."""
    branches = [
        pair("Conv2d", 3, 2, 1),
        sequential_pair(pair("Conv2d", 3, 4, 1), pair("ReLU"), pair("Conv2d", 4, 3, 3, padding=1)),
        sequential_pair(pair("MaxPool2d", 3, 1, padding=1), pair("Conv2d", 3, 2, 1)),
    ]
    return nn.Concat(*(b[0] for b in branches)), TorchConcat(*(b[1] for b in branches))


def to_dtype(model_pair, dtype):
    return model_pair[0].to(dtype), model_pair[1]


@pytest.mark.usefixtures("kernels")
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("train", [True, False])
def test_sequential_cnn_matches_torch(dtype, train):
    model, twin = to_dtype(cnn_pair(), dtype)
    randomise_state(model)
    model.train(train)
    if train:           # torch's dropout draws its own mask: compare the rest of the network
        model[9].p = twin[9].p = 0.0
    y = compare_with_torch(model, twin, np.random.default_rng(0).standard_normal((2, 3, 11, 10)).astype(dtype),
                           steps=3)
    assert y.shape == (2, 5)


@pytest.mark.usefixtures("kernels")
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("projection", [True, False])
def test_residual_matches_torch(dtype, projection):
    model, twin = to_dtype(residual_pair(projection), dtype)
    randomise_state(model)
    y = compare_with_torch(model, twin, np.random.default_rng(1).standard_normal((2, 4, 9, 9)).astype(dtype),
                           steps=2)
    assert y.shape == ((2, 8, 5, 5) if projection else (2, 4, 9, 9))


@pytest.mark.parametrize("dtype", DTYPES)
def test_concat_of_three_branches_matches_torch(dtype):
    model, twin = to_dtype(concat_pair(), dtype)
    randomise_state(model)
    y = compare_with_torch(model, twin, np.random.default_rng(2).standard_normal((2, 3, 6, 7)).astype(dtype))
    assert y.shape == (2, 2 + 3 + 2, 6, 7)


@pytest.mark.parametrize("dtype", DTYPES)
def test_concat_with_identity_branch_and_last_axis(dtype):
    """DenseNet's [x, F(x)] (the identity branch's gradient adds to F's), and dim = −1."""
    dense = nn.Concat(nn.Identity(), nn.Sequential(nn.Linear(3, 4), nn.Tanh()), dim=-1).to(dtype)
    twin = TorchConcat(torch.nn.Identity(), torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.Tanh()), dim=-1)
    randomise_state(dense)
    y = compare_with_torch(dense, twin, np.random.default_rng(3).standard_normal((5, 3)).astype(dtype))
    assert y.shape == (5, 7)


def test_nested_blocks_match_torch():
    """Residual inside Sequential inside Concat: dotted names three levels deep."""
    residual, residual_t = residual_pair(projection=True)
    concat, concat_t = concat_pair()
    # juanji's GlobalAvgPool2d is torch's AdaptiveAvgPool2d(1) + Flatten: name the Linear "5" as torch does
    model = nn.Sequential(OrderedDict([("0", concat), ("1", nn.Conv2d(7, 4, 1)), ("2", residual),
                                       ("3", nn.GlobalAvgPool2d()), ("5", nn.Linear(8, 3))])).to(np.float64)
    twin = torch.nn.Sequential(concat_t, torch.nn.Conv2d(7, 4, 1), residual_t, torch.nn.AdaptiveAvgPool2d(1),
                               torch.nn.Flatten(), torch.nn.Linear(8, 3))
    randomise_state(model)
    names = [name for name, _, _ in model.parameters()]
    assert "2.shortcut.0.weight" in names and "0.1.2.bias" in names and "5.weight" in names
    compare_with_torch(model, twin, np.random.default_rng(4).standard_normal((2, 3, 8, 8)), steps=2)


# -- the Module contract ------------------------------------------------------------------------------------

def test_state_dict_keys_are_torchs():
    model, twin = cnn_pair()
    torch_keys = list(twin.state_dict())
    assert list(model.state_dict()) == torch_keys
    assert torch_keys[:7] == ["0.weight", "0.bias", "1.weight", "1.bias", "1.running_mean", "1.running_var",
                              "1.num_batches_tracked"]
    assert [n for n, _, _ in model.parameters()] == [n for n, _ in twin.named_parameters()]
    assert model.num_parameters() == sum(p.numel() for p in twin.parameters())
    for ours, theirs in (residual_pair(projection=True), concat_pair()):
        assert list(ours.state_dict()) == list(theirs.state_dict())


def test_sequential_with_ordered_dict_names():
    model = nn.Sequential(OrderedDict([("features", nn.Sequential(nn.Conv2d(1, 2, 3), nn.ReLU())),
                                       ("classifier", nn.Linear(2, 3))]))
    assert list(model.state_dict()) == ["features.0.weight", "features.0.bias", "classifier.weight", "classifier.bias"]
    assert model[1] is model.classifier and len(model) == 2


def test_state_dict_round_trip():
    juanji.random.seed(0)
    source, _ = cnn_pair()
    target, _ = cnn_pair()
    randomise_state(source, seed=5)
    x = np.random.default_rng(5).standard_normal((2, 3, 8, 8)).astype(np.float32)
    source.eval(), target.eval()
    assert not np.allclose(source(x), target(x))
    arrays_before = [p for _, p, _ in target.parameters()]
    target.load_state_dict(source.state_dict())
    np.testing.assert_array_equal(target(x), source(x))
    for name, value in source.state_dict().items():
        np.testing.assert_array_equal(target.state_dict()[name], value)
    # loaded in place: references held elsewhere (by an optimizer) still see the model's arrays
    assert all(a is b for a, (_, b, _) in zip(arrays_before, target.parameters()))


def test_state_dict_returns_copies_and_load_casts():
    model = nn.Sequential(nn.Linear(3, 2), nn.BatchNorm1d(2))
    state = model.state_dict()
    state["0.weight"][...] = 7
    assert not (model[0].params["weight"] == 7).any()
    state = {k: v.astype(np.float64) for k, v in state.items()}
    model.load_state_dict(state)
    assert model[0].params["weight"].dtype == np.float32 and (model[0].params["weight"] == 7).all()


def test_parameters_are_the_layers_arrays_and_backward_overwrites_grads_in_place():
    model = nn.Sequential(nn.Conv2d(2, 3, 3), nn.Flatten(), nn.Linear(3 * 3 * 3, 2))
    grads_before = {name: grad for name, _, grad in model.parameters()}
    assert grads_before["0.weight"] is model[0].grads["weight"]
    assert next(iter(model.parameters()))[1] is model[0].params["weight"]
    x = np.random.default_rng(6).standard_normal((2, 2, 5, 5)).astype(np.float32)
    dy = np.ones((2, 2), np.float32)
    model(x)
    model.backward(dy)
    first = {name: grad.copy() for name, _, grad in model.parameters()}
    model(x)
    model.backward(dy)                      # no accumulation: the same gradient again, in the same array
    for name, _, grad in model.parameters():
        assert grad is grads_before[name]
        np.testing.assert_array_equal(grad, first[name])
        assert np.abs(grad).sum() > 0
    model.zero_grad()
    assert all((grad == 0).all() for _, _, grad in model.parameters())
    for layer in (model[0], model[2]):
        assert set(layer.params) == set(layer.grads) == {"weight", "bias"}


def test_train_and_eval_propagate():
    model, _ = cnn_pair()
    residual, _ = residual_pair(projection=True)
    model.append(nn.Sequential(residual))
    assert model.eval() is model
    assert all(not m.training for m in model.modules())
    assert model.train() is model and all(m.training for m in model.modules())
    model.train(False)
    assert not residual.shortcut[1].training


def test_eval_changes_batch_norm_and_dropout_behaviour():
    model = nn.Sequential(nn.BatchNorm1d(4), nn.Dropout(0.5)).to(np.float64)
    x = np.random.default_rng(7).standard_normal((6, 4))
    model.eval()
    expected = x / np.sqrt(1 + 1e-5)                      # running stats 0 / 1, no dropout
    np.testing.assert_allclose(model(x), expected, rtol=1e-12)
    np.testing.assert_array_equal(model[0].buffers["running_mean"], 0)
    model.train()
    y = model(x)
    assert (y == 0).any() and not np.allclose(model[0].buffers["running_mean"], 0)


def test_dtype_is_the_first_parameters_else_the_first_floating_buffers():
    """In module order (the module itself, then its children depth first), a parameter anywhere before any buffer;
    None without either."""
    f32, f64 = np.dtype(np.float32), np.dtype(np.float64)
    unaffine = nn.BatchNorm2d(4, affine=False, dtype=np.float64)      # running statistics, then an int64 count
    cases = [(nn.Linear(2, 3, dtype=np.float64), f64), (unaffine, f64), (nn.MaxPool2d(2), None),
             (nn.Sequential(nn.ReLU(), nn.Sequential(nn.Linear(2, 3, dtype=np.float64))), f64),
             (nn.Sequential(unaffine, nn.Linear(4, 2)), f32), (nn.Sequential(nn.ReLU(), unaffine), f64),
             (nn.Sequential(nn.ReLU(), nn.Flatten()), None)]
    for module, expected in cases:
        assert module.dtype == expected, module


@pytest.mark.parametrize("start, target", [(np.float32, np.float64), (np.float64, np.float32)])
def test_to_converts_params_grads_and_buffers(start, target):
    model = nn.Sequential(nn.Conv2d(3, 4, 3, dtype=start), nn.BatchNorm2d(4, dtype=start), nn.ReLU(),
                          nn.BatchNorm2d(4, affine=False, dtype=start), nn.GlobalAvgPool2d(), nn.Linear(4, 2, dtype=start),
                          nn.BatchNorm1d(2, affine=False, dtype=start))
    before = model.state_dict()
    assert model.to(target) is model and model.dtype == target
    for _, module in model.named_modules():
        for array in (*module.params.values(), *module.grads.values(), *module.buffers.values()):
            assert array.dtype == (target if array.dtype.kind == "f" else np.int64)     # num_batches_tracked
    for name, value in model.state_dict().items():
        np.testing.assert_allclose(value, before[name], rtol=1e-6)
    x = np.random.default_rng(8).standard_normal((3, 3, 6, 6)).astype(target)
    y = model(x)
    dx = model.backward(np.ones_like(y))
    assert y.dtype == dx.dtype == target
    with pytest.raises(TypeError, match=np.dtype(target).name):
        model(x.astype(start))


def test_repr_nests_like_torch():
    model = nn.Sequential(nn.Conv2d(3, 8, 3), nn.Residual(nn.Sequential(nn.ReLU())))
    assert repr(model).splitlines() == [
        "Sequential(", "  (0): Conv2d(3, 8, kernel_size=(3, 3), stride=(1, 1))", "  (1): Residual(",
        "    (body): Sequential(", "      (0): ReLU()", "    )", "    (shortcut): Identity()", "  )", ")"]


def test_sequential_indexing_and_append():
    layers = [nn.Linear(2, 3), nn.ReLU(), nn.Linear(3, 1)]
    model = nn.Sequential(*layers[:2])
    model.append(layers[2])
    assert len(model) == 3 and list(model) == layers and model[-1] is layers[2]
    head = model[1:]
    assert isinstance(head, nn.Sequential) and list(head) == layers[1:]
    assert list(head.state_dict()) == ["2.weight", "2.bias"]          # torch keeps the original names too


def test_seed_makes_construction_reproducible():
    juanji.random.seed(42)
    a = cnn_pair()[0].state_dict()
    juanji.random.seed(42)
    b = cnn_pair()[0].state_dict()
    c = cnn_pair()[0].state_dict()
    for name in a:
        np.testing.assert_array_equal(a[name], b[name])
    assert not np.array_equal(a["0.weight"], c["0.weight"])
