"""Each process's share of every global batch: ``DataLoader(..., shard=(rank, size))`` reads and augments it
(juanji/data/loader.py); here the constructor that shards a loader, and the check that every share holds samples."""
from __future__ import annotations

from ..data.loader import DataLoader, shard

__all__ = ["ShardedLoader", "check_shares", "shard"]


def check_shares(samples: int, batch_size: int, size: int, test_samples: int, sync_bn: bool = False) -> None:
    """ValueError unless each of ``size`` processes gets a sample of every full training batch of ``samples``
    (else one would idle through every step), of the epoch's last, shorter batch too with ``sync_bn`` (its
    statistics need every process's forward; without it an empty share joins the step with a zero gradient
    of weight 0: ``DistributedDataParallel.join_empty``), and some of the ``test_samples``."""
    smallest = min(batch_size, samples % batch_size or batch_size) if sync_bn else batch_size
    if smallest < size:
        raise ValueError(f"{size} processes need at least {size} images in every batch{' with --sync-bn' * sync_bn}, "
                         f"but with --batch-size {batch_size} a batch of the {samples} training images holds "
                         f"{smallest}; choose another --batch-size (or --limit)")
    if test_samples < size:
        raise ValueError(f"{size} processes need at least {size} test images, got {test_samples}")


class ShardedLoader(DataLoader):
    """``loader``'s batches (the global batches) as process ``rank`` of ``size`` sees them: its share
    ``shard(len(batch), rank, size)`` of each, read and augmented by this process alone.  Only a constructor:
    ``loader``'s settings with ``shard=(rank, size)`` (see ``DataLoader``); ``skip_empty`` for evaluation."""

    def __init__(self, loader: DataLoader, rank: int, size: int, skip_empty: bool = False):
        super().__init__(loader.dataset, loader.batch_size, loader.shuffle, loader.seed, loader.drop_last,
                         loader.transform, shard=(rank, size), skip_empty=skip_empty)
        self.epoch = loader.epoch
