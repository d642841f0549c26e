"""Writing files so that a crash, a kill or a full disk never leaves a half-written one: the one atomic writer;
and reading a small file from outside without trusting it: the one bounded reader, ``read_small_file``;
and the one lock file that goes away after use, ``held_lock``.

``write_atomically`` writes a temporary file beside the target (``.<name>.<random>.tmp``), fsyncs it and
renames it over the target with ``os.replace``.  A writer killed mid-way leaves only such a temporary
file, which ``remove_stale_temporaries`` deletes the next time a run uses the folder.
"""
from __future__ import annotations

import contextlib
import fcntl
import os
import stat
import tempfile

from .limits import mib

TEMPORARY_SUFFIX = ".tmp"


def check_writable_target(path) -> None:
    """Refuse to replace what is not a regular file: a folder, a FIFO, a device, a socket (the message names it)."""
    path = os.fspath(path)
    try:
        mode = os.stat(path).st_mode
    except FileNotFoundError:
        return
    except OSError as error:
        raise OSError(error.errno, f"cannot write {path}: {error.strerror}") from None
    if not stat.S_ISREG(mode):
        raise OSError(f"cannot write {path}: it is {file_kind(mode)}, not a regular file; refusing to replace it")


def file_kind(mode: int) -> str:
    """What a file that is not a regular one is, for a message: "a folder", "a FIFO (named pipe)" ..."""
    return ("a folder" if stat.S_ISDIR(mode) else "a FIFO (named pipe)" if stat.S_ISFIFO(mode) else
            "a device" if stat.S_ISCHR(mode) or stat.S_ISBLK(mode) else "a socket" if stat.S_ISSOCK(mode)
            else "not a regular file")


def read_small_file(path, limit: int) -> bytes:
    """The whole content of the regular file ``path``, at most ``limit`` bytes; OSError naming the file when
    it is missing, not a regular file (a folder, a FIFO, a device such as a link to /dev/zero) or larger.

    The file is opened non-blocking and checked with ``fstat`` before any read, so a FIFO is refused at once
    instead of waiting for a writer; a file that grows after the check is still cut off at ``limit + 1`` bytes.
    """
    path = os.fspath(path)
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError as error:        # FileNotFoundError stays one, with a message naming the file
        raise type(error)(f"cannot read {path}: {error.strerror}") from None
    content = bytearray()
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise OSError(f"cannot read {path}: it is {file_kind(info.st_mode)}, not a regular file")
        if info.st_size <= limit:
            while len(content) <= limit and (chunk := os.read(fd, limit + 1 - len(content))):
                content += chunk
        if info.st_size > limit or len(content) > limit:
            raise OSError(f"cannot read {path}: it is larger than {mib(limit)}, the most juanji reads from it")
    finally:
        os.close(fd)
    return bytes(content)


def write_atomically(path, write) -> None:
    """Call ``write(file)`` on a temporary file in ``path``'s folder, then move it over ``path``.

    ``path`` must be a regular file or not exist yet (see ``check_writable_target``); on any error the
    temporary file is removed and ``path`` is as it was."""
    path = os.fspath(path)
    check_writable_target(path)
    folder = os.path.dirname(os.path.abspath(path))
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{os.path.basename(path)}.", suffix=TEMPORARY_SUFFIX, dir=folder)
    except OSError as error:        # name the file asked for, not the temporary one
        raise OSError(error.errno, f"cannot write {path}: {error.strerror}") from None
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o666 & ~_umask())     # mkstemp makes 0600 files; give the usual permissions
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    dir_fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


def write_text(path, text: str) -> None:
    """``write_atomically`` of UTF-8 text."""
    write_atomically(path, lambda f: f.write(text.encode()))


def remove_stale_temporaries(folder) -> list[str]:
    """Delete the temporary files that killed ``write_atomically`` calls left in ``folder``; their paths."""
    removed = []
    if not os.path.isdir(folder):
        return removed
    for entry in os.scandir(folder):
        ours = entry.name.startswith(".") and entry.name.endswith(TEMPORARY_SUFFIX)
        if ours and entry.is_file(follow_symlinks=False):
            os.unlink(entry.path)
            removed.append(entry.path)
    return removed


@contextlib.contextmanager
def held_lock(path, take=lambda fd: fcntl.flock(fd, fcntl.LOCK_EX)):
    """Hold an ``flock`` on the file ``path`` (created where missing) for the ``with`` block, which gets its
    descriptor, and remove the file when the block ends.  ``take(fd)`` takes the lock (by default waiting for
    it; it may raise instead).  The kernel drops an ``flock`` when its process dies, however it dies.

    Removing a lock file that others may be waiting on is safe only so: the holder unlinks it while still
    holding it, and a process that gets the lock checks that the file it locked is still the one at ``path``
    (else its holder removed it meanwhile, and a third process may hold a new one): then it locks the new one.
    So two processes never both hold the lock of ``path``."""
    path = os.fspath(path)
    while True:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            take(fd)
            locked, current = os.fstat(fd), os.stat(path)
            if (locked.st_dev, locked.st_ino) == (current.st_dev, current.st_ino):
                break
        except FileNotFoundError:       # removed by its holder after we opened it
            pass
        except BaseException:
            os.close(fd)
            raise
        os.close(fd)
    try:
        yield fd
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(path)         # while still holding it, so no one locks a file that is going away
        os.close(fd)                # closing releases the flock


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask
