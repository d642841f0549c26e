"""ArrayDataset checks and load_mnist on the real Fashion-MNIST files and on small IDX directories written here."""
import os

import numpy as np
import pytest

from juanji.data.datasets import (FASHION_MNIST_CLASSES, MNIST_CLASSES, ArrayDataset,
                                  load_mnist)
from juanji.data.idx import IDXError, write_idx



def test_load_real_fashion_mnist(monkeypatch):
    monkeypatch.delenv("JUANJI_DATA", raising=False)  # test the built-in default directory
    train = load_mnist(limit=100)
    assert train.images.shape == (100, 1, 28, 28) and train.images.dtype == np.float32
    assert train.labels.shape == (100,) and train.labels.dtype == np.int64
    assert np.min(train.images) == 0 and np.max(train.images) == 1
    assert train.classes == FASHION_MNIST_CLASSES
    image, label = train[0]
    assert image.shape == (1, 28, 28) and label == 9 and train.classes[label] == "Ankle boot"

    test = load_mnist(train=False)
    assert len(test) == 10000 and test.images.shape == (10000, 1, 28, 28)
    assert set(np.unique(test.labels)) == set(range(10))


def make_mnist_dir(directory, count=12, label_count=None, compressed=True, split="train"):
    """Write a tiny MNIST-format split whose image k is filled with the value k and labelled k % 10."""
    directory.mkdir(parents=True, exist_ok=True)
    suffix = ".gz" if compressed else ""
    images = np.repeat(np.arange(count, dtype=np.uint8), 28 * 28).reshape(count, 28, 28)
    labels = np.arange(count if label_count is None else label_count, dtype=np.uint8) % 10
    write_idx(directory / f"{split}-images-idx3-ubyte{suffix}", images)
    write_idx(directory / f"{split}-labels-idx1-ubyte{suffix}", labels)
    return directory


@pytest.mark.parametrize("compressed", [False, True], ids=["raw", "gz"])
def test_load_small_directory(tmp_path, compressed):
    root = make_mnist_dir(tmp_path / "digits", compressed=compressed)
    dataset = load_mnist(root)
    assert dataset.images.shape == (12, 1, 28, 28)
    np.testing.assert_array_equal(dataset.images[:, 0, 5, 5], np.arange(12, dtype=np.float32) / 255)
    np.testing.assert_array_equal(dataset.labels, np.arange(12) % 10)
    assert dataset.classes == MNIST_CLASSES  # "digits" does not contain "fashion"


def test_full_brightness_is_one(tmp_path):
    root = make_mnist_dir(tmp_path / "m", count=256)
    assert load_mnist(root).images[255].max() == 1.0


def test_limit_and_test_split(tmp_path):
    root = make_mnist_dir(tmp_path / "m", split="t10k")
    dataset = load_mnist(root, train=False, limit=5)
    assert len(dataset) == 5 and dataset.labels.tolist() == [0, 1, 2, 3, 4]
    with pytest.raises(ValueError, match="limit"):
        load_mnist(root, train=False, limit=-1)


def test_class_names(tmp_path):
    fashion = make_mnist_dir(tmp_path / "My-Fashion-Data")
    assert load_mnist(fashion).classes == FASHION_MNIST_CLASSES
    assert load_mnist(fashion, classes=list("abcdefghij")).classes == list("abcdefghij")
    (fashion / "classes.txt").write_text("\n".join(f"class {k}" for k in range(10)) + "\n")
    assert load_mnist(fashion).classes == [f"class {k}" for k in range(10)]


def test_environment_variable_sets_default_root(tmp_path, monkeypatch):
    root = make_mnist_dir(tmp_path / "elsewhere", count=3)
    monkeypatch.setenv("JUANJI_DATA", str(root))
    assert len(load_mnist()) == 3


@pytest.mark.parametrize("kind", ["missing", "file", "empty folder"])
def test_missing_data_is_one_line_naming_the_files_and_the_remedy(tmp_path, kind):
    root = tmp_path / "nowhere"
    if kind == "file":
        root.write_text("not a folder")
    elif kind == "empty folder":
        root.mkdir()
    with pytest.raises(FileNotFoundError) as caught:
        load_mnist(root)
    message = str(caught.value)
    assert "\n" not in message and message.startswith(f"no MNIST-format data in {root}")
    assert {"missing": ", which does not exist:", "file": ", which is a file, not a folder:",
            "empty folder": f"{root}: looked for"}[kind] in message
    assert "train-images-idx3-ubyte, train-images-idx3-ubyte.gz, train-labels-idx1-ubyte" in message
    assert "apt-get install dataset-fashion-mnist" in message and "class sub-folders of images" in message


def test_missing_labels_lists_only_label_paths(tmp_path):
    root = make_mnist_dir(tmp_path / "m")
    os.remove(root / "train-labels-idx1-ubyte.gz")
    with pytest.raises(FileNotFoundError) as caught:
        load_mnist(root)
    message = str(caught.value)
    assert "train-labels-idx1-ubyte.gz" in message and "train-images" not in message


def test_image_label_count_mismatch_names_both_files(tmp_path):
    root = make_mnist_dir(tmp_path / "m", count=12, label_count=11)
    with pytest.raises(ValueError) as caught:
        load_mnist(root)
    message = str(caught.value)
    assert "mismatch" in message and "12 images" in message and "11 labels" in message
    assert str(root / "train-images-idx3-ubyte.gz") in message and str(root / "train-labels-idx1-ubyte.gz") in message


def test_damaged_file_error_names_it(tmp_path):
    root = make_mnist_dir(tmp_path / "m")
    (root / "train-labels-idx1-ubyte.gz").write_bytes(b"\x00\x00\x08\x01\x00\x00\x00\x0c" + bytes(5))
    with pytest.raises(IDXError, match=r"train-labels-idx1-ubyte\.gz: truncated"):
        load_mnist(root)


def test_array_dataset_checks():
    images = np.zeros((4, 1, 2, 2))
    dataset = ArrayDataset(images, np.array([0, 1, 2, 1], dtype=np.uint8), ["a", "b", "c"])
    assert dataset.images.dtype == np.float32 and dataset.labels.dtype == np.int64 and len(dataset) == 4
    batch_images, batch_labels = dataset[np.array([3, 0])]
    assert batch_images.shape == (2, 1, 2, 2) and batch_labels.tolist() == [1, 0]

    with pytest.raises(ValueError, match="4 images but 3 labels"):
        ArrayDataset(images, [0, 1, 2], ["a", "b", "c"])
    with pytest.raises(ValueError, match="label 3 out of range: 3 classes allow labels 0..2"):
        ArrayDataset(images, [0, 1, 3, 1], ["a", "b", "c"])
    with pytest.raises(ValueError, match="label -1 out of range"):
        ArrayDataset(images, [0, -1, 2, 1], ["a", "b", "c"])
    with pytest.raises(ValueError, match=r"\(N, C, H, W\)"):
        ArrayDataset(np.zeros((4, 2, 2)), [0, 1, 2, 1], ["a", "b", "c"])
    with pytest.raises(ValueError, match="integer"):
        ArrayDataset(images, [0.0, 1.5, 2.0, 1.0], ["a", "b", "c"])
