"""In-memory datasets: ``ArrayDataset`` holds images and labels, ``load_mnist`` fills one from IDX files.

Works for MNIST, Fashion-MNIST and anything else shipped in the same four-file IDX layout.
"""
import os

import numpy as np

from juanji.data.idx import read_idx
from juanji.limits import memory_budget

FASHION_MNIST_CLASSES = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
                         "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"]
MNIST_CLASSES = [str(digit) for digit in range(10)]
DEFAULT_DATA_DIR = "/usr/share/datasets/fashion-mnist"  # Debian package dataset-fashion-mnist


class ArrayDataset:
    """Images (N, C, H, W) float32 with labels (N,) int64 in [0, len(classes)).

    ``dataset[i]`` is one (image (C, H, W), label); ``dataset[index_array]`` is a whole batch
    (images (B, C, H, W), labels (B,)) gathered in one fancy-indexing step.
    """

    def __init__(self, images, labels, classes):
        images = np.ascontiguousarray(images, dtype=np.float32)
        labels = np.asarray(labels)
        if images.ndim != 4:
            raise ValueError(f"images must have shape (N, C, H, W), got {images.shape}")
        if labels.ndim != 1 or not np.issubdtype(labels.dtype, np.integer):
            raise ValueError(f"labels must be a 1-d integer array, got shape {labels.shape} dtype {labels.dtype}")
        if len(images) != len(labels):
            raise ValueError(f"{len(images)} images but {len(labels)} labels")
        bad = labels[(labels < 0) | (labels >= len(classes))]
        if bad.size:
            raise ValueError(f"label {bad[0]} out of range: {len(classes)} classes allow labels 0..{len(classes) - 1}")
        self.images = images
        self.labels = labels.astype(np.int64)
        self.classes = list(classes)

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, index):
        return self.images[index], self.labels[index]


def load_mnist(root=None, train=True, limit=None, classes=None) -> ArrayDataset:
    """Load the training (60000) or test (t10k, 10000) split of an MNIST-format directory.

    ``root`` defaults to $JUANJI_DATA, else DEFAULT_DATA_DIR. Files may be raw or ``.gz``. Images come
    back as float32 in [0, 1], shape (N, 1, 28, 28); ``limit`` keeps the first ``limit`` samples.
    Class names: ``classes`` if given, else the lines of ``root/classes.txt``, else Fashion-MNIST's
    names when the directory name contains "fashion", else the digits.
    """
    if limit is not None and limit < 0:
        raise ValueError(f"limit must be >= 0, got {limit}")
    if root is None:
        root = os.environ.get("JUANJI_DATA") or DEFAULT_DATA_DIR
    split = "train" if train else "t10k"
    images_path, labels_path = _find_files(root, [f"{split}-images-idx3-ubyte", f"{split}-labels-idx1-ubyte"])

    # uint8 pixels become float32: the file's pixels may take a fifth of the memory budget
    images, labels = read_idx(images_path, memory_budget() // 5), read_idx(labels_path)
    if images.ndim != 3 or images.dtype != np.uint8:
        raise ValueError(f"{images_path}: expected uint8 images of shape (N, rows, cols), "
                         f"got {images.dtype} {images.shape}")
    if labels.ndim != 1:
        raise ValueError(f"{labels_path}: expected labels of shape (N,), got {labels.shape}")
    if len(images) != len(labels):
        raise ValueError(f"image/label count mismatch: {images_path} has {len(images)} images "
                         f"but {labels_path} has {len(labels)} labels")

    images, labels = images[:limit], labels[:limit]  # slice before converting: limit saves memory too
    pixels = images[:, np.newaxis].astype(np.float32)  # add the channel axis: (N, 1, rows, cols)
    pixels /= 255
    return ArrayDataset(pixels, labels, classes if classes is not None else _class_names(root))


def _find_files(root, base_names):
    """The path of each base name in ``root``, raw or ``.gz``; FileNotFoundError lists what was tried."""
    found, tried = [], []
    for base_name in base_names:
        candidates = [os.path.join(root, base_name), os.path.join(root, base_name + ".gz")]
        existing = [path for path in candidates if os.path.isfile(path)]
        if existing:
            found.append(existing[0])
        else:
            tried.extend(candidates)
    if tried:
        where = (f"{root}, which is a file, not a folder" if os.path.isfile(root) else root if os.path.isdir(root)
                 else f"{root}, which does not exist")
        raise FileNotFoundError(
            f"no MNIST-format data in {where}: looked for {', '.join(os.path.basename(p) for p in tried)}; "
            f"pass --data a folder of IDX files or of class sub-folders of images, or install Fashion-MNIST "
            f"(apt-get install dataset-fashion-mnist)")
    return found


def _class_names(root):
    classes_file = os.path.join(root, "classes.txt")
    if os.path.isfile(classes_file):
        with open(classes_file, encoding="utf-8") as file:
            return [line.strip() for line in file if line.strip()]
    directory_name = os.path.basename(os.path.abspath(root)).lower()
    return FASHION_MNIST_CLASSES if "fashion" in directory_name else MNIST_CLASSES
