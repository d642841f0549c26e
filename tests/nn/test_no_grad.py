"""no_grad(): same outputs, no cache for backward, and the layer's own column memory left alone."""
import numpy as np
import pytest

from juanji import models, nn
from juanji.train import evaluate


def test_no_grad_gives_the_same_output_and_keeps_no_cache():
    rng = np.random.default_rng(0)
    for layer, shape in ((nn.Conv2d(3, 4, 3, padding=1), (2, 3, 6, 6)), (nn.Conv1d(3, 4, 3), (2, 3, 9))):
        x = rng.standard_normal(shape, dtype=np.float32)
        with nn.no_grad():
            assert not nn.is_grad_enabled()
            y = layer(x)
        assert nn.is_grad_enabled()
        assert layer._workspace.nbytes() == 0          # the columns went to scratch memory
        with pytest.raises(RuntimeError, match="backward called before forward.*no_grad"):
            layer.backward(np.ones_like(y))
        np.testing.assert_array_equal(layer(x), y)
        assert layer._workspace.nbytes() > 0
        assert layer.backward(np.ones_like(y)).shape == shape


def test_no_grad_is_left_on_an_exception():
    with pytest.raises(ValueError):
        with nn.no_grad():
            raise ValueError("inside")
    assert nn.is_grad_enabled()


def test_evaluate_runs_without_grad_and_training_goes_on():
    """evaluate() leaves the layers' own memory at the training batch's size and backward still works."""
    rng = np.random.default_rng(1)
    model = models.create("lenet5")
    x, labels = rng.standard_normal((4, 1, 28, 28), dtype=np.float32), rng.integers(0, 10, 4)
    loss_fn = nn.CrossEntropyLoss()
    loss_fn(model(x), labels)
    model.backward(loss_fn.backward())
    held = sum(m._workspace.nbytes() for m in model.modules() if isinstance(m, nn.Conv2d))
    big = [(rng.standard_normal((64, 1, 28, 28), dtype=np.float32), rng.integers(0, 10, 64))]
    result = evaluate(model, big)
    assert 0 <= result["accuracy"] <= 1 and model.training
    assert sum(m._workspace.nbytes() for m in model.modules() if isinstance(m, nn.Conv2d)) == held
    loss_fn(model(x), labels)
    model.backward(loss_fn.backward())
