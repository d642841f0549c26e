"""Datasets in arrays: ``ArrayDataset`` holds images and labels, ``load_mnist`` fills one from IDX files.

Images kept as uint8 pixels become floats batch by batch, so a data set read from a file can stay a memory
map of it, one copy in the page cache for every process.  ``load_mnist`` works for MNIST, Fashion-MNIST and
anything else shipped in the same four-file IDX layout.
"""
from __future__ import annotations

import functools
import os

import numpy as np

from juanji.data.idx import map_idx, read_idx
from juanji.limits import memory_budget

FASHION_MNIST_CLASSES = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
                         "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"]
MNIST_CLASSES = [str(digit) for digit in range(10)]
DEFAULT_DATA_DIR = "/usr/share/datasets/fashion-mnist"  # Debian package dataset-fashion-mnist
CHUNK_VALUES = 1 << 21  # values converted at a time where a whole data set is read (statistics, masks)


def stored_images(images, dtype=np.float32) -> np.ndarray:
    """(N, C, H, W) images as a data set keeps them: uint8 pixels as they are (not copied: a memory map stays
    one), anything else as a contiguous ``dtype`` array; ValueError for another shape."""
    if not (isinstance(images, np.ndarray) and images.dtype == np.uint8):
        images = np.ascontiguousarray(images, dtype=dtype)
    if images.ndim != 4:
        raise ValueError(f"images must have shape (N, C, H, W), got {images.shape}")
    return images


def as_float(images: np.ndarray, dtype=np.float32) -> np.ndarray:
    """Stored images as the network takes them: uint8 pixels p become p / 255 in ``dtype`` (float32: the very
    values ``p.astype(np.float32) / 255`` holds), floats are returned as they are."""
    return np.divide(images, 255, dtype=dtype) if images.dtype == np.uint8 else images


def float_chunks(images: np.ndarray, dtype=np.float32):
    """Stored images (N, C, H, W) as float batches of about CHUNK_VALUES values, in order: a whole data set
    read without converting it whole."""
    rows = max(1, CHUNK_VALUES // max(1, int(np.prod(images.shape[1:]))))
    for start in range(0, len(images), rows):
        yield as_float(images[start:start + rows], dtype)


def channel_mean_std(images: np.ndarray) -> tuple[list, list]:
    """([mean], [std]) per channel of stored images (N, C, H, W) as the network sees them (uint8 pixels as
    float32), read chunk by chunk: the chunks' float64 means and squared deviations merged exactly (Chan,
    Golub & LeVeque 1979), then rounded to float32, the precision ``Normalize`` applies them in."""
    count, mean, squares = 0, np.zeros(images.shape[1]), np.zeros(images.shape[1])
    for chunk in float_chunks(images):
        chunk = chunk.astype(np.float64)
        size = chunk.size // chunk.shape[1]
        chunk_mean = chunk.mean(axis=(0, 2, 3))
        chunk_squares = np.square(chunk - chunk_mean[:, None, None]).sum(axis=(0, 2, 3))
        delta, total = chunk_mean - mean, count + size
        mean += delta * size / total
        squares += chunk_squares + delta ** 2 * count * size / total
        count = total
    return mean.astype(np.float32).tolist(), np.sqrt(squares / count).astype(np.float32).tolist()


class ImageDataset:
    """Images (N, C, H, W) with one label each (``labels``, set by the subclass), batched by fancy indexing.

    ``stored`` holds the images as given: uint8 pixels (p standing for p / 255; often a read-only np.memmap
    of a file, one copy in the page cache for every process that maps it), or floats made ``dtype``.
    ``dataset[index]`` converts only the samples it selects — the DataLoader's way: a batch costs its own
    conversion.  ``images`` is the whole float array: the stored floats, or the pixels converted on first
    use (read-only; for evaluation, plots and small sets: training reads batches and ``stored``).
    """

    def __init__(self, images, dtype=np.float32):
        self.stored, self.dtype = stored_images(images, dtype), np.dtype(dtype)

    @functools.cached_property
    def images(self) -> np.ndarray:
        images = as_float(self.stored, self.dtype)
        if images is not self.stored:
            images.flags.writeable = False      # a copy: writing to it would change no batch
        return images

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, index):
        return as_float(self.stored[index], self.dtype), self.labels[index]


class ArrayDataset(ImageDataset):
    """Images (N, C, H, W) with labels (N,) int64 in [0, len(classes)), as ``ImageDataset`` keeps them (uint8
    pixels, or floats made ``dtype``: float32, float64 for checks).

    ``dataset[i]`` is one (image (C, H, W), label); ``dataset[index_array]`` is a whole batch
    (images (B, C, H, W) of ``dtype``, labels (B,)) gathered in one fancy-indexing step.
    """

    def __init__(self, images, labels, classes, dtype=np.float32):
        super().__init__(images, dtype)
        labels = np.asarray(labels)
        if labels.ndim != 1 or not np.issubdtype(labels.dtype, np.integer):
            raise ValueError(f"labels must be a 1-d integer array, got shape {labels.shape} dtype {labels.dtype}")
        if len(self.stored) != len(labels):
            raise ValueError(f"{len(self.stored)} images but {len(labels)} labels")
        bad = labels[(labels < 0) | (labels >= len(classes))]
        if bad.size:
            raise ValueError(f"label {bad[0]} out of range: {len(classes)} classes allow labels 0..{len(classes) - 1}")
        self.labels = labels.astype(np.int64)
        self.classes = list(classes)


def load_mnist(root=None, train=True, limit=None, classes=None) -> ArrayDataset:
    """Load the training (60000) or test (t10k, 10000) split of an MNIST-format directory.

    ``root`` defaults to $JUANJI_DATA, else DEFAULT_DATA_DIR. Files may be raw or ``.gz``. Images come
    back as float32 in [0, 1], shape (N, 1, 28, 28), and are stored as the file's uint8 pixels, memory-mapped
    (``stored``: the raw file, or the decompressed copy of a ``.gz`` in the cache, ``idx.map_idx``);
    ``limit`` keeps the first ``limit`` samples.
    Class names: ``classes`` if given, else the lines of ``root/classes.txt``, else Fashion-MNIST's
    names when the directory name contains "fashion", else the digits.
    """
    if limit is not None and limit < 0:
        raise ValueError(f"limit must be >= 0, got {limit}")
    if root is None:
        root = os.environ.get("JUANJI_DATA") or DEFAULT_DATA_DIR
    split = "train" if train else "t10k"
    images_path, labels_path = _find_files(root, [f"{split}-images-idx3-ubyte", f"{split}-labels-idx1-ubyte"])

    # a .gz is decompressed into the cache once: its bytes and their array are in memory together then, and
    # its copy stays on disk; a fifth of the memory budget keeps both modest
    images, labels = map_idx(images_path, memory_budget() // 5), read_idx(labels_path)
    if images.ndim != 3 or images.dtype != np.uint8:
        raise ValueError(f"{images_path}: expected uint8 images of shape (N, rows, cols), "
                         f"got {images.dtype} {images.shape}")
    if labels.ndim != 1:
        raise ValueError(f"{labels_path}: expected labels of shape (N,), got {labels.shape}")
    if len(images) != len(labels):
        raise ValueError(f"image/label count mismatch: {images_path} has {len(images)} images "
                         f"but {labels_path} has {len(labels)} labels")

    pixels = images[:limit, np.newaxis]  # views: add the channel axis, (N, 1, rows, cols)
    return ArrayDataset(pixels, labels[:limit], classes if classes is not None else _class_names(root))


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
