"""``DataLoader``: shuffled, augmented mini-batches whose randomness is a pure function of (seed, epoch).

That makes resuming bit-exact without saving any RNG state: a checkpoint only needs the epoch number.
"""
import numpy as np


class DataLoader:
    """Iterate over ``dataset`` in batches ``(x, y)``: x float32 (B, C, H, W), y int64 (B,).

    ``dataset`` is an ``ArrayDataset`` (or anything whose ``dataset[index_array]`` returns a batch).
    The last batch may be smaller than ``batch_size`` unless ``drop_last``. ``transform(x, rng)``
    is applied to each batch, e.g. ``Compose([RandomCrop(28, padding=2), RandomHorizontalFlip()])``.

    Determinism: call ``set_epoch(epoch)`` before each epoch. Epoch e's shuffle order and augmentation
    draw from ``np.random.default_rng([seed, e])`` and nothing else, so epoch e yields identical batches
    whether the process ran epochs 0..e-1 first or was restarted from a checkpoint saved after them.
    Iterating twice without ``set_epoch`` repeats the same epoch.
    """

    def __init__(self, dataset, batch_size=64, shuffle=False, seed=0, drop_last=False, transform=None):
        if len(dataset) == 0:
            raise ValueError("dataset is empty")
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        self.dataset = dataset
        self.batch_size = batch_size
        self.shuffle = shuffle
        self.seed = seed
        self.drop_last = drop_last
        self.transform = transform
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        """Select the epoch whose (reproducible) order and augmentation the next iteration uses."""
        self.epoch = epoch

    def __len__(self) -> int:
        full_batches, remainder = divmod(len(self.dataset), self.batch_size)
        return full_batches + (1 if remainder and not self.drop_last else 0)

    def __iter__(self):
        rng = np.random.default_rng([self.seed, self.epoch])
        n = len(self.dataset)
        order = rng.permutation(n) if self.shuffle else np.arange(n)
        for start in range(0, len(self) * self.batch_size, self.batch_size):
            x, y = self.dataset[order[start:start + self.batch_size]]  # one fancy-indexing gather, a copy
            if self.transform is not None:
                x = self.transform(x, rng)
            yield x, y
