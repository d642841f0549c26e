"""``ShardedLoader``: each process's share of every global batch, from the one (seed, epoch) shuffle."""
from __future__ import annotations


def shard(n: int, rank: int, size: int) -> slice:
    """The contiguous part of n samples that process ``rank`` of ``size`` takes: sizes differ by at most 1
    (10 samples over 3 processes: ``slice(0, 3)``, ``slice(3, 6)``, ``slice(6, 10)``)."""
    return slice(n * rank // size, n * (rank + 1) // size)


def check_shares(samples: int, batch_size: int, size: int, test_samples: int) -> None:
    """ValueError unless each of ``size`` processes gets a sample of every training batch of ``samples``
    (the epoch's last, shorter batch included: a process with nothing to compute would still have to step)
    and some of the ``test_samples``."""
    smallest = min(batch_size, samples % batch_size or batch_size)
    if smallest < size:
        raise ValueError(f"{size} processes need at least {size} images in every batch, but with --batch-size "
                         f"{batch_size} a batch of the {samples} training images holds {smallest}; choose "
                         f"another --batch-size (or --limit)")
    if test_samples < size:
        raise ValueError(f"{size} processes need at least {size} test images, got {test_samples}")


class ShardedLoader:
    """Iterate over ``loader``'s batches (the global batches), yielding process ``rank``'s share of each.

    Every process draws the same shuffle and augmentation (the loader's are a function of (seed, epoch)),
    takes the whole global batch and keeps its slice ``shard(len(batch), rank, size)``: the union of the
    shares is exactly the batch one process would see.  ``skip_empty`` leaves out empty shares (for
    evaluation; in training every process must step together, so there every share must hold samples).
    """

    def __init__(self, loader, rank: int, size: int, skip_empty: bool = False):
        if not 0 <= rank < size:
            raise ValueError(f"ShardedLoader: rank must be in [0, {size}), got {rank}")
        self.loader, self.rank, self.size, self.skip_empty = loader, rank, size, skip_empty

    def set_epoch(self, epoch: int) -> None:
        self.loader.set_epoch(epoch)

    def __len__(self) -> int:
        return len(self.loader)

    def __iter__(self):
        for x, y in self.loader:
            part = shard(len(y), self.rank, self.size)
            if part.stop > part.start or not self.skip_empty:
                yield x[part], y[part]
