"""Random numbers per sample for augmentation, counter-based: sample i's k-th number in epoch e is a pure
function of (seed, e, i, k), so a sample is augmented alike in whatever batch, process or order it comes.

The hash is splitmix64 (Steele, Lea & Flood 2014, the generator NumPy and xoshiro use to expand a seed): its
output k of state s is mix(s + (k + 1)·γ), γ = 2⁶⁴/φ.  (seed, epoch) select a stream, the sample's index an
output of it, which seeds the sample's own stream; all of it in uint64 arithmetic on whole index arrays.
"""
from __future__ import annotations

import numpy as np

_GAMMA = np.uint64(0x9E3779B97F4A7C15)
_MASK = (1 << 64) - 1


def _mix(z: np.ndarray) -> np.ndarray:
    """splitmix64's finaliser: a bijection of uint64 in which every input bit flips every output bit half the time."""
    z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return z ^ (z >> np.uint64(31))


def _output(state: np.ndarray, k) -> np.ndarray:
    """Output ``k`` (an int or an array) of the splitmix64 streams at ``state``, in arrays of at least one
    dimension: those wrap around silently, where NumPy's scalars would warn of the overflow."""
    return _mix(state + (np.atleast_1d(np.asarray(k, dtype=np.uint64)) + np.uint64(1)) * _GAMMA)


class SampleDraws:
    """The random numbers of a batch's samples: each call of ``random`` or ``integers`` gives every sample
    its next number, the k-th call hash(seed, epoch, index of the sample in the data set, k).

    Use it as a ``np.random.Generator`` that returns one number per sample; transforms draw in a fixed
    order (``Compose`` passes the same object on), so the k-th call means the same thing for every sample.
    """

    def __init__(self, seed: int, epoch: int, indices):
        indices = np.asarray(indices)
        if indices.ndim != 1 or (indices.size and (indices.dtype.kind not in "iu" or indices.min() < 0)):
            raise ValueError(f"indices must be a 1-d array of sample indices >= 0, got {indices.dtype} "
                             f"{indices.shape}")
        stream = _output(_output(np.zeros(1, np.uint64), int(seed) & _MASK), int(epoch) & _MASK)
        self._states = _output(stream, indices.astype(np.uint64))      # (N,): each sample's own stream
        self._calls = 0

    def __len__(self) -> int:
        return len(self._states)

    def bits(self) -> np.ndarray:
        """(N,) uint64: every sample's next 64 random bits."""
        bits = _output(self._states, self._calls)
        self._calls += 1
        return bits

    def random(self) -> np.ndarray:
        """(N,) float64 uniform in [0, 1): the top 53 bits of ``bits()``."""
        return (self.bits() >> np.uint64(11)).astype(np.float64) * 2.0 ** -53

    def integers(self, high: int) -> np.ndarray:
        """(N,) int64 uniform in [0, high), 1 ≤ high ≤ 2³²: ⌊(top 32 bits) · high / 2³²⌋ (Lemire's
        multiply-shift; its bias, below high / 2³², is nothing next to an image's few crop offsets)."""
        if not 1 <= high <= 2 ** 32:
            raise ValueError(f"integers: high must be in 1..2**32, got {high}")
        return (((self.bits() >> np.uint64(32)) * np.uint64(high)) >> np.uint64(32)).astype(np.int64)
