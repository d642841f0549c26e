"""DataLoader: each sample once per epoch, batch sizes, and batches that depend only on (seed, epoch); uint8
pixels read as float32 batch by batch; transforms get the draws of the batch's own samples."""
import numpy as np
import pytest

from juanji.data.datasets import ArrayDataset
from juanji.data.draws import SampleDraws
from juanji.data.loader import DataLoader
from juanji.data.transforms import Compose, RandomCrop, RandomHorizontalFlip


def indexed_dataset(n=103):
    """Image k is a (1, 4, 4) image filled with k (so a batch reveals its sample ids), labelled k % 10."""
    images = np.repeat(np.arange(n, dtype=np.float32), 16).reshape(n, 1, 4, 4)
    return ArrayDataset(images, np.arange(n) % 10, [str(k) for k in range(10)])


def sample_ids(x):
    return x[:, 0, 0, 0].astype(int)


def epoch_batches(loader, epoch):
    loader.set_epoch(epoch)
    return list(loader)


@pytest.mark.parametrize("shuffle", [False, True])
def test_every_sample_once_per_epoch_with_partial_last_batch(shuffle):
    loader = DataLoader(indexed_dataset(103), batch_size=16, shuffle=shuffle)
    batches = list(loader)
    assert len(loader) == len(batches) == 7
    assert [len(x) for x, _ in batches] == [16] * 6 + [7]
    ids = np.concatenate([sample_ids(x) for x, _ in batches])
    assert sorted(ids) == list(range(103))
    if shuffle:
        assert ids.tolist() != list(range(103))
    else:
        assert ids.tolist() == list(range(103))
    for x, y in batches:
        assert x.dtype == np.float32 and x.shape[1:] == (1, 4, 4) and y.dtype == np.int64
        np.testing.assert_array_equal(y, sample_ids(x) % 10)  # labels travel with their images


def test_drop_last():
    loader = DataLoader(indexed_dataset(103), batch_size=16, shuffle=True, drop_last=True)
    batches = list(loader)
    assert len(loader) == len(batches) == 6 and all(len(x) == 16 for x, _ in batches)
    assert len(set(np.concatenate([sample_ids(x) for x, _ in batches]))) == 96
    assert len(DataLoader(indexed_dataset(96), batch_size=16, drop_last=True)) == 6
    assert len(DataLoader(indexed_dataset(96), batch_size=16)) == 6


def assert_same_batches(first, second):
    assert len(first) == len(second)
    for (x1, y1), (x2, y2) in zip(first, second):
        np.testing.assert_array_equal(x1, x2)
        np.testing.assert_array_equal(y1, y2)


def augmenting_loader(seed=0):
    images = np.random.default_rng(0).random((50, 2, 6, 6), dtype=np.float32)
    dataset = ArrayDataset(images, np.zeros(50, dtype=int), ["only"])
    transform = Compose([RandomCrop(6, padding=2), RandomHorizontalFlip()])
    return DataLoader(dataset, batch_size=8, shuffle=True, seed=seed, transform=transform)


def test_epoch_is_reproducible_after_restart():
    long_run = augmenting_loader()
    for epoch in range(3):
        epoch_batches(long_run, epoch)
    resumed = augmenting_loader()  # a fresh process that skips straight to epoch 3
    assert_same_batches(epoch_batches(long_run, 3), epoch_batches(resumed, 3))
    assert_same_batches(list(long_run), list(long_run))  # iterating again without set_epoch repeats it


def test_an_epoch_resumed_at_a_batch_yields_the_rest_of_it():
    """A training resumed mid-epoch (juanji.train) starts at its batch: the same batches, augmented alike."""
    whole, resumed = augmenting_loader(), augmenting_loader()
    resumed.set_epoch(2)
    assert_same_batches(list(resumed.batches(5)), epoch_batches(whole, 2)[5:])
    assert list(resumed.batches(len(resumed))) == []


def test_epochs_and_seeds_differ():
    loader = DataLoader(indexed_dataset(), batch_size=16, shuffle=True, seed=0)
    order = {epoch: np.concatenate([sample_ids(x) for x, _ in epoch_batches(loader, epoch)]) for epoch in range(3)}
    assert not np.array_equal(order[0], order[1]) and not np.array_equal(order[1], order[2])
    other_seed = DataLoader(indexed_dataset(), batch_size=16, shuffle=True, seed=1)
    assert not np.array_equal(order[0], np.concatenate([sample_ids(x) for x, _ in epoch_batches(other_seed, 0)]))

    first, second = epoch_batches(augmenting_loader(), 0), epoch_batches(augmenting_loader(), 1)
    assert not np.array_equal(first[0][0], second[0][0])


def test_augmentation_differs_between_epochs_even_without_shuffle():
    loader = augmenting_loader()
    loader.shuffle = False
    assert not np.array_equal(epoch_batches(loader, 0)[0][0], epoch_batches(loader, 1)[0][0])


def test_the_order_is_the_documented_permutation_so_older_runs_resume_alike():
    loader = DataLoader(indexed_dataset(), batch_size=16, shuffle=True, seed=4)
    ids = np.concatenate([sample_ids(x) for x, _ in epoch_batches(loader, 2)])
    np.testing.assert_array_equal(ids, np.random.default_rng([4, 2]).permutation(103))


def test_transforms_get_the_draws_of_the_samples_gathered():
    seen = []

    def record(x, draws):
        seen.append((sample_ids(x), draws.random()))
        return x

    loader = DataLoader(indexed_dataset(20), batch_size=8, shuffle=True, seed=6, transform=record)
    list(epoch_batches(loader, 1))
    for ids, numbers in seen:
        np.testing.assert_array_equal(numbers, SampleDraws(6, 1, ids).random())


def test_uint8_pixels_come_out_as_float32_batches():
    pixels = np.arange(4 * 1 * 2 * 2, dtype=np.uint8).reshape(4, 1, 2, 2) * 16
    x, y = next(iter(DataLoader(ArrayDataset(pixels, [0, 1, 0, 1], ["a", "b"]), batch_size=3)))
    assert x.dtype == np.float32 and y.tolist() == [0, 1, 0]
    np.testing.assert_array_equal(x, pixels[:3].astype(np.float32) / 255)


def test_batches_are_copies():
    dataset = indexed_dataset(10)
    x, _ = next(iter(DataLoader(dataset, batch_size=4)))
    x[:] = -1
    assert dataset.images.min() == 0


def test_invalid_arguments():
    empty = ArrayDataset(np.zeros((0, 1, 2, 2)), np.zeros(0, dtype=int), ["a"])
    with pytest.raises(ValueError, match="dataset is empty"):
        DataLoader(empty)
    with pytest.raises(ValueError, match="batch_size"):
        DataLoader(indexed_dataset(), batch_size=0)
