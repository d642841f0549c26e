"""read_idx/write_idx on the real Fashion-MNIST files, round trips, every kind of damaged file, and a fuzz test."""
import gzip
import os

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from juanji.data.idx import IDXError, read_idx, write_idx
from mutation import mutate

FASHION_DIR = "/usr/share/datasets/fashion-mnist"


@pytest.mark.parametrize("split, count", [("train", 60000), ("t10k", 10000)])
def test_real_fashion_mnist_files(split, count):
    images = read_idx(f"{FASHION_DIR}/{split}-images-idx3-ubyte.gz")
    labels = read_idx(f"{FASHION_DIR}/{split}-labels-idx1-ubyte.gz")
    assert images.shape == (count, 28, 28) and images.dtype == np.uint8
    assert labels.shape == (count,) and labels.dtype == np.uint8
    assert labels.min() == 0 and labels.max() == 9
    assert np.bincount(labels).tolist() == [count // 10] * 10  # Fashion-MNIST is exactly balanced
    if split == "train":
        assert labels[0] == 9  # the first training image is an ankle boot


@pytest.mark.parametrize("compressed", [False, True], ids=["raw", "gz"])
@pytest.mark.parametrize("dtype", [np.uint8, np.int8, np.int16, np.int32, np.float32, np.float64])
def test_round_trip_every_dtype(tmp_path, dtype, compressed):
    rng = np.random.default_rng(0)
    if np.issubdtype(dtype, np.integer):
        info = np.iinfo(dtype)
        array = rng.integers(info.min, info.max, size=(3, 4, 5), endpoint=True).astype(dtype)
        array.flat[:2] = info.min, info.max
    else:
        array = rng.standard_normal((3, 4, 5)).astype(dtype)
        array.flat[:3] = np.finfo(dtype).max, np.finfo(dtype).tiny, -0.0
    path = tmp_path / ("a.idx.gz" if compressed else "a.idx")
    write_idx(path, array)
    assert (path.read_bytes()[:2] == b"\x1f\x8b") == compressed
    result = read_idx(path)
    assert result.dtype == dtype and result.dtype.isnative and result.shape == array.shape
    np.testing.assert_array_equal(result, array)
    result[0, 0, 0] = 1  # callers may modify what they read


@pytest.mark.parametrize("shape", [(7,), (2, 3), (1, 2, 3, 4), (0, 5)])
def test_round_trip_shapes(tmp_path, shape):
    array = np.arange(int(np.prod(shape)), dtype=np.int32).reshape(shape)
    write_idx(tmp_path / "a.idx", array)
    np.testing.assert_array_equal(read_idx(tmp_path / "a.idx"), array)


def test_gzip_detected_by_content_not_extension(tmp_path):
    array = np.arange(12, dtype=np.uint8).reshape(3, 4)
    write_idx(tmp_path / "compressed.gz", array)
    write_idx(tmp_path / "plain", array)
    os.rename(tmp_path / "compressed.gz", tmp_path / "compressed")  # gzip content, no .gz
    os.rename(tmp_path / "plain", tmp_path / "plain.gz")              # raw content named .gz
    np.testing.assert_array_equal(read_idx(tmp_path / "compressed"), array)
    np.testing.assert_array_equal(read_idx(tmp_path / "plain.gz"), array)


def test_write_rejects_unsupported_arrays(tmp_path):
    with pytest.raises(ValueError, match="int64"):
        write_idx(tmp_path / "a.idx", np.zeros(3, dtype=np.int64))
    with pytest.raises(ValueError, match="dimensions"):
        write_idx(tmp_path / "a.idx", np.uint8(3))


def valid_idx_bytes():
    """Header + data of a (2, 3, 4) uint8 array: 16 header bytes, 24 data bytes."""
    return bytes([0, 0, 0x08, 3]) + np.array([2, 3, 4], dtype=">u4").tobytes() + bytes(range(24))


def write_bytes(tmp_path, name, content):
    path = tmp_path / name
    path.write_bytes(content)
    return path


@pytest.mark.parametrize("name, content, problem", [
    ("empty-idx3-ubyte", b"", "empty file"),
    ("tiny-idx3-ubyte", b"\x00\x00", "truncated"),
    ("cut-header-idx3-ubyte", valid_idx_bytes()[:10], "truncated: header of 3 dimensions needs 16 bytes, file has 10"),
    ("cut-data-idx3-ubyte", valid_idx_bytes()[:-5], "truncated: header promises 2×3×4 = 24 bytes of data, file has 19"),
    ("extra-idx3-ubyte", valid_idx_bytes() + b"junk", "trailing garbage: header promises 2×3×4 = 24 bytes of data, file has 28"),
    ("magic-idx3-ubyte", b"\x01" + valid_idx_bytes()[1:], "wrong magic number 0x01000803"),
    ("pngish-idx3-ubyte", b"\x89PNG\r\n\x1a\n" + bytes(40), "wrong magic number"),
    ("dtype-idx3-ubyte", b"\x00\x00\x0a\x03" + valid_idx_bytes()[4:], "bad data type code 0x0A"),
    ("nodims-idx3-ubyte", b"\x00\x00\x08\x00" + bytes(4), "0 dimensions"),
])
def test_damaged_raw_files(tmp_path, name, content, problem):
    path = write_bytes(tmp_path, name, content)
    with pytest.raises(IDXError) as caught:
        read_idx(path)
    message = str(caught.value)
    assert message.startswith(name + ": ") and problem in message
    assert isinstance(caught.value, ValueError)


def test_truncated_message_counts_values_of_wider_types(tmp_path):
    header = bytes([0, 0, 0x0D, 2]) + np.array([10, 3], dtype=">u4").tobytes()
    path = write_bytes(tmp_path, "weights.idx", header + bytes(100))
    with pytest.raises(IDXError, match=r"weights\.idx: truncated: header promises 10×3 float values × 4 bytes "
                                        r"= 120 bytes of data, file has 100"):
        read_idx(path)


def test_damaged_file_inside_gzip(tmp_path):
    path = write_bytes(tmp_path, "train-images-idx3-ubyte.gz", gzip.compress(valid_idx_bytes()[:-1]))
    with pytest.raises(IDXError, match=r"^train-images-idx3-ubyte\.gz: truncated: .* = 24 bytes of data, file has 23"):
        read_idx(path)


@pytest.mark.parametrize("damage", ["cut", "flipped", "garbage"])
def test_corrupt_gzip_stream(tmp_path, damage):
    packed = gzip.compress(valid_idx_bytes() * 20)
    content = {
        "cut": packed[: len(packed) // 2],
        "flipped": packed[:12] + bytes(b ^ 0xFF for b in packed[12:30]) + packed[30:],
        "garbage": b"\x1f\x8b" + b"this is not deflate data at all",
    }[damage]
    path = write_bytes(tmp_path, "labels.gz", content)
    with pytest.raises(IDXError, match=r"^labels\.gz: corrupt gzip stream"):
        read_idx(path)


def read_or_idx_error(path):
    """read_idx either succeeds or raises IDXError: any other exception fails the test."""
    try:
        assert isinstance(read_idx(path), np.ndarray)
    except IDXError as error:
        assert str(error).startswith(path.name + ": ")


fuzz_settings = settings(max_examples=2000, deadline=None, database=None,
                         suppress_health_check=[HealthCheck.function_scoped_fixture])


@fuzz_settings
@given(content=st.one_of(st.binary(max_size=64),
                         st.binary(max_size=64).map(lambda tail: b"\x00\x00" + tail),     # past the magic check
                         st.binary(max_size=64).map(lambda tail: b"\x1f\x8b" + tail)))    # into the gzip path
def test_fuzz_random_bytes(tmp_path, content):
    read_or_idx_error(write_bytes(tmp_path, "fuzz.idx", content))


@fuzz_settings
@given(compressed=st.booleans(), data=st.data())
def test_fuzz_mutated_valid_file(tmp_path, compressed, data):
    content = valid_idx_bytes()
    if compressed:
        content = gzip.compress(content, mtime=0)
    read_or_idx_error(write_bytes(tmp_path, "fuzz.idx", mutate(content, data)))
