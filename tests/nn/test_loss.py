"""The loss classes against torch.nn's: every constructor argument drawn at random (positionally or by keyword,
the deprecated size_average/reduce among them), every input rank, unbatched and non-contiguous inputs, in
float64 and float32 — the loss, d loss/d input and the weight buffers through ``compare_with_torch`` — plus
finite differences, extreme logits, torch's edge cases (all targets ignored, zero weights, empty batches) and
the refusal of bad arguments and targets."""
import inspect
import re
import warnings

import numpy as np
import pytest
import torch

from finite_difference import check_layer
from juanji import nn
from layer_check import DTYPES, TORCH_DTYPE, assert_close, compare_with_torch, load_into_torch
from loss_draws import LOSSES, construct, draw, torch_names

SEEDS = range(12)
KL_MEAN = "ignore:reduction. 'mean' divides the total loss:UserWarning"


class WithTarget(nn.Module):
    """A juanji loss of x against a fixed target, as the one-input module ``compare_with_torch`` runs."""

    def __init__(self, loss, target):
        super().__init__()
        self.loss, self.target = loss, target

    def forward(self, x):
        return self.loss(x, self.target)

    def backward(self, dy):
        return self.loss.backward(dy)


class TorchWithTarget(torch.nn.Module):
    def __init__(self, loss, target):
        super().__init__()
        self.loss, self.target = loss, target

    def forward(self, x):
        return self.loss(x, self.target)


def build_pair(name, values, positional):
    """The juanji loss and torch's, built alike; the deprecation warnings of size_average/reduce must be
    torch's."""
    with warnings.catch_warnings(record=True) as ours:
        warnings.simplefilter("always")
        loss = construct(getattr(nn, name), name, values, positional)
    with warnings.catch_warnings(record=True) as theirs:
        warnings.simplefilter("always")
        twin = construct(getattr(torch.nn, name), name, values, positional, convert=torch.from_numpy)
    assert [str(w.message) for w in ours] == [str(w.message) for w in theirs]
    assert loss.reduction == twin.reduction
    return loss, twin


def compare(name, values, x, target, positional=False, seed=0):
    """``compare_with_torch`` for the loss of x against a fixed target."""
    loss, twin = build_pair(name, values, positional)
    target_t = torch.from_numpy(target.astype(np.int64) if target.dtype.kind in "iu" else target.copy())
    module = WithTarget(loss, target).to(x.dtype)
    steps = 1 if name == "BCELoss" or x.ndim == 0 else 2       # later steps draw inputs of any value, 0-d as scalars
    compare_with_torch(module, TorchWithTarget(twin, target_t), x, steps=steps, seed=seed)


@pytest.mark.filterwarnings(KL_MEAN)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("name", LOSSES)
def test_each_loss_matches_torch_for_random_arguments(name, seed, dtype):
    values, x, target, positional = draw(name, seed, dtype)
    compare(name, values, x, target, positional, seed)


# Layouts the draws above may miss, always checked.
PINNED = {
    "cross-entropy-unbatched-index": lambda rng: (
        "CrossEntropyLoss", dict(weight=rng.uniform(0.5, 2, 5), label_smoothing=0.2, reduction="none"),
        rng.standard_normal(5), np.array(3)),
    "cross-entropy-unbatched-probabilities": lambda rng: (
        "CrossEntropyLoss", dict(label_smoothing=0.4), rng.standard_normal(4), rng.dirichlet(np.ones(4))),
    "cross-entropy-3d-probabilities-transposed": lambda rng: (
        "CrossEntropyLoss", dict(weight=rng.uniform(0.5, 2, 3), label_smoothing=0.1, reduction="sum"),
        rng.standard_normal((5, 4, 3, 2)).T, np.moveaxis(rng.dirichlet(np.ones(3), (2, 4, 5)), -1, 1)),
    "cross-entropy-3d-ignore-in-range": lambda rng: (
        "CrossEntropyLoss", dict(weight=rng.uniform(0.5, 2, 4), ignore_index=2, label_smoothing=0.3),
        rng.standard_normal((2, 4, 3, 3)), rng.integers(0, 4, (2, 3, 3))),
    "nll-unbatched": lambda rng: (
        "NLLLoss", dict(weight=rng.uniform(0.5, 2, 4), reduction="none"), rng.standard_normal(4), np.array(1)),
    "kl-batchmean": lambda rng: (
        "KLDivLoss", dict(reduction="batchmean"), rng.standard_normal((3, 4)), rng.dirichlet(np.ones(4), 3)),
    "kl-batchmean-0d-is-the-sum": lambda rng: (
        "KLDivLoss", dict(reduction="batchmean", log_target=True), np.array(0.3), np.array(-0.2)),
    "bce-with-logits-per-class-pos-weight": lambda rng: (
        "BCEWithLogitsLoss", dict(weight=rng.uniform(0.5, 2, (4, 1)), pos_weight=rng.uniform(0.5, 3, 3)),
        3 * rng.standard_normal((4, 3)), rng.integers(0, 2, (4, 3)).astype(float)),
}


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("case", PINNED)
def test_layouts_the_draws_may_miss_match_torch(case, dtype):
    name, values, x, target = PINNED[case](np.random.default_rng(5))
    x = x.astype(dtype)
    compare(name, values, x, target.astype(dtype) if target.dtype.kind == "f" else target)


# -- finite differences -------------------------------------------------------------------------------------------

FINITE_DIFFERENCE_CASES = {
    "CrossEntropyLoss": lambda rng: (dict(weight=rng.uniform(0.5, 2, 4), ignore_index=1, label_smoothing=0.3),
                                     rng.standard_normal((3, 4, 2)), np.array([[0, 1], [2, 3], [1, 3]])),
    "CrossEntropyLoss-probabilities": lambda rng: (dict(weight=rng.uniform(0.5, 2, 4), label_smoothing=0.2,
                                                        reduction="none"), rng.standard_normal((3, 4)),
                                                   rng.dirichlet(np.ones(4), 3)),
    "CrossEntropyLoss-unbatched": lambda rng: (dict(reduction="sum"), rng.standard_normal(5), np.array(2)),
    "NLLLoss": lambda rng: (dict(weight=rng.uniform(0.5, 2, 4), reduction="none"), rng.standard_normal((2, 4, 3)),
                            np.array([[0, 3, -100], [2, 1, 1]])),
    "MSELoss": lambda rng: (dict(), rng.standard_normal((2, 3)), rng.standard_normal((2, 3))),
    "L1Loss": lambda rng: (dict(reduction="none"), rng.standard_normal((2, 3)), rng.standard_normal((2, 3))),
    "SmoothL1Loss": lambda rng: (dict(beta=0.8, reduction="sum"), rng.standard_normal(7), rng.standard_normal(7)),
    "HuberLoss": lambda rng: (dict(delta=0.5), rng.standard_normal((2, 5)), rng.standard_normal((2, 5))),
    "BCELoss": lambda rng: (dict(weight=rng.uniform(0.5, 2, 3)), rng.uniform(0.05, 0.95, (2, 3)),
                            rng.uniform(0, 1, (2, 3))),
    "BCEWithLogitsLoss": lambda rng: (
        dict(weight=rng.uniform(0.5, 2, (2, 1)), pos_weight=rng.uniform(0.5, 3, 3), reduction="none"),
        3 * rng.standard_normal((2, 3)), rng.uniform(0, 1, (2, 3))),
    "KLDivLoss": lambda rng: (dict(reduction="batchmean"), rng.standard_normal((3, 4)), rng.dirichlet(np.ones(4), 3)),
    "KLDivLoss-log-target": lambda rng: (dict(reduction="sum", log_target=True), rng.standard_normal((3, 4)),
                                         rng.standard_normal((3, 4))),
}


@pytest.mark.parametrize("case", FINITE_DIFFERENCE_CASES)
def test_backward_agrees_with_finite_differences(case):
    values, x, target = FINITE_DIFFERENCE_CASES[case](np.random.default_rng(3))
    loss = getattr(nn, case.split("-")[0])(**values).to(np.float64)
    check_layer(WithTarget(loss, target), x, samples=8)


# -- the backward's dy, and what torch's autograd gives -----------------------------------------------------------

@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", LOSSES)
def test_backward_without_dy_is_the_gradient_of_the_loss_and_dy_scales_it(name, dtype):
    values, x, target, _ = draw(name, 0, dtype)
    values = {key: value for key, value in values.items() if key not in ("reduction", "size_average", "reduce")}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        loss, twin = build_pair(name, values, positional=False)
        loss.to(dtype).retain_cache()
        load_into_torch(loss, twin.to(TORCH_DTYPE[np.dtype(dtype)]))
        y = loss(x, target)
        x_t = torch.from_numpy(x.copy()).requires_grad_(True)
        target_t = torch.from_numpy(target.astype(np.int64) if target.dtype.kind in "iu" else target.copy())
        twin(x_t, target_t).backward()
    dx = loss.backward()
    assert dx.dtype == dtype and np.shape(y) == () and y.dtype == dtype
    assert_close(dx, x_t.grad, "dx")
    assert_close(loss.backward(2.5), 2.5 * x_t.grad, "2.5 · dx")


def test_reduction_none_takes_a_dy_of_the_losss_shape():
    loss = nn.MSELoss(reduction="none").retain_cache()
    x = np.arange(6.0).reshape(2, 3)
    loss(x, np.zeros((2, 3)))
    dy = np.arange(6.0).reshape(2, 3)
    np.testing.assert_array_equal(loss.backward(dy), 2 * x * dy)
    np.testing.assert_array_equal(loss.backward(), 2 * x)           # dy None: every element's loss counts once
    with pytest.raises(ValueError, match=re.escape("MSELoss(reduction='none'): backward expected dy of shape (2, 3")):
        loss.backward(np.ones(3))


# -- extreme inputs and torch's edge cases -----------------------------------------------------------------------

@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("values", [dict(), dict(label_smoothing=0.2), dict(weight=np.array([0.5, 2.0, 1.0])),
                                    dict(reduction="none", label_smoothing=0.1)])
def test_cross_entropy_of_extreme_logits_is_finite_and_torchs(values, dtype):
    logits = np.array([[[1e4, -1e4], [-1e4, 1e4], [0.0, 1e4]], [[-1e4, 0.0], [1e4, 1e4], [0.0, -1e4]]], dtype)
    target = np.array([[0, 1], [2, 0]])
    loss = nn.CrossEntropyLoss(**values).to(dtype)
    with np.errstate(over="raise", divide="raise", invalid="raise"):      # underflow to 0 is fine
        y = loss(logits, target)
        dx = loss.backward(np.ones_like(y))
    x_t = torch.from_numpy(logits.copy()).requires_grad_(True)
    twin = torch.nn.CrossEntropyLoss(**{k: torch.from_numpy(v) if isinstance(v, np.ndarray) else v
                                        for k, v in values.items()}).to(TORCH_DTYPE[np.dtype(dtype)])
    y_t = twin(x_t, torch.from_numpy(target))
    y_t.backward(torch.ones_like(y_t))
    assert np.isfinite(y).all() and np.isfinite(dx).all()
    assert_close(y, y_t, "loss")
    assert_close(dx, x_t.grad, "dx")


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("pos_weight", [None, np.array([2.0, 0.5])])
def test_bce_with_logits_of_extreme_logits_is_finite_and_torchs(pos_weight, dtype):
    logits = np.array([[1e4, -1e4], [-1e4, 1e4], [50.0, -50.0]], dtype)
    target = np.array([[1.0, 0.0], [1.0, 0.0], [0.3, 0.7]], dtype)
    loss = nn.BCEWithLogitsLoss(pos_weight=pos_weight).to(dtype)
    with np.errstate(over="raise", divide="raise", invalid="raise"):
        y = loss(logits, target)
        dx = loss.backward()
    x_t = torch.from_numpy(logits.copy()).requires_grad_(True)
    pos_weight_t = None if pos_weight is None else torch.from_numpy(pos_weight.astype(dtype))
    y_t = torch.nn.functional.binary_cross_entropy_with_logits(x_t, torch.from_numpy(target), pos_weight=pos_weight_t)
    y_t.backward()
    assert np.isfinite(y) and np.isfinite(dx).all()
    assert_close(y, y_t, "loss")
    assert_close(dx, x_t.grad, "dx")


def test_bce_clamps_its_logs_at_minus_100_and_guards_its_gradient_as_torch():
    x = np.array([0.0, 1.0, 1e-30, 1 - 1e-8, 0.5])
    target = np.array([1.0, 0.0, 1.0, 0.0, 0.3])
    loss = nn.BCELoss(reduction="none").to(np.float64)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        y = loss(x, target)
        dx = loss.backward(np.ones(5))
    x_t = torch.from_numpy(x.copy()).requires_grad_(True)
    y_t = torch.nn.functional.binary_cross_entropy(x_t, torch.from_numpy(target), reduction="none")
    y_t.backward(torch.ones(5, dtype=torch.float64))
    assert_close(y, y_t, "loss")
    np.testing.assert_allclose(dx, x_t.grad.numpy(), rtol=1e-14)


@pytest.mark.parametrize("name, values", [
    ("CrossEntropyLoss", dict()), ("CrossEntropyLoss", dict(weight=np.array([1.0, 2.0, 3.0]))),
    ("CrossEntropyLoss", dict(label_smoothing=0.2)), ("NLLLoss", dict()),
    ("NLLLoss", dict(weight=np.array([1.0, 2.0, 3.0])))])
def test_every_target_ignored_gives_nan_and_a_zero_gradient_as_torch(name, values):
    x = np.random.default_rng(0).standard_normal((4, 3))
    target = np.full(4, 7)
    loss = getattr(nn, name)(ignore_index=7, **values).to(np.float64)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert np.isnan(loss(x, target))
        np.testing.assert_array_equal(loss.backward(), np.zeros_like(x))
    assert loss.__class__(ignore_index=7, reduction="sum", **values).to(np.float64)(x, target) == 0


def test_class_weights_of_the_targets_summing_to_zero_give_nan_as_torch():
    x = np.random.default_rng(0).standard_normal((3, 4))
    target, weight = np.array([0, 1, 0]), np.array([0.0, 0.0, 1.0, 1.0])
    loss = nn.CrossEntropyLoss(weight=weight).to(np.float64)
    x_t = torch.from_numpy(x.copy()).requires_grad_(True)
    y_t = torch.nn.functional.cross_entropy(x_t, torch.from_numpy(target), torch.from_numpy(weight))
    y_t.backward()
    assert np.isnan(loss(x, target)) and np.isnan(y_t.item())
    assert np.array_equal(np.isnan(loss.backward()), np.isnan(x_t.grad.numpy()))


@pytest.mark.filterwarnings(KL_MEAN)
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("name", LOSSES)
def test_an_empty_batch_gives_what_torch_gives_without_a_warning(name, reduction):
    values, x, target, _ = draw(name, 1, np.float64)
    values = {key: value for key, value in values.items()                 # per-class weights, not broadcast ones
              if key == "ignore_index" or (key == "weight" and name in ("CrossEntropyLoss", "NLLLoss"))}
    if x.ndim < 2 or (name in ("CrossEntropyLoss", "NLLLoss") and x.ndim == 1):
        x, target = x.reshape((1,) + x.shape), target.reshape((1,) + target.shape)
    x, target = x[:0], target[:0]
    loss, twin = build_pair(name, dict(values, reduction=reduction), positional=False)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        warnings.filterwarnings("ignore", "reduction: 'mean' divides")
        y = loss.to(np.float64)(x, target)
        dx = loss.backward(None if reduction != "none" else np.ones(np.shape(y)))
    target_t = torch.from_numpy(target.astype(np.int64) if target.dtype.kind in "iu" else target)
    load_into_torch(loss, twin.double())
    y_t = twin(torch.from_numpy(x), target_t)
    assert np.shape(y) == tuple(y_t.shape) and dx.shape == x.shape
    assert np.isnan(y) if np.isnan(y_t.detach().numpy()).any() else np.array_equal(y, y_t.detach().numpy())


# -- state, caches and warnings -----------------------------------------------------------------------------------

def test_weights_are_buffers_named_as_torch_and_converted_by_to():
    loss = nn.BCEWithLogitsLoss(weight=np.ones(3), pos_weight=[1, 2, 3])
    assert list(loss.state_dict()) == list(torch.nn.BCEWithLogitsLoss(torch.ones(3), pos_weight=torch.ones(3))
                                           .state_dict()) == ["weight", "pos_weight"]
    assert loss.weight.dtype == loss.pos_weight.dtype == np.float32      # juanji's default dtype
    with pytest.raises(TypeError, match=re.escape("weight is float32 but the input is float64; convert the input "
                                                  "or call .to(float64) on the loss")):
        loss(np.zeros(3), np.zeros(3))
    assert loss.to(np.float64)(np.zeros(3), np.zeros(3)).dtype == np.float64
    assert nn.MSELoss().state_dict() == {} and not hasattr(nn.MSELoss(), "weight")


@pytest.mark.parametrize("name", LOSSES)
def test_under_no_grad_nothing_is_kept(name):
    values, x, target, _ = draw(name, 2, np.float64)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        loss = construct(getattr(nn, name), name, values, positional=False).to(np.float64)
        with nn.no_grad():
            loss(x, target)
    assert loss._saved is None
    with pytest.raises(RuntimeError, match="backward called before forward"):
        loss.backward()


@pytest.mark.parametrize("name", [name for name in LOSSES if name != "HuberLoss"])   # Huber has neither
@pytest.mark.parametrize("size_average, reduce", [(None, False), (False, None), (True, True), (False, False)])
def test_size_average_and_reduce_map_to_reduction_with_torchs_warning(name, size_average, reduce):
    with pytest.warns(UserWarning, match="size_average and reduce args will be deprecated"):
        loss = getattr(nn, name)(size_average=size_average, reduce=reduce, reduction="sum")
    with pytest.warns(UserWarning):
        assert loss.reduction == getattr(torch.nn, name)(size_average=size_average, reduce=reduce).reduction


def test_elementwise_mean_is_mean_with_a_warning_and_kl_div_mean_warns_as_torch():
    with pytest.warns(UserWarning, match="elementwise_mean"):
        assert nn.L1Loss(reduction="elementwise_mean").reduction == "mean"
    with pytest.warns(UserWarning, match="'batchmean' divides only by the batch size"):
        nn.KLDivLoss()(np.zeros((2, 3)), np.full((2, 3), 0.5))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        nn.KLDivLoss(reduction="batchmean")(np.zeros((2, 3)), np.full((2, 3), 0.5))


def test_repr_shows_what_differs_from_torchs_defaults():
    assert repr(nn.CrossEntropyLoss()) == "CrossEntropyLoss()"
    assert repr(nn.CrossEntropyLoss([1, 2], ignore_index=0, reduction="sum", label_smoothing=0.1)) == \
        "CrossEntropyLoss(weight=<(2,) array>, ignore_index=0, reduction='sum', label_smoothing=0.1)"
    assert repr(nn.HuberLoss(delta=0.5)) == "HuberLoss(delta=0.5)"


# -- refusals -----------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("make, error_type, fragments", [
    (lambda: nn.CrossEntropyLoss(reduction="avg"), ValueError, ("CrossEntropyLoss", "reduction", "'avg'")),
    (lambda: nn.MSELoss(reduction="batchmean"), ValueError, ("MSELoss", "'batchmean'")),
    (lambda: nn.HuberLoss(reduction=None), ValueError, ("HuberLoss", "reduction", "None")),
    (lambda: nn.L1Loss(size_average="yes"), TypeError, ("L1Loss", "size_average", "'yes'")),
    (lambda: nn.NLLLoss(reduce=2), TypeError, ("NLLLoss", "reduce", "2")),
    (lambda: nn.CrossEntropyLoss(label_smoothing=-0.1), ValueError, ("CrossEntropyLoss", "label_smoothing", "-0.1")),
    (lambda: nn.CrossEntropyLoss(label_smoothing="0.1"), TypeError, ("CrossEntropyLoss", "label_smoothing")),
    (lambda: nn.CrossEntropyLoss(ignore_index=1.5), TypeError, ("CrossEntropyLoss", "ignore_index", "1.5")),
    (lambda: nn.NLLLoss(weight=np.ones((2, 3))), ValueError, ("NLLLoss", "weight", "(C,)", "(2, 3)")),
    (lambda: nn.CrossEntropyLoss(weight=["a", "b"]), TypeError, ("CrossEntropyLoss", "weight", "<U1")),
    (lambda: nn.BCEWithLogitsLoss(pos_weight=np.array([True])), TypeError, ("BCEWithLogitsLoss", "pos_weight")),
    (lambda: nn.SmoothL1Loss(beta=-1), ValueError, ("SmoothL1Loss", "beta", "≥ 0", "-1")),
    (lambda: nn.HuberLoss(delta=0), ValueError, ("HuberLoss", "delta", "> 0", "0")),
    (lambda: nn.KLDivLoss(log_target="yes"), TypeError, ("KLDivLoss", "log_target", "'yes'")),
])
def test_bad_arguments_are_refused_at_construction(make, error_type, fragments):
    with pytest.raises(error_type, match="(?s)" + ".*".join(re.escape(f) for f in fragments)):
        make()


def bad(loss, x, target, error_type, *fragments):
    with pytest.raises(error_type, match="(?s)" + ".*".join(re.escape(f) for f in (repr(loss),) + fragments)):
        loss(x, target)


def test_class_targets_are_checked():
    x = np.zeros((2, 3, 4))
    ce = nn.CrossEntropyLoss(ignore_index=9)
    bad(ce, x, np.zeros((2, 3), np.int64), ValueError, "(2, 3, 4)", "(N, C, d1, ...)", "(2, 4)", "got (2, 3)")
    bad(ce, x, np.zeros((2, 4)), TypeError, "integers", "float64", "(2, 3, 4)")
    bad(ce, x, np.array([[0, 1, 3, 9], [9, 2, 1, 0]]), ValueError, "class index 3", "3 classes", "0..2",
        "ignore_index=9")
    bad(ce, x, np.zeros((2, 4), bool), TypeError, "integers", "bool")
    bad(ce, x, np.full(x.shape, 0.25), ValueError, "ignore_index (9)", "class-probability")
    bad(ce, np.zeros(()), np.zeros((), np.int64), ValueError, "(C,), (N, C) or (N, C, d1, ...)", "0-d")
    bad(nn.NLLLoss(), np.zeros((2, 3)), np.zeros((2, 3)), TypeError, "integers", "float64")
    bad(nn.NLLLoss(), np.zeros(3), np.array([0]), ValueError, "target of shape ()", "got (1,)")
    bad(nn.CrossEntropyLoss(weight=np.ones(4)).to(np.float64), np.zeros((2, 3)), np.zeros(2, np.int64), ValueError,
        "weight has 4 entries", "3 classes")


def test_inputs_and_targets_are_checked():
    bad(nn.MSELoss(), [1.0, 2.0], np.zeros(2), TypeError, "NumPy array", "list")
    bad(nn.L1Loss(), np.zeros(2, np.int64), np.zeros(2), TypeError, "floating-point input", "int64")
    bad(nn.MSELoss(), np.zeros((3, 1)), np.zeros(3), ValueError, "input's shape (3, 1)", "got (3,)")
    bad(nn.SmoothL1Loss(), np.zeros(3), np.zeros(3, np.int64), TypeError, "floating-point target", "int64")
    bad(nn.BCELoss(), np.array([0.5, 1.5]), np.zeros(2), ValueError, "between 0 and 1", "BCEWithLogitsLoss")
    bad(nn.BCELoss(np.ones(3)).to(np.float64), np.zeros((2, 2)), np.zeros((2, 2)), ValueError,
        "weight of shape (3,)", "(2, 2)")
    bad(nn.BCEWithLogitsLoss(pos_weight=np.ones((4, 1, 2))).to(np.float64), np.zeros((3, 2)), np.zeros((3, 2)),
        ValueError, "pos_weight of shape (4, 1, 2)", "(3, 2)")
    bad(nn.KLDivLoss(reduction="sum"), np.zeros(3), np.zeros(4), ValueError, "(3,)", "(4,)")


def test_the_signatures_are_torchs_with_nothing_added():
    for name in LOSSES:
        assert torch_names(name) == [p for p in inspect.signature(getattr(nn, name)).parameters]


def test_warnings_point_at_the_users_line_as_torchs():
    with pytest.warns(UserWarning, match="size_average and reduce") as caught:
        nn.CrossEntropyLoss(reduce=False)
    with pytest.warns(UserWarning, match="'batchmean' divides only") as later:
        nn.KLDivLoss()(np.zeros(2), np.full(2, 0.5))
    assert caught[0].filename == later[0].filename == __file__
