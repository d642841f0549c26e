"""Batch transforms for data augmentation: ``t(batch, rng) -> new batch``, batch (N, C, H, W) float32.

Randomness comes only from the ``rng`` passed in (the DataLoader gives one per epoch), never from
global state, and the input batch is never modified.
"""
import numpy as np
from numpy.lib.stride_tricks import sliding_window_view


class Normalize:
    """(x - mean[c]) / std[c] for each channel c; ``mean`` and ``std`` are numbers or one per channel."""

    def __init__(self, mean, std):
        self.mean = np.array(mean, dtype=np.float32).reshape(-1, 1, 1)  # (C, 1, 1) broadcasts over H, W
        self.std = np.array(std, dtype=np.float32).reshape(-1, 1, 1)
        if np.any(self.std <= 0):
            raise ValueError(f"std must be positive, got {std}")

    def __call__(self, batch, rng=None):
        _check_batch(batch)
        channels = batch.shape[1]
        for stat in (self.mean, self.std):
            if len(stat) not in (1, channels):
                raise ValueError(f"Normalize has {len(stat)} values per statistic but the batch has {channels} channels")
        return ((batch - self.mean) / self.std).astype(np.float32, copy=False)


class RandomCrop:
    """Zero-pad each side by ``padding``, then cut a ``size`` window at an independent random place per sample.

    ``size`` is an int (square) or (height, width). Output: (N, C, height, width).
    """

    def __init__(self, size, padding=0):
        self.height, self.width = (size, size) if isinstance(size, int) else size
        self.padding = padding

    def __call__(self, batch, rng):
        _check_batch(batch)
        pad = self.padding
        padded = np.pad(batch, ((0, 0), (0, 0), (pad, pad), (pad, pad)))
        max_top, max_left = padded.shape[2] - self.height, padded.shape[3] - self.width
        if max_top < 0 or max_left < 0:
            raise ValueError(f"cannot crop {self.height}×{self.width} from {batch.shape[2]}×{batch.shape[3]} "
                             f"images padded by {pad}")
        n = len(batch)
        top = rng.integers(0, max_top + 1, size=n)
        left = rng.integers(0, max_left + 1, size=n)
        # windows[n, c, i, j] is the (height, width) window whose top-left corner is (i, j): a view, no copy.
        windows = sliding_window_view(padded, (self.height, self.width), axis=(2, 3))
        return windows[np.arange(n), :, top, left]  # sample k takes its own window: (N, C, height, width)


class RandomHorizontalFlip:
    """Mirror each sample left-right with probability ``p``, independently per sample."""

    def __init__(self, p=0.5):
        self.p = p

    def __call__(self, batch, rng):
        _check_batch(batch)
        flip = rng.random(len(batch)) < self.p
        return np.where(flip[:, None, None, None], batch[..., ::-1], batch)


class Compose:
    """Apply ``transforms`` in order, all drawing from the same ``rng``."""

    def __init__(self, transforms):
        self.transforms = list(transforms)

    def __call__(self, batch, rng=None):
        for transform in self.transforms:
            batch = transform(batch, rng)
        return batch


def _check_batch(batch):
    if not isinstance(batch, np.ndarray) or batch.ndim != 4:
        raise ValueError(f"transforms take a batch of shape (N, C, H, W), got {np.shape(batch)}")
