"""Your own pictures as a dataset: one sub-folder per class, the layout of torchvision's ``ImageFolder``.

    pets/cat/1.jpg  pets/cat/2.png  pets/dog/a.jpg ...             → a seeded 90 % / 10 % train/test split
    pets/train/cat/...  pets/test/cat/...  (or pets/val/cat/...)   → the split you made

``load_datasets`` is what ``juanji train --data`` calls: it picks IDX files or an image folder.
"""
from __future__ import annotations

import os

import numpy as np

from juanji.data.datasets import ArrayDataset, load_mnist
from juanji.data.images import ImageError, load_image
from juanji.limits import memory_budget, mib
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
    """(images (N, C, S, S) float32 in [0, 1], kept (N,) indices into ``paths``, skipped [(path, problem)]).

    Each image is scaled so that its shorter side is ``image_size``, then centre-cropped to a square.
    ``channels`` None means 1 when every image is gray (R = G = B), else 3.  A file that cannot be read
    raises ValueError naming it, unless ``skip_bad``: then it is left out and listed in ``skipped``.
    """
    if not isinstance(image_size, int) or not 1 <= image_size <= MAX_IMAGE_SIZE:
        raise ValueError(f"image_size must be an integer in 1..{MAX_IMAGE_SIZE}, got {image_size!r}")
    needed = 4 * len(paths) * (channels or 3) * image_size ** 2
    if needed > memory_budget():
        raise MemoryError(f"{len(paths):,} images of {channels or 3}×{image_size}×{image_size} float32 would take "
                          f"{mib(needed)}, more than the {mib(memory_budget())} this process may use; "
                          f"choose a smaller --image-size")
    images, kept, skipped = [], [], []
    for index, path in enumerate(paths):
        try:
            images.append(load_image(path, channels or 3, image_size, crop=True))
            kept.append(index)
        except ImageError as error:
            if not skip_bad:
                raise ValueError(f"{path}: {error.problem}; --skip-bad leaves unreadable files out") from None
            skipped.append((path, error.problem))
    if not images:
        raise ValueError(f"no readable images among {len(paths)} files")
    images = np.stack(images)
    if channels is None and np.array_equal(images.min(axis=1), images.max(axis=1)):
        images = images[:, :1]
    return images, np.array(kept, dtype=np.int64), skipped


def image_folder(root, image_size: int = DEFAULT_IMAGE_SIZE, channels: int | None = None, skip_bad: bool = False,
                 classes=None) -> tuple[ArrayDataset, list]:
    """(ArrayDataset of every image under ``root/<class>/``, skipped files); see ``find_images``, ``read_images``."""
    paths, labels, classes = find_images(root, classes)
    if not paths:
        raise ValueError(f"{root}: no image files ({', '.join(IMAGE_SUFFIXES)}) in the class folders {classes}")
    images, kept, skipped = read_images(paths, image_size, channels, skip_bad)
    return ArrayDataset(images, labels[kept], classes), skipped


def split(dataset: ArrayDataset, fraction: float = TEST_FRACTION, seed: int = SPLIT_SEED):
    """(train, test): ``fraction`` of each class (at least one image of a class with two or more) goes to
    test, drawn with ``np.random.default_rng(seed)``."""
    rng = np.random.default_rng(seed)
    test = np.zeros(len(dataset), dtype=bool)
    for label in np.unique(dataset.labels):
        members = rng.permutation(np.flatnonzero(dataset.labels == label))
        count = max(1, round(fraction * len(members))) if len(members) > 1 else 0
        test[members[:count]] = True
    return (ArrayDataset(dataset.images[~test], dataset.labels[~test], dataset.classes),
            ArrayDataset(dataset.images[test], dataset.labels[test], dataset.classes))


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

    ``limit`` keeps a seeded random ``limit`` of the training images (the first ``limit`` for IDX files).
    """
    if not is_image_folder(data):
        return (*_load_idx(data, limit, image_size, channels), [])
    image_size = image_size or DEFAULT_IMAGE_SIZE
    test_folder = next((os.path.join(data, name) for name in ("test", "val")
                        if os.path.isdir(os.path.join(data, name))), None)
    if os.path.isdir(os.path.join(data, "train")) and test_folder:
        train, skipped = image_folder(os.path.join(data, "train"), image_size, channels, skip_bad)
        test, skipped_test = image_folder(test_folder, image_size, train.images.shape[1], skip_bad, train.classes)
        skipped += skipped_test
    else:
        root = os.path.join(data, "train") if os.path.isdir(os.path.join(data, "train")) else data
        everything, skipped = image_folder(root, image_size, channels, skip_bad)
        train, test = split(everything)
    if limit is not None and limit < len(train):
        keep = np.sort(np.random.default_rng(SPLIT_SEED).permutation(len(train))[:limit])
        train = ArrayDataset(train.images[keep], train.labels[keep], train.classes)
    return train, test, skipped


def _load_idx(data, limit, image_size, channels):
    train = load_mnist(data, train=True, limit=limit)
    channels_found, size = train.images.shape[1:3]
    if image_size not in (None, size) or channels not in (None, channels_found):
        raise ValueError(f"{data or 'the default data'} holds {size}×{size} IDX images with {channels_found} "
                         f"channel(s); --image-size and --channels resize an image folder only")
    return train, load_mnist(data, train=False)
