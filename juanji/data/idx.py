"""Read and write IDX files, the format MNIST and Fashion-MNIST ship in, raw or gzip-compressed.

Every problem with a file raises ``IDXError``, whose message names the file and says what is wrong.
"""
import gzip
import math
import os
import zlib

import numpy as np

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


def read_idx(path) -> np.ndarray:
    """Read an IDX file (raw or gzip, told apart by the first two bytes) into a native-endian array.

    The array has the shape given by the header, e.g. (60000, 28, 28) uint8 for MNIST training images.
    """
    name = os.path.basename(os.fspath(path))
    with open(path, "rb") as file:
        content = file.read()
    if content[:2] == _GZIP_MAGIC:
        try:
            content = gzip.decompress(content)
        except (OSError, EOFError, zlib.error) as error:  # gzip reports damage in all three ways
            raise IDXError(f"{name}: corrupt gzip stream: {error}") from error
    return _parse(content, name)


def _parse(content: bytes, name: str) -> np.ndarray:
    """Check the header and data length of uncompressed IDX bytes and return the data."""
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

    dtype, type_name = _TYPES[type_code]
    shape = tuple(int(size) for size in np.frombuffer(content, dtype=">u4", count=ndim, offset=4))
    expected = math.prod(shape) * dtype.itemsize  # Python ints: no overflow for absurd headers
    actual = len(content) - header_size
    if actual != expected:
        problem = "truncated" if actual < expected else "trailing garbage"
        dims = "×".join(map(str, shape))
        values = dims if dtype.itemsize == 1 else f"{dims} {type_name} values × {dtype.itemsize} bytes"
        raise IDXError(f"{name}: {problem}: header promises {values} = {expected} bytes of data, file has {actual}")
    data = np.frombuffer(content, dtype=dtype, offset=header_size).reshape(shape)
    return data.astype(dtype.newbyteorder("="))  # a writable copy in the machine's byte order


def write_idx(path, array) -> None:
    """Write ``array`` (1 to 255 dimensions, uint8/int8/int16/int32/float32/float64) as an IDX file.

    The file is gzip-compressed when ``path`` ends in ``.gz``.
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
    with open(path, "wb") as file:
        file.write(content)
