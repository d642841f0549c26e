"""Shared fixtures of the picture tests: a tiny trained LeNet-5 run and a Fashion-MNIST test image file."""
import numpy as np
import pytest
from PIL import Image

from juanji.data import load_mnist
from juanji.train import Trainer, TrainConfig


@pytest.fixture(scope="session")
def tiny_run(tmp_path_factory):
    """A LeNet-5 run directory trained for 1 epoch on 2,000 Fashion-MNIST images (a weak but trained model)."""
    out = tmp_path_factory.mktemp("viz") / "tiny"
    Trainer(TrainConfig(epochs=1, limit=2000, out=str(out)), progress=False).fit()
    return out


@pytest.fixture(scope="session")
def boot_png(tmp_path_factory):
    """The first Fashion-MNIST test image (an ankle boot) as a 28×28 PNG file."""
    image = load_mnist(train=False, limit=1).images[0, 0]
    path = tmp_path_factory.mktemp("images") / "boot.png"
    Image.fromarray((image * 255).round().astype(np.uint8)).save(path)
    return path

