"""Batch transforms for data augmentation: ``t(batch, draws) -> new batch``, batch (N, C, H, W) float.

Randomness comes only from the ``draws`` passed in (``SampleDraws``: each sample's own numbers, a function of
the seed, the epoch and the sample's index in the data set; the DataLoader makes them per batch), never from
global state, so a sample is augmented the same whichever batch or process it lands in.  The input batch is
never modified.
"""
import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from juanji.data.draws import SampleDraws


class Normalize:
    """(x - mean[c]) / std[c] for each channel c; ``mean`` and ``std`` are numbers or one per channel."""

    def __init__(self, mean, std):
        self.mean = np.array(mean, dtype=np.float32).reshape(-1, 1, 1)  # (C, 1, 1) broadcasts over H, W
        self.std = np.array(std, dtype=np.float32).reshape(-1, 1, 1)
        if np.any(self.std <= 0):
            raise ValueError(f"std must be positive, got {std}")

    def __call__(self, batch, draws=None):
        _check_batch(batch)
        channels = batch.shape[1]
        for stat in (self.mean, self.std):
            if len(stat) not in (1, channels):
                raise ValueError(f"Normalize has {len(stat)} values per statistic but the batch has {channels} channels")
        return ((batch - self.mean) / self.std).astype(np.float32, copy=False)


class RandomCrop:
    """Zero-pad each side by ``padding``, then cut a ``size`` window at an independent random place per sample
    (top, then left: the sample's next two draws).

    ``size`` is an int (square) or (height, width). Output: (N, C, height, width).
    """

    def __init__(self, size, padding=0):
        self.height, self.width = (size, size) if isinstance(size, int) else size
        self.padding = padding

    def __call__(self, batch, draws):
        _check_batch(batch, draws, "RandomCrop")
        pad = self.padding
        padded = np.pad(batch, ((0, 0), (0, 0), (pad, pad), (pad, pad)))
        max_top, max_left = padded.shape[2] - self.height, padded.shape[3] - self.width
        if max_top < 0 or max_left < 0:
            raise ValueError(f"cannot crop {self.height}×{self.width} from {batch.shape[2]}×{batch.shape[3]} "
                             f"images padded by {pad}")
        top, left = draws.integers(max_top + 1), draws.integers(max_left + 1)
        # windows[n, c, i, j] is the (height, width) window whose top-left corner is (i, j): a view, no copy.
        windows = sliding_window_view(padded, (self.height, self.width), axis=(2, 3))
        return windows[np.arange(len(batch)), :, top, left]  # sample k takes its own window: (N, C, height, width)


class RandomHorizontalFlip:
    """Mirror each sample left-right with probability ``p`` (the sample's next draw below ``p``)."""

    def __init__(self, p=0.5):
        self.p = p

    def __call__(self, batch, draws):
        _check_batch(batch, draws, "RandomHorizontalFlip")
        flip = draws.random() < self.p
        return np.where(flip[:, None, None, None], batch[..., ::-1], batch)


class Compose:
    """Apply ``transforms`` in order, all drawing from the same ``draws`` (each its next numbers)."""

    def __init__(self, transforms):
        self.transforms = list(transforms)

    def __call__(self, batch, draws=None):
        for transform in self.transforms:
            batch = transform(batch, draws)
        return batch


def _check_batch(batch, draws=None, random_transform=None):
    """ValueError unless ``batch`` is (N, C, H, W) and, for ``random_transform`` (its name), ``draws`` has N samples."""
    if not isinstance(batch, np.ndarray) or batch.ndim != 4:
        raise ValueError(f"transforms take a batch of shape (N, C, H, W), got {np.shape(batch)}")
    if random_transform and not isinstance(draws, SampleDraws):
        raise ValueError(f"{random_transform} draws from the batch's SampleDraws (juanji.data.draws), got {draws!r}")
    if random_transform and len(draws) != len(batch):
        raise ValueError(f"{random_transform}: draws for {len(draws)} samples, but the batch has {len(batch)}")
