"""StochasticDepth against torchvision's ``ops.stochastic_depth`` (written out below: torchvision is not installed
beside this torch), fed the same Bernoulli draws; then its masks' statistics, reproducibility from juanji.random,
finite differences in training mode, and refused arguments."""
import numpy as np
import pytest
import torch

from finite_difference import check_gradients
from juanji import random as jrandom
from juanji.nn.stochastic_depth import StochasticDepth
from layer_check import DTYPES, compare_with_torch


class TorchStochasticDepth(torch.nn.Module):
    """torchvision.ops.stochastic_depth line by line; only ``noise.bernoulli_(survival_rate)`` reads its Bernoulli
    draws (u ≥ p, u ~ U[0, 1)) from a NumPy generator, which the juanji layer under test is given a twin of."""

    def __init__(self, p, mode, rng):
        super().__init__()
        self.p, self.mode, self.rng = p, mode, rng

    def forward(self, input):
        if not self.training or self.p == 0.0:
            return input
        survival_rate = 1.0 - self.p
        size = [input.shape[0]] + [1] * (input.ndim - 1) if self.mode == "row" else [1] * input.ndim
        dtype = torch.empty(0, dtype=input.dtype).numpy().dtype
        noise = torch.from_numpy((self.rng.random(size, dtype=dtype) >= self.p).astype(dtype))
        if survival_rate > 0.0:
            noise.div_(survival_rate)
        return input * noise


@pytest.mark.parametrize("train", [True, False], ids=["train", "eval"])
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("mode", ["row", "batch"])
@pytest.mark.parametrize("p", [0.3, 0.0, 1.0])
def test_stochastic_depth_matches_torchvision(p, mode, dtype, train):
    layer = StochasticDepth(p, mode, rng=np.random.default_rng(3)).train(train)
    twin = TorchStochasticDepth(p, mode, np.random.default_rng(3))
    x = np.random.default_rng(0).standard_normal((8, 3, 4, 5)).astype(dtype)
    compare_with_torch(layer, twin, x, steps=3)


@pytest.mark.parametrize("p", [0.2, 0.7])
def test_row_mode_drops_whole_samples_with_probability_p_and_scales_the_rest(p):
    """Keep rate 1 − p within 5 standard errors over 4000 samples; each sample kept whole, scaled by exactly
    1/(1 − p), or zero whole."""
    y = StochasticDepth(p, "row", rng=np.random.default_rng(1))(np.ones((4000, 2, 3, 3)))
    first = y[:, :1, :1, :1]
    assert (y == first).all()
    assert set(np.unique(first)) <= {0.0, 1 / (1 - p)}
    kept = (first != 0).mean()
    assert abs(kept - (1 - p)) <= 5 * np.sqrt(p * (1 - p) / len(y))


def test_batch_mode_keeps_or_drops_the_whole_batch():
    layer = StochasticDepth(0.5, "batch", rng=np.random.default_rng(2))
    outcomes = {float(np.unique(layer(np.ones((3, 4)))).item()) for _ in range(40)}
    assert outcomes == {0.0, 2.0}


def test_masks_come_from_juanji_random_so_a_resumed_run_draws_the_same():
    layer = StochasticDepth(0.5, "row")
    x = np.ones((64, 3), dtype=np.float32)
    jrandom.seed(11)
    state = jrandom.get_state()
    first = [layer(x) for _ in range(3)]
    jrandom.set_state(state)
    again = [layer(x) for _ in range(3)]
    assert all(np.array_equal(a, b) for a, b in zip(first, again))
    assert not np.array_equal(first[0], first[1])


def test_eval_is_the_identity():
    x = np.random.default_rng(0).standard_normal((4, 3))
    layer = StochasticDepth(0.9, "row").eval()
    assert layer(x) is x
    assert layer.backward(x) is x


@pytest.mark.parametrize("mode", ["row", "batch"])
def test_finite_differences_in_training(mode):
    layer = StochasticDepth(0.4, mode)
    x = np.random.default_rng(0).standard_normal((6, 2, 3, 3))
    dy = np.random.default_rng(1).standard_normal(x.shape)

    def outputs(x):                         # the same mask at every evaluation: a fixed function to differentiate
        layer.rng = np.random.default_rng(5)
        return [layer(x)]

    check_gradients(layer, x, outputs, [dy], lambda: layer.backward(dy))


def test_refused_arguments():
    with pytest.raises(ValueError, match="mode must be 'row' or 'batch', got 'sample'"):
        StochasticDepth(0.1, "sample")
    with pytest.raises(ValueError, match=r"StochasticDepth: p \(the probability of a zero\) must be in \[0, 1\]"):
        StochasticDepth(1.5, "row")
    with pytest.raises(ValueError, match="expected an input of shape"):
        StochasticDepth(0.1, "row")(np.array(1.0))
    assert repr(StochasticDepth(0.25, "row")) == "StochasticDepth(p=0.25, mode=row)"
