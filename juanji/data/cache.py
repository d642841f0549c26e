"""Arrays made once and memory-mapped ever after (decompressed IDX files, decoded image folders): ``.npy``
files in $XDG_CACHE_HOME/juanji/data/ (by default ~/.cache/juanji/data/, made private: mode 0700).

A cache file is ``<source>-<version>.npy``: the source says what it holds (a file, or a folder's images
decoded at some size), the version which state of it (sizes and modification times), so a changed source
gets a new file and writing it removes the old one.  One process at a time builds a source (the others wait
on its lock, then map what it wrote): under ``mpirun`` the first rank decodes and every rank maps one copy.
The lock file, ``<source>.lock``, is there only while a process holds it (``juanji.io.held_lock``).
"""
from __future__ import annotations

import contextlib
import glob
import hashlib
import os
import warnings

import numpy as np

from juanji.io import TEMPORARY_SUFFIX, held_lock, write_atomically


def cache_dir() -> str:
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(base, "juanji", "data")


def key(*parts) -> str:
    """16 hex digits of SHA-256 naming ``parts`` (strings, numbers, tuples of them: their repr)."""
    return hashlib.sha256(repr(parts).encode()).hexdigest()[:16]


def file_version(path) -> tuple[int, int] | None:
    """(size, modification time in ns) of ``path``, what says that a file changed; None where it cannot be
    read (a file gone or unreadable is found so by its decoder)."""
    try:
        info = os.stat(path)
    except OSError:
        return None
    return info.st_size, info.st_mtime_ns


class Entry:
    """One cache file: ``array`` is its content, memory-mapped read-only, or None where it must be built
    (missing, damaged, or refused by the check); ``store(array)`` writes what was built."""

    def __init__(self, path: str, source: str, array: np.ndarray | None = None, unusable: OSError | None = None):
        self.path, self.source, self.array, self.unusable = path, source, array, unusable

    def store(self, array: np.ndarray) -> np.ndarray:
        """Write ``array`` (atomically, ``juanji.io``), remove the other versions of the source, and return the
        file mapped; where the cache cannot be written, warn and return ``array`` itself."""
        folder = os.path.dirname(self.path)
        error = self.unusable
        if error is None:
            try:
                write_atomically(self.path, lambda file: np.save(file, array, allow_pickle=False))
            except OSError as failure:
                error = failure
        if error is not None:
            warnings.warn(f"cannot cache data in {folder} ({error.strerror or error}): it stays in memory "
                          f"(set XDG_CACHE_HOME to a writable folder to map it)", RuntimeWarning, stacklevel=2)
            return array
        for other in _versions(folder, f"{self.source}-", ".npy"):
            if other != self.path:
                _remove(other)
        self.array = np.load(self.path, mmap_mode="r", allow_pickle=False)
        return self.array


@contextlib.contextmanager
def entry(source: str, version: str, check=lambda array: True):
    """The ``Entry`` of the cache file ``<source>-<version>.npy``, held under the source's lock, so that one
    process builds it while the others wait for it (``check(array)`` False: rebuild it)::

        with cache.entry(source, version) as cached:
            array = cached.array if cached.array is not None else cached.store(build())
    """
    folder = cache_dir()
    path = os.path.join(folder, f"{source}-{version}.npy")
    with contextlib.ExitStack() as held:
        try:
            os.makedirs(folder, mode=0o700, exist_ok=True)
            held.enter_context(held_lock(os.path.join(folder, f"{source}.lock")))   # waits for the builder
        except OSError as error:
            yield Entry(path, source, unusable=error)
            return
        for killed in _versions(folder, f".{source}-", f".npy.*{TEMPORARY_SUFFIX}"):
            _remove(killed)                             # a writer of this source killed mid-way (we hold its lock)
        yield Entry(path, source, _load(path, check))


def _versions(folder: str, prefix: str, suffix: str) -> list[str]:
    """The files of ``folder`` named ``prefix``, anything, ``suffix`` (a glob pattern)."""
    return glob.glob(os.path.join(glob.escape(folder), glob.escape(prefix) + "*" + suffix))


def _remove(path: str) -> None:
    with contextlib.suppress(FileNotFoundError):
        os.remove(path)


def _load(path: str, check) -> np.ndarray | None:
    """The cache file mapped, or None where it is missing, damaged or refused by ``check``."""
    try:
        array = np.load(path, mmap_mode="r", allow_pickle=False)
    except (OSError, ValueError, EOFError):     # missing; not an .npy, or shorter than its header says
        return None
    if not isinstance(array, np.memmap) or array.offset + array.nbytes != os.path.getsize(path):
        return None
    return array if check(array) else None
