"""Each process's share of every global batch: together exactly the batches of one process (each process
reads and augments only its own share: tests/data/test_sharded_loading.py)."""
from __future__ import annotations

import numpy as np
import pytest

from juanji.data import DataLoader
from juanji.data.datasets import ArrayDataset
from juanji.data.transforms import RandomCrop
from juanji.distributed import ShardedLoader


@pytest.mark.parametrize("size", [1, 2, 3, 5])
def test_the_shares_of_a_batch_make_up_the_global_batch(size):
    rng = np.random.default_rng(0)
    dataset = ArrayDataset(rng.random((23, 1, 6, 6)), rng.integers(0, 3, 23), ["a", "b", "c"])
    loader = DataLoader(dataset, 7, shuffle=True, seed=5, transform=RandomCrop(6, padding=1))
    shards = [ShardedLoader(loader, rank, size) for rank in range(size)]
    for epoch in (0, 3):
        for shard in shards:
            shard.set_epoch(epoch)
        loader.set_epoch(epoch)
        whole = list(loader)
        parts = [list(shard) for shard in shards]
        assert all(len(p) == len(whole) == len(loader) for p in parts)
        for step, (x, y) in enumerate(whole):
            np.testing.assert_array_equal(np.concatenate([p[step][0] for p in parts]), x)
            np.testing.assert_array_equal(np.concatenate([p[step][1] for p in parts]), y)
            assert max(len(p[step][1]) for p in parts) - min(len(p[step][1]) for p in parts) <= 1


def test_a_sharded_loader_is_the_loader_with_a_shard():
    dataset = ArrayDataset(np.zeros((9, 1, 2, 2)), np.zeros(9, dtype=np.int64), ["a"])
    loader = DataLoader(dataset, 4, shuffle=True, seed=2, drop_last=True, transform=RandomCrop(2, padding=1))
    loader.set_epoch(3)
    sharded = ShardedLoader(loader, 1, 3)
    assert isinstance(sharded, DataLoader) and sharded.shard == (1, 3) and sharded.epoch == 3
    assert (sharded.dataset, sharded.batch_size, sharded.shuffle, sharded.seed, sharded.drop_last,
            sharded.transform) == (dataset, 4, True, 2, True, loader.transform)
    assert loader.shard is None                 # the loader given is left as it was


def test_empty_shares_are_left_out_only_when_asked():
    dataset = ArrayDataset(np.zeros((5, 1, 2, 2)), np.zeros(5, dtype=np.int64), ["a"])
    loader = DataLoader(dataset, 4)                     # batches of 4 and 1
    assert [len(y) for _, y in ShardedLoader(loader, 0, 2)] == [2, 0]
    assert [len(y) for _, y in ShardedLoader(loader, 0, 2, skip_empty=True)] == [2]
    assert [len(y) for _, y in ShardedLoader(loader, 1, 2, skip_empty=True)] == [2, 1]
    with pytest.raises(ValueError, match="rank must be in"):
        ShardedLoader(loader, 2, 2)
