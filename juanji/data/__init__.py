"""Getting data into the network: IDX files, datasets, batching and augmentation (NumPy only)."""
from juanji.data.datasets import (DEFAULT_DATA_DIR, FASHION_MNIST_CLASSES, MNIST_CLASSES, ArrayDataset,
                                  load_mnist)
from juanji.data.draws import SampleDraws
from juanji.data.idx import IDXError, map_idx, read_idx, write_idx
from juanji.data.loader import DataLoader
from juanji.data.transforms import Compose, Normalize, RandomCrop, RandomHorizontalFlip

__all__ = ["ArrayDataset", "Compose", "DataLoader", "DEFAULT_DATA_DIR", "FASHION_MNIST_CLASSES", "IDXError",
           "MNIST_CLASSES", "Normalize", "RandomCrop", "RandomHorizontalFlip", "SampleDraws", "load_mnist",
           "map_idx", "read_idx", "write_idx"]
