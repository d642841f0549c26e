"""Data for the MPI tests: small IDX folders cut from Fashion-MNIST, so that a job starts in seconds."""
from __future__ import annotations

import numpy as np
import pytest

from juanji.data import load_mnist
from juanji.data.idx import write_idx


def fashion_folder(root, first: int, train: int = 400, test: int = 200):
    """``root`` holding Fashion-MNIST's training images first … first + train − 1 and as many test images
    from the same offset, as IDX files (the data set a folder of ``--data`` gives)."""
    root.mkdir(parents=True, exist_ok=True)
    for split, is_train, count in (("train", True, train), ("t10k", False, test)):
        dataset = load_mnist(train=is_train, limit=first + count)
        write_idx(root / f"{split}-images-idx3-ubyte",
                  np.rint(dataset.images[first:, 0] * 255).astype(np.uint8))
        write_idx(root / f"{split}-labels-idx1-ubyte", dataset.labels[first:].astype(np.uint8))
    return root


@pytest.fixture(scope="session")
def small_fashion(tmp_path_factory):
    """400 training and 200 test images of Fashion-MNIST: data for quick runs."""
    return fashion_folder(tmp_path_factory.mktemp("fashion-small"), 0)


@pytest.fixture(scope="session")
def other_small_fashion(tmp_path_factory):
    """As ``small_fashion``, of the same shapes and classes, but the next 400 and 200 images."""
    return fashion_folder(tmp_path_factory.mktemp("fashion-other"), 400)
