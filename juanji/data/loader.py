"""``DataLoader``: shuffled, augmented mini-batches whose randomness is a pure function of (seed, epoch), and
under data parallelism each process's share of them, gathered and augmented by that process alone.

That makes resuming bit-exact without saving any RNG state: a checkpoint only needs the epoch number.
"""
from __future__ import annotations

import numpy as np

from juanji.data.draws import SampleDraws


def shard(n: int, rank: int, size: int) -> slice:
    """The contiguous part of n samples that process ``rank`` of ``size`` takes: sizes differ by at most 1
    (10 samples over 3 processes: ``slice(0, 3)``, ``slice(3, 6)``, ``slice(6, 10)``)."""
    return slice(n * rank // size, n * (rank + 1) // size)


class DataLoader:
    """Iterate over ``dataset`` in batches ``(x, y)``: x float (B, C, H, W), y int64 (B,).

    ``dataset`` is an ``ArrayDataset`` (or anything whose ``dataset[index_array]`` returns a batch).
    The last batch may be smaller than ``batch_size`` unless ``drop_last``. ``transform(x, draws)``
    is applied to each batch, e.g. ``Compose([RandomCrop(28, padding=2), RandomHorizontalFlip()])``;
    ``draws`` are the batch's samples' own random numbers (``SampleDraws``).

    Determinism: call ``set_epoch(epoch)`` before each epoch. Epoch e's shuffle order is
    ``np.random.default_rng([seed, e]).permutation(N)`` and sample i's augmentation draws hash (seed, e, i),
    and nothing else, so epoch e yields identical batches whether the process ran epochs 0..e-1 first or was
    restarted from a checkpoint saved after them. Iterating twice without ``set_epoch`` repeats the same epoch.

    ``shard=(rank, size)``: yield process ``rank`` of ``size``'s share ``shard(B, rank, size)`` of every batch
    (the global batch): the order is computed whole (cheap) but only the share's samples are read and
    augmented, and since a sample's draws do not depend on its batch, the shares of all processes make up
    exactly the batch one process would see.  ``skip_empty`` leaves out empty shares (for evaluation; in
    training every process must step together, so there every share must hold samples).
    """

    def __init__(self, dataset, batch_size=64, shuffle=False, seed=0, drop_last=False, transform=None,
                 shard=None, skip_empty=False):
        if len(dataset) == 0:
            raise ValueError("dataset is empty")
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        if shard is not None and not 0 <= shard[0] < shard[1]:
            raise ValueError(f"shard (rank, size): rank must be in [0, size), got {tuple(shard)}")
        self.dataset = dataset
        self.batch_size = batch_size
        self.shuffle = shuffle
        self.seed = seed
        self.drop_last = drop_last
        self.transform = transform
        self.shard = None if shard is None else tuple(shard)
        self.skip_empty = skip_empty
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        """Select the epoch whose (reproducible) order and augmentation the next iteration uses."""
        self.epoch = epoch

    def __len__(self) -> int:
        full_batches, remainder = divmod(len(self.dataset), self.batch_size)
        return full_batches + (1 if remainder and not self.drop_last else 0)

    def __iter__(self):
        return self.batches()

    def batches(self, first: int = 0):
        """The epoch's batches from batch ``first`` on (a training resumed mid-epoch): those ``iter(self)``
        yields from its ``first``-th on, without reading or augmenting the ones before."""
        n = len(self.dataset)
        order = np.random.default_rng([self.seed, self.epoch]).permutation(n) if self.shuffle else np.arange(n)
        for start in range(first * self.batch_size, len(self) * self.batch_size, self.batch_size):
            indices = order[start:start + self.batch_size]
            if self.shard is not None:
                indices = indices[shard(len(indices), *self.shard)]
                if self.skip_empty and not len(indices):
                    continue
            x, y = self.dataset[indices]  # one fancy-indexing gather, a copy
            if self.transform is not None:
                x = self.transform(x, SampleDraws(self.seed, self.epoch, indices))
            yield x, y
