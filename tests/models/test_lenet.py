"""LeNet-5's classifier is sized from its layers' own output shapes: every input size from the smallest
allowed runs forward and backward, and a smaller one is refused with the limit."""
import numpy as np
import pytest

from juanji import models


@pytest.mark.parametrize("name", ["lenet5", "lenet5-classic"])
@pytest.mark.parametrize("size", [12, 13, 15, 28, 31, 32, 45])
def test_every_input_size_fits_the_classifier(name, size):
    model = models.create(name, input_size=size)
    y = model(np.zeros((2, 1, size, size), np.float32))
    assert y.shape == (2, 10)
    assert model.backward(np.ones_like(y)).shape == (2, 1, size, size)


def test_too_small_an_input_is_refused():
    with pytest.raises(ValueError, match=r"^LeNet-5 needs inputs of at least 12×12 pixels, got 11$"):
        models.create("lenet5", input_size=11)
