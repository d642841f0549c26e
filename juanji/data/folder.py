"""Your own pictures as a dataset: one sub-folder per class, the layout of torchvision's ``ImageFolder``.

    pets/cat/1.jpg  pets/cat/2.png  pets/dog/a.jpg ...             → a seeded 90 % / 10 % train/test split
    pets/train/cat/...  pets/test/cat/...  (or pets/val/cat/...)   → the split you made

``load_datasets`` is what ``juanji train --data`` calls: it picks IDX files or an image folder.
"""
from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from juanji.data import cache
from juanji.data.datasets import ArrayDataset, load_mnist
from juanji.data.images import ImageError, read_pixels
from juanji.limits import memory_budget, mib
from juanji.runtime.threads import num_threads
from juanji.schema import MAX_IMAGE_SIZE

IMAGE_SUFFIXES = (".bmp", ".gif", ".jpeg", ".jpg", ".png", ".tif", ".tiff", ".webp")
DEFAULT_IMAGE_SIZE = 32
TEST_FRACTION = 0.1
SPLIT_SEED = 0          # fixed, so runs with different --seed are tested on the same images


def find_images(root, classes=None) -> tuple[list[str], np.ndarray, list[str]]:
    """(paths, labels (N,) int64, classes) of the image files under ``root/<class>/`` (searched recursively).

    Classes are the sorted sub-folder names, or ``classes`` when given (a test folder must use the training
    folder's classes).  Hidden files and files without an image suffix (``IMAGE_SUFFIXES``) are ignored.
    """
    found = sorted(entry.name for entry in os.scandir(root) if entry.is_dir() and not entry.name.startswith("."))
    if not found:
        raise ValueError(f"{root}: no class sub-folders; put the images of each class in a folder of its own")
    classes = found if classes is None else list(classes)
    unknown = [name for name in found if name not in classes]
    if unknown:
        raise ValueError(f"{root}: class folder(s) {unknown} are not among the training classes {classes}")
    paths, labels = [], []
    for label, name in enumerate(classes):
        for folder, subfolders, files in os.walk(os.path.join(root, name)):
            subfolders.sort()
            for file in sorted(files):
                if not file.startswith(".") and file.lower().endswith(IMAGE_SUFFIXES):
                    paths.append(os.path.join(folder, file))
                    labels.append(label)
    return paths, np.array(labels, dtype=np.int64), classes


def read_images(paths, image_size: int, channels: int | None, skip_bad: bool = False):
    """(images (N, C, S, S) uint8, kept (N,) indices into ``paths``, skipped [(path, problem)]).

    Each image is scaled so that its shorter side is ``image_size``, then centre-cropped to a square; the
    files are decoded on ``juanji.get_num_threads()`` threads (Pillow decodes and resizes without the GIL).
    ``channels`` None means 1 when every image is gray (R = G = B), else 3.  A file that cannot be read
    raises ValueError naming it, unless ``skip_bad``: then it is left out and listed in ``skipped``.
    """
    if not isinstance(image_size, int) or not 1 <= image_size <= MAX_IMAGE_SIZE:
        raise ValueError(f"image_size must be an integer in 1..{MAX_IMAGE_SIZE}, got {image_size!r}")
    needed = len(paths) * (channels or 3) * image_size ** 2
    if needed > memory_budget():
        raise MemoryError(f"{len(paths):,} images of {channels or 3}×{image_size}×{image_size} uint8 pixels would take "
                          f"{mib(needed)}, more than the {mib(memory_budget())} this process may use; "
                          f"choose a smaller --image-size")

    def decode(path):
        try:
            return read_pixels(path, channels or 3, image_size, crop=True), None
        except ImageError as error:
            return None, error.problem

    with ThreadPoolExecutor(num_threads()) as pool:
        decoded = list(pool.map(decode, paths))
    images, kept, skipped = [], [], []
    for index, (path, (pixels, problem)) in enumerate(zip(paths, decoded)):
        if problem is None:
            images.append(pixels)
            kept.append(index)
        elif skip_bad:
            skipped.append((path, problem))
        else:
            raise ValueError(f"{path}: {problem}; --skip-bad leaves unreadable files out")
    if not images:
        raise ValueError(f"no readable images among {len(paths)} files")
    images = np.stack(images)
    if channels is None and np.array_equal(images.min(axis=1), images.max(axis=1)):
        images = images[:, :1]
    return images, np.array(kept, dtype=np.int64), skipped


def image_dataset(paths, labels, classes, image_size: int, channels: int | None = None, skip_bad: bool = False,
                  source: tuple = ()) -> tuple[ArrayDataset, list]:
    """(ArrayDataset of the image files ``paths`` with ``labels``, skipped files); see ``read_images``.

    The decoded pixels are cached (``juanji.data.cache``; ``source`` names what the files are, e.g. a
    folder's training part, and their sizes and modification times the version) and memory-mapped.  Where
    files had to be skipped nothing is cached: they are tried, and reported, again each time.
    """
    if not paths:
        return ArrayDataset(np.zeros((0, channels or 3, image_size, image_size), np.uint8), labels, classes), []
    shape = (len(paths), image_size, image_size)
    version = cache.key([(path, cache.file_version(path)) for path in paths])
    with cache.entry(f"images-{cache.key(*source, image_size, channels)}", version,
                     lambda array: (array.dtype == np.uint8 and (array.shape[0], *array.shape[2:]) == shape
                                    and array.shape[1] in ((channels,) if channels else (1, 3)))) as cached:
        if cached.array is not None:
            return ArrayDataset(cached.array, labels, classes), []
        images, kept, skipped = read_images(paths, image_size, channels, skip_bad)
        return ArrayDataset(images if skipped else cached.store(images), labels[kept], classes), skipped


def held_out(labels, fraction: float = TEST_FRACTION, seed: int = SPLIT_SEED) -> np.ndarray:
    """(N,) bool, True for the test part of a seeded split: ``fraction`` of each class (at least one sample
    of a class with two or more), drawn with ``np.random.default_rng(seed)``."""
    rng = np.random.default_rng(seed)
    test = np.zeros(len(labels), dtype=bool)
    for label in np.unique(labels):
        members = rng.permutation(np.flatnonzero(labels == label))
        count = max(1, round(fraction * len(members))) if len(members) > 1 else 0
        test[members[:count]] = True
    return test


def is_image_folder(path) -> bool:
    """True for a folder of class sub-folders (and no MNIST IDX files)."""
    if path is None or not os.path.isdir(path):
        return False
    names = os.listdir(path)
    if any(name.startswith("train-images-idx3-ubyte") for name in names):
        return False
    return any(os.path.isdir(os.path.join(path, name)) and not name.startswith(".") for name in names)


def load_datasets(data=None, limit: int | None = None, image_size: int | None = None, channels: int | None = None,
                  skip_bad: bool = False) -> tuple[ArrayDataset, ArrayDataset, list]:
    """(train_set, test_set, skipped files) from ``data``: an image folder (see the module docstring; images
    resized to ``image_size``, default 32) or else a folder of MNIST-format IDX files (``load_mnist``).

    ``limit`` keeps a seeded random ``limit`` of the training images (the first ``limit`` for IDX files).  The
    files are split and limited before they are decoded, so a file skipped as unreadable leaves its part one
    image short; the test images take the training images' channels.
    """
    if not is_image_folder(data):
        return (*_load_idx(data, limit, image_size, channels), [])
    image_size = image_size or DEFAULT_IMAGE_SIZE
    test_folder = next((os.path.join(data, name) for name in ("test", "val")
                        if os.path.isdir(os.path.join(data, name))), None)
    if os.path.isdir(os.path.join(data, "train")) and test_folder:
        train_paths, train_labels, classes = _find_some_images(os.path.join(data, "train"))
        test_paths, test_labels, _ = _find_some_images(test_folder, classes)
        train_source, test_source = (os.path.abspath(os.path.join(data, "train")),), (os.path.abspath(test_folder),)
    else:
        root = os.path.join(data, "train") if os.path.isdir(os.path.join(data, "train")) else data
        paths, labels, classes = _find_some_images(root)
        paths, test = np.array(paths), held_out(labels)
        train_paths, train_labels, test_paths, test_labels = (paths[~test].tolist(), labels[~test],
                                                              paths[test].tolist(), labels[test])
        train_source, test_source = (os.path.abspath(root), "train"), (os.path.abspath(root), "test")
    if limit is not None and limit < len(train_paths):
        keep = np.sort(np.random.default_rng(SPLIT_SEED).permutation(len(train_paths))[:limit])
        train_paths, train_labels = [train_paths[i] for i in keep], train_labels[keep]
        train_source += (f"limit {limit}",)
    train, skipped = image_dataset(train_paths, train_labels, classes, image_size, channels, skip_bad, train_source)
    test, skipped_test = image_dataset(test_paths, test_labels, classes, image_size, train.stored.shape[1],
                                       skip_bad, test_source)
    return train, test, skipped + skipped_test


def _find_some_images(root, classes=None):
    """``find_images``; ValueError when the class folders hold no image file."""
    paths, labels, classes = find_images(root, classes)
    if not paths:
        raise ValueError(f"{root}: no image files ({', '.join(IMAGE_SUFFIXES)}) in the class folders {classes}")
    return paths, labels, classes


def _load_idx(data, limit, image_size, channels):
    train = load_mnist(data, train=True, limit=limit)
    channels_found, size = train.stored.shape[1:3]
    if image_size not in (None, size) or channels not in (None, channels_found):
        raise ValueError(f"{data or 'the default data'} holds {size}×{size} IDX images with {channels_found} "
                         f"channel(s); --image-size and --channels resize an image folder only")
    return train, load_mnist(data, train=False)
