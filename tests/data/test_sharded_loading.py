"""Sharded loading: each process reads and augments only its share of every global batch, with draws that are
the samples' own, from data memory-mapped (raw IDX files where they lie, .gz files and image folders through
the cache) rather than copied into every process."""
import gzip
import os

import numpy as np
import pytest

from juanji.data.datasets import ArrayDataset, channel_mean_std, load_mnist
from juanji.data.draws import SampleDraws
from juanji.data.folder import load_datasets
from juanji.data.idx import IDXError, map_idx, write_idx
from juanji.data.loader import DataLoader, shard
from juanji.data.transforms import Compose, Normalize, RandomCrop, RandomHorizontalFlip


class CountingDataset(ArrayDataset):
    """An ArrayDataset that records the indices of every gather."""

    def __init__(self, *args):
        super().__init__(*args)
        self.gathered = []

    def __getitem__(self, index):
        self.gathered.append(np.array(index))
        return super().__getitem__(index)


def pixel_dataset(n=23, size=6, dataset=ArrayDataset):
    """n uint8 images with distinct contents (so crops and flips show), labelled i % 3."""
    images = np.random.default_rng(0).integers(0, 256, (n, 2, size, size), dtype=np.uint8)
    return dataset(images, np.arange(n) % 3, ["a", "b", "c"])


AUGMENTATION = Compose([RandomCrop(6, padding=2), RandomHorizontalFlip(), Normalize([0.5, 0.4], [0.2, 0.3])])


def loader(dataset, size=1, rank=0, **options):
    settings = dict(batch_size=7, shuffle=True, seed=5, transform=AUGMENTATION)
    return DataLoader(dataset, **{**settings, **options}, shard=None if size == 1 else (rank, size))


@pytest.mark.parametrize("size", [1, 2, 3])
def test_the_shares_make_up_the_one_process_batch_bit_for_bit_with_augmentation(size):
    dataset = pixel_dataset()
    whole, shares = loader(dataset), [loader(dataset, size, rank) for rank in range(size)]
    for epoch in (0, 4):
        for one in (whole, *shares):
            one.set_epoch(epoch)
        batches, parts = list(whole), [list(share) for share in shares]
        assert all(len(part) == len(batches) == 4 for part in parts)       # 7, 7, 7, 2 samples
        for step, (x, y) in enumerate(batches):
            np.testing.assert_array_equal(np.concatenate([part[step][0] for part in parts]), x)
            np.testing.assert_array_equal(np.concatenate([part[step][1] for part in parts]), y)
    plain = loader(dataset, transform=AUGMENTATION.transforms[-1])
    plain.set_epoch(4)
    assert not np.array_equal(next(iter(plain))[0], batches[0][0])              # augmented indeed


def test_each_process_gathers_only_its_own_indices():
    size = 3
    datasets = [pixel_dataset(dataset=CountingDataset) for _ in range(size)]
    reference = pixel_dataset(dataset=CountingDataset)
    list(loader(reference))
    for rank, dataset in enumerate(datasets):
        list(loader(dataset, size, rank))
        expected = [batch[shard(len(batch), rank, size)] for batch in reference.gathered]
        assert [len(g) for g in dataset.gathered] == [len(e) for e in expected]      # 2 or 3 of each 7, 0 or 1 of 2
        for got, want in zip(dataset.gathered, expected):
            np.testing.assert_array_equal(got, want)
    gathered = [np.concatenate(dataset.gathered) for dataset in datasets]
    assert sorted(np.concatenate(gathered).tolist()) == list(range(23))           # every sample once, in all


def test_empty_shares_are_skipped_only_when_asked():
    dataset = pixel_dataset(n=5)
    assert [len(y) for _, y in DataLoader(dataset, 4, shard=(0, 2))] == [2, 0]
    assert [len(y) for _, y in DataLoader(dataset, 4, shard=(0, 2), skip_empty=True)] == [2]
    assert [len(y) for _, y in DataLoader(dataset, 4, shard=(1, 2), skip_empty=True)] == [2, 1]
    with pytest.raises(ValueError, match=r"rank must be in \[0, size\), got \(2, 2\)"):
        DataLoader(dataset, 4, shard=(2, 2))


def test_a_samples_augmentation_does_not_depend_on_the_batch_or_its_place():
    """Batch size 7 or 4, shuffled or not: sample i of epoch e is cropped and flipped alike."""
    dataset = pixel_dataset()
    by_sample = {}
    for options in (dict(batch_size=7), dict(batch_size=4), dict(batch_size=23, shuffle=False)):
        one = loader(dataset, **options, transform=Compose([RandomCrop(6, padding=2), RandomHorizontalFlip()]))
        one.set_epoch(2)
        order = np.random.default_rng([5, 2]).permutation(23) if one.shuffle else np.arange(23)
        images = np.concatenate([x for x, _ in one])
        for position, sample in enumerate(order):
            by_sample.setdefault(sample, []).append(images[position])
    for sample, seen in by_sample.items():
        assert len(seen) == 3
        for other in seen[1:]:
            np.testing.assert_array_equal(other, seen[0], err_msg=f"sample {sample}")


def test_sample_draws_are_uniform_and_unrelated_across_samples_draws_epochs_and_seeds():
    n = 200_000
    draws = SampleDraws(0, 0, np.arange(n))
    first, second = draws.random(), draws.random()
    assert 0 <= first.min() and first.max() < 1
    counts = np.histogram(first, bins=20, range=(0, 1))[0]
    assert np.abs(counts - n / 20).max() < 5 * np.sqrt(n / 20)                     # 5 σ: uniform
    neighbours = (first[:-1], first[1:], "neighbouring samples"), (first, second, "a sample's next draw"), \
        (first, SampleDraws(0, 1, np.arange(n)).random(), "the next epoch"), \
        (first, SampleDraws(1, 0, np.arange(n)).random(), "another seed")
    for a, b, what in neighbours:
        assert abs(np.corrcoef(a, b)[0, 1]) < 5 / np.sqrt(n), what               # 5 σ: uncorrelated
    integers = SampleDraws(3, 0, np.arange(n)).integers(5)
    assert set(np.unique(integers)) == set(range(5))
    assert np.abs(np.bincount(integers) - n / 5).max() < 5 * np.sqrt(n / 5)
    with pytest.raises(ValueError, match="high must be in"):
        draws.integers(0)
    with pytest.raises(ValueError, match="sample indices"):
        SampleDraws(0, 0, np.array([-1]))


# -- memory-mapped data --------------------------------------------------------------------------------
def is_mapped(array) -> bool:
    """Whether ``array`` is, or views, an np.memmap."""
    while array is not None:
        if isinstance(array, np.memmap):
            return True
        array = array.base
    return False


@pytest.fixture
def cache_home(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    return tmp_path / "cache" / "juanji" / "data"


def mnist_dir(root, count=30, compressed=True):
    root.mkdir(parents=True)
    suffix = ".gz" if compressed else ""
    images = np.random.default_rng(1).integers(0, 256, (count, 28, 28), dtype=np.uint8)
    write_idx(root / f"train-images-idx3-ubyte{suffix}", images)
    write_idx(root / f"train-labels-idx1-ubyte{suffix}", np.arange(count, dtype=np.uint8) % 10)
    return root, images


def test_a_raw_idx_file_is_mapped_where_it_lies(tmp_path, cache_home):
    root, images = mnist_dir(tmp_path / "raw", compressed=False)
    dataset = load_mnist(root, limit=20)
    assert dataset.stored.dtype == np.uint8 and is_mapped(dataset.stored)
    assert os.path.samefile(dataset.stored.filename, root / "train-images-idx3-ubyte")
    assert not dataset.stored.flags.writeable and not cache_home.exists()
    np.testing.assert_array_equal(dataset[np.array([19, 3])][0], images[[19, 3], None] / np.float32(255))
    assert dataset[np.array([0])][0].dtype == np.float32


def test_a_gz_file_is_decompressed_once_into_the_cache_and_mapped(tmp_path, cache_home, monkeypatch):
    root, images = mnist_dir(tmp_path / "gz")
    dataset = load_mnist(root)
    assert is_mapped(dataset.stored)
    assert oct(os.stat(cache_home).st_mode & 0o777) == "0o700"
    [cached] = list(cache_home.glob("*.npy"))
    np.testing.assert_array_equal(np.load(cached), images)
    written = cached.stat().st_mtime_ns

    import juanji.data.idx as idx
    monkeypatch.setattr(idx, "read_idx", lambda *args: pytest.fail("decompressed a second time"))
    again = load_mnist(root)                     # the labels file is read directly, not through read_idx here
    assert os.path.samefile(again.stored.filename, cached) and cached.stat().st_mtime_ns == written


def test_a_changed_gz_file_gets_a_new_cache_file(tmp_path, cache_home):
    path = tmp_path / "a.gz"
    write_idx(path, np.zeros((4, 3), np.uint8))
    map_idx(path)
    [old] = list(cache_home.glob("*.npy"))
    killed = cache_home / f".{old.name}.x1y2.tmp"           # what a writer killed mid-way leaves
    killed.write_bytes(b"half")
    write_idx(path, np.full((4, 3), 7, np.uint8))
    os.utime(path, ns=(1, 1))                  # a different size or modification time: a different version
    np.testing.assert_array_equal(map_idx(path), np.full((4, 3), 7))
    [new] = list(cache_home.glob("*.npy"))
    assert new != old and not killed.exists()  # written anew; the stale version and the temporary removed


@pytest.mark.parametrize("damage", ["truncated", "trailing", "not npy", "other shape"])
def test_a_damaged_cache_file_is_rebuilt(tmp_path, cache_home, damage):
    path = tmp_path / "a.gz"
    array = np.arange(60, dtype=np.uint8).reshape(5, 12)
    write_idx(path, array)
    map_idx(path)
    [cached] = list(cache_home.glob("*.npy"))
    content = cached.read_bytes()
    cached.write_bytes({"truncated": content[:-5], "trailing": content + b"\0", "not npy": b"junk" * 30,
                        "other shape": _npy(np.zeros((6, 10), np.uint8))}[damage])
    mapped = map_idx(path)
    np.testing.assert_array_equal(mapped, array)
    assert is_mapped(mapped) and cached.read_bytes() == content


def _npy(array) -> bytes:
    import io
    buffer = io.BytesIO()
    np.save(buffer, array)
    return buffer.getvalue()


def test_a_bad_gz_file_is_refused_and_nothing_is_cached(tmp_path, cache_home):
    path = tmp_path / "bad.gz"
    path.write_bytes(gzip.compress(bytes([0, 0, 8, 2, 0, 0, 0, 5, 0, 0, 0, 5]) + bytes(24)))   # 25 promised
    with pytest.raises(IDXError, match="bad.gz: truncated: header promises 5×5 = 25 bytes of data, file has 24"):
        map_idx(path)
    assert not list(cache_home.glob("*.npy"))
    path.write_bytes(gzip.compress(bytes([0, 0, 8, 1, 0, 0, 0, 4]) + bytes(4))[:-10])           # cut inside
    with pytest.raises(IDXError, match="bad.gz: corrupt gzip stream|bad.gz: truncated"):
        map_idx(path)
    raw = tmp_path / "raw"
    raw.write_bytes(bytes([0, 0, 8, 1, 0, 0, 0, 4]) + bytes(5))
    with pytest.raises(IDXError, match="raw: trailing garbage: header promises 4 = 4 bytes of data, file has 5"):
        map_idx(raw)


def test_an_unwritable_cache_warns_and_reads_into_memory(tmp_path, monkeypatch):
    blocker = tmp_path / "file"
    blocker.write_text("a file where the cache folder would go")
    monkeypatch.setenv("XDG_CACHE_HOME", str(blocker))
    path = tmp_path / "a.gz"
    write_idx(path, np.ones((2, 2), np.uint8))
    with pytest.warns(RuntimeWarning, match="cannot cache data in .*: it stays in memory"):
        array = map_idx(path)
    np.testing.assert_array_equal(array, np.ones((2, 2)))
    assert not is_mapped(array)


def test_an_image_folder_is_decoded_once_and_mapped(tmp_path, cache_home, monkeypatch):
    from PIL import Image
    import juanji.data.folder as folder
    for kind in ("dark", "light"):
        (tmp_path / "pics" / kind).mkdir(parents=True)
        for i in range(6):
            Image.new("L", (10, 8), 40 * i + (0 if kind == "dark" else 20)).save(tmp_path / "pics" / kind / f"{i}.png")
    decoded, read_images = [], folder.read_images
    monkeypatch.setattr(folder, "read_images", lambda paths, *args: decoded.append(len(paths)) or
                        read_images(paths, *args))
    train, test, _ = load_datasets(str(tmp_path / "pics"), image_size=8)
    assert is_mapped(train.stored) and is_mapped(test.stored) and decoded == [10, 2]
    assert train.images.shape == (10, 1, 8, 8) and len(test) == 2
    again, _, _ = load_datasets(str(tmp_path / "pics"), image_size=8)
    np.testing.assert_array_equal(again.images, train.images)
    assert decoded == [10, 2]                                               # mapped from the cache
    os.utime(tmp_path / "pics" / "dark" / "5.png", ns=(1, 1))              # a training image changed
    load_datasets(str(tmp_path / "pics"), image_size=8)
    assert decoded == [10, 2, 10] and len(list(cache_home.glob("images-*.npy"))) == 2   # the stale one removed


def test_statistics_are_computed_chunk_by_chunk_as_one_pass_would(monkeypatch):
    import juanji.data.datasets as datasets
    images = np.random.default_rng(2).integers(0, 256, (50, 3, 5, 5), dtype=np.uint8)
    floats = images / np.float32(255)
    monkeypatch.setattr(datasets, "CHUNK_VALUES", 7 * 75)          # 7 images a chunk: 8 chunks, the last short
    mean, std = channel_mean_std(images)
    np.testing.assert_allclose(mean, floats.astype(np.float64).mean(axis=(0, 2, 3)), rtol=1e-7)
    np.testing.assert_allclose(std, floats.astype(np.float64).std(axis=(0, 2, 3)), rtol=1e-7)
    assert (mean, std) == channel_mean_std(floats)


def test_stored_pixels_become_floats_per_batch_and_as_a_whole():
    stored = np.arange(2 * 3 * 2 * 2, dtype=np.uint8).reshape(2, 3, 2, 2) * 10
    dataset = ArrayDataset(stored, [0, 1], ["a", "b"])
    expected = stored.astype(np.float32) / 255
    assert dataset.stored is stored                                         # kept, not copied
    x, y = dataset[np.array([1, 0])]
    assert x.dtype == np.float32 and y.tolist() == [1, 0]
    np.testing.assert_array_equal(x, expected[[1, 0]])
    np.testing.assert_array_equal(dataset[1][0], expected[1])
    assert dataset.images.dtype == np.float32 and dataset.images is dataset.images      # converted once
    np.testing.assert_array_equal(dataset.images, expected)
    with pytest.raises(ValueError, match="read-only"):
        dataset.images[0, 0, 0, 0] = 1.0                                  # it would change no batch
    as_float64 = ArrayDataset(stored, [0, 1], ["a", "b"], dtype=np.float64)
    assert as_float64[np.array([1])][0].dtype == as_float64.images.dtype == np.float64
    floats = ArrayDataset(expected, [0, 1], ["a", "b"])
    assert floats.images is floats.stored and floats.images.flags.writeable
