"""The loss kernels: the fused cross-entropy and the stable BCE-with-logits against their slow references (one
sample and one class at a time, forward and backward), dtype in = dtype out for every kernel, inputs never
written to, and extreme logits without overflow.  (The kernels against torch: tests/nn/test_loss.py.)"""
import numpy as np
import pytest

from closeness import DTYPES, assert_close
from juanji.functional import loss as L


def draw_cross_entropy(seed):
    """Logits of rank 1 to 4 and a target (indices with some ignored, or probabilities), with random weight,
    ignore_index, smoothing and reduction."""
    rng = np.random.default_rng(seed)
    n_classes, rank = int(rng.integers(2, 6)), int(rng.integers(1, 5))
    shape = (n_classes,) if rank == 1 else (int(rng.integers(1, 4)), n_classes) + tuple(
        int(s) for s in rng.integers(1, 4, rank - 2))
    x = rng.standard_normal(shape) * 4
    loss_shape = shape[:1] + shape[2:] if rank > 1 else ()
    weight = rng.uniform(0.2, 2, n_classes) if rng.random() < 0.5 else None
    ignore_index = int(rng.choice([-100, int(rng.integers(n_classes))]))
    if rng.random() < 0.3:
        target = np.moveaxis(rng.dirichlet(np.ones(n_classes), loss_shape), -1, 1 if rank > 1 else 0)
        ignore_index = -100
    else:
        target = np.asarray(rng.integers(0, n_classes, loss_shape))
        target.flat[0] = (ignore_index + 1) % n_classes
    smoothing = float(rng.choice([0.0, rng.uniform(0, 1)]))
    reduction = str(rng.choice(L.REDUCTIONS))
    dy = rng.standard_normal(loss_shape) if reduction == "none" else rng.standard_normal()
    return x, target, dict(label_smoothing=smoothing, weight=weight, ignore_index=ignore_index,
                           reduction=reduction), dy


@pytest.mark.parametrize("seed", range(16))
def test_cross_entropy_matches_its_reference(seed):
    x, target, kwargs, dy = draw_cross_entropy(seed)
    loss, cache = L.cross_entropy(x, target, **kwargs)
    assert_close(loss, L.cross_entropy_reference(x, target, **kwargs), "loss")
    assert_close(L.cross_entropy_backward(cache, dy), L.cross_entropy_backward_reference(x, target, **kwargs, dy=dy),
                 "dx")


@pytest.mark.parametrize("seed", range(16))
def test_nll_of_log_softmax_is_cross_entropy(seed):
    x, target, kwargs, dy = draw_cross_entropy(seed)
    del kwargs["label_smoothing"]                                   # NLL has none
    axis = 1 if x.ndim > 1 else 0
    if target.dtype.kind == "f":                                    # nor probability targets
        target = np.asarray(np.argmax(target, axis=axis))
    logp = x - np.log(np.exp(x).sum(axis=axis, keepdims=True))
    loss, cache = L.nll_loss(logp, target, **kwargs)
    assert_close(loss, L.cross_entropy_reference(x, target, **kwargs), "loss")
    dlogp = L.nll_loss_backward(cache, dy)
    dx = dlogp - np.exp(logp) * dlogp.sum(axis=axis, keepdims=True)     # through log softmax
    assert_close(dx, L.cross_entropy_backward_reference(x, target, **kwargs, dy=dy), "dx")


@pytest.mark.parametrize("reduction", L.REDUCTIONS)
def test_bce_with_logits_matches_its_reference(reduction):
    rng = np.random.default_rng(1)
    x, target = rng.standard_normal((3, 4)) * 5, rng.uniform(0, 1, (3, 4))
    weight, pos_weight = rng.uniform(0.5, 2, (3, 1)), rng.uniform(0.5, 3, 4)
    loss, _ = L.binary_cross_entropy_with_logits(x, target, weight, pos_weight, reduction)
    assert_close(loss, L.binary_cross_entropy_with_logits_reference(x, target, weight, pos_weight, reduction), "loss")


def kernel_calls(dtype):
    """(name, forward, backward, input, target, kwargs), target and weights in float64 whatever ``dtype``."""
    rng = np.random.default_rng(0)
    x = rng.standard_normal((3, 4, 2)).astype(dtype)
    t = rng.uniform(0, 1, (3, 4, 2))
    labels, w = rng.integers(0, 4, (3, 2)), rng.uniform(0.5, 2, 4)
    probabilities = rng.uniform(0.05, 0.95, (3, 4, 2)).astype(dtype)
    return [
        ("cross_entropy", L.cross_entropy, L.cross_entropy_backward, x, labels, dict(label_smoothing=0.1, weight=w)),
        ("cross_entropy-probabilities", L.cross_entropy, L.cross_entropy_backward, x, t, dict(weight=w)),
        ("nll_loss", L.nll_loss, L.nll_loss_backward, x, labels, dict(weight=w)),
        ("mse_loss", L.mse_loss, L.mse_loss_backward, x, t, dict(weight=t)),
        ("l1_loss", L.l1_loss, L.l1_loss_backward, x, t, dict()),
        ("smooth_l1_loss", L.smooth_l1_loss, L.smooth_l1_loss_backward, x, t, dict(beta=0.5)),
        ("huber_loss", L.huber_loss, L.huber_loss_backward, x, t, dict(delta=0.5, weight=t)),
        ("binary_cross_entropy", L.binary_cross_entropy, L.binary_cross_entropy_backward, probabilities, t,
         dict(weight=t[0])),
        ("binary_cross_entropy_with_logits", L.binary_cross_entropy_with_logits,
         L.binary_cross_entropy_with_logits_backward, x, t, dict(weight=t, pos_weight=w[None, :, None])),
        ("kl_div", L.kl_div, L.kl_div_backward, x, t, dict(reduction="batchmean")),
        ("kl_div-log-target", L.kl_div, L.kl_div_backward, x, np.log(t), dict(log_target=True)),
    ]


@pytest.mark.parametrize("reduction", ["none", "sum", "default"])
@pytest.mark.parametrize("dtype", DTYPES)
def test_every_kernel_keeps_the_inputs_dtype_and_leaves_its_arguments_alone(dtype, reduction):
    for name, forward, backward, x, target, kwargs in kernel_calls(dtype):
        if reduction != "default":
            kwargs = dict(kwargs, reduction=reduction)
        arguments = [x, target] + list(kwargs.values())
        before = [np.array(a, copy=True) for a in arguments]
        loss, cache = forward(x, target, **kwargs)
        dy = np.ones(np.shape(loss)) if reduction == "none" else 1.0      # a float64 dy, too
        dx = backward(cache, dy)
        assert np.asarray(loss).dtype == dtype and dx.dtype == dtype and dx.shape == x.shape, name
        for a, b in zip(arguments, before):
            np.testing.assert_array_equal(a, b, err_msg=name)


@pytest.mark.parametrize("dtype", DTYPES)
def test_extreme_logits_neither_overflow_nor_give_nan(dtype):
    x = np.array([[1e4, -1e4, 0.0], [-1e4, 1e4, 1e4]], dtype)
    with np.errstate(over="raise", divide="raise", invalid="raise"):
        for smoothing in (0.0, 0.3):
            loss, cache = L.cross_entropy(x, np.array([1, 0]), smoothing, np.array([1.0, 2.0, 0.5]))
            assert np.isfinite(loss) and np.isfinite(L.cross_entropy_backward(cache)).all()
        loss, cache = L.binary_cross_entropy_with_logits(x, np.full(x.shape, 0.5, dtype), pos_weight=np.full(3, 2.0))
        assert np.isfinite(loss) and np.isfinite(L.binary_cross_entropy_with_logits_backward(cache)).all()
    np.testing.assert_allclose(L.log_sigmoid(np.array([-1e4, 0.0, 1e4], dtype)), [-1e4, np.log(0.5), 0.0], rtol=1e-7)
