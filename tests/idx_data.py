"""A small MNIST-layout data folder for tests that train: random 28×28 images in IDX files."""
import numpy as np

from juanji.data import write_idx


def idx_folder(path, count=32, labels=None):
    """An MNIST-layout folder of ``count`` random 28×28 training and test images (seed 0), labelled at random
    or, in both splits, by the array ``labels`` as given (a wrong one for the bad-input tests)."""
    path.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    for split in ("train", "t10k"):
        write_idx(path / f"{split}-images-idx3-ubyte", rng.integers(0, 256, (count, 28, 28)).astype(np.uint8))
        write_idx(path / f"{split}-labels-idx1-ubyte",
                  rng.integers(0, 10, count).astype(np.uint8) if labels is None else labels)
    return path
