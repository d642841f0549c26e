"""Keep freed memory in the process for the next training step (glibc's malloc only).

Every training step allocates and frees the same arrays of a few megabytes. With glibc's defaults a
freed block above 128 KiB goes back to the kernel (it was mmap'ed, or the heap top is trimmed), and the
next step page-faults the same memory in again, 4 KiB at a time, each fault with the kernel's zeroing of
its page: work that a small network's step cannot hide. Raising the mmap threshold to 32 MiB and the trim
threshold to 128 MiB keeps those blocks for reuse (at most 128 MiB of freed memory stays mapped).

This is a choice for the whole process, so a library import does not make it: the ``juanji`` command line
and the benchmark call ``keep_freed_memory()`` at start; a program that trains with juanji may call it too.
``JUANJI_KEEP_FREED_MEMORY=0`` in the environment leaves malloc as it is even then. Elsewhere than glibc
(macOS, Windows, musl) it does nothing.
"""
from __future__ import annotations

import ctypes
import ctypes.util
import os
import platform

# mallopt parameter numbers from glibc's <malloc.h>
_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3
MMAP_THRESHOLD = 32 << 20       # glibc's upper limit for this parameter on 64-bit machines
TRIM_THRESHOLD = 128 << 20


def keep_freed_memory() -> bool:
    """Set glibc's mmap and trim thresholds (``mallopt``) so that freed arrays are reused, not unmapped.
    Returns True where they were set; False where ``JUANJI_KEEP_FREED_MEMORY=0`` opts out, the C library
    is not glibc, or it refused them."""
    if not enabled_by_environment() or platform.system() != "Linux" or platform.libc_ver()[0] != "glibc":
        return False
    libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
    return bool(libc.mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD)) and bool(libc.mallopt(_M_TRIM_THRESHOLD,
                                                                                      TRIM_THRESHOLD))


def enabled_by_environment() -> bool:
    """False when ``JUANJI_KEEP_FREED_MEMORY`` is 0, no, false or off."""
    return os.environ.get("JUANJI_KEEP_FREED_MEMORY", "1").strip().lower() not in ("0", "no", "false", "off")
