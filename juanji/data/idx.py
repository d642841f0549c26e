"""Read and write IDX files, the format MNIST and Fashion-MNIST ship in, raw or gzip-compressed.

Every problem with a file raises ``IDXError``, whose message names the file and says what is wrong.
"""
from __future__ import annotations

import gzip
import math
import os
import zlib

import numpy as np

from juanji.data import cache
from juanji.io import write_atomically
from juanji.limits import memory_budget, mib

# IDX type code -> (big-endian dtype as stored in the file, name used in messages)
_TYPES = {
    0x08: (np.dtype(">u1"), "ubyte"),
    0x09: (np.dtype(">i1"), "byte"),
    0x0B: (np.dtype(">i2"), "short"),
    0x0C: (np.dtype(">i4"), "int"),
    0x0D: (np.dtype(">f4"), "float"),
    0x0E: (np.dtype(">f8"), "double"),
}
_GZIP_MAGIC = b"\x1f\x8b"


class IDXError(ValueError):
    """A file is not a valid IDX file (the message names the file and the problem)."""


def read_idx(path, max_bytes: int | None = None) -> np.ndarray:
    """Read an IDX file (raw or gzip, told apart by the first two bytes) into a native-endian array.

    The array has the shape given by the header, e.g. (60000, 28, 28) uint8 for MNIST training images.
    Nothing beyond what the header declares is read or decompressed, and the declared size must be at most
    ``max_bytes`` (default ``juanji.limits.memory_budget()``): a small .gz that inflates to gigabytes costs
    no more than its header.
    """
    name = os.path.basename(os.fspath(path))
    with open(path, "rb") as file:
        compressed = file.read(2) == _GZIP_MAGIC
        file.seek(0)
        stream = gzip.GzipFile(fileobj=file, mode="rb") if compressed else file
        try:
            content = _read_declared(stream, name, memory_budget() if max_bytes is None else max_bytes)
        except (OSError, EOFError, zlib.error) as error:  # gzip reports damage in all three ways
            if not compressed:
                raise
            raise IDXError(f"{name}: corrupt gzip stream: {error}") from error
        complete = not compressed or len(content) <= _declared_size(content)
        if not compressed:
            content += file.read(1 << 16)       # to say how much trailing garbage a raw file has
            complete = not file.read(1)
    return _parse(content, name, complete)


def _declared_size(content: bytes) -> int:
    """Header plus data bytes that ``content``'s header declares (0 while the header is incomplete)."""
    if len(content) < 4 or content[2] not in _TYPES or len(content) < 4 + 4 * content[3]:
        return 0
    shape = np.frombuffer(content, dtype=">u4", count=content[3], offset=4)
    return 4 + 4 * content[3] + math.prod(int(size) for size in shape) * _TYPES[content[2]][0].itemsize


def _read_declared(stream, name, budget: int) -> bytes:
    """The header, then at most one byte more than the data it declares (to tell trailing garbage)."""
    content = _read_header(stream)
    size = _declared_size(content)
    if size > budget:
        raise IDXError(f"{name}: header declares {size:,} bytes of data, more than the {mib(budget)} this "
                       f"process may use; refusing to read it")
    return content + stream.read(size - len(content) + 1) if size else content


def _parse(content: bytes, name: str, complete: bool = True) -> np.ndarray:
    """Check the header and data length of uncompressed IDX bytes and return the data; ``complete`` False
    means the file holds more than ``content``."""
    dtype, shape, header_size = _header(content, name)
    _check_length(name, dtype, shape, len(content) - header_size, complete)
    data = np.frombuffer(content, dtype=dtype, offset=header_size).reshape(shape)
    return data.astype(dtype.newbyteorder("="))  # a writable copy in the machine's byte order


def _header(content: bytes, name: str) -> tuple[np.dtype, tuple, int]:
    """(dtype as stored, shape, header size) from the header that ``content`` begins with; IDXError naming
    what is wrong with it."""
    if len(content) == 0:
        raise IDXError(f"{name}: empty file (0 bytes), expected an IDX header")
    if len(content) < 4:
        raise IDXError(f"{name}: truncated: the 4-byte magic number is cut off, file has {len(content)} bytes")
    if content[:2] != b"\x00\x00":
        raise IDXError(f"{name}: wrong magic number 0x{content[:4].hex()}: an IDX file starts with two zero bytes")
    type_code, ndim = content[2], content[3]
    if type_code not in _TYPES:
        known = ", ".join(f"0x{code:02X} ({type_name})" for code, (_, type_name) in _TYPES.items())
        raise IDXError(f"{name}: bad data type code 0x{type_code:02X} in magic number, expected one of {known}")
    if ndim == 0:
        raise IDXError(f"{name}: bad magic number: 0 dimensions, an IDX array needs at least 1")
    header_size = 4 + 4 * ndim
    if len(content) < header_size:
        raise IDXError(f"{name}: truncated: header of {ndim} dimensions needs {header_size} bytes, "
                       f"file has {len(content)}")
    shape = tuple(int(size) for size in np.frombuffer(content, dtype=">u4", count=ndim, offset=4))
    return _TYPES[type_code][0], shape, header_size


def _check_length(name: str, dtype: np.dtype, shape: tuple, actual: int, complete: bool = True) -> None:
    """IDXError unless ``actual`` data bytes are what the header's ``shape`` of ``dtype`` promises."""
    expected = math.prod(shape) * dtype.itemsize  # Python ints: no overflow for absurd headers
    if actual != expected:
        problem = "truncated" if actual < expected else "trailing garbage"
        dims = "×".join(map(str, shape))
        type_name = next(type_name for stored, type_name in _TYPES.values() if stored == dtype)
        values = dims if dtype.itemsize == 1 else f"{dims} {type_name} values × {dtype.itemsize} bytes"
        holds = actual if complete else f"more than {actual - 1}"
        raise IDXError(f"{name}: {problem}: header promises {values} = {expected} bytes of data, file has {holds}")


def map_idx(path, max_bytes: int | None = None) -> np.ndarray:
    """``read_idx``'s array, read-only and memory-mapped rather than read, so that every process reading the
    file shares one copy of it in the page cache.

    A raw file is mapped where it lies once its header and length are checked; a gzip file is decompressed
    once (by ``read_idx``, within ``max_bytes``) into the cache (``juanji.data.cache``, keyed by the file's
    path, size and modification time; rebuilt when damaged) and mapped from there.  Multi-byte values, which
    IDX stores big-endian, and empty arrays are read into memory instead.
    """
    name = os.path.basename(os.fspath(path))
    with open(path, "rb") as file:
        compressed = file.read(2) == _GZIP_MAGIC
        file.seek(0)
        try:
            head = _read_header(gzip.GzipFile(fileobj=file, mode="rb") if compressed else file)
        except (OSError, EOFError, zlib.error) as error:
            if not compressed:
                raise
            raise IDXError(f"{name}: corrupt gzip stream: {error}") from error
        size = os.fstat(file.fileno()).st_size
    dtype, shape, header_size = _header(head, name)
    if dtype.itemsize > 1 or math.prod(shape) == 0:
        return read_idx(path, max_bytes)
    if compressed:
        path = os.path.abspath(path)
        with cache.entry(f"idx-{cache.key(path)}", cache.key(cache.file_version(path)),
                         lambda array: array.dtype == dtype and array.shape == shape) as cached:
            return cached.array if cached.array is not None else cached.store(read_idx(path, max_bytes))
    _check_length(name, dtype, shape, size - header_size)
    return np.memmap(path, dtype=dtype, mode="r", offset=header_size, shape=shape)


def _read_header(stream) -> bytes:
    """The magic number and, where it is one, the dimension sizes it announces (fewer bytes if the file ends)."""
    head = stream.read(4)
    return head + stream.read(4 * head[3]) if len(head) == 4 and head[:2] == b"\x00\x00" else head


def write_idx(path, array) -> None:
    """Write ``array`` (1 to 255 dimensions, uint8/int8/int16/int32/float32/float64) as an IDX file.

    The file is gzip-compressed when ``path`` ends in ``.gz``, and written atomically (``juanji.io``).
    """
    array = np.asarray(array)
    native_to_code = {dtype.newbyteorder("="): code for code, (dtype, _) in _TYPES.items()}
    code = native_to_code.get(array.dtype.newbyteorder("="))
    if code is None:
        raise ValueError(f"IDX cannot store dtype {array.dtype}; use one of uint8, int8, int16, int32, float32, float64")
    if not 1 <= array.ndim <= 255:
        raise ValueError(f"IDX stores arrays of 1 to 255 dimensions, got {array.ndim}")
    if max(array.shape) >= 2**32:
        raise ValueError(f"IDX dimension sizes must fit in 32 bits, got shape {array.shape}")

    header = bytes([0, 0, code, array.ndim]) + np.array(array.shape, dtype=">u4").tobytes()
    content = header + array.astype(_TYPES[code][0]).tobytes()
    if os.fspath(path).endswith(".gz"):
        content = gzip.compress(content, mtime=0)  # mtime=0: the same array always gives the same file
    write_atomically(path, lambda file: file.write(content))
